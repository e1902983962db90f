//! The backends the tester can drive, each boxed as a `BoxLeaseStore`, and how to reach each of them
//! (directly, or through a per-contender proxy that can cut the connection).

use std::fmt;
use std::net::SocketAddr;

use clap::ValueEnum;
use leader_election::{
    AcquireOutcome, BoxLeaseStore, LeaderElectionOptions, LeaderInfo, Lease, LeaseRequest,
    LeaseStore, MemoryLeaseStore, RenewOutcome, Result,
};
use leader_election_blob::BlobLeaderElection;
use leader_election_postgres::PostgresLeaderElection;
use leader_election_redis::{RedisLeaderElection, RedisLeaseStore};
use serde::{Deserialize, Serialize};

/// The Azurite development account, on the port the docker-compose file publishes.
pub(crate) const AZURITE_CONNECTION_STRING: &str = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;";

/// Which backend holds the election.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum BackendKind {
    /// In this process's memory: needs no service (contenders must share the process).
    Memory,
    /// A Redis server (crate `leader-election-redis`).
    Redis,
    /// Azure Blob Storage or Azurite (crate `leader-election-blob`).
    Blob,
    /// A PostgreSQL server (crate `leader-election-postgres`).
    Postgres,
    /// An etcd cluster (crate `leader-election-etcd`).
    Etcd,
    /// Amazon S3 or an S3-compatible store, such as moto or MinIO (crate `leader-election-s3`).
    S3,
    /// A deliberately broken in-memory store that grants the lease to every asker: a self-test
    /// showing that the tester catches two leaders (exits 1).
    #[value(hide = true)]
    BrokenMemory,
}

impl BackendKind {
    /// The lower-case name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Blob => "blob",
            Self::Postgres => "postgres",
            Self::Etcd => "etcd",
            Self::S3 => "s3",
            Self::BrokenMemory => "broken-memory",
        }
    }
}

/// Everything needed to open a store for one contender; sent to child processes as JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BackendSpec {
    /// Which backend.
    pub(crate) kind: BackendKind,
    /// Redis URL.
    pub(crate) redis_url: String,
    /// Azure Storage connection string (a secret: never printed).
    pub(crate) connection_string: String,
    /// PostgreSQL URL (`postgres://user:password@host:port/db`).
    pub(crate) postgres_url: String,
    /// Redis `min_replica_acks` (`WAIT` for that many replicas before believing a write);
    /// `None`: the Redis backend's default.
    #[serde(default)]
    pub(crate) redis_min_replica_acks: Option<u32>,
    /// Redis key of the election.
    pub(crate) key: String,
    /// Blob container of the election.
    pub(crate) container: String,
    /// Blob name of the election.
    pub(crate) blob: String,
    /// etcd members' client URLs (`--backend etcd`); the key is the election key.
    #[serde(default)]
    pub(crate) etcd_endpoints: Vec<String>,
    /// S3 endpoint and bucket (the object key is `key`).
    #[serde(default)]
    pub(crate) s3: crate::s3::S3Spec,
}

impl fmt::Debug for BackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendSpec")
            .field("kind", &self.kind)
            .field("redis_url", &redact_url(&self.redis_url))
            .field("connection_string", &"<redacted>")
            .field("postgres_url", &redact_url(&self.postgres_url))
            .field("redis_min_replica_acks", &self.redis_min_replica_acks)
            .field("key", &self.key)
            .field("container", &self.container)
            .field("blob", &self.blob)
            .field("etcd_endpoints", &self.etcd_endpoints)
            .field("s3", &self.s3)
            .finish()
    }
}

