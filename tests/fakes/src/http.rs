//! The HTTP shapes the identity fake speaks: a response value and the serialisation the
//! loopback server and the browser preview both send.

use std::fmt;

/// An HTTP response of the identity fake.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Bodies carry tokens: `Debug` shows their length only.
impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .finish()
    }
}

impl HttpResponse {
    /// A JSON response with the headers the identity platform sends on token replies
    /// (`no-store`: tokens must not be cached).
    pub fn json(status: u16, value: &serde_json::Value, request_id: &str) -> Self {
        Self {
            status,
            headers: vec![
                (
                    "Content-Type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("Cache-Control".into(), "no-store, no-cache".into()),
                ("Pragma".into(), "no-cache".into()),
                ("Expires".into(), "-1".into()),
                (
                    "Strict-Transport-Security".into(),
                    "max-age=31536000; includeSubDomains".into(),
                ),
                ("X-Content-Type-Options".into(), "nosniff".into()),
                ("x-ms-request-id".into(), request_id.into()),
                (
                    "x-ms-ests-server".into(),
                    "2.1.18000.0 - NEULR1 ProdSlices".into(),
                ),
            ],
            body: value.to_string().into_bytes(),
        }
    }

    /// A plain-text response, for requests that are not OAuth at all (unknown path).
    pub fn text(status: u16, text: &str) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: text.as_bytes().to_vec(),
        }
    }

    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    /// The body as JSON, for tests and the preview.
    pub fn json_body(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The response as HTTP/1.1 bytes, with `Content-Length` and `Connection: close`
    /// (the loopback server answers one request per connection).
    pub fn to_http1(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                self.body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&self.body);
        out
    }
}

/// The value of header `name` (case-insensitive) in `headers`.
pub fn header<'a, K: AsRef<str>, V: AsRef<str>>(
    headers: &'a [(K, V)],
    name: &str,
) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_ref())
}

/// The reason phrase of the statuses the fakes send.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
