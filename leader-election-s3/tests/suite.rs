//! The generic suite of the core (`leader_election::store_suite!`) on the S3 emulator (moto):
//! one emulator for the test binary, a key of its own per election, and a fault proxy in front
//! of it for the cut-off check (`leader_election_test_support::conditional::EmulatorFixture`).

mod common;

leader_election_test_support::emulator_suite!(common::OnS3);

/// Scheduled jobs on this backend: each occurrence once across three nodes, through a graceful
/// stop and a crash of a job's leader (the jobs crate's shared check).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs() {
    leader_election_jobs::testing::on_fixture(&*fixture().await).await;
}
