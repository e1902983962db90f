//! TLS as libpq's `sslmode` describes it: the modes, the settings beyond the connection string
//! (a CA, a client certificate), and (feature `tls`) the rustls connector, with the ring
//! provider, that the pool and the release listener connect with.

use std::fmt;

use leader_election::pem::Pem;

use crate::error::BuildError;

/// libpq's `sslmode`. tokio-postgres knows only `disable`, `prefer` and `require`, so this
/// crate reads `sslmode` itself and tells tokio-postgres `require` for the verifying modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is checked against the CA
    /// only when one is given (as libpq does), never the host name.
    Prefer,
    /// TLS or no connection; the certificate is checked against the CA only when one is given
    /// (as libpq does, for compatibility), never the host name.
    Require,
    /// TLS, the certificate signed by a trusted CA; the host name is not checked.
    VerifyCa,
    /// TLS, the certificate signed by a trusted CA and issued for the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The mode named `value`, as in a connection string.
    pub(crate) fn parse(value: &str) -> Result<Self, BuildError> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(BuildError::InvalidConnectionString(format!(
                    "unsupported sslmode {}: expected disable, prefer, require, verify-ca or \
                     verify-full",
                    leader_election::quoted(other)
                )));
            }
        })
    }

    /// The setting as written in a connection string.
    #[cfg_attr(feature = "tls", allow(dead_code))]
    pub(crate) fn setting(self) -> &'static str {
        match self {
            Self::Disable => "sslmode=disable",
            Self::Prefer => "sslmode=prefer",
            Self::Require => "sslmode=require",
            Self::VerifyCa => "sslmode=verify-ca",
            Self::VerifyFull => "sslmode=verify-full",
        }
    }

    /// What tokio-postgres is told: it negotiates TLS, this crate's connector verifies.
    pub(crate) fn negotiation(self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Pg;
        match self {
            Self::Disable => Pg::Disable,
            Self::Prefer => Pg::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => Pg::Require,
        }
    }
}

/// Where the CAs come from: PEM, or the system's root certificates (`sslrootcert=system`).
#[derive(Clone)]
pub(crate) enum Ca {
    Pem(Pem),
    System,
}

/// The TLS settings beyond `sslmode`: CAs to trust and a client certificate, from the builder
/// or from the connection string's `sslrootcert`, `sslcert` and `sslkey`.
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    pub(crate) ca: Vec<Ca>,
    pub(crate) client_cert: Option<Pem>,
    pub(crate) client_key: Option<Pem>,
}

impl TlsSettings {
    pub(crate) fn is_empty(&self) -> bool {
        self.ca.is_empty() && self.client_cert.is_none() && self.client_key.is_none()
    }

    /// The settings a connection string adds: `sslrootcert` (a file, or `system`), `sslcert`
    /// and `sslkey` (files). The builder's client certificate, when set, wins over the string's.
    pub(crate) fn with_params(&self, params: &[(String, String)]) -> Self {
        let mut merged = self.clone();
        for (key, value) in params {
            match key.as_str() {
                "sslrootcert" if value == "system" => merged.ca.push(Ca::System),
                "sslrootcert" => merged.ca.push(Ca::Pem(Pem::File(value.into()))),
                "sslcert" if self.client_cert.is_none() => {
                    merged.client_cert = Some(Pem::File(value.into()));
                }
                "sslkey" if self.client_key.is_none() => {
                    merged.client_key = Some(Pem::File(value.into()));
                }
                _ => {}
            }
        }
        merged
    }
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A key is never shown: a path says where it is, PEM in memory shows only its length.
        let ca: Vec<String> = self
            .ca
            .iter()
            .map(|ca| match ca {
                Ca::Pem(pem) => pem.describe(),
                Ca::System => "system".to_owned(),
            })
            .collect();
        f.debug_struct("TlsSettings")
            .field("ca", &ca)
            .field("client_cert", &self.client_cert.as_ref().map(Pem::describe))
            .field("client_key", &self.client_key.as_ref().map(Pem::describe))
            .finish()
    }
}

/// What makes the connections: rustls (feature `tls`) or no TLS at all.
#[cfg(feature = "tls")]
pub(crate) type Connector = tokio_postgres_rustls::MakeRustlsConnect;
/// What makes the connections: rustls (feature `tls`) or no TLS at all.
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = tokio_postgres::NoTls;

/// The connector for `mode` with `settings`.
///
/// # Errors
/// [`BuildError::TlsNotEnabled`] without feature `tls` for a mode that needs TLS or TLS
/// settings; [`BuildError::Tls`] for settings that cannot be used.
pub(crate) fn connector(mode: SslMode, settings: &TlsSettings) -> Result<Connector, BuildError> {
    if mode == SslMode::Disable && !settings.is_empty() {
        return Err(BuildError::Tls {
            setting: "sslmode",
            reason: "TLS settings (a CA or a client certificate) are set, but the connection \
                     string sets sslmode=disable"
                .to_owned(),
        });
    }
    #[cfg(feature = "tls")]
    {
        rustls_connector(mode, settings)
    }
    #[cfg(not(feature = "tls"))]
    {
        match mode {
            SslMode::Disable | SslMode::Prefer if settings.is_empty() => Ok(tokio_postgres::NoTls),
            SslMode::Disable | SslMode::Prefer => Err(BuildError::TlsNotEnabled {
                setting: "a CA or client certificate",
            }),
            _ => Err(BuildError::TlsNotEnabled {
                setting: mode.setting(),
            }),
        }
    }
}