/// A URL with any password replaced, for logs.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://<redacted>@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl BackendSpec {
    /// The TCP addresses of the server, for a contender's proxies to forward to: one, or every
    /// member of an etcd cluster (a contender cut off from all of them is partitioned); none
    /// for memory.
    ///
    /// # Errors
    /// When the URL or connection string names no `host:port` reachable as an IP address.
    pub(crate) fn upstreams(&self) -> Result<Vec<SocketAddr>, String> {
        let endpoints = match self.kind {
            BackendKind::Memory | BackendKind::BrokenMemory => return Ok(vec![]),
            BackendKind::Redis => vec![self.redis_url.clone()],
            BackendKind::Blob => vec![
                blob_endpoint(&self.connection_string)
                    .ok_or("the connection string has no BlobEndpoint=http://host:port/...")?,
            ],
            BackendKind::Postgres => vec![self.postgres_url.clone()],
            BackendKind::Etcd if self.etcd_endpoints.is_empty() => {
                return Err("no etcd endpoint".into());
            }
            BackendKind::Etcd => self.etcd_endpoints.clone(),
            BackendKind::S3 => vec![self.s3.endpoint.clone()],
        };
        endpoints.iter().map(|e| self.socket_addr(e)).collect()
    }

    /// The `host:port` of `endpoint` as a socket address, with the backend's default port.
    fn socket_addr(&self, endpoint: &str) -> Result<SocketAddr, String> {
        let (_, host_port, _) = split_url(endpoint)
            .ok_or_else(|| format!("cannot find host:port in {}", redact_url(endpoint)))?;
        let default_port = match self.kind {
            BackendKind::Redis => 6379,
            BackendKind::Postgres => 5432,
            BackendKind::Etcd => 2379,
            _ => 80,
        };
        let with_port = if host_port
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host_port.to_owned()
        } else {
            format!("{host_port}:{default_port}")
        };
        let with_port = with_port.replace("localhost:", "127.0.0.1:");
        with_port
            .parse::<SocketAddr>()
            .map_err(|_| format!("{with_port} is not an IP address and port; partitions need one"))
    }

    /// The same spec, reaching the server at `addrs` instead (a contender's proxies, in the
    /// order of [`upstreams`](Self::upstreams)).
    pub(crate) fn via(&self, addrs: &[SocketAddr]) -> Self {
        let mut spec = self.clone();
        let Some(&addr) = addrs.first() else {
            return spec;
        };
        match self.kind {
            BackendKind::Memory | BackendKind::BrokenMemory => {}
            BackendKind::Redis => {
                if let Some((prefix, _, rest)) = split_url(&self.redis_url) {
                    spec.redis_url = format!("{prefix}{addr}{rest}");
                }
            }
            BackendKind::Postgres => {
                if let Some((prefix, _, rest)) = split_url(&self.postgres_url) {
                    spec.postgres_url = format!("{prefix}{addr}{rest}");
                }
            }
            BackendKind::Etcd => {
                spec.etcd_endpoints = self
                    .etcd_endpoints
                    .iter()
                    .zip(addrs)
                    .map(|(endpoint, addr)| match split_url(endpoint) {
                        Some((prefix, _, rest)) => format!("{prefix}{addr}{rest}"),
                        None => endpoint.clone(),
                    })
                    .collect();
            }
            BackendKind::Blob => {
                if let Some(endpoint) = blob_endpoint(&self.connection_string)
                    && let Some((prefix, _, rest)) = split_url(&endpoint)
                {
                    let proxied = format!("{prefix}{addr}{rest}");
                    spec.connection_string = self.connection_string.replace(&endpoint, &proxied);
                }
            }
            BackendKind::S3 => {
                if let Some((prefix, _, rest)) = split_url(&self.s3.endpoint) {
                    spec.s3.endpoint = format!("{prefix}{addr}{rest}");
                }
            }
        }
        spec
    }

    /// Opens a store for one contender. `memory` is the one in-process store all memory
    /// contenders share.
    ///
    /// # Errors
    /// When the backend is not available in this build, or its configuration is refused.
    pub(crate) async fn open(
        &self,
        memory: &MemoryLeaseStore,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        match self.kind {
            BackendKind::Memory => Ok(BoxLeaseStore::new(memory.clone())),
            BackendKind::BrokenMemory => Ok(BoxLeaseStore::new(BrokenStore(memory.clone()))),
            BackendKind::Redis => redis_store(self, options).map(BoxLeaseStore::new),
            BackendKind::Blob => open_blob(self, options),
            BackendKind::Postgres => open_postgres(self, options),
            BackendKind::Etcd => crate::etcd::open_etcd(self, options),
            BackendKind::S3 => crate::s3::open(&self.s3, &self.key, options),
        }
    }
}

/// A PostgreSQL store for the spec's URL, with the election named by the key.
fn open_postgres(
    spec: &BackendSpec,
    options: &LeaderElectionOptions,
) -> Result<BoxLeaseStore, String> {
    PostgresLeaderElection::builder()
        .connection_string(spec.postgres_url.clone())
        .election(spec.key.clone())
        .options(options.clone())
        .build_store()
        .map(BoxLeaseStore::new)
        .map_err(|e| format!("postgres: {e}"))
}

/// A Redis store with the client the Redis crate's builder configures for leader election
/// (command and connection timeouts of `operation_timeout`, reconnecting for ever), waiting for
/// `redis_min_replica_acks` replicas when set.
pub(crate) fn redis_store(
    spec: &BackendSpec,
    options: &LeaderElectionOptions,
) -> Result<RedisLeaseStore, String> {
    let mut builder = RedisLeaderElection::builder()
        .url(spec.redis_url.as_str())
        .key(spec.key.as_str())
        .options(options.clone());
    if let Some(replicas) = spec.redis_min_replica_acks {
        builder = builder.min_replica_acks(replicas);
    }
    builder.build_store().map_err(|e| format!("redis: {e}"))
}

/// A blob store for the spec's connection string, container and blob.
fn open_blob(spec: &BackendSpec, options: &LeaderElectionOptions) -> Result<BoxLeaseStore, String> {
    BlobLeaderElection::builder()
        .connection_string(spec.connection_string.clone())
        .container_name(spec.container.clone())
        .blob_name(spec.blob.clone())
        .options(options.clone())
        .build_store()
        .map(BoxLeaseStore::new)
        .map_err(|e| format!("blob: {e}"))
}

