//! The in-memory store is the reference implementation of the conformance suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use leader_election::store::{
    AcquireOutcome, Capabilities, Forward, Lease, LeaseRequest, ReleaseReceiver, RenewOutcome,
    StoreHooks,
};
use leader_election::testing::{
    ConformanceOptions, FaultyStore, expiry_frees_the_lease,
    no_takeover_before_a_renewed_lease_expires, release_wakes_waiters, run_conformance,
    tokens_increase_across_rebuilt_stores,
};
use leader_election::{FencingToken, LeaderInfo, LeaseStore, MemoryLeaseStore};

#[tokio::test(start_paused = true)]
async fn memory_store_passes_the_conformance_suite() {
    let options = ConformanceOptions::new(Duration::from_secs(5), Duration::from_millis(500));
    run_conformance(options, || async { MemoryLeaseStore::new() }).await;
}

#[tokio::test(start_paused = true)]
async fn a_fault_free_wrapper_passes_too() {
    let options = ConformanceOptions::new(Duration::from_secs(5), Duration::from_millis(500));
    run_conformance(options, || async {
        FaultyStore::new(MemoryLeaseStore::new())
    })
    .await;
}

/// A store that breaks one rule: anyone may renew.
#[derive(Clone, Default)]
struct AnyoneRenews(MemoryLeaseStore);

impl leader_election::LeaseStore for AnyoneRenews {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
    async fn try_acquire(
        &self,
        r: &leader_election::store::LeaseRequest,
    ) -> leader_election::Result<leader_election::store::AcquireOutcome> {
        self.0.try_acquire(r).await
    }
    async fn renew(
        &self,
        _: &leader_election::store::LeaseRequest,
        _: &leader_election::store::Lease,
    ) -> leader_election::Result<leader_election::store::RenewOutcome> {
        Ok(leader_election::store::RenewOutcome::Renewed)
    }
    async fn release(
        &self,
        r: &leader_election::store::LeaseRequest,
        l: &leader_election::store::Lease,
    ) -> leader_election::Result<bool> {
        self.0.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<leader_election::LeaderInfo>> {
        self.0.current_leader().await
    }
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "[only_owner_renews] a non-owner renewed")]
async fn the_suite_catches_a_store_that_lets_anyone_renew() {
    let options = ConformanceOptions::new(Duration::from_secs(5), Duration::from_millis(500));
    run_conformance(options, || async { AnyoneRenews::default() }).await;
}

/// A store that breaks another rule: tokens never grow.
#[derive(Clone, Default)]
struct StuckTokens(MemoryLeaseStore);

impl leader_election::LeaseStore for StuckTokens {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
    async fn try_acquire(
        &self,
        r: &leader_election::store::LeaseRequest,
    ) -> leader_election::Result<leader_election::store::AcquireOutcome> {
        Ok(match self.0.try_acquire(r).await? {
            leader_election::store::AcquireOutcome::Acquired(_) => {
                leader_election::store::AcquireOutcome::Acquired(
                    leader_election::store::Lease::new(leader_election::FencingToken::new(1)),
                )
            }
            held => held,
        })
    }
    async fn renew(
        &self,
        r: &leader_election::store::LeaseRequest,
        _: &leader_election::store::Lease,
    ) -> leader_election::Result<leader_election::store::RenewOutcome> {
        let real = self.0.current_leader().await?.and_then(|l| l.token);
        self.0
            .renew(
                r,
                &leader_election::store::Lease::new(
                    real.unwrap_or(leader_election::FencingToken::new(0)),
                ),
            )
            .await
    }
    async fn release(
        &self,
        r: &leader_election::store::LeaseRequest,
        _: &leader_election::store::Lease,
    ) -> leader_election::Result<bool> {
        let real = self.0.current_leader().await?.and_then(|l| l.token);
        self.0
            .release(
                r,
                &leader_election::store::Lease::new(
                    real.unwrap_or(leader_election::FencingToken::new(0)),
                ),
            )
            .await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<leader_election::LeaderInfo>> {
        self.0.current_leader().await
    }
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "[tokens_strictly_increase]")]
async fn the_suite_catches_tokens_that_do_not_grow() {
    let options = ConformanceOptions::new(Duration::from_secs(5), Duration::from_millis(500));
    run_conformance(options, || async { StuckTokens::default() }).await;
}

