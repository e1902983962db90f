//! What a DynamoDB request's failure means to the conditional engine. Configuration errors are
//! the core's [`BuildError`](leader_election::BuildError).

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use leader_election::store::conditional::{Failure, FailureKind};
use leader_election_aws::Detail;

/// The error code of a condition expression that evaluated to false: nothing was written.
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
/// The item is part of a transaction in progress: the write was refused, nothing written.
const TRANSACTION_CONFLICT: &str = "TransactionConflictException";
/// The table is missing (or not `ACTIVE` yet).
const NO_TABLE: &str = "ResourceNotFoundException";

/// Error codes of requests that trying again cannot fix: credentials, permissions, a request
/// the service cannot accept.
const NOT_RETRYABLE: &[&str] = &[
    "AccessDeniedException",
    "UnrecognizedClientException",
    "MissingAuthenticationTokenException",
    "InvalidSignatureException",
    "IncompleteSignatureException",
    "ValidationException",
    "SerializationException",
];

/// The failure of one DynamoDB request, described without secrets (see [`kind`]); its
/// message carries the service's own.
pub(crate) fn failure<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    leader_election_aws::failure(err, kind, Detail::CodeAndMessage)
}

/// What an answer with `status` and `code` means: a lost condition (or a transaction in
/// progress on the item), a missing table, a refusal that trying again cannot fix, a server
/// error.
fn kind(status: u16, code: Option<&str>) -> FailureKind {
    match code {
        Some(CONDITION_FAILED | TRANSACTION_CONFLICT) => FailureKind::ConditionFailed,
        Some(NO_TABLE) => FailureKind::NoContainer,
        Some(code) if NOT_RETRYABLE.contains(&code) => FailureKind::Refused { retryable: false },
        _ if matches!(status, 401 | 403) => FailureKind::Refused { retryable: false },
        _ if status >= 500 => FailureKind::ServerError,
        _ => FailureKind::Refused { retryable: true },
    }
}

#[cfg(test)]
mod tests {
    use leader_election::{Error, Operation};

    use super::*;

    fn http(status: u16, code: &str) -> Failure {
        Failure::new(kind(status, Some(code)), format!("HTTP {status} {code}"))
    }

    #[test]
    fn codes_decide_conflicts_and_retries() {
        assert!(http(400, CONDITION_FAILED).lost());
        assert!(http(400, TRANSACTION_CONFLICT).lost());
        assert!(!http(400, "ValidationException").lost());
        assert!(!http(400, "AccessDeniedException").is_retryable());
        assert!(http(400, "ProvisionedThroughputExceededException").is_retryable());
        assert_eq!(http(400, NO_TABLE).kind, FailureKind::NoContainer);
        let unknown = http(500, "InternalServerError").into_error(Operation::Renew, true);
        assert!(matches!(unknown, Error::OutcomeUnknown { .. }), "{unknown}");
        let refused = http(400, "AccessDeniedException").into_error(Operation::Renew, true);
        assert!(!refused.is_retryable());
        assert!(
            refused.to_string().contains("AccessDeniedException"),
            "{refused}"
        );
    }
}
