//! The private conversion of S3 SDK errors into the core's [`Error`]. Configuration errors are
//! the core's [`BuildError`](leader_election::BuildError).

use std::fmt;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use leader_election::{Error, Operation};

/// A failure of one S3 request, described without secrets.
#[derive(Debug)]
pub(crate) struct S3Error(String);

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for S3Error {}

impl S3Error {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// What an S3 request's failure means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The service answered with this status.
    Http(u16),
    /// The request was not sent: building it failed, or the operation's time was spent.
    NotSent,
    /// The request may have reached the service (a transport error, no answer in time, an
    /// answer that could not be read).
    InFlight,
}

/// A failed request: what it means and its description.
#[derive(Debug)]
pub(crate) struct RequestFailure {
    pub(crate) failure: Failure,
    pub(crate) code: Option<String>,
    pub(crate) error: S3Error,
}

impl RequestFailure {
    pub(crate) fn from_sdk<E>(err: &SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (failure, code) = match err {
            SdkError::ConstructionFailure(_) => (Failure::NotSent, None),
            SdkError::ServiceError(service) => (
                Failure::Http(service.raw().status().as_u16()),
                service.err().code().map(str::to_owned),
            ),
            SdkError::ResponseError(_)
            | SdkError::TimeoutError(_)
            | SdkError::DispatchFailure(_) => (Failure::InFlight, None),
            _ => (Failure::InFlight, None),
        };
        let message = match (failure, &code) {
            (Failure::Http(status), Some(code)) => format!("HTTP {status} {code}"),
            (Failure::Http(status), None) => format!("HTTP {status}"),
            _ => aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
        };
        Self {
            failure,
            code,
            error: S3Error::new(message),
        }
    }

    /// The request got no answer within `after`.
    pub(crate) fn timed_out(after: std::time::Duration) -> Self {
        Self {
            failure: Failure::InFlight,
            code: None,
            error: S3Error::new(format!("no answer within {after:?}")),
        }
    }

    /// The operation's time was spent before the request could be sent.
    pub(crate) fn out_of_time(budget: std::time::Duration) -> Self {
        Self {
            failure: Failure::NotSent,
            code: None,
            error: S3Error::new(format!(
                "the operation_timeout of {budget:?} ran out before the next request"
            )),
        }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self.failure {
            Failure::Http(status) => Some(status),
            _ => None,
        }
    }

    /// A conditional write lost: 412 Precondition Failed, or 409 ConditionalRequestConflict
    /// (a concurrent conditional write to the same key).
    pub(crate) fn is_conflict(&self) -> bool {
        matches!(self.status(), Some(412 | 409))
    }

    /// Whether trying again may help: anything but a request the service refused as
    /// malformed or unauthorised (400, 401, 403, 405).
    pub(crate) fn is_retryable(&self) -> bool {
        !matches!(self.status(), Some(400 | 401 | 403 | 405))
    }

    /// Converts to the core's error. `write` says whether the request could change the
    /// object, in which case a request that may have reached the service has an unknown
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
