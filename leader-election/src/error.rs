//! Errors: runtime failures ([`Error`]) and invalid configuration ([`ConfigError`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A boxed error from a backend client, kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A `Result` whose error defaults to this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The backend operation an [`Error`] or event relates to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Preparing the backend: connecting, loading scripts, subscribing.
    Connect,
    /// Trying to acquire the lease.
    Acquire,
    /// Renewing a held lease.
    Renew,
    /// Releasing a held lease.
    Release,
    /// Reading who holds the lease.
    CurrentLeader,
    /// Announcing a waiting contender's priority (preferred leaders).
    AnnounceCandidate,
    /// Reading the strongest waiting contender (preferred leaders).
    StrongestCandidate,
    /// Reading the election's record (scheduled jobs).
    ReadRecord,
    /// Writing the election's record (scheduled jobs).
    WriteRecord,
}

impl Operation {
    /// A short lower-case name, used in logs and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Acquire => "acquire",
            Self::Renew => "renew",
            Self::Release => "release",
            Self::CurrentLeader => "current_leader",
            Self::AnnounceCandidate => "announce_candidate",
            Self::StrongestCandidate => "strongest_candidate",
            Self::ReadRecord => "read_record",
            Self::WriteRecord => "write_record",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A shared backend error, kept as the `source` of an [`Error`] so that errors are cheap to
/// clone into events.
pub type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A runtime failure of the election or of its backend.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend refused or failed the operation; it did not take effect.
    #[error("{operation} failed: {source}")]
    Backend {
        /// The operation that failed.
        operation: Operation,
        /// Whether trying again later may succeed (connection problems, overload).
        retryable: bool,
        /// The backend client's error.
        #[source]
        source: SharedError,
    },
    /// The operation did not answer in time or the connection broke while it was in flight:
    /// it may or may not have taken effect, and ownership has to be checked again.
    #[error("{operation} has an unknown outcome: {source}")]
    OutcomeUnknown {
        /// The operation whose outcome is unknown.
        operation: Operation,
        /// What went wrong.
        #[source]
        source: SharedError,
    },
    /// The operation exceeded `operation_timeout`; it may or may not have taken effect.
    #[error("{operation} timed out after {after:?}; its outcome is unknown")]
    Timeout {
        /// The operation that timed out.
        operation: Operation,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// The backend holds data this library did not write or cannot read, such as a lease key
    /// overwritten by hand.
    #[error("{operation}: unexpected data in the backend: {message}")]
    InvalidData {
        /// The operation that read the data.
        operation: Operation,
        /// What was wrong with it.
        message: String,
    },
    /// The election has not been started, or was stopped.
    #[error("the election is not running")]
    NotRunning,
    /// The election loop panicked (a bug, most likely in a backend); its term, if any, was
    /// ended when it did.
    #[error("the election loop panicked: {0}")]
    LoopPanicked(String),
    /// Leader work did not finish within the shutdown bound, so the lease was not released
    /// (a successor could otherwise start while the work still runs); it expires on its own.
    #[error(
        "leader work did not stop within {0:?}; the lease was left to expire instead of being released"
    )]
    WorkStillRunning(Duration),
    /// Leader metadata longer than the backend accepts (see
    /// [`LeaseStore::check_metadata`](crate::LeaseStore::check_metadata)); nothing was written.
    #[error(
        "leader metadata of {len} bytes exceeds this backend's limit of {limit} bytes; nothing was written"
    )]
    MetadataTooLarge {
        /// The metadata's length, in bytes.
        len: usize,
        /// The longest the backend accepts, in bytes.
        limit: usize,
    },
}

impl Error {
    /// A failure reported by the backend client for `operation`, whose outcome is known: it
    /// did not take effect.
    pub fn backend(operation: Operation, retryable: bool, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            operation,
            retryable,
            source: Arc::from(source.into()),
        }
    }

    /// A failure after which `operation` may or may not have taken effect (a client-side
    /// timeout, a connection dropped while the request was in flight).
    pub fn outcome_unknown(operation: Operation, source: impl Into<BoxError>) -> Self {
        Self::OutcomeUnknown {
            operation,
            source: Arc::from(source.into()),
        }
    }

    /// Data in the backend that cannot be interpreted.
    pub fn invalid_data(operation: Operation, message: impl Into<String>) -> Self {
        Self::InvalidData {
            operation,
            message: message.into(),
        }
    }

    /// The operation this error relates to, if any.
    #[must_use]
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Self::Backend { operation, .. }
            | Self::OutcomeUnknown { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::InvalidData { operation, .. } => Some(*operation),
            Self::NotRunning
            | Self::LoopPanicked(_)
            | Self::WorkStillRunning(_)
            | Self::MetadataTooLarge { .. } => None,
        }
    }

    /// Whether the same call may succeed if tried again later.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Backend { retryable, .. } => *retryable,
            Self::OutcomeUnknown { .. } | Self::Timeout { .. } | Self::InvalidData { .. } => true,
            Self::NotRunning
            | Self::LoopPanicked(_)
            | Self::WorkStillRunning(_)
            | Self::MetadataTooLarge { .. } => false,
        }
    }

    /// Whether the operation may have taken effect even though it reported a failure: a write
    /// that timed out. Ownership must be checked again before either outcome is believed.
    #[must_use]
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. } | Self::Timeout { .. })
    }
}

/// An option or combination of options that cannot work, found by
/// [`LeaderElectionOptions::validate`](crate::LeaderElectionOptions::validate) or by a
/// backend's builder.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid option `{field}`: {rule}")]
#[non_exhaustive]
pub struct ConfigError {
    /// The option at fault (for a combination, the one to change first).
    pub field: &'static str,
    /// The rule it breaks, with the values involved.
    pub rule: String,
}

impl ConfigError {
    /// An error for `field` breaking `rule`.
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }
}

/// The longest part of a user's input that an error message repeats.
const MAX_ECHO_CHARS: usize = 64;

/// `value` quoted for an error message, cut to its first 64 characters (saying how long it
/// was) so that a huge input never floods a log.
///
/// ```
/// assert_eq!(leader_election::backend::quoted("lease"), "\"lease\"");
/// let long = "k".repeat(100_000);
/// assert!(leader_election::backend::quoted(&long).len() < 100);
/// ```
#[must_use]
pub fn quoted(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!("{:?}… ({} bytes in all)", &value[..cut], value.len()),
    }
}

#[cfg(test)]
mod quoted_tests {
    use super::quoted;

    #[test]
    fn short_input_is_quoted_whole() {
        assert_eq!(quoted("a\"b"), r#""a\"b""#);
    }

    #[test]
    fn long_input_is_cut_on_a_char_boundary() {
        let long = "é".repeat(1000);
        let shown = quoted(&long);
        assert!(
            shown.starts_with(&format!("{:?}", "é".repeat(64))),
            "{shown}"
        );
        assert!(shown.ends_with("(2000 bytes in all)"), "{shown}");
        assert!(shown.chars().count() < 100, "{shown}");
    }
}
