//! For backend authors: one [`LeaseStore`] for services that keep an object (an S3 object, a
//! DynamoDB item) and write it only on a condition, but have no server-side lease.
//!
//! A backend implements [`ConditionalObjects`]: read an object by name (its version and
//! content), write one on a [`Condition`] (absent, or still at a version), delete one, and
//! convert the engine's records to its own format. [`ConditionalStore`] does everything else:
//!
//! - **Expiry judged by followers.** A follower takes a lease over only after it has seen the
//!   same version unchanged for a whole lease plus the drift margin, on its own monotonic clock
//!   from when the response showing it arrived, and then only with a write conditioned on that
//!   version, so that any write in between (a renewal) makes the takeover fail (DESIGN.md,
//!   rule 2).
//! - **Tokens** `max(previous + 1, service time in µs, highest seen + 1)`, the service time
//!   being the backend's ([`ConditionalObjects::service_time`], whole seconds of the latest
//!   `Date` it received), never the local clock. Over an object without a readable token, the
//!   acquisition first waits for a later second of the service's clock (rule 10).
//! - **A placeholder** over an object deleted after it was seen present, watched like a held
//!   record (rule 9).
//! - **Preferred leaders** in a sibling object `<key>.candidate` and **the election record** in
//!   `<key>.record`.
//! - **The proof at connect** that the service enforces both conditions (rule 12).

mod candidate;
mod clock;
mod election_record;
mod probe;
mod settings;
mod state;
mod writes;

use std::fmt;
use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Operation, Result};
use crate::priority::Candidate;
use crate::store::{
    AcquireOutcome, Capabilities, LeaderInfo, Lease, LeaseRequest, LeaseStore, Record,
    RecordVersion, RenewOutcome, WithholdReason,
};
use crate::token::FencingToken;

pub use clock::ServiceClock;
use clock::{Margin, Watch};
pub use election_record::{MAX_RECORD_LEN, RECORD_SUFFIX};
pub use settings::{Connection, ServiceSettings, check_key};
use state::State;

/// The longest leader metadata a store publishes, in bytes: 64 KiB, as for the memory, Redis
/// and PostgreSQL backends.
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// The suffix of the candidate object's name: `<key>.candidate`.
pub const CANDIDATE_SUFFIX: &str = ".candidate";

/// The holder reported for an object the backend cannot read.
const UNKNOWN_HOLDER: &str = "unknown";

/// What a service that writes on conditions offers [`ConditionalStore`]: its objects by name,
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
    /// `b`)"): [`Connection::describe`], usually.
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

    /// A version as an election record's [`RecordVersion`].
    fn version_text(&self, version: &Self::Version) -> String;
    /// A [`RecordVersion`]'s text as a version to write on.
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

/// The lease object's record, as the engine reads and writes it; each backend has its own
/// format for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The holder; `None` once its holder released the lease (the record keeps the token), or
    /// in a placeholder.
    pub holder: Option<Holder>,
    /// The fencing token of the term this record belongs to (or belonged to, once released).
    pub token: u64,
    /// The holder's lease in milliseconds (a placeholder's: the longest its writer had seen):
    /// a follower watches a version at least this long before taking it over.
    pub lease_ms: u64,
    /// Written by a contender that found the object missing after it had seen it present (a
    /// deletion, or a service that lost it): nobody holds it, but whoever held the deleted
    /// record may still trust its lease, so every contender watches this version for a lease
    /// before taking it over. A write conditioned on this version cannot follow a later
    /// deletion, as a creation on [`Condition::Missing`] could.
    pub placeholder: bool,
}

/// Who holds the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The holder's instance id.
    pub instance_id: String,
    /// The holder's lease id: with the instance id, the lease's owner.
    pub lease_id: String,
    /// The leader metadata.
    pub metadata: Option<Vec<u8>>,
}

impl LeaseRecord {
    /// The record of `request` holding the lease with `token`.
    #[must_use]
    pub fn held(request: &LeaseRequest, token: FencingToken) -> Self {
        Self {
            holder: Some(Holder {
                instance_id: request.instance_id.clone(),
                lease_id: request.lease_id.clone(),
                metadata: request.metadata.clone(),
            }),
            token: token.get(),
            lease_ms: millis(request.ttl),
            placeholder: false,
        }
    }

    /// The record left by the holder's release of the term with `token`: free, keeping the
    /// token so that the next one is greater.
    #[must_use]
    pub fn released(token: FencingToken) -> Self {
        Self {
            holder: None,
            token: token.get(),
            lease_ms: 0,
            placeholder: false,
        }
    }

