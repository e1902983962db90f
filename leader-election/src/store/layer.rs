//! One way to wrap a [`LeaseStore`], in the tower style: [`Forward`] forwards every method to
//! the store it wraps, through a small set of [`StoreHooks`], so that a wrapper that counts,
//! delays, drops or rewrites calls writes only its hooks, and a new `LeaseStore` method is
//! forwarded in exactly one place (the `impl LeaseStore for Forward` here).
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use leader_election::store::{Forward, StoreHooks};
//! use leader_election::{MemoryLeaseStore, Operation, Result};
//!
//! /// Counts every call that reaches the backend.
//! #[derive(Debug, Default)]
//! struct Count(AtomicU64);
//!
//! impl StoreHooks for Count {
//!     fn started(&self, _operation: Operation) {
//!         self.0.fetch_add(1, Ordering::Relaxed);
//!     }
//! }
//!
//! let store = Forward::with_hooks(MemoryLeaseStore::new(), Count::default());
//! # let _ = store;
//! ```
//!
//! [`BoxLeaseStore`](crate::BoxLeaseStore) is the one other forwarder: it erases the store's
//! type behind a dyn-compatible twin of the trait, which a generic wrapper cannot do.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Operation, Result};
use crate::priority::Candidate;
use crate::store::{
    AcquireOutcome, Capabilities, LeaderInfo, Lease, LeaseRequest, LeaseStore, Record,
    RecordVersion, ReleaseReceiver, RenewOutcome,
};

/// What a [`Forward`] does around the calls it forwards. Every hook defaults to forwarding
/// unchanged: implement only those the wrapper needs.
pub trait StoreHooks: Send + Sync + 'static {
    /// Sees every asynchronous call as it starts, before [`around`](Self::around): count it,
    /// note when it was sent. Default: nothing.
    fn started(&self, operation: Operation) {
        let _ = operation;
    }

    /// Runs every asynchronous call (`call` is the inner store's future for `operation`):
    /// count it, delay it, fail it or never answer. Default: `call` itself.
    ///
    /// # Cancel safety
    /// The returned future is dropped like the store's own (see [`LeaseStore`]): at any await
    /// point, when the core's `operation_timeout` elapses.
    fn around<'a, T: Send + 'a>(
        &'a self,
        operation: Operation,
        call: impl Future<Output = Result<T>> + Send + 'a,
    ) -> impl Future<Output = Result<T>> + Send + 'a {
        let _ = operation;
        call
    }

    /// Sees, and may change, the answer to [`LeaseStore::try_acquire`]; `sent` is when the
    /// call started (before [`around`](Self::around)). Default: unchanged.
    fn acquired(&self, sent: Instant, outcome: Result<AcquireOutcome>) -> Result<AcquireOutcome> {
        let _ = sent;
        outcome
    }

    /// Sees, and may change, the answer to [`LeaseStore::renew`]; `sent` is when the call
    /// started (before [`around`](Self::around)). Default: unchanged.
    fn renewed(&self, sent: Instant, outcome: Result<RenewOutcome>) -> Result<RenewOutcome> {
        let _ = sent;
        outcome
    }

    /// Sees, and may change, the inner store's [`LeaseStore::capabilities`]: a wrapper that
    /// takes a capability away (or, in a test, misdeclares one) says so here. Default:
    /// unchanged.
    fn capabilities(&self, inner: Capabilities) -> Capabilities {
        inner
    }

    /// Sees, and may replace, the inner store's [`LeaseStore::release_notifications`].
    /// Default: unchanged.
    fn release_notifications(&self, inner: Option<ReleaseReceiver>) -> Option<ReleaseReceiver> {
        inner
    }
}

/// No hooks: a [`Forward`] with `()` forwards everything unchanged.
impl StoreHooks for () {}

/// A [`LeaseStore`] that forwards every method to `inner` through `hooks`; the one place a
/// `LeaseStore` method is forwarded (see the [module](self)).
#[derive(Clone, Debug, Default)]
pub struct Forward<S, H> {
    inner: S,
    hooks: H,
}

impl<S, H> Forward<S, H> {
    /// Wraps `inner`, calling it through `hooks`.
    pub const fn with_hooks(inner: S, hooks: H) -> Self {
        Self { inner, hooks }
    }

    /// The wrapped store.
    pub const fn inner(&self) -> &S {
        &self.inner
    }

    /// The hooks.
    pub const fn hooks(&self) -> &H {
        &self.hooks
    }

    /// The wrapped store and the hooks.
    pub fn into_parts(self) -> (S, H) {
        (self.inner, self.hooks)
    }
}

impl<S, H: StoreHooks> Forward<S, H> {
    /// One asynchronous call of the inner store, through the hooks.
    fn call<'a, T: Send + 'a>(
        &'a self,
        operation: Operation,
        call: impl Future<Output = Result<T>> + Send + 'a,
    ) -> impl Future<Output = Result<T>> + Send + 'a {
        self.hooks.started(operation);
        self.hooks.around(operation, call)
    }
}

impl<S: LeaseStore, H: StoreHooks> LeaseStore for Forward<S, H> {
    fn election_name(&self) -> &str {
        self.inner.election_name()
    }

    fn capabilities(&self) -> Capabilities {
        self.hooks.capabilities(self.inner.capabilities())
    }

    fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
        self.inner.check_metadata(metadata)
    }

    async fn connect(&self) -> Result<()> {
        self.call(Operation::Connect, self.inner.connect()).await
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        let sent = Instant::now();
        let outcome = self
            .call(Operation::Acquire, self.inner.try_acquire(request))
            .await;
        self.hooks.acquired(sent, outcome)
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        let sent = Instant::now();
        let outcome = self
            .call(Operation::Renew, self.inner.renew(request, lease))
            .await;
        self.hooks.renewed(sent, outcome)
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        self.call(Operation::Release, self.inner.release(request, lease))
            .await
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        self.call(Operation::CurrentLeader, self.inner.current_leader())
            .await
    }

    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        self.hooks
            .release_notifications(self.inner.release_notifications())
    }

    async fn announce_candidate(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        self.call(
            Operation::AnnounceCandidate,
            self.inner.announce_candidate(candidate, ttl),
        )
        .await
    }

    async fn strongest_candidate(&self) -> Result<Option<Candidate>> {
        self.call(
            Operation::StrongestCandidate,
            self.inner.strongest_candidate(),
        )
        .await
    }

    async fn read_record(&self) -> Result<Option<Record>> {
        self.call(Operation::ReadRecord, self.inner.read_record())
            .await
    }

    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        self.call(
            Operation::WriteRecord,
            self.inner.write_record(expected, data),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::store::ReleaseNotifier;
    use crate::token::FencingToken;

    /// A store whose every answer differs from the trait's default, so that a method the
    /// wrapper failed to forward answers the default and is caught.
    #[derive(Default)]
    struct Probe {
        notifier: ReleaseNotifier,
        announced: Mutex<Option<Candidate>>,
    }

    impl LeaseStore for Probe {
        fn election_name(&self) -> &str {
            "probe"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities::none()
                .with_release_notifications()
                .with_candidates()
                .with_metadata(4)
        }
        /// Stricter than the declared limit, so that a wrapper answering with the trait's
        /// default (derived from the capabilities) instead of forwarding shows.
        fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
            crate::store::check_metadata_len(metadata, 3)
        }
        async fn connect(&self) -> Result<()> {
            Err(crate::Error::backend(Operation::Connect, true, "probe"))
        }
        async fn try_acquire(&self, _: &LeaseRequest) -> Result<AcquireOutcome> {
            Ok(AcquireOutcome::Acquired(Lease::new(FencingToken::new(7))))
        }
        async fn renew(&self, _: &LeaseRequest, _: &Lease) -> Result<RenewOutcome> {
            Ok(RenewOutcome::Lost)
        }
        async fn release(&self, _: &LeaseRequest, _: &Lease) -> Result<bool> {
            self.notifier.notify();
            Ok(true)
        }
        async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
            Ok(Some(LeaderInfo::new("probe-leader", None)))
        }
        fn release_notifications(&self) -> Option<ReleaseReceiver> {
            Some(self.notifier.subscribe())
        }
        async fn announce_candidate(&self, candidate: &Candidate, _: Duration) -> Result<()> {
            *self.announced.lock().unwrap() = Some(candidate.clone());
            Ok(())
        }
        async fn strongest_candidate(&self) -> Result<Option<Candidate>> {
            Ok(self.announced.lock().unwrap().clone())
        }
    }

    /// Records the operations it sees.
    #[derive(Default)]
    struct Seen(Mutex<Vec<Operation>>);

    impl StoreHooks for Seen {
        fn started(&self, operation: Operation) {
            self.0.lock().unwrap().push(operation);
        }
    }

    async fn forwards_every_method(store: &impl LeaseStore) {
        let request = LeaseRequest::new("a", Duration::from_secs(1));
        let lease = Lease::new(FencingToken::new(7));
        assert_eq!(store.election_name(), "probe");
        assert_eq!(store.capabilities(), Probe::default().capabilities());
        store.check_metadata(b"123").unwrap();
        assert!(matches!(
            store.check_metadata(b"1234"),
            Err(crate::Error::MetadataTooLarge { limit: 3, .. })
        ));
        assert!(store.connect().await.is_err());
        assert_eq!(
            store.try_acquire(&request).await.unwrap(),
            AcquireOutcome::Acquired(lease.clone())
        );
        assert_eq!(
            store.renew(&request, &lease).await.unwrap(),
            RenewOutcome::Lost
        );
        let mut notices = store
            .release_notifications()
            .expect("release notifications");
        assert!(store.release(&request, &lease).await.unwrap());
        tokio::time::timeout(Duration::from_secs(1), notices.released())
            .await
            .expect("a release notice");
        assert_eq!(
            store.current_leader().await.unwrap().unwrap().instance_id,
            "probe-leader"
        );
        let candidate = Candidate::new("b", 5);
        store
            .announce_candidate(&candidate, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(store.strongest_candidate().await.unwrap(), Some(candidate));
    }

    #[tokio::test(start_paused = true)]
    async fn a_forward_forwards_every_method_through_its_hooks() {
        let store = Forward::with_hooks(Probe::default(), Seen::default());
        forwards_every_method(&store).await;
        assert_eq!(
            *store.hooks().0.lock().unwrap(),
            [
                Operation::Connect,
                Operation::Acquire,
                Operation::Renew,
                Operation::Release,
                Operation::CurrentLeader,
                Operation::AnnounceCandidate,
                Operation::StrongestCandidate,
            ]
        );
        forwards_every_method(&Forward::with_hooks(Probe::default(), ())).await;
    }

    #[tokio::test(start_paused = true)]
    async fn arcs_and_boxes_forward_every_method() {
        forwards_every_method(&std::sync::Arc::new(Probe::default())).await;
        forwards_every_method(&Box::new(Probe::default())).await;
        forwards_every_method(&crate::testing::FaultyStore::new(Probe::default())).await;
        forwards_every_method(&crate::BoxLeaseStore::new(Probe::default())).await;
    }
}
