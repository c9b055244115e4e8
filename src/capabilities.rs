//! The host capabilities the services use, as traits: the component implements them
//! over its WIT imports, native tests over fakes. Keeping them traits keeps the services
//! (`auth`, `mailer`) testable without wasmtime.

use crate::diagnose::{Diagnostic, Severity};
use crate::remedy::Remedy;
use crate::signin::HttpRequest;

/// Why the host's network failed; mirrors `net-error` in `wit/net.wit`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetFailure {
    #[error("the device may not connect to {0}")]
    Denied(String),
    #[error("the name {0} could not be resolved")]
    Dns(String),
    #[error("the connection was refused ({0})")]
    Refused(String),
    #[error("no answer in time")]
    Timeout,
    #[error("TLS failed ({0})")]
    Tls(String),
    #[error("the connection was closed")]
    Closed,
    #[error("the answer was too large ({0} bytes)")]
    TooLarge(u64),
    #[error("the proxy failed ({0})")]
    Proxy(String),
    #[error("{0}")]
    Other(String),
}

impl NetFailure {
    /// The diagnosis of a network failure toward `what` (e.g. "the Microsoft identity
    /// platform at https://login.microsoftonline.com").
    pub fn diagnostic(&self, what: &str) -> Diagnostic {
        // The device's network settings are the web panel's words; the command line names
        // the flags that stand for them.
        let (code, web_panel, command_line) = match self {
            Self::Denied(_) => (
                "network-denied",
                "The device's runtime does not allow this destination: check the SMTP server settings and the identity platform the device uses.",
                "This destination is outside what mfp-host grants: check --authority, --resolve and the smtp-server and send-port settings.",
            ),
            Self::Dns(_) => (
                "network-dns",
                "Check the DNS server settings of the device's network connection, and the spelling of the server's name.",
                "Check this machine's DNS and the spelling of the server's name, or map the name with --resolve HOST:PORT=ADDR:PORT.",
            ),
            Self::Refused(_) => (
                "network-unreachable",
                "Check the network cable, the DNS and proxy server settings, and that the firewall allows the device out.",
                "Check the network, the DNS, --proxy, and that the firewall allows this machine out.",
            ),
            Self::Timeout => (
                "network-timeout",
                "Check the network and the proxy server settings, then try again.",
                "Check the network and --proxy, then try again.",
            ),
            Self::Tls(_) => (
                "network-tls",
                "Check the device's date and time, and that no proxy replaces Microsoft's certificates (or add its root certificate).",
                "Check this machine's clock, and that no proxy replaces Microsoft's certificates (or add its root certificate with --ca-file).",
            ),
            Self::Closed => (
                "network-closed",
                "Try again; if it persists, check the proxy server and firewall.",
                "Try again; if it persists, check --proxy and the firewall.",
            ),
            Self::TooLarge(_) => (
                "network-too-large",
                "Try again; something other than Microsoft may be answering (check the proxy).",
                "Try again; something other than Microsoft may be answering (check --proxy).",
            ),
            Self::Proxy(_) => (
                "network-proxy",
                "Check the proxy server settings of the device: its address, its port, and that it allows connections to Microsoft's servers.",
                "Check --proxy (http://HOST:PORT) and that the proxy allows CONNECT to Microsoft's servers.",
            ),
            Self::Other(_) => (
                "network-failed",
                "Try again; if it persists, check the device's network settings.",
                "Try again; if it persists, check this machine's network settings.",
            ),
        };
        let remedy = Remedy::each(web_panel, command_line);
        Diagnostic::new(
            code,
            Severity::Error,
            format!("Could not reach {what}: {self}."),
            remedy,
        )
    }
}

/// A response as the services need it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// Response headers as name and value, as the host received them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The server's clock from its `Date` header (Unix seconds), if it sent a readable one:
    /// the token endpoint's tells a wrong device clock.
    pub fn date(&self) -> Option<u64> {
        crate::signin::clock::date_header(&self.headers)
    }
}

/// HTTPS to the identity platform.
pub trait Http {
    fn send(&self, request: &HttpRequest) -> Result<HttpReply, NetFailure>;
    /// The identity platform this host grants, e.g. `https://login.microsoftonline.com`.
    fn authority(&self) -> String;
    /// The host's per-invocation overrides of the `tenant` and `client-id` settings
    /// (`mfp-host --tenant`, `--client-id`); none by default.
    fn overrides(&self) -> SigninOverrides {
        SigninOverrides::default()
    }
}

/// Values that replace the stored sign-in settings for one invocation of the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SigninOverrides {
    pub tenant: Option<String>,
    pub client_id: Option<String>,
}

/// One SMTP connection, upgradable to TLS in place.
pub trait SmtpStream {
    fn read(&mut self, max: u32) -> Result<Vec<u8>, NetFailure>;
    fn write(&mut self, data: &[u8]) -> Result<(), NetFailure>;
    fn start_tls(&mut self, server_name: &str) -> Result<(), NetFailure>;
    /// The longest wait of the operations that follow: the session's current stage
    /// timeout (RFC 5321 §4.5.3.2), set before each one. Fakes may ignore it.
    fn set_timeout(&mut self, _timeout: std::time::Duration) {}
}

/// Opens SMTP connections.
pub trait SmtpConnector {
    type Stream: SmtpStream;
    fn connect(&self, host: &str, port: u16) -> Result<Self::Stream, NetFailure>;
    /// The device's name for EHLO as the host knows it (its host name, or an address
    /// literal); validated by the caller. Empty: the host knows none.
    fn ehlo_name(&self) -> String {
        String::new()
    }
    /// What every stage timeout is divided by: 1 (the RFC values) except in tests.
    fn timeout_divisor(&self) -> u32 {
        1
    }
}

/// Attachments of the current send, read in chunks.
pub trait Attachments {
    /// The file name and size of attachment `id`.
    fn info(&self, id: u32) -> Result<(String, u64), String>;
    /// At most `max` bytes of attachment `id` from `offset`; empty at the end.
    fn read(&self, id: u32, offset: u64, max: u32) -> Result<Vec<u8>, String>;
}
