//! [`BlobLeaseStore`]: the [`LeaseStore`] kept in one Azure blob and its lease.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use azure_core::http::Etag;
use azure_storage_blob::models::{
    AppendBlobClientCreateOptions, BlobClientAcquireLeaseOptions, BlobClientGetPropertiesOptions,
    BlobClientGetPropertiesResultHeaders, BlobClientSetMetadataOptions, LeaseState,
};
use azure_storage_blob::{BlobClient, BlobContainerClient};
use leader_election::{
    AcquireOutcome, Error, FencingToken, LeaderInfo, Lease, LeaseRequest, LeaseStore, Operation,
    RenewOutcome, Result,
};
use sha2::{Digest, Sha256};

use crate::error::{AzureFailure, BlobError};

/// Metadata name of the leader's instance id (percent-encoded where not printable ASCII).
const META_INSTANCE: &str = "leader_instance_id";
/// Metadata name of the fencing token minted by the last acquisition.
const META_TOKEN: &str = "leader_token";
/// Metadata name of a hash of the lease id the token was minted under. A hash rather than the
/// id itself, so that reading the blob does not give away the means to release the lease.
const META_LEASE: &str = "leader_lease_hash";

/// The shortest and longest lease Azure grants, in seconds.
pub(crate) const MIN_LEASE_SECS: u64 = 15;
pub(crate) const MAX_LEASE_SECS: u64 = 60;

/// A [`LeaseStore`] that keeps the election in one Azure blob: leadership is the blob's lease,
/// and the leader's instance id and fencing token are the blob's metadata.
///
/// Build it with [`BlobLeaderElection::builder`](crate::BlobLeaderElection::builder) (its
/// [`build_store`](crate::BlobLeaderElectionBuilder::build_store) gives the store alone). One
/// store holds one HTTP client that all operations reuse.
///
/// # How the operations map to Azure
/// - `try_acquire`: reads the blob's properties (one request, all a follower pays while the
///   lease is held); if the lease is free, acquires it with the proposed lease id taken from
///   the request's `lease_id`, then writes the metadata (instance id, token = previous + 1)
///   under the lease and conditionally on the ETag read before. The container and the blob are
///   created when missing.
/// - `renew`, `release`: Renew Lease and Release Lease with the lease id.
/// - `current_leader`: reads the lease state and the metadata.
///
/// Azure does not tell how long a held lease still lasts, so [`AcquireOutcome::Held`] carries
/// no `expires_in`, and followers poll every `retry_interval`. Azure has no notifications
/// either: [`LeaseStore::release_notifications`] is `None`.
///
/// Tokens are durable in the blob's metadata. Deleting the blob loses that history; the store
/// also remembers the highest token it has seen, so contenders that keep running still mint
/// tokens above it.
///
/// The blob belongs to the election: it stays empty, and its metadata is replaced at every
/// acquisition (`leader_instance_id`, `leader_token`, and `leader_lease_hash`, a hash of the
/// lease id rather than the id itself, so that reading the blob does not allow releasing the
/// lease). While the lease is held but its new holder has not yet written the metadata (a
/// moment, or until the lease expires if the holder crashed in between), the previous holder
/// is reported, or `"unknown"` if there was none.
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
    /// The highest token seen by this store, a floor for the next one.
    highest_token: AtomicU64,
    /// A lease id whose acquisition may have taken effect without the metadata being written
    /// (the reply was lost, or writing failed). Such a lease may be ours even though the
    /// metadata names somebody else, so the next attempt with it acquires first.
    uncertain: Mutex<Option<String>>,
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

/// The blob's lease state and metadata, as read by one Get Blob Properties.
#[derive(Debug)]
struct Snapshot {
    leased: bool,
    etag: Option<Etag>,
    instance_id: Option<String>,
    token: Option<u64>,
    lease_hash: Option<String>,
}

