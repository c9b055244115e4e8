//! The SMTP connection: plain TCP that the component upgrades to TLS in place with
//! `start_tls` after its `STARTTLS` command ([`StartTlsStream`]: bytes the server sent
//! early become part of the handshake and make it fail).
//!
//! The connection holds one of the destination's connection slots until it is dropped.

use std::fmt;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection};

use super::limits::Permit;
use super::starttls::StartTlsStream;
use super::{Destination, NetError, tls};

/// Largest single read handed to the component, whatever it asks for.
pub const MAX_READ: usize = 64 * 1024;
/// Longest wait the component may ask for in one read, write or handshake: RFC 5321's
/// longest stage timeout (the reply to the final dot, §4.5.3.2).
pub const MAX_STAGE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

pub struct SmtpConnection {
    destination: Destination,
    stream: StartTlsStream<ClientConnection>,
    tls: Arc<ClientConfig>,
    _permit: Permit,
    /// When the reply being read must be complete: set by the first read after a write
    /// (or after connecting), from that read's stage timeout; cleared by the next write.
    /// RFC 5321 §4.5.3.2 times a reply, not each read, so a server trickling one byte at
    /// a time cannot stretch a stage beyond its timeout.
    reply_deadline: Option<Instant>,
}

impl fmt::Debug for SmtpConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConnection")
            .field("destination", &self.destination.to_string())
            .field("state", &self.stream.state())
            .finish_non_exhaustive()
    }
}

impl SmtpConnection {
    pub(super) fn new(
        destination: Destination,
        sock: TcpStream,
        tls: Arc<ClientConfig>,
        permit: Permit,
    ) -> Self {
        Self {
            destination,
            stream: StartTlsStream::plain(sock),
            tls,
            _permit: permit,
            reply_deadline: None,
        }
    }

    /// Whether a read now continues the reply already being read (its time was counted
    /// when the reply's first read began).
    pub fn reading_a_reply(&self) -> bool {
        self.reply_deadline.is_some()
    }

    /// `host:port` this connection reaches.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Whether `start_tls` has succeeded.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// The device's address on this connection (for an EHLO address literal).
    pub fn local_ip(&self) -> Option<std::net::IpAddr> {
        self.stream
            .socket()
            .and_then(|s| s.local_addr().ok())
            .map(|a| a.ip())
    }

