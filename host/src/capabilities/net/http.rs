//! HTTPS requests to the identity platform: one HTTP/1.1 request per connection
//! (`Connection: close`), the response read whole under a size cap, redirects returned to
//! the component rather than followed (a redirect could only lead off the allowlist).
//!
//! Framing: the host writes `Host`, `Connection`, `Content-Length` (and a default
//! `User-Agent`) itself and refuses them, or any header with CR, LF or NUL, from the
//! caller before anything is sent. Responses may use `Content-Length`, chunked
//! `Transfer-Encoding` or end at close; interim `1xx` replies are skipped.
//!
//! The stream is generic (`Read + Write`) so framing is tested on byte strings.

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};

use super::{NetError, tcp};

/// Largest response head (status line and headers), whatever the body cap.
const MAX_HEAD_BYTES: u64 = 64 * 1024;
/// Most response headers parsed.
const MAX_HEADERS: usize = 100;
/// Most interim `1xx` responses skipped before the final one.
const MAX_INTERIM: usize = 8;
/// Longest chunk-size line in a chunked body.
const MAX_CHUNK_LINE: u64 = 1024;
/// Headers the host writes itself.
const RESERVED: [&str; 4] = ["host", "connection", "content-length", "transfer-encoding"];

/// One HTTPS request from the component.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// One response, read whole.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Shows the method, the URL without its query, header names and the body's size: header
/// values and bodies carry tokens.
impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.split(['?', '#']).next().unwrap_or_default();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &url)
            .field("headers", &HeaderNames(&self.headers))
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

/// Shows the status, header names and the body's size: a token response's body is secret.
impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &HeaderNames(&self.headers))
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

struct HeaderNames<'a>(&'a [(String, String)]);

impl fmt::Debug for HeaderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| name))
            .finish()
    }
}

impl HttpResponse {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// RFC 9110 `token`: what a method or header name may be made of.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Refuses a request that could not be sent as written: a bad method, a header name that is
/// not a token, a value with CR, LF or NUL (header injection), or a header the host sets.
/// Messages name the header but never show its value.
pub(super) fn check_request(req: &HttpRequest) -> Result<(), NetError> {
    if !is_token(&req.method) {
        return Err(NetError::Other(
            "the request method is not a valid HTTP method".into(),
        ));
    }
    for (name, value) in &req.headers {
        if !is_token(name) {
            return Err(NetError::Other(
                "a request header name holds characters HTTP does not allow".into(),
            ));
        }
        if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(NetError::Other(format!(
                "the value of request header {name} contains CR, LF or NUL"
            )));
        }
        if RESERVED.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return Err(NetError::Other(format!(
                "request header {name} is set by the host, not the component"
            )));
        }
    }
    Ok(())
}

