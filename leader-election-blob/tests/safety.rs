//! The safety holes closed by the "Close the safety holes" issue, each against a real Azurite:
//! fencing tokens that must keep increasing when the blob (and its counter) is lost, one time
//! budget per acquisition, definite failures that are not "unknown", and errors that never
//! echo a huge input whole.

use leader_election_blob::BlobLeaderElection;

#[test]
fn errors_never_echo_a_huge_input_whole() {
    let huge = "x".repeat(100_000);
    let dev = || BlobLeaderElection::builder().connection_string("UseDevelopmentStorage=true");
    let err = dev().container_name(&huge).build_store().unwrap_err();
    let shown = err.to_string();
    assert!(
        shown.len() < 300,
        "{} bytes: {}",
        shown.len(),
        &shown[..300]
    );
    for connection in [
        format!("AccountName=a;{huge}="),
        format!("AccountName=a;{huge}=1"),
        format!("AccountName=a;{huge}"),
    ] {
        let err = BlobLeaderElection::builder()
            .connection_string(connection)
            .build_store()
            .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.len() < 300,
            "{} bytes: {}",
            shown.len(),
            &shown[..300]
        );
    }
}
