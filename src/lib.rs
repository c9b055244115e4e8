//! The mfp-smtp-oauth component: the "Exchange Online/Outlook.com" SMTP settings of a
//! multifunction printer. This file only binds the WIT world (`wit/`) to the plain Rust
//! modules, which hold every rule and are unit-tested natively.

pub mod capabilities;
pub mod diagnose;
pub mod error;
pub mod from_policy;
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
mod heap;
pub mod history;
pub mod json;
pub mod mailer;
pub mod mime;
pub mod oauth;
pub mod panel;
pub mod relay;
pub mod remedy;
pub mod settings;
pub mod signin;
pub mod smtp;
pub mod storage;
pub mod xoauth2;

#[cfg(test)]
mod service_tests;

/// The WIT bindings. Only built for wasm: natively, the core modules above are the API
/// (the export symbols of a component cannot be linked into a native library).
#[cfg(target_arch = "wasm32")]
mod wasm {
    use crate::{
        capabilities, diagnose, error, from_policy, history, mailer, oauth, panel, relay, settings,
        storage,
    };

    mod bindings {
        // `generate_all`: the world also imports `wasi:random/random` (from `wit/deps/`).
        wit_bindgen::generate!({ world: "device-panel", path: "wit", generate_all });
    }

    use bindings::exports::mfp::smtp_oauth::mailer as wit_mailer;
    use bindings::exports::mfp::smtp_oauth::panel::{self as wit_panel, Guest as PanelGuest};
    use bindings::exports::mfp::smtp_oauth::relay as wit_relay;
    use bindings::exports::mfp::smtp_oauth::signin as wit_signin;
    use bindings::mfp::smtp_oauth::relay_client as wit_relay_client;
    use bindings::mfp::smtp_oauth::{
        attachments as wit_files, config as wit_config, net as wit_net, store as wit_store,
        types as wit,
    };

    /// The `store` import as the core's [`storage::Storage`].
    struct HostStore;

    impl storage::Storage for HostStore {
        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, storage::StoreError> {
            wit_store::get(key).map_err(store_error)
        }

        fn commit(&self, writes: Vec<storage::Write>) -> Result<(), storage::StoreError> {
            wit_store::commit(&writes).map_err(store_error)
        }

        fn commit_if(
            &self,
            guards: Vec<storage::Guard>,
            writes: Vec<storage::Write>,
        ) -> Result<(), storage::StoreError> {
            wit_store::commit_if(&guards, &writes).map_err(store_error)
        }
    }

    fn store_error(err: wit_store::StoreError) -> storage::StoreError {
        match err {
            wit_store::StoreError::Unavailable(why) => storage::StoreError::Unavailable(why),
            wit_store::StoreError::Full => storage::StoreError::Full,
            wit_store::StoreError::InvalidKey(why) => storage::StoreError::InvalidKey(why),
            wit_store::StoreError::Conflict => storage::StoreError::Conflict,
            wit_store::StoreError::Other(why) => storage::StoreError::Other(why),
        }
    }

    fn panel_error_kind(kind: error::PanelErrorKind) -> wit::PanelErrorKind {
        use crate::error::PanelErrorKind as K;
        match kind {
            K::UnknownKey => wit::PanelErrorKind::UnknownKey,
            K::InvalidValue => wit::PanelErrorKind::InvalidValue,
            K::FixedByProvider => wit::PanelErrorKind::FixedByProvider,
            K::NotEnabledOnControlPanel => wit::PanelErrorKind::NotEnabledOnControlPanel,
            K::Storage => wit::PanelErrorKind::Storage,
        }
    }

    fn panel_error(err: error::PanelError) -> wit::PanelError {
        wit::PanelError {
            kind: panel_error_kind(err.kind),
            field: err.field,
            code: err.code.to_owned(),
            message: err.message,
            remedy: remedy(err.remedy),
            more: err
                .more
                .into_iter()
                .map(|e| wit::FieldRefusal {
                    kind: panel_error_kind(e.kind),
                    field: e.field,
                    code: e.code.to_owned(),
                    message: e.message,
                    remedy: remedy(e.remedy),
                })
                .collect(),
        }
    }

    fn remedy(r: crate::remedy::Remedy) -> wit::Remedy {
        let (web_panel, command_line) = r.into_parts();
        wit::Remedy {
            web_panel,
            command_line,
        }
    }

    fn severity(s: diagnose::Severity) -> wit::Severity {
        match s {
            diagnose::Severity::Info => wit::Severity::Info,
            diagnose::Severity::Warning => wit::Severity::Warning,
            diagnose::Severity::Error => wit::Severity::Error,
        }
    }

