//! A certificate authority made at run time, so tests and the demo can speak real TLS to
//! the stand-ins under Microsoft's host names without any key on disk or in the repo.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::NetError;

/// The names the server certificate is valid for: Microsoft's two hosts (reached through
/// the host's `--resolve`) and loopback.
pub const SERVER_NAMES: [&str; 5] = [
    "login.microsoftonline.com",
    "smtp.office365.com",
    "localhost",
    "127.0.0.1",
    "::1",
];

/// A root CA and one server certificate it signed, ready as rustls configurations.
pub struct TestCa {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: Arc<ServerConfig>,
}

impl TestCa {
    /// Generates a fresh root CA (ECDSA P-256) and a server certificate for
    /// [`SERVER_NAMES`].
    pub fn generate() -> Result<Self, NetError> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(
            DnType::CommonName,
            "mfp-fakes test CA (not trusted outside tests)",
        );
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(SERVER_NAMES.map(String::from).to_vec())?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAMES[0]);
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let leaf = leaf_params.signed_by(&leaf_key, &ca)?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let server =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)?;
        Ok(Self {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            server: Arc::new(server),
        })
    }

    /// The root certificate in PEM, for a client's trust store (e.g. the host's
    /// `--ca-file`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The root certificate in DER.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca_der.clone()
    }

    /// The servers' TLS configuration.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// A client configuration that trusts this CA only (ring provider), for tests.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, NetError> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der())?;
        let config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
        Ok(Arc::new(config))
    }
}
