//! The generic suite of the core (`leader_election::store_suite!`) against a real PostgreSQL
//! server: every shared check (conformance, rebuilt stores, controls, metadata, preferred
//! leaders, the race, a crashed leader, a leader cut off through a fault proxy) on one server
//! that the checks of this binary share, an election (a row of the default table) per check.

mod common;

use std::sync::Arc;
use std::time::Duration;

use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{ConformanceOptions, TakeoverOptions};
use leader_election::{ElectionBuilder, LeaderElectionOptions};
use leader_election_postgres::PostgresLeaseStore;
use leader_election_test_support::{Postgres, ProxyCut, Shared};

/// The server the checks of this binary share.
struct Pg {
    server: Postgres,
}

impl Pg {
    /// The server while any check holds it (see [`Shared`]): the first check starts it, the
    /// last stops it (by PID, its folder removed).
    async fn shared() -> Arc<Self> {
        static SHARED: Shared<Pg> = Shared::new();
        SHARED
            .get(|| async {
                Self {
                    server: Postgres::start().await,
                }
            })
            .await
    }

    /// A store for the election `name` on the server at `url`, with the suite's timings (the
    /// pool's waits are the operation timeout).
    fn store_at(url: &str, name: &str) -> PostgresLeaseStore {
        common::builder(url, name, "suite")
            .options(suite_options())
            .build_store()
            .expect("valid configuration")
    }
}

/// The suite's timings: [`common::options`] (a 2 s lease renewed every 500 ms, a 500 ms
/// operation timeout), with retries at most 500 ms apart, so that a follower takes an expired
/// lease within the takeover checks' default slack (1 s).
fn suite_options() -> LeaderElectionOptions {
    let mut options = common::options("suite");
    options.max_retry_interval = Duration::from_millis(500);
    options
}

impl Fixture for Pg {
    type Store = PostgresLeaseStore;

    /// The server keeps time and a fresh election grants at once: no wait.
    async fn store(&self, name: &str) -> PostgresLeaseStore {
        Self::store_at(&self.server.url(), name)
    }

    /// The pool and the release listener both connect through the proxy.
    async fn cut_off_store(&self, name: &str) -> (PostgresLeaseStore, Box<dyn Cut>) {
        ProxyCut::around(self.server.port(), async |port| {
            Self::store_at(
                &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres"),
                name,
            )
        })
        .await
    }

    fn options(&self) -> LeaderElectionOptions {
        suite_options()
    }

    fn conformance(&self) -> ConformanceOptions {
        ConformanceOptions::new(Duration::from_secs(1), Duration::from_secs(2))
    }

    fn takeover(&self) -> TakeoverOptions {
        TakeoverOptions::default()
    }
}

leader_election::store_suite!(&*Pg::shared().await);

/// Scheduled jobs on this backend: each occurrence once across three nodes, through a graceful
/// stop and a crash of a job's leader (the jobs crate's shared check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs() {
    leader_election_jobs::testing::on_fixture(&*Pg::shared().await).await;
}
