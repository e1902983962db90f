//! [`BlobLeaseStore`]: the [`LeaseStore`] kept in one Azure blob and its lease.

mod candidate;
mod election_record;
mod mint;
mod publish;
mod snapshot;
mod touched;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::http::{Etag, Response};
use azure_storage_blob::models::{
    AppendBlobClientCreateOptions, BlobClientAcquireLeaseOptions, BlobClientSetMetadataOptions,
};
use azure_storage_blob::{BlobClient, BlobContainerClient};
use leader_election::backend::quoted;
use leader_election::store::{
    AcquireOutcome, Capabilities, Lease, LeaseRequest, Record, RecordVersion, RenewOutcome,
    WithholdReason,
};
use leader_election::{Error, FencingToken, LeaderInfo, LeaseStore, Operation, Result};
use tokio::time::Instant;

use crate::clock::{Budget, Gate, Observation, date_of, gate, next_token, wait_within};
use crate::encoding::{azure_lease_id, lease_hash, lease_seconds, metadata_base64, percent_encode};
use crate::error::{AzureFailure, BlobError};
pub use election_record::MAX_RECORD_LEN;
use mint::Clock;
use snapshot::{ReadError, Snapshot};
use touched::{Marker, Touch};

/// Metadata name of the leader's instance id (percent-encoded where not printable ASCII).
const META_INSTANCE: &str = "leader_instance_id";
/// Metadata name of the fencing token minted by the last acquisition.
const META_TOKEN: &str = "leader_token";
/// Metadata name of a hash of the lease id the token was minted under. A hash rather than the
/// id itself, so that reading the blob does not give away the means to release the lease.
const META_LEASE: &str = "leader_lease_hash";
/// Metadata name of the lease duration (seconds) of the term the token was minted for.
const META_LEASE_SECS: &str = "leader_lease_secs";

/// Metadata name of the leader metadata, base64 (standard alphabet, padded); absent when the
/// holder publishes none.
const META_METADATA: &str = "leader_metadata";

/// The longest leader metadata a store publishes, in bytes: 4 KiB. Azure allows 8 KiB for all of
/// a blob's metadata; in base64 this takes 5,464 of them, leaving room for the instance id
/// (up to 768 bytes percent-encoded), the token and the other names.
pub const MAX_METADATA_LEN: usize = 4 * 1024;

/// The shortest and longest lease Azure grants, in seconds.
pub(crate) const MIN_LEASE_SECS: u64 = 15;
pub(crate) const MAX_LEASE_SECS: u64 = 60;

