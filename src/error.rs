//! The refusal every panel call can return: typed by kind, naming the field, with a
//! stable code, a message and a remedy (DESIGN.md, "Conventions").

use crate::remedy::Remedy;
use crate::storage::StoreError;

/// What kind of refusal; mirrors `panel-error-kind` in `wit/types.wit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanelErrorKind {
    UnknownKey,
    InvalidValue,
    FixedByProvider,
    NotEnabledOnControlPanel,
    Storage,
}

/// A refused panel call. A refused Apply changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PanelError {
    pub kind: PanelErrorKind,
    /// The setting key that was refused, when one was.
    pub field: Option<String>,
    pub code: &'static str,
    pub message: String,
    pub remedy: Remedy,
    /// The other refusals of the same Apply, one per field, in the order the fields
    /// were checked: an administrator sees every invalid field at once.
    pub more: Vec<PanelError>,
}

impl PanelError {
    pub fn new(
        kind: PanelErrorKind,
        field: Option<&str>,
        code: &'static str,
        message: impl Into<String>,
        remedy: impl Into<Remedy>,
    ) -> Self {
        Self {
            kind,
            field: field.map(str::to_owned),
            code,
            message: message.into(),
            remedy: remedy.into(),
            more: Vec::new(),
        }
    }

    /// One refusal carrying all of `refusals` (the first, with the rest in `more`), or
    /// `None` when there is none.
    pub fn all(mut refusals: Vec<PanelError>) -> Option<Self> {
        if refusals.is_empty() {
            return None;
        }
        let mut first = refusals.remove(0);
        first.more.extend(refusals);
        Some(first)
    }

    /// This refusal and the others of its Apply, in order.
    pub fn each(&self) -> impl Iterator<Item = &PanelError> {
        std::iter::once(self).chain(self.more.iter())
    }

    /// A malformed value for `field`.
    pub fn invalid(
        field: &str,
        code: &'static str,
        message: impl Into<String>,
        remedy: impl Into<Remedy>,
    ) -> Self {
        Self::new(
            PanelErrorKind::InvalidValue,
            Some(field),
            code,
            message,
            remedy,
        )
    }
}

impl From<StoreError> for PanelError {
    fn from(err: StoreError) -> Self {
        let remedy = match err {
            StoreError::Full => "Free space on the device's storage, then apply again.",
            StoreError::Corrupt(_) => {
                "Restore the device's settings from a backup or reset them, then apply again."
            }
            // Nothing is lost yet: the newer firmware reads it.
            StoreError::WrittenByNewer { .. } => {
                "Install the newer firmware that wrote this state again (or a later one). Only if that is not possible, reset the settings and sign in again: the stored settings and sign-in are then lost."
            }
            _ => "Try again. If it keeps failing, restart the device and check its storage.",
        };
        let code = match err {
            StoreError::WrittenByNewer { .. } => "storage-written-by-newer-firmware",
            _ => "storage-failed",
        };
        PanelError::new(
            PanelErrorKind::Storage,
            None,
            code,
            format!("The device's settings storage failed: {err}. Nothing was changed."),
            remedy,
        )
    }
}

impl From<StoreError> for crate::diagnose::Diagnostic {
    /// A storage failure as the sign-in and send services report it.
    fn from(err: StoreError) -> Self {
        let e = PanelError::from(err);
        crate::diagnose::Diagnostic::new(
            e.code,
            crate::diagnose::Severity::Error,
            e.message,
            e.remedy,
        )
    }
}
