#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod azurite;
#[cfg(feature = "tls")]
mod certs;
pub mod etcd;
#[cfg(unix)]
pub mod faketime;
mod helpers;
pub mod mariadb;
#[cfg(all(feature = "netns", target_os = "linux"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "netns", target_os = "linux"))))]
pub mod netns;
mod nft;
pub mod pgbouncer;
pub mod postgres;
pub mod process;
pub mod proxy;
pub mod redis;
pub mod s3;
pub mod s3rver;
pub mod zookeeper;

pub use azurite::Azurite;
#[cfg(feature = "tls")]
pub use certs::TestCertificates;
pub use etcd::EtcdCluster;
pub use helpers::{
    closed_port, docker_available, free_port, program_available, temp_dir, tools_dir, unique_name,
    wait_for_port,
};
pub use mariadb::MariaDb;
pub use pgbouncer::PgBouncer;
pub use postgres::Postgres;
pub use process::ServerProcess;
pub use proxy::FaultProxy;
pub use redis::{RedisOptions, RedisSentinel, RedisServer, RedisTls};
pub use s3::S3Emulator;
pub use s3rver::S3rver;
pub use zookeeper::ZooKeeper;