// === the stricter checks catch what the old suite let pass ===

fn opts() -> ConformanceOptions {
    ConformanceOptions::new(Duration::from_secs(5), Duration::from_millis(500))
}

/// Forwards to a memory store, granting and renewing leases for `factor` of the ttl asked.
#[derive(Clone, Default)]
struct ScaledLease {
    inner: MemoryLeaseStore,
    acquire_factor: Option<f64>,
    renew_factor: Option<f64>,
}

fn scaled(r: &LeaseRequest, factor: Option<f64>) -> LeaseRequest {
    let mut r = r.clone();
    if let Some(factor) = factor {
        r.ttl = r.ttl.mul_f64(factor);
    }
    r
}

impl LeaseStore for ScaledLease {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.inner
            .try_acquire(&scaled(r, self.acquire_factor))
            .await
    }
    async fn renew(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<RenewOutcome> {
        self.inner.renew(&scaled(r, self.renew_factor), l).await
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        self.inner.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.inner.current_leader().await
    }
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "[expiry_frees_the_lease] the lease was taken over")]
async fn the_suite_catches_a_lease_shorter_than_its_ttl() {
    let store = ScaledLease {
        acquire_factor: Some(0.95),
        ..ScaledLease::default()
    };
    expiry_frees_the_lease(store, &opts()).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = "[no_takeover_before_a_renewed_lease_expires] the renewed lease was taken over"
)]
async fn the_suite_catches_a_renewal_shorter_than_its_ttl() {
    let store = ScaledLease {
        renew_factor: Some(0.95),
        ..ScaledLease::default()
    };
    no_takeover_before_a_renewed_lease_expires(store, &opts()).await;
}

#[tokio::test(start_paused = true)]
async fn exact_leases_pass_the_strict_checks() {
    expiry_frees_the_lease(MemoryLeaseStore::new(), &opts()).await;
    no_takeover_before_a_renewed_lease_expires(MemoryLeaseStore::new(), &opts()).await;
}

/// The memory store's release notices as a test wants them: `declared` says whether the store
/// declares them, `offered` whether it offers them.
#[derive(Clone, Copy, Default)]
struct Notices {
    declared: bool,
    offered: bool,
}

impl StoreHooks for Notices {
    fn capabilities(&self, inner: Capabilities) -> Capabilities {
        if self.declared {
            inner
        } else {
            Capabilities::none()
                .with_candidates()
                .with_metadata(inner.max_metadata_len)
                .with_records(inner.max_record_len)
        }
    }

    fn release_notifications(&self, inner: Option<ReleaseReceiver>) -> Option<ReleaseReceiver> {
        inner.filter(|_| self.offered)
    }
}

/// The memory store with its release notices as `notices` says.
fn memory_with(notices: Notices) -> Forward<MemoryLeaseStore, Notices> {
    Forward::with_hooks(MemoryLeaseStore::new(), notices)
}

