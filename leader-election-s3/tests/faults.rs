//! Faults against a real S3 emulator (moto): the emulator restarted empty, and on a clock
//! stepped back (the shared checks of `leader_election_test_support::conditional`).

mod common;

leader_election_test_support::emulator_faults!(common::OnS3);
