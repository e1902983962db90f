//! Real network faults between contenders and a real redis-server: each contender in its own
//! network namespace, its packets dropped by nftables (no reset, no error: a connection looks
//! alive until a timeout), both ways, one way, or a share of them: the shared network checks
//! of `leader_election_test_support::netns`. Needs root, `ip` and `nft` (the test command
//! installs them and requires them as root); elsewhere each test says why and passes.
#![cfg(target_os = "linux")]

mod common;

use leader_election_redis::RedisLeaseStore;
use leader_election_test_support::netns::{NetLab, NetworkChecks};
use leader_election_test_support::redis::{RedisOptions, RedisServer};
use leader_election_test_support::unique_name;

use common::{SETTLED, election, prime};

/// A server the lab's namespaces reach, and three contenders of one election on it.
async fn start(lab: &NetLab, name: &str) -> (RedisServer, NetworkChecks<RedisLeaseStore>) {
    let server = RedisServer::start_with(RedisOptions {
        min_uptime: SETTLED,
        bind: vec![lab.host_ip().into()],
        ..RedisOptions::default()
    })
    .await;
    let key = unique_name(name);
    prime(&server.url(), &key).await;
    let url = format!("redis://{}:{}", lab.host_ip(), server.port());
    let checks =
        NetworkChecks::start(lab, 3, move |i| election(&url, &key, ["a", "b", "c"][i])).await;
    (server, checks)
}

leader_election_test_support::network_checks!(start);