/// Sends `req` (already checked) over `stream` and reads the response, capping head and
/// body at `max_bytes` each (the head also at 64 KiB).
pub(super) fn exchange<S: Read + Write>(
    mut stream: S,
    req: &HttpRequest,
    host_header: &str,
    target: &str,
    max_bytes: u64,
) -> Result<HttpResponse, NetError> {
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n",
        req.method
    );
    let sends_length = !req.body.is_empty()
        || !(req.method.eq_ignore_ascii_case("GET") || req.method.eq_ignore_ascii_case("HEAD"));
    if sends_length {
        head.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    if !req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
    {
        head.push_str(concat!(
            "User-Agent: mfp-host/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    for (name, value) in &req.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(&req.body))
        .and_then(|()| stream.flush())
        .map_err(tcp::io_error)?;
    read_response(stream, req.method.eq_ignore_ascii_case("HEAD"), max_bytes)
}

/// Reads one response (after any interim `1xx`) from `stream`.
pub(super) fn read_response<R: Read>(
    stream: R,
    head_request: bool,
    max_bytes: u64,
) -> Result<HttpResponse, NetError> {
    let mut reader = BufReader::new(stream);
    let head_cap = max_bytes.min(MAX_HEAD_BYTES);
    let mut interim = 0;
    let (status, headers) = loop {
        let (status, headers) = read_head(&mut reader, head_cap)?;
        if !(100..200).contains(&status) || status == 101 {
            break (status, headers);
        }
        interim += 1;
        if interim > MAX_INTERIM {
            return Err(NetError::Other(format!(
                "the server sent more than {MAX_INTERIM} interim (1xx) responses"
            )));
        }
    };
    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let body = if no_body {
        Vec::new()
    } else {
        match framing(&headers)? {
            Framing::Chunked => read_chunked(&mut reader, max_bytes)?,
            Framing::Length(length) => read_length(&mut reader, length, max_bytes)?,
            Framing::UntilClose => read_until_close(&mut reader, max_bytes)?,
        }
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

type Headers = Vec<(String, String)>;

/// Reads the status line and headers up to the blank line, consuming nothing after it.
fn read_head<R: BufRead>(reader: &mut R, cap: u64) -> Result<(u16, Headers), NetError> {
    let mut head = Vec::new();
    // Stray blank lines before the status line are skipped (RFC 9112 §2.2), counted in the cap.
    let mut start = 0;
    loop {
        let before = head.len();
        let left = (cap + 1).saturating_sub(before as u64);
        let n = reader
            .by_ref()
            .take(left)
            .read_until(b'\n', &mut head)
            .map_err(tcp::io_error)?;
        if head.len() as u64 > cap {
            return Err(NetError::TooLarge(cap));
        }
        if n == 0 || head.last() != Some(&b'\n') {
            return Err(NetError::Closed);
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == start {
                start = head.len();
                continue;
            }
            break;
        }
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    match response.parse(&head[start..]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => {
            return Err(NetError::Other(
                "the server sent an incomplete HTTP response head".into(),
            ));
        }
        Err(httparse::Error::TooManyHeaders) => {
            return Err(NetError::Other(format!(
                "the server sent more than {MAX_HEADERS} response headers"
            )));
        }
        Err(err) => {
            return Err(NetError::Other(format!(
                "the server sent a malformed HTTP response: {err}"
            )));
        }
    }
    let status = response.code.unwrap_or_default();
    let headers = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok((status, headers))
}

enum Framing {
    Chunked,
    Length(u64),
    UntilClose,
}

/// RFC 9112 §6.3: chunked if it is the last transfer coding, else close-delimited when any
/// other coding is present; otherwise `Content-Length` (all copies must agree); otherwise
/// the body runs to the end of the connection.
fn framing(headers: &Headers) -> Result<Framing, NetError> {
    fn values<'h>(headers: &'h Headers, name: &'static str) -> impl Iterator<Item = &'h str> {
        headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
    if let Some(last) = values(headers, "transfer-encoding").last() {
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length = None;
    for value in values(headers, "content-length") {
        let parsed = value
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| NetError::Other("the server sent an invalid Content-Length".into()))?;
        if length.is_some_and(|l| l != parsed) {
            return Err(NetError::Other(
                "the server sent conflicting Content-Length headers".into(),
            ));
        }
        length = Some(parsed);
    }
    Ok(length.map_or(Framing::UntilClose, Framing::Length))
}

fn read_length<R: Read>(reader: &mut R, length: u64, max: u64) -> Result<Vec<u8>, NetError> {
    if length > max {
        return Err(NetError::TooLarge(max));
    }
    let mut body = Vec::with_capacity(length.min(64 * 1024) as usize);
    reader
        .take(length)
        .read_to_end(&mut body)
        .map_err(tcp::io_error)?;
    if (body.len() as u64) < length {
        return Err(NetError::Closed);
    }
    Ok(body)
}

/// A close-delimited body. Under TLS the end must be a `close_notify`: a bare TCP close could
/// be a truncation, and rustls reports it as such (`Closed`).
fn read_until_close<R: Read>(reader: &mut R, max: u64) -> Result<Vec<u8>, NetError> {
    let mut body = Vec::new();
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(tcp::io_error)?;
    if body.len() as u64 > max {
        return Err(NetError::TooLarge(max));
    }
    Ok(body)
}

fn read_chunked<R: BufRead>(reader: &mut R, max: u64) -> Result<Vec<u8>, NetError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(reader, MAX_CHUNK_LINE)?;
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(|| NetError::Other("the server sent an invalid chunk size".into()))?;
        if size == 0 {
            break;
        }
        if size > max.saturating_sub(body.len() as u64) {
            return Err(NetError::TooLarge(max));
        }
        let before = body.len();
        reader
            .take(size)
            .read_to_end(&mut body)
            .map_err(tcp::io_error)?;
        if ((body.len() - before) as u64) < size {
            return Err(NetError::Closed);
        }
        if !read_line(reader, MAX_CHUNK_LINE)?.is_empty() {
            return Err(NetError::Other(
                "a chunk is longer than its declared size".into(),
            ));
        }
    }
    // Trailer fields, ignored, up to the blank line.
    let mut trailers = 0;
    loop {
        let line = read_line(reader, MAX_HEAD_BYTES)?;
        if line.is_empty() {
            return Ok(body);
        }
        trailers += line.len() as u64;
        if trailers > MAX_HEAD_BYTES {
            return Err(NetError::TooLarge(MAX_HEAD_BYTES));
        }
    }
}

/// One line without its CRLF (or LF); `Closed` if the stream ends first.
fn read_line<R: BufRead>(reader: &mut R, cap: u64) -> Result<Vec<u8>, NetError> {
    let mut line = Vec::new();
    reader
        .take(cap + 2)
        .read_until(b'\n', &mut line)
        .map_err(tcp::io_error)?;
    if line.last() != Some(&b'\n') {
        return Err(if line.len() as u64 > cap {
            NetError::Other("the server sent an over-long line in a chunked body".into())
        } else {
            NetError::Closed
        });
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A fake connection: reads come from `input`, writes land in `output`.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn parse(raw: &[u8], max: u64) -> Result<HttpResponse, NetError> {
        read_response(Cursor::new(raw.to_vec()), false, max)
    }

    fn post(body: &str) -> HttpRequest {
        HttpRequest {
            method: "POST".into(),
            url: "https://login.microsoftonline.com/common/oauth2/v2.0/token".into(),
            headers: vec![(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn request_is_framed_with_host_close_and_length() {
        let mut duplex = Duplex {
            input: Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec()),
            output: Vec::new(),
        };
        let response = exchange(
            &mut duplex,
            &post("grant_type=x"),
            "login.microsoftonline.com",
            "/common/oauth2/v2.0/token",
            1024,
        )
        .unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"{}"[..])
        );
        let sent = String::from_utf8(duplex.output).unwrap();
        assert!(sent.starts_with("POST /common/oauth2/v2.0/token HTTP/1.1\r\nHost: login.microsoftonline.com\r\nConnection: close\r\nContent-Length: 12\r\n"), "{sent}");
        assert!(sent.contains("Content-Type: application/x-www-form-urlencoded\r\n"));
        assert!(sent.ends_with("\r\n\r\ngrant_type=x"));
    }

    #[test]
    fn content_length_body_is_read_exactly() {
        let response = parse(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\nX-A: 1\r\n\r\nhelloEXTRA",
            1024,
        )
        .unwrap();
        assert_eq!(response.status, 400);
        assert_eq!(response.body, b"hello");
        assert_eq!(response.header("X-a"), Some("1"));
    }

    #[test]
    fn chunked_body_is_reassembled_and_trailers_skipped() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: t\r\n\r\n";
        assert_eq!(
            parse(raw, 1024).unwrap().body,
            b"Wikipedia in\r\n\r\nchunks."
        );
    }

    #[test]
    fn chunked_body_over_the_cap_is_too_large() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n";
        assert_eq!(parse(raw, 10), Err(NetError::TooLarge(10)));
        let huge =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\nFFFFFFFFFFFFFFFF\r\n";
        assert_eq!(parse(huge, 10), Err(NetError::TooLarge(10)));
    }

    #[test]
    fn declared_length_over_the_cap_is_refused_before_reading() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n";
        assert_eq!(parse(raw, 1024), Err(NetError::TooLarge(1024)));
    }

    #[test]
    fn oversized_head_is_too_large() {
        let mut raw = b"HTTP/1.1 200 OK\r\n".to_vec();
        raw.extend(std::iter::repeat_n(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 100).flatten());
        assert_eq!(parse(&raw, 1000), Err(NetError::TooLarge(1000)));
    }

    #[test]
    fn truncated_bodies_are_closed_not_silently_short() {
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1024),
            Err(NetError::Closed)
        );
        assert_eq!(
            parse(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
                1024
            ),
            Err(NetError::Closed)
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Le", 1024),
            Err(NetError::Closed)
        );
        assert_eq!(parse(b"", 1024), Err(NetError::Closed));
    }

    #[test]
    fn malformed_framing_is_an_error() {
        for raw in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            b"NOT HTTP\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw, 1024), Err(NetError::Other(_))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn interim_responses_are_skipped_and_bodyless_statuses_have_no_body() {
        let raw =
            b"\r\nHTTP/1.1 100 Continue\r\n\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n";
        let response = parse(raw, 1024).unwrap();
        assert_eq!((response.status, response.body.len()), (204, 0));
        let redirect = parse(
            b"HTTP/1.1 302 Found\r\nLocation: https://evil.example/\r\nContent-Length: 0\r\n\r\n",
            1024,
        )
        .unwrap();
        assert_eq!(redirect.status, 302, "redirects are returned, not followed");
    }

    #[test]
    fn endless_interim_responses_or_blank_lines_end_in_an_error() {
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(100);
        assert!(
            matches!(parse(&interim, 1 << 20), Err(NetError::Other(m)) if m.contains("interim"))
        );
        assert_eq!(
            parse(&b"\r\n".repeat(1000), 1000),
            Err(NetError::TooLarge(1000))
        );
    }

    #[test]
    fn body_without_framing_runs_to_the_end() {
        assert_eq!(
            parse(b"HTTP/1.0 200 OK\r\n\r\nall of it", 1024)
                .unwrap()
                .body,
            b"all of it"
        );
        assert_eq!(
            parse(b"HTTP/1.0 200 OK\r\n\r\nall of it", 4),
            Err(NetError::TooLarge(4))
        );
    }

    #[test]
    fn header_injection_is_refused_without_echoing_the_value() {
        let mut req = post("");
        req.headers
            .push(("Authorization".into(), "Bearer secret\r\nX-Evil: 1".into()));
        let err = check_request(&req).unwrap_err().to_string();
        assert!(
            err.contains("Authorization") && !err.contains("secret"),
            "{err}"
        );

        let mut req = post("");
        req.headers.push(("X-Evil\r\nHost".into(), "v".into()));
        assert!(matches!(check_request(&req), Err(NetError::Other(_))));

        let mut req = post("");
        req.headers.push(("host".into(), "evil.example".into()));
        assert!(
            check_request(&req)
                .unwrap_err()
                .to_string()
                .contains("set by the host")
        );

        let mut req = post("");
        req.method = "GET /x HTTP/1.1\r\n".into();
        assert!(check_request(&req).is_err());
    }

    #[test]
    fn debug_hides_header_values_bodies_and_queries() {
        let mut req = post("client_secret=hunter2");
        req.url.push_str("?code=q-secret");
        req.headers
            .push(("Authorization".into(), "Bearer tok-secret".into()));
        let shown = format!("{req:?}");
        assert!(
            shown.contains("Authorization") && shown.contains("21 bytes"),
            "{shown}"
        );
        for secret in ["hunter2", "tok-secret", "q-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let response = HttpResponse {
            status: 200,
            headers: vec![("Set-Cookie".into(), "c-secret".into())],
            body: b"{\"access_token\":\"a-secret\"}".to_vec(),
        };
        let shown = format!("{response:?}");
        assert!(
            !shown.contains("a-secret") && !shown.contains("c-secret"),
            "{shown}"
        );
    }
}
