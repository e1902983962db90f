//! Resolving a connection string into a pool configured for leader election: the parse
//! (whose errors never repeat the password), libpq's TLS settings (which tokio-postgres does not
//! read: `sslmode=verify-ca`/`verify-full`, `sslrootcert`, `sslcert`, `sslkey`), timeouts and
//! the pool itself.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use leader_election::BuildError;
use leader_election::backend::tls::TlsSettings;

use crate::tls::{Connector, SslMode, connector, with_params};

/// The connection-string keys this crate reads itself rather than tokio-postgres.
const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// A connection string resolved: tokio-postgres's config, and the connector that makes TLS as
/// its `sslmode` asks.
pub(crate) struct Target {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) connector: Connector,
}

/// Resolves `raw` with the builder's TLS `settings`: see [`parse_connection_string`] for the
/// rest. Without `sslmode`, `prefer`, as libpq.
pub(crate) fn resolve(
    raw: &str,
    instance_id: &str,
    timeout: Duration,
    settings: &TlsSettings,
) -> Result<Target, BuildError> {
    let (rest, tls) = split_tls_params(raw);
    let mode = match tls.iter().rev().find(|(key, _)| key == "sslmode") {
        Some((_, value)) => SslMode::parse(value)?,
        None => SslMode::Prefer,
    };
    let mut config = parse_connection_string(&rest, instance_id, timeout)?;
    config.ssl_mode(mode.negotiation());
    let connector = connector(mode, &with_params(settings, &tls))?;
    Ok(Target { config, connector })
}

/// The connector for a config made by the caller (for the release listener, next to a pool
/// the caller made): tokio-postgres's `sslmode` as it is, the certificate verified
/// (`verify-full`) when the builder has a CA, else not.
pub(crate) fn connector_for(
    config: &tokio_postgres::Config,
    settings: &TlsSettings,
) -> Result<Connector, BuildError> {
    use tokio_postgres::config::SslMode as Pg;
    let mode = match config.get_ssl_mode() {
        Pg::Disable => SslMode::Disable,
        _ if !settings.ca.is_empty() => SslMode::VerifyFull,
        Pg::Require => SslMode::Require,
        _ => SslMode::Prefer,
    };
    connector(mode, settings)
}

/// `raw` without the keys of [`TLS_KEYS`], and those keys' values in order, from a URL
/// (`postgres://...?sslmode=require`, percent-decoded) or `key=value` pairs (quoted or with
/// backslash escapes, as libpq). A string that does not tokenize is returned whole, for
/// tokio-postgres to report what is wrong.
fn split_tls_params(raw: &str) -> (String, Vec<(String, String)>) {
    let is_tls = |key: &str| TLS_KEYS.contains(&key);
    let url = ["postgres://", "postgresql://"]
        .iter()
        .any(|prefix| raw.starts_with(prefix));
    if url {
        // As tokio-postgres: the credentials end at the first `@`, the query starts at the
        // first `?` after them.
        let after_credentials = raw.find('@').map_or(0, |at| at + 1);
        let Some(question) = raw[after_credentials..].find('?') else {
            return (raw.to_owned(), Vec::new());
        };
        let (head, query) = raw.split_at(after_credentials + question);
        let mut kept = Vec::new();
        let mut tls = Vec::new();
        for pair in query[1..].split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = percent_decode(key);
            if is_tls(&key) {
                tls.push((key, percent_decode(value)));
            } else {
                kept.push(pair);
            }
        }
        let rest = if kept.is_empty() {
            head.to_owned()
        } else {
            format!("{head}?{}", kept.join("&"))
        };
        return (rest, tls);
    }
    match key_value_params(raw) {
        Some(params) => {
            let mut kept = Vec::new();
            let mut tls = Vec::new();
            for (key, value, span) in params {
                if is_tls(key) {
                    tls.push((key.to_owned(), value));
                } else {
                    kept.push(span);
                }
            }
            (kept.join(" "), tls)
        }
        None => (raw.to_owned(), Vec::new()),
    }
}

/// The `key = value` pairs of a libpq key-value string, each with its value unquoted and its
/// whole text; `None` when it does not tokenize.
fn key_value_params(raw: &str) -> Option<Vec<(&str, String, &str)>> {
    let mut params = Vec::new();
    let mut rest = raw.trim_start();
    while !rest.is_empty() {
        let start = rest;
        let key_end = rest.find(|c: char| c.is_whitespace() || c == '=')?;
        let key = &rest[..key_end];
        rest = rest[key_end..].trim_start().strip_prefix('=')?.trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?.1),
                '\'' if quoted => {
                    end = Some(i + 1);
                    break;
                }
                c if c.is_whitespace() && !quoted => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = match end {
            Some(end) => end,
            None if quoted => return None,
            None => rest.len(),
        };
        if key.is_empty() || (!quoted && value.is_empty()) {
            return None;
        }
        let consumed = start.len() - rest.len() + end;
        params.push((key, value, &start[..consumed]));
        rest = rest[end..].trim_start();
    }
    Some(params)
}

