//! The generic suite of the core (`leader_election::store_suite!`) on Azurite: one Azurite for
//! the test binary, a container of its own per election, and a fault proxy in front of it for
//! the cut-off check.

use std::time::Duration;

use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{ConformanceOptions, TakeoverOptions};
use leader_election::{ElectionBuilder, LeaderElectionOptions};
use leader_election_blob::BlobLeaseStore;
use leader_election_test_support::{ProxyCut, Shared};

mod common;
use common::{Azurite, AzuriteExt};

/// Azure's shortest lease: every lease of these checks lasts 15 s.
const TTL: Duration = Duration::from_secs(15);

struct BlobFixture {
    azurite: Azurite,
}

/// The fixture of this test binary while any check holds it (see [`Shared`]): Azurite starts
/// with the first check and stops with the last.
async fn fixture() -> std::sync::Arc<BlobFixture> {
    static FIXTURE: Shared<BlobFixture> = Shared::new();
    FIXTURE
        .get(|| async {
            BlobFixture {
                azurite: Azurite::start().await,
            }
        })
        .await
}

/// A container name for the election `name`: the suite's names are lower-case letters,
/// digits and hyphens already.
fn container(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

impl Fixture for BlobFixture {
    type Store = BlobLeaseStore;

    async fn store(&self, name: &str) -> BlobLeaseStore {
        self.azurite.store(&container(name))
    }

    async fn cut_off_store(&self, name: &str) -> (BlobLeaseStore, Box<dyn Cut>) {
        ProxyCut::around(self.azurite.port(), async |port| {
            self.azurite
                .builder_via(port, &container(name), "store")
                .build_store()
                .expect("build the store")
        })
        .await
    }

    fn options(&self) -> LeaderElectionOptions {
        let mut options = self
            .azurite
            .builder("options", "suite")
            .election_options()
            .clone();
        // A short tenure keeps the preferred-leader check short; the candidate record lives
        // for a lease.
        options.min_tenure = Some(Duration::from_secs(3));
        options
    }

    fn conformance(&self) -> ConformanceOptions {
        ConformanceOptions::new(TTL, Duration::from_secs(5))
    }

    /// Followers poll every retry_interval (500 ms): a release, a resignation or a stop is
    /// seen within a poll, on a shared machine within 3 s.
    fn handover_within(&self) -> Duration {
        Duration::from_secs(3)
    }

    /// The follower watches the leader renew for 2 s before the fault; after it, takes the
    /// lease at its first poll past the lease (500 ms and jitter), or 3 s on a shared machine.
    fn takeover(&self) -> TakeoverOptions {
        TakeoverOptions {
            hold: Duration::from_secs(2),
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
