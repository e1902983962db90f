//! An in-memory backend: the reference [`LeaseStore`], for tests and single-process use.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use crate::error::Result;
use crate::priority::{Candidate, replaces};
use crate::store::{
    AcquireOutcome, Capabilities, LeaderInfo, Lease, LeaseRequest, LeaseStore, Record,
    RecordVersion, ReleaseNotifier, ReleaseReceiver, RenewOutcome, check_record_len,
};
use crate::token::FencingToken;

/// A lease store kept in this process's memory, with expiry on tokio's clock (so it follows
/// `tokio::time::pause` in tests), fencing tokens and release notifications.
///
/// Clones share one election: hand a clone to each contender. It offers exactly the guarantees
/// of the other backends within one process, which makes it the reference implementation of the
/// conformance suite and a way to test leader-only code without a server.
///
/// ```
/// use leader_election::{LeaderElection, LeaderElectionOptions, MemoryLeaseStore};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryLeaseStore::new();
/// let a = LeaderElection::new(store.clone(), LeaderElectionOptions::default())?;
/// let b = LeaderElection::new(store, LeaderElectionOptions::default())?;
/// a.start().await?;
/// b.start().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryLeaseStore {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    releases: ReleaseNotifier,
}

#[derive(Debug, Default)]
struct State {
    holder: Option<Holder>,
    last_token: u64,
    /// The announced candidate and when its record expires.
    candidate: Option<(Candidate, Instant)>,
    /// The election's record and its version (a counter never reused, even after
    /// [`MemoryLeaseStore::clear_record`]).
    record: Option<(u64, Vec<u8>)>,
    record_versions: u64,
    /// The lease record was removed by [`MemoryLeaseStore::clear`] and nobody acquired since:
    /// a contender that saw it held finds it vanished.
    vanished: bool,
}

#[derive(Debug, Clone)]
struct Holder {
    instance_id: String,
    lease_id: String,
    token: FencingToken,
    expires_at: Instant,
    metadata: Option<Vec<u8>>,
}

impl Holder {
    fn owned_by(&self, request: &LeaseRequest) -> bool {
        self.instance_id == request.instance_id && self.lease_id == request.lease_id
    }

    fn info(&self) -> LeaderInfo {
        LeaderInfo::new(self.instance_id.clone(), Some(self.token))
            .with_metadata(self.metadata.clone())
    }
}

impl MemoryLeaseStore {
    /// The longest leader metadata this store publishes, in bytes:
    /// [`store::MAX_METADATA_LEN`](super::MAX_METADATA_LEN), as for the other backends, so that
    /// code tested here fits there.
    pub const MAX_METADATA_LEN: usize = super::MAX_METADATA_LEN;

    /// The longest election record this store keeps, in bytes:
    /// [`store::MAX_RECORD_LEN`](super::MAX_RECORD_LEN).
    pub const MAX_RECORD_LEN: usize = super::MAX_RECORD_LEN;

    /// A store for a new election, with nobody leading.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-written: every update
        // is a single assignment. So a poisoned lock is safe to keep using.
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if state.holder.as_ref().is_some_and(|h| h.expires_at <= now) {
            state.holder = None;
        }
        if state.candidate.as_ref().is_some_and(|(_, at)| *at <= now) {
            state.candidate = None;
        }
        state
    }

    /// Removes the lease whoever holds it, as an operator deleting the key would. The holder
    /// finds out at its next renewal. No release notification is sent. A contender that saw
    /// the lease held finds it vanished (see [`LeaseRequest::expects_record`]) until somebody
    /// acquires it again.
    pub fn clear(&self) {
        let mut state = self.state();
        state.holder = None;
        state.vanished = true;
    }

    /// Removes the election's record, as an operator deleting it would.
    pub fn clear_record(&self) {
        self.state().record = None;
    }

    /// The highest token minted so far (0 before the first acquisition).
    #[must_use]
    pub fn last_token(&self) -> FencingToken {
        FencingToken::new(self.state().last_token)
    }
}

/// When a lease of `ttl` from `now` expires; a ttl too long to represent never expires.
fn expiry(now: Instant, ttl: std::time::Duration) -> Instant {
    now.checked_add(ttl)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 24 * 3600))
}

