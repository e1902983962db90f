#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod config;
mod connection;
mod error;
mod record;
mod store;
mod watch;

pub use builder::{EtcdLeaderElection, EtcdLeaderElectionBuilder, MIN_LEASE_DURATION};
pub use config::EtcdConfig;
pub use leader_election::BuildError;
pub use store::{
    ClaimKeepAlives, DEFAULT_KEY, EtcdLeaseStore, MAX_KEY_LEN, MAX_METADATA_LEN, MAX_RECORD_LEN,
};

/// The etcd-client crate this backend is built on, for building a client to pass to
/// [`EtcdLeaderElectionBuilder::client`].
pub use etcd_client;
/// The core crate, for its options, events and states.
pub use leader_election;
