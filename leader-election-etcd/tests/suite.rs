//! The generic suite (`leader_election::store_suite!`) against a real etcd member: every
//! shared check (conformance, rebuilt stores, controls, metadata, preferred leaders, the race,
//! a crashed leader, a leader cut off through a fault proxy) on one member per test binary.

mod common;

use std::sync::Arc;
use std::time::Duration;

use leader_election::LeaderElectionOptions;
use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{ConformanceOptions, TakeoverOptions};
use leader_election_etcd::EtcdLeaseStore;
use leader_election_test_support::{EtcdCluster, ProxyCut, Shared};

/// The member the checks of this binary share.
struct Etcd(EtcdCluster);

impl Etcd {
    /// The member every check of this binary shares while any of them runs (see [`Shared`]).
    async fn shared() -> Arc<Self> {
        static SHARED: Shared<Etcd> = Shared::new();
        SHARED
            .get(|| async { Self(EtcdCluster::single().await) })
            .await
    }
}

impl Fixture for Etcd {
    type Store = EtcdLeaseStore;

    async fn store(&self, name: &str) -> EtcdLeaseStore {
        common::store(&self.0.endpoints(), name)
    }

    async fn cut_off_store(&self, name: &str) -> (EtcdLeaseStore, Box<dyn Cut>) {
        ProxyCut::around(self.0.client_port(0), async |port| {
            common::store(&[format!("http://127.0.0.1:{port}")], name)
        })
        .await
    }

    fn options(&self) -> LeaderElectionOptions {
        common::fast_options("suite")
    }

    /// etcd's leases are whole seconds, at least 2 s with its default timing; its expiry
    /// checker runs every 500 ms, so an expiry shows up to about half a second late.
    fn conformance(&self) -> ConformanceOptions {
        ConformanceOptions::new(Duration::from_secs(2), Duration::from_millis(1500))
    }

    fn takeover(&self) -> TakeoverOptions {
        // etcd revokes the lease once its TTL passes (its expiry checker runs every 500 ms),
        // the key goes with it, and the follower's watch wakes it at once.
        TakeoverOptions {
            slack: Duration::from_millis(1200),
            ..TakeoverOptions::default()
        }
    }
}

leader_election::store_suite!(&*Etcd::shared().await);

/// Scheduled jobs on this backend: each occurrence once across three nodes, through a graceful
/// stop and a crash of a job's leader (the jobs crate's shared check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs() {
    leader_election_jobs::testing::on_fixture(&*Etcd::shared().await).await;
}
