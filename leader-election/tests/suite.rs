//! The generic suite on the in-memory store, through the same macro every backend uses: the
//! reference run, with a fault wrapper standing in for a cut connection.

use std::sync::LazyLock;
use std::time::Duration;

use leader_election::testing::suite::{Cut, Fixture};
use leader_election::testing::{ConformanceOptions, FaultControl, FaultyStore};
use leader_election::{LeaderElectionOptions, MemoryLeaseStore};

/// Every election of the process on one memory "server", one store per election name.
#[derive(Default)]
struct Memory {
    elections: std::sync::Mutex<std::collections::HashMap<String, MemoryLeaseStore>>,
}

impl Memory {
    fn election(&self, name: &str) -> MemoryLeaseStore {
        let mut elections = self.elections.lock().unwrap();
        elections.entry(name.to_owned()).or_default().clone()
    }
}

struct Partition(FaultControl);

impl Cut for Partition {
    fn cut(&self) {
        self.0.set_partitioned(true);
    }
    fn heal(&self) {
        self.0.heal();
    }
}

impl Fixture for Memory {
    type Store = FaultyStore<MemoryLeaseStore>;

    async fn store(&self, name: &str) -> Self::Store {
        FaultyStore::new(self.election(name))
    }

    async fn cut_off_store(&self, name: &str) -> (Self::Store, Box<dyn Cut>) {
        let store = FaultyStore::new(self.election(name));
        let cut = Partition(store.control());
        (store, Box::new(cut))
    }

    fn options(&self) -> LeaderElectionOptions {
        let mut o = LeaderElectionOptions::default();
        o.lease_duration = Duration::from_millis(600);
        o.renew_interval = Duration::from_millis(150);
        o.operation_timeout = Some(Duration::from_millis(100));
        o.retry_interval = Duration::from_millis(50);
        o.max_retry_interval = Duration::from_millis(200);
        o.shutdown_timeout = Duration::from_secs(1);
        o
    }

    fn conformance(&self) -> ConformanceOptions {
        ConformanceOptions::new(Duration::from_millis(300), Duration::from_millis(500))
    }

    fn handover_within(&self) -> Duration {
        Duration::from_millis(100)
    }
}

static MEMORY: LazyLock<Memory> = LazyLock::new(Memory::default);

leader_election::store_suite!(&*MEMORY);
