//! What an SDK request's failure means to the conditional engine.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use leader_election::store::conditional::{Failure, FailureKind};

/// What a failure's message says of the service's answer, besides its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// The error code (`HTTP 412 PreconditionFailed`).
    Code,
    /// The error code and the service's message (`HTTP 400 ValidationException: ...`).
    CodeAndMessage,
}

/// The failure of one SDK request, described without secrets: a request that could not be
/// built was not sent; an answer of the service is what `kind` makes of its HTTP status and
/// error code; anything else (a timeout, a broken connection, an unreadable answer) leaves the
/// outcome unknown.
pub fn failure<E>(
    err: &SdkError<E, HttpResponse>,
    kind: impl FnOnce(u16, Option<&str>) -> FailureKind,
    detail: Detail,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err {
        SdkError::ConstructionFailure(_) => {
            Failure::new(FailureKind::NotSent, DisplayErrorContext(err).to_string())
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code();
            let message = match detail {
                Detail::CodeAndMessage => service.err().message(),
                Detail::Code => None,
            };
            let message = match (code, message) {
                (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
                (Some(code), None) => format!("HTTP {status} {code}"),
                (None, _) => format!("HTTP {status}"),
            };
            Failure::new(kind(status, code), message)
        }
        _ => Failure::new(FailureKind::InFlight, DisplayErrorContext(err).to_string()),
    }
}
