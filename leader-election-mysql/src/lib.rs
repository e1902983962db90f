#![doc = include_str!("../README.md")]

mod builder;
mod config;
mod error;
mod names;
mod sql;
mod store;

pub use builder::{DEFAULT_POOL_SIZE, MysqlLeaderElection, MysqlLeaderElectionBuilder};
pub use config::MysqlConfig;
pub use leader_election::BuildError;
pub use store::{
    DEFAULT_ELECTION, DEFAULT_TABLE, MAX_METADATA_LEN, MAX_RECORD_LEN, MysqlLeaseStore,
};

pub use mysql_async;
