//! The generic suite of the core (`leader_election::store_suite!`) on moto's DynamoDB: one
//! emulator for the test binary, a key of its own per election, and a fault proxy in front of
//! it for the cut-off check.

use std::time::Duration;

use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{ConformanceOptions, TakeoverOptions};
use leader_election::{ElectionBuilder, LeaderElectionOptions};
use leader_election_dynamodb::DynamoDbLeaseStore;
use leader_election_test_support::{FaultProxy, ProxyCut, Shared};

mod common;
use common::{DynamoEmulatorExt, S3Emulator, warm_up};

struct DynamoFixture {
    emulator: S3Emulator,
}

/// The fixture of this test binary while any check holds it (see [`Shared`]): the emulator
/// starts with the first check and stops with the last.
async fn fixture() -> std::sync::Arc<DynamoFixture> {
    static FIXTURE: Shared<DynamoFixture> = Shared::new();
    FIXTURE
        .get(|| async {
            let emulator = S3Emulator::start().await;
            warm_up(&emulator).await;
            DynamoFixture { emulator }
        })
        .await
}

impl Fixture for DynamoFixture {
    type Store = DynamoDbLeaseStore;

    async fn store(&self, name: &str) -> DynamoDbLeaseStore {
        self.emulator.store(name)
    }

    async fn cut_off_store(&self, name: &str) -> (DynamoDbLeaseStore, Box<dyn Cut>) {
        let proxy = FaultProxy::to_port(self.emulator.port()).await;
        let store = self
            .emulator
            .builder_via(proxy.port(), name, "store")
            .build_store()
            .expect("build the store");
        (store, Box::new(ProxyCut(proxy)))
    }

    /// Leases of 4 s, renewals every second, followers polling every 250 ms.
    fn options(&self) -> LeaderElectionOptions {
        self.emulator
            .builder("options", "suite")
            .election_options()
            .clone()
    }

    /// Leases of 2 s; expiry and takeover are seen within a follower's watch (a lease, 1 % and
    /// 100 ms) plus polling.
    fn conformance(&self) -> ConformanceOptions {
        ConformanceOptions::new(Duration::from_secs(2), Duration::from_secs(3))
    }

    /// No release notifications: followers see a release at their next poll (250 ms), a
    /// preferred candidate takes over at its next attempt (a renew interval, 1 s).
    fn handover_within(&self) -> Duration {
        Duration::from_secs(2)
    }

    /// The follower watches the leader renew for longer than a lease before the fault (it
    /// must stay out); after it, it watches the last version unchanged for a lease (and its
    /// drift allowance), then takes the lease at its next poll, within 3 s on a shared machine.
    fn takeover(&self) -> TakeoverOptions {
        let options = self.options();
        TakeoverOptions {
            hold: options.lease_duration + options.renew_interval,
            slack: Duration::from_secs(3),
            ..TakeoverOptions::default()
        }
    }
}

leader_election::store_suite!(&*fixture().await);

/// Scheduled jobs on this backend: each occurrence once across three nodes, through a graceful
/// stop and a crash of a job's leader (the jobs crate's shared check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs() {
    leader_election_jobs::testing::on_fixture(&*fixture().await).await;
}
