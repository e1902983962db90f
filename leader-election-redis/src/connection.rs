//! Resolving a Redis URL into a fred client configured for leader election: schemes, TLS
//! (roots, a custom CA, a client certificate), timeouts and reconnection, and the password's
//! redaction wherever a URL is shown.

use std::fmt;
use std::time::Duration;

use fred::clients::Client;
use fred::prelude::{Config, ConnectionConfig, PerformanceConfig};

use leader_election::pem::Pem;

use crate::error::BuildError;
use crate::store::default_reconnect_policy;

/// The TLS settings beyond the URL's scheme: a CA to trust instead of the system's roots, and
/// a client certificate for mutual TLS. Empty unless the `tls` feature's setters were used.
#[derive(Clone, Default)]
pub(crate) struct TlsSettings {
    pub(crate) ca: Vec<Pem>,
    pub(crate) client_cert: Option<Pem>,
    pub(crate) client_key: Option<Pem>,
}

impl TlsSettings {
    pub(crate) fn is_empty(&self) -> bool {
        self.ca.is_empty() && self.client_cert.is_none() && self.client_key.is_none()
    }
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A key is never shown: a path says where it is, PEM in memory shows only its length.
        f.debug_struct("TlsSettings")
            .field("ca", &self.ca.iter().map(Pem::describe).collect::<Vec<_>>())
            .field("client_cert", &self.client_cert.as_ref().map(Pem::describe))
            .field("client_key", &self.client_key.as_ref().map(Pem::describe))
            .finish()
    }
}

/// A fred client for `url`, configured for leader election.
pub(crate) fn client_for(
    url: &str,
    timeout: Duration,
    settings: &TlsSettings,
) -> Result<Client, BuildError> {
    let invalid = |reason: String| BuildError::InvalidUrl {
        url: leader_election::quoted(&redact_url(url)),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    let scheme = parsed.scheme();
    let known = [
        "redis",
        "rediss",
        "redis-cluster",
        "rediss-cluster",
        "redis-sentinel",
        "rediss-sentinel",
        "valkey",
        "valkeys",
        "valkey-cluster",
        "valkeys-cluster",
        "valkey-sentinel",
        "valkeys-sentinel",
    ];
    if !known.contains(&scheme) {
        return Err(invalid(format!(
            "unsupported scheme {}, expected redis://, rediss://, redis-cluster:// or redis-sentinel://",
            leader_election::quoted(scheme)
        )));
    }
    let tls = scheme.starts_with("rediss") || scheme.starts_with("valkeys");
    if !tls && !settings.is_empty() {
        return Err(BuildError::Tls {
            setting: "url",
            reason: format!(
                "TLS settings (CA, client certificate) are set, but the URL {} does not use \
                 TLS: use rediss://",
                leader_election::quoted(&redact_url(url))
            ),
        });
    }
    if tls && !cfg!(feature = "tls") {
        return Err(BuildError::TlsNotEnabled {
            url: leader_election::quoted(&redact_url(url)),
        });
    }
    #[cfg(feature = "tls")]
    let mut config = if tls {
        // fred would build its TLS connector from rustls's process-wide default provider,
        // which panics when a program links both rustls providers (ring and aws-lc-rs, as the
        // Azure SDK does): parse the URL without TLS and choose the provider explicitly.
        let plain = format!(
            "{}{}",
            scheme
                .replacen("rediss", "redis", 1)
                .replacen("valkeys", "valkey", 1),
            &url[scheme.len()..]
        );
        let mut config = Config::from_url(&plain).map_err(|e| invalid(e.details().to_owned()))?;
        config.tls = Some(tls_connector(settings)?.into());
        config
    } else {
        Config::from_url(url).map_err(|e| invalid(e.details().to_owned()))?
    };
    #[cfg(not(feature = "tls"))]
    let mut config = Config::from_url(url).map_err(|e| invalid(e.details().to_owned()))?;
    config.fail_fast = true;
    let performance = PerformanceConfig {
        default_command_timeout: timeout,
        ..PerformanceConfig::default()
    };
    let mut connection = ConnectionConfig {
        connection_timeout: timeout,
        internal_command_timeout: timeout,
        max_command_attempts: 1,
        ..ConnectionConfig::default()
    };
    connection.tcp.nodelay = Some(true);
    connection.unresponsive.max_timeout = Some(timeout);
    connection.unresponsive.interval = (timeout / 4).max(Duration::from_millis(10));
    Ok(Client::new(
        config,
        Some(performance),
        Some(connection),
        Some(default_reconnect_policy()),
    ))
}

/// The certificates in PEM text; an error when there are none or one does not parse.
#[cfg(feature = "tls")]
fn certificates(
    pem: &Pem,
    setting: &'static str,
) -> Result<Vec<fred::rustls::pki_types::CertificateDer<'static>>, BuildError> {
    use fred::rustls::pki_types::CertificateDer;
    use fred::rustls::pki_types::pem::PemObject;
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

/// A rustls connector with the ring provider, trusting the configured CAs (or else the
/// system's root certificates), with the client certificate if one is configured.
///
/// The provider is chosen here rather than taken from rustls's process-wide default: that
/// default panics when a program links both rustls providers (ring and aws-lc-rs, as the Azure
/// SDK does).
#[cfg(feature = "tls")]
fn tls_connector(settings: &TlsSettings) -> Result<fred::types::config::TlsConnector, BuildError> {
    use fred::rustls::pki_types::PrivateKeyDer;
    use fred::rustls::pki_types::pem::PemObject;
    use fred::rustls::{ClientConfig, RootCertStore};
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
    let mut roots = RootCertStore::empty();
    if settings.ca.is_empty() {
        let certs = fred::rustls_native_certs::load_native_certs();
        for cert in certs.certs {
            // A certificate the system store holds but rustls cannot parse is skipped, as
            // browsers do; the others still verify the server.
            let _ = roots.add(cert);
        }
    } else {
        for pem in &settings.ca {
            for cert in certificates(pem, "tls_ca")? {
                roots.add(cert).map_err(|e| BuildError::Tls {
                    setting: "tls_ca",
                    reason: format!("{}: not a usable CA certificate: {e}", pem.describe()),
                })?;
            }
        }
    }
    let provider = std::sync::Arc::new(fred::rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Client(format!("TLS setup: {e}")))?
        .with_root_certificates(roots);
    let config = match (&settings.client_cert, &settings.client_key) {
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
    Ok(config.into())
}

/// `url` with its password (and any `...password=` query value) replaced by `***`; a URL
/// that does not parse is not shown at all, since it may still hold a secret.
pub(crate) fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<unparsable URL>".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        name.contains("password") || name.contains("secret") || name.contains("token")
    };
    if parsed.query_pairs().any(|(name, _)| secret(&name)) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(name, value)| {
                let value = if secret(&name) {
                    "***".to_owned()
                } else {
                    value.into_owned()
                };
                (name.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        let url = redact_url("redis://user:hunter2@example.com:6380/1");
        assert_eq!(url, "redis://user:***@example.com:6380/1");
        let url = redact_url(
            "redis-sentinel://:hunter2@h:26379?sentinelServiceName=m&sentinelPassword=hunter3",
        );
        assert!(!url.contains("hunter"), "{url}");
        assert!(url.contains("sentinelServiceName=m"), "{url}");
        assert_eq!(redact_url("not a url hunter2"), "<unparsable URL>");
    }
}
