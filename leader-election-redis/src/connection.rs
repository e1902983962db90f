//! Resolving a Redis URL into a fred client configured for leader election: schemes, TLS,
//! timeouts and reconnection, and the password's redaction wherever a URL is shown.

use std::time::Duration;

use fred::clients::Client;
use fred::prelude::{Config, ConnectionConfig, PerformanceConfig};

use crate::error::BuildError;
use crate::store::default_reconnect_policy;

/// A fred client for `url`, configured for leader election.
pub(crate) fn client_for(url: &str, timeout: Duration) -> Result<Client, BuildError> {
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
        config.tls = Some(tls_connector().map_err(invalid)?.into());
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

/// A rustls connector with the ring provider and the system's root certificates.
#[cfg(feature = "tls")]
fn tls_connector() -> Result<fred::types::config::TlsConnector, String> {
    use fred::rustls::{ClientConfig, RootCertStore};
    let certs = fred::rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    for cert in certs.certs {
        // A certificate the system store holds but rustls cannot parse is skipped, as browsers
        // do; the others still verify the server.
        let _ = roots.add(cert);
    }
    let provider = std::sync::Arc::new(fred::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
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
