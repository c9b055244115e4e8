//! Remedies in the words of each surface that shows them. An administrator at the web panel
//! clicks [Open Authentication Page]; one at a terminal runs `mfp-host auth login`. The
//! component decides both wordings, here, so they never drift apart and the browser preview
//! gets them for free.
//!
//! Most remedies are written once, in the web panel's words (the seed's button, field and
//! page names), and their command-line words follow from [`PHRASEBOOK`] and the settings'
//! labels. A remedy whose command-line words cannot follow from those gives both
//! ([`Remedy::each`]).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use miniserde::de::{Map, Visitor};
use miniserde::ser::Fragment;

use crate::settings::SettingKey;

/// A remedy in the web panel's words and in the command line's. Stored records keep the
/// web panel's words alone when the command line's follow from them (every record written
/// before both were kept reads that way), and both otherwise: a JSON string, or
/// `{"web-panel": …, "command-line": …}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remedy {
    web_panel: String,
    command_line: String,
}

impl Remedy {
    /// A remedy whose command-line words differ from the web panel's in more than the
    /// phrasebook's phrases.
    pub fn each(web_panel: impl Into<String>, command_line: impl Into<String>) -> Self {
        Self {
            web_panel: web_panel.into(),
            command_line: command_line.into(),
        }
    }

    /// For the web panel (and the browser preview): buttons, fields and pages by the
    /// seed's names.
    pub fn web_panel(&self) -> &str {
        &self.web_panel
    }

    /// For `mfp-host`: commands, setting keys and flags.
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// Both wordings, for the WIT record.
    pub fn into_parts(self) -> (String, String) {
        (self.web_panel, self.command_line)
    }

    /// Both wordings passed through `f` (e.g. to bound their length for a record).
    pub fn map(&self, f: impl Fn(&str) -> String) -> Self {
        Self {
            web_panel: f(&self.web_panel),
            command_line: f(&self.command_line),
        }
    }
}

impl miniserde::Serialize for Remedy {
    fn begin(&self) -> Fragment<'_> {
        if for_command_line(&self.web_panel) == self.command_line {
            Fragment::Str(Cow::Borrowed(&self.web_panel))
        } else {
            crate::json::Fields::new(vec![
                ("web-panel", Some(&self.web_panel)),
                ("command-line", Some(&self.command_line)),
            ])
            .begin()
        }
    }
}

impl miniserde::Deserialize for Remedy {
    fn begin(out: &mut Option<Self>) -> &mut dyn Visitor {
        miniserde::make_place!(Place);

        impl Visitor for Place<Remedy> {
            fn string(&mut self, web_panel: &str) -> miniserde::Result<()> {
                self.out = Some(Remedy::from(web_panel));
                Ok(())
            }

            fn map(&mut self) -> miniserde::Result<Box<dyn Map + '_>> {
                Ok(Box::new(Each {
                    out: &mut self.out,
                    web_panel: None,
                    command_line: None,
                }))
            }
        }

        /// Both wordings; other fields are ignored, as serde's untagged reading did.
        struct Each<'a> {
            out: &'a mut Option<Remedy>,
            web_panel: Option<String>,
            command_line: Option<String>,
        }

        impl Map for Each<'_> {
            fn key(&mut self, k: &str) -> miniserde::Result<&mut dyn Visitor> {
                Ok(match k {
                    "web-panel" => miniserde::Deserialize::begin(&mut self.web_panel),
                    "command-line" => miniserde::Deserialize::begin(&mut self.command_line),
                    _ => <dyn Visitor>::ignore(),
                })
            }

            fn finish(&mut self) -> miniserde::Result<()> {
                let (Some(web_panel), Some(command_line)) =
                    (self.web_panel.take(), self.command_line.take())
                else {
                    return Err(miniserde::Error);
                };
                *self.out = Some(Remedy::each(web_panel, command_line));
                Ok(())
            }
        }

        Place::new(out)
    }
}

/// A remedy written in the web panel's words; its command-line words follow.
impl From<String> for Remedy {
    fn from(web_panel: String) -> Self {
        let command_line = for_command_line(&web_panel);
        Self {
            web_panel,
            command_line,
        }
    }
}

