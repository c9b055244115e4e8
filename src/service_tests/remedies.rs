//! Every remedy the panel calls give is worded for each surface: no button, field label or
//! page of the web panel in the command line's words, and no command or setting key in the
//! web panel's (issue: "remedies in each surface's own words").

use mfp_fakes::Scenario;

use super::rig::Rig;
use crate::error::PanelError;
use crate::panel;
use crate::remedy::{Remedy, command_line_words, web_panel_words};
use crate::settings::{Origin, SettingKey};

fn check(what: &str, remedy: &Remedy, problems: &mut Vec<String>) {
    if let Some(words) = web_panel_words(remedy.command_line()) {
        problems.push(format!(
            "{what}: the command line's remedy says {words:?}: {}",
            remedy.command_line()
        ));
    }
    if let Some(words) = command_line_words(remedy.web_panel()) {
        problems.push(format!(
            "{what}: the web panel's remedy says {words:?}: {}",
            remedy.web_panel()
        ));
    }
}

fn refusals(err: &PanelError) -> impl Iterator<Item = &PanelError> {
    std::iter::once(err).chain(err.more.iter())
}

#[test]
fn every_refusal_and_diagnosis_of_the_settings_speaks_each_surfaces_words() {
    let mut problems = Vec::new();
    let mut seen = 0;
    for exchange in [false, true] {
        let rig = Rig::new(Scenario::default());
        if exchange {
            rig.exchange_online();
        }
        // Invalid values of every key, from the web panel; every key from the control panel.
        for key in SettingKey::ALL {
            for value in [
                "",
                "not a value\u{1}",
                "99999",
                "remotely-authenticated-user",
            ] {
                for origin in [Origin::WebPanel, Origin::ControlPanel] {
                    let changes = [(key.as_str().to_owned(), value.to_owned())];
                    if let Err(err) = panel::apply(&rig.store, origin, &changes, 1) {
                        for refusal in refusals(&err).filter(|r| r.code != "unknown-key") {
                            seen += 1;
                            check(refusal.code, &refusal.remedy, &mut problems);
                        }
                    }
                }
            }
        }
        // (An unknown key reaches the device only from a script, through the API or the
        // command line, so its remedy lists the keys in both words: it is not checked.)
        // Notices of an Apply, and the warnings of risky settings.
        let risky = [
            ("login-credentials", "remotely-authenticated-user"),
            ("from.guest-edit", "yes"),
            ("from.edit-without-auth", "yes"),
            ("from.auth-edit-on-ldap-success", "yes"),
        ];
        for (key, value) in risky {
            if let Ok(outcome) = panel::apply(
                &rig.store,
                Origin::WebPanel,
                &[(key.to_owned(), value.to_owned())],
                1,
            ) {
                for d in outcome.notices.iter().chain(&outcome.diagnostics) {
                    seen += 1;
                    check(d.code, &d.remedy, &mut problems);
                }
            }
        }
        for d in panel::diagnostics(&rig.store).unwrap() {
            seen += 1;
            check(d.code, &d.remedy, &mut problems);
        }
    }
    assert!(seen > 20, "only {seen} remedies seen");
    problems.sort();
    problems.dedup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
