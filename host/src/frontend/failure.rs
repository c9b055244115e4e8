//! One classification of every failure a front end reports: a stable code, a message and a
//! remedy, and what kind of failure it is, which fixes both the command line's exit status
//! and the API's HTTP status. `error[CODE]: message` + `remedy: …` on stderr, or
//! `{"error": {code, message, remedy, field?}}` over HTTP, carry the same three texts.

use crate::bindings::signin::SigninError;
use crate::bindings::types::PanelErrorKind;
use crate::device::DeviceError;
use crate::runtime::CallError;

/// What kind of failure this is; each kind has one exit status and one HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The request itself is malformed (bad flags, bad JSON); nothing was touched.
    /// Exit 2, HTTP 400.
    BadInput,
    /// The device's rules refused the change (a locked field, a bad value). Exit 1, HTTP 409.
    Refused,
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
            Self::BadInput => 2,
            Self::Refused | Self::Diagnosed => 1,
            Self::DeviceFault => 3,
        }
    }

    /// The JSON API's HTTP status (web/API.md).
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadInput => 400,
            Self::Refused => 409,
            Self::Diagnosed => 422,
            Self::DeviceFault => 500,
        }
    }
}

/// A failure as both front ends report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailureKind,
    /// Stable machine-readable code, e.g. `smtp-server-fixed`.
    pub code: String,
    pub message: String,
    pub remedy: String,
    /// The setting or request field the failure is about, when there is one.
    pub field: Option<String>,
    /// For a failed send: the server's reply (`None` when no server answered). `None` here
    /// means the failure is not a send's.
    pub server_reply: Option<Option<String>>,
}

impl Failure {
    pub fn new(
        kind: FailureKind,
        code: &str,
        message: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            code: code.into(),
            message: message.into(),
            remedy: remedy.into(),
            field: None,
            server_reply: None,
        }
    }

    /// Malformed input: nothing was touched.
    pub fn bad_input(code: &str, message: impl Into<String>, remedy: impl Into<String>) -> Self {
        Self::new(FailureKind::BadInput, code, message, remedy)
    }

    /// The device (or the process around it) failed.
    pub fn device_fault(code: &str, message: impl Into<String>, remedy: impl Into<String>) -> Self {
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
            format!("could not write the output: {err}"),
            "Check where standard output goes.",
        )
    }
}

impl From<DeviceError> for Failure {
    fn from(err: DeviceError) -> Self {
        let kind = match &err {
            DeviceError::Refused(e) if e.kind == PanelErrorKind::Storage => {
                FailureKind::DeviceFault
            }
            DeviceError::SigninFailed(SigninError::Storage(_)) => FailureKind::DeviceFault,
            DeviceError::Refused(_) => FailureKind::Refused,
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
            DeviceError::Refused(e) => failure.field = e.field,
            DeviceError::SendFailed(e) => {
                failure.server_reply = Some(e.server_reply().map(str::to_owned));
                failure.field = e.diagnosis().field.clone();
            }
            _ => {}
        }
        failure
    }
}
