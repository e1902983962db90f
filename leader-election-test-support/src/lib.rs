//! Test support for the leader-election workspace, in the spirit of `tower-test`: one home for
//! what the tests and examples of every crate need, so that nothing is copied from crate to
//! crate.
//!
//! The generic server fixtures live in the published crate `leader-election-fixtures` (which
//! the tester uses too) and are re-exported here under the same paths: [`RedisServer`],
//! [`RedisSentinel`], [`redis::RedisCluster`], [`EtcdCluster`], [`S3Emulator`] (moto),
//! [`S3rver`], [`FaultProxy`], [`TestCertificates`], [`free_port`] and the other small helpers.
//! This crate adds what needs a backend, or belongs to this workspace only:
//!
//! - Real servers on a free port of 127.0.0.1, started from local binaries and stopped by PID
//!   (also on drop): [`Azurite`], [`Postgres`]. With feature `docker` (on by default), a
//!   missing binary falls back to a testcontainers container when `docker info` succeeds
//!   (for the re-exported fixtures too).
//! - [`ErrorCount`]: how many errors an election reported.
//! - Small helpers: [`eventually`], [`unique_container`], [`unique_table`], the Azurite
//!   development account ([`azurite::ACCOUNT`], [`azurite::KEY`]).
//! - Feature `redis`: fred clients and stores for the Redis backend's tests ([`redis`],
//!   `RedisServerExt::client`).
//! - Feature `blob`: builders, stores, operator and SAS clients on an [`Azurite`] for the
//!   Blob backend's tests, and [`azurite::account_sas`].
//! - Feature `etcd`: stores and elections for the etcd backend's tests ([`etcd`]).
//! - Feature `s3`: elections, stores and an SDK client on an [`S3Emulator`] for the S3
//!   backend's tests (`S3EmulatorExt`), and builders on an [`S3rver`], a server that ignores
//!   conditional writes, which the backend must refuse (`S3rverExt`).
//! - Feature `postgres`: an admin connection to [`Postgres`], a TLS-only server
//!   ([`Postgres::start_tls`]), and [`PgBouncer`] in transaction mode in front of one.
//!
//! The safety checker is not here: it is `leader_election::testing::assert_safe` on terms a
//! `leader_election::testing::TermRecorder` recorded (one checker for every guarantee).

pub mod azurite;
pub mod bench;
#[cfg(feature = "blob")]
mod blob;
mod events;
mod eventually;
mod names;
#[cfg(feature = "postgres")]
mod pgbouncer;
pub mod postgres;
#[cfg(feature = "s3")]
mod s3_backend;

/// [`EtcdCluster`], from `leader-election-fixtures`, and with feature `etcd` stores and
/// elections on it for the etcd backend's tests.
pub mod etcd {
    pub use leader_election_fixtures::etcd::*;

    #[cfg(feature = "etcd")]
    mod backend;
    #[cfg(feature = "etcd")]
    pub use backend::*;
}

/// [`FaultProxy`], the TCP fault proxy of `leader-election-fixtures`.
pub mod proxy {
    pub use leader_election_fixtures::proxy::*;
}

/// The Redis fixtures of `leader-election-fixtures` ([`RedisServer`], [`RedisSentinel`],
/// [`RedisCluster`](redis::RedisCluster)); with feature `redis`, the Redis backend's test helpers: fred clients
/// (`RedisServerExt::client`), stores and elections for a URL, raw commands, and `prime` for
/// an election key.
pub mod redis {
    pub use leader_election_fixtures::redis::*;

    #[cfg(feature = "redis")]
    mod backend;
    #[cfg(feature = "redis")]
    pub use backend::*;
}

/// The S3 emulator of `leader-election-fixtures` ([`S3Emulator`], moto); with feature `s3`,
/// builders on it for the S3 backend's tests (`S3EmulatorExt`, `builder_at`).
pub mod s3 {
    pub use leader_election_fixtures::s3::*;

    #[cfg(feature = "s3")]
    pub use crate::s3_backend::{BUCKET, S3EmulatorExt, S3rverExt, builder_at};
}

/// [`S3rver`], an S3-compatible server that ignores conditional writes, from
/// `leader-election-fixtures`; with feature `s3`, `S3rverExt::builder` on it.
pub mod s3rver {
    pub use leader_election_fixtures::s3rver::*;

    #[cfg(feature = "s3")]
    pub use crate::s3_backend::S3rverExt;
}

pub use azurite::Azurite;
pub use events::ErrorCount;
pub use eventually::{Describe, Lazy, eventually, eventually_async, eventually_some, lazy};
pub use leader_election_fixtures::{
    EtcdCluster, FaultProxy, RedisOptions, RedisSentinel, RedisServer, S3Emulator, S3rver,
    TestCertificates, closed_port, docker_available, free_port, program_available, unique_name,
};
pub use names::{unique_container, unique_table, workspace_root};
#[cfg(feature = "postgres")]
pub use pgbouncer::PgBouncer;
pub use postgres::Postgres;
#[cfg(feature = "redis")]
pub use redis::RedisServerExt;
#[cfg(feature = "s3")]
pub use s3_backend::{S3EmulatorExt, S3rverExt};
