//! What the etcd backend's tests share: builders, stores and elections on an `EtcdCluster`
//! with fast timings (and, from test support, waiting for one leader). Each test binary includes it with
//! `mod common;` and uses a part of it.

#![allow(dead_code)]

use std::time::Duration;

use leader_election::{ElectionBuilder, LeaderElection, LeaderElectionOptions};
use leader_election_etcd::{EtcdLeaderElection, EtcdLeaderElectionBuilder, EtcdLeaseStore};

/// The election timings of the etcd tests: a 2 s lease (etcd's shortest with its default
/// timing), renewed every 500 ms, each operation bounded by 500 ms, retried after 100 ms
/// backing off to 500 ms.
pub(crate) fn fast_options(instance_id: &str) -> LeaderElectionOptions {
    leader_election_test_support::operator::timed_options(
        instance_id,
        Duration::from_secs(2),
        Duration::from_millis(500),
        Duration::from_millis(500),
    )
}

/// A builder for `key` on `endpoints` with [`fast_options`] for `id`.
pub(crate) fn builder(endpoints: &[String], key: &str, id: &str) -> EtcdLeaderElectionBuilder {
    EtcdLeaderElection::builder()
        .endpoints(endpoints.iter().cloned())
        .key(key)
        .options(fast_options(id))
}

/// A store for `key` on `endpoints`, with [`fast_options`]' timeout.
///
/// # Panics
/// When the builder refuses the endpoints or the key.
pub(crate) fn store(endpoints: &[String], key: &str) -> EtcdLeaseStore {
    builder(endpoints, key, "store")
        .build_store()
        .expect("build the etcd store")
}

/// An election for `key` on `endpoints` with [`fast_options`] for `id`.
///
/// # Panics
/// When the builder refuses the endpoints or the key.
pub(crate) fn election(
    endpoints: &[String],
    key: &str,
    id: &str,
) -> LeaderElection<EtcdLeaseStore> {
    builder(endpoints, key, id)
        .build()
        .expect("build the etcd election")
}
