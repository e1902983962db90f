//! Test support (feature `testing`): the conformance suite every [`LeaseStore`] must pass, and a
//! store wrapper that injects faults.
//!
//! [`LeaseStore`]: crate::LeaseStore

mod conformance;
mod faulty;

pub use conformance::{ConformanceOptions, run_conformance};
pub use faulty::{FaultControl, FaultyStore};
