//! Certificates for a TLS Redis server, made at test time with rcgen (feature `tls`).

use super::RedisTls;
use crate::certs::TestCertificates;

impl RedisTls {
    /// A fresh CA, a server certificate for `127.0.0.1` and `localhost` and a client
    /// certificate, all signed by that CA (ECDSA P-256; see [`TestCertificates`]). With
    /// `auth_clients` the server refuses a client without a certificate signed by the CA
    /// (`--tls-auth-clients yes`).
    ///
    /// # Panics
    /// When rcgen cannot make a key or a certificate.
    pub fn generate(auth_clients: bool) -> Self {
        let certs = TestCertificates::generate();
        Self {
            ca_pem: certs.ca_pem,
            server_cert_pem: certs.server_cert_pem,
            server_key_pem: certs.server_key_pem,
            client_cert_pem: certs.client_cert_pem,
            client_key_pem: certs.client_key_pem,
            auth_clients,
        }
    }
}