/// `%XX` sequences decoded (invalid UTF-8 replaced), as tokio-postgres reads URL parameters.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

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
        BuildError::InvalidConnectionString(leader_election::backend::quoted(&reason))
    })?;
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

/// A pool of at most `size` connections made from `target`, every wait bounded by `timeout`.
pub(crate) fn pool_for(target: Target, size: usize, timeout: Duration) -> Result<Pool, BuildError> {
    let manager = Manager::from_config(
        target.config,
        target.connector,
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
        .map_err(|e| BuildError::Client {
            backend: "PostgreSQL",
            reason: e.to_string(),
        })
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
    fn tls_keys_are_read_here_and_the_rest_left_to_tokio_postgres() {
        let (rest, tls) = split_tls_params(
            "host=db sslmode = verify-full password='a b\\'c' sslrootcert=/etc/ca\\ 1.pem user=app",
        );
        assert_eq!(rest, "host=db password='a b\\'c' user=app");
        assert_eq!(
            tls,
            [
                ("sslmode".to_owned(), "verify-full".to_owned()),
                ("sslrootcert".to_owned(), "/etc/ca 1.pem".to_owned())
            ]
        );
        let (rest, tls) = split_tls_params(
            "postgres://app:p%3F@db:5432/app?sslmode=require&application_name=x&sslcert=%2Fc.pem",
        );
        assert_eq!(rest, "postgres://app:p%3F@db:5432/app?application_name=x");
        assert_eq!(
            tls,
            [
                ("sslmode".to_owned(), "require".to_owned()),
                ("sslcert".to_owned(), "/c.pem".to_owned())
            ]
        );
        let (rest, tls) = split_tls_params("postgresql://db/app?sslmode=disable");
        assert_eq!((rest.as_str(), tls.len()), ("postgresql://db/app", 1));
        // What does not tokenize goes to tokio-postgres whole, which says what is wrong.
        let (rest, tls) = split_tls_params("host=db password='open");
        assert_eq!((rest.as_str(), tls.len()), ("host=db password='open", 0));
    }

    #[test]
    fn every_libpq_mode_is_understood_and_others_are_named() {
        use tokio_postgres::config::SslMode as Pg;
        let settings = TlsSettings::default();
        for (raw, expected) in [
            ("host=db", Pg::Prefer),
            ("host=db sslmode=disable", Pg::Disable),
            ("host=db sslmode=prefer", Pg::Prefer),
        ] {
            let target = resolve(raw, "n", TIMEOUT, &settings).unwrap();
            assert_eq!(target.config.get_ssl_mode(), expected, "{raw}");
        }
        for raw in [
            "host=db sslmode=require password=hunter2",
            "postgres://app:hunter2@db/app?sslmode=require",
        ] {
            match resolve(raw, "n", TIMEOUT, &settings) {
                #[cfg(feature = "tls")]
                Ok(target) => assert_eq!(target.config.get_ssl_mode(), Pg::Require),
                #[cfg(not(feature = "tls"))]
                Err(err @ BuildError::TlsNotEnabled { .. }) => {
                    assert!(!err.to_string().contains("hunter2"), "{err}");
                }
                other => panic!("{raw}: {:?}", other.err()),
            }
        }
        let Err(err) = resolve(
            "host=db sslmode=allow password=hunter2",
            "n",
            TIMEOUT,
            &settings,
        ) else {
            panic!("sslmode=allow accepted");
        };
        assert!(err.to_string().contains("\"allow\""), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn verifying_modes_need_a_usable_ca() {
        use tokio_postgres::config::SslMode as Pg;
        let settings = TlsSettings::default();
        for raw in [
            "host=db sslmode=verify-ca sslrootcert=/nonexistent/ca.pem",
            "host=db sslmode=verify-full sslrootcert=/nonexistent/ca.pem",
        ] {
            let Err(BuildError::Tls { setting, reason }) = resolve(raw, "n", TIMEOUT, &settings)
            else {
                panic!("{raw}: a missing CA file accepted");
            };
            assert_eq!(setting, "tls_ca");
            assert!(reason.contains("/nonexistent/ca.pem"), "{reason}");
        }
        let mut with_ca = TlsSettings::default();
        with_ca.ca.push(leader_election::backend::tls::Ca::Pem(
            leader_election::backend::tls::Pem::Bytes(b"no PEM".to_vec()),
        ));
        let Err(BuildError::Tls { setting, .. }) =
            resolve("host=db sslmode=verify-full", "n", TIMEOUT, &with_ca)
        else {
            panic!("text that is no certificate accepted as a CA");
        };
        assert_eq!(setting, "tls_ca");
        let Err(BuildError::Tls { setting, .. }) =
            resolve("host=db sslmode=disable", "n", TIMEOUT, &with_ca)
        else {
            panic!("a CA with sslmode=disable accepted");
        };
        assert_eq!(setting, "sslmode");
        let system = resolve(
            "host=db sslmode=verify-full sslrootcert=system",
            "n",
            TIMEOUT,
            &settings,
        );
        if let Ok(target) = system {
            assert_eq!(target.config.get_ssl_mode(), Pg::Require);
        }
    }
}