impl From<&str> for Remedy {
    fn from(web_panel: &str) -> Self {
        Self::from(web_panel.to_owned())
    }
}

/// Inside the component a remedy reads as its web-panel words (the words it was written in),
/// so text checks and logs need not pick a surface.
impl Deref for Remedy {
    type Target = str;

    fn deref(&self) -> &str {
        &self.web_panel
    }
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.web_panel)
    }
}

/// Web-panel phrases and their command-line words, longest first where one contains another.
/// Page pointers go first: a terminal has no pages.
pub const PHRASEBOOK: &[(&str, &str)] = &[
    (
        " (Properties > Connectivity > Protocols > SMTP Server > General)",
        "",
    ),
    (
        " (Properties > Services > Email > General > From Address)",
        "",
    ),
    (
        ", Properties > Services > Email > General > From Address",
        "",
    ),
    (
        "In Properties > Services > Email > General > From Address, set",
        "Set",
    ),
    (" on the web panel", ""),
    (
        "Select [Exchange Online/Outlook.com] in [Service Provider], click [Apply]",
        "Run `mfp-host settings set service-provider exchange-online`",
    ),
    (
        "select [Exchange Online/Outlook.com] in [Service Provider], click [Apply]",
        "run `mfp-host settings set service-provider exchange-online`",
    ),
    (
        "Choose [System] in [Login Credentials for Email Send]",
        "Run `mfp-host settings set login-credentials system`",
    ),
    (
        "Change the selection to [System] in [Login Credentials for Email Send]",
        "Run `mfp-host settings set login-credentials system`",
    ),
    (
        "set [Service Provider] to [Not Selected]",
        "run `mfp-host settings set service-provider not-selected`",
    ),
    (
        " in the [Device Details] (or [Description]) dialog box of CentreWare Internet Services",
        " with `mfp-host settings set device-email ADDRESS`",
    ),
    (
        " in the [Device Details] (or [Description]) dialog box",
        " with `mfp-host settings set device-email ADDRESS`",
    ),
    (
        "set it in [Device Details]",
        "set it with `mfp-host settings set device-email ADDRESS`",
    ),
    (
        "from the control panel",
        "from the control panel (`mfp-host panel set`)",
    ),
    (
        "Click [Open Authentication Page]",
        "Run `mfp-host auth login`",
    ),
    (
        "click [Open Authentication Page]",
        "run `mfp-host auth login`",
    ),
    ("[Open Authentication Page]", "`mfp-host auth login`"),
];

/// The seed's value names and the values `settings set` takes.
const VALUES: &[(&str, &str)] = &[
    ("[Exchange Online/Outlook.com]", "`exchange-online`"),
    ("[Not Selected]", "`not-selected`"),
    (
        "[Remotely Authenticated User]",
        "`remotely-authenticated-user`",
    ),
    ("[System]", "`system`"),
    ("[Yes]", "`yes`"),
    ("[No]", "`no`"),
];

/// The command line's words for a remedy written in the web panel's: the phrasebook's
/// phrases, then each `[Field]` as its setting key and each `[Value]` as the value
/// `settings set` takes.
pub fn for_command_line(web_panel: &str) -> String {
    let mut text = web_panel.to_owned();
    for (web, cli) in PHRASEBOOK {
        if text.contains(web) {
            text = text.replace(web, cli);
        }
    }
    for key in SettingKey::ALL {
        let label = format!("[{}]", key.label());
        if text.contains(&label) {
            text = text.replace(&label, &format!("`{}`", key.as_str()));
        }
    }
    for (web, cli) in VALUES {
        if text.contains(web) {
            text = text.replace(web, cli);
        }
    }
    text
}

/// The first word of the web panel's vocabulary in `text`, if any: what a command-line
/// remedy must never contain (its reader has no buttons, fields or pages).
pub fn web_panel_words(text: &str) -> Option<String> {
    const BUTTONS_AND_PAGES: &[&str] = &[
        "[Open Authentication Page]",
        "[Apply]",
        "Properties > Connectivity",
        "Properties > Services",
        "Properties > Description",
        "Properties > General Setup",
        "CentreWare",
        "dialog box",
        "web panel",
    ];
    BUTTONS_AND_PAGES
        .iter()
        .map(|word| (*word).to_owned())
        .chain(
            SettingKey::ALL
                .iter()
                .map(|key| format!("[{}]", key.label())),
        )
        .chain(VALUES.iter().map(|(web, _)| (*web).to_owned()))
        .find(|word| text.contains(word.as_str()))
}

