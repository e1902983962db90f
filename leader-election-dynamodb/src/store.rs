//! [`DynamoDbLeaseStore`]: the [`LeaseStore`] kept in one DynamoDB item, written only with
//! condition expressions.

mod candidate;
mod election_record;
mod io;
mod probe;
mod state;
mod writes;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leader_election::store::{
    AcquireOutcome, Capabilities, Lease, LeaseRequest, RecordVersion, RenewOutcome, WithholdReason,
};
use leader_election::{
    Error, FencingToken, LeaderElectionOptions, LeaderInfo, LeaseStore, Operation, Result,
};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::clock::{DATE_WAIT, Margin, Version, Watch, clock_passed, next_token};
use crate::error::DynamoError;
use crate::record::{Record, Seen};
use crate::wire::{RequestCounts, Wire};
pub use election_record::MAX_RECORD_LEN;
use state::{Budget, Condition, Look, State};

/// The longest leader metadata a store publishes, in bytes: 64 KiB, as for the memory, Redis,
/// PostgreSQL and S3 backends. It is stored in the item as a binary attribute, read by
/// followers with every poll (a strongly consistent read costs one read unit per 4 KiB of
/// item).
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// How the store reaches DynamoDB.
pub(crate) enum Connection {
    /// A client built by the caller.
    Client(aws_sdk_dynamodb::Client),
    /// A client to build from the AWS configuration and these settings, at the first
    /// operation.
    Settings {
        endpoint: Option<String>,
        region: Option<String>,
        credentials: Option<(String, String)>,
    },
}

/// Everything a store is made from, checked by the builder.
pub(crate) struct Settings {
    pub(crate) connection: Connection,
    pub(crate) table: String,
    pub(crate) key: String,
    pub(crate) create_table: bool,
    pub(crate) options: LeaderElectionOptions,
}

/// A [`LeaseStore`] that keeps the election in one DynamoDB item, written only with condition
/// expressions (`attribute_not_exists(pk)` to create it, `#v = :expected` on its version
/// attribute for everything else).
///
/// Build it with [`DynamoDbLeaderElection::builder`](crate::DynamoDbLeaderElection::builder)
/// (its [`build_store`](leader_election::ElectionBuilder::build_store) gives the store alone).
/// One store holds one client that all operations reuse.
///
/// # How the operations map to DynamoDB
/// - `connect`: once per store, proves that the service enforces condition expressions: a
///   probe item next to the lease item written with `attribute_not_exists(pk)` twice, with
///   `#v = :v` on its version and on a stale one, then deleted. A service that accepts a write
///   whose condition failed is refused with an error that is not retryable (DESIGN.md,
///   rule 12).
/// - `try_acquire`: one strongly consistent `GetItem` (all a follower pays per poll). A missing
///   item is created with `attribute_not_exists(pk)` by a store that never saw it; a store that
///   saw it present writes a placeholder record instead (`attribute_not_exists(pk)`), watched
///   like a held record. A released record is taken at once with `#v = :v` on its version,
///   unless its token is below the highest this store has seen (a restored backup: watched
///   like a held record); a held one (or a placeholder) only after this store has seen its
///   version unchanged for the holder's lease (or its own ttl if longer) plus the drift margin,
///   on its own monotonic clock from when the response showing it arrived, and then with a
///   condition on that version. The owner acquiring again (a retry after a lost reply)
///   rewrites its record on its version, keeping its token.
/// - `renew`: rewrites the record with `#v = :v` on the version of this store's last write of
///   the lease. A refused renewal reads the item: if it still shows this lease (an earlier
///   write whose reply was lost), the renewal is made on that version; otherwise the lease is
///   lost.
/// - `release`: rewrites the record as released (no holder, same token) on its version, so
///   that the next poll of any contender takes it over at once.
/// - `current_leader`: one `GetItem`.
/// - `announce_candidate`, `strongest_candidate` (preferred leaders): the sibling item
///   `<key>.candidate`, read with `GetItem` and written on its version.
/// - `read_record`, `write_record` (the [election record](leader_election::store::Record), up
///   to [`MAX_RECORD_LEN`] bytes): a `GetItem` of the sibling item `<key>.record`
///   ([`record_key`](Self::record_key)), and a `PutItem` of it with `#v = :expected` on its
///   version, or `attribute_not_exists(pk)` when no record is expected. That item is never
///   part of the lease: no term, release or deletion of the lease item touches it.
///
/// DynamoDB tells neither when a lease expires nor when it is released (its TTL deletes
/// expired items lazily, and is no lease), so [`AcquireOutcome::Held`] carries the time left
/// of this store's watch, at most `retry_interval`, and
/// [`LeaseStore::release_notifications`] is `None`.
///
/// # Tokens
/// A token is `max(previous + 1, service time in µs, highest token seen + 1)`, the service time
/// taken from the `Date` header of DynamoDB's responses (never the local clock). When the item
/// holds no readable token (missing, or overwritten by something else), the acquisition first
/// waits until a `Date` of a later second than the response that showed it so arrived (about
/// a second at most, slept within `operation_timeout`, or answered as
/// [`AcquireOutcome::Withheld`] when that is shorter), so that a token stays above every token
/// of a deleted item. The same wait comes before taking over a released record whose term
/// this store never saw held (a brand-new process, which cannot tell a release from a restored
/// copy of one), and before taking over a version watched for a lease (where it has long
/// passed). This assumes that the service's clock does not step back.
pub struct DynamoDbLeaseStore {
    connection: Connection,
    client: OnceCell<aws_sdk_dynamodb::Client>,
    table: String,
    key: String,
    /// `table/key`, for logs and metrics.
    election_name: String,
    create_table: bool,
    request_timeout: Duration,
    retry_interval: Duration,
    margin: Margin,
    wire: Arc<Wire>,
    state: Mutex<State>,
    /// The key of the candidate item (preferred leaders): the lease key and `.candidate`.
    candidate_key: String,
    /// This store's watch over the candidate item.
    candidates: Mutex<Option<candidate::CandidateWatch>>,
    /// The key of the election record's item: the lease key and `.record`.
    record_key: String,
    /// Set once `connect` proved that the service enforces condition expressions.
    conditions_proven: std::sync::OnceLock<()>,
}