/// The `BlobEndpoint=` value of a connection string.
fn blob_endpoint(connection_string: &str) -> Option<String> {
    connection_string.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("BlobEndpoint")
            .then(|| value.trim().to_owned())
    })
}

/// Splits `scheme://[user@]host:port/rest` into (`scheme://[user@]`, `host:port`, `/rest`).
fn split_url(url: &str) -> Option<(String, &str, &str)> {
    let scheme_end = url.find("://")? + 3;
    let after = &url[scheme_end..];
    let authority_end = after.find(['/', '?']).unwrap_or(after.len());
    let authority = &after[..authority_end];
    let (userinfo, host_port) = match authority.rfind('@') {
        Some(at) => (&authority[..=at], &authority[at + 1..]),
        None => ("", authority),
    };
    if host_port.is_empty() {
        return None;
    }
    Some((
        format!("{}{userinfo}", &url[..scheme_end]),
        host_port,
        &after[authority_end..],
    ))
}

/// An unsafe store for the tester's self-test: every acquisition takes the lease from whoever
/// holds it, and every renewal succeeds.
#[derive(Clone, Debug)]
pub(crate) struct BrokenStore(MemoryLeaseStore);

impl LeaseStore for BrokenStore {
    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        self.0.clear();
        self.0.try_acquire(request).await
    }

    async fn renew(&self, _request: &LeaseRequest, _lease: &Lease) -> Result<RenewOutcome> {
        Ok(RenewOutcome::Renewed)
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        self.0.release(request, lease).await
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        self.0.current_leader().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: BackendKind) -> BackendSpec {
        BackendSpec {
            kind,
            redis_url: "redis://:secret@127.0.0.1:6380/0".into(),
            connection_string: AZURITE_CONNECTION_STRING.into(),
            postgres_url: "postgres://app:secret@127.0.0.1:5433/app".into(),
            redis_min_replica_acks: None,
            key: "k".into(),
            container: "c".into(),
            blob: "b".into(),
            etcd_endpoints: vec![
                "http://127.0.0.1:2381".into(),
                "http://127.0.0.1:2382".into(),
            ],
            s3: crate::s3::S3Spec::default(),
        }
    }

    #[test]
    fn upstreams_come_from_the_url_or_connection_string() {
        assert_eq!(spec(BackendKind::Memory).upstreams(), Ok(vec![]));
        assert_eq!(
            spec(BackendKind::Redis).upstreams(),
            Ok(vec!["127.0.0.1:6380".parse().unwrap()])
        );
        assert_eq!(
            spec(BackendKind::Blob).upstreams(),
            Ok(vec!["127.0.0.1:10000".parse().unwrap()])
        );
        assert_eq!(
            spec(BackendKind::S3).upstreams(),
            Ok(vec!["127.0.0.1:5000".parse().unwrap()])
        );
        assert_eq!(
            spec(BackendKind::S3)
                .via(&["127.0.0.1:4242".parse().unwrap()])
                .s3
                .endpoint,
            "http://127.0.0.1:4242"
        );
        assert_eq!(
            spec(BackendKind::Postgres).upstreams(),
            Ok(vec!["127.0.0.1:5433".parse().unwrap()])
        );
        let postgres = spec(BackendKind::Postgres).via(&["127.0.0.1:4242".parse().unwrap()]);
        assert_eq!(
            postgres.postgres_url,
            "postgres://app:secret@127.0.0.1:4242/app"
        );
        // One proxy per etcd member, each endpoint rewritten to its own.
        assert_eq!(
            spec(BackendKind::Etcd).upstreams(),
            Ok(vec![
                "127.0.0.1:2381".parse().unwrap(),
                "127.0.0.1:2382".parse().unwrap()
            ])
        );
        let etcd = spec(BackendKind::Etcd).via(&[
            "127.0.0.1:4242".parse().unwrap(),
            "127.0.0.1:4243".parse().unwrap(),
        ]);
        assert_eq!(
            etcd.etcd_endpoints,
            ["http://127.0.0.1:4242", "http://127.0.0.1:4243"]
        );
        let mut none = spec(BackendKind::Etcd);
        none.etcd_endpoints.clear();
        assert!(none.upstreams().is_err());
        let mut s = spec(BackendKind::Redis);
        s.redis_url = "redis://localhost".into();
        assert_eq!(s.upstreams(), Ok(vec!["127.0.0.1:6379".parse().unwrap()]));
    }

    #[test]
    fn via_rewrites_only_the_host_and_port() {
        let addr: SocketAddr = "127.0.0.1:4242".parse().unwrap();
        let redis = spec(BackendKind::Redis).via(&[addr]);
        assert_eq!(redis.redis_url, "redis://:secret@127.0.0.1:4242/0");
        let blob = spec(BackendKind::Blob).via(&[addr]);
        assert!(
            blob.connection_string
                .contains("BlobEndpoint=http://127.0.0.1:4242/devstoreaccount1;")
        );
        assert!(blob.connection_string.contains("AccountKey=Eby8"));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let text = format!("{:?}", spec(BackendKind::Blob));
        assert!(!text.contains("Eby8"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
