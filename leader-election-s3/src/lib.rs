#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod config;
mod error;
mod record;
mod store;
mod wire;

pub use builder::{S3LeaderElection, S3LeaderElectionBuilder};
pub use config::S3Config;
pub use leader_election::BuildError;
pub use leader_election_aws::{DEFAULT_KEY, DEFAULT_REGION};
pub use store::{MAX_METADATA_LEN, MAX_RECORD_LEN, S3LeaseStore, S3Objects};
pub use wire::RequestCounts;

/// The AWS SDK crates this backend is built on, re-exported so that callers use the same
/// versions (for [`S3LeaderElectionBuilder::client`]).
pub mod aws {
    pub use aws_config;
    pub use aws_sdk_s3;
}
