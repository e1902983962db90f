//! How the ZooKeeper backend's runtime errors are told. Its configuration errors are the core's
//! [`BuildError`](leader_election::BuildError).

use leader_election::{Error, Operation};
use zookeeper_client::Error as ZkError;

/// A failed request of `operation`, classified. A write whose connection was lost or timed out
/// may have been applied (the outcome is unknown); a read that failed changed nothing. Errors
/// only an operator can fix (ACLs, authentication) are not retryable. The message is the
/// client's rendering of the server's error code (`node not exists`, `mismatch version` …).
pub(crate) fn failed(operation: Operation, err: ZkError, write: bool) -> Error {
    match err {
        ZkError::ConnectionLoss | ZkError::Timeout if write => {
            Error::outcome_unknown(operation, err)
        }
        ZkError::NoAuth | ZkError::AuthFailed | ZkError::InvalidAcl | ZkError::BadArguments(_) => {
            Error::backend(operation, false, err)
        }
        _ => Error::backend(operation, true, err),
    }
}

/// Whether `err` means the session is over: its ephemeral znodes are gone (expired), or this
/// client closed it.
pub(crate) fn session_ended(err: &ZkError) -> bool {
    matches!(
        err,
        ZkError::SessionExpired | ZkError::ClientClosed | ZkError::AuthFailed
    )
}
