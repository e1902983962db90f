//! Certificates for a TLS server, made at test time with rcgen (feature `tls`).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A fresh CA, a server certificate for `127.0.0.1` and `localhost` and a client certificate,
/// all signed by that CA (ECDSA P-256), as PEM text. Its `Debug` never shows a key.
#[derive(Clone)]
pub struct TestCertificates {
    /// The CA that signed the server's and the client's certificates.
    pub ca_pem: String,
    /// The server's certificate, for `127.0.0.1` and `localhost`.
    pub server_cert_pem: String,
    /// The server's private key.
    pub server_key_pem: String,
    /// A client certificate signed by the CA (common name `leader-election test client`).
    pub client_cert_pem: String,
    /// The client certificate's private key.
    pub client_key_pem: String,
}

impl std::fmt::Debug for TestCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCertificates").finish_non_exhaustive()
    }
}

impl TestCertificates {
    /// Makes a new CA and the certificates it signs.
    ///
    /// # Panics
    /// When rcgen cannot make a key or a certificate.
    pub fn generate() -> Self {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "leader-election test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose, cn: &str| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("certificate params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.extended_key_usages = vec![usage];
            let cert = params
                .signed_by(&key, &ca_cert, &ca_key)
                .expect("signed certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert_pem, server_key_pem) = leaf(
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
            "127.0.0.1",
        );
        let (client_cert_pem, client_key_pem) = leaf(
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            "leader-election test client",
        );
        Self {
            ca_pem: ca_cert.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        }
    }
}