#[cfg(feature = "tls")]
pub(crate) use rustls_impl::rustls_connector;

#[cfg(feature = "tls")]
mod rustls_impl {
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

    use super::{Ca, Pem, SslMode, TlsSettings};
    use crate::error::BuildError;

    /// The certificates in PEM text; an error when there are none or one does not parse.
    fn certificates(
        pem: &Pem,
        setting: &'static str,
    ) -> Result<Vec<CertificateDer<'static>>, BuildError> {
        let bytes = pem
            .read()
            .map_err(|reason| BuildError::Tls { setting, reason })?;
        let error = |reason: String| BuildError::Tls { setting, reason };
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| error(format!("{}: not valid PEM: {e}", pem.describe())))?;
        if certs.is_empty() {
            return Err(error(format!(
                "{}: no certificate (no -----BEGIN CERTIFICATE----- block)",
                pem.describe()
            )));
        }
        Ok(certs)
    }

    /// The trusted roots: the CAs given, the system's for `sslrootcert=system`, or the
    /// system's when none is given.
    fn roots(settings: &TlsSettings) -> Result<RootCertStore, BuildError> {
        let mut roots = RootCertStore::empty();
        let system = settings.ca.is_empty() || settings.ca.iter().any(|c| matches!(c, Ca::System));
        if system {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A certificate the system store holds but rustls cannot parse is skipped, as
                // browsers do; the others still verify the server.
                let _ = roots.add(cert);
            }
        }
        for ca in &settings.ca {
            let Ca::Pem(pem) = ca else { continue };
            for cert in certificates(pem, "tls_ca")? {
                roots.add(cert).map_err(|e| BuildError::Tls {
                    setting: "tls_ca",
                    reason: format!("{}: not a usable CA certificate: {e}", pem.describe()),
                })?;
            }
        }
        if roots.is_empty() {
            return Err(BuildError::Tls {
                setting: "tls_ca",
                reason: "no CA to verify the server with: set a CA (tls_ca_pem, tls_ca_file or \
                         sslrootcert), or install the system's root certificates"
                    .to_owned(),
            });
        }
        Ok(roots)
    }

    /// A rustls connector for `mode`, with the ring provider, trusting the configured CAs (or
    /// the system's), with the client certificate if one is configured.
    ///
    /// The provider is chosen here rather than taken from rustls's process-wide default: that
    /// default panics when a program links both rustls providers (ring and aws-lc-rs, as the
    /// Azure SDK does).
    pub(crate) fn rustls_connector(
        mode: SslMode,
        settings: &TlsSettings,
    ) -> Result<tokio_postgres_rustls::MakeRustlsConnect, BuildError> {
        // A half-configured client certificate is refused before any file is read.
        match (&settings.client_cert, &settings.client_key) {
            (None, Some(_)) => {
                return Err(BuildError::Tls {
                    setting: "tls_client_key",
                    reason: "a client key without a client certificate: set both".to_owned(),
                });
            }
            (Some(_), None) => {
                return Err(BuildError::Tls {
                    setting: "tls_client_cert",
                    reason: "a client certificate without its private key: set both".to_owned(),
                });
            }
            _ => {}
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        // As libpq: prefer and require check the certificate only when a CA is given.
        let check = match mode {
            SslMode::Disable | SslMode::Prefer | SslMode::Require if settings.ca.is_empty() => {
                Check::Nothing
            }
            SslMode::VerifyFull => Check::Full,
            _ => Check::Ca,
        };
        let chain = match check {
            Check::Nothing => None,
            Check::Ca | Check::Full => Some(
                WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots(settings)?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| BuildError::Tls {
                    setting: "tls_ca",
                    reason: format!("cannot verify with these CAs: {e}"),
                })?,
            ),
        };
        let verifier: Arc<dyn ServerCertVerifier> = match chain {
            Some(webpki) if check == Check::Full => webpki,
            chain => Arc::new(Lenient { chain, algorithms }),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| BuildError::Client(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => {
                let chain = certificates(cert, "tls_client_cert")?;
                let key_bytes = key.read().map_err(|reason| BuildError::Tls {
                    setting: "tls_client_key",
                    reason,
                })?;
                // rustls's PEM errors name the section, never the key's bytes.
                let key_der =
                    PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| BuildError::Tls {
                        setting: "tls_client_key",
                        reason: format!("{}: no usable private key: {e}", key.describe()),
                    })?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| BuildError::Tls {
                        setting: "tls_client_key",
                        reason: format!("the client certificate and key do not fit: {e}"),
                    })?
            }
            // Neither (a half pair was refused above).
            _ => builder.with_no_client_auth(),
        };
        // PostgreSQL 17's direct TLS negotiation requires it; earlier servers ignore it.
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Check {
        Nothing,
        Ca,
        Full,
    }

    /// The checks short of `verify-full`: `sslmode=require` (and `prefer`) without a CA
    /// accepts any certificate (`chain` is `None`); `verify-ca` (and `require` with a CA) wants
    /// the chain to lead to a trusted CA and be valid now, whatever name the certificate was
    /// issued for. The handshake's signatures are always checked, so the server holds the
    /// certificate's key.
    #[derive(Debug)]
    struct Lenient {
        chain: Option<Arc<WebPkiServerVerifier>>,
        algorithms: WebPkiSupportedAlgorithms,
    }

    impl ServerCertVerifier for Lenient {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let Some(chain) = &self.chain else {
                return Ok(ServerCertVerified::assertion());
            };
            match chain.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                // webpki checks the name last, after the chain and the validity period.
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }
}
