//! Test support for the leader-election workspace, in the spirit of `tower-test`: one home for
//! what the tests, examples and the tester of every crate need, so that nothing is copied from
//! crate to crate.
//!
//! - Real servers on a free port of 127.0.0.1, started from local binaries and stopped by PID
//!   (also on drop): [`RedisServer`], [`Azurite`], [`Postgres`], [`S3Emulator`] (moto), [`S3rver`]. With feature `docker` (on by
//!   default), a missing binary falls back to a testcontainers container when `docker info`
//!   succeeds.
//! - A Redis Sentinel deployment of such servers, [`RedisSentinel`]: a primary, two replicas
//!   and three sentinels, with a forced failover.
//! - An etcd cluster of local members, [`EtcdCluster`] (one member, or three), whose members
//!   can be killed and restarted, administered with `etcdctl`.
//! - One TCP fault proxy, [`FaultProxy`]: black hole, reset, refuse, latency, switch target.
//! - [`ErrorCount`]: how many errors an election reported.
//! - Small helpers: [`free_port`], [`eventually`], [`unique_name`], the Azurite development
//!   account ([`azurite::ACCOUNT`], [`azurite::KEY`]).
//! - Feature `redis`: fred clients and stores for the Redis backend's tests ([`redis`]).
//! - Feature `blob`: builders, stores, operator and SAS clients on an [`Azurite`] for the
//!   Blob backend's tests, and [`azurite::account_sas`].
//! - Feature `etcd`: stores and elections for the etcd backend's tests ([`etcd`]).
//! - Feature `s3`: elections, stores and an SDK client on an [`S3Emulator`] for the S3
//!   backend's tests, and builders on an [`S3rver`], a server that ignores conditional writes
//!   (which the backend must refuse).
//! - Feature `postgres`: an admin connection to [`Postgres`], a TLS-only server
//!   ([`Postgres::start_tls`]), and [`PgBouncer`] in transaction mode in front of one.
//!
//! The safety checker is not here: it is `leader_election::testing::assert_safe` on terms a
//! `leader_election::testing::TermRecorder` recorded (one checker for every guarantee).

pub mod azurite;
pub mod bench;
#[cfg(feature = "blob")]
mod blob;
#[cfg(any(feature = "redis", feature = "postgres", feature = "etcd"))]
mod certs;
pub mod etcd;
mod events;
mod helpers;
#[cfg(feature = "postgres")]
mod pgbouncer;
pub mod postgres;
mod process;
pub mod proxy;
pub mod redis;
pub mod s3;
#[cfg(feature = "s3")]
mod s3_backend;
pub mod s3rver;

pub use azurite::Azurite;
#[cfg(any(feature = "redis", feature = "postgres", feature = "etcd"))]
pub use certs::TestCertificates;
pub use etcd::EtcdCluster;
pub use events::ErrorCount;
pub use helpers::{
    Describe, Lazy, closed_port, docker_available, eventually, eventually_async, eventually_some,
    free_port, lazy, program_available, unique_container, unique_name, unique_table,
    workspace_root,
};
#[cfg(feature = "postgres")]
pub use pgbouncer::PgBouncer;
pub use postgres::Postgres;
pub use proxy::FaultProxy;
pub use redis::{RedisOptions, RedisSentinel, RedisServer};
pub use s3::S3Emulator;
pub use s3rver::S3rver;