/// A [`LeaseStore`] that keeps the election in one Azure blob: leadership is the blob's lease,
/// and the leader's instance id and fencing token are the blob's metadata.
///
/// Build it with [`BlobLeaderElection::builder`](crate::BlobLeaderElection::builder) (its
/// [`build_store`](leader_election::ElectionBuilder::build_store) gives the store alone). One
/// store holds one HTTP client that all operations reuse.
///
/// # How the operations map to Azure
/// - `try_acquire`: reads the blob's properties (one request, all a follower pays while the
///   lease is held); if the lease is free, acquires it with the proposed lease id taken from
///   the request's `lease_id`, then writes the metadata (instance id, token) under the lease
///   and conditionally on the ETag read before. The container and the blob are created when
///   missing. All of it shares one `operation_timeout`: each request gets what is left, and a
///   write is not started without time for its answer.
///   A lease broken by an operator, or a blob deleted or emptied where this store saw the
///   lease held, is withheld ([`AcquireOutcome::Withheld`], `RecordTouched`) until the
///   service's clock shows one lease after the touch was first seen, recorded in the blob's
///   metadata so that every contender, new processes too, honours it (see the crate README,
///   "What an operator may do").
/// - `renew`, `release`: Renew Lease and Release Lease with the lease id. A renewal that
///   carries other leader metadata than this store last wrote under that lease id then writes
///   the blob's metadata again under the lease id (Set Blob Metadata), with the new value.
/// - `current_leader`: reads the lease state and the metadata.
/// - `read_record`, `write_record` (the [election record](leader_election::store::Record),
///   up to [`MAX_RECORD_LEN`] bytes): Get Blob of the sibling block blob `<blob>.record`
///   ([`record_blob_name`](Self::record_blob_name)), and Put Blob of it with `If-Match` on the
///   version expected (its ETag) or `If-None-Match: *` when no record is expected. That blob
///   is never part of the lease: no term, release, break or deletion of the lease blob
///   touches it.
///
/// # Leader metadata
/// Stored in the blob's metadata as `leader_metadata`, base64, at most [`MAX_METADATA_LEN`]
/// (4 KiB) before encoding. It is written in the same Set Blob Metadata as the holder's instance
/// id and token: at the acquisition (conditionally on the ETag read before, under the new
/// lease), and by a renewal that changes it (under the lease id, so only the holder's write
/// succeeds). "Atomic" means exactly that here: the metadata never shows with another holder's
/// instance id or token, because all of them are one write that only the lease holder can
/// make; the lease's renewal and the metadata write are two requests, and a renewal whose
/// metadata write fails reports an error, so the leader tries again as for any failed renewal.
///
/// Azure does not tell how long a held lease still lasts, so [`AcquireOutcome::Held`] carries
/// no `expires_in`, and followers poll every `retry_interval`. Azure has no notifications
/// either: [`LeaseStore::release_notifications`] is `None`.
///
/// # Tokens
/// A token is `max(stored + 1, service time in µs)`, the service time taken from the `Date`
/// header of Azure's responses (never the local clock), so that a token stays above every
/// earlier one even when the blob and its counter are gone. When the blob holds no readable
/// counter (deleted, new, or its metadata overwritten), the acquisition first waits until the
/// service's clock has passed, by a whole second, the response that showed it so (about a
/// second at most): `Date` has one-second resolution. This assumes that the service's clock
/// does not step back.
///
/// The blob belongs to the election: it stays empty, and its metadata is replaced at every
/// acquisition (`leader_instance_id`, `leader_token`, `leader_lease_secs`, and
/// `leader_lease_hash`, a hash of the lease id rather than the id itself, so that reading the
/// blob does not allow releasing the lease); a touch is recorded as `leader_touched_at` and
/// `leader_touched_lease` until then. While the lease is held but its new holder has not yet
/// written the metadata (a moment, or until the lease expires if the holder crashed in
/// between), the previous holder is reported, or `"unknown"` if there was none.
pub struct BlobLeaseStore {
    container: BlobContainerClient,
    blob: BlobClient,
    container_name: String,
    blob_name: String,
    /// `container/blob`, for logs and metrics.
    election_name: String,
    /// The service host, for `Debug` and logs (never the URL, whose query may hold a SAS).
    host: String,
    create_container: bool,
    request_timeout: Duration,
    /// The highest token seen by this store, a floor for the next one (never the only one:
    /// tokens come from the blob and the service's clock).
    highest_token: AtomicU64,
    /// A lease id whose acquisition may have taken effect without the metadata being written
    /// (the reply was lost, or writing failed). Such a lease may be ours even though the
    /// metadata names somebody else, so the next attempt with it acquires first.
    uncertain: Mutex<Option<String>>,
    /// The first response that showed the current blob version without a counter: a token
    /// over that version waits for the service's clock to pass it (see [`crate::clock`]).
    observed: Mutex<Option<Observation>>,
    /// This store saw the lease held (by anybody) and has not seen it free and untouched
    /// since: a blob that is then missing or without a token was touched (see
    /// [`touched`]).
    held_seen: AtomicBool,
    /// The longest lease (seconds) this store saw recorded, a floor for the touched wait.
    longest_seen: AtomicU64,
    /// The first read that showed the current break (lease state `breaking`): the blob
    /// version and its `Date`. A touch of that version dates from then (see [`touched`]).
    breaking: Mutex<Option<(Etag, u64)>>,
    /// The lease id under which this store last wrote the blob's metadata, with the leader
    /// metadata (base64) it wrote: a renewal carrying other metadata writes it again.
    published: Mutex<Option<(String, Option<String>)>>,
}

impl fmt::Debug for BlobLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobLeaseStore")
            .field("host", &self.host)
            .field("container", &self.container_name)
            .field("blob", &self.blob_name)
            .field("create_container_if_not_exists", &self.create_container)
            .field("request_timeout", &self.request_timeout)
            .finish_non_exhaustive()
    }
}

impl BlobLeaseStore {
    pub(crate) fn new(
        container: BlobContainerClient,
        container_name: String,
        blob_name: String,
        host: String,
        create_container: bool,
        request_timeout: Duration,
    ) -> Self {
        let blob = container.blob_client(&blob_name);
        Self {
            election_name: format!("{container_name}/{blob_name}"),
            container,
            blob,
            container_name,
            blob_name,
            host,
            create_container,
            request_timeout,
            highest_token: AtomicU64::new(0),
            uncertain: Mutex::new(None),
            observed: Mutex::new(None),
            held_seen: AtomicBool::new(false),
            longest_seen: AtomicU64::new(0),
            breaking: Mutex::new(None),
            published: Mutex::new(None),
        }
    }

