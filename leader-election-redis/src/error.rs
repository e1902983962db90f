//! The mapping of fred's errors to the core's. Configuration errors are the core's
//! [`BuildError`](leader_election::BuildError).

use fred::error::{Error as FredError, ErrorKind};
use leader_election::{Error, Operation};

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