impl fmt::Debug for DynamoDbLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoint = match &self.connection {
            Connection::Client(_) => None,
            Connection::Settings { endpoint, .. } => endpoint.as_deref(),
        };
        f.debug_struct("DynamoDbLeaseStore")
            .field("table", &self.table)
            .field("key", &self.key)
            .field("endpoint", &endpoint)
            .field("create_table_if_not_exists", &self.create_table)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl DynamoDbLeaseStore {
    pub(crate) fn new(settings: Settings) -> Self {
        let options = &settings.options;
        let candidate_key = format!("{}{}", settings.key, candidate::CANDIDATE_SUFFIX);
        let record_key = format!("{}{}", settings.key, election_record::RECORD_SUFFIX);
        Self {
            election_name: format!("{}/{}", settings.table, settings.key),
            connection: settings.connection,
            client: OnceCell::new(),
            table: settings.table,
            key: settings.key,
            create_table: settings.create_table,
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
            record_key,
            conditions_proven: std::sync::OnceLock::new(),
        }
    }

    /// The table holding the lease item.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The key of the lease item (its partition key `pk`).
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The key of the item holding the election's
    /// [record](leader_election::LeaseStore::read_record): the lease item's key and
    /// `.record`, in the same table. It lives beside the lease item and outlives every term
    /// and release (and a deletion of the lease item).
    #[must_use]
    pub fn record_key(&self) -> &str {
        &self.record_key
    }

    /// The key of the item holding the candidate record of preferred leaders: the lease
    /// item's key and `.candidate`.
    #[must_use]
    pub fn candidate_key(&self) -> &str {
        &self.candidate_key
    }

    /// The requests this store has sent so far, by operation: what the election costs.
    #[must_use]
    pub fn request_counts(&self) -> RequestCounts {
        self.wire.counts()
    }

    /// The DynamoDB client of this store (built from the AWS configuration at the first call,
    /// which cannot fail: missing credentials show at the first request), for inspection or
    /// operator actions on the lease item. Its requests count in
    /// [`request_counts`](Self::request_counts).
    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        self.client_ref().await.clone()
    }
}

impl LeaseStore for DynamoDbLeaseStore {
    fn election_name(&self) -> &str {
        &self.election_name
    }

