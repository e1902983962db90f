//! Test support (feature `testing`): the conformance suite every [`LeaseStore`] must pass, the
//! one safety checker of the workspace ([`assert_safe`] on recorded [`Term`]s), a store
//! wrapper that injects faults, and the checks every backend runs with real elections: racing
//! contenders ([`racing_handovers`]), a crashed or cut-off leader and its successor
//! ([`crashed_leader_is_replaced`], [`cut_off_leader_steps_down`]), the election controls and
//! preferred leaders; and the check of a backend's configuration type ([`check_config`]).
//!
//! [`LeaseStore`]: crate::LeaseStore

mod candidates;
mod config;
mod conformance;
mod controls;
mod faulty;
mod preferred;
mod race;
mod safety;
pub mod suite;
mod takeover;

pub use candidates::candidates_are_announced_and_expire;
pub use config::{ConfigCase, check_config};
pub use conformance::{
    Check, ConformanceOptions, current_leader_is_reported, exclusive_acquisition,
    expiry_frees_the_lease, metadata_is_published_with_the_lease,
    no_takeover_before_a_renewed_lease_expires, only_owner_releases, only_owner_renews,
    reacquire_by_owner_is_idempotent, records_are_compare_and_set, release_wakes_waiters,
    renewal_extends_the_lease, run_checks, run_conformance, tokens_increase_across_rebuilt_stores,
    tokens_strictly_increase,
};
pub use controls::{ControlsReport, MetadataReport, election_controls, leader_metadata};
pub use faulty::{FaultControl, FaultyStore};
pub use preferred::preferred_leader_handover;
pub use race::racing_handovers;
pub use safety::{
    Term, TermPair, TermRecorder, assert_safe, overlaps, token_regressions, tokens_increase,
};
pub use suite::{Cut, Fixture};
pub use takeover::{
    TakeoverOptions, TakeoverReport, crashed_leader_is_replaced, cut_off_leader_steps_down,
};
