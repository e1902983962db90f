#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod backend;
mod backoff;
mod builder;
mod election;
mod error;
mod event;
pub mod metrics;
mod observer;
mod options;
pub mod prelude;
pub mod priority;
mod runner;
mod state;
pub mod store;
mod token;
mod transition;

#[cfg(any(test, feature = "testing"))]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use backend::{BackendConfig, BuildError};
pub use builder::{Builder, ElectionBuilder, TlsBuilder};
pub use election::{Health, LeaderElection, TaskOutcome};
pub use error::{BoxError, ConfigError, Error, Operation, Result, SharedError};
pub use event::{ChangeReason, ElectionEvent};
pub use observer::LeaderObserver;
pub use options::LeaderElectionOptions;
pub use state::{ElectionState, Leadership, Role};
pub use store::{BoxLeaseStore, LeaderInfo, LeaseStore, MemoryLeaseStore};
pub use token::FencingToken;
