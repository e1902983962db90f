//! What a backend supplies: [`ConditionalObjects`], the words of its messages, and what its
//! requests answer.

use std::fmt;
use std::future::Future;

use super::{CandidateRecord, LeaseRecord};
use crate::error::{Error, Operation, Result};

/// What a service that writes on conditions offers [`ConditionalStore`](super::ConditionalStore): its objects by name,
/// and its format.
///
/// Every method that talks to the service is called within the operation's time (the engine
/// drops its future when that is spent), with one attempt per request: the election retries by
/// itself.
pub trait ConditionalObjects: fmt::Debug + Send + Sync + 'static {
    /// What tells two versions of an object apart, and what a write's
    /// [`Condition::Version`] compares. Two reads showing equal versions showed the same
    /// content.
    type Version: Clone + Eq + fmt::Debug + Send + Sync + 'static;
    /// An object's content as the service holds it (bytes, an item's attributes).
    type Body: Send + Sync + 'static;

    /// The container of the objects (a bucket, a table), for names in logs and messages.
    fn container(&self) -> &str;

    /// The words of messages and logs.
    fn terms(&self) -> &Terms;

    /// The service's endpoint and container, for messages ("`http://host:9000` (bucket
    /// `b`)"): [`Connection::describe`](super::Connection::describe), usually.
    fn endpoint(&self) -> String;

    /// The service's clock: whole seconds since the Unix epoch of the latest `Date` (or like
    /// time) received from it, 0 before any. It never moves back.
    fn service_time(&self) -> u64;

    /// Prepares the client (built at the first call; cheap after).
    ///
    /// # Cancel safety
    /// Dropped when `operation_timeout` elapses; a later call must still prepare it.
    fn prepare(&self) -> impl Future<Output = ()> + Send {
        async {}
    }

    /// Reads the object `name`. `known` is the version the engine last read of it: a backend
    /// that can ask cheaply whether the object is still at it (S3's `HEAD`) answers
    /// [`Read::Unchanged`] without the content.
    ///
    /// # Cancel safety
    /// Dropped when the operation's time is spent: a read changes nothing.
    fn read(
        &self,
        name: &str,
        known: Option<&Self::Version>,
    ) -> impl Future<Output = Result<Read<Self::Version, Self::Body>, Failure>> + Send;

    /// Writes `body` as the object `name`, only if `condition` holds, creating the container
    /// first when it is missing and may be created; answers the new version. Every write must
    /// have a version that no earlier content of the object had (a new random version
    /// attribute, or a nonce in the body), except for [`encode_data`](Self::encode_data), whose
    /// content alone may name its version.
    ///
    /// # Cancel safety
    /// Dropped when the operation's time is spent: the write's outcome is then unknown, which
    /// the engine allows for.
    fn write(
        &self,
        name: &str,
        condition: Condition<&Self::Version>,
        body: Self::Body,
    ) -> impl Future<Output = Result<Self::Version, Failure>> + Send;

    /// Deletes the object `name` (the probe's, after the proof at connect).
    ///
    /// # Cancel safety
    /// Dropped when the operation's time is spent; the probe object is then left behind.
    fn delete(&self, name: &str) -> impl Future<Output = Result<(), Failure>> + Send;

    /// The content of the lease object `name` holding `record`.
    fn encode_lease(&self, record: &LeaseRecord) -> Self::Body;
    /// The lease record in `body`, or why it is not one of this backend's format.
    fn decode_lease(&self, body: &Self::Body) -> std::result::Result<LeaseRecord, String>;
    /// The content of the candidate object holding `record`.
    fn encode_candidate(&self, record: &CandidateRecord) -> Self::Body;
    /// The candidate record in `body`; `None` when it is not one (treated as no candidate).
    fn decode_candidate(&self, body: &Self::Body) -> Option<CandidateRecord>;
    /// The content of the election record object holding `data`.
    fn encode_data(&self, data: &[u8]) -> Self::Body;
    /// The data in an election record object, or why it is not one.
    fn decode_data(&self, body: Self::Body) -> std::result::Result<Vec<u8>, String>;
    /// The content of a probe object, different for every `step`.
    fn encode_probe(&self, step: &str) -> Self::Body;

    /// A version as an election record's [`RecordVersion`](crate::store::RecordVersion).
    fn version_text(&self, version: &Self::Version) -> String;
    /// A [`RecordVersion`](crate::store::RecordVersion)'s text as a version to write on.
    fn version_from_text(&self, text: &str) -> Self::Version;
    /// A version no object has: the stale version of the probe when the service gave the same
    /// version twice.
    fn made_up_version(&self) -> Self::Version;
}

