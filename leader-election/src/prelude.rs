//! `use leader_election::prelude::*;`: the election and the builder traits whose methods every
//! backend's builder offers (the option setters, `build`, the TLS setters), and the configuration loader
//! ([`BackendConfig`]: `from_env`, `into_builder`).

pub use crate::{
    BackendConfig, ElectionBuilder, ElectionEvent, LeaderElection, LeaderElectionOptions,
    LeaseStore, Role, TlsBuilder,
};
