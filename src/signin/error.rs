//! Why a sign-in or a token refresh failed: typed by what the caller must do about it,
//! with a stable code, a message and a remedy (DESIGN.md, "Conventions"). Messages may
//! quote Microsoft's error description, never a token or a device code.

use crate::diagnose::{Diagnostic, Severity};
use crate::remedy::Remedy;

/// What kind of failure; each asks something different of the caller or the administrator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigninErrorKind {
    /// The user declined the request in the browser.
    Declined,
    /// The code expired before sign-in completed (client-side or as the server said).
    Expired,
    /// The server does not know the device code.
    BadVerificationCode,
    /// The grant is no longer valid (expired after idling, revoked, password changed):
    /// the account must sign in again.
    SignInAgain,
    /// A Conditional Access policy refused the sign-in (S8, e.g. "Block Device Code Flow").
    ConditionalAccess,
    /// The application lacks consent in the tenant (S10).
    ConsentRequired,
    /// Multi-factor authentication is required or must be registered.
    MfaRequired,
    /// The tenant or the application registration is set up wrongly for this flow.
    Configuration,
    /// Microsoft refused for another reason; the message keeps its AADSTS code.
    Rejected,
    /// The identity platform could not answer now (HTTP 5xx, `temporarily_unavailable`);
    /// retrying later may succeed.
    Unavailable,
    /// The reply was not what the protocol defines (not JSON, a missing field, a bad number).
    MalformedReply,
    /// The verification URI is not one to send an administrator to (not `https`, nor
    /// `http` on the device's own loopback host), so the code is not shown.
    UnsafeVerificationUri,
    /// The id_token does not fit the sign-in (another application or tenant, expired, or
    /// the device's clock is wrong): nobody is signed in.
    IdTokenRejected,
}

/// A failed sign-in or refresh.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SigninError {
    pub kind: SigninErrorKind,
    /// The AADSTS error number Microsoft gave, when it gave one.
    pub aadsts: Option<u32>,
    pub code: &'static str,
    pub message: String,
    pub remedy: Remedy,
}

/// The remedy of every failure that only a new sign-in fixes.
pub(crate) const SIGN_IN_AGAIN: &str =
    "Click [Open Authentication Page] again and sign in with the account that sends the email.";

impl SigninError {
    pub fn new(
        kind: SigninErrorKind,
        aadsts: Option<u32>,
        code: &'static str,
        message: impl Into<String>,
        remedy: impl Into<Remedy>,
    ) -> Self {
        Self {
            kind,
            aadsts,
            code,
            message: message.into(),
            remedy: remedy.into(),
        }
    }

    /// The code expired on the client's clock: RFC 8628 3.5 has the client stop polling at
    /// `expires_in` whether or not the server said so.
    pub fn expired() -> Self {
        Self::new(
            SigninErrorKind::Expired,
            None,
            "sign-in-expired",
            "The sign-in code expired before sign-in was completed.",
            "Click [Open Authentication Page] again, then enter the new code promptly and sign in.",
        )
    }

    /// A reply that breaks the protocol. `what` names the part at fault, never a value.
    pub fn malformed(what: impl std::fmt::Display) -> Self {
        Self::new(
            SigninErrorKind::MalformedReply,
            None,
            "sign-in-malformed-reply",
            format!("The identity platform sent a reply the device cannot read: {what}."),
            "Check that the authority is the Microsoft identity platform (https://login.microsoftonline.com) and that no proxy alters its replies, then try again.",
        )
    }

    /// The identity platform is unavailable for now.
    pub fn unavailable(status: u16) -> Self {
        Self::new(
            SigninErrorKind::Unavailable,
            None,
            "sign-in-service-unavailable",
            format!("The identity platform could not answer now (HTTP {status})."),
            "Try again in a few minutes. If it persists, check the network, DNS and proxy settings of the device.",
        )
    }

    /// The finding panels and `diagnose` show for this failure.
    pub fn diagnostic(&self) -> Diagnostic {
        Diagnostic::new(
            self.code,
            Severity::Error,
            self.message.clone(),
            self.remedy.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_becomes_an_error_diagnostic_with_the_same_code() {
        let d = SigninError::expired().diagnostic();
        assert_eq!(d.code, "sign-in-expired");
        assert_eq!(d.severity, Severity::Error);
        assert!(d.remedy.contains("Open Authentication Page"));
    }

    #[test]
    fn display_is_the_message() {
        let err = SigninError::unavailable(503);
        assert_eq!(err.to_string(), err.message);
        assert!(err.message.contains("503"));
    }
}
