//! The private conversion of Azure SDK errors into the core's [`Error`], which never carries a
//! secret. Configuration errors are the core's [`BuildError`](leader_election::BuildError).

use std::fmt;

use azure_core::error::ErrorKind;
use azure_core::http::StatusCode;
use leader_election::{Error, Operation};

/// A failure of one Azure request, described without secrets: the HTTP status and Azure error
/// code when the service answered, or a redacted transport message otherwise.
#[derive(Debug)]
pub(crate) struct BlobError(String);

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BlobError {}

impl BlobError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(redact(&message.into()))
    }
}

/// What an Azure SDK error means for the operation that got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The service answered with this status and error code.
    Http(u16),
    /// The request never left: connecting failed.
    Connect,
    /// The request was not sent: the operation's time budget was spent.
    NotSent,
    /// The request may have reached the service (I/O error mid-request, client timeout).
    InFlight,
    /// Anything else: building the request, reading the response, credentials.
    Other,
}

/// The parts of an Azure SDK error that decisions are made on.
#[derive(Debug)]
pub(crate) struct AzureFailure {
    pub(crate) failure: Failure,
    pub(crate) code: Option<String>,
    pub(crate) error: BlobError,
}

impl AzureFailure {
    pub(crate) fn from_sdk(err: &azure_core::Error) -> Self {
        let (failure, code) = match err.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => (Failure::Http(u16::from(*status)), error_code.clone()),
            ErrorKind::Connection => (Failure::Connect, None),
            ErrorKind::Io => (Failure::InFlight, None),
            _ => (Failure::Other, None),
        };
        let message = match (&failure, &code) {
            (Failure::Http(status), Some(code)) => format!("HTTP {status} {code}"),
            (Failure::Http(status), None) => {
                let reason = StatusCode::from(*status).canonical_reason();
                format!("HTTP {status} {reason}")
            }
            _ => describe_chain(err),
        };
        Self {
            failure,
            code,
            error: BlobError::new(message),
        }
    }

    /// The operation's budget was spent before this request could be sent.
    pub(crate) fn out_of_time(budget: std::time::Duration) -> Self {
        Self {
            failure: Failure::NotSent,
            code: None,
            error: BlobError::new(format!(
                "the operation_timeout of {budget:?} ran out before the next request"
            )),
        }
    }

    /// The client-side request timeout elapsed: the request may have been served.
    pub(crate) fn timed_out(after: std::time::Duration) -> Self {
        Self {
            failure: Failure::InFlight,
            code: None,
            error: BlobError::new(format!("no answer within {after:?}")),
        }
    }

    pub(crate) fn status(&self) -> Option<u16> {
        match self.failure {
            Failure::Http(status) => Some(status),
            _ => None,
        }
    }

    pub(crate) fn is(&self, status: u16, code: &str) -> bool {
        self.status() == Some(status) && self.code.as_deref() == Some(code)
    }

    /// Converts to the core's error. `write` says whether the request could change state, in
    /// which case a request that may have reached the service has an unknown outcome.
    pub(crate) fn into_error(self, operation: Operation, write: bool) -> Error {
        match self.failure {
            Failure::Connect | Failure::NotSent => Error::backend(operation, true, self.error),
            Failure::InFlight if write => Error::outcome_unknown(operation, self.error),
            Failure::InFlight => Error::backend(operation, true, self.error),
            // The service may have acted before failing internally.
            Failure::Http(status) if status >= 500 && write => {
                Error::outcome_unknown(operation, self.error)
            }
            // A refusal (bad request, bad credentials, not allowed) stays one; anything else,
            // such as a blob or lease gone meanwhile (404, 409, 412), may be over next time.
            Failure::Http(status) => {
                let retryable = !matches!(status, 400 | 401 | 403 | 405);
                Error::backend(operation, retryable, self.error)
            }
            Failure::Other => Error::backend(operation, true, self.error),
        }
    }
}

/// The messages of an error and its sources, joined, with secrets removed. Transport errors
/// carry the request URL, whose query may hold a SAS signature.
fn describe_chain(err: &azure_core::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

/// Replaces the value of every `sig=` query parameter (a SAS signature) with `REDACTED`.
pub(crate) fn redact(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find("sig=") {
        let start = from + found;
        let preceded_ok = start == 0 || matches!(lower.as_bytes()[start - 1], b'?' | b'&' | b';');
        let value_start = start + 4;
        if !preceded_ok {
            from = value_start;
            continue;
        }
        let value_end = text[value_start..]
            .find(|c: char| matches!(c, '&' | ';' | ')' | '\'' | '"') || c.is_whitespace())
            .map_or(text.len(), |end| value_start + end);
        out.push_str(&text[rest..value_start]);
        out.push_str("REDACTED");
        rest = value_end;
        from = value_end;
    }
    out.push_str(&text[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_sas_signatures() {
        let text = "error sending request for url (http://h/c/b?sv=2025&sig=abc%2Bdef&se=x)";
        let redacted = redact(text);
        assert!(!redacted.contains("abc%2Bdef"), "{redacted}");
        assert!(redacted.contains("sig=REDACTED&se=x"), "{redacted}");
        assert_eq!(
            redact("SharedAccessSignature=sv=1;Sig=zzz"),
            "SharedAccessSignature=sv=1;Sig=REDACTED"
        );
        assert_eq!(redact("no secret, design=ok"), "no secret, design=ok");
        assert_eq!(redact("?sig="), "?sig=REDACTED");
    }
}