    /// The container holding the lease blob.
    #[must_use]
    pub fn container_name(&self) -> &str {
        &self.container_name
    }

    /// The name of the lease blob.
    #[must_use]
    pub fn blob_name(&self) -> &str {
        &self.blob_name
    }

    /// The client of the lease blob, for inspection or operator actions (such as breaking the
    /// lease by hand).
    #[must_use]
    pub fn blob_client(&self) -> &BlobClient {
        &self.blob
    }

    /// The client of the container holding the lease blob.
    #[must_use]
    pub fn container_client(&self) -> &BlobContainerClient {
        &self.container
    }

    /// Sends one request with what is left of `budget`, recording the service's `Date`.
    async fn send<T, F>(
        &self,
        budget: &Budget,
        request: impl Future<Output = azure_core::Result<Response<T, F>>>,
    ) -> std::result::Result<Response<T, F>, AzureFailure> {
        let left = budget.left();
        if left.is_zero() {
            return Err(AzureFailure::out_of_time(budget.total()));
        }
        let started = Instant::now();
        match tokio::time::timeout(left, request).await {
            Ok(Ok(response)) => {
                budget.saw(response.headers(), started.elapsed());
                Ok(response)
            }
            Ok(Err(err)) => {
                if let ErrorKind::HttpResponse {
                    raw_response: Some(raw),
                    ..
                } = err.kind()
                {
                    budget.saw(raw.headers(), started.elapsed());
                }
                Err(AzureFailure::from_sdk(&err))
            }
            Err(_) => Err(AzureFailure::timed_out(budget.total())),
        }
    }

    /// Creates whatever of the container and the blob is missing, after a 404. Racing
    /// creators are fine: "already exists" counts as success.
    async fn create_missing(
        &self,
        budget: &Budget,
        missing: &AzureFailure,
        marker: Option<Marker>,
    ) -> Result<()> {
        let container_missing = missing.code.as_deref() != Some("BlobNotFound");
        if container_missing && self.create_container {
            match self.send(budget, self.container.create(None)).await {
                Ok(_) => {
                    tracing::info!(container = %self.container_name, "created the container");
                }
                Err(f) if f.status() == Some(409) => {}
                Err(f) => return Err(f.into_error(Operation::Acquire, false)),
            }
        }
        let options = AppendBlobClientCreateOptions {
            if_none_match: Some(Etag::from("*")),
            metadata: marker.map(|marker| {
                let mut metadata = HashMap::new();
                marker.write(&mut metadata);
                metadata
            }),
            ..Default::default()
        };
        match self
            .send(budget, self.blob.append_blob_client().create(Some(options)))
            .await
        {
            Ok(created) => {
                // A new blob holds no counter: the first response showing it so is this one.
                let etag = created
                    .headers()
                    .get_optional_str(&azure_core::http::headers::ETAG);
                if let (Some(etag), Some(date)) = (etag, date_of(created.headers())) {
                    *lock(&self.observed) =
                        Some(Observation::new(Etag::from(etag), date, Instant::now()));
                }
                tracing::info!(
                    container = %self.container_name,
                    blob = %self.blob_name,
                    "created the lease blob"
                );
                Ok(())
            }
            Err(f) if matches!(f.status(), Some(409 | 412)) => Ok(()),
            Err(f) if f.is(404, "ContainerNotFound") => Err(Error::backend(
                Operation::Acquire,
                false,
                BlobError::new(format!(
                    "the container {} does not exist and create_container_if_not_exists is off",
                    quoted(&self.container_name)
                )),
            )),
            Err(f) => Err(f.into_error(Operation::Acquire, false)),
        }
    }

    /// Acquire Lease with `lease_id`, creating the container and blob first if missing.
    async fn acquire_lease(
        &self,
        budget: &Budget,
        seconds: i32,
        lease_id: &str,
    ) -> std::result::Result<(), Result<AzureFailure>> {
        let acquire = || {
            let options = BlobClientAcquireLeaseOptions {
                proposed_lease_id: Some(lease_id.to_owned()),
                ..Default::default()
            };
            self.send(budget, self.blob.acquire_lease(seconds, Some(options)))
        };
        match acquire().await {
            Ok(_) => Ok(()),
            Err(f) if f.status() == Some(404) => {
                let marker = self.vanished(budget, seconds);
                self.create_missing(budget, &f, marker).await.map_err(Err)?;
                if marker.is_some() {
                    // Gone while its lease was held: withheld from the next read on.
                    return Err(Ok(f));
                }
                if !budget.room_for_write() {
                    return Err(Err(out_of_time(budget, "the lease could be requested")));
                }
                acquire().await.map(|_| ()).map_err(Ok)
            }
            Err(f) => Err(Ok(f)),
        }
    }

