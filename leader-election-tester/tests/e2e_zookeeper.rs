//! End-to-end on ZooKeeper: runs the tester binary against a three-server ensemble it starts
//! (`--spawn-zookeeper`, Debian's `zookeeper`, installed by `scripts/install-zookeeper.sh`)
//! with every fault kind the tester has for it (a server killed and started again, the
//! operator's hands on the znodes included), and checks its JSON report.

mod common;

use common::{LEASE_2S, assert_injected, assert_recovered_with_greater_tokens, safe_run};

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
    // A server kill the leader came through keeps its term and token; every other fault
    // ends it, and the next term's token is greater.
    assert_recovered_with_greater_tokens(&report, "server_handover");
}
