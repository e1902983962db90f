//! What an S3 request's failure means to the conditional engine. Configuration errors are the
//! core's [`BuildError`](leader_election::BuildError).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use leader_election::store::conditional::{Failure, FailureKind};
use leader_election_aws::Detail;

/// The failure of one S3 request, described without secrets (see [`kind`]).
pub(crate) fn failure<E>(err: &SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    leader_election_aws::failure(err, kind, Detail::Code)
}

/// What an answer with `status` and `code` means: 412 Precondition Failed and 409
/// (ConditionalRequestConflict, a concurrent conditional write) lost a race; a 404 is a
/// missing object, or with `NoSuchBucket` a missing bucket; 400, 401, 403 and 405 are not
/// retryable.
fn kind(status: u16, code: Option<&str>) -> FailureKind {
    match (status, code) {
        (412 | 409, _) => FailureKind::ConditionFailed,
        (404, Some("NoSuchBucket")) => FailureKind::NoContainer,
        (404, _) => FailureKind::NotFound,
        (400 | 401 | 403 | 405, _) => FailureKind::Refused { retryable: false },
        (500.., _) => FailureKind::ServerError,
        _ => FailureKind::Refused { retryable: true },
    }
}
