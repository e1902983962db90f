//! The generic suite of the core (`leader_election::store_suite!`) against a real MariaDB
//! server: every shared check (conformance, rebuilt stores, controls, metadata, preferred
//! leaders, the race, a crashed leader, a leader cut off through a fault proxy) on one server
//! that the checks of this binary share, an election (rows of the default table) per check.

mod common;

use std::time::Duration;

use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{ConformanceOptions, TakeoverOptions};
use leader_election::{ElectionBuilder, LeaderElectionOptions};
use leader_election_fixtures::MariaDb;
use leader_election_mysql::MysqlLeaseStore;
use leader_election_test_support::ProxyCut;

/// The suite on the server of this binary.
struct OnMariaDb(std::sync::Arc<MariaDb>);

impl Fixture for OnMariaDb {
    type Store = MysqlLeaseStore;

    async fn store(&self, name: &str) -> MysqlLeaseStore {
        common::store(&self.0, name)
    }

    async fn cut_off_store(&self, name: &str) -> (MysqlLeaseStore, Box<dyn Cut>) {
        ProxyCut::around(self.0.port(), async |port| {
            let url = format!("mysql://root@127.0.0.1:{port}/{}", MariaDb::DATABASE);
            common::builder(&url, name, "store")
                .build_store()
                .expect("valid configuration")
        })
        .await
    }

    fn options(&self) -> LeaderElectionOptions {
        common::options("suite")
    }

    fn conformance(&self) -> ConformanceOptions {
        ConformanceOptions::new(Duration::from_secs(1), Duration::from_secs(2))
    }

    /// No release notices: a follower takes a released lease when it next asks, at most a
    /// lease (2 s) after the release, with jitter.
    fn handover_within(&self) -> Duration {
        common::LEASE + Duration::from_secs(1)
    }

    fn takeover(&self) -> TakeoverOptions {
        TakeoverOptions::default()
    }
}

leader_election::store_suite!(&OnMariaDb(common::server().await));

/// Scheduled jobs on this backend: each occurrence once across three nodes, through a graceful
/// stop and a crash of a job's leader (the jobs crate's shared check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs() {
    leader_election_jobs::testing::on_fixture(&OnMariaDb(common::server().await)).await;
}