impl Snapshot {
    fn leader(&self) -> Option<LeaderInfo> {
        if !self.leased {
            return None;
        }
        // Leased but not (yet) described: the holder acquired and has not written its
        // metadata, or crashed in between.
        let instance_id = self.instance_id.clone().unwrap_or_else(|| "unknown".into());
        Some(LeaderInfo::new(
            instance_id,
            self.token.map(FencingToken::new),
        ))
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

    /// Sends one request, bounded by the request timeout.
    async fn send<T>(
        &self,
        request: impl Future<Output = azure_core::Result<T>>,
    ) -> std::result::Result<T, AzureFailure> {
        match tokio::time::timeout(self.request_timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(AzureFailure::from_sdk(&err)),
            Err(_) => Err(AzureFailure::timed_out(self.request_timeout)),
        }
    }

    /// Get Blob Properties, optionally under `lease_id` (which fails unless it holds the lease).
    async fn read(
        &self,
        lease_id: Option<&str>,
        operation: Operation,
    ) -> std::result::Result<Snapshot, ReadError> {
        let options = BlobClientGetPropertiesOptions {
            lease_id: lease_id.map(str::to_owned),
            ..Default::default()
        };
        let response = self
            .send(self.blob.get_properties(Some(options)))
            .await
            .map_err(ReadError::Azure)?;
        let malformed = |what: &str| {
            ReadError::Invalid(Error::invalid_data(
                operation,
                format!("unreadable {what} in the lease blob's properties"),
            ))
        };
        let state = response
            .lease_state()
            .map_err(|_| malformed("lease state"))?;
        let etag = response.etag().map_err(|_| malformed("ETag"))?;
        let metadata: HashMap<String, String> = response
            .metadata()
            .map_err(|_| malformed("metadata"))?
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let token = match metadata.get(META_TOKEN) {
            Some(raw) => Some(raw.trim().parse::<u64>().map_err(|_| {
                ReadError::Invalid(Error::invalid_data(
                    operation,
                    format!("metadata `{META_TOKEN}` is not a number"),
                ))
            })?),
            None => None,
        };
        let instance_id = match metadata.get(META_INSTANCE) {
            Some(raw) => Some(percent_decode(raw).ok_or_else(|| {
                ReadError::Invalid(Error::invalid_data(
                    operation,
                    format!("metadata `{META_INSTANCE}` is not valid"),
                ))
            })?),
            None => None,
        };
        if let Some(token) = token {
            self.highest_token.fetch_max(token, Ordering::AcqRel);
        }
        Ok(Snapshot {
            leased: matches!(state, Some(LeaseState::Leased | LeaseState::Breaking)),
            etag,
            instance_id,
            token,
            lease_hash: metadata.get(META_LEASE).cloned(),
        })
    }

    /// Creates whatever of the container and the blob is missing, after a 404. Racing
    /// creators are fine: "already exists" counts as success.
    async fn create_missing(&self, missing: &AzureFailure) -> Result<()> {
        let container_missing = missing.code.as_deref() != Some("BlobNotFound");
        if container_missing && self.create_container {
            match self.send(self.container.create(None)).await {
                Ok(_) => {
                    tracing::info!(container = %self.container_name, "created the container");
                }
                Err(f) if f.status() == Some(409) => {}
                Err(f) => return Err(f.into_error(Operation::Acquire, false)),
            }
        }
        let options = AppendBlobClientCreateOptions {
            if_none_match: Some(Etag::from("*")),
            ..Default::default()
        };
        match self
            .send(self.blob.append_blob_client().create(Some(options)))
            .await
        {
            Ok(_) => {
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
                    "the container `{}` does not exist and create_container_if_not_exists is off",
                    self.container_name
                )),
            )),
            Err(f) => Err(f.into_error(Operation::Acquire, false)),
        }
    }

    /// Acquire Lease with `lease_id`, creating the container and blob first if missing.
    async fn acquire_lease(
        &self,
        seconds: i32,
        lease_id: &str,
    ) -> std::result::Result<(), Result<AzureFailure>> {
        let acquire = || {
            let options = BlobClientAcquireLeaseOptions {
                proposed_lease_id: Some(lease_id.to_owned()),
                ..Default::default()
            };
            self.send(self.blob.acquire_lease(seconds, Some(options)))
        };
        match acquire().await {
            Ok(_) => Ok(()),
            Err(f) if f.status() == Some(404) => {
                self.create_missing(&f).await.map_err(Err)?;
                acquire().await.map(|_| ()).map_err(Ok)
            }
            Err(f) => Err(Ok(f)),
        }
    }

    /// Mints the token of a lease just acquired with `lease_id`: the one already recorded for
    /// it, or the previous token + 1 written under the lease, conditionally on the ETag.
    async fn mint(
        &self,
        request: &LeaseRequest,
        lease_id: &str,
        hash: &str,
        mut snapshot: Option<Snapshot>,
    ) -> Result<FencingToken> {
        let unknown = |f: AzureFailure| Error::outcome_unknown(Operation::Acquire, f.error);
        for _ in 0..3 {
            let current = match snapshot.take() {
                Some(snapshot) => snapshot,
                None => self
                    .read(Some(lease_id), Operation::Acquire)
                    .await
                    .map_err(|e| e.into_error(Operation::Acquire, unknown))?,
            };
            if current.lease_hash.as_deref() == Some(hash) {
                return current.token.map(FencingToken::new).ok_or_else(|| {
                    Error::invalid_data(Operation::Acquire, "lease recorded without a token")
                });
            }
            let floor = self.highest_token.load(Ordering::Acquire);
            let token = current
                .token
                .unwrap_or(0)
                .max(floor)
                .checked_add(1)
                .ok_or_else(|| {
                    Error::invalid_data(Operation::Acquire, "the fencing token overflowed")
                })?;
            let metadata = HashMap::from([
                (
                    META_INSTANCE.to_owned(),
                    percent_encode(&request.instance_id),
                ),
                (META_TOKEN.to_owned(), token.to_string()),
                (META_LEASE.to_owned(), hash.to_owned()),
            ]);
            let options = BlobClientSetMetadataOptions {
                lease_id: Some(lease_id.to_owned()),
                if_match: current.etag.clone(),
                ..Default::default()
            };
            match self
                .send(self.blob.set_metadata(&metadata, Some(options)))
                .await
            {
                Ok(_) => {
                    self.highest_token.fetch_max(token, Ordering::AcqRel);
                    return Ok(FencingToken::new(token));
                }
                // The blob changed since it was read (a lease operation, or an earlier try of
                // this same acquisition): read again and recompute.
                Err(f) if f.is(412, "ConditionNotMet") => continue,
                Err(f) => return Err(unknown(f)),
            }
        }
        Err(Error::outcome_unknown(
            Operation::Acquire,
            BlobError::new("the lease blob kept changing while its token was written"),
        ))
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every value behind this lock is replaced in one assignment, so a poisoned lock still
    // holds a consistent value.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A failed read: Azure's answer, or properties this crate cannot interpret.
#[derive(Debug)]
enum ReadError {
    Azure(AzureFailure),
    Invalid(Error),
}

impl ReadError {
    fn into_error(self, _operation: Operation, azure: impl FnOnce(AzureFailure) -> Error) -> Error {
        match self {
            Self::Azure(f) => azure(f),
            Self::Invalid(err) => err,
        }
    }
}

impl LeaseStore for BlobLeaseStore {
    fn election_name(&self) -> &str {
        &self.election_name
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        let seconds = lease_seconds(request.ttl, Operation::Acquire)?;
        let lease_id = azure_lease_id(&request.lease_id, Operation::Acquire)?;
        let hash = lease_hash(&request.lease_id);
        let mut snapshot = None;
        if !self.is_uncertain(&request.lease_id) {
            match self.read(None, Operation::Acquire).await {
                Ok(current) if current.leased && current.lease_hash.as_deref() != Some(&hash) => {
                    return Ok(AcquireOutcome::Held {
                        leader: current.leader(),
                        expires_in: None,
                    });
                }
                Ok(current) => snapshot = Some(current),
                Err(ReadError::Azure(f)) if f.status() == Some(404) => {}
                Err(ReadError::Azure(f)) => return Err(f.into_error(Operation::Acquire, false)),
                Err(ReadError::Invalid(err)) => return Err(err),
            }
        }
        self.set_uncertain(&request.lease_id);
        match self.acquire_lease(seconds, &lease_id).await {
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
        let token = self.mint(request, &lease_id, &hash, snapshot).await?;
        self.clear_uncertain(&request.lease_id);
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
        let lease_id = azure_lease_id(&request.lease_id, Operation::Renew)?;
        if self.highest_token.load(Ordering::Acquire) > lease.token.get() {
            // A later term has begun: this lease cannot be current any more.
            return Ok(RenewOutcome::Lost);
        }
        match self.send(self.blob.renew_lease(lease_id, None)).await {
            Ok(_) => Ok(RenewOutcome::Renewed),
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
        let lease_id = azure_lease_id(&request.lease_id, Operation::Release)?;
        match self.send(self.blob.release_lease(lease_id, None)).await {
            Ok(_) => {
                tracing::debug!(token = %lease.token, "released the blob lease");
                Ok(true)
            }
            Err(f) if matches!(f.status(), Some(404 | 409 | 412)) => Ok(false),
            Err(f) => Err(f.into_error(Operation::Release, true)),
        }
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        match self.read(None, Operation::CurrentLeader).await {
            Ok(snapshot) => Ok(snapshot.leader()),
            Err(ReadError::Azure(f)) if f.status() == Some(404) => Ok(None),
            Err(ReadError::Azure(f)) => Err(f.into_error(Operation::CurrentLeader, false)),
            Err(ReadError::Invalid(err)) => Err(err),
        }
    }
}

/// The Azure lease duration for `ttl`: whole seconds, rounded up so that Azure never frees the
/// lease before the core's deadline, and within Azure's 15–60 s.
fn lease_seconds(ttl: Duration, operation: Operation) -> Result<i32> {
    let mut seconds = ttl.as_secs();
    if ttl.subsec_nanos() > 0 {
        seconds += 1;
    }
    if !(MIN_LEASE_SECS..=MAX_LEASE_SECS).contains(&seconds) {
        return Err(Error::backend(
            operation,
            false,
            BlobError::new(format!(
                "Azure leases last 15 to 60 s; a ttl of {ttl:?} cannot be granted"
            )),
        ));
    }
    Ok(i32::try_from(seconds).unwrap_or(i32::MAX))
}

/// The request's lease id (32 hex digits) in the UUID form Azure requires.
fn azure_lease_id(lease_id: &str, operation: Operation) -> Result<String> {
    if lease_id.len() != 32 || !lease_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::backend(
            operation,
            false,
            BlobError::new("the lease id must be 32 hexadecimal digits"),
        ));
    }
    let id = lease_id.to_ascii_lowercase();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    ))
}

