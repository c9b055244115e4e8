//! XOAUTH2 SASL framing: how an OAuth access token is presented to an SMTP server
//! (DESIGN.md, "Protocol facts"). Sans-IO: this module builds lines and reads challenge
//! payloads; [`crate::smtp`] sends them and reads the replies.
//!
//! The client response is `base64("user=" U "\x01auth=Bearer " T "\x01\x01")`. It goes
//! either on the `AUTH XOAUTH2 <response>` line itself ([`AuthMode::InitialResponse`], when
//! that line fits in SMTP's 512-octet command line) or after an empty `334` prompt
//! ([`AuthMode::Challenge`], and always with Microsoft's multi-kilobyte tokens). When
//! the token is refused, a server may first send a `334 <base64 JSON>` error challenge
//! (Gmail does); the client must answer it with an empty line, and only then comes the
//! final `5xx` reply. The JSON says why (`status`, `schemes`, `scope`), which a diagnosis
//! can use.
//!
//! Access tokens are secrets: [`Credentials`] never shows one in `Debug`, and no error
//! of this module names it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::json::{Number, Value};

/// The SASL mechanism name, as in `AUTH XOAUTH2` and the EHLO `AUTH` keyword.
pub const MECHANISM: &str = "XOAUTH2";

/// The separator XOAUTH2 puts between its key-value pairs (Ctrl-A). A user or token
/// containing it could forge a pair, so both are refused when they contain one.
const SEPARATOR: char = '\x01';

/// Why credentials cannot be framed, or the exchange went wrong. Never names the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Xoauth2Error {
    /// The user (mailbox address) is empty or contains a control character.
    #[error("the sign-in account name {what}, so it cannot be sent to the mail server")]
    InvalidUser { what: &'static str },
    /// The access token is empty or contains a control character or a space.
    #[error("the stored access token {what}, so it cannot be sent to the mail server")]
    InvalidToken { what: &'static str },
    /// The server sent another `334` after the client answered an error challenge.
    #[error("the mail server kept challenging after the XOAUTH2 response was answered")]
    UnexpectedChallenge,
}

impl Xoauth2Error {
    /// The stable machine code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Xoauth2Error::InvalidUser { .. } => "xoauth2-invalid-user",
            Xoauth2Error::InvalidToken { .. } => "xoauth2-invalid-token",
            Xoauth2Error::UnexpectedChallenge => "xoauth2-unexpected-challenge",
        }
    }

    /// What an administrator can do about it.
    pub fn remedy(&self) -> &'static str {
        match self {
            Xoauth2Error::InvalidUser { .. } => {
                "Sign in again with [Open Authentication Page] so the account name is read from Microsoft."
            }
            Xoauth2Error::InvalidToken { .. } => {
                "Sign in again with [Open Authentication Page] to obtain a new access token."
            }
            Xoauth2Error::UnexpectedChallenge => {
                "Check that the SMTP server is smtp.office365.com; if it is, try again later."
            }
        }
    }
}

/// Describes the first character that cannot go into an XOAUTH2 field, if any.
fn forbidden_char(text: &str, allow_space: bool) -> Option<&'static str> {
    text.chars().find_map(|c| match c {
        '\r' => Some("contains a carriage return (CR)"),
        '\n' => Some("contains a line feed (LF)"),
        SEPARATOR => Some("contains a Ctrl-A (\\x01) separator"),
        c if c.is_control() => Some("contains a control character"),
        ' ' if !allow_space => Some("contains a space"),
        _ => None,
    })
}

/// The account and its OAuth access token. `Debug` shows the account, never the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    token: String,
}

impl Credentials {
    /// Checks both fields: neither may be empty or hold a control character (CR, LF, the
    /// `\x01` separator…), and the token, a bearer token (RFC 6750), holds no space either.
    pub fn new(user: impl Into<String>, token: impl Into<String>) -> Result<Self, Xoauth2Error> {
        let (user, token) = (user.into(), token.into());
        if user.is_empty() {
            return Err(Xoauth2Error::InvalidUser { what: "is empty" });
        }
        if let Some(what) = forbidden_char(&user, true) {
            return Err(Xoauth2Error::InvalidUser { what });
        }
        if token.is_empty() {
            return Err(Xoauth2Error::InvalidToken { what: "is empty" });
        }
        if let Some(what) = forbidden_char(&token, false) {
            return Err(Xoauth2Error::InvalidToken { what });
        }
        Ok(Self { user, token })
    }