    /// The placeholder (see [`placeholder`](Self#structfield.placeholder)) with `token` and
    /// `lease`, the longest lease its writer has seen recorded.
    #[must_use]
    pub fn placeholder(token: FencingToken, lease: Duration) -> Self {
        Self {
            holder: None,
            token: token.get(),
            lease_ms: millis(lease),
            placeholder: true,
        }
    }

    /// Whether `request` owns this record's lease.
    #[must_use]
    pub fn is_owned_by(&self, request: &LeaseRequest) -> bool {
        self.holder.as_ref().is_some_and(|holder| {
            holder.instance_id == request.instance_id && holder.lease_id == request.lease_id
        })
    }

    /// The holder as a [`LeaderInfo`], unless released.
    #[must_use]
    pub fn leader(&self) -> Option<LeaderInfo> {
        let holder = self.holder.as_ref()?;
        Some(
            LeaderInfo::new(
                holder.instance_id.clone(),
                Some(FencingToken::new(self.token)),
            )
            .with_metadata(holder.metadata.clone()),
        )
    }

    /// The holder's lease.
    #[must_use]
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

/// The candidate object's record (preferred leaders): the strongest waiting contender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateRecord {
    /// Its instance id.
    pub instance_id: String,
    /// Its priority.
    pub priority: u32,
    /// How long the record stands unchanged before it counts as expired, in milliseconds.
    pub ttl_ms: u64,
}

/// A duration in whole milliseconds, saturating.
#[must_use]
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// 128 random bits as hex: a version or a nonce, new for every write.
#[must_use]
pub fn nonce() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// What a read of the lease object found.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Missing,
    Record(LeaseRecord),
    /// Not of the backend's format (written by somebody else), and why: held by an unknown
    /// holder.
    Unreadable(String),
}

/// The time budget of one operation, shared by its requests.
struct Budget {
    start: Instant,
    total: Duration,
}

impl Budget {
    fn new(total: Duration) -> Self {
        Self {
            start: Instant::now(),
            total,
        }
    }

    fn left(&self) -> Duration {
        self.total.saturating_sub(self.start.elapsed())
    }

    fn end(&self) -> Instant {
        self.start + self.total
    }

    /// Runs one request of the backend with what is left.
    async fn run<T>(
        &self,
        request: impl Future<Output = std::result::Result<T, Failure>> + Send,
    ) -> std::result::Result<T, Failure> {
        let left = self.left();
        if left.is_zero() {
            return Err(Failure::new(
                FailureKind::NotSent,
                format!(
                    "the operation_timeout of {:?} ran out before the next request",
                    self.total
                ),
            ));
        }
        // The SDKs' futures are large: kept on the heap, so that the operations' own futures
        // (and the stacks polling them) stay small.
        match tokio::time::timeout(left, Box::pin(request)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::new(
                FailureKind::InFlight,
                format!("no answer within {left:?}"),
            )),
        }
    }
}

/// The [`LeaseStore`] of a [`ConditionalObjects`] backend: the election in one object `key`,
/// written only on conditions, preferred leaders in `<key>.candidate`, the election record in
/// `<key>.record` (see the [module](self)).
///
/// It dereferences to the backend, for the backend's own accessors (its client, its counts).
///
/// The service tells neither when a lease expires nor when it is released, so
/// [`AcquireOutcome::Held`] carries the time left of this store's watch, at most
/// `retry_interval`, and [`LeaseStore::release_notifications`] is `None`.
pub struct ConditionalStore<B: ConditionalObjects> {
    backend: B,
    key: String,
    /// `container/key`, for logs and metrics.
    election_name: String,
    request_timeout: Duration,
    retry_interval: Duration,
    margin: Margin,
    state: Mutex<State<B::Version>>,
    candidate_key: String,
    candidates: Mutex<Option<candidate::CandidateWatch<B::Version>>>,
    record_key: String,
    /// Set once `connect` proved that the service enforces conditional writes.
    conditions_proven: OnceLock<()>,
}

impl<B: ConditionalObjects> fmt::Debug for ConditionalStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionalStore")
            .field("backend", &self.backend)
            .field("key", &self.key)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl<B: ConditionalObjects> std::ops::Deref for ConditionalStore<B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.backend
    }
}

