//! Resolving a connection string into a pool configured for leader election: the parse
//! (whose errors never repeat the password), TLS, timeouts and the pool itself.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

use crate::error::BuildError;

/// Parses `raw`, a connection string, and sets what leader election needs: the application
/// name (the instance id, unless the string sets one), a connect timeout and a server-side
/// `statement_timeout` of `timeout`.
pub(crate) fn parse_connection_string(
    raw: &str,
    instance_id: &str,
    timeout: Duration,
) -> Result<tokio_postgres::Config, BuildError> {
    let mut config = tokio_postgres::Config::from_str(raw).map_err(|e| {
        // The cause says what is wrong ("unknown option `x`"); it may repeat a key of the
        // input, never a value (so never the password).
        let reason =
            std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
        BuildError::InvalidConnectionString(leader_election::quoted(&reason))
    })?;
    if config.get_ssl_mode() == SslMode::Require {
        return Err(BuildError::TlsNotEnabled {
            setting: "sslmode=require",
        });
    }
    if config.get_application_name().is_none() {
        config.application_name(instance_id);
    }
    config.connect_timeout(timeout);
    // A statement the client gave up on stops on the server too.
    let statement_timeout = format!("-c statement_timeout={}", timeout.as_millis());
    let server_options = match config.get_options() {
        Some(existing) => format!("{existing} {statement_timeout}"),
        None => statement_timeout,
    };
    config.options(&server_options);
    Ok(config)
}

/// A pool of at most `size` connections made from `config`, every wait bounded by `timeout`.
pub(crate) fn pool_for(
    config: tokio_postgres::Config,
    size: usize,
    timeout: Duration,
) -> Result<Pool, BuildError> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| BuildError::Client(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(2);

    #[test]
    fn timeouts_and_application_name_are_set() {
        let config = parse_connection_string("host=db user=app", "node-1", TIMEOUT).unwrap();
        assert_eq!(config.get_application_name(), Some("node-1"));
        assert_eq!(config.get_connect_timeout(), Some(&TIMEOUT));
        assert_eq!(config.get_options(), Some("-c statement_timeout=2000"));
        let config = parse_connection_string(
            "postgres://app@db/app?application_name=mine&options=-c%20search_path%3Dx",
            "node-1",
            TIMEOUT,
        )
        .unwrap();
        assert_eq!(config.get_application_name(), Some("mine"));
        assert_eq!(
            config.get_options(),
            Some("-c search_path=x -c statement_timeout=2000")
        );
    }

    #[test]
    fn required_tls_is_refused_until_it_is_supported() {
        for raw in [
            "host=db sslmode=require password=hunter2",
            "postgres://app:hunter2@db/app?sslmode=require",
        ] {
            let err = parse_connection_string(raw, "n", TIMEOUT).unwrap_err();
            assert!(matches!(err, BuildError::TlsNotEnabled { .. }), "{err}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        parse_connection_string("host=db sslmode=prefer", "n", TIMEOUT).unwrap();
        parse_connection_string("host=db sslmode=disable", "n", TIMEOUT).unwrap();
    }
}