    /// The account (mailbox) the token was issued for.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The base64 client response, `base64("user=" U "\x01auth=Bearer " T "\x01\x01")`.
    /// It holds the token: send it, never log it.
    pub fn initial_response(&self) -> String {
        let raw = format!(
            "user={}{SEPARATOR}auth=Bearer {}{SEPARATOR}{SEPARATOR}",
            self.user, self.token
        );
        STANDARD.encode(raw)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Longest SMTP command line, CRLF included (RFC 5321 §4.5.3.1.4). RFC 4954 §4: a client
/// whose `AUTH` command with the initial response would be longer sends `AUTH` alone and
/// the response after the `334` prompt. Strict servers (Dovecot) refuse a longer line with
/// `500 5.5.2 Line too long`.
pub const MAX_COMMAND_LINE: usize = 512;

/// Where the client response goes. A variant rather than a flag, so a call site reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// `AUTH XOAUTH2 <response>` on one line (RFC 4954 initial response) when that line
    /// fits in [`MAX_COMMAND_LINE`] octets; otherwise the two-step form of
    /// [`AuthMode::Challenge`]. A Microsoft token (more than 2,500 bytes) never fits, so
    /// with Exchange Online this is always the two-step form.
    #[default]
    InitialResponse,
    /// `AUTH XOAUTH2`, then the response after the server's empty `334` prompt.
    Challenge,
}

/// The decoded payload of a `334` error challenge, for diagnosis. Every field is
/// optional: a server may send less, or JSON this module does not understand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorChallenge {
    /// The HTTP-like status, e.g. `"401"` (token invalid or expired) or `"400"`.
    pub status: Option<String>,
    /// The schemes the server accepts, e.g. `"Bearer"`.
    pub schemes: Option<String>,
    /// The scope the token needs, e.g. `"https://mail.google.com/"`.
    pub scope: Option<String>,
}

impl ErrorChallenge {
    /// Decodes a `334` payload (base64 of a JSON object). Anything undecodable gives an
    /// empty challenge: the client answers it the same way, only the diagnosis is poorer.
    pub fn decode(payload: &str) -> Self {
        let json = STANDARD
            .decode(payload.trim())
            .ok()
            .and_then(|bytes| crate::json::parse(&bytes));
        let field = |name: &str| match &json {
            Some(Value::Object(o)) => o.get(name).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                // `-0` is the float -0.0 to serde_json, which the fuzz target compares with.
                Value::Number(Number::I64(0)) => Some("-0.0".to_owned()),
                // Integers as written; a fraction (never sent) as its shortest JSON text.
                Value::Number(_) => Some(crate::json::to_string(v)),
                _ => None,
            }),
            _ => None,
        };
        Self {
            status: field("status"),
            schemes: field("schemes"),
            scope: field("scope"),
        }
    }
}

/// Where an exchange stands; private so callers cannot skip a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// `AUTH XOAUTH2` without a response was sent; the `334` prompt is next.
    AwaitingPrompt,
    /// The client response was sent; a final reply or an error challenge is next.
    ResponseSent,
    /// An error challenge was answered with an empty line; only a final reply may follow.
    ChallengeAnswered,
}

/// One XOAUTH2 authentication, from the `AUTH` line to the server's final reply.
/// The final reply (`235` or a failure) is the caller's to read; this type answers `334`s.
#[derive(Clone)]
pub struct Exchange {
    credentials: Credentials,
    step: Step,
    error_challenge: Option<ErrorChallenge>,
}

impl Exchange {
    /// Begins an authentication: returns the exchange and the `AUTH` command line to send
    /// (ending in CRLF; it holds the token when the one-line form fits).
    pub fn start(credentials: Credentials, mode: AuthMode) -> (Self, Vec<u8>) {
        let one_line = format!("AUTH {MECHANISM} {}\r\n", credentials.initial_response());
        let (line, step) = match mode {
            AuthMode::InitialResponse if one_line.len() <= MAX_COMMAND_LINE => {
                (one_line, Step::ResponseSent)
            }
            AuthMode::InitialResponse | AuthMode::Challenge => {
                (format!("AUTH {MECHANISM}\r\n"), Step::AwaitingPrompt)
            }
        };
        let exchange = Self {
            credentials,
            step,
            error_challenge: None,
        };
        (exchange, line.into_bytes())
    }

    /// Answers a `334` reply whose text is `payload`: the client response after the
    /// prompt, or an empty line after an error challenge (whose JSON is kept, see
    /// [`Exchange::error_challenge`]). A third `334` is refused.
    pub fn on_challenge(&mut self, payload: &str) -> Result<Vec<u8>, Xoauth2Error> {
        match self.step {
            Step::AwaitingPrompt => {
                self.step = Step::ResponseSent;
                Ok(format!("{}\r\n", self.credentials.initial_response()).into_bytes())
            }
            Step::ResponseSent => {
                self.error_challenge = Some(ErrorChallenge::decode(payload));
                self.step = Step::ChallengeAnswered;
                Ok(b"\r\n".to_vec())
            }
            Step::ChallengeAnswered => Err(Xoauth2Error::UnexpectedChallenge),
        }
    }