#[tokio::test(start_paused = true)]
#[should_panic(
    expected = "[release_wakes_waiters] the store declares release notifications but offers none"
)]
async fn a_store_declaring_release_notices_must_offer_them() {
    run_conformance(opts(), || async {
        memory_with(Notices {
            declared: true,
            offered: false,
        })
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_store_without_release_notices_passes_by_declaring_none() {
    run_conformance(opts(), || async { memory_with(Notices::default()) }).await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "offers release notifications it does not declare")]
async fn a_store_offering_release_notices_it_does_not_declare_fails() {
    // The memory store, offering its release notices without declaring them.
    let hidden = memory_with(Notices {
        declared: false,
        offered: true,
    });
    release_wakes_waiters(hidden, &opts()).await;
}

/// Mints tokens from a counter of its own, as a process that remembers them would: each new
/// store starts again from 1.
#[derive(Clone, Default)]
struct ProcessCounter {
    inner: MemoryLeaseStore,
    counter: Arc<AtomicU64>,
}

impl ProcessCounter {
    async fn real_token(&self) -> Lease {
        let token = self
            .inner
            .current_leader()
            .await
            .unwrap()
            .and_then(|l| l.token);
        Lease::new(token.unwrap_or(FencingToken::new(0)))
    }
}

impl LeaseStore for ProcessCounter {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        Ok(match self.inner.try_acquire(r).await? {
            AcquireOutcome::Acquired(_) => AcquireOutcome::Acquired(Lease::new(FencingToken::new(
                self.counter.fetch_add(1, Ordering::SeqCst) + 1,
            ))),
            other => other,
        })
    }
    async fn renew(&self, r: &LeaseRequest, _: &Lease) -> leader_election::Result<RenewOutcome> {
        self.inner.renew(r, &self.real_token().await).await
    }
    async fn release(&self, r: &LeaseRequest, _: &Lease) -> leader_election::Result<bool> {
        self.inner.release(r, &self.real_token().await).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.inner.current_leader().await
    }
}

#[tokio::test(start_paused = true)]
async fn the_memory_store_keeps_tokens_increasing_across_rebuilt_stores() {
    let backend = MemoryLeaseStore::new();
    tokens_increase_across_rebuilt_stores(&opts(), || {
        let store = backend.clone();
        async move { store }
    })
    .await;
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "[tokens_increase_across_rebuilt_stores] token 1 after 1")]
async fn the_suite_catches_tokens_kept_in_process_memory() {
    let backend = MemoryLeaseStore::new();
    tokens_increase_across_rebuilt_stores(&opts(), || {
        let store = ProcessCounter {
            inner: backend.clone(),
            counter: Arc::default(),
        };
        async move { store }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn the_memory_store_passes_the_election_controls() {
    let backend = MemoryLeaseStore::new();
    let options = leader_election::LeaderElectionOptions::default();
    let report =
        leader_election::testing::election_controls(&options, Duration::from_millis(100), || {
            let store = backend.clone();
            async move { store }
        })
        .await;
    assert!(report.resign_handover < Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn the_memory_store_passes_the_leader_metadata_check() {
    let backend = MemoryLeaseStore::new();
    let options = leader_election::LeaderElectionOptions::default();
    let report =
        leader_election::testing::leader_metadata(&options, Duration::from_millis(100), || {
            let store = backend.clone();
            async move { store }
        })
        .await;
    // Confirmed by one renewal, seen by the observer within its poll of a fifth of a lease.
    assert!(report.proclaimed_in < Duration::from_millis(10));
    assert!(report.observed_after <= options.lease_duration / 4);
}

/// Publishes metadata with the acquisition only: renewals drop it.
#[derive(Default)]
struct MetadataOnAcquisition(MemoryLeaseStore);

impl LeaseStore for MetadataOnAcquisition {
    fn capabilities(&self) -> Capabilities {
        Capabilities::none().with_metadata(MemoryLeaseStore::MAX_METADATA_LEN)
    }
    fn check_metadata(&self, metadata: &[u8]) -> leader_election::Result<()> {
        self.0.check_metadata(metadata)
    }
    async fn try_acquire(&self, r: &LeaseRequest) -> leader_election::Result<AcquireOutcome> {
        self.0.try_acquire(r).await
    }
    async fn renew(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<RenewOutcome> {
        self.0.renew(&r.clone().with_metadata(None), l).await
    }
    async fn release(&self, r: &LeaseRequest, l: &Lease) -> leader_election::Result<bool> {
        self.0.release(r, l).await
    }
    async fn current_leader(&self) -> leader_election::Result<Option<LeaderInfo>> {
        self.0.current_leader().await
    }
}

#[tokio::test(start_paused = true)]
#[should_panic(expected = "[metadata_is_published_with_the_lease] a renewal did not replace")]
async fn the_suite_catches_metadata_that_renewals_do_not_carry() {
    leader_election::testing::metadata_is_published_with_the_lease(
        MetadataOnAcquisition::default(),
        &opts(),
    )
    .await;
}
