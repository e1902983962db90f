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
mod objects;
mod probe;
mod record;
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
pub use objects::{Condition, ConditionalObjects, Failure, FailureKind, Read, StoreError, Terms};
pub use record::{CandidateRecord, Holder, LeaseRecord, millis, nonce};
pub use settings::{Connection, ServiceSettings, check_key};
use state::State;

pub use crate::store::MAX_METADATA_LEN;

/// The suffix of the candidate object's name: `<key>.candidate`.
pub const CANDIDATE_SUFFIX: &str = ".candidate";

/// The holder reported for an object the backend cannot read.
const UNKNOWN_HOLDER: &str = "unknown";

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
