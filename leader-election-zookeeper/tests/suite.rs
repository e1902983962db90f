//! The generic suite of the core (`leader_election::store_suite!`) against a real ZooKeeper
//! server: every shared check (conformance, rebuilt stores, controls, metadata, preferred
//! leaders, the race, a crashed leader, a leader cut off through a fault proxy) on one server
//! that the checks of this binary share, an election (a path) per check.

mod common;

use std::time::Duration;

use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{ConformanceOptions, TakeoverOptions};
use leader_election::{ElectionBuilder, LeaderElectionOptions};
use leader_election_fixtures::ZooKeeper;
use leader_election_test_support::ProxyCut;
use leader_election_zookeeper::ZooKeeperLeaseStore;

/// The suite on the server of this binary.
struct OnZooKeeper(std::sync::Arc<ZooKeeper>);

impl Fixture for OnZooKeeper {
    type Store = ZooKeeperLeaseStore;

    async fn store(&self, name: &str) -> ZooKeeperLeaseStore {
        common::store(&self.0, name)
    }

    async fn cut_off_store(&self, name: &str) -> (ZooKeeperLeaseStore, Box<dyn Cut>) {
        ProxyCut::around(self.0.port(0), async |port| {
            common::builder(&format!("127.0.0.1:{port}"), name, "store")
                .build_store()
                .expect("valid configuration")
        })
        .await
    }

    fn options(&self) -> LeaderElectionOptions {
        common::options("suite")
    }

    /// Leases as long as the stores' sessions (2 s). A lease nobody renews is given up by its
    /// store within a sweep (100 ms) of its end; a store dropped holding one leaves it until
    /// its session expires, a session timeout after the server last heard from it (rounded up
    /// to the server's 100 ms tick): a ttl shorter than the session would not be kept to.
    fn conformance(&self) -> ConformanceOptions {
        ConformanceOptions::new(common::LEASE, Duration::from_secs(1))
    }

    /// Release notices through the successor's watch: a handover takes a few round trips.
    fn handover_within(&self) -> Duration {
        Duration::from_millis(500)
    }

    /// A crashed leader's znode goes when its session expires: a session timeout (the lease)
    /// after the server last heard from it, within the server's tick.
    fn takeover(&self) -> TakeoverOptions {
        TakeoverOptions::default()
    }
}

leader_election::store_suite!(&OnZooKeeper(common::server().await));