    /// Reads at most `max` bytes (and at most [`MAX_READ`]), waiting for at least one:
    /// `Closed` at the end of the stream, `Timeout` once `timeout` has passed since the
    /// first read of this reply (the first read after a write, or after connecting).
    pub fn read(&mut self, max: u32, timeout: Duration) -> Result<Vec<u8>, NetError> {
        let now = Instant::now();
        let deadline = *self
            .reply_deadline
            .get_or_insert_with(|| now + timeout.min(MAX_STAGE_TIMEOUT));
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(NetError::Timeout);
        }
        self.stream.read(max, left)
    }

    /// Writes all of `data` (encrypted once TLS is on), each socket write within `timeout`.
    pub fn write(&mut self, data: &[u8], timeout: Duration) -> Result<(), NetError> {
        self.reply_deadline = None;
        self.stream.write_all(data, timeout)
    }

    /// Performs the TLS handshake on this connection, verifying the certificate for
    /// `server_name`, each of its reads and writes within `timeout`. A second call is an
    /// error; a failed handshake closes the connection.
    pub fn start_tls(&mut self, server_name: &str, timeout: Duration) -> Result<(), NetError> {
        // TLS verifies the name given, so it must be the granted server's: a certificate
        // for another name must not make this connection pass for that name's.
        let named = Destination::new(server_name, self.destination.port);
        if named != self.destination {
            return Err(NetError::Denied(named.to_string()));
        }
        self.reply_deadline = None;
        let sock = self.stream.take_for_handshake(timeout)?;
        let _ = sock.set_nodelay(true);
        self.stream
            .upgraded(tls::handshake(&self.tls, server_name, sock)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::Arc;
    use std::thread::{self, JoinHandle};
    use std::time::{Duration, Instant};

    use rustls::ServerConfig;

    use super::super::testing::{self, TestCa, net_config};
    use super::super::{Net, NetConfig, NetError, NetGrant};
    use super::SmtpConnection;

    const SMTP: &str = "smtp.office365.com";
    /// The stage timeout of the tests that do not test timeouts.
    const T: Duration = Duration::from_secs(5);

    fn grant(config: NetConfig) -> NetGrant {
        Net::new(config).unwrap().grant(Some((SMTP.into(), 587)))
    }

    fn read_line(reader: &mut impl BufRead) -> String {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        line
    }

    /// Reads until the reply's last line (`NNN ` rather than `NNN-`) has arrived.
    fn read_reply(conn: &mut SmtpConnection) -> String {
        let complete = |reply: &str| {
            reply.ends_with('\n')
                && reply
                    .lines()
                    .last()
                    .is_some_and(|l| l.as_bytes().get(3) == Some(&b' '))
        };
        let mut reply = String::new();
        while !complete(&reply) {
            reply.push_str(&String::from_utf8(conn.read(512, T).unwrap()).unwrap());
        }
        reply
    }

    /// Exchange Online's opening as far as AUTH: greeting and STARTTLS in plain text, then
    /// EHLO and QUIT under TLS. Returns the lines the server read after the upgrade.
    fn fake_exchange(tls: Arc<ServerConfig>) -> (u16, JoinHandle<Vec<String>>) {
        let (listener, port) = testing::listener();
        let handle = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.write_all(
                b"220 fake.outlook.office365.com Microsoft ESMTP MAIL Service ready\r\n",
            )
            .unwrap();
            let mut plain = BufReader::new(sock.try_clone().unwrap());
            assert_eq!(read_line(&mut plain), "STARTTLS\r\n");
            sock.write_all(b"220 2.0.0 SMTP server ready\r\n").unwrap();
            let Some(stream) = testing::accept_tls(&tls, sock) else {
                return Vec::new();
            };
            let mut stream = BufReader::new(stream);
            let mut seen = vec![read_line(&mut stream)];
            stream.get_mut().write_all(b"250-fake.outlook.office365.com Hello\r\n250-SIZE 157286400\r\n250 AUTH LOGIN XOAUTH2\r\n").unwrap();
            seen.push(read_line(&mut stream));
            stream
                .get_mut()
                .write_all(b"221 2.0.0 Service closing transmission channel\r\n")
                .unwrap();
            stream.get_mut().conn.send_close_notify();
            let _ = stream.get_mut().flush();
            seen
        });
        (port, handle)
    }

    #[test]
    fn starttls_upgrades_the_connection_in_place() {
        let ca = TestCa::new("test CA");
        let (port, server) = fake_exchange(ca.server_config(&[SMTP]));
        let grant = grant(net_config(&ca, &[("smtp.office365.com:587", port)]));
        let mut conn = grant.connect("SMTP.Office365.com", 587).unwrap();
        assert!(read_reply(&mut conn).starts_with("220 fake.outlook"));
        conn.write(b"STARTTLS\r\n", T).unwrap();
        assert_eq!(read_reply(&mut conn), "220 2.0.0 SMTP server ready\r\n");
        conn.start_tls(SMTP, T).unwrap();
        assert!(conn.is_tls());
        conn.write(b"EHLO printer\r\n", T).unwrap();
        assert!(read_reply(&mut conn).ends_with("250 AUTH LOGIN XOAUTH2\r\n"));
        conn.write(b"QUIT\r\n", T).unwrap();
        assert!(read_reply(&mut conn).starts_with("221 2.0.0"));
        assert_eq!(
            conn.read(64, T),
            Err(NetError::Closed),
            "close_notify ends the stream"
        );
        assert_eq!(server.join().unwrap(), ["EHLO printer\r\n", "QUIT\r\n"]);
        let again = conn.start_tls(SMTP, T).unwrap_err();
        assert!(again.to_string().contains("already active"), "{again}");
    }

    #[test]
    fn starttls_with_an_untrusted_certificate_fails_and_closes() {
        let ca = TestCa::new("test CA");
        let rogue = TestCa::new("rogue CA");
        let (port, _server) = fake_exchange(rogue.server_config(&[SMTP]));
        let grant = grant(net_config(&ca, &[("smtp.office365.com:587", port)]));
        let mut conn = grant.connect(SMTP, 587).unwrap();
        read_reply(&mut conn);
        conn.write(b"STARTTLS\r\n", T).unwrap();
        read_reply(&mut conn);
        assert_eq!(
            conn.start_tls(SMTP, T),
            Err(NetError::Tls(
                "invalid peer certificate: UnknownIssuer".into()
            ))
        );
        assert!(
            matches!(conn.write(b"EHLO x\r\n", T), Err(NetError::Other(_))),
            "no plaintext after a failed upgrade"
        );
    }

    #[test]
    fn only_the_granted_server_and_port_are_reachable() {
        let net = Net::new(NetConfig::default()).unwrap();
        let granted = net.grant(Some((SMTP.into(), 587)));
        for (host, port, named) in [
            (SMTP, 25, "smtp.office365.com:25"),
            ("smtp.evil.example", 587, "smtp.evil.example:587"),
            (
                "login.microsoftonline.com",
                443,
                "login.microsoftonline.com:443",
            ),
        ] {
            assert_eq!(
                granted.connect(host, port).unwrap_err(),
                NetError::Denied(named.into())
            );
        }
        assert_eq!(
            net.grant(None).connect(SMTP, 587).unwrap_err(),
            NetError::Denied("smtp.office365.com:587".into())
        );
    }

    #[test]
    fn each_reply_waits_as_long_as_its_caller_says() {
        let (listener, port) = testing::listener();
        let ca = TestCa::new("test CA");
        // The HTTPS timeout does not bound SMTP reads: each reply brings its own.
        let mut config = net_config(&ca, &[("smtp.office365.com:587", port)]);
        config.io_timeout = Duration::from_millis(50);
        let mut conn = grant(config).connect(SMTP, 587).unwrap();
        for wait in [Duration::from_millis(200), Duration::from_millis(600)] {
            // A command, then its reply: the reply's time starts with its first read.
            conn.write(b"NOOP\r\n", wait).unwrap();
            let started = Instant::now();
            assert_eq!(conn.read(512, wait), Err(NetError::Timeout));
            // The same reply read on: its time is used up, whatever this read asks for.
            assert_eq!(conn.read(512, wait), Err(NetError::Timeout));
            let took = started.elapsed();
            assert!(
                took >= wait - Duration::from_millis(20),
                "{took:?} < {wait:?}"
            );
            assert!(
                took < wait + Duration::from_millis(400),
                "{took:?} >> {wait:?}"
            );
        }
        drop(listener);
    }

    #[test]
    fn a_reply_trickling_one_byte_at_a_time_ends_at_its_timeout() {
        let (listener, port) = testing::listener();
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            for byte in b"220-".iter().cycle().take(100) {
                if sock.write_all(&[*byte]).is_err() {
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        let ca = TestCa::new("test CA");
        let mut conn = grant(net_config(&ca, &[("smtp.office365.com:587", port)]))
            .connect(SMTP, 587)
            .unwrap();
        let wait = Duration::from_millis(500);
        let started = Instant::now();
        let mut got = 0;
        let err = loop {
            match conn.read(512, wait) {
                Ok(bytes) => got += bytes.len(),
                Err(err) => break err,
            }
        };
        assert_eq!(err, NetError::Timeout);
        assert!(
            got > 1,
            "bytes kept coming ({got}), each read within its own timeout"
        );
        assert!(started.elapsed() < wait * 3, "{:?}", started.elapsed());
        drop(conn);
        let _ = server.join();
    }

    #[test]
    fn server_hanging_up_is_closed() {
        let (listener, port) = testing::listener();
        let server = thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            sock.write_all(b"421 4.3.2 Service not available\r\n")
                .unwrap();
        });
        let ca = TestCa::new("test CA");
        let mut conn = grant(net_config(&ca, &[("smtp.office365.com:587", port)]))
            .connect(SMTP, 587)
            .unwrap();
        server.join().unwrap();
        assert_eq!(
            conn.read(512, T).unwrap(),
            b"421 4.3.2 Service not available\r\n"
        );
        assert_eq!(conn.read(512, T), Err(NetError::Closed));
        assert!(matches!(conn.read(0, T), Err(NetError::Other(_))));
    }

    #[test]
    fn fourth_concurrent_connection_waits_for_a_slot() {
        // The listener's backlog completes the TCP handshakes; nobody needs to accept.
        let (_listener, port) = testing::listener();
        let ca = TestCa::new("test CA");
        let mut config = net_config(&ca, &[("smtp.office365.com:587", port)]);
        config.connect_timeout = Duration::from_millis(500);
        let grant = grant(config);
        let mut open: Vec<_> = (0..3).map(|_| grant.connect(SMTP, 587).unwrap()).collect();

        let err = grant.connect(SMTP, 587).unwrap_err();
        assert!(
            matches!(&err, NetError::Other(m) if m.contains("3 concurrent connections")),
            "{err:?}"
        );

        let waiter = {
            let grant = grant.clone();
            thread::spawn(move || grant.connect(SMTP, 587).map(|_| ()))
        };
        thread::sleep(Duration::from_millis(100));
        open.pop();
        waiter
            .join()
            .unwrap()
            .expect("a dropped connection frees its slot");
    }
}
