//! [`S3LeaseStore`]: the [`LeaseStore`] kept in one S3 object, written only with conditional
//! writes.

mod candidate;
mod io;
mod probe;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leader_election::{
    AcquireOutcome, Error, FencingToken, LeaderElectionOptions, LeaderInfo, Lease, LeaseRequest,
    LeaseStore, Operation, RenewOutcome, Result, WithholdReason,
};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::clock::{DATE_WAIT, Margin, Version, Watch, clock_passed, next_token};
use crate::error::S3Error;
use crate::record::{Record, Seen};
use crate::wire::{RequestCounts, Wire};

/// The longest leader metadata a store publishes, in bytes: 64 KiB, as for the memory, Redis
/// and PostgreSQL backends. It is stored in the object's body (base64), read by followers only
/// when the object changed.
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// How the store reaches S3.
pub(crate) enum Connection {
    /// A client built by the caller.
    Client(aws_sdk_s3::Client),
    /// A client to build from the AWS configuration and these settings, at the first
    /// operation.
    Settings {
        endpoint: Option<String>,
        region: Option<String>,
        force_path_style: bool,
        credentials: Option<(String, String)>,
    },
}

/// Everything a store is made from, checked by the builder.
pub(crate) struct Settings {
    pub(crate) connection: Connection,
    pub(crate) bucket: String,
    pub(crate) key: String,
    pub(crate) create_bucket: bool,
    pub(crate) options: LeaderElectionOptions,
}

/// A [`LeaseStore`] that keeps the election in one S3 object, written only with conditional
/// writes (`If-None-Match: *` to create it, `If-Match: <ETag>` for everything else).
///
/// Build it with [`S3LeaderElection::builder`](crate::S3LeaderElection::builder) (its
/// [`build_store`](crate::S3LeaderElectionBuilder::build_store) gives the store alone). One
/// store holds one client that all operations reuse.
///
/// # How the operations map to S3
/// - `connect`: once per store, proves that the service enforces conditional writes: a probe
///   object next to the lease object written with `If-None-Match: *` twice, with `If-Match` on
///   its ETag and on a stale one, then deleted. A service that accepts a write whose condition
///   failed is refused with an error that is not retryable (DESIGN.md, rule 12).
/// - `try_acquire`: `HEAD` on the object (all a follower pays while the object is unchanged),
///   and a `GET` when its ETag is new to this store. A missing object is created with
///   `If-None-Match: *` by a store that never saw it; a store that saw it present writes a
///   placeholder record instead (`If-None-Match: *`), watched like a held record. A released
///   record is taken at once with `If-Match` on its ETag, unless its token is below the
///   highest this store has seen (a restored backup: watched like a held record); a held one
///   (or a placeholder) only after this store has seen its ETag unchanged for the holder's
///   lease (or its own ttl if longer) plus the drift margin, on its own monotonic clock from
///   when the response showing it arrived, and then with `If-Match` on that ETag. The owner
///   acquiring again (a retry after a lost reply) rewrites its record with `If-Match`, keeping
///   its token.
/// - `renew`: rewrites the record with `If-Match` on the ETag of this store's last write of the
///   lease. A refused renewal reads the object: if it still shows this lease (an earlier
///   write whose reply was lost), the renewal is made on that ETag; otherwise the lease is lost.
/// - `release`: rewrites the record as released (no holder, same token) with `If-Match`, so
///   that the next poll of any contender takes it over at once.
/// - `current_leader`: `HEAD`, and a `GET` when the object changed.
///
/// Every write carries a fresh random nonce: S3's ETag of a simple upload is the MD5 of the
/// body, so a renewal writing the same bytes again would keep the ETag, and followers would
/// count the lease as unrenewed.
///
/// S3 tells neither when a lease expires nor when it is released, so [`AcquireOutcome::Held`]
/// carries the time left of this store's watch, at most `retry_interval`, and
/// [`LeaseStore::release_notifications`] is `None`.
///
/// # Tokens
/// A token is `max(previous + 1, service time in µs)`, the service time taken from the `Date`
/// header of S3's responses (never the local clock). When the object holds no readable token
/// (missing, or overwritten by something else), the acquisition first waits until a `Date` of a
/// later second than the response that showed it so arrived (about a second at most, slept
/// within `operation_timeout`, or answered as [`AcquireOutcome::Withheld`] when that is
/// shorter), so that a token stays above every token of a deleted record. The same wait comes
/// before taking over a released record whose term this store never saw held (a brand-new
/// process, which cannot tell a release from a restored copy of one), and before taking over a
/// version watched for a lease (where it has long passed). This assumes that the service's
/// clock does not step back.
pub struct S3LeaseStore {
    connection: Connection,
    client: OnceCell<aws_sdk_s3::Client>,
    bucket: String,
    key: String,
    /// `bucket/key`, for logs and metrics.
    election_name: String,
    create_bucket: bool,
    request_timeout: Duration,
    retry_interval: Duration,
    margin: Margin,
    wire: Arc<Wire>,
    state: Mutex<State>,
    /// The key of the candidate record (preferred leaders): the lease key and `.candidate`.
    candidate_key: String,
    /// This store's watch over the candidate record.
    candidates: Mutex<Option<candidate::CandidateWatch>>,
    /// Set once `connect` proved that the service enforces conditional writes.
    conditions_proven: std::sync::OnceLock<()>,
}

