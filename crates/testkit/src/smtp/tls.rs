//! Certificates for the test SMTP server's TLS: a throwaway CA made at test time (ECDSA P-256
//! through rcgen and ring), server certificates it signs for `127.0.0.1` and `localhost`, and
//! the rustls configuration that serves one. Nothing is read from or written to the system's
//! trust store; a test hands the CA's PEM file to the process that should trust it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority that exists only for one test.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    certificate: CertificateDer<'static>,
    pem: String,
}

impl TestCa {
    /// A new CA whose certificate is named `name` (so two CAs in one test are told apart).
    #[must_use]
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        Self {
            pem: certificate.pem(),
            certificate: certificate.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate as PEM.
    #[must_use]
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// The CA certificate as DER, for a rustls root store.
    #[must_use]
    pub fn der(&self) -> CertificateDer<'static> {
        self.certificate.clone()
    }

    /// Writes the CA certificate to `dir/<file_name>` (PEM) and returns the path, for
    /// `SSL_CERT_FILE`.
    #[must_use]
    pub fn write_pem(&self, dir: &Path, file_name: &str) -> PathBuf {
        let path = dir.join(file_name);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    /// A server certificate for `127.0.0.1` and `localhost`, signed by this CA.
    #[must_use]
    pub fn server_certificate(&self) -> ServerCertificate {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "testkit SMTP server");
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        ServerCertificate {
            chain: vec![certificate.der().clone()],
            key_pkcs8: key.serialize_der(),
        }
    }
}

/// A server's certificate chain and private key.
#[derive(Clone)]
pub struct ServerCertificate {
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate").finish_non_exhaustive()
    }
}

impl ServerCertificate {
    /// A rustls server configuration that presents this certificate, with the ring provider
    /// (TLS 1.2 and 1.3, no client certificates).
    #[must_use]
    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()));
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .unwrap();
        Arc::new(config)
    }
}
