#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod error;
mod sdk;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod wire;

pub use builder::{Checked, DEFAULT_KEY, DEFAULT_REGION, GivenClient, Target};
pub use error::{Detail, failure};
pub use leader_election::store::conditional::ServiceSettings;
pub use sdk::{ServiceClient, one_attempt, sdk_config};
pub use wire::{Tally, Wire, WireInterceptor};