impl<B: ConditionalObjects> ConditionalStore<B> {
    /// The store of the election `key` on `backend`, with the timings of `options`
    /// (`operation_timeout` per operation, `retry_interval`, and `clock_drift_rate` and
    /// `deadline_slack` for the follower's watch).
    pub fn new(backend: B, key: String, options: &crate::LeaderElectionOptions) -> Self {
        Self {
            election_name: format!("{}/{key}", backend.container()),
            candidate_key: format!("{key}{CANDIDATE_SUFFIX}"),
            record_key: format!("{key}{RECORD_SUFFIX}"),
            backend,
            key,
            request_timeout: options.operation_timeout(),
            retry_interval: options.retry_interval,
            margin: Margin {
                drift_rate: options.clock_drift_rate,
                slack: options.deadline_slack,
            },
            state: Mutex::new(State::default()),
            candidates: Mutex::new(None),
            conditions_proven: OnceLock::new(),
        }
    }

    /// The backend.
    #[must_use]
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The name of the lease object.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The name of the object holding the election's
    /// [record](crate::LeaseStore::read_record): the lease object's name and `.record`. It
    /// lives beside the lease object and outlives every term and release (and a deletion of
    /// the lease object).
    #[must_use]
    pub fn record_key(&self) -> &str {
        &self.record_key
    }

    /// The name of the object holding the candidate record of preferred leaders: the lease
    /// object's name and `.candidate`.
    #[must_use]
    pub fn candidate_key(&self) -> &str {
        &self.candidate_key
    }

    /// The error of a failed request of `operation`, naming a missing container.
    fn fail(&self, failure: Failure, operation: Operation, write: bool) -> Error {
        if failure.kind == FailureKind::NoContainer {
            return self.no_container(operation);
        }
        failure.into_error(operation, write)
    }

    /// The error for a missing container that may not be created, for `operation`.
    fn no_container(&self, operation: Operation) -> Error {
        let terms = self.backend.terms();
        Error::backend(
            operation,
            true,
            StoreError(format!(
                "the {} {} {} (and {} is off)",
                terms.container,
                crate::backend::quoted(self.backend.container()),
                terms.container_missing,
                terms.create_container
            )),
        )
    }

    /// Answers a watch that must still run, or takes the object over on `condition`: the
    /// shared end of every branch of `try_acquire` over a present object.
    async fn acquire_present(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        look: &state::Look<B::Version>,
        version: B::Version,
    ) -> Result<Option<AcquireOutcome>> {
        let now = Instant::now();
        let longest = self.state().longest_lease.max(request.ttl);
        let (highest, highest_held) = {
            let state = self.state();
            (state.highest_token, state.highest_held)
        };
        let condition = Condition::Version(version);
        match &look.seen {
            Seen::Record(record) if record.is_owned_by(request) => {
                // The owner again (a retry after a lost reply): same token, new metadata.
                let token = FencingToken::new(record.token);
                return self.take(budget, request, condition, token).await.map(Some);
            }
            Seen::Record(record)
                if record.holder.is_none() && !record.placeholder && record.token >= highest =>
            {
                // Released by its holder: free at once. A store that never saw the term of this
                // token held cannot tell a release from a restored copy of one, over which
                // another term may have minted a token from this same `Date` second: it mints
                // from a later second than the one it saw the record in.
                if record.token > highest_held {
                    match self.clock_gate(budget, &look.watch).await {
                        Some(None) => {}
                        Some(Some(wait)) => {
                            return Ok(Some(AcquireOutcome::Held {
                                leader: None,
                                expires_in: Some(wait),
                            }));
                        }
                        None => return Ok(None),
                    }
                }
                let token = self.mint(Some(record.token))?;
                self.take(budget, request, condition, token).await.map(Some)
            }
            Seen::Record(record) => {
                // Held; a placeholder over a deleted record; or a released record older than a
                // token this store has seen (a restored backup, not a release): the last holder
                // may still trust its lease until this version stayed unchanged for a whole
                // lease.
                let lease = if record.holder.is_some() {
                    record.lease().max(request.ttl)
                } else {
                    // A placeholder records the longest lease its writer had seen.
                    record.lease().max(longest)
                };
                let remaining = look.watch.remaining(lease, self.margin, now);
                if !remaining.is_zero() {
                    let wait = remaining.min(self.retry_interval).min(request.ttl);
                    return Ok(Some(if record.holder.is_none() {
                        AcquireOutcome::Withheld {
                            wait,
                            reason: WithholdReason::RecordTouched,
                        }
                    } else {
                        AcquireOutcome::Held {
                            leader: record.leader(),
                            expires_in: Some(wait),
                        }
                    }));
                }
                // A token from a later `Date` second than the version was first seen in (after
                // a lease of watching, it is).
                match self.clock_gate(budget, &look.watch).await {
                    Some(None) => {}
                    Some(Some(wait)) => {
                        return Ok(Some(AcquireOutcome::Held {
                            leader: record.leader(),
                            expires_in: Some(wait),
                        }));
                    }
                    None => return Ok(None),
                }
                tracing::info!(
                    election = %self.election_name,
                    holder = ?record.holder.as_ref().map(|h| &h.instance_id),
                    placeholder = record.placeholder,
                    "the lease {} stayed unchanged for a whole lease; taking it over",
                    self.backend.terms().object,
                );
                let token = self.mint(Some(record.token))?;
                self.take(budget, request, condition, token).await.map(Some)
            }
            Seen::Unreadable(_) | Seen::Missing => {
                // Written by somebody else: held by an unknown holder for a lease.
                let remaining = look.watch.remaining(longest, self.margin, now);
                if !remaining.is_zero() {
                    return Ok(Some(AcquireOutcome::Held {
                        leader: Some(LeaderInfo::new(UNKNOWN_HOLDER, None)),
                        expires_in: Some(remaining.min(self.retry_interval).min(request.ttl)),
                    }));
                }
                match self.clock_gate(budget, &look.watch).await {
                    Some(None) => {}
                    Some(Some(wait)) => {
                        return Ok(Some(AcquireOutcome::Withheld {
                            wait,
                            reason: WithholdReason::RecordTouched,
                        }));
                    }
                    None => return Ok(None),
                }
                let token = self.mint(None)?;
                self.take(budget, request, condition, token).await.map(Some)
            }
        }
    }

