//! Configuration errors ([`BuildError`]) and the mapping of fred's errors to the core's.

use fred::error::{Error as FredError, ErrorKind};
use leader_election::{ConfigError, Error, Operation};

/// Why a [`RedisLeaderElectionBuilder`](crate::RedisLeaderElectionBuilder) or
/// [`RedisLeaseStore::new`](crate::RedisLeaseStore::new) refused its configuration.
///
/// The variants are named alike in every backend crate (`MissingConnection`, `InvalidUrl`,
/// `InvalidName`, `TlsNotEnabled`, `Options`, `Client`; `Tls` for the TLS settings). Never
/// contains a password: URLs are shown with their password replaced by `***`, nor a private
/// key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither a URL nor a client was given.
    #[error("no Redis connection configured: set `url(..)` or `client(..)`")]
    MissingConnection,
    /// The URL could not be parsed or is not a Redis URL.
    #[error("invalid Redis URL {url}: {reason}")]
    InvalidUrl {
        /// The URL with its password redacted (or a placeholder if it could not be parsed),
        /// quoted and cut to its first 64 characters.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL asks for TLS (`rediss://`) but the crate was built without its `tls` feature.
    #[error(
        "the URL {url} needs TLS, but leader-election-redis was built without its `tls` feature"
    )]
    TlsNotEnabled {
        /// The URL with its password redacted, quoted and cut to its first 64 characters.
        url: String,
    },
    /// A TLS setting cannot be used: a CA or client certificate file is unreadable, PEM holds
    /// no certificate or no private key, a client key is set without its certificate (or the
    /// reverse), or TLS settings are given with a URL that does not use TLS (`redis://`) or
    /// with a client configured by the caller. Never contains a key's bytes.
    #[error("invalid TLS setting {setting}: {reason}")]
    Tls {
        /// The setting at fault: `tls_ca`, `tls_client_cert`, `tls_client_key`, `url` or `client`.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The election key is empty, too long, or contains characters that break its hash tag.
    #[error("invalid {field} {name}: {rule}")]
    InvalidName {
        /// The setting at fault: `key`.
        field: &'static str,
        /// The name as given, quoted and cut to its first 64 characters (a huge name is never
        /// repeated whole).
        name: String,
        /// The rule it breaks.
        rule: String,
    },
    /// A setting breaks its rule: the election options fail
    /// [`LeaderElectionOptions::validate`](leader_election::LeaderElectionOptions::validate),
    /// or `max_lease_duration` is shorter than `lease_duration`. The error names the field.
    #[error(transparent)]
    Options(#[from] ConfigError),
    /// fred refused to create a client from the configuration.
    #[error("could not create the Redis client: {0}")]
    Client(String),
}

/// Whether a fred error is an error reply from the server (`ERR ..`, `NOSCRIPT ..`,
/// `READONLY ..`): the command was received and refused, so it did not take effect (a script
/// that fails before its first write changes nothing; ours check before writing).
fn server_error_code(err: &FredError) -> Option<&str> {
    let code = err.details().split_whitespace().next()?;
    (code.len() >= 2 && code.bytes().all(|b| b.is_ascii_uppercase())).then_some(code)
}

/// Whether the server says the script is not in its cache.
pub(crate) fn is_noscript(err: &FredError) -> bool {
    server_error_code(err) == Some("NOSCRIPT")
}

/// Converts a fred error into the core's error for `operation`.
///
/// A command that timed out, or whose connection broke, may have been executed: those become
/// [`Error::outcome_unknown`], so that the core checks ownership again. Refusals by the server
/// and client-side errors raised before sending become [`Error::backend`].
pub(crate) fn map_fred(operation: Operation, err: FredError) -> Error {
    if let Some(code) = server_error_code(&err) {
        let retryable = matches!(
            code,
            "BUSY"
                | "LOADING"
                | "READONLY"
                | "MASTERDOWN"
                | "TRYAGAIN"
                | "CLUSTERDOWN"
                | "MOVED"
                | "ASK"
                | "OOM"
                | "NOSCRIPT"
                | "NOREPLICAS"
        );
        return Error::backend(operation, retryable, err);
    }
    if operation == Operation::Connect {
        let retryable = !matches!(
            err.kind(),
            ErrorKind::Config | ErrorKind::Url | ErrorKind::Auth
        );
        return Error::backend(operation, retryable, err);
    }
    match err.kind() {
        ErrorKind::Backpressure => Error::backend(operation, true, err),
        ErrorKind::Config | ErrorKind::Url | ErrorKind::Auth | ErrorKind::InvalidCommand => {
            Error::backend(operation, false, err)
        }
        // Timeout, IO, Canceled, Protocol, Unknown ("too many write attempts") and the rest:
        // the command may have reached the server.
        _ => Error::outcome_unknown(operation, err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_and_dropped_connections_have_unknown_outcomes() {
        for err in [
            FredError::new(ErrorKind::Timeout, "Request timed out."),
            FredError::new(ErrorKind::IO, "Connection closed."),
            FredError::new(ErrorKind::Canceled, "Connection closed unexpectedly."),
            FredError::new(ErrorKind::Unknown, "Too many failed write attempts."),
        ] {
            assert!(map_fred(Operation::Renew, err).is_outcome_unknown());
        }
    }

    #[test]
    fn server_refusals_are_known_failures() {
        let err = map_fred(
            Operation::Acquire,
            FredError::new(
                ErrorKind::Unknown,
                "READONLY You can't write against a replica.",
            ),
        );
        assert!(!err.is_outcome_unknown());
        assert!(err.is_retryable());
        let err = map_fred(
            Operation::Acquire,
            FredError::new(ErrorKind::Unknown, "ERR user_script:1: bad"),
        );
        assert!(matches!(
            err,
            Error::Backend {
                retryable: false,
                ..
            }
        ));
        assert!(is_noscript(&FredError::new(
            ErrorKind::Unknown,
            "NOSCRIPT No matching script."
        )));
    }
}
