#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod config;
mod error;
mod record;
mod store;
mod wire;

pub use builder::{DynamoDbLeaderElection, DynamoDbLeaderElectionBuilder};
pub use config::DynamoDbConfig;
pub use leader_election::BuildError;
pub use leader_election_aws::{DEFAULT_KEY, DEFAULT_REGION};
pub use store::{DynamoDbLeaseStore, DynamoDbObjects, MAX_METADATA_LEN, MAX_RECORD_LEN};
pub use wire::RequestCounts;

/// The AWS SDK crates this backend is built on, re-exported so that callers use the same
/// versions (for [`DynamoDbLeaderElectionBuilder::client`]).
pub mod aws {
    pub use aws_config;
    pub use aws_sdk_dynamodb;
}