    /// `try_acquire` over a missing object: `None` to read again.
    async fn acquire_missing(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        look: &state::Look<B::Version>,
    ) -> Result<Option<AcquireOutcome>> {
        let (present_seen, longest) = {
            let state = self.state();
            (state.present_seen, state.longest_lease.max(request.ttl))
        };
        if present_seen {
            // Deleted (or the service lost it) after this store saw it: its holder may still
            // trust it for a lease. A creation on `Condition::Missing` would not be tied to the
            // absence watched (the object may have been created and deleted again since), so
            // this store writes a placeholder instead, and every contender watches that version
            // for a lease and takes it over on it. A lost race means another placeholder (or
            // record) stands.
            return Ok(if self.write_placeholder(budget, longest).await? {
                Some(AcquireOutcome::Withheld {
                    wait: self.margin.watch_for(longest).min(self.retry_interval),
                    reason: WithholdReason::RecordTouched,
                })
            } else {
                None
            });
        }
        // Never seen present: a new election, as far as this store can know.
        match self.clock_gate(budget, &look.watch).await {
            Some(None) => {}
            Some(Some(wait)) => {
                return Ok(Some(AcquireOutcome::Withheld {
                    wait,
                    reason: WithholdReason::BackendRestarted,
                }));
            }
            None => return Ok(None),
        }
        let token = self.mint(None)?;
        self.take(budget, request, Condition::Missing, token)
            .await
            .map(Some)
    }

