//! `lettre-send STAND_IN_DIR FILE`: the native baseline of the send benchmark. Sends FILE
//! as a PDF attachment with lettre 0.11 (blocking SMTP, rustls with ring, STARTTLS, AUTH
//! XOAUTH2, no pooling) to the stand-in Exchange Online that `stand-in` runs, with its
//! token, the way a scanner's native firmware might: read the file, build the message,
//! send it. Exits 1 when the server does not accept the message.
//!
//! `lettre-send STAND_IN_DIR FILE --via HOST:PORT` sends the same message the way a device
//! that cannot do OAuth does: plain SMTP, no TLS, no authentication, to the relay at
//! HOST:PORT (`mfp-host relay`), which passes it on to the stand-in.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Message, SmtpTransport, Transport};

/// The stand-in's default account, and the recipient the device sends to in the bench.
const UPN: &str = "mfp@contoso.com";
const TO: &str = "alice@contoso.com";

/// The native baseline: sends FILE as a PDF attachment with lettre to the stand-in
/// Exchange Online (STARTTLS, AUTH XOAUTH2), or through a relay with plain SMTP.
#[derive(Parser)]
#[command(name = "lettre-send")]
struct Options {
    /// The directory `stand-in` wrote its `ca.pem`, `exchange` and `token` into.
    #[arg(value_name = "STAND_IN_DIR")]
    dir: PathBuf,
    /// The scan to attach.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Send through the relay at this address instead: plain SMTP, no TLS, no AUTH.
    #[arg(long, value_name = "HOST:PORT")]
    via: Option<SocketAddr>,
}

fn main() {
    let options = Options::parse();
    if let Err(e) = send(&options.dir, &options.file, options.via) {
        eprintln!("lettre-send: {e}");
        std::process::exit(1);
    }
}

fn send(
    dir: &std::path::Path,
    file: &std::path::Path,
    via: Option<SocketAddr>,
) -> Result<(), Box<dyn std::error::Error>> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    let transport = match via {
        Some(relay) => SmtpTransport::builder_dangerous(relay.ip().to_string())
            .port(relay.port())
            .tls(Tls::None)
            .hello_name(ClientId::Domain("scanner-0042.contoso.com".into()))
            .timeout(Some(Duration::from_secs(600)))
            .build(),
        None => {
            let exchange: SocketAddr = read("exchange")?.trim().parse()?;
            let token = read("token")?;
            let root = Certificate::from_pem(read("ca.pem")?.as_bytes())?;
            let tls = TlsParameters::builder("smtp.office365.com".into())
                .certificate_store(CertificateStore::None)
                .add_root_certificate(root)
                .build_rustls()?;
            SmtpTransport::builder_dangerous(exchange.ip().to_string())
                .port(exchange.port())
                .tls(Tls::Required(tls))
                .hello_name(ClientId::Domain("mfp-0042.contoso.com".into()))
                .credentials(Credentials::new(UPN.into(), token.trim().into()))
                .authentication(vec![Mechanism::Xoauth2])
                .timeout(Some(Duration::from_secs(600)))
                .build()
        }
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "scan.pdf".into());
    let message = Message::builder()
        .from(UPN.parse()?)
        .to(TO.parse()?)
        .subject("Scan from MFP-0042")
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain("Scanned document attached.".to_owned()))
                .singlepart(
                    Attachment::new(name)
                        .body(std::fs::read(file)?, ContentType::parse("application/pdf")?),
                ),
        )?;
    let reply = transport.send(&message)?;
    if !reply.is_positive() {
        return Err(format!("not accepted: {reply:?}").into());
    }
    Ok(())
}