    fn is_uncertain(&self, lease_id: &str) -> bool {
        lock(&self.uncertain).as_deref() == Some(lease_id)
    }

    fn set_uncertain(&self, lease_id: &str) {
        *lock(&self.uncertain) = Some(lease_id.to_owned());
    }

    fn clear_uncertain(&self, lease_id: &str) {
        let mut uncertain = lock(&self.uncertain);
        if uncertain.as_deref() == Some(lease_id) {
            *uncertain = None;
        }
    }
}

/// The clean error of an acquisition that stops before a write it has no time for.
fn out_of_time(budget: &Budget, before: &str) -> Error {
    Error::backend(
        Operation::Acquire,
        true,
        BlobError::new(format!(
            "the operation_timeout of {:?} ran out before {before}; nothing was changed",
            budget.total()
        )),
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every value behind this lock is replaced in one assignment, so a poisoned lock still
    // holds a consistent value.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LeaseStore for BlobLeaseStore {
    fn election_name(&self) -> &str {
        &self.election_name
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
        let seconds = lease_seconds(request.ttl, Operation::Acquire)?;
        let lease_id = azure_lease_id(&request.lease_id, Operation::Acquire)?;
        let hash = lease_hash(&request.lease_id);
        let snapshot;
        // Reading first is all a follower pays. After a lost reply the lease may be ours
        // without the metadata saying so: a lease held under another hash is then asked for,
        // and Azure answers whose it is.
        let uncertain = self.is_uncertain(&request.lease_id);
        loop {
            match self.read(&budget, None, Operation::Acquire).await {
                Ok(current) if current.leased => {
                    self.saw_held(&current);
                    if uncertain || current.lease_hash.as_deref() == Some(&hash) {
                        snapshot = Some(current);
                        break;
                    }
                    return Ok(AcquireOutcome::Held {
                        leader: current.leader(),
                        expires_in: None,
                    });
                }
                Ok(current) => {
                    match self.touched(&budget, &current, seconds).await? {
                        Touch::Proceed => {}
                        Touch::ReadAgain => continue,
                        Touch::Withhold(wait) => {
                            return Ok(AcquireOutcome::Withheld {
                                wait,
                                reason: WithholdReason::RecordTouched,
                            });
                        }
                    }
                    if current.token.is_some() {
                        snapshot = Some(current);
                        break;
                    }
                    // No counter to go on: wait for the service's clock before taking the
                    // lease, so that running out of time leaves nothing half done.
                    match self.clock(&budget, &current).await {
                        Clock::Ready => {
                            snapshot = Some(current);
                            break;
                        }
                        Clock::Waited => {}
                        Clock::NoTime => {
                            return Err(out_of_time(
                                &budget,
                                "the service's clock (Date) passed the second in which the \
                                 blob was seen without a token",
                            ));
                        }
                    }
                }
                Err(ReadError::Azure(f)) if f.status() == Some(404) => {
                    let marker = self.vanished(&budget, seconds);
                    self.create_missing(&budget, &f, marker).await?;
                }
                Err(ReadError::Azure(f)) => return Err(f.into_error(Operation::Acquire, false)),
                Err(ReadError::Invalid(err)) => return Err(err),
            }
        }
        if !budget.room_for_write() {
            return Err(out_of_time(&budget, "the lease could be requested"));
        }
        self.set_uncertain(&request.lease_id);
        match self.acquire_lease(&budget, seconds, &lease_id).await {
            Ok(()) => {}
            Err(Ok(f)) if f.status() == Some(409) => {
                // Held by someone else (LeaseAlreadyPresent), or breaking.
                self.clear_uncertain(&request.lease_id);
                tracing::debug!(code = ?f.code, "lease held by another contender");
                return Ok(AcquireOutcome::Held {
                    leader: snapshot.as_ref().and_then(Snapshot::leader),
                    expires_in: None,
                });
            }
            Err(Ok(f)) => {
                if f.status().is_some_and(|s| (400..500).contains(&s)) {
                    self.clear_uncertain(&request.lease_id);
                }
                return Err(f.into_error(Operation::Acquire, true));
            }
            Err(Err(err)) => return Err(err),
        }
        let token = self
            .mint(&budget, request, &lease_id, &hash, seconds, snapshot)
            .await?;
        self.clear_uncertain(&request.lease_id);
        self.held_seen.store(true, Ordering::Release);
        tracing::debug!(
            container = %self.container_name,
            blob = %self.blob_name,
            instance_id = %request.instance_id,
            token = %token,
            "acquired the blob lease"
        );
        Ok(AcquireOutcome::Acquired(Lease::new(token)))
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let budget = Budget::new(self.request_timeout);
        let lease_id = azure_lease_id(&request.lease_id, Operation::Renew)?;
        if self.highest_token.load(Ordering::Acquire) > lease.token.get() {
            // A later term has begun: this lease cannot be current any more.
            return Ok(RenewOutcome::Lost);
        }
        match self
            .send(&budget, self.blob.renew_lease(lease_id.clone(), None))
            .await
        {
            Ok(_) => {
                self.held_seen.store(true, Ordering::Release);
                self.publish_on_renewal(&budget, request, lease, &lease_id)
                    .await
            }
            // Deleted under this lease: the blob is created again carrying the touch, for
            // followers that never saw the lease held (best effort: they may have been first).
            Err(f) if f.is(404, "BlobNotFound") => {
                let seconds = lease_seconds(request.ttl, Operation::Renew)?;
                if let Some(marker) = self.vanished(&budget, seconds) {
                    let _ = self.create_missing(&budget, &f, Some(marker)).await;
                }
                Ok(RenewOutcome::Lost)
            }
            // Not found (blob deleted), conflict (another lease, none, or broken), precondition
            // failed (lease lost): this lease is gone.
            Err(f) if matches!(f.status(), Some(404 | 409 | 412)) => {
                tracing::debug!(code = ?f.code, token = %lease.token, "renewal refused");
                Ok(RenewOutcome::Lost)
            }
            Err(f) => Err(f.into_error(Operation::Renew, true)),
        }
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let budget = Budget::new(self.request_timeout);
        let lease_id = azure_lease_id(&request.lease_id, Operation::Release)?;
        match self
            .send(&budget, self.blob.release_lease(lease_id, None))
            .await
        {
            Ok(_) => {
                // Released by its holder: the next contender may take it at once.
                self.held_seen.store(false, Ordering::Release);
                tracing::debug!(token = %lease.token, "released the blob lease");
                Ok(true)
            }
            Err(f) if matches!(f.status(), Some(404 | 409 | 412)) => Ok(false),
            Err(f) => Err(f.into_error(Operation::Release, true)),
        }
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        let budget = Budget::new(self.request_timeout);
        match self.read(&budget, None, Operation::CurrentLeader).await {
            Ok(snapshot) => Ok(snapshot.leader()),
            Err(ReadError::Azure(f)) if f.status() == Some(404) => Ok(None),
            Err(ReadError::Azure(f)) => Err(f.into_error(Operation::CurrentLeader, false)),
            Err(ReadError::Invalid(err)) => Err(err),
        }
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

    /// One Get Blob of [`record_blob_name`](BlobLeaseStore::record_blob_name): its bytes and
    /// ETag; `None` when the blob (or the container) is missing.
    ///
    /// # Errors
    /// A retryable error when Azure cannot be reached or answers with a failure; an error that
    /// is not retryable for a refusal (403: reading the record blob is not allowed), and
    /// [`Error::InvalidData`] for a blob without an ETag or longer than [`MAX_RECORD_LEN`]
    /// (written by hand).
    async fn read_record(&self) -> Result<Option<Record>> {
        self.get_record().await
    }

    /// One Put Blob of [`record_blob_name`](BlobLeaseStore::record_blob_name) with
    /// `If-Match: <expected>`, or `If-None-Match: *` when `expected` is `None` (the container
    /// created first when it is missing and may be); `Ok(None)` when the record was not at
    /// `expected` (412, 409 for a creation that found the blob, or a 404 for a record deleted
    /// meanwhile).
    ///
    /// # Errors
    /// Refused before anything is sent when `data` is longer than [`MAX_RECORD_LEN`] (or the
    /// blob name leaves no room for `.record` within Azure's 1024 characters); an unknown
    /// outcome when the request may have been served without its answer arriving; an error
    /// that is not retryable when the container is missing and may not be created, or when
    /// the record blob is leased (by an operator: this crate never leases it); otherwise as
    /// for [`read_record`](LeaseStore::read_record).
    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        self.put_record(expected, data).await
    }
}
