//! Stores and elections on an [`EtcdCluster`](crate::EtcdCluster) for the etcd backend's
//! tests (feature `etcd`).

use std::time::Duration;

use leader_election::{FencingToken, LeaderElection, LeaderElectionOptions, LeaseStore};
use leader_election_etcd::{EtcdLeaderElection, EtcdLeaderElectionBuilder, EtcdLeaseStore};

/// The election timings of the etcd tests: a 2 s lease (etcd's shortest with its default
/// timing), renewed every 500 ms, each operation bounded by 500 ms, retried after 100 ms
/// backing off to 500 ms.
pub fn fast_options(instance_id: &str) -> LeaderElectionOptions {
    let mut o = LeaderElectionOptions::default();
    o.instance_id = instance_id.to_owned();
    o.lease_duration = Duration::from_secs(2);
    o.renew_interval = Duration::from_millis(500);
    o.operation_timeout = Some(Duration::from_millis(500));
    o.retry_interval = Duration::from_millis(100);
    o.max_retry_interval = Duration::from_millis(500);
    o.shutdown_timeout = Duration::from_secs(1);
    o
}

/// A builder for `key` on `endpoints` with [`fast_options`] for `id`.
pub fn builder(endpoints: &[String], key: &str, id: &str) -> EtcdLeaderElectionBuilder {
    EtcdLeaderElection::builder()
        .endpoints(endpoints.iter().cloned())
        .key(key)
        .options(fast_options(id))
}

/// A store for `key` on `endpoints`, with [`fast_options`]' timeout.
///
/// # Panics
/// When the builder refuses the endpoints or the key.
pub fn store(endpoints: &[String], key: &str) -> EtcdLeaseStore {
    builder(endpoints, key, "store")
        .build_store()
        .expect("build the etcd store")
}

/// An election for `key` on `endpoints` with [`fast_options`] for `id`.
///
/// # Panics
/// When the builder refuses the endpoints or the key.
pub fn election(endpoints: &[String], key: &str, id: &str) -> LeaderElection<EtcdLeaseStore> {
    builder(endpoints, key, id)
        .build()
        .expect("build the etcd election")
}

/// Waits until exactly one of `elections` leads (panicking if two ever do while it
/// waits), and returns its index.
///
/// # Panics
/// When two lead at once, or none within `within`.
pub async fn one_leader<S: LeaseStore>(
    elections: &[&LeaderElection<S>],
    within: Duration,
) -> usize {
    let mut found = None;
    crate::eventually(within, format!("a leader within {within:?}"), || {
        let leaders: Vec<usize> = (0..elections.len())
            .filter(|&i| elections[i].is_leader())
            .collect();
        assert!(leaders.len() <= 1, "two leaders: {leaders:?}");
        found = leaders.first().copied();
        found.is_some()
    })
    .await;
    found.unwrap_or_default()
}

/// The token of the term `election` leads now.
///
/// # Panics
/// When it does not lead.
pub fn token<S: LeaseStore>(election: &LeaderElection<S>) -> FencingToken {
    election.leadership().expect("leading").token()
}
