#![doc = include_str!("../README.md")]
// Without feature `tls` the connector is `NoTls`, which is `Copy`; with it, a clone is needed.
#![cfg_attr(not(feature = "tls"), allow(clippy::clone_on_copy))]

mod builder;
mod config;
mod connection;
mod error;
mod listener;
mod names;
mod sql;
mod store;
mod tls;

pub use builder::{DEFAULT_POOL_SIZE, PostgresLeaderElection, PostgresLeaderElectionBuilder};
pub use config::PostgresConfig;
pub use leader_election::BuildError;
pub use store::{
    DEFAULT_ELECTION, DEFAULT_TABLE, MAX_METADATA_LEN, MAX_RECORD_LEN, PostgresLeaseStore,
};

pub use deadpool_postgres;
pub use tokio_postgres;
