//! What the ZooKeeper tests share: one standalone server per test binary, the contenders'
//! builder and timings.

#![allow(dead_code, unused_imports)] // Each test binary uses a part.

use std::sync::Arc;

use leader_election::{ElectionBuilder, LeaderElection};
use leader_election_fixtures::ZooKeeper;
use leader_election_test_support::Shared;
use leader_election_zookeeper::{
    ZooKeeperLeaderElection, ZooKeeperLeaderElectionBuilder, ZooKeeperLeaseStore,
};

/// The lease of the tests' contenders: the shared one.
pub(crate) use leader_election_test_support::operator::LEASE;

/// The server of this test binary while any test holds it (see [`Shared`]): the first test
/// starts it, the last stops it (by PID, its folder removed).
pub(crate) async fn server() -> Arc<ZooKeeper> {
    static SHARED: Shared<ZooKeeper> = Shared::new();
    SHARED.get(ZooKeeper::start).await
}

/// The options the tests share, for contender `id`: the shared ones (a 2 s lease renewed
/// every 500 ms, retries from 200 ms up to 500 ms, a 500 ms operation timeout).
pub(crate) use leader_election_test_support::operator::options;

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
