#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod clock;
mod config;
mod connection;
mod encoding;
mod error;
mod names;
mod shared_key;
mod store;

pub use builder::{
    BlobLeaderElection, BlobLeaderElectionBuilder, DEFAULT_API_VERSION, DEFAULT_BLOB_NAME,
    DEFAULT_CONTAINER_NAME,
};
pub use config::BlobConfig;
pub use leader_election::BuildError;
pub use store::{BlobLeaseStore, MAX_METADATA_LEN, MAX_RECORD_LEN};

/// The Azure SDK crates this backend is built on, re-exported so that callers use the same
/// versions (for [`BlobLeaderElectionBuilder::container_client`] and
/// [`BlobLeaderElectionBuilder::credential`]).
pub mod azure {
    pub use azure_core;
    pub use azure_storage_blob;
}
