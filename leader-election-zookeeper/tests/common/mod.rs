//! What the ZooKeeper tests share: one standalone server per test binary, the contenders'
//! builder and timings.

#![allow(dead_code)] // Each test binary uses a part.

use std::sync::Arc;
use std::time::Duration;

use leader_election::{ElectionBuilder, LeaderElection, LeaderElectionOptions};
use leader_election_fixtures::ZooKeeper;
use leader_election_test_support::Shared;
use leader_election_zookeeper::{
    ZooKeeperLeaderElection, ZooKeeperLeaderElectionBuilder, ZooKeeperLeaseStore,
};

/// The lease of the tests' contenders (and their session timeout).
pub(crate) const LEASE: Duration = Duration::from_secs(2);

/// The server of this test binary while any test holds it (see [`Shared`]): the first test
/// starts it, the last stops it (by PID, its folder removed).
pub(crate) async fn server() -> Arc<ZooKeeper> {
    static SHARED: Shared<ZooKeeper> = Shared::new();
    SHARED.get(ZooKeeper::start).await
}

/// The options the tests share, for contender `id`: a 2 s lease ([`LEASE`]) renewed every
/// 500 ms, retries from 200 ms up to 500 ms, a 500 ms operation timeout.
pub(crate) fn options(id: &str) -> LeaderElectionOptions {
    let mut options = LeaderElectionOptions::default();
    options.instance_id = id.to_owned();
    options.lease_duration = LEASE;
    options.renew_interval = Duration::from_millis(500);
    options.retry_interval = Duration::from_millis(200);
    options.max_retry_interval = Duration::from_millis(500);
    options.operation_timeout = Some(Duration::from_millis(500));
    options
}

/// A builder for contender `id` of `election` on the ensemble at `connect_string`, with
/// [`options`].
pub(crate) fn builder(
    connect_string: &str,
    election: &str,
    id: &str,
) -> ZooKeeperLeaderElectionBuilder {
    ZooKeeperLeaderElection::builder()
        .connect_string(connect_string)
        .election(election)
        .options(options(id))
}

/// A store for `election` on `zk`, with [`options`].
pub(crate) fn store(zk: &ZooKeeper, election: &str) -> ZooKeeperLeaseStore {
    builder(&zk.connect_string(), election, "store")
        .build_store()
        .expect("valid configuration")
}

/// Contender `id` of `election` on `zk`, with [`options`].
pub(crate) fn election(
    zk: &ZooKeeper,
    election: &str,
    id: &str,
) -> LeaderElection<ZooKeeperLeaseStore> {
    builder(&zk.connect_string(), election, id)
        .build()
        .expect("valid configuration")
}
