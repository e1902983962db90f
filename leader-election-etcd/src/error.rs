//! The mapping of etcd-client's errors to the core's. Configuration errors are the core's
//! [`BuildError`](leader_election::BuildError).

use etcd_client::Error as EtcdError;
use leader_election::{Error, Operation};

/// For a gRPC status whose request certainly did not take effect, whether to retry; `None`
/// when it may have taken effect (a deadline, a dropped connection, a member that lost its
/// leader while proposing).
fn refused(code: tonic::Code) -> Option<bool> {
    use tonic::Code;
    match code {
        Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::Unauthenticated
        | Code::OutOfRange
        | Code::Unimplemented => Some(false),
        Code::FailedPrecondition | Code::ResourceExhausted => Some(true),
        _ => None,
    }
}

/// Whether `err` is etcd's answer that a lease does not exist (expired or revoked).
pub(crate) fn is_lease_not_found(err: &EtcdError) -> bool {
    match err {
        // etcd-client's keep-alive turns a zero TTL into this error.
        EtcdError::LeaseKeepAliveError(message) => message.contains("not found"),
        EtcdError::GRpcStatus(status) => {
            status.code() == tonic::Code::NotFound
                && status.message().contains("requested lease not found")
        }
        _ => false,
    }
}

/// Converts an etcd-client error into the core's error for `operation`.
///
/// `writes` says whether the request could have changed anything in etcd: a write whose reply
/// was lost (a timeout, a broken connection, `Unavailable`) may have been applied, so it is an
/// [`Error::outcome_unknown`] and the core checks ownership again. A read, and any request the
/// server refused before proposing it, is an [`Error::backend`].
pub(crate) fn map_etcd(operation: Operation, writes: bool, err: EtcdError) -> Error {
    match &err {
        EtcdError::GRpcStatus(status) => match refused(status.code()) {
            Some(retryable) => Error::backend(operation, retryable, err),
            None if writes => Error::outcome_unknown(operation, err),
            None => Error::backend(operation, true, err),
        },
        EtcdError::InvalidArgs(_)
        | EtcdError::InvalidUri(_)
        | EtcdError::InvalidHeaderValue(_)
        | EtcdError::Utf8Error(_)
        | EtcdError::EndpointsNotManaged => Error::backend(operation, false, err),
        _ if writes => Error::outcome_unknown(operation, err),
        _ => Error::backend(operation, true, err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_replies_of_writes_have_unknown_outcomes() {
        for status in [
            tonic::Status::unavailable("connection reset"),
            tonic::Status::deadline_exceeded("timeout"),
            tonic::Status::unknown("etcdserver: leader changed"),
            tonic::Status::cancelled("dropped"),
        ] {
            let err = map_etcd(Operation::Acquire, true, EtcdError::GRpcStatus(status));
            assert!(err.is_outcome_unknown(), "{err}");
        }
        let err = map_etcd(
            Operation::Renew,
            true,
            EtcdError::IoError(std::io::Error::other("broken pipe")),
        );
        assert!(err.is_outcome_unknown(), "{err}");
    }

    #[test]
    fn refusals_and_reads_are_known_failures() {
        let err = map_etcd(
            Operation::Acquire,
            true,
            EtcdError::GRpcStatus(tonic::Status::permission_denied("no")),
        );
        assert!(!err.is_outcome_unknown() && !err.is_retryable(), "{err}");
        let err = map_etcd(
            Operation::CurrentLeader,
            false,
            EtcdError::GRpcStatus(tonic::Status::unavailable("down")),
        );
        assert!(!err.is_outcome_unknown() && err.is_retryable(), "{err}");
        assert!(is_lease_not_found(&EtcdError::LeaseKeepAliveError(
            "lease not found".to_owned()
        )));
        assert!(is_lease_not_found(&EtcdError::GRpcStatus(
            tonic::Status::not_found("etcdserver: requested lease not found")
        )));
    }
}
