//! HTTPS for the panel (issue #12): a listen address other than loopback gets a
//! self-signed certificate made at the first start, kept private in the state dir and
//! reused, its fingerprint printed; `--tls-cert`/`--tls-key` serve the administrator's
//! own; plain HTTP off loopback needs `--allow-plain-http` and warns; plain HTTP sent to
//! the HTTPS port is refused with a typed error; the session cookie is `Secure` over
//! HTTPS. Loopback stays plain HTTP, as `serve --demo` and the browser tests use it.

use serde_json::json;

mod support;
use support::client::PASSWORD;
use support::server::{Launch, Server, password_dir};
use support::tls::{TlsClient, fingerprint};

fn login_body() -> String {
    json!({ "password": PASSWORD }).to_string()
}

#[test]
fn a_wildcard_listen_serves_https_with_a_kept_self_signed_certificate_and_secure_cookies() {
    let (dir, password_file) = password_dir();
    let state = dir.path().join("state");
    let launch = Launch {
        state_dir: Some(&state),
        password_file: &password_file,
        listen: "0.0.0.0:0",
        ..Launch::default()
    };
    let server = Server::launch(&launch).unwrap();
    assert_eq!(server.scheme, "https", "{:?}", server.printed);
    let printed = server.fingerprint().expect("the fingerprint is printed");
    assert!(
        server.log().contains("self-signed certificate"),
        "{}",
        server.log()
    );

    // The certificate and its key: one private file in the state dir.
    let kept = state.join("panel-tls.pem");
    let pem = std::fs::read_to_string(&kept).unwrap();
    assert!(pem.contains("PRIVATE KEY") && pem.contains("BEGIN CERTIFICATE"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A browser that accepted exactly that certificate gets the panel.
    let tls = TlsClient::pinned(&server.addr, &printed);
    let page = tls.request("GET", "/login", &[], None);
    assert_eq!(page.status, 200, "{}", page.body);
    // Another certificate (someone in between) is not this one.
    let other = TlsClient::pinned(&server.addr, &["00"; 32].join(":"));
    assert!(other.try_request("GET", "/login", &[], None).is_err());

    // Login over HTTPS: the Origin is https://, and the cookie is Secure.
    let reply = tls.request(
        "POST",
        "/api/v1/login",
        &[("Origin", &tls.origin())],
        Some(&login_body()),
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    let set_cookie = reply.header("set-cookie").unwrap().to_owned();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    // The http:// origin of the same address is another origin.
    let change = json!({ "changes": { "service-provider": "exchange-online" } }).to_string();
    let plain_origin = format!("http://{}", server.addr);
    let reply = tls.request(
        "POST",
        "/api/v1/smtp",
        &[("Cookie", &cookie), ("Origin", &plain_origin)],
        Some(&change),
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    let reply = tls.request(
        "POST",
        "/api/v1/smtp",
        &[("Cookie", &cookie), ("Origin", &tls.origin())],
        Some(&change),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = tls.request(
        "POST",
        "/api/v1/logout",
        &[("Cookie", &cookie), ("Origin", &tls.origin())],
        None,
    );
    assert_eq!(reply.status, 204);
    assert!(reply.header("set-cookie").unwrap().contains("; Secure"));

    // Plain HTTP to the HTTPS port: refused, with the remedy, never served.
    let reply = server.request(
        "POST",
        "/api/v1/login",
        &[("Origin", &plain_origin)],
        Some(&login_body()),
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.error_code(), "https-required");
    assert!(reply.header("set-cookie").is_none());

    // The next start keeps the certificate: same file, same fingerprint.
    drop(server);
    let again = Server::launch(&launch).unwrap();
    assert_eq!(again.fingerprint().as_deref(), Some(printed.as_str()));
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), pem);
    assert!(
        !again
            .log()
            .contains("self-signed certificate for the panel was made")
    );
    let tls = TlsClient::pinned(&again.addr, &printed);
    assert_eq!(tls.request("GET", "/login", &[], None).status, 200);
}

/// A CA and a server certificate it signed for `localhost` and 127.0.0.1: (CA, chain PEM,
/// key PEM, the server certificate's fingerprint).
fn administrator_certificate() -> (
    rustls::pki_types::CertificateDer<'static>,
    String,
    String,
    String,
) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "serve_https test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = params.signed_by(&key, &ca).unwrap();
    (
        ca.der().clone(),
        format!("{}{}", leaf.pem(), ca.pem()),
        key.serialize_pem(),
        fingerprint(leaf.der()),
    )
}

#[test]
fn the_administrators_certificate_serves_https_on_any_address() {
    let (ca, chain, key, leaf_fingerprint) = administrator_certificate();
    let (dir, password_file) = password_dir();
    let (cert_file, key_file) = (dir.path().join("panel.crt"), dir.path().join("panel.key"));
    std::fs::write(&cert_file, chain).unwrap();
    std::fs::write(&key_file, key).unwrap();
    let state = dir.path().join("state");
    let server = Server::launch(&Launch {
        state_dir: Some(&state),
        password_file: &password_file,
        serve: &[
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
        ..Launch::default()
    })
    .unwrap();
    assert_eq!(server.scheme, "https");
    assert_eq!(
        server.fingerprint().as_deref(),
        Some(leaf_fingerprint.as_str())
    );
    // No self-signed certificate is made when one is given.
    assert!(!state.join("panel-tls.pem").exists());
    // A client that verifies the chain and the name, as a browser does with a trusted CA.
    let tls = TlsClient::trusting(&server.addr, ca, "localhost");
    let reply = tls.request(
        "POST",
        "/api/v1/login",
        &[("Origin", &tls.origin())],
        Some(&login_body()),
    );
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert!(reply.header("set-cookie").unwrap().contains("; Secure"));
}

#[test]
fn plain_http_off_loopback_needs_its_flag_and_warns_and_loopback_stays_plain() {
    let (dir, password_file) = password_dir();
    let state = dir.path().join("state");
    let plain = Server::launch(&Launch {
        state_dir: Some(&state),
        password_file: &password_file,
        listen: "0.0.0.0:0",
        serve: &["--allow-plain-http"],
        ..Launch::default()
    })
    .unwrap();
    assert_eq!(plain.scheme, "http");
    assert!(plain.fingerprint().is_none());
    assert!(
        plain
            .log()
            .contains("warning: serving the panel over plain HTTP"),
        "{}",
        plain.log()
    );
    let (reply, cookie) = plain.try_login();
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert!(cookie.is_some());
    assert!(!reply.header("set-cookie").unwrap().contains("Secure"));
    assert!(!state.join("panel-tls.pem").exists());
    drop(plain);

    // The flag contradicts a certificate; a certificate needs its key.
    for serve in [
        &[
            "--allow-plain-http",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ][..],
        &["--tls-cert", "c.pem"][..],
    ] {
        let refused = Server::launch(&Launch {
            state_dir: Some(&state),
            password_file: &password_file,
            listen: "0.0.0.0:0",
            serve,
            ..Launch::default()
        });
        let stderr = refused.err().expect("refused");
        assert!(stderr.contains("--tls"), "{stderr}");
    }

    // Loopback without flags: plain HTTP as before, no warning, no certificate.
    let local = Server::start(&[]);
    assert_eq!(local.scheme, "http");
    assert!(local.fingerprint().is_none());
    assert!(
        !local
            .log()
            .contains("warning: serving the panel over plain HTTP")
    );
    assert_eq!(local.request("GET", "/login", &[], None).status, 200);
}