/// The words of a backend's messages: what it calls its objects and conditions.
#[derive(Clone, Copy, Debug)]
pub struct Terms {
    /// The service, in log lines ("S3", "DynamoDB").
    pub service: &'static str,
    /// What holds the lease ("object", "item").
    pub object: &'static str,
    /// What holds the objects ("bucket", "table").
    pub container: &'static str,
    /// How a missing container is described ("does not exist").
    pub container_missing: &'static str,
    /// The builder's setting that creates a missing container
    /// ("create_bucket_if_not_exists").
    pub create_container: &'static str,
    /// How the proof's messages name the service, before its endpoint ("the S3 store at").
    pub service_at: &'static str,
    /// What the service must enforce ("conditional writes", "condition expressions").
    pub conditions: &'static str,
    /// The write creating the probe object.
    pub probe_create: &'static str,
    /// The write creating it again (must be refused).
    pub probe_again: &'static str,
    /// What was ignored when it was not refused.
    pub ignored_missing: &'static str,
    /// The write on the probe's own version (must succeed).
    pub probe_matching: &'static str,
    /// The write on a stale version (must be refused).
    pub probe_stale: &'static str,
    /// What was ignored when it was not refused.
    pub ignored_stale: &'static str,
}

/// The condition of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition<V> {
    /// Only if the object is missing.
    Missing,
    /// Only if the object is still at this version.
    Version(V),
}

/// What a read found.
#[derive(Debug)]
pub enum Read<V, B> {
    /// No object.
    Missing,
    /// Still at the version known to the engine (the content was not read).
    Unchanged,
    /// The object at this version, with this content.
    Found(V, B),
}

/// What a failed request means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// A write's condition did not hold (or a concurrent conditional write won): nothing was
    /// written.
    ConditionFailed,
    /// The object was missing for a write on its version: nothing was written.
    NotFound,
    /// The container is missing, and may not be created.
    NoContainer,
    /// The service refused the request (not a server error); `retryable` says whether trying
    /// again may help (not for credentials, permissions or a malformed request).
    Refused {
        /// Whether trying again may help.
        retryable: bool,
    },
    /// The service failed (a 5xx): a write may have been made.
    ServerError,
    /// The service answered something the backend cannot use (no version): not written.
    Invalid,
    /// The request was not sent.
    NotSent,
    /// The request may have reached the service (a transport error, no answer in time).
    InFlight,
}

/// A failed request, described without secrets.
#[derive(Debug)]
pub struct Failure {
    /// What it means.
    pub kind: FailureKind,
    /// Its description.
    pub message: String,
}

impl Failure {
    /// A failure of `kind` described by `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// A write lost to another (its condition failed, or the object it named is gone).
    #[must_use]
    pub fn lost(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::ConditionFailed | FailureKind::NotFound
        )
    }

    /// Whether trying again may help.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        !matches!(self.kind, FailureKind::Refused { retryable: false })
    }

    /// The core's error for this failure of `operation`; `write` says whether the request
    /// could change an object, in which case a request that may have reached the service has
    /// an unknown outcome.
    #[must_use]
    pub fn into_error(self, operation: Operation, write: bool) -> Error {
        let error = StoreError(self.message);
        match self.kind {
            FailureKind::InFlight | FailureKind::ServerError if write => {
                Error::outcome_unknown(operation, error)
            }
            FailureKind::Invalid => Error::invalid_data(operation, error.0),
            FailureKind::Refused { retryable } => Error::backend(operation, retryable, error),
            _ => Error::backend(operation, true, error),
        }
    }
}

/// An error of a conditional store, as its message.
#[derive(Debug)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}
