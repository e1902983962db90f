//! End-to-end on ZooKeeper: runs the tester binary against a three-server ensemble it starts
//! (`--spawn-zookeeper`, Debian's `zookeeper`, installed by `scripts/install-zookeeper.sh`)
//! with every fault kind the tester has for it (a server killed and started again, the
//! operator's hands on the znodes included), and checks its JSON report.

// The network-fault runs of the shared helpers are not used here.
#[allow(dead_code)]
mod common;

use common::{LEASE_2S, assert_injected, safe_run};

#[test]
fn zookeeper_backend_with_mixed_faults_is_safe_and_recovers() {
    let report = safe_run(
        &[
            &[
                "--backend",
                "zookeeper",
                "--spawn-zookeeper",
                "--key",
                "e2e-mixed",
                "--contenders",
                "4",
                "--duration",
                "90s",
                "--stop-after-faults",
                "7",
                "--fault-interval",
                "1s",
                "--faults",
                "mixed",
                "--report",
                "json",
                "--quiet",
            ],
            LEASE_2S,
        ]
        .concat(),
    );
    assert_eq!(report["backend"], "zookeeper");
    assert_eq!(report["spawned"], "zookeeper-ensemble");
    assert_injected(
        &report,
        &[
            "graceful",
            "crash",
            "partition",
            "resign",
            "server_handover",
            "operator",
        ],
    );
    for fault in report["faults"].as_array().expect("faults") {
        assert_eq!(fault["recovered"], true, "fault not recovered: {fault:#}");
        // A server kill the leader came through keeps its term and token (its session moves
        // to another server); every other fault ends it, and the next term's token is
        // greater.
        if fault["next_token"].is_u64() {
            assert!(
                fault["next_token"].as_u64() > fault["token"].as_u64(),
                "the next term's token must be greater: {fault:#}"
            );
        } else {
            assert_eq!(fault["kind"], "server_handover", "{fault:#}");
        }
    }
    assert_eq!(report["tokens_monotonic"], true, "{report:#}");
}
