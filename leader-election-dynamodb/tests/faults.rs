//! Faults against moto's DynamoDB: the emulator restarted empty (its tables gone), and on a
//! clock stepped back (the shared checks of `leader_election_test_support::conditional`).

mod common;

leader_election_test_support::emulator_faults!(common::OnDynamoDb);
