//! Tokens: the device-code token request (RFC 8628 3.4), the token set a successful
//! reply gives (RFC 6749 5.1), and refreshing it (RFC 6749 6).

use super::aadsts::{self, ErrorMeaning, ErrorReply};
use super::error::SigninError;
use super::id_token::Account;
use super::reply::JsonObject;
use super::{HttpRequest, SCOPE, Secret, SigninConfig};
use crate::storage::{RecordVersion, records};

/// The grant type of the device authorization grant (RFC 8628 3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Refresh this long before the access token expires (DESIGN.md: at least 10 minutes), so
/// a send never starts with a token about to lapse.
pub const REFRESH_MARGIN: u64 = 600;

/// Refresh the grant when it was obtained this long ago, even if no send needs a token:
/// a refresh token left unused for 90 days expires (AADSTS700082), and a printer may send
/// rarely. Weekly leaves ample room for a host that is down for weeks.
pub const KEEP_ALIVE_AFTER: u64 = 7 * 86_400;

/// The longest token lifetime believed: a longer `expires_in` is cut to this, which only
/// makes the device refresh sooner (Microsoft sends 60–90 minutes).
pub const MAX_TOKEN_LIFETIME: u64 = 24 * 3600;

/// `POST {authority}/{tenant}/oauth2/v2.0/token` redeeming `device_code`.
pub fn device_token_request(config: &SigninConfig, device_code: &Secret) -> HttpRequest {
    HttpRequest::form_post(
        config.endpoint_url("token"),
        &[
            ("grant_type", DEVICE_CODE_GRANT),
            ("client_id", &config.client_id),
            ("device_code", device_code.expose()),
        ],
    )
}

/// `POST {authority}/{tenant}/oauth2/v2.0/token` exchanging the refresh token for new tokens.
pub fn refresh_request(config: &SigninConfig, tokens: &TokenSet) -> HttpRequest {
    HttpRequest::form_post(
        config.endpoint_url("token"),
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &config.client_id),
            ("refresh_token", tokens.refresh_token.expose()),
            ("scope", SCOPE),
        ],
    )
}

/// The device's grant: stored whole (a record) under the grant key, so the refresh token and
/// the access token it yielded are always committed together. `Debug` shows no token.
#[derive(Clone, Debug, PartialEq, Eq, miniserde::Serialize, miniserde::Deserialize)]
pub struct TokenSet {
    /// The record's layout (see [`crate::storage::records`]).
    pub version: RecordVersion<{ records::GRANT }>,
    /// `Bearer`.
    pub token_type: String,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// For SMTP AUTH XOAUTH2.
    pub access_token: Secret,
    /// For the next refresh; replaced by every refresh.
    pub refresh_token: Secret,
    /// The OpenID Connect id_token the account was read from.
    pub id_token: Option<Secret>,
    /// When the access token expires, in Unix seconds.
    pub expires_at: u64,
    /// When the access token expires if the platform is in an outage (`ext_expires_in`).
    pub ext_expires_at: Option<u64>,
    /// When this refresh token was obtained (sign-in or the last refresh), in Unix
    /// seconds. `None` in records written before it was kept: unknown, so a keep-alive
    /// refreshes at once.
    pub obtained_at: Option<u64>,
}

impl TokenSet {
    /// Whether to refresh now: the access token expires within [`REFRESH_MARGIN`] of `now`
    /// (or already has).
    pub fn refresh_due(&self, now: u64) -> bool {
        now.saturating_add(REFRESH_MARGIN) >= self.expires_at
    }

    /// Whether a keep-alive refresh is due at `now`: the refresh token is
    /// [`KEEP_ALIVE_AFTER`] old, or its age is unknown or in the future (a clock that
    /// jumped), either way worth a refresh.
    pub fn keep_alive_due(&self, now: u64) -> bool {
        match self.obtained_at {
            Some(at) if at <= now => now - at >= KEEP_ALIVE_AFTER,
            _ => true,
        }
    }

