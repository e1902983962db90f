//! [`BoxLeaseStore`]: any [`LeaseStore`] behind one type, for choosing the backend at run time.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::priority::Candidate;
use crate::store::{
    AcquireOutcome, Capabilities, LeaderInfo, Lease, LeaseRequest, LeaseStore, Record,
    RecordVersion, ReleaseReceiver, RenewOutcome,
};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The dyn-compatible twin of [`LeaseStore`], implemented for every store.
trait DynLeaseStore: Send + Sync + 'static {
    fn election_name(&self) -> &str;
    fn capabilities(&self) -> Capabilities;
    fn check_metadata(&self, metadata: &[u8]) -> Result<()>;
    fn connect(&self) -> BoxFuture<'_, Result<()>>;
    fn try_acquire<'a>(
        &'a self,
        request: &'a LeaseRequest,
    ) -> BoxFuture<'a, Result<AcquireOutcome>>;
    fn renew<'a>(
        &'a self,
        request: &'a LeaseRequest,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<RenewOutcome>>;
    fn release<'a>(
        &'a self,
        request: &'a LeaseRequest,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<bool>>;
    fn current_leader(&self) -> BoxFuture<'_, Result<Option<LeaderInfo>>>;
    fn release_notifications(&self) -> Option<ReleaseReceiver>;
    fn announce_candidate<'a>(
        &'a self,
        candidate: &'a Candidate,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>>;
    fn strongest_candidate(&self) -> BoxFuture<'_, Result<Option<Candidate>>>;
    fn read_record(&self) -> BoxFuture<'_, Result<Option<Record>>>;
    fn write_record<'a>(
        &'a self,
        expected: Option<&'a RecordVersion>,
        data: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<RecordVersion>>>;
}

impl<S: LeaseStore> DynLeaseStore for S {
    fn election_name(&self) -> &str {
        LeaseStore::election_name(self)
    }
    fn capabilities(&self) -> Capabilities {
        LeaseStore::capabilities(self)
    }
    fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
        LeaseStore::check_metadata(self, metadata)
    }
    fn connect(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(LeaseStore::connect(self))
    }
    fn try_acquire<'a>(
        &'a self,
        request: &'a LeaseRequest,
    ) -> BoxFuture<'a, Result<AcquireOutcome>> {
        Box::pin(LeaseStore::try_acquire(self, request))
    }
    fn renew<'a>(
        &'a self,
        request: &'a LeaseRequest,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<RenewOutcome>> {
        Box::pin(LeaseStore::renew(self, request, lease))
    }
    fn release<'a>(
        &'a self,
        request: &'a LeaseRequest,
        lease: &'a Lease,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(LeaseStore::release(self, request, lease))
    }
    fn current_leader(&self) -> BoxFuture<'_, Result<Option<LeaderInfo>>> {
        Box::pin(LeaseStore::current_leader(self))
    }
    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        LeaseStore::release_notifications(self)
    }
    fn announce_candidate<'a>(
        &'a self,
        candidate: &'a Candidate,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(LeaseStore::announce_candidate(self, candidate, ttl))
    }
    fn strongest_candidate(&self) -> BoxFuture<'_, Result<Option<Candidate>>> {
        Box::pin(LeaseStore::strongest_candidate(self))
    }
    fn read_record(&self) -> BoxFuture<'_, Result<Option<Record>>> {
        Box::pin(LeaseStore::read_record(self))
    }
    fn write_record<'a>(
        &'a self,
        expected: Option<&'a RecordVersion>,
        data: &'a [u8],
    ) -> BoxFuture<'a, Result<Option<RecordVersion>>> {
        Box::pin(LeaseStore::write_record(self, expected, data))
    }
}

/// Any [`LeaseStore`] behind one type, so that the backend can be chosen at run time (from
/// configuration, say) without an enum of every backend. Cheap to clone: clones share the
/// store. Costs one allocation per backend call.
///
/// ```
/// use leader_election::{BoxLeaseStore, LeaderElection, LeaderElectionOptions, MemoryLeaseStore};
///
/// fn store_from_config(backend: &str) -> BoxLeaseStore {
///     match backend {
///         // "redis" => BoxLeaseStore::new(redis_store), and so on.
///         _ => BoxLeaseStore::new(MemoryLeaseStore::new()),
///     }
/// }
///
/// let election = LeaderElection::new(store_from_config("memory"), LeaderElectionOptions::default())?;
/// # Ok::<(), leader_election::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct BoxLeaseStore {
    inner: Arc<dyn DynLeaseStore>,
}

impl BoxLeaseStore {
    /// Boxes `store`.
    pub fn new(store: impl LeaseStore) -> Self {
        Self {
            inner: Arc::new(store),
        }
    }
}

impl fmt::Debug for BoxLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The boxed store may hold secrets and need not be Debug: show only the election.
        f.debug_struct("BoxLeaseStore")
            .field("election", &self.inner.election_name())
            .finish_non_exhaustive()
    }
}

impl LeaseStore for BoxLeaseStore {
    fn election_name(&self) -> &str {
        self.inner.election_name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
        self.inner.check_metadata(metadata)
    }
    async fn connect(&self) -> Result<()> {
        self.inner.connect().await
    }
    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        self.inner.try_acquire(request).await
    }
    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        self.inner.renew(request, lease).await
    }
    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        self.inner.release(request, lease).await
    }
    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        self.inner.current_leader().await
    }
    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        self.inner.release_notifications()
    }
    async fn announce_candidate(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        self.inner.announce_candidate(candidate, ttl).await
    }
    async fn strongest_candidate(&self) -> Result<Option<Candidate>> {
        self.inner.strongest_candidate().await
    }
    async fn read_record(&self) -> Result<Option<Record>> {
        self.inner.read_record().await
    }
    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        self.inner.write_record(expected, data).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{ConformanceOptions, run_conformance};
    use crate::{LeaderElection, LeaderElectionOptions, MemoryLeaseStore, Role};

    #[tokio::test(start_paused = true)]
    async fn a_boxed_store_passes_the_conformance_suite() {
        let options = ConformanceOptions::new(Duration::from_secs(5), Duration::from_millis(500));
        run_conformance(options, || async {
            BoxLeaseStore::new(MemoryLeaseStore::new())
        })
        .await;
    }

    #[tokio::test(start_paused = true)]
    async fn elections_on_boxed_stores_of_different_types_share_one_type() {
        let memory = MemoryLeaseStore::new();
        let stores = [
            BoxLeaseStore::new(memory.clone()),
            BoxLeaseStore::new(crate::testing::FaultyStore::new(memory)),
        ];
        let elections: Vec<LeaderElection<BoxLeaseStore>> = stores
            .into_iter()
            .map(|store| LeaderElection::new(store, LeaderElectionOptions::default()).unwrap())
            .collect();
        for election in &elections {
            election.start().await.unwrap();
        }
        let mut state = elections[0].watch();
        state.wait_for(|s| s.role == Role::Leader).await.unwrap();
        let leader = elections[1].current_leader().await.unwrap().unwrap();
        assert_eq!(leader.instance_id, elections[0].instance_id());
        assert!(format!("{:?}", elections[1].store()).contains("leader-election"));
    }
}
