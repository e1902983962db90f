#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod config;
mod connection;
mod error;
mod hub;
mod scripts;
mod store;

#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod wait_tests;
// The tests' shared helpers, for the unit tests that need a server; they name this crate by
// its name, as the integration tests do.
#[cfg(test)]
extern crate self as leader_election_redis;
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
mod common;

pub use builder::{RedisLeaderElection, RedisLeaderElectionBuilder};
pub use config::RedisConfig;
pub use hub::ReleaseHub;
pub use leader_election::BuildError;
pub use store::{DEFAULT_KEY, MAX_KEY_LEN, MAX_METADATA_LEN, MAX_RECORD_LEN, RedisLeaseStore};

/// The fred crate this backend is built on, for building a client to pass to
/// [`RedisLeaderElectionBuilder::client`] or [`RedisLeaseStore::new`].
pub use fred;
/// The core crate, for its options, events and states.
pub use leader_election;

/// The workspace README's quick start, compiled as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadme;