/// The first 128 bits of SHA-256 of the lease id, hex.
fn lease_hash(lease_id: &str) -> String {
    let digest = Sha256::digest(lease_id.to_ascii_lowercase().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes everything but printable ASCII (and `%`), so that any instance id fits in
/// a metadata header value.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_become_uuids() {
        let id = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(
            azure_lease_id(id, Operation::Acquire).unwrap(),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        assert!(azure_lease_id("xyz", Operation::Acquire).is_err());
        assert!(azure_lease_id(&"g".repeat(32), Operation::Acquire).is_err());
    }

    #[test]
    fn lease_seconds_round_up_and_stay_in_range() {
        let s = |ms| lease_seconds(Duration::from_millis(ms), Operation::Acquire);
        assert_eq!(s(15_000).unwrap(), 15);
        assert_eq!(s(14_500).unwrap(), 15);
        assert_eq!(s(59_001).unwrap(), 60);
        assert!(s(14_000).is_err());
        assert!(s(60_001).is_err());
    }

    #[test]
    fn instance_ids_round_trip_through_metadata() {
        for id in ["web-1", "a b", "naïve-é", "100%", "x\u{7f}y"] {
            let encoded = percent_encode(id);
            assert!(
                encoded.bytes().all(|b| (0x21..=0x7e).contains(&b)),
                "{encoded}"
            );
            assert_eq!(percent_decode(&encoded).as_deref(), Some(id));
        }
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    fn lease_hash_is_stable_and_not_the_id() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(lease_hash(id), lease_hash(&id.to_ascii_uppercase()));
        assert_eq!(lease_hash(id).len(), 32);
        assert_ne!(lease_hash(id), id);
    }
}
