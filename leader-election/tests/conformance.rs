//! The in-memory store is the reference implementation of the conformance suite.

use std::time::Duration;

use leader_election::MemoryLeaseStore;
use leader_election::testing::{ConformanceOptions, FaultyStore, run_conformance};

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
    async fn try_acquire(
        &self,
        r: &leader_election::LeaseRequest,
    ) -> leader_election::Result<leader_election::AcquireOutcome> {
        self.0.try_acquire(r).await
    }
    async fn renew(
        &self,
        _: &leader_election::LeaseRequest,
        _: &leader_election::Lease,
    ) -> leader_election::Result<leader_election::RenewOutcome> {
        Ok(leader_election::RenewOutcome::Renewed)
    }
    async fn release(
        &self,
        r: &leader_election::LeaseRequest,
        l: &leader_election::Lease,
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
    async fn try_acquire(
        &self,
        r: &leader_election::LeaseRequest,
    ) -> leader_election::Result<leader_election::AcquireOutcome> {
        Ok(match self.0.try_acquire(r).await? {
            leader_election::AcquireOutcome::Acquired(_) => {
                leader_election::AcquireOutcome::Acquired(leader_election::Lease::new(
                    leader_election::FencingToken::new(1),
                ))
            }
            held => held,
        })
    }
    async fn renew(
        &self,
        r: &leader_election::LeaseRequest,
        _: &leader_election::Lease,
    ) -> leader_election::Result<leader_election::RenewOutcome> {
        let real = self.0.current_leader().await?.and_then(|l| l.token);
        self.0
            .renew(
                r,
                &leader_election::Lease::new(real.unwrap_or(leader_election::FencingToken::new(0))),
            )
            .await
    }
    async fn release(
        &self,
        r: &leader_election::LeaseRequest,
        _: &leader_election::Lease,
    ) -> leader_election::Result<bool> {
        let real = self.0.current_leader().await?.and_then(|l| l.token);
        self.0
            .release(
                r,
                &leader_election::Lease::new(real.unwrap_or(leader_election::FencingToken::new(0))),
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