/// The first of the command line's words in `text`, if any: what a web-panel remedy must
/// never contain (no internal setting key, no command).
pub fn command_line_words(text: &str) -> Option<String> {
    [
        "mfp-host",
        "(setting ",
        "--tenant",
        "--client-id",
        "--proxy",
        "--resolve",
    ]
    .iter()
    .map(|word| (*word).to_owned())
    .chain(
        SettingKey::ALL
            .iter()
            .filter(|key| key.as_str().contains(['-', '.']))
            .map(|key| key.as_str().to_owned()),
    )
    .find(|word| text.contains(word.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_is_a_command_on_the_command_line() {
        let remedy = Remedy::from(
            "Click [Open Authentication Page] (Properties > Connectivity > Protocols > SMTP Server > General) and sign in with the account that sends the email.",
        );
        assert_eq!(
            remedy.command_line(),
            "Run `mfp-host auth login` and sign in with the account that sends the email."
        );
        assert!(
            remedy
                .web_panel()
                .starts_with("Click [Open Authentication Page]")
        );
        assert_eq!(
            Remedy::from("Sign in again with [Open Authentication Page], then send again.")
                .command_line(),
            "Sign in again with `mfp-host auth login`, then send again."
        );
    }

    #[test]
    fn fields_and_values_become_keys_and_values() {
        let remedy = Remedy::from(
            "Leave it as it is (only [Port Number for receiving Email] may be changed), or set [Service Provider] to [Not Selected] first.",
        );
        assert_eq!(
            remedy.command_line(),
            "Leave it as it is (only `receive-port` may be changed), or run `mfp-host settings set service-provider not-selected` first."
        );
        assert_eq!(
            for_command_line("Set [Allow Guest Users to Edit [From:] Field] to [No]."),
            "Set `from.guest-edit` to `no`."
        );
    }

    #[test]
    fn every_phrase_leaves_no_web_panel_words() {
        for (web, cli) in PHRASEBOOK {
            assert_eq!(web_panel_words(cli), None, "{cli}");
            assert_eq!(command_line_words(web), None, "{web}");
        }
        assert_eq!(web_panel_words("Click [Apply]").as_deref(), Some("[Apply]"));
        assert_eq!(
            command_line_words("Set it (setting tenant)").as_deref(),
            Some("(setting ")
        );
    }

    #[test]
    fn a_record_keeps_the_command_line_words_only_when_they_do_not_follow() {
        let derived = Remedy::from("Click [Open Authentication Page].");
        use crate::json::{from_slice, to_string};
        let json = to_string(&derived);
        assert_eq!(json, r#""Click [Open Authentication Page].""#);
        assert_eq!(from_slice::<Remedy>(json.as_bytes()).unwrap(), derived);
        let each = Remedy::each("Check the proxy server of the device.", "Check --proxy.");
        let json = to_string(&each);
        assert_eq!(
            json,
            r#"{"web-panel":"Check the proxy server of the device.","command-line":"Check --proxy."}"#
        );
        assert_eq!(from_slice::<Remedy>(json.as_bytes()).unwrap(), each);
        // Other fields are ignored; one wording alone, or another type, is not a remedy.
        let more = r#"{"x":[1],"command-line":"Check --proxy.","web-panel":"Check the proxy server of the device."}"#;
        assert_eq!(from_slice::<Remedy>(more.as_bytes()).unwrap(), each);
        for bad in [
            r#"{"web-panel":"a"}"#,
            "1",
            "null",
            r#"{"web-panel":"a","command-line":null}"#,
        ] {
            assert_eq!(from_slice::<Remedy>(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn a_remedy_given_in_both_words_keeps_them() {
        let remedy = Remedy::each("Check the proxy server of the device.", "Check --proxy.");
        assert_eq!(remedy.web_panel(), "Check the proxy server of the device.");
        assert_eq!(remedy.command_line(), "Check --proxy.");
        assert_eq!(&*remedy, "Check the proxy server of the device.");
    }
}
