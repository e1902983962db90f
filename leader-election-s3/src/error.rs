//! What an S3 request's failure means to the conditional engine. Configuration errors are the
//! core's [`BuildError`](leader_election::BuildError).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use leader_election::store::conditional::{Failure, FailureKind};

/// The failure of one S3 request, described without secrets: 412 Precondition Failed and 409
/// (ConditionalRequestConflict, a concurrent conditional write) lost a race; a 404 is a
/// missing object, or with `NoSuchBucket` a missing bucket; 400, 401, 403 and 405 are not
/// retryable.
pub(crate) fn failure<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ConstructionFailure(_) => Failure::new(
            FailureKind::NotSent,
            aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
        ),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code();
            let kind = match (status, code) {
                (412 | 409, _) => FailureKind::ConditionFailed,
                (404, Some("NoSuchBucket")) => FailureKind::NoContainer,
                (404, _) => FailureKind::NotFound,
                (400 | 401 | 403 | 405, _) => FailureKind::Refused { retryable: false },
                (500.., _) => FailureKind::ServerError,
                _ => FailureKind::Refused { retryable: true },
            };
            let message = match code {
                Some(code) => format!("HTTP {status} {code}"),
                None => format!("HTTP {status}"),
            };
            Failure::new(kind, message)
        }
        _ => Failure::new(
            FailureKind::InFlight,
            aws_sdk_s3::error::DisplayErrorContext(err).to_string(),
        ),
    }
}