    fn diagnostic(d: diagnose::Diagnostic) -> wit::Diagnostic {
        wit::Diagnostic {
            code: d.code.to_owned(),
            severity: severity(d.severity),
            message: d.message,
            remedy: remedy(d.remedy),
            field: d.field.map(str::to_owned),
            fix: d.fix.map(|fix| wit::Fix {
                label: fix.label,
                changes: fix
                    .changes
                    .into_iter()
                    .map(|(key, value)| wit::SettingChange {
                        key: key.to_owned(),
                        value,
                    })
                    .collect(),
            }),
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
            now: u64,
        ) -> Result<wit::ApplyOutcome, wit::PanelError> {
            let origin = match origin {
                wit::Origin::WebPanel => settings::Origin::WebPanel,
                wit::Origin::ControlPanel => settings::Origin::ControlPanel,
            };
            let changes: Vec<(String, String)> =
                changes.into_iter().map(|c| (c.key, c.value)).collect();
            let outcome = panel::apply(&HostStore, origin, &changes, now).map_err(panel_error)?;
            Ok(wit::ApplyOutcome {
                settings: outcome.settings.into_iter().map(entry).collect(),
                notices: outcome.notices.into_iter().map(diagnostic).collect(),
                diagnostics: outcome.diagnostics.into_iter().map(diagnostic).collect(),
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

        fn history() -> Result<Vec<wit_panel::Event>, wit::PanelError> {
            let events =
                history::events(&HostStore).map_err(|e| panel_error(error::PanelError::from(e)))?;
            Ok(events.into_iter().map(event).collect())
        }
    }

    fn event(e: history::Event) -> wit_panel::Event {
        wit_panel::Event {
            kind: match e.kind {
                history::EventKind::SignIn => wit_panel::EventKind::SignIn,
                history::EventKind::Send => wit_panel::EventKind::Send,
                history::EventKind::ProviderReset => wit_panel::EventKind::ProviderReset,
                history::EventKind::RefreshFailed => wit_panel::EventKind::RefreshFailed,
                history::EventKind::Relayed => wit_panel::EventKind::Relayed,
            },
            at: e.at,
            succeeded: e.succeeded,
            summary: e.summary,
            diagnosis: e.diagnosis.map(|d| wit::Diagnostic {
                code: d.code,
                severity: severity(d.severity),
                message: d.message,
                remedy: remedy(d.remedy),
                field: d.field,
                fix: None,
            }),
            server_reply: e.server_reply,
            origin: e.origin.map(|o| match o {
                settings::Origin::WebPanel => wit::Origin::WebPanel,
                settings::Origin::ControlPanel => wit::Origin::ControlPanel,
            }),
        }
    }

    /// The `net` import as the core's HTTPS capability.
    struct HostHttp;

    impl capabilities::Http for HostHttp {
        fn send(
            &self,
            request: &crate::signin::HttpRequest,
        ) -> Result<capabilities::HttpReply, capabilities::NetFailure> {
            let request = wit_net::Request {
                method: match request.method {
                    crate::signin::HttpMethod::Get => wit_net::HttpMethod::Get,
                    crate::signin::HttpMethod::Post => wit_net::HttpMethod::Post,
                },
                url: request.url.clone(),
                headers: request.headers.clone(),
                body: request.body.clone(),
            };
            let response = wit_net::http_request(&request).map_err(net_failure)?;
            Ok(capabilities::HttpReply {
                status: response.status,
                headers: response.headers,
                body: response.body,
            })
        }

        fn authority(&self) -> String {
            wit_config::authority()
        }

        fn overrides(&self) -> capabilities::SigninOverrides {
            capabilities::SigninOverrides {
                tenant: wit_config::tenant_override(),
                client_id: wit_config::client_id_override(),
            }
        }
    }

    fn net_failure(err: wit_net::NetError) -> capabilities::NetFailure {
        use capabilities::NetFailure as F;
        match err {
            wit_net::NetError::Denied(what) => F::Denied(what),
            wit_net::NetError::Dns(what) => F::Dns(what),
            wit_net::NetError::Refused(what) => F::Refused(what),
            wit_net::NetError::Timeout => F::Timeout,
            wit_net::NetError::Tls(what) => F::Tls(what),
            wit_net::NetError::Closed => F::Closed,
            wit_net::NetError::TooLarge(n) => F::TooLarge(n),
            wit_net::NetError::Proxy(what) => F::Proxy(what),
            wit_net::NetError::Other(what) => F::Other(what),
        }
    }

    /// The `net` import's connections as the core's SMTP transport.
    struct HostSmtp;
    /// A connection and the timeout of the session's current stage, in milliseconds.
    struct HostConnection(wit_net::Connection, u32);

    impl capabilities::SmtpConnector for HostSmtp {
        type Stream = HostConnection;
        fn connect(
            &self,
            host: &str,
            port: u16,
        ) -> Result<HostConnection, capabilities::NetFailure> {
            wit_net::Connection::connect(host, port)
                .map(|c| HostConnection(c, u32::MAX))
                .map_err(net_failure)
        }
        fn ehlo_name(&self) -> String {
            wit_net::ehlo_name()
        }
        fn timeout_divisor(&self) -> u32 {
            wit_net::smtp_timeout_divisor()
        }
    }

    impl capabilities::SmtpStream for HostConnection {
        fn read(&mut self, max: u32) -> Result<Vec<u8>, capabilities::NetFailure> {
            self.0.read(max, self.1).map_err(net_failure)
        }
        fn write(&mut self, data: &[u8]) -> Result<(), capabilities::NetFailure> {
            self.0.write(data, self.1).map_err(net_failure)
        }
        fn start_tls(&mut self, server_name: &str) -> Result<(), capabilities::NetFailure> {
            self.0.start_tls(server_name, self.1).map_err(net_failure)
        }
        fn set_timeout(&mut self, timeout: std::time::Duration) {
            self.1 = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        }
    }

    /// The `attachments` import.
    struct HostFiles;

    impl capabilities::Attachments for HostFiles {
        fn info(&self, id: u32) -> Result<(String, u64), String> {
            wit_files::info(id)
                .map(|i| (i.file_name, i.size))
                .map_err(attachment_error)
        }
        fn read(&self, id: u32, offset: u64, max: u32) -> Result<Vec<u8>, String> {
            wit_files::read(id, offset, max).map_err(attachment_error)
        }
    }

    fn attachment_error(err: wit_files::AttachmentError) -> String {
        match err {
            wit_files::AttachmentError::NotFound(id) => format!("attachment {id} does not exist"),
            wit_files::AttachmentError::Io(why) => why,
        }
    }

    fn account(a: &crate::signin::Account) -> wit_signin::Account {
        let username = a
            .preferred_username
            .clone()
            .or_else(|| a.upn.clone())
            .unwrap_or_default();
        wit_signin::Account {
            upn: a.upn().unwrap_or(&username).to_owned(),
            username,
            email: a.email.clone(),
            tenant_id: a.tid.clone().unwrap_or_default(),
            personal: a.is_personal(),
        }
    }

    fn device_code(v: oauth::DeviceCodeView) -> wit_signin::DeviceCode {
        wit_signin::DeviceCode {
            user_code: v.user_code,
            verification_uri: v.verification_uri,
            expires_at: v.expires_at,
            interval: u32::try_from(v.interval).unwrap_or(u32::MAX),
            message: v.message,
            problem: v.problem.map(diagnostic),
        }
    }

    fn signin_error(f: oauth::SigninFailure) -> wit_signin::SigninError {
        use crate::signin::SigninErrorKind as K;
        use wit_signin::RefusalReason as R;
        match f {
            oauth::SigninFailure::Settings(d) => wit_signin::SigninError::Settings(diagnostic(d)),
            oauth::SigninFailure::SignInRequired(d) => {
                wit_signin::SigninError::SignInRequired(diagnostic(d))
            }
            oauth::SigninFailure::Unreachable(d) => {
                wit_signin::SigninError::Unreachable(diagnostic(d))
            }
            oauth::SigninFailure::Storage(d) => wit_signin::SigninError::Storage(diagnostic(d)),
            oauth::SigninFailure::Refused(kind, d) => {
                let reason = match kind {
                    K::Declined => R::Declined,
                    K::Expired => R::Expired,
                    K::BadVerificationCode => R::BadVerificationCode,
                    K::SignInAgain => R::SignInAgain,
                    K::ConditionalAccess => R::ConditionalAccess,
                    K::ConsentRequired => R::ConsentRequired,
                    K::MfaRequired => R::MfaRequired,
                    K::Configuration => R::Configuration,
                    K::Rejected | K::Unavailable => R::Rejected,
                    K::MalformedReply => R::MalformedReply,
                    K::UnsafeVerificationUri => R::UnsafeVerificationUri,
                    K::IdTokenRejected => R::IdTokenRejected,
                };
                wit_signin::SigninError::Refused(wit_signin::Refusal {
                    reason,
                    diagnosis: diagnostic(d),
                })
            }
        }
    }

    fn signed_in_state(s: oauth::SignedIn) -> wit_signin::SignedInState {
        wit_signin::SignedInState {
            account: account(&s.account),
            access_token_expires_at: s.access_token_expires_at,
            warnings: s.warnings.into_iter().map(diagnostic).collect(),
        }
    }

    impl wit_signin::Guest for Component {
        fn start(now: u64) -> Result<wit_signin::DeviceCode, wit_signin::SigninError> {
            oauth::start(&HostStore, &HostHttp, now)
                .map(device_code)
                .map_err(signin_error)
        }

        fn poll(now: u64) -> Result<wit_signin::PollStatus, wit_signin::SigninError> {
            Ok(
                match oauth::poll(&HostStore, &HostHttp, now).map_err(signin_error)? {
                    oauth::PollView::Pending(at) => wit_signin::PollStatus::Pending(at),
                    oauth::PollView::Unreachable {
                        next_poll_at,
                        problem,
                    } => wit_signin::PollStatus::PendingUnreachable(wit_signin::UnreachablePoll {
                        next_poll_at,
                        diagnosis: diagnostic(problem),
                    }),
                    oauth::PollView::SignedIn(a) => wit_signin::PollStatus::SignedIn(account(&a)),
                    oauth::PollView::Failed(d) => wit_signin::PollStatus::Failed(diagnostic(d)),
                },
            )
        }

        fn status(now: u64) -> Result<wit_signin::AuthState, wit_signin::SigninError> {
            Ok(
                match oauth::status(&HostStore, now).map_err(signin_error)? {
                    oauth::AuthState::SignedOut => wit_signin::AuthState::SignedOut,
                    oauth::AuthState::InProgress {
                        code,
                        still_signed_in,
                    } => wit_signin::AuthState::InProgress(wit_signin::PendingSignIn {
                        device_code: device_code(code),
                        still_signed_in: still_signed_in.map(signed_in_state),
                    }),
                    oauth::AuthState::SignedIn(s) => {
                        wit_signin::AuthState::SignedIn(signed_in_state(s))
                    }
                    oauth::AuthState::SignInFailed {
                        failure,
                        still_signed_in,
                    } => wit_signin::AuthState::SignInFailed(wit_signin::FailedSignIn {
                        diagnosis: wit::Diagnostic {
                            code: failure.code,
                            severity: wit::Severity::Error,
                            message: failure.message,
                            remedy: remedy(failure.remedy),
                            field: None,
                            fix: None,
                        },
                        failed_at: failure.failed_at,
                        still_signed_in: still_signed_in.map(signed_in_state),
                    }),
                },
            )
        }

        fn sign_out() -> Result<(), wit_signin::SigninError> {
            oauth::sign_out(&HostStore).map_err(signin_error)
        }

        fn cancel() -> Result<(), wit_signin::SigninError> {
            oauth::cancel(&HostStore).map_err(signin_error)
        }

        fn keep_alive(now: u64) -> Result<u64, wit_signin::SigninError> {
            oauth::keep_alive(&HostStore, &HostHttp, now).map_err(signin_error)
        }

        fn admin_consent() -> Result<wit_signin::ConsentStep, wit_signin::SigninError> {
            let c = oauth::admin_consent(&HostStore, &HostHttp).map_err(signin_error)?;
            Ok(wit_signin::ConsentStep {
                url: c.url,
                needed: c.needed,
                explanation: c.explanation,
            })
        }
    }

    /// A failed send as its `send-error` case: a retry names the next attempt and the
    /// most the component allows, so hosts print "attempt 2 of 3" without deciding it.
    fn send_error(f: mailer::SendFailure, attempt: u32) -> wit_mailer::SendError {
        let failure = wit_mailer::ServerFailure {
            diagnosis: diagnostic(f.diagnosis),
            server_reply: f.server_reply,
        };
        match (f.retry_after, f.kind) {
            (Some(after_seconds), _) => wit_mailer::SendError::RetryLater(wit_mailer::Retry {
                failure,
                after_seconds,
                next_attempt: attempt.saturating_add(1),
                max_attempts: f.max_attempts,
            }),
            (None, mailer::SendFailureKind::NotSent) => {
                wit_mailer::SendError::NotSent(failure.diagnosis)
            }
            (None, mailer::SendFailureKind::SignInRequired) => {
                wit_mailer::SendError::SignInRequired(failure.diagnosis)
            }
            (None, mailer::SendFailureKind::Failed) => wit_mailer::SendError::Failed(failure),
        }
    }

    impl wit_mailer::Guest for Component {
        fn send(
            message: wit_mailer::OutgoingMessage,
            now: u64,
        ) -> Result<wit_mailer::SendReport, wit_mailer::SendError> {
            let message = mailer::OutgoingMessage {
                to: message.to,
                from: message.from,
                user: match message.user {
                    wit_mailer::WalkUpUser::Unauthenticated => {
                        from_policy::WalkUpUser::Unauthenticated
                    }
                    wit_mailer::WalkUpUser::Guest => from_policy::WalkUpUser::Guest,
                    wit_mailer::WalkUpUser::AuthenticatedLdapSucceeded => {
                        from_policy::WalkUpUser::AuthenticatedLdapSucceeded
                    }
                    wit_mailer::WalkUpUser::AuthenticatedLdapFailed => {
                        from_policy::WalkUpUser::AuthenticatedLdapFailed
                    }
                },
                subject: message.subject,
                body: message.body,
                attachments: message.attachments,
                attempt: message.attempt.max(1),
            };
            // The component's only randomness (Message-ID, MIME boundary) comes from the
            // `wasi:random` import, so it needs no other WASI: a short answer is a host bug.
            let Ok(random) =
                <[u8; 32]>::try_from(bindings::wasi::random::random::get_random_bytes(32))
            else {
                return Err(wit_mailer::SendError::NotSent(diagnostic(
                    diagnose::Diagnostic::new(
                        "random-unavailable",
                        diagnose::Severity::Error,
                        "The device could not draw random numbers for the Message-ID.",
                        "Restart the device; report it if it persists.",
                    ),
                )));
            };
            match mailer::send(
                &HostStore, &HostHttp, &HostSmtp, &HostFiles, &message, random, now,
            ) {
                Ok(r) => Ok(wit_mailer::SendReport {
                    message_id: r.message_id,
                    accepted: r.accepted,
                    server_reply: r.server_reply,
                    size: r.size,
                }),
                Err(f) => Err(send_error(f, message.attempt)),
            }
        }
    }

    /// The device's connection the host granted the relay, as the core's [`relay::RelayClient`].
    struct HostRelayClient<'a>(&'a wit_relay_client::ClientConnection);

    fn millis(timeout: std::time::Duration) -> u32 {
        u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
    }

    impl relay::RelayClient for HostRelayClient<'_> {
        fn read(
            &mut self,
            max: u32,
            timeout: std::time::Duration,
        ) -> Result<Vec<u8>, capabilities::NetFailure> {
            self.0.read(max, millis(timeout)).map_err(net_failure)
        }
        fn write(
            &mut self,
            data: &[u8],
            timeout: std::time::Duration,
        ) -> Result<(), capabilities::NetFailure> {
            self.0.write(data, millis(timeout)).map_err(net_failure)
        }
        fn start_tls(
            &mut self,
            timeout: std::time::Duration,
        ) -> Result<(), capabilities::NetFailure> {
            self.0.start_tls(millis(timeout)).map_err(net_failure)
        }
        fn now(&self) -> u64 {
            wit_relay_client::now()
        }
    }

    fn relay_config(config: wit_relay::RelayConfig) -> relay::RelayConfig {
        relay::RelayConfig {
            listen: config.listen,
            allow: config.allow,
            password: config.password.map(crate::signin::Secret::new),
            tls_offered: config.tls_offered,
        }
    }

    impl wit_relay::Guest for Component {
        fn check_config(config: wit_relay::RelayConfig) -> Result<(), wit::PanelError> {
            relay::check(&relay_config(config))
                .map(|_| ())
                .map_err(panel_error)
        }

        fn serve_client(
            client: &wit_relay_client::ClientConnection,
            peer: String,
            config: wit_relay::RelayConfig,
            open_connections: u32,
        ) -> wit_relay::SessionSummary {
            let summary = relay::serve_client(
                &HostStore,
                &HostHttp,
                &HostSmtp,
                &mut HostRelayClient(client),
                &peer,
                &relay_config(config),
                open_connections,
            );
            wit_relay::SessionSummary {
                refused_at_connect: summary.refused_at_connect,
                relayed: summary.relayed,
                refused: summary.refused,
            }
        }
    }

    bindings::export!(Component with_types_in bindings);
}