    /// When the next keep-alive refresh is due (Unix seconds); `now` if it already is.
    pub fn keep_alive_at(&self, now: u64) -> u64 {
        match self.obtained_at {
            Some(at) if !self.keep_alive_due(now) => at.saturating_add(KEEP_ALIVE_AFTER),
            _ => now,
        }
    }

    /// Whether the access token has expired at `now`.
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.expires_at
    }

    /// Whether the grant covers sending mail over SMTP.
    pub fn can_send_mail(&self) -> bool {
        self.scope.split_whitespace().any(|s| {
            s.eq_ignore_ascii_case("https://outlook.office.com/SMTP.Send")
                || s.eq_ignore_ascii_case("SMTP.Send")
        })
    }

    /// The account the id_token names, if the token set has one.
    pub fn account(&self) -> Option<Result<Account, SigninError>> {
        self.id_token
            .as_ref()
            .map(|t| Account::from_id_token(t.expose()))
    }
}

/// What a reply from the token endpoint says, before the poller or the refresher acts on it.
#[derive(Debug)]
pub(crate) enum TokenReply {
    /// HTTP 200 and tokens. The fields absent from a refresh reply are `None`.
    Tokens(ParsedTokens),
    /// An OAuth error reply.
    Error(ErrorMeaning),
    /// No usable answer: the platform is unavailable (HTTP 5xx or 429 without an OAuth error).
    Unavailable(u16),
}

/// A successful token reply, read at `now`.
#[derive(Debug)]
pub(crate) struct ParsedTokens {
    token_type: String,
    scope: Option<String>,
    access_token: Secret,
    refresh_token: Option<Secret>,
    id_token: Option<Secret>,
    expires_at: u64,
    ext_expires_at: Option<u64>,
    /// When the reply was read.
    received_at: u64,
}

impl ParsedTokens {
    /// The token set of a first sign-in, which must carry a refresh token (the device asked
    /// for `offline_access`) and an id_token (it asked for `openid`) that fits `expected`.
    pub fn into_new_grant(
        self,
        expected: &super::id_token::Expected,
    ) -> Result<(TokenSet, Account), SigninError> {
        let refresh_token = self.refresh_token.ok_or_else(|| {
            SigninError::malformed(
                "the token reply has no `refresh_token` (offline_access was asked for)",
            )
        })?;
        let id_token = self.id_token.ok_or_else(|| {
            SigninError::malformed("the token reply has no `id_token` (openid was asked for)")
        })?;
        let account = Account::from_checked_id_token(id_token.expose(), expected)?;
        Ok((
            TokenSet {
                version: RecordVersion::default(),
                token_type: self.token_type,
                scope: self.scope.unwrap_or_else(|| SCOPE.to_owned()),
                access_token: self.access_token,
                refresh_token,
                id_token: Some(id_token),
                expires_at: self.expires_at,
                ext_expires_at: self.ext_expires_at,
                obtained_at: Some(self.received_at),
            },
            account,
        ))
    }
}

/// Reads any reply of the token endpoint.
pub(crate) fn read_token_reply(
    config: &SigninConfig,
    now: u64,
    status: u16,
    body: &[u8],
) -> Result<TokenReply, SigninError> {
    if status == 200 {
        return parse_tokens(now, body).map(TokenReply::Tokens);
    }
    match ErrorReply::parse(body).map(|reply| aadsts::meaning(&reply, config)) {
        // Throttled or failing servers are retried later, whatever error they name,
        // unless it is one that keeps polling anyway.
        Some(ErrorMeaning::Failed(_)) | None if server_trouble(status) => {
            Ok(TokenReply::Unavailable(status))
        }
        Some(meaning) => Ok(TokenReply::Error(meaning)),
        None => Err(SigninError::malformed(format_args!(
            "the token reply has HTTP status {status} and no OAuth error"
        ))),
    }
}

/// HTTP 429 (throttled) and 5xx: the platform cannot answer now; asking later may work.
pub(crate) fn server_trouble(status: u16) -> bool {
    status == 429 || status >= 500
}

