//! TLS as libpq's `sslmode` describes it: the modes, the settings beyond the connection string
//! (a CA, a client certificate), and (feature `tls`) the rustls connector, with the ring
//! provider, that the pool and the release listener connect with.

use leader_election::BuildError;
use leader_election::backend::tls::{Ca, Pem, TlsSettings};

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
                    leader_election::backend::quoted(other)
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

/// The settings a connection string adds to the builder's: `sslrootcert` (a file, or `system`:
/// [`Ca::System`]), `sslcert` and `sslkey` (files). The builder's client certificate, when set,
/// wins over the string's.
pub(crate) fn with_params(settings: &TlsSettings, params: &[(String, String)]) -> TlsSettings {
    let mut merged = settings.clone();
    for (key, value) in params {
        match key.as_str() {
            "sslrootcert" if value == "system" => merged.ca.push(Ca::System),
            "sslrootcert" => merged.ca.push(Ca::Pem(Pem::File(value.into()))),
            "sslcert" if settings.client_cert.is_none() => {
                merged.client_cert = Some(Pem::File(value.into()));
            }
            "sslkey" if settings.client_key.is_none() => {
                merged.client_key = Some(Pem::File(value.into()));
            }
            _ => {}
        }
    }
    merged
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
                krate: "leader-election-postgres",
                setting: "a CA or client certificate".to_owned(),
            }),
            _ => Err(BuildError::TlsNotEnabled {
                krate: "leader-election-postgres",
                setting: mode.setting().to_owned(),
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
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, DigitallySignedStruct};

    use super::{SslMode, TlsSettings};
    use leader_election::BuildError;

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
        settings.check_pair()?;
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
                    Arc::new(settings.rustls_roots()?),
                    provider,
                )
                .build()
                .map_err(|e| {
                    BuildError::tls("tls_ca", format!("cannot verify with these CAs: {e}"))
                })?,
            ),
        };
        let verifier: Arc<dyn ServerCertVerifier> = match chain {
            Some(webpki) if check == Check::Full => webpki,
            chain => Arc::new(Lenient { chain, algorithms }),
        };
        let builder = settings
            .rustls_builder()?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match settings.rustls_identity()? {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                BuildError::tls(
                    "tls_client_key",
                    format!("the client certificate and key do not fit: {e}"),
                )
            })?,
            None => builder.with_no_client_auth(),
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
