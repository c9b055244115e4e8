//! The identity fake over HTTPS: one request per connection (`Connection: close`), parsed
//! with `httparse`, bounded in head and body size.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::{Clock, NetError, ServerHandle, TestCa, spawn_server};
use crate::World;
use crate::http::{HttpResponse, header};
use crate::identity::{self, MAX_BODY};

/// Largest request head (request line and headers), in bytes.
const MAX_HEAD: usize = 16 * 1024;
/// Most request headers read.
const MAX_HEADERS: usize = 32;
/// How long a client may take to send its request or read the reply.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the identity fake over HTTPS on `listener`, reading the time from `clock`.
pub fn spawn_identity_on(
    listener: TcpListener,
    world: World,
    ca: &TestCa,
    clock: Clock,
) -> Result<ServerHandle, NetError> {
    let config = ca.server_config();
    spawn_server(listener, move |stream, _stop: &AtomicBool| {
        // A failed connection concerns that client only; nothing to report.
        let _ = serve(stream, config.clone(), &world, &clock);
    })
}

/// A parsed request.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn serve(
    tcp: TcpStream,
    config: Arc<ServerConfig>,
    world: &World,
    clock: &Clock,
) -> io::Result<()> {
    tcp.set_read_timeout(Some(TIMEOUT))?;
    tcp.set_write_timeout(Some(TIMEOUT))?;
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    let response = match read_request(&mut tls)? {
        Ok(Some(request)) => identity::handle_http(
            world,
            &request.method,
            &request.path,
            &request.headers,
            &request.body,
            clock(),
        ),
        Ok(None) => return Ok(()),
        Err(refusal) => refusal,
    };
    tls.write_all(&response.to_http1())?;
    tls.conn.send_close_notify();
    tls.flush()
}

/// Reads one request: `Ok(None)` when the client closed first, `Err(response)` when the
/// request is refused before the identity fake sees it.
fn read_request(tls: &mut impl Read) -> io::Result<Result<Option<Request>, HttpResponse>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_len, method, path, headers) = loop {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Ok(Ok(None));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut slots);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let headers = request
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect::<Vec<_>>();
                break (
                    len,
                    request.method.unwrap_or("").to_string(),
                    request.path.unwrap_or("").to_string(),
                    headers,
                );
            }
            Ok(httparse::Status::Partial) if buf.len() <= MAX_HEAD => continue,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                return Ok(Err(HttpResponse::text(
                    431,
                    "Request Header Fields Too Large",
                )));
            }
            Err(_) => return Ok(Err(HttpResponse::text(400, "Bad Request"))),
        }
    };
    if header(&headers, "transfer-encoding").is_some() {
        return Ok(Err(HttpResponse::text(411, "Length Required")));
    }
    let length = match header(&headers, "content-length").map(|v| v.trim().parse::<usize>()) {
        None => 0,
        Some(Ok(n)) if n <= MAX_BODY => n,
        Some(Ok(_)) => return Ok(Err(HttpResponse::text(413, "Payload Too Large"))),
        Some(Err(_)) => return Ok(Err(HttpResponse::text(400, "Bad Request"))),
    };
    let mut body = buf.split_off(head_len);
    while body.len() < length {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Ok(Ok(None));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Ok(Some(Request {
        method,
        path,
        headers,
        body,
    })))
}
