//! The generic suite (`leader_election::store_suite!`) against a real redis-server: every
//! shared check (conformance, rebuilt stores, controls, metadata, preferred leaders, the race,
//! a crashed leader, a leader cut off through a fault proxy) on one server per test binary.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use leader_election::LeaderElectionOptions;
use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{ConformanceOptions, TakeoverOptions};
use leader_election_redis::RedisLeaseStore;
use leader_election_test_support::{ProxyCut, RedisServer, Shared};

/// The server the checks of this binary share, and the election keys already primed on it.
struct Redis {
    server: RedisServer,
    primed: tokio::sync::Mutex<HashSet<String>>,
}

impl Redis {
    /// The server every check of this binary shares while any of them runs (see [`Shared`]).
    async fn shared() -> Arc<Self> {
        static SHARED: Shared<Redis> = Shared::new();
        SHARED
            .get(|| async {
                Self {
                    server: common::server().await,
                    primed: tokio::sync::Mutex::default(),
                }
            })
            .await
    }

    /// Primes the election `name` once, so that its stores grant at once (see
    /// [`common::prime`]).
    async fn prime(&self, name: &str) {
        let mut primed = self.primed.lock().await;
        if primed.insert(name.to_owned()) {
            common::prime(&self.server.url(), name).await;
        }
    }
}

impl Fixture for Redis {
    type Store = RedisLeaseStore;

    async fn store(&self, name: &str) -> RedisLeaseStore {
        self.prime(name).await;
        common::store(&self.server.url(), name).await
    }

    async fn cut_off_store(&self, name: &str) -> (RedisLeaseStore, Box<dyn Cut>) {
        self.prime(name).await;
        ProxyCut::around(self.server.port(), async |port| {
            common::store(&format!("redis://127.0.0.1:{port}"), name).await
        })
        .await
    }

    fn options(&self) -> LeaderElectionOptions {
        common::fast_options("suite")
    }

    fn conformance(&self) -> ConformanceOptions {
        ConformanceOptions::new(Duration::from_secs(1), Duration::from_secs(1))
    }

    fn takeover(&self) -> TakeoverOptions {
        // Renewals keep the follower out for two of them; then the lease must expire on
        // Redis, and the follower's next attempt takes it.
        TakeoverOptions {
            hold: self.options().renew_interval * 2,
            slack: Duration::from_millis(500),
            ..TakeoverOptions::default()
        }
    }
}

leader_election::store_suite!(&*Redis::shared().await);

/// Scheduled jobs on this backend: each occurrence once across three nodes, through a graceful
/// stop and a crash of a job's leader (the jobs crate's shared check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs() {
    leader_election_jobs::testing::on_fixture(&*Redis::shared().await).await;
}
