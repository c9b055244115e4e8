//! The panel operations the component exports, written over the [`Storage`] trait so the
//! very same code runs inside the component and natively (tests, benchmarks).

use crate::diagnose::{self, Diagnostic};
use crate::error::PanelError;
use crate::history;
use crate::settings::rules::{self, web_panel_lock};
use crate::settings::{LoginCredentials, Origin, ServiceProvider, SettingKey, Settings};
use crate::storage::{self, Storage};

/// One setting as a panel shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: &'static str,
    pub value: String,
    pub locked: Option<String>,
}

/// An accepted Apply as the caller sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub settings: Vec<Entry>,
    pub notices: Vec<Diagnostic>,
    /// Every finding about the applied settings, as [`diagnostics`] answers after it.
    pub diagnostics: Vec<Diagnostic>,
}

/// What the touch panel shows (S5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControlPanelView {
    pub service_provider: ServiceProvider,
    pub smtp_server: String,
    pub send_port: u16,
    pub receive_port: u16,
    pub login_credentials: LoginCredentials,
    pub smtp_edits_enabled: bool,
    pub notice: Option<String>,
}

/// Every setting in display order, with its web-panel lock.
pub fn entries(settings: &Settings) -> Vec<Entry> {
    SettingKey::ALL
        .into_iter()
        .map(|key| Entry {
            key: key.as_str(),
            value: settings.value_text(key),
            locked: web_panel_lock(settings, key),
        })
        .collect()
}

pub fn settings(storage: &impl Storage) -> Result<Vec<Entry>, PanelError> {
    Ok(entries(&storage::load_settings(storage)?))
}

/// One Apply at `now` (Unix seconds): the rules decide, then the new settings (and, on
/// S4, the deletion of the OAuth grant with its entry in the history) go to the store in
/// one atomic commit.
pub fn apply(
    storage: &impl Storage,
    origin: Origin,
    changes: &[(String, String)],
    now: u64,
) -> Result<ApplyOutcome, PanelError> {
    let recorded = history::Recorded::new(storage, None);
    // Read, decide, and commit only if no other Apply landed meanwhile (else decide again).
    storage::update_settings(&recorded, |current| {
        let applied = rules::apply(current, origin, changes)?;
        let mut writes = Vec::new();
        if applied.settings != *current || applied.discard_grant {
            writes.push(storage::settings_write(&applied.settings));
            writes.push(storage::smtp_destination_write(&applied.settings));
            if applied.discard_grant {
                writes.extend(storage::grant_deletions());
            }
        }
        let had_grant = storage::has_grant(storage)?;
        recorded.set(
            applied
                .discard_grant
                .then(|| reset_event(storage, origin, &applied, had_grant, now)),
        );
        let signed_in = had_grant && !applied.discard_grant;
        let outcome = ApplyOutcome {
            settings: entries(&applied.settings),
            notices: applied.notices,
            diagnostics: findings(storage, &applied.settings, signed_in)?,
        };
        Ok((outcome, writes))
    })
}

/// The history entry of an Apply that left Exchange Online (S4): from which panel, what
/// was typed, and who was signed out.
fn reset_event(
    storage: &impl Storage,
    origin: Origin,
    applied: &rules::Applied,
    had_grant: bool,
    now: u64,
) -> history::Event {
    let how = match origin {
        Origin::ControlPanel => format!(
            "A server name ({}) was typed on the control panel, so [Service Provider] is now [Not Selected]",
            applied.settings.smtp_server
        ),
        Origin::WebPanel => {
            "[Service Provider] was changed to [Not Selected] on the web panel".to_owned()
        }
    };
    let account = storage
        .get(storage::ACCOUNT_KEY)
        .ok()
        .flatten()
        .and_then(|bytes| {
            storage::decode::<crate::signin::Account>(storage::ACCOUNT_KEY, &bytes).ok()
        });
    let who = match account.as_ref().and_then(|a| a.upn()) {
        Some(upn) if had_grant => format!("; {upn} was signed out."),
        _ if had_grant => "; the device was signed out.".to_owned(),
        _ => "; nobody was signed in.".to_owned(),
    };
    let event = history::Event::new(
        history::EventKind::ProviderReset,
        now,
        true,
        format!("{how}{who}"),
    )
    .with_origin(origin);
    match applied
        .notices
        .iter()
        .find(|n| n.code == "provider-reset-by-control-panel")
    {
        Some(notice) => event.with_diagnosis(notice),
        None => event,
    }
}

/// S5: under Exchange Online the control panel shows the server name blank and locks
/// its other SMTP fields.
pub fn control_panel_view(storage: &impl Storage) -> Result<ControlPanelView, PanelError> {
    let s = storage::load_settings(storage)?;
    let exchange = s.is_exchange_online();
    Ok(ControlPanelView {
        service_provider: s.service_provider,
        smtp_server: if exchange { String::new() } else { s.smtp_server.clone() },
        send_port: s.send_port,
        receive_port: s.receive_port,
        login_credentials: s.login_credentials,
        smtp_edits_enabled: !exchange,
        notice: exchange.then(|| {
            "Exchange Online/Outlook.com is set up on the web panel. Entering a server name here changes [Service Provider] to [Not Selected].".to_owned()
        }),
    })
}

