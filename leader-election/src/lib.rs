#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod election;
mod error;
mod event;
mod memory;
pub mod metrics;
mod options;
mod runner;
mod state;
mod store;
mod token;

#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use election::{Health, LeaderElection, TaskOutcome};
pub use error::{BoxError, ConfigError, Error, Operation, Result, SharedError};
pub use event::{ChangeReason, ElectionEvent};
pub use memory::MemoryLeaseStore;
pub use options::{
    ENV_PREFIX, LeaderElectionOptions, MAX_DURATION, MAX_INSTANCE_ID_LEN, default_instance_id,
};
pub use state::{ElectionState, Leadership, Role};
pub use store::{
    AcquireOutcome, LeaderInfo, Lease, LeaseRequest, LeaseStore, ReleaseNotifier, ReleaseReceiver,
    RenewOutcome, new_lease_id,
};
pub use token::FencingToken;
