#![doc = include_str!("../README.md")]

mod builder;
mod config;
mod error;
mod node;
mod store;

pub use builder::{ZooKeeperLeaderElection, ZooKeeperLeaderElectionBuilder};
pub use config::ZooKeeperConfig;
pub use leader_election::BuildError;
pub use store::{DEFAULT_PATH, MAX_METADATA_LEN, ZooKeeperLeaseStore};

pub use zookeeper_client;