/// What this store knows of the object.
#[derive(Debug, Default)]
struct State {
    /// The version this store is watching (the last it saw) and when it first saw it.
    watch: Option<Watch>,
    /// What that version holds, when it was read.
    seen: Option<Seen>,
    /// This store has seen the object present: a missing object was deleted (or the store
    /// restarted empty), and its holder may still trust its lease.
    present_seen: bool,
    /// The leases this store holds, by lease id: the ETag of its last write and the token.
    owned: HashMap<String, Owned>,
    /// The highest token this store has seen, a floor for the next one.
    highest_token: u64,
    /// The highest token this store has seen in a record naming a holder (or written itself):
    /// a released record with a greater token belongs to a term it never saw held.
    highest_held: u64,
    /// The longest lease this store has seen recorded.
    longest_lease: Duration,
}

#[derive(Clone, Debug)]
struct Owned {
    etag: String,
    token: u64,
}

/// One read of the object: its ETag, what it holds, and this store's watch over it.
#[derive(Debug)]
struct Look {
    etag: Option<String>,
    seen: Seen,
    watch: Watch,
}

/// The condition of a write.
#[derive(Clone, Debug)]
enum Condition {
    /// `If-None-Match: *`: only if the object is missing.
    Missing,
    /// `If-Match: <etag>`: only if the object is still this version.
    Version(String),
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
}

