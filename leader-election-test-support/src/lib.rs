//! Test support for the leader-election workspace, in the spirit of `tower-test`: one home for
//! what the tests and examples of every crate need, so that nothing is copied from crate to
//! crate.
//!
//! The generic server fixtures live in the published crate `leader-election-fixtures` (which
//! the tester uses too) and are re-exported here under the same paths: [`RedisServer`],
//! [`RedisSentinel`], [`redis::RedisCluster`], [`EtcdCluster`], [`S3Emulator`] (moto),
//! [`S3rver`], [`Azurite`] (with the development account, [`azurite::ACCOUNT`],
//! [`azurite::KEY`]), [`Postgres`], [`PgBouncer`], [`FaultProxy`], [`TestCertificates`],
//! [`free_port`] and the other small helpers. Each backend keeps its own helpers in its
//! `tests/common`, so this crate depends on no backend. It adds what every backend's tests share:
//!
//! - [`ErrorCount`]: how many errors an election reported; [`vars`]: environment variables for
//!   a configuration's `from_vars`.
//! - For a backend's generic suite (`tests/suite.rs`) and its other tests: [`Shared`] (a server
//!   the tests of one binary share), [`ProxyCut`] (a store cut off through a [`FaultProxy`]),
//!   [`one_leader`], [`token`], [`lead_then_follow`], [`stop_and_check`] and
//!   [`leader_again_after`].
//! - For real network faults (Linux, root): [`netns::NetworkChecks`], contenders each in a
//!   network namespace of their own and the checks every backend runs under packet faults,
//!   as tests through [`network_checks!`].
//! - For what an operator does to a store while an election runs: [`operator::Contenders`]
//!   (with the shared checks of a touched lease and a blanket clean-up),
//!   [`operator::assert_record`], and the SQL backends' touched-row checks as tests through
//!   [`sql_operator_checks!`].
//! - Small helpers: [`eventually`], [`unique_container`], [`unique_table`].
//!
//! The safety checker is not here: it is `leader_election::testing::assert_safe` on terms a
//! `leader_election::testing::TermRecorder` recorded (one checker for every guarantee).

pub mod bench;
pub mod conditional;
mod env;
mod events;
mod eventually;
mod names;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod operator;
mod suite;

/// [`Azurite`], from `leader-election-fixtures`, and the development account it serves.
pub mod azurite {
    pub use leader_election_fixtures::azurite::*;
}

/// [`EtcdCluster`], from `leader-election-fixtures`. The etcd backend's own helpers (builders,
/// stores, elections) are in its `tests/common/mod.rs`.
pub mod etcd {
    pub use leader_election_fixtures::etcd::*;
}

/// [`FaultProxy`], the TCP fault proxy of `leader-election-fixtures`.
pub mod proxy {
    pub use leader_election_fixtures::proxy::*;
}

/// The Redis fixtures of `leader-election-fixtures` ([`RedisServer`], [`RedisSentinel`],
/// [`RedisCluster`](redis::RedisCluster)). The Redis backend's own helpers (fred clients,
/// stores, `prime`) are in its `tests/common/mod.rs`.
pub mod redis {
    pub use leader_election_fixtures::redis::*;
}

/// The S3 emulator of `leader-election-fixtures` ([`S3Emulator`], moto).
pub mod s3 {
    pub use leader_election_fixtures::s3::*;
}

/// [`SteppedClock`](faketime::SteppedClock), a server's wall clock stepped under libfaketime,
/// from `leader-election-fixtures`.
pub mod faketime {
    pub use leader_election_fixtures::faketime::*;
}

/// [`S3rver`], an S3-compatible server that ignores conditional writes, from
/// `leader-election-fixtures`.
pub mod s3rver {
    pub use leader_election_fixtures::s3rver::*;
}

pub use env::vars;
pub use events::ErrorCount;
pub use eventually::{
    Describe, Lazy, eventually, eventually_async, eventually_some, lazy, throughout,
};
pub use leader_election_fixtures::{
    Azurite, EtcdCluster, FaultProxy, PgBouncer, Postgres, RedisOptions, RedisSentinel,
    RedisServer, S3Emulator, S3rver, TestCertificates, closed_port, docker_available, free_port,
    program_available, unique_name,
};
pub use names::{unique_container, unique_table, workspace_root};
pub use suite::{
    ProxyCut, Shared, acquire, acquired, follower_requests, lead_then_follow, leader_again_after,
    one_leader, stop_and_check, token,
};
