//! One classification of every failure a front end reports: a stable code, a message and a
//! remedy, and what kind of failure it is, which fixes both the command line's exit status
//! and the API's HTTP status. `error[CODE]: message` + `remedy: …` on stderr, or
//! `{"error": {code, message, remedy, field?}}` over HTTP, carry the same three texts, the
//! remedy in each one's own words.

use crate::bindings::signin::SigninError;
use crate::bindings::types::{PanelErrorKind, Remedy};
use crate::device::DeviceError;
use crate::runtime::CallError;

/// What kind of failure this is; each kind has one exit status and one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The request itself is malformed (bad flags, bad JSON); nothing was touched.
    /// Exit 2, HTTP 400.
    BadInput,
    /// The device's rules refused the change (a field fixed by the provider, an edit the
    /// control panel may not make). Exit 1, HTTP 409.
    Refused,
    /// The component refused a setting change as malformed: an unknown key or an invalid
    /// value. Nothing was changed. Exit 2, as any malformed input on the command line; HTTP
    /// 409, as every panel refusal over the API (web/API.md).
    MalformedSetting,
    /// A sign-in or a send failed and the component diagnosed why. Exit 1, HTTP 422.
    Diagnosed,
    /// The device itself failed: the state dir, its storage, the component, the sandbox,
    /// the network configuration or the output. Exit 3, HTTP 500.
    DeviceFault,
}

impl FailureKind {
    /// The command line's exit status (DESIGN.md, "Host contract").
    pub fn exit_status(self) -> u8 {
        match self {
            Self::BadInput | Self::MalformedSetting => 2,
            Self::Refused | Self::Diagnosed => 1,
            Self::DeviceFault => 3,
        }
    }

    /// The JSON API's HTTP status (web/API.md).
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadInput => 400,
            Self::Refused | Self::MalformedSetting => 409,
            Self::Diagnosed => 422,
            Self::DeviceFault => 500,
        }
    }
}

/// A failure as both front ends report it.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// Stable machine-readable code, e.g. `smtp-server-fixed`.
    pub code: String,
    pub message: String,
    /// In each surface's words: the component's remedies come worded for both.
    pub remedy: Remedy,
    /// The setting or request field the failure is about, when there is one.
    pub field: Option<String>,
    /// For a failed send: the server's reply (`None` when no server answered). `None` here
    /// means the failure is not a send's.
    pub server_reply: Option<Option<String>>,
    /// The other refused fields of the same Apply (the component refuses every invalid
    /// field of one Apply at once), each with its own field, code, message and remedy.
    pub also: Vec<Failure>,
}

impl Failure {
    pub fn new(
        kind: FailureKind,
        code: &str,
        message: impl Into<String>,
        remedy: impl Into<Remedy>,
    ) -> Self {
        Self {
            kind,
            code: code.into(),
            message: sentence(message.into()),
            remedy: remedy.into(),
            field: None,
            server_reply: None,
            also: Vec::new(),
        }
    }

    /// Malformed input: nothing was touched.
    pub fn bad_input(code: &str, message: impl Into<String>, remedy: impl Into<Remedy>) -> Self {
        Self::new(FailureKind::BadInput, code, message, remedy)
    }

    /// The device (or the process around it) failed.
    pub fn device_fault(code: &str, message: impl Into<String>, remedy: impl Into<Remedy>) -> Self {
        Self::new(FailureKind::DeviceFault, code, message, remedy)
    }

    /// The same failure, about `field`.
    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Output could not be written (a closed pipe, a full disk).
    pub fn output(err: std::io::Error) -> Self {
        Self::device_fault(
            "output-failed",
            format!("Could not write the output: {err}"),
            "Check where standard output goes.",
        )
    }
}

/// `text` with its first letter in upper case: a message is a sentence, also when it
/// starts with text the host did not write (an error of the sandbox or of a dependency).
fn sentence(text: String) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) if first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        _ => text,
    }
}

impl From<DeviceError> for Failure {
    fn from(err: DeviceError) -> Self {
        let kind = match &err {
            DeviceError::Refused(e) => match e.kind {
                PanelErrorKind::UnknownKey | PanelErrorKind::InvalidValue => {
                    FailureKind::MalformedSetting
                }
                PanelErrorKind::FixedByProvider | PanelErrorKind::NotEnabledOnControlPanel => {
                    FailureKind::Refused
                }
                PanelErrorKind::Storage => FailureKind::DeviceFault,
            },
            DeviceError::SigninFailed(SigninError::Storage(_)) => FailureKind::DeviceFault,
            DeviceError::SigninFailed(_) | DeviceError::SendFailed(_) => FailureKind::Diagnosed,
            DeviceError::Sandbox(_)
            | DeviceError::StateDir { .. }
            | DeviceError::NetConfig(_)
            | DeviceError::Component { .. } => FailureKind::DeviceFault,
        };
        if let DeviceError::Sandbox(e) = &err {
            let what = match e {
                CallError::DeadlineExceeded(_) => "deadline",
                CallError::MemoryLimit(_) => "memory",
                CallError::Trap(_) => "trap",
                CallError::Instantiate(_) => "instantiate",
            };
            tracing::warn!(kind = what, "a component call failed: {e}");
        }
        let (code, message, remedy) = err.diagnosis();
        let mut failure = Self::new(kind, &code, message, remedy);
        match err {
            DeviceError::Refused(e) => {
                failure.field = e.field;
                failure.also = e
                    .more
                    .into_iter()
                    .map(|more| {
                        let mut other = Self::new(kind, &more.code, more.message, more.remedy);
                        other.field = more.field;
                        other
                    })
                    .collect();
            }
            DeviceError::SendFailed(e) => {
                failure.server_reply = Some(e.server_reply().map(str::to_owned));
                failure.field = e.diagnosis().field.clone();
            }
            _ => {}
        }
        failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::PanelError;

    fn refused(kind: PanelErrorKind) -> Failure {
        Failure::from(DeviceError::Refused(PanelError {
            kind,
            field: Some("receive-port".into()),
            code: "some-code".into(),
            message: "Refused.".into(),
            remedy: "Do something else.".into(),
            more: Vec::new(),
        }))
    }

    #[test]
    fn every_message_starts_with_a_capital_letter() {
        let failure = Failure::from(DeviceError::Sandbox(CallError::Trap(
            "unreachable executed".into(),
        )));
        assert!(
            failure.message.starts_with("The component trapped"),
            "{failure:?}"
        );
        assert_eq!(
            Failure::bad_input("usage", "ünicode first", "").message,
            "Ünicode first"
        );
        assert_eq!(
            Failure::bad_input("usage", "--flag x", "").message,
            "--flag x"
        );
    }

    #[test]
    fn a_malformed_setting_is_bad_usage_on_the_command_line_and_a_409_over_the_api() {
        for kind in [PanelErrorKind::UnknownKey, PanelErrorKind::InvalidValue] {
            let failure = refused(kind);
            assert_eq!(
                (failure.kind.exit_status(), failure.kind.http_status()),
                (2, 409),
                "{kind:?}"
            );
            assert_eq!(failure.field.as_deref(), Some("receive-port"));
        }
        for kind in [
            PanelErrorKind::FixedByProvider,
            PanelErrorKind::NotEnabledOnControlPanel,
        ] {
            let failure = refused(kind);
            assert_eq!(
                (failure.kind.exit_status(), failure.kind.http_status()),
                (1, 409),
                "{kind:?}"
            );
        }
        let failure = refused(PanelErrorKind::Storage);
        assert_eq!(
            (failure.kind.exit_status(), failure.kind.http_status()),
            (3, 500)
        );
    }
}