    /// The error challenge the server sent, if it sent one (then the final reply is a
    /// failure, and this says why).
    pub fn error_challenge(&self) -> Option<&ErrorChallenge> {
        self.error_challenge.as_ref()
    }

    /// The account being authenticated.
    pub fn user(&self) -> &str {
        self.credentials.user()
    }
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("credentials", &self.credentials)
            .field("step", &self.step)
            .field("error_challenge", &self.error_challenge)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Google's published example (DESIGN.md, "Test vectors").
    const GOOGLE_USER: &str = "someuser@example.com";
    const GOOGLE_TOKEN: &str = "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg";
    const GOOGLE_RESPONSE: &str = "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ==";

    fn google() -> Credentials {
        Credentials::new(GOOGLE_USER, GOOGLE_TOKEN).unwrap()
    }

    /// A token the size Microsoft issues (more than 2,500 bytes), JWT-like.
    fn long_token() -> String {
        let mut token = String::from("eyJ0eXAiOiJKV1QiLCJub25jZSI6Ij.");
        while token.len() < 4000 {
            token.push_str("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_");
        }
        token
    }

    fn decode(b64: &str) -> Vec<u8> {
        STANDARD.decode(b64).unwrap()
    }

    #[test]
    fn initial_response_matches_googles_published_vector() {
        assert_eq!(google().initial_response(), GOOGLE_RESPONSE);
        assert_eq!(
            decode(GOOGLE_RESPONSE),
            format!("user={GOOGLE_USER}\x01auth=Bearer {GOOGLE_TOKEN}\x01\x01").as_bytes()
        );
    }

    #[test]
    fn initial_response_mode_puts_the_response_on_the_auth_line() {
        let (_, line) = Exchange::start(google(), AuthMode::InitialResponse);
        assert_eq!(
            line,
            format!("AUTH XOAUTH2 {GOOGLE_RESPONSE}\r\n").as_bytes()
        );
    }

    #[test]
    fn challenge_mode_sends_the_response_after_the_prompt() {
        let (mut exchange, line) = Exchange::start(google(), AuthMode::Challenge);
        assert_eq!(line, b"AUTH XOAUTH2\r\n");
        let answer = exchange.on_challenge("").unwrap();
        assert_eq!(answer, format!("{GOOGLE_RESPONSE}\r\n").as_bytes());
        assert!(exchange.error_challenge().is_none());
    }

    #[test]
    fn long_tokens_work_in_both_modes() {
        let token = long_token();
        let creds = Credentials::new("scanner@contoso.com", token.clone()).unwrap();
        let expected = format!("user=scanner@contoso.com\x01auth=Bearer {token}\x01\x01");

        for mode in [AuthMode::InitialResponse, AuthMode::Challenge] {
            // RFC 4954 §4: the AUTH line would exceed 512 octets, so the response waits
            // for the 334 prompt in both modes.
            let (mut exchange, line) = Exchange::start(creds.clone(), mode);
            assert_eq!(line, b"AUTH XOAUTH2\r\n", "{mode:?}");
            let answer = String::from_utf8(exchange.on_challenge("").unwrap()).unwrap();
            let blob = answer.strip_suffix("\r\n").unwrap();
            assert!(blob.len() > 2500 && !blob.contains(['\r', '\n']));
            assert_eq!(decode(blob), expected.as_bytes());
        }
    }

    #[test]
    fn the_auth_line_never_exceeds_512_octets() {
        // The longest token whose one-line AUTH command still fits: 512 octets exactly.
        let user = "scanner@contoso.com";
        let fits = |len: usize| {
            let creds = Credentials::new(user, "t".repeat(len)).unwrap();
            Exchange::start(creds, AuthMode::InitialResponse).1
        };
        let mut len = 1;
        while fits(len + 1).len() > 20 {
            len += 1;
        }
        let longest = fits(len);
        assert!(longest.len() <= MAX_COMMAND_LINE && longest.len() > MAX_COMMAND_LINE - 4);
        assert!(longest.starts_with(b"AUTH XOAUTH2 "));
        assert_eq!(fits(len + 1), b"AUTH XOAUTH2\r\n");
    }

