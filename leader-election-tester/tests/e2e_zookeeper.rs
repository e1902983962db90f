//! End-to-end on ZooKeeper: runs the tester binary against a three-server ensemble it starts
//! (`--spawn-zookeeper`, Debian's `zookeeper`, installed by `scripts/install-zookeeper.sh`)
//! with every fault kind the tester has for it (a server killed and started again, the
//! operator's hands on the znodes included), and checks its JSON report.

mod common;

use common::{assert_recovered_with_greater_tokens, spawned_mixed_run};

#[test]
fn zookeeper_backend_with_mixed_faults_is_safe_and_recovers() {
    let report = spawned_mixed_run("zookeeper", 7, "server_handover");
    assert_eq!(report["spawned"], "zookeeper-ensemble");
    // A server kill the leader came through keeps its term and token; every other fault
    // ends it, and the next term's token is greater.
    assert_recovered_with_greater_tokens(&report, "server_handover");
}