    /// Builds the client and, once per store, proves that the service enforces condition
    /// expressions (a probe item written with `attribute_not_exists(pk)` twice and with a
    /// stale `#v = :v`, then deleted); creates the table first when it is missing and
    /// `create_table_if_not_exists` is on.
    ///
    /// # Errors
    /// A retryable error when the proof could not be made (the service unreachable, a missing
    /// table); an error that is not retryable, naming the endpoint and what was ignored, when
    /// the service accepted a write whose condition failed.
    async fn connect(&self) -> Result<()> {
        self.client_ref().await;
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
            match (&look.seen, look.condition.clone()) {
                (Seen::Record(record), Some(condition)) if record.is_owned_by(request) => {
                    // The owner again (a retry after a lost reply): same token, new metadata.
                    let token = FencingToken::new(record.token);
                    return self.take(&budget, request, condition, token).await;
                }
                (Seen::Record(record), Some(condition))
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
                    return self.take(&budget, request, condition, token).await;
                }
                (Seen::Record(record), Some(condition)) => {
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
                        "the lease item stayed unchanged for a whole lease; taking it over"
                    );
                    let token = self.mint(Some(record.token))?;
                    return self.take(&budget, request, condition, token).await;
                }
                (Seen::Unreadable(_), Some(condition)) => {
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
                    return self.take(&budget, request, condition, token).await;
                }
                (Seen::Missing, _) | (_, None) if present_seen => {
                    // Deleted (or the service lost it) after this store saw it: its holder may
                    // still trust it for a lease. A creation with `attribute_not_exists(pk)`
                    // would not be tied to the absence watched (the item may have been created
                    // and deleted again since), so this store writes a placeholder instead, and
                    // every contender watches that version for a lease and takes it over on
                    // it. A lost race means another placeholder (or record) stands.
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
            DynamoError::new(
                "the service's clock (Date) did not pass the second in which the lease item \
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
        if let Some(version) = self.owned_version(request, lease.token) {
            match self
                .put(&budget, &Condition::Version(version), &record)
                .await
            {
                Ok(version) => {
                    self.wrote(&request.lease_id, version, record);
                    return Ok(RenewOutcome::Renewed);
                }
                Err(f) if f.is_conflict() => {
                    tracing::debug!(code = ?f.code, token = %lease.token, "renewal refused");
                }
                Err(f) => return Err(f.into_error(Operation::Renew, true)),
            }
        }
        match self
            .rewrite_if_still_owned(&budget, request, lease.token, &record, Operation::Renew)
            .await?
        {
            Some(version) => {
                self.wrote(&request.lease_id, version, record);
                Ok(RenewOutcome::Renewed)
            }
            None => Ok(RenewOutcome::Lost),
        }
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let budget = Budget::new(self.request_timeout);
        let record = Record::released(lease.token);
        if let Some(version) = self.owned_version(request, lease.token) {
            match self
                .put(&budget, &Condition::Version(version), &record)
                .await
            {
                Ok(version) => {
                    self.wrote(&request.lease_id, version, record);
                    return Ok(true);
                }
                Err(f) if f.is_conflict() => {}
                Err(f) => return Err(f.into_error(Operation::Release, true)),
            }
        }
        match self
            .rewrite_if_still_owned(&budget, request, lease.token, &record, Operation::Release)
            .await?
        {
            Some(version) => {
                self.wrote(&request.lease_id, version, record);
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
            Seen::Unreadable(_) => Some(LeaderInfo::new(UNKNOWN_HOLDER, None)),
            Seen::Missing => None,
        })
    }

    async fn announce_candidate(
        &self,
        candidate: &leader_election::priority::Candidate,
        ttl: Duration,
    ) -> Result<()> {
        self.announce(candidate, ttl).await
    }

    async fn strongest_candidate(&self) -> Result<Option<leader_election::priority::Candidate>> {
        self.strongest().await
    }

    /// One strongly consistent `GetItem` of [`record_key`](DynamoDbLeaseStore::record_key):
    /// its data and version; `None` when the item is missing.
    ///
    /// # Errors
    /// A retryable error when DynamoDB cannot be reached or answers with a failure; an error
    /// that is not retryable for a refusal (`AccessDeniedException`: `dynamodb:GetItem` on the
    /// table is missing), and [`Error::InvalidData`] for an item that is not a record of this
    /// crate (written by hand: it names the attribute) or longer than [`MAX_RECORD_LEN`].
    async fn read_record(&self) -> Result<Option<leader_election::store::Record>> {
        self.get_record().await
    }

    /// One `PutItem` of [`record_key`](DynamoDbLeaseStore::record_key) with `#v = :expected`
    /// on its version, or `attribute_not_exists(pk)` when `expected` is `None`; `Ok(None)`
    /// when the record was not at `expected` (`ConditionalCheckFailedException`). The first
    /// write of a store makes the proof of [`connect`](LeaseStore::connect) if it was not made
    /// yet.
    ///
    /// # Errors
    /// Refused before anything is sent when `data` is longer than [`MAX_RECORD_LEN`]; the
    /// errors of [`connect`](LeaseStore::connect); an unknown outcome when the request may have
    /// been served without its answer arriving; otherwise as for
    /// [`read_record`](LeaseStore::read_record).
    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        self.put_record(expected, data).await
    }
}

/// The holder reported for an item this crate cannot read.
const UNKNOWN_HOLDER: &str = "unknown";
