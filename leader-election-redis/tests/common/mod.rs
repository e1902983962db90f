//! What the Redis backend's tests and examples share: servers, fred clients, stores and
//! elections on them, raw commands, and `prime` for an election key. Each test binary (and
//! example) includes it with `mod common;` and uses a part of it.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use leader_election::ElectionBuilder;
#[cfg(feature = "tls")]
use leader_election::TlsBuilder;

use leader_election::store::{AcquireOutcome, LeaseRequest};
use leader_election::{LeaderElection, LeaderElectionOptions, LeaseStore};
use leader_election_redis::RedisLeaseStore;
use leader_election_redis::fred::clients::Client;
use leader_election_redis::fred::interfaces::ClientLike;
use leader_election_redis::fred::prelude::{Config, ReconnectPolicy, Value};

use leader_election_test_support::redis::{RedisOptions, RedisServer};

/// How long a fresh server waits before the Redis backend's tests use it: a server younger
/// than a lease grants no new lease (it may have lost one in a restart), and the tests use
/// leases up to 2 s.
pub(crate) const SETTLED: Duration = Duration::from_secs(2);

/// A fresh server for the Redis backend's tests: up for [`SETTLED`] before it is returned.
///
/// # Panics
/// As [`RedisServer::start`].
pub(crate) async fn server() -> RedisServer {
    server_with_password(None).await
}

/// [`server`], requiring `password` if given.
///
/// # Panics
/// As [`RedisServer::start`].
pub(crate) async fn server_with_password(password: Option<&str>) -> RedisServer {
    RedisServer::start_with(RedisOptions {
        password: password.map(str::to_owned),
        min_uptime: SETTLED,
        ..RedisOptions::default()
    })
    .await
}

/// What the Redis backend's tests add to a [`RedisServer`] (a type of
/// `leader-election-fixtures`, which knows no Redis client).
pub(crate) trait RedisServerExt {
    /// A connected fred client for operator commands and inspection.
    ///
    /// # Panics
    /// When the first connection fails.
    fn client(&self) -> impl Future<Output = Client> + Send;
}

impl RedisServerExt for RedisServer {
    async fn client(&self) -> Client {
        connect_client(&self.url()).await
    }
}

/// A connected fred client for `url`, reconnecting every 50 ms.
///
/// # Panics
/// When `url` is not a Redis URL or the first connection fails.
pub(crate) async fn connect_client(url: &str) -> Client {
    let config = Config::from_url(url).expect("a Redis URL");
    let client = Client::new(
        config,
        None,
        None,
        Some(ReconnectPolicy::new_constant(0, 50)),
    );
    client.init().await.expect("connect to redis");
    client
}

/// A store on `url` for the election `key`, with its own client and a 500 ms timeout.
///
/// # Panics
/// When the client cannot connect or the key is invalid.
pub(crate) async fn store(url: &str, key: &str) -> RedisLeaseStore {
    RedisLeaseStore::new(connect_client(url).await, key)
        .expect("store")
        .with_operation_timeout(Duration::from_millis(500))
}

/// Fast election timings for tests: 1.5 s lease, renewed every 400 ms, 250 ms timeout.
pub(crate) fn fast_options(instance_id: &str) -> LeaderElectionOptions {
    leader_election_test_support::operator::timed_options(
        instance_id,
        Duration::from_millis(1500),
        Duration::from_millis(400),
        Duration::from_millis(250),
    )
}

/// `builder` with a lease of `lease`, renewed every quarter of it, retried after a sixth of
/// it (backing off to a whole lease): the timings of the Redis benchmarks and cluster tests.
pub(crate) fn with_lease(
    builder: leader_election_redis::RedisLeaderElectionBuilder,
    lease: Duration,
) -> leader_election_redis::RedisLeaderElectionBuilder {
    builder
        .lease_duration(lease)
        .renew_interval(lease / 4)
        .retry_interval(lease / 6)
        .max_retry_interval(lease)
}

/// An election for `key` on `url`, built with the crate's builder and [`fast_options`].
///
/// # Panics
/// When the builder rejects the configuration.
pub(crate) fn election(url: &str, key: &str, id: &str) -> LeaderElection<RedisLeaseStore> {
    leader_election_redis::RedisLeaderElection::builder()
        .url(url)
        .key(key)
        .options(fast_options(id))
        .build()
        .expect("build election")
}