/// Every current finding: the settings' (S6, S7, S8) and the signed-in account's (S9: the
/// Device Email Address must be the UPN).
pub fn diagnostics(storage: &impl Storage) -> Result<Vec<Diagnostic>, PanelError> {
    let s = storage::load_settings(storage)?;
    findings(storage, &s, storage::has_grant(storage)?)
}

/// The findings about `s`, with the stored account's S9 warning while one is signed in.
fn findings(
    storage: &impl Storage,
    s: &Settings,
    signed_in: bool,
) -> Result<Vec<Diagnostic>, PanelError> {
    let mut found = diagnose::diagnostics(s, signed_in);
    let account = if signed_in {
        storage.get(storage::ACCOUNT_KEY)?.and_then(|bytes| {
            storage::decode::<crate::signin::Account>(storage::ACCOUNT_KEY, &bytes).ok()
        })
    } else {
        None
    };
    if let Some(warning) = account.and_then(|a| a.upn_warning(&s.device_email)) {
        found.push(warning);
        found.sort_by(|a, b| b.severity.cmp(&a.severity));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{GRANT_KEYS, MemoryStorage, Write};

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    }

    #[test]
    fn refused_apply_persists_nothing() {
        let storage = MemoryStorage::default();
        apply(
            &storage,
            Origin::WebPanel,
            &pairs(&[("receive-port", "26")]),
            0,
        )
        .unwrap();
        let err = apply(
            &storage,
            Origin::WebPanel,
            &pairs(&[("receive-port", "27"), ("send-port", "0")]),
            0,
        )
        .unwrap_err();
        assert_eq!(err.code, "port-out-of-range");
        assert_eq!(storage::load_settings(&storage).unwrap().receive_port, 26);
    }

    #[test]
    fn provider_reset_deletes_the_grant_in_the_same_commit() {
        let storage = MemoryStorage::default();
        apply(
            &storage,
            Origin::WebPanel,
            &pairs(&[("service-provider", "exchange-online")]),
            0,
        )
        .unwrap();
        let grant: Vec<Write> = GRANT_KEYS
            .iter()
            .map(|k| ((*k).into(), Some(b"secret".to_vec())))
            .collect();
        storage.commit(grant).unwrap();
        assert!(storage::has_grant(&storage).unwrap());
        apply(
            &storage,
            Origin::ControlPanel,
            &pairs(&[("smtp-server", "mail.example.com")]),
            0,
        )
        .unwrap();
        assert!(!storage::has_grant(&storage).unwrap());
        assert!(GRANT_KEYS.iter().all(|k| storage.get(k).unwrap().is_none()));
    }

    #[test]
    fn control_panel_view_blanks_the_server_under_exchange() {
        let storage = MemoryStorage::default();
        apply(
            &storage,
            Origin::WebPanel,
            &pairs(&[("smtp-server", "mail.example.com")]),
            0,
        )
        .unwrap();
        assert_eq!(
            control_panel_view(&storage).unwrap().smtp_server,
            "mail.example.com"
        );
        apply(
            &storage,
            Origin::WebPanel,
            &pairs(&[("service-provider", "exchange-online")]),
            0,
        )
        .unwrap();
        let view = control_panel_view(&storage).unwrap();
        assert_eq!(view.smtp_server, "");
        assert!(!view.smtp_edits_enabled && view.notice.is_some());
    }

    #[test]
    fn an_apply_answers_with_the_findings_that_follow_and_their_one_step_fixes() {
        let storage = MemoryStorage::default();
        let outcome = apply(
            &storage,
            Origin::WebPanel,
            &pairs(&[
                ("service-provider", "exchange-online"),
                ("from.guest-edit", "yes"),
            ]),
            0,
        )
        .unwrap();
        assert_eq!(outcome.diagnostics, diagnostics(&storage).unwrap());
        let risk = outcome
            .diagnostics
            .iter()
            .find(|d| d.code == "send-as-denied-risk")
            .expect("S7 warning");
        assert_eq!(risk.field, Some("from.guest-edit"));
        let fix = risk.fix.clone().expect("a one-step fix");
        assert_eq!(fix.changes, vec![("from.guest-edit", "no".to_owned())]);

        // Applying the fix as offered clears the finding.
        let changes: Vec<(String, String)> = fix
            .changes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let fixed = apply(&storage, Origin::WebPanel, &changes, 0).unwrap();
        assert!(
            fixed
                .diagnostics
                .iter()
                .all(|d| d.code != "send-as-denied-risk"),
            "{:?}",
            fixed.diagnostics
        );
    }
}