impl LeaseStore for MemoryLeaseStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_release_notifications()
            .with_candidates()
            .with_metadata(Self::MAX_METADATA_LEN)
            .with_records(Self::MAX_RECORD_LEN)
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let mut state = self.state();
        let now = Instant::now();
        let vanished = state.vanished;
        match &mut state.holder {
            Some(holder) if holder.owned_by(request) => {
                holder.expires_at = expiry(now, request.ttl);
                holder.metadata.clone_from(&request.metadata);
                Ok(AcquireOutcome::Acquired(Lease::new(holder.token)))
            }
            Some(holder) => Ok(AcquireOutcome::Held {
                leader: Some(holder.info()),
                expires_in: Some(holder.expires_at.saturating_duration_since(now)),
            }),
            None if vanished && request.expects_record => Ok(AcquireOutcome::Withheld {
                wait: request.ttl,
                reason: crate::store::WithholdReason::RecordVanished,
            }),
            None => {
                // A token that cannot grow any more is never handed out again.
                let Some(next) = state.last_token.checked_add(1) else {
                    return Err(crate::Error::invalid_data(
                        crate::Operation::Acquire,
                        "the fencing token counter is exhausted",
                    ));
                };
                state.last_token = next;
                state.vanished = false;
                let token = FencingToken::new(next);
                state.holder = Some(Holder {
                    instance_id: request.instance_id.clone(),
                    lease_id: request.lease_id.clone(),
                    token,
                    expires_at: expiry(now, request.ttl),
                    metadata: request.metadata.clone(),
                });
                Ok(AcquireOutcome::Acquired(Lease::new(token)))
            }
        }
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let mut state = self.state();
        match &mut state.holder {
            Some(holder) if holder.owned_by(request) && holder.token == lease.token => {
                holder.expires_at = Instant::now() + request.ttl;
                holder.metadata.clone_from(&request.metadata);
                Ok(RenewOutcome::Renewed)
            }
            _ => Ok(RenewOutcome::Lost),
        }
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let released = {
            let mut state = self.state();
            let owned = state
                .holder
                .as_ref()
                .is_some_and(|h| h.owned_by(request) && h.token == lease.token);
            if owned {
                state.holder = None;
            }
            owned
        };
        if released {
            self.shared.releases.notify();
        }
        Ok(released)
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        Ok(self.state().holder.as_ref().map(Holder::info))
    }

    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        Some(self.shared.releases.subscribe())
    }

    async fn announce_candidate(
        &self,
        candidate: &Candidate,
        ttl: std::time::Duration,
    ) -> Result<()> {
        let mut state = self.state();
        let replace = state
            .candidate
            .as_ref()
            .is_none_or(|(recorded, _)| replaces(candidate, recorded));
        if replace {
            state.candidate = Some((candidate.clone(), expiry(Instant::now(), ttl)));
        }
        Ok(())
    }

    async fn strongest_candidate(&self) -> Result<Option<Candidate>> {
        Ok(self.state().candidate.as_ref().map(|(c, _)| c.clone()))
    }

    async fn read_record(&self) -> Result<Option<Record>> {
        Ok(self.state().record.as_ref().map(|(version, data)| {
            Record::new(RecordVersion::new(version.to_string()), data.clone())
        }))
    }

    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        check_record_len(data, Self::MAX_RECORD_LEN)?;
        let mut state = self.state();
        let current = state.record.as_ref().map(|(v, _)| v.to_string());
        if current.as_deref() != expected.map(RecordVersion::as_str) {
            return Ok(None);
        }
        state.record_versions += 1;
        let version = state.record_versions;
        state.record = Some((version, data.to_vec()));
        Ok(Some(RecordVersion::new(version.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_exhausted_token_counter_refuses_instead_of_repeating() {
        let store = MemoryLeaseStore::new();
        store.state().last_token = u64::MAX;
        let request = LeaseRequest::new("a", std::time::Duration::from_secs(1));
        let err = store.try_acquire(&request).await.unwrap_err();
        assert!(err.to_string().contains("exhausted"), "{err}");
    }

    #[tokio::test]
    async fn a_huge_ttl_does_not_overflow() {
        let store = MemoryLeaseStore::new();
        let mut request = LeaseRequest::new("a", std::time::Duration::from_secs(1));
        request.ttl = std::time::Duration::MAX;
        assert!(matches!(
            store.try_acquire(&request).await.unwrap(),
            AcquireOutcome::Acquired(_)
        ));
    }
}