    /// Renews (`record` held) or releases (`record` released) on this store's last write of
    /// the lease, or on the object's version when it still shows the lease (a write whose
    /// reply was lost); `false` when the lease is not this store's any more.
    async fn rewrite(
        &self,
        request: &LeaseRequest,
        lease: &Lease,
        record: LeaseRecord,
        operation: Operation,
    ) -> Result<bool> {
        let budget = Budget::new(self.request_timeout);
        if let Some(version) = self.owned_version(request, lease.token) {
            match self
                .put(&budget, Condition::Version(&version), &record)
                .await
            {
                Ok(version) => {
                    self.wrote(&request.lease_id, version, record);
                    return Ok(true);
                }
                Err(f) if f.lost() || f.kind == FailureKind::NoContainer => {
                    tracing::debug!(error = %f.message, token = %lease.token, "rewrite refused");
                }
                Err(f) => return Err(self.fail(f, operation, true)),
            }
        }
        match self
            .rewrite_if_still_owned(&budget, request, lease.token, &record, operation)
            .await?
        {
            Some(version) => {
                self.wrote(&request.lease_id, version, record);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl<B: ConditionalObjects> LeaseStore for ConditionalStore<B> {
    fn election_name(&self) -> &str {
        &self.election_name
    }

    /// Prepares the client and, once per store, proves that the service enforces conditional
    /// writes (a probe object written on [`Condition::Missing`] twice and on a stale
    /// version, then deleted).
    ///
    /// # Errors
    /// A retryable error when the proof could not be made (the service unreachable, a missing
    /// container); an error that is not retryable, naming the endpoint and what was ignored,
    /// when the service accepted a write whose condition failed.
    ///
    /// # Cancel safety
    /// A dropped call proves nothing; the next call makes the proof again, with a new probe
    /// object.
    async fn connect(&self) -> Result<()> {
        self.backend.prepare().await;
        if self.conditions_proven.get().is_none() {
            self.prove_conditions().await?;
            let _ = self.conditions_proven.set(());
        }
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_candidates()
            .with_metadata(MAX_METADATA_LEN)
            .with_records(MAX_RECORD_LEN)
    }

    /// # Cancel safety
    /// A dropped acquisition may have written the object: its outcome is unknown, and the core
    /// asks again with the same request, which finds its own record.
    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let budget = Budget::new(self.request_timeout);
        for _ in 0..3 {
            let look = self.look(&budget, Operation::Acquire).await?;
            let outcome = match look.version.clone() {
                Some(version) if look.seen != Seen::Missing => {
                    self.acquire_present(&budget, request, &look, version)
                        .await?
                }
                _ => self.acquire_missing(&budget, request, &look).await?,
            };
            if let Some(outcome) = outcome {
                return Ok(outcome);
            }
        }
        Err(Error::backend(
            Operation::Acquire,
            true,
            StoreError(format!(
                "the service's clock (Date) did not pass the second in which the lease {} was \
                 seen without a token",
                self.backend.terms().object
            )),
        ))
    }

    /// # Cancel safety
    /// A dropped renewal may have been written; the next renewal finds the lease by reading
    /// the object.
    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let record = LeaseRecord::held(request, lease.token);
        Ok(
            match self
                .rewrite(request, lease, record, Operation::Renew)
                .await?
            {
                true => RenewOutcome::Renewed,
                false => RenewOutcome::Lost,
            },
        )
    }

    /// # Cancel safety
    /// A dropped release may have been written; if not, the lease runs out on its own.
    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let record = LeaseRecord::released(lease.token);
        self.rewrite(request, lease, record, Operation::Release)
            .await
    }

    /// # Cancel safety
    /// A read: dropping it changes nothing.
    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        let budget = Budget::new(self.request_timeout);
        let look = self.look(&budget, Operation::CurrentLeader).await?;
        Ok(match look.seen {
            Seen::Record(record) => record.leader(),
            Seen::Unreadable(_) => Some(LeaderInfo::new(UNKNOWN_HOLDER, None)),
            Seen::Missing => None,
        })
    }

    /// # Cancel safety
    /// A dropped announcement may have been written; the next one writes it again.
    async fn announce_candidate(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        self.announce(candidate, ttl).await
    }

    /// # Cancel safety
    /// A read: dropping it changes nothing.
    async fn strongest_candidate(&self) -> Result<Option<Candidate>> {
        self.strongest().await
    }

    /// One read of [`record_key`](ConditionalStore::record_key): its data and version; `None`
    /// when the object is missing.
    ///
    /// # Errors
    /// A retryable error when the service cannot be reached or answers with a failure; an
    /// error that is not retryable for a refusal (permissions), and [`Error::InvalidData`] for
    /// an object that is not an election record of the backend's format or is longer than
    /// [`MAX_RECORD_LEN`] (written by hand).
    ///
    /// # Cancel safety
    /// A read: dropping it changes nothing.
    async fn read_record(&self) -> Result<Option<Record>> {
        self.get_record().await
    }

    /// One write of [`record_key`](ConditionalStore::record_key) on the version `expected`,
    /// or on [`Condition::Missing`] when `expected` is `None`; `Ok(None)` when the record was
    /// not at `expected`. The first write of a store makes the proof of
    /// [`connect`](LeaseStore::connect) if it was not made yet.
    ///
    /// # Errors
    /// Refused before anything is sent when `data` is longer than [`MAX_RECORD_LEN`]; the
    /// errors of [`connect`](LeaseStore::connect); an unknown outcome when the request may have
    /// been served without its answer arriving; otherwise as for
    /// [`read_record`](LeaseStore::read_record).
    ///
    /// # Cancel safety
    /// A dropped write may have been made: read the record to know.
    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        self.put_record(expected, data).await
    }
}
