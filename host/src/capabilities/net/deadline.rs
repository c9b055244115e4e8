//! A socket that stops at its call's deadline. The call deadline of the runtime (epoch
//! interruption) holds only while guest code runs: a component blocked in a host call is
//! not interrupted. So each HTTPS exchange carries the call's deadline down to its socket:
//! every read and write waits at most the time left (and at most the I/O timeout), and
//! none starts after the deadline. A server that answers one byte a second therefore
//! cannot hold a call past its deadline, which a per-read timeout alone would allow.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `sock`, bounded by `until`; each read or write also by `io_timeout`.
pub(super) struct DeadlineStream {
    sock: TcpStream,
    until: Option<Instant>,
    io_timeout: Duration,
}

impl DeadlineStream {
    pub(super) fn new(sock: TcpStream, until: Option<Instant>, io_timeout: Duration) -> Self {
        Self {
            sock,
            until,
            io_timeout,
        }
    }

    /// The time the next operation may wait: the I/O timeout, or less near the deadline.
    fn wait(&self) -> io::Result<Duration> {
        let Some(until) = self.until else {
            return Ok(self.io_timeout);
        };
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the call's deadline has passed",
            ));
        }
        Ok(left.min(self.io_timeout))
    }
}

impl Read for DeadlineStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let wait = self.wait()?;
        self.sock.set_read_timeout(Some(wait))?;
        self.sock.read(buf)
    }
}

impl Write for DeadlineStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wait = self.wait()?;
        self.sock.set_write_timeout(Some(wait))?;
        self.sock.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn a_peer_sending_one_byte_a_second_is_cut_off_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            for _ in 0..30 {
                if sock.write_all(b"x").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let sock = TcpStream::connect(addr).unwrap();
        let start = Instant::now();
        let mut stream = DeadlineStream::new(
            sock,
            Some(start + Duration::from_millis(700)),
            Duration::from_secs(5),
        );
        let mut got = 0;
        let err = loop {
            match stream.read(&mut [0u8; 16]) {
                Ok(0) => panic!("the peer closed first"),
                Ok(n) => got += n,
                Err(err) => break err,
            }
        };
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ),
            "{err:?}"
        );
        assert!((1..30).contains(&got), "{got} bytes before the deadline");
    }
}