    #[test]
    fn error_challenge_is_decoded_and_answered_with_an_empty_line() {
        let json = r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#;
        let payload = STANDARD.encode(json);
        let (mut exchange, _) = Exchange::start(google(), AuthMode::InitialResponse);
        assert_eq!(exchange.on_challenge(&payload).unwrap(), b"\r\n");
        assert_eq!(
            exchange.error_challenge(),
            Some(&ErrorChallenge {
                status: Some("401".into()),
                schemes: Some("Bearer".into()),
                scope: Some("https://mail.google.com/".into()),
            })
        );
    }

    #[test]
    fn error_challenge_after_the_prompt_path_is_answered_too() {
        let (mut exchange, _) = Exchange::start(google(), AuthMode::Challenge);
        exchange.on_challenge("").unwrap();
        let payload = STANDARD.encode(r#"{"status":400,"schemes":"Bearer"}"#);
        assert_eq!(exchange.on_challenge(&payload).unwrap(), b"\r\n");
        let challenge = exchange.error_challenge().unwrap();
        assert_eq!(challenge.status.as_deref(), Some("400"));
        assert_eq!(challenge.scope, None);
    }

    /// A number in the challenge reads as the text serde_json gave it (the fuzz target
    /// `xoauth2` compares the two).
    #[test]
    fn numbers_in_an_error_challenge_read_as_serde_json_wrote_them() {
        for number in [
            "400",
            "-0",
            "-5",
            "1.5",
            "0.30000000000000004",
            "1e21",
            "1e-7",
            "-0.0",
            "100000000000000000000",
            "18446744073709551615",
            "-9223372036854775808",
            "1E+2",
        ] {
            let payload = format!(r#"{{"status":{number},"schemes":"bearer"}}"#);
            let challenge = ErrorChallenge::decode(&STANDARD.encode(&payload));
            let theirs: serde_json::Value = serde_json::from_str(&payload).unwrap();
            assert_eq!(
                challenge.status,
                Some(theirs["status"].to_string()),
                "{number}"
            );
        }
    }

    #[test]
    fn undecodable_error_challenge_is_still_answered() {
        let (mut exchange, _) = Exchange::start(google(), AuthMode::InitialResponse);
        assert_eq!(exchange.on_challenge("%%% not base64").unwrap(), b"\r\n");
        assert_eq!(exchange.error_challenge(), Some(&ErrorChallenge::default()));
    }

    #[test]
    fn a_challenge_after_the_empty_answer_is_refused() {
        let (mut exchange, _) = Exchange::start(google(), AuthMode::InitialResponse);
        exchange.on_challenge("e30=").unwrap();
        assert_eq!(
            exchange.on_challenge("e30="),
            Err(Xoauth2Error::UnexpectedChallenge)
        );
    }

    #[test]
    fn control_characters_in_user_or_token_are_refused() {
        for bad in [
            "a\x01b@x.com",
            "a@x.com\r\n",
            "a@x.com\nRCPT",
            "a\x7f@x.com",
            "a\t@x",
        ] {
            let err = Credentials::new(bad, GOOGLE_TOKEN).unwrap_err();
            assert!(matches!(err, Xoauth2Error::InvalidUser { .. }), "{bad:?}");
            assert_eq!(err.code(), "xoauth2-invalid-user");
        }
        for bad in ["tok\x01en", "tok\ren", "tok\nen", "tok\x00en", "tok en"] {
            let err = Credentials::new(GOOGLE_USER, bad).unwrap_err();
            assert!(matches!(err, Xoauth2Error::InvalidToken { .. }), "{bad:?}");
            assert_eq!(err.code(), "xoauth2-invalid-token");
        }
        assert!(matches!(
            Credentials::new("", GOOGLE_TOKEN),
            Err(Xoauth2Error::InvalidUser { what: "is empty" })
        ));
        assert!(matches!(
            Credentials::new(GOOGLE_USER, ""),
            Err(Xoauth2Error::InvalidToken { what: "is empty" })
        ));
    }

    #[test]
    fn errors_never_name_the_token() {
        let err = Credentials::new(GOOGLE_USER, "secret\ntoken").unwrap_err();
        let shown = format!("{err} {err:?} {}", err.remedy());
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn debug_redacts_the_token() {
        let creds = google();
        let (exchange, _) = Exchange::start(creds.clone(), AuthMode::Challenge);
        for shown in [format!("{creds:?}"), format!("{exchange:?}")] {
            assert!(shown.contains(GOOGLE_USER), "{shown}");
            assert!(shown.contains("<redacted>"), "{shown}");
            assert!(!shown.contains("ya29"), "{shown}");
        }
    }
}
