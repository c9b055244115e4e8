//! The mfp-smtp-oauth component: the "Exchange Online/Outlook.com" SMTP settings of a
//! multifunction printer. This file only binds the WIT world (`wit/`) to the plain Rust
//! modules, which hold every rule and are unit-tested natively.

pub mod diagnose;
pub mod error;
pub mod mime;
pub mod panel;
pub mod settings;
pub mod signin;
pub mod smtp;
pub mod storage;
pub mod xoauth2;

/// The WIT bindings. Only built for wasm: natively, the core modules above are the API
/// (the export symbols of a component cannot be linked into a native library).
#[cfg(target_arch = "wasm32")]
mod wasm {
    use crate::{diagnose, error, panel, settings, storage};

    mod bindings {
        wit_bindgen::generate!({ world: "device-panel", path: "wit" });
    }

    use bindings::exports::mfp::smtp_oauth::panel::Guest as PanelGuest;
    use bindings::mfp::smtp_oauth::{store as wit_store, types as wit};

    /// The `store` import as the core's [`storage::Storage`].
    struct HostStore;

    impl storage::Storage for HostStore {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, storage::StoreError> {
            wit_store::get(key).map_err(store_error)
        }

        fn commit(&self, writes: Vec<storage::Write>) -> Result<(), storage::StoreError> {
            wit_store::commit(&writes).map_err(store_error)
        }
    }

    fn store_error(err: wit_store::StoreError) -> storage::StoreError {
        match err {
            wit_store::StoreError::Unavailable(why) => storage::StoreError::Unavailable(why),
            wit_store::StoreError::Full => storage::StoreError::Full,
            wit_store::StoreError::InvalidKey(why) => storage::StoreError::InvalidKey(why),
            wit_store::StoreError::Other(why) => storage::StoreError::Other(why),
        }
    }

    fn panel_error(err: error::PanelError) -> wit::PanelError {
        use crate::error::PanelErrorKind as K;
        wit::PanelError {
            kind: match err.kind {
                K::UnknownKey => wit::PanelErrorKind::UnknownKey,
                K::InvalidValue => wit::PanelErrorKind::InvalidValue,
                K::FixedByProvider => wit::PanelErrorKind::FixedByProvider,
                K::NotEnabledOnControlPanel => wit::PanelErrorKind::NotEnabledOnControlPanel,
                K::Storage => wit::PanelErrorKind::Storage,
            },
            field: err.field,
            code: err.code.to_owned(),
            message: err.message,
            remedy: err.remedy,
        }
    }

    fn diagnostic(d: diagnose::Diagnostic) -> wit::Diagnostic {
        wit::Diagnostic {
            code: d.code.to_owned(),
            severity: match d.severity {
                diagnose::Severity::Info => wit::Severity::Info,
                diagnose::Severity::Warning => wit::Severity::Warning,
                diagnose::Severity::Error => wit::Severity::Error,
            },
            message: d.message,
            remedy: d.remedy,
        }
    }

    fn entry(e: panel::Entry) -> wit::SettingEntry {
        wit::SettingEntry {
            key: e.key.to_owned(),
            value: e.value,
            locked: e.locked,
        }
    }

    fn provider(p: settings::ServiceProvider) -> wit::ServiceProvider {
        match p {
            settings::ServiceProvider::NotSelected => wit::ServiceProvider::NotSelected,
            settings::ServiceProvider::ExchangeOnline => wit::ServiceProvider::ExchangeOnline,
        }
    }

    fn credentials(c: settings::LoginCredentials) -> wit::LoginCredentials {
        match c {
            settings::LoginCredentials::System => wit::LoginCredentials::System,
            settings::LoginCredentials::RemotelyAuthenticatedUser => {
                wit::LoginCredentials::RemotelyAuthenticatedUser
            }
        }
    }

    struct Component;

    impl PanelGuest for Component {
        fn settings() -> Result<Vec<wit::SettingEntry>, wit::PanelError> {
            let entries = panel::settings(&HostStore).map_err(panel_error)?;
            Ok(entries.into_iter().map(entry).collect())
        }

        fn apply(
            origin: wit::Origin,
            changes: Vec<wit::SettingChange>,
        ) -> Result<wit::ApplyOutcome, wit::PanelError> {
            let origin = match origin {
                wit::Origin::WebPanel => settings::Origin::WebPanel,
                wit::Origin::ControlPanel => settings::Origin::ControlPanel,
            };
            let changes: Vec<(String, String)> =
                changes.into_iter().map(|c| (c.key, c.value)).collect();
            let outcome = panel::apply(&HostStore, origin, &changes).map_err(panel_error)?;
            Ok(wit::ApplyOutcome {
                settings: outcome.settings.into_iter().map(entry).collect(),
                notices: outcome.notices.into_iter().map(diagnostic).collect(),
            })
        }

        fn control_panel_view() -> Result<wit::ControlPanelScreen, wit::PanelError> {
            let v = panel::control_panel_view(&HostStore).map_err(panel_error)?;
            Ok(wit::ControlPanelScreen {
                service_provider: provider(v.service_provider),
                smtp_server: v.smtp_server,
                send_port: v.send_port,
                receive_port: v.receive_port,
                login_credentials: credentials(v.login_credentials),
                smtp_edits_enabled: v.smtp_edits_enabled,
                notice: v.notice,
            })
        }

        fn diagnostics() -> Result<Vec<wit::Diagnostic>, wit::PanelError> {
            let found = panel::diagnostics(&HostStore).map_err(panel_error)?;
            Ok(found.into_iter().map(diagnostic).collect())
        }
    }

    bindings::export!(Component with_types_in bindings);
}
