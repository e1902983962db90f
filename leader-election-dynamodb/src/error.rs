//! The private conversion of DynamoDB SDK errors into the core's [`Error`]. Configuration
//! errors are the core's [`BuildError`](leader_election::BuildError).

use std::fmt;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use leader_election::{Error, Operation};

/// A failure of one DynamoDB request, described without secrets.
#[derive(Debug)]
pub(crate) struct DynamoError(String);

impl fmt::Display for DynamoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DynamoError {}

impl DynamoError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// What a DynamoDB request's failure means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The service answered with this status (and usually an error code).
    Http(u16),
    /// The request was not sent: building it failed, or the operation's time was spent.
    NotSent,
    /// The request may have reached the service (a transport error, no answer in time, an
    /// answer that could not be read).
    InFlight,
}

/// The error code of a condition expression that evaluated to false: nothing was written.
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
/// The item is part of a transaction in progress: the write was refused, nothing written.
const TRANSACTION_CONFLICT: &str = "TransactionConflictException";
/// The table is missing (or not `ACTIVE` yet).
pub(crate) const NO_TABLE: &str = "ResourceNotFoundException";

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

/// A failed request: what it means, the service's error code, and its description.
#[derive(Debug)]
pub(crate) struct RequestFailure {
    pub(crate) failure: Failure,
    pub(crate) code: Option<String>,
    pub(crate) error: DynamoError,
}

impl RequestFailure {
    pub(crate) fn from_sdk<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (failure, code, message) = match err {
            SdkError::ConstructionFailure(_) => (Failure::NotSent, None, None),
            SdkError::ServiceError(service) => (
                Failure::Http(service.raw().status().as_u16()),
                service.err().code().map(str::to_owned),
                service.err().message().map(str::to_owned),
            ),
            _ => (Failure::InFlight, None, None),
        };
        let message = match (failure, &code, message) {
            (Failure::Http(status), Some(code), Some(message)) => {
                format!("HTTP {status} {code}: {message}")
            }
            (Failure::Http(status), Some(code), None) => format!("HTTP {status} {code}"),
            (Failure::Http(status), None, _) => format!("HTTP {status}"),
            _ => aws_sdk_dynamodb::error::DisplayErrorContext(err).to_string(),
        };
        Self {
            failure,
            code,
            error: DynamoError::new(message),
        }
    }

    /// The request got no answer within `after`.
    pub(crate) fn timed_out(after: std::time::Duration) -> Self {
        Self {
            failure: Failure::InFlight,
            code: None,
            error: DynamoError::new(format!("no answer within {after:?}")),
        }
    }

    /// The operation's time was spent before the request could be sent.
    pub(crate) fn out_of_time(budget: std::time::Duration) -> Self {
        Self {
            failure: Failure::NotSent,
            code: None,
            error: DynamoError::new(format!(
                "the operation_timeout of {budget:?} ran out before the next request"
            )),
        }
    }

    /// A failure of this crate's own making (an answer without what it must hold).
    pub(crate) fn other(failure: Failure, message: impl Into<String>) -> Self {
        Self {
            failure,
            code: None,
            error: DynamoError::new(message),
        }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self.failure {
            Failure::Http(status) => Some(status),
            _ => None,
        }
    }

    fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// A conditional write lost: its condition evaluated to false
    /// (`ConditionalCheckFailedException`), or the item was in a transaction
    /// (`TransactionConflictException`). Nothing was written either way.
    pub(crate) fn is_conflict(&self) -> bool {
        self.has_code(CONDITION_FAILED) || self.has_code(TRANSACTION_CONFLICT)
    }

    /// The table is missing.
    pub(crate) fn is_missing_table(&self) -> bool {
        self.has_code(NO_TABLE)
    }

    /// Whether trying again may help: anything but a request the service refused for its
    /// credentials, its permissions or its form.
    pub(crate) fn is_retryable(&self) -> bool {
        if matches!(self.status(), Some(401 | 403)) {
            return false;
        }
        !NOT_RETRYABLE.iter().any(|code| self.has_code(code))
    }

    /// Converts to the core's error. `write` says whether the request could change the
    /// item, in which case a request that may have reached the service has an unknown
    /// outcome.
    pub(crate) fn into_error(self, operation: Operation, write: bool) -> Error {
        match self.failure {
            Failure::NotSent => Error::backend(operation, true, self.error),
            Failure::InFlight if write => Error::outcome_unknown(operation, self.error),
            Failure::InFlight => Error::backend(operation, true, self.error),
            // The service may have acted before failing internally.
            Failure::Http(status) if status >= 500 && write => {
                Error::outcome_unknown(operation, self.error)
            }
            Failure::Http(_) => {
                let retryable = self.is_retryable();
                Error::backend(operation, retryable, self.error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: &str) -> RequestFailure {
        RequestFailure {
            failure: Failure::Http(status),
            code: Some(code.to_owned()),
            error: DynamoError::new(format!("HTTP {status} {code}")),
        }
    }

    #[test]
    fn codes_decide_conflicts_and_retries() {
        assert!(http(400, CONDITION_FAILED).is_conflict());
        assert!(http(400, TRANSACTION_CONFLICT).is_conflict());
        assert!(!http(400, "ValidationException").is_conflict());
        assert!(!http(400, "AccessDeniedException").is_retryable());
        assert!(http(400, "ProvisionedThroughputExceededException").is_retryable());
        assert!(http(400, NO_TABLE).is_missing_table());
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