/// Sends a raw command (`args[0]` is its name) and returns the reply.
///
/// # Panics
/// When `args` is empty or the command fails.
pub(crate) async fn command(client: &Client, args: &[&str]) -> Value {
    use leader_election_redis::fred::types::{ClusterHash, CustomCommand};
    let (name, rest) = args.split_first().expect("a command");
    let cmd = CustomCommand::new(name.to_string(), ClusterHash::FirstKey, false);
    let rest: Vec<Value> = rest.iter().map(|a| Value::from(*a)).collect();
    client.custom(cmd, rest).await.expect("command")
}

/// Makes the election `key` on `url` look like one that has run before: a fresh election (no
/// `{key}:epoch` yet) waits one lease before its first grant, as a promoted replica that never
/// received the election's first acquisition would. Tests that need an immediate grant prime
/// their key first: one acquisition attempt records the epoch, and deleting the fence it set
/// ends the wait at once.
///
/// # Panics
/// When the attempt fails or answers something else than a grant or a withheld lease.
pub(crate) async fn prime(url: &str, key: &str) {
    let store = store(url, key).await;
    let request = LeaseRequest::new("primer", Duration::from_millis(1));
    match store.try_acquire(&request).await.expect("prime") {
        AcquireOutcome::Acquired(lease) => {
            store.release(&request, &lease).await.expect("release");
        }
        AcquireOutcome::Withheld { .. } => {
            let client = connect_client(url).await;
            command(&client, &["DEL", &format!("{{{key}}}:fence")]).await;
            let _ = client.quit().await;
        }
        other => panic!("priming {key}: {other:?}"),
    }
    let _ = store.client().quit().await;
}

/// A store for `key` on `url`, after [`prime`]: it grants at once.
pub(crate) async fn primed_store(url: &str, key: &str) -> RedisLeaseStore {
    prime(url, key).await;
    store(url, key).await
}

// === TLS ===

/// A fresh TLS-only server (`--port 0`, see [`RedisOptions::tls`]) with new certificates,
/// requiring a client certificate if `auth_clients`; up for [`SETTLED`] (read over TLS)
/// before it is returned.
///
/// # Panics
/// When `redis-server` is missing or was built without TLS, or does not settle in time.
#[cfg(feature = "tls")]
pub(crate) async fn tls_server(auth_clients: bool) -> RedisServer {
    let server = RedisServer::start_with(RedisOptions {
        tls: Some(leader_election_test_support::redis::RedisTls::generate(
            auth_clients,
        )),
        ..RedisOptions::default()
    })
    .await;
    let store = tls_builder(&server, "settle", "settle")
        .build_store()
        .expect("TLS store");
    store.connect().await.expect("connect over TLS");
    leader_election_test_support::eventually_some(
        SETTLED + Duration::from_secs(10),
        "uptime",
        || async {
            let info = command(store.client(), &["INFO", "server"]).await;
            let up = info
                .as_string()?
                .lines()
                .find_map(|l| l.strip_prefix("uptime_in_seconds:"))?
                .trim()
                .parse::<u64>()
                .ok()?;
            (Duration::from_secs(up) >= SETTLED).then_some(())
        },
    )
    .await;
    let _ = store.client().quit().await;
    server
}

/// A builder for the election `key` on a TLS server: its `rediss://` URL, its CA, the
/// fixture's client certificate, and [`fast_options`].
///
/// # Panics
/// When the server does not serve TLS.
#[cfg(feature = "tls")]
pub(crate) fn tls_builder(
    server: &RedisServer,
    key: &str,
    id: &str,
) -> leader_election_redis::RedisLeaderElectionBuilder {
    let tls = server.tls().expect("a TLS server");
    leader_election_redis::RedisLeaderElection::builder()
        .url(server.tls_url())
        .key(key)
        .options(fast_options(id))
        .tls_ca_pem(tls.ca_pem.as_bytes())
        .tls_client_cert_pem(
            tls.client_cert_pem.as_bytes(),
            tls.client_key_pem.as_bytes(),
        )
}

/// [`prime`] over TLS, with [`tls_builder`]'s settings.
///
/// # Panics
/// As [`prime`].
#[cfg(feature = "tls")]
pub(crate) async fn tls_prime(server: &RedisServer, key: &str) {
    let store = tls_builder(server, key, "primer")
        .build_store()
        .expect("TLS store");
    store.connect().await.expect("connect over TLS");
    let request = LeaseRequest::new("primer", Duration::from_millis(1));
    match store.try_acquire(&request).await.expect("prime") {
        AcquireOutcome::Acquired(lease) => {
            store.release(&request, &lease).await.expect("release");
        }
        AcquireOutcome::Withheld { .. } => {
            command(store.client(), &["DEL", &format!("{{{key}}}:fence")]).await;
        }
        other => panic!("priming {key}: {other:?}"),
    }
    let _ = store.client().quit().await;
}
