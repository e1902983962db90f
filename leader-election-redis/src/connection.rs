//! Resolving a Redis URL into a fred client configured for leader election: schemes, TLS
//! (the core's [`TlsSettings`] made into a rustls connector), timeouts and reconnection, and
//! the password's redaction wherever a URL is shown.

use std::time::Duration;

use fred::clients::Client;
use fred::prelude::{Config, ConnectionConfig, PerformanceConfig};

use leader_election::backend::tls::TlsSettings;

use crate::store::default_reconnect_policy;
use leader_election::BuildError;

/// A fred client for `url`, configured for leader election.
pub(crate) fn client_for(
    url: &str,
    timeout: Duration,
    settings: &TlsSettings,
) -> Result<Client, BuildError> {
    let invalid = |reason: String| BuildError::InvalidUrl {
        field: "url",
        url: leader_election::backend::quoted(&redact_url(url)),
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
        // The URL (quoted above) starts with the scheme: repeat only a short one.
        let shown = if scheme.len() <= 24 {
            leader_election::backend::quoted(scheme)
        } else {
            format!("of {} characters", scheme.len())
        };
        return Err(invalid(format!(
            "unsupported scheme {shown}, expected redis://, rediss://, redis-cluster:// or \
             redis-sentinel://"
        )));
    }
    let tls = scheme.starts_with("rediss") || scheme.starts_with("valkeys");
    if !tls && !settings.is_empty() {
        return Err(BuildError::Tls {
            setting: "url",
            reason: format!(
                "TLS settings (CA, client certificate) are set, but the URL {} does not use \
                 TLS: use rediss://",
                leader_election::backend::quoted(&redact_url(url))
            ),
        });
    }
    if tls && !cfg!(feature = "tls") {
        return Err(BuildError::TlsNotEnabled {
            krate: "leader-election-redis",
            setting: format!(
                "the URL {}",
                leader_election::backend::quoted(&redact_url(url))
            ),
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
        // The core's rustls configuration: the ring provider, the CAs given (else the
        // system's roots), and the client certificate if one is set.
        let tls = fred::types::config::TlsConnector::from(settings.rustls_client_config()?);
        config.tls = Some(tls.into());
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

/// `url` with its password (and any `...password=` query value) replaced by `***`; text that
/// is not a URL is not shown at all, since it may still hold a secret. The core's
/// [`redact_url`](leader_election::backend::redact_url), shared by every backend.
pub(crate) fn redact_url(url: &str) -> String {
    leader_election::backend::redact_url(url)
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
        assert_eq!(redact_url("not a url hunter2"), "<not a URL>");
    }
}