impl fmt::Debug for S3LeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = match &self.connection {
            Connection::Client(_) => None,
            Connection::Settings { endpoint, .. } => endpoint.as_deref(),
        };
        f.debug_struct("S3LeaseStore")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("endpoint", &endpoint)
            .field("create_bucket_if_not_exists", &self.create_bucket)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl S3LeaseStore {
    pub(crate) fn new(settings: Settings) -> Self {
        let options = &settings.options;
        let candidate_key = format!("{}.candidate", settings.key);
        Self {
            election_name: format!("{}/{}", settings.bucket, settings.key),
            connection: settings.connection,
            client: OnceCell::new(),
            bucket: settings.bucket,
            key: settings.key,
            create_bucket: settings.create_bucket,
            request_timeout: options.operation_timeout(),
            retry_interval: options.retry_interval,
            margin: Margin {
                drift_rate: options.clock_drift_rate,
                slack: options.deadline_slack,
            },
            wire: Arc::new(Wire::default()),
            state: Mutex::new(State::default()),
            candidate_key,
            candidates: Mutex::new(None),
            conditions_proven: std::sync::OnceLock::new(),
        }
    }

    /// The bucket holding the lease object.
    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key of the lease object.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The requests this store has sent so far, by method: what the election costs.
    #[must_use]
    pub fn request_counts(&self) -> RequestCounts {
        self.wire.counts()
    }

    /// The S3 client of this store (built from the AWS configuration at the first call, which
    /// cannot fail: missing credentials show at the first request), for inspection or operator
    /// actions on the lease object. Its requests count in
    /// [`request_counts`](Self::request_counts).
    pub async fn client(&self) -> aws_sdk_s3::Client {
        self.client_ref().await.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every field is replaced in single assignments, so a poisoned lock still holds
        // consistent values.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a successful write of `record` as version `etag`: this store's own write is the
    /// version it watches now, and the lease is this store's unless released.
    fn wrote(&self, lease_id: &str, etag: String, record: Record) {
        {
            let mut state = self.state();
            if record.holder.is_some() {
                // A conditional write of this lease succeeded: no other lease id of this store
                // can hold it any more (one whose term ended by its deadline, unrenewed).
                state.owned.clear();
                state.owned.insert(
                    lease_id.to_owned(),
                    Owned {
                        etag: etag.clone(),
                        token: record.token,
                    },
                );
            } else {
                state.owned.remove(lease_id);
            }
        }
        // A write's reply has no Last-Modified: the next read restarts the watch once more.
        self.observe(Some(Version::new(etag, None)), Seen::Record(record));
    }

    fn forget(&self, lease_id: &str) {
        self.state().owned.remove(lease_id);
    }

    /// The ETag of this store's last write of `request`'s lease with `token`, if any.
    fn owned_etag(&self, request: &LeaseRequest, token: FencingToken) -> Option<String> {
        self.state()
            .owned
            .get(&request.lease_id)
            .filter(|owned| owned.token == token.get())
            .map(|owned| owned.etag.clone())
    }

    /// Writes the record of `request` holding the lease with `token` on `condition`: an
    /// acquisition.
    async fn take(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        condition: Condition,
        token: FencingToken,
    ) -> Result<AcquireOutcome> {
        let record = Record::held(request, token);
        match self.put(budget, &condition, &record).await {
            Ok(etag) => {
                self.wrote(&request.lease_id, etag, record);
                tracing::debug!(
                    election = %self.election_name,
                    instance_id = %request.instance_id,
                    token = %token,
                    "acquired the S3 lease"
                );
                Ok(AcquireOutcome::Acquired(Lease::new(token)))
            }
            Err(f) if f.status() == Some(404) && f.code.as_deref() == Some("NoSuchBucket") => {
                Err(self.no_bucket(Operation::Acquire))
            }
            // Somebody else wrote first (or deleted the object): not ours.
            Err(f) if f.is_conflict() || f.status() == Some(404) => {
                tracing::debug!(status = ?f.status(), "conditional write lost");
                Ok(AcquireOutcome::Held {
                    leader: None,
                    expires_in: None,
                })
            }
            Err(f) => Err(f.into_error(Operation::Acquire, true)),
        }
    }

    /// The next token over a record holding `previous` (`None`: no readable token).
    fn mint(&self, previous: Option<u64>) -> Result<FencingToken> {
        let floor = self.state().highest_token;
        next_token(previous, floor, self.wire.latest_date())
            .map(FencingToken::new)
            .ok_or_else(|| Error::invalid_data(Operation::Acquire, "the fencing token overflowed"))
    }

    /// Writes a placeholder over the missing object (`If-None-Match: *`), with a token above
    /// every token this store has seen and `longest`, the longest lease it knows of. Answers
    /// whether it was written (`false`: something was written first, read it again).
    async fn write_placeholder(&self, budget: &Budget, longest: Duration) -> Result<bool> {
        let record = Record::placeholder(self.mint(None)?, longest);
        match self.put(budget, &Condition::Missing, &record).await {
            Ok(etag) => {
                tracing::info!(
                    election = %self.election_name,
                    "the lease object is missing after it was seen: wrote a placeholder to watch \
                     for a lease"
                );
                // A write's reply has no Last-Modified: the next read restarts the watch.
                self.observe(Some(Version::new(etag, None)), Seen::Record(record));
                Ok(true)
            }
            Err(f) if f.is_conflict() => Ok(false),
            Err(f) if f.status() == Some(404) && f.code.as_deref() == Some("NoSuchBucket") => {
                Err(self.no_bucket(Operation::Acquire))
            }
            // The placeholder grants nothing: an unknown outcome is an ordinary failure.
            Err(f) => Err(Error::backend(Operation::Acquire, true, f.error)),
        }
    }

    fn no_bucket(&self, operation: Operation) -> Error {
        Error::backend(
            operation,
            true,
            S3Error::new(format!(
                "the bucket {} does not exist (and create_bucket_if_not_exists is off)",
                leader_election::quoted(&self.bucket)
            )),
        )
    }

    /// Whether the service's clock has passed the second in which `watch`'s version was first
    /// seen (so that a token minted now is above every token minted before that version was
    /// read); if not, sleeps until it can have (answering `None`: read
    /// again) or, when the budget is too short, answers how long to wait.
    async fn clock_gate(&self, budget: &Budget, watch: &Watch) -> Option<Option<Duration>> {
        if clock_passed(watch.date, self.wire.latest_date()) {
            return Some(None);
        }
        let until = watch.since + DATE_WAIT;
        let now = Instant::now();
        // Room for the read and the write after the sleep.
        let room = (budget.total / 2).min(Duration::from_millis(500));
        if until + room <= budget.end() {
            tokio::time::sleep_until(until.max(now)).await;
            None
        } else {
            Some(Some(
                until
                    .saturating_duration_since(now)
                    .max(Duration::from_millis(10)),
            ))
        }
    }

    /// Renews or releases after a refused write: if the object still shows `request`'s lease
    /// with `token` (an earlier write whose reply was lost), writes `record` on that version.
    /// Answers the new ETag, or `None` when the lease is not this store's any more.
    async fn rewrite_if_still_owned(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        token: FencingToken,
        record: &Record,
        operation: Operation,
    ) -> Result<Option<String>> {
        let look = self.look(budget, operation).await?;
        let owned = matches!(&look.seen, Seen::Record(r) if r.is_owned_by(request) && r.token == token.get());
        let Some(etag) = look.etag.filter(|_| owned) else {
            self.forget(&request.lease_id);
            return Ok(None);
        };
        match self.put(budget, &Condition::Version(etag), record).await {
            Ok(etag) => Ok(Some(etag)),
            Err(f) if f.is_conflict() || f.status() == Some(404) => {
                self.forget(&request.lease_id);
                Ok(None)
            }
            Err(f) => Err(f.into_error(operation, true)),
        }
    }
}

impl LeaseStore for S3LeaseStore {
    fn election_name(&self) -> &str {
        &self.election_name
    }

    /// Builds the client and, once per store, proves that the service enforces conditional
    /// writes (a probe object written with `If-None-Match: *` twice and with a stale
    /// `If-Match`, then deleted).
    ///
    /// # Errors
    /// A retryable error when the proof could not be made (the service unreachable, a missing
    /// bucket); an error that is not retryable, naming the endpoint and what was ignored, when
    /// the service accepted a write whose condition failed.
    async fn connect(&self) -> Result<()> {
        self.client_ref().await;
        if self.conditions_proven.get().is_none() {
            self.prove_conditions().await?;
            let _ = self.conditions_proven.set(());
        }
        Ok(())
    }

    fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
        leader_election::check_metadata_len(metadata, MAX_METADATA_LEN)
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let budget = Budget::new(self.request_timeout);
        for _ in 0..3 {
            let look = self.look(&budget, Operation::Acquire).await?;
            let now = Instant::now();
            let longest = self.state().longest_lease.max(request.ttl);
            let (highest, highest_held, present_seen) = {
                let state = self.state();
                (state.highest_token, state.highest_held, state.present_seen)
            };
            match (&look.seen, look.etag.clone()) {
                (Seen::Record(record), Some(etag)) if record.is_owned_by(request) => {
                    // The owner again (a retry after a lost reply): same token, new metadata.
                    let token = FencingToken::new(record.token);
                    return self
                        .take(&budget, request, Condition::Version(etag), token)
                        .await;
                }
                (Seen::Record(record), Some(etag))
                    if record.holder.is_none()
                        && !record.placeholder
                        && record.token >= highest =>
                {
                    // Released by its holder: free at once. A store that never saw the term
                    // of this token held cannot tell a release from a restored copy of one,
                    // over which another term may have minted a token from this same `Date`
                    // second: it mints from a later second than the one it saw the record in.
                    if record.token > highest_held {
                        match self.clock_gate(&budget, &look.watch).await {
                            Some(None) => {}
                            Some(Some(wait)) => {
                                return Ok(AcquireOutcome::Held {
                                    leader: None,
                                    expires_in: Some(wait),
                                });
                            }
                            None => continue,
                        }
                    }
                    let token = self.mint(Some(record.token))?;
                    return self
                        .take(&budget, request, Condition::Version(etag), token)
                        .await;
                }
                (Seen::Record(record), Some(etag)) => {
                    // Held; a placeholder over a deleted record; or a released record older
                    // than a token this store has seen (a restored backup, not a release): the
                    // last holder may still trust its lease until this version stayed
                    // unchanged for a whole lease.
                    let lease = if record.holder.is_some() {
                        record.lease().max(request.ttl)
                    } else {
                        // A placeholder records the longest lease its writer had seen.
                        record.lease().max(longest)
                    };
                    let remaining = look.watch.remaining(lease, self.margin, now);
                    if !remaining.is_zero() {
                        let wait = remaining.min(self.retry_interval).min(request.ttl);
                        return Ok(if record.holder.is_none() {
                            AcquireOutcome::Withheld {
                                wait,
                                reason: WithholdReason::RecordTouched,
                            }
                        } else {
                            AcquireOutcome::Held {
                                leader: record.leader(),
                                expires_in: Some(wait),
                            }
                        });
                    }
                    // A token from a later `Date` second than the version was first seen in
                    // (after a lease of watching, it is).
                    match self.clock_gate(&budget, &look.watch).await {
                        Some(None) => {}
                        Some(Some(wait)) => {
                            return Ok(AcquireOutcome::Held {
                                leader: record.leader(),
                                expires_in: Some(wait),
                            });
                        }
                        None => continue,
                    }
                    tracing::info!(
                        election = %self.election_name,
                        holder = ?record.holder.as_ref().map(|h| &h.instance_id),
                        placeholder = record.placeholder,
                        "the lease object stayed unchanged for a whole lease; taking it over"
                    );
                    let token = self.mint(Some(record.token))?;
                    return self
                        .take(&budget, request, Condition::Version(etag), token)
                        .await;
                }
                (Seen::Unreadable, Some(etag)) => {
                    // Written by somebody else: held by an unknown holder for a lease.
                    let remaining = look.watch.remaining(longest, self.margin, now);
                    if !remaining.is_zero() {
                        return Ok(AcquireOutcome::Held {
                            leader: Some(LeaderInfo::new(UNKNOWN_HOLDER, None)),
                            expires_in: Some(remaining.min(self.retry_interval).min(request.ttl)),
                        });
                    }
                    match self.clock_gate(&budget, &look.watch).await {
                        Some(None) => {}
                        Some(Some(wait)) => {
                            return Ok(AcquireOutcome::Withheld {
                                wait,
                                reason: WithholdReason::RecordTouched,
                            });
                        }
                        None => continue,
                    }
                    let token = self.mint(None)?;
                    return self
                        .take(&budget, request, Condition::Version(etag), token)
                        .await;
                }
                (Seen::Missing, _) | (_, None) if present_seen => {
                    // Deleted (or the service lost it) after this store saw it: its holder may
                    // still trust it for a lease. A creation with `If-None-Match: *` would
                    // not be tied to the absence watched (the object may have been created and
                    // deleted again since), so this store writes a placeholder instead, and
                    // every contender watches that version for a lease and takes it over with
                    // `If-Match`. A lost race means another placeholder (or record) stands.
                    match self.write_placeholder(&budget, longest).await? {
                        true => {
                            return Ok(AcquireOutcome::Withheld {
                                wait: self.margin.watch_for(longest).min(self.retry_interval),
                                reason: WithholdReason::RecordTouched,
                            });
                        }
                        false => continue,
                    }
                }
                (Seen::Missing, _) | (_, None) => {
                    // Never seen present: a new election, as far as this store can know.
                    match self.clock_gate(&budget, &look.watch).await {
                        Some(None) => {}
                        Some(Some(wait)) => {
                            return Ok(AcquireOutcome::Withheld {
                                wait,
                                reason: WithholdReason::BackendRestarted,
                            });
                        }
                        None => continue,
                    }
                    let token = self.mint(None)?;
                    return self.take(&budget, request, Condition::Missing, token).await;
                }
            }
        }
        Err(Error::backend(
            Operation::Acquire,
            true,
            S3Error::new(
                "the service's clock (Date) did not pass the second in which the lease object \
                 was seen without a token",
            ),
        ))
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let budget = Budget::new(self.request_timeout);
        let record = Record::held(request, lease.token);
        if let Some(etag) = self.owned_etag(request, lease.token) {
            match self.put(&budget, &Condition::Version(etag), &record).await {
                Ok(etag) => {
                    self.wrote(&request.lease_id, etag, record);
                    return Ok(RenewOutcome::Renewed);
                }
                Err(f) if f.is_conflict() || f.status() == Some(404) => {
                    tracing::debug!(status = ?f.status(), token = %lease.token, "renewal refused");
                }
                Err(f) => return Err(f.into_error(Operation::Renew, true)),
            }
        }
        match self
            .rewrite_if_still_owned(&budget, request, lease.token, &record, Operation::Renew)
            .await?
        {
            Some(etag) => {
                self.wrote(&request.lease_id, etag, record);
                Ok(RenewOutcome::Renewed)
            }
            None => Ok(RenewOutcome::Lost),
        }
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let budget = Budget::new(self.request_timeout);
        let record = Record::released(lease.token);
        if let Some(etag) = self.owned_etag(request, lease.token) {
            match self.put(&budget, &Condition::Version(etag), &record).await {
                Ok(etag) => {
                    self.wrote(&request.lease_id, etag, record);
                    return Ok(true);
                }
                Err(f) if f.is_conflict() || f.status() == Some(404) => {}
                Err(f) => return Err(f.into_error(Operation::Release, true)),
            }
        }
        match self
            .rewrite_if_still_owned(&budget, request, lease.token, &record, Operation::Release)
            .await?
        {
            Some(etag) => {
                self.wrote(&request.lease_id, etag, record);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        let budget = Budget::new(self.request_timeout);
        let look = self.look(&budget, Operation::CurrentLeader).await?;
        Ok(match look.seen {
            Seen::Record(record) => record.leader(),
            Seen::Unreadable => Some(LeaderInfo::new(UNKNOWN_HOLDER, None)),
            Seen::Missing => None,
        })
    }

    async fn announce_candidate(
        &self,
        candidate: &leader_election::Candidate,
        ttl: Duration,
    ) -> Result<()> {
        self.announce(candidate, ttl).await
    }

    async fn strongest_candidate(&self) -> Result<Option<leader_election::Candidate>> {
        self.strongest().await
    }
}

/// The holder reported for an object this crate cannot read.
const UNKNOWN_HOLDER: &str = "unknown";