fn parse_tokens(now: u64, body: &[u8]) -> Result<ParsedTokens, SigninError> {
    let o = JsonObject::parse("the token reply", body)?;
    let token_type = o.string("token_type")?;
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(SigninError::malformed(
            "the token reply's `token_type` is not Bearer",
        ));
    }
    let lifetime = |seconds: u64| now.saturating_add(seconds.min(MAX_TOKEN_LIFETIME));
    Ok(ParsedTokens {
        token_type,
        scope: o.opt_string("scope")?,
        access_token: Secret::new(o.string("access_token")?),
        refresh_token: o.opt_string("refresh_token")?.map(Secret::new),
        id_token: o.opt_string("id_token")?.map(Secret::new),
        expires_at: lifetime(o.seconds("expires_in")?),
        ext_expires_at: o.opt_seconds("ext_expires_in")?.map(lifetime),
        received_at: now,
    })
}

/// Reads the reply to [`refresh_request`] made at `now`, giving the token set that
/// replaces `previous`. Microsoft sends a new refresh token with every refresh: the caller
/// commits the whole set before using the new access token, or a crash in between would
/// leave the store holding a refresh token the platform may no longer honour. Should a
/// reply carry no refresh token or id_token, the previous one stays (RFC 6749 6 makes a
/// new refresh token optional).
pub fn parse_refresh_reply(
    config: &SigninConfig,
    previous: &TokenSet,
    now: u64,
    status: u16,
    body: &[u8],
) -> Result<TokenSet, SigninError> {
    match read_token_reply(config, now, status, body)? {
        TokenReply::Tokens(t) => Ok(TokenSet {
            version: RecordVersion::default(),
            token_type: t.token_type,
            scope: t.scope.unwrap_or_else(|| previous.scope.clone()),
            access_token: t.access_token,
            refresh_token: t
                .refresh_token
                .unwrap_or_else(|| previous.refresh_token.clone()),
            id_token: t.id_token.or_else(|| previous.id_token.clone()),
            expires_at: t.expires_at,
            ext_expires_at: t.ext_expires_at,
            obtained_at: Some(t.received_at),
        }),
        TokenReply::Error(ErrorMeaning::Failed(err)) => Err(err),
        // Pending and slow_down belong to the device flow; from a refresh they make no sense.
        TokenReply::Error(ErrorMeaning::Pending | ErrorMeaning::SlowDown) => Err(
            SigninError::malformed("the refresh reply is a device-flow polling answer"),
        ),
        TokenReply::Error(ErrorMeaning::Transient) => Err(SigninError::unavailable(status)),
        TokenReply::Unavailable(status) => Err(SigninError::unavailable(status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::SigninErrorKind;
    use crate::signin::test_support::{error_reply, form, token_reply};

    /// What the fixtures' id_token fits: the default client on `common`, received at `NOW`.
    const FITS: crate::signin::id_token::Expected<'static> = crate::signin::id_token::Expected {
        client_id: crate::settings::DEFAULT_CLIENT_ID,
        tenant: "common",
        now: NOW,
        server_now: None,
    };

    const NOW: u64 = 1_700_000_000;

    fn grant() -> TokenSet {
        let TokenReply::Tokens(t) = read_token_reply(
            &SigninConfig::default(),
            NOW,
            200,
            &token_reply("at-1", "rt-1", 3600),
        )
        .unwrap() else {
            panic!("not tokens")
        };
        t.into_new_grant(&FITS).unwrap().0
    }

    #[test]
    fn device_token_request_redeems_the_device_code_at_the_token_endpoint() {
        let request = device_token_request(&SigninConfig::default(), &Secret::new("DC-123"));
        assert_eq!(request.method, crate::signin::HttpMethod::Post);
        assert_eq!(
            request.url,
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        assert_eq!(
            form(&request.body),
            [
                (
                    "grant_type".to_owned(),
                    "urn:ietf:params:oauth:grant-type:device_code".to_owned()
                ),
                (
                    "client_id".to_owned(),
                    "c88859d7-e6a2-48cb-acee-669df3387654".to_owned()
                ),
                ("device_code".to_owned(), "DC-123".to_owned()),
            ]
        );
    }

    #[test]
    fn a_token_reply_gives_a_grant_and_the_account() {
        let TokenReply::Tokens(t) = read_token_reply(
            &SigninConfig::default(),
            NOW,
            200,
            &token_reply("at-1", "rt-1", 3600),
        )
        .unwrap() else {
            panic!("not tokens")
        };
        let (tokens, account) = t.into_new_grant(&FITS).unwrap();
        assert_eq!(tokens.access_token.expose(), "at-1");
        assert_eq!(tokens.refresh_token.expose(), "rt-1");
        assert_eq!(tokens.expires_at, NOW + 3600);
        assert_eq!(tokens.ext_expires_at, Some(NOW + 3600));
        assert!(tokens.can_send_mail());
        assert_eq!(account.device_email_address(), Some("scanner@contoso.com"));
    }

    #[test]
    fn refresh_is_due_ten_minutes_before_expiry() {
        let tokens = grant();
        assert!(!tokens.refresh_due(NOW));
        assert!(!tokens.refresh_due(NOW + 3600 - 601));
        assert!(tokens.refresh_due(NOW + 3600 - 600));
        assert!(tokens.refresh_due(NOW + 7200));
        assert!(tokens.refresh_due(u64::MAX));
        assert!(!tokens.is_expired(NOW + 3599) && tokens.is_expired(NOW + 3600));
    }

    #[test]
    fn keep_alive_is_due_a_week_after_the_grant_was_obtained() {
        let tokens = grant();
        assert_eq!(tokens.obtained_at, Some(NOW));
        assert!(!tokens.keep_alive_due(NOW + KEEP_ALIVE_AFTER - 1));
        assert_eq!(tokens.keep_alive_at(NOW + 5), NOW + KEEP_ALIVE_AFTER);
        assert!(tokens.keep_alive_due(NOW + KEEP_ALIVE_AFTER));
        assert_eq!(
            tokens.keep_alive_at(NOW + KEEP_ALIVE_AFTER + 9),
            NOW + KEEP_ALIVE_AFTER + 9
        );
        // A clock that jumped back: the age is unknown, refresh.
        assert!(tokens.keep_alive_due(NOW - 1));
        let refreshed = parse_refresh_reply(
            &SigninConfig::default(),
            &tokens,
            NOW + KEEP_ALIVE_AFTER,
            200,
            &token_reply("at-2", "rt-2", 3600),
        )
        .unwrap();
        assert_eq!(refreshed.obtained_at, Some(NOW + KEEP_ALIVE_AFTER));
    }

    #[test]
    fn a_grant_stored_before_obtained_at_was_kept_still_reads_and_is_due() {
        use crate::storage::{decode, encode};
        let mut old: serde_json::Value = serde_json::from_slice(&encode(&grant())).unwrap();
        old.as_object_mut().unwrap().remove("obtained_at");
        let tokens: TokenSet = decode("oauth/grant", old.to_string().as_bytes()).unwrap();
        assert_eq!(tokens.obtained_at, None);
        assert!(tokens.keep_alive_due(NOW));
        assert_eq!(tokens.keep_alive_at(NOW), NOW);
    }

    #[test]
    fn refresh_request_sends_the_refresh_token_and_scope() {
        let request = refresh_request(&SigninConfig::default(), &grant());
        assert_eq!(
            request.url,
            "https://login.microsoftonline.com/common/oauth2/v2.0/token"
        );
        assert_eq!(
            form(&request.body),
            [
                ("grant_type".to_owned(), "refresh_token".to_owned()),
                (
                    "client_id".to_owned(),
                    "c88859d7-e6a2-48cb-acee-669df3387654".to_owned()
                ),
                ("refresh_token".to_owned(), "rt-1".to_owned()),
                ("scope".to_owned(), SCOPE.to_owned()),
            ]
        );
    }

    #[test]
    fn a_refresh_replaces_both_tokens() {
        let old = grant();
        let later = NOW + 3000;
        let new = parse_refresh_reply(
            &SigninConfig::default(),
            &old,
            later,
            200,
            &token_reply("at-2", "rt-2", 4000),
        )
        .unwrap();
        assert_eq!(new.access_token.expose(), "at-2");
        assert_eq!(new.refresh_token.expose(), "rt-2");
        assert_eq!(new.expires_at, later + 4000);
    }

    #[test]
    fn a_refresh_without_new_refresh_or_id_token_keeps_the_old_ones() {
        let old = grant();
        let body = br#"{"token_type":"Bearer","expires_in":3599,"access_token":"at-3"}"#;
        let new = parse_refresh_reply(&SigninConfig::default(), &old, NOW, 200, body).unwrap();
        assert_eq!(new.refresh_token.expose(), "rt-1");
        assert_eq!(new.id_token, old.id_token);
        assert_eq!(new.scope, old.scope);
    }

    #[test]
    fn refresh_failures_are_diagnosed() {
        let old = grant();
        let config = SigninConfig::default();
        let body = error_reply(
            "invalid_grant",
            700082,
            "The refresh token has expired due to inactivity.",
        );
        let err = parse_refresh_reply(&config, &old, NOW, 400, &body).unwrap_err();
        assert_eq!(err.code, "sign-in-refresh-token-expired");
        let err =
            parse_refresh_reply(&config, &old, NOW, 502, b"<html>Bad Gateway</html>").unwrap_err();
        assert_eq!(err.kind, SigninErrorKind::Unavailable);
        let throttled = error_reply(
            "invalid_request",
            50196,
            "The server terminated an operation because it encountered a client request loop.",
        );
        let err = parse_refresh_reply(&config, &old, NOW, 429, &throttled).unwrap_err();
        assert_eq!(err.kind, SigninErrorKind::Unavailable);
        let err = parse_refresh_reply(&config, &old, NOW, 200, b"{}").unwrap_err();
        assert_eq!(err.kind, SigninErrorKind::MalformedReply);
    }

    #[test]
    fn malformed_token_replies_are_typed_errors() {
        for body in [
            &br#"{"token_type":"Bearer","expires_in":3599}"#[..],
            br#"{"token_type":"MAC","expires_in":3599,"access_token":"a"}"#,
            br#"{"token_type":"Bearer","expires_in":-1,"access_token":"a"}"#,
            br#"{"token_type":"Bearer","expires_in":1e999,"access_token":"a"}"#,
            b"not json",
        ] {
            let err = read_token_reply(&SigninConfig::default(), NOW, 200, body).unwrap_err();
            assert_eq!(err.kind, SigninErrorKind::MalformedReply);
        }
    }

    #[test]
    fn a_first_grant_needs_a_refresh_token_and_an_id_token() {
        let body =
            br#"{"token_type":"Bearer","expires_in":3599,"access_token":"a","id_token":"x.e30.y"}"#;
        let TokenReply::Tokens(t) =
            read_token_reply(&SigninConfig::default(), NOW, 200, body).unwrap()
        else {
            panic!("not tokens")
        };
        assert!(
            t.into_new_grant(&FITS)
                .unwrap_err()
                .message
                .contains("refresh_token")
        );
    }

    #[test]
    fn huge_lifetimes_are_cut_and_never_overflow() {
        let body =
            br#"{"token_type":"Bearer","expires_in":18446744073709551615,"access_token":"a"}"#;
        let new = parse_refresh_reply(&SigninConfig::default(), &grant(), u64::MAX - 5, 200, body)
            .unwrap();
        assert_eq!(new.expires_at, u64::MAX);
        let new = parse_refresh_reply(&SigninConfig::default(), &grant(), NOW, 200, body).unwrap();
        assert_eq!(new.expires_at, NOW + MAX_TOKEN_LIFETIME);
    }

    #[test]
    fn token_sets_round_trip_through_the_store_but_never_show_in_debug() {
        let tokens = grant();
        let bytes = crate::storage::encode(&tokens);
        assert_eq!(
            crate::storage::decode::<TokenSet>("oauth/grant", &bytes).unwrap(),
            tokens
        );
        let shown = format!("{tokens:?}");
        assert!(
            !shown.contains("at-1") && !shown.contains("rt-1") && !shown.contains("eyJ"),
            "{shown}"
        );
    }
}
