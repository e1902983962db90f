//! The proxy between one contender and the backend, which can cut that contender off while
//! every other contender keeps its own proxy and connection: the workspace's one fault proxy,
//! [`FaultProxy`](leader_election_test_support::FaultProxy). `set_cut(true)` closes the
//! connections it carries and refuses new ones (accepts and closes them); `set_cut(false)`
//! forwards again. Tested in `leader-election-test-support/tests/proxy.rs`.

pub(crate) use leader_election_test_support::FaultProxy as Proxy;
