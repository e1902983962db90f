//! End-to-end on S3: runs the tester binary against moto's S3 server (`--spawn-s3`, from
//! `.tools/moto`, installed by `scripts/install-moto.sh`) with every fault kind the tester has
//! for it, the operator's hands included, and checks its JSON report.

use std::process::Command;

use serde_json::Value;

const TESTER: &str = env!("CARGO_BIN_EXE_leader-election-tester");

#[test]
fn s3_backend_with_mixed_faults_is_safe_and_recovers() {
    let output = Command::new(TESTER)
        .args(["--backend", "s3", "--spawn-s3", "--key", "e2e-mixed"])
        .args(["--contenders", "4", "--duration", "90s"])
        // Graceful, crash, partition, resign, the emulator restarted empty, and the operator:
        // each once.
        .args(["--stop-after-faults", "6"])
        .args(["--lease-duration", "2s", "--renew-interval", "500ms"])
        .args(["--retry-interval", "250ms", "--fault-interval", "1s"])
        .args(["--faults", "mixed", "--report", "json", "--quiet"])
        .output()
        .expect("run the tester");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(output.status.success(), "{report:#}");
    assert_eq!(report["backend"], "s3");
    assert_eq!(report["overlap_count"], 0, "{report:#}");
    assert_eq!(report["tokens_monotonic"], true, "{report:#}");
    let faults = report["faults"].as_array().expect("faults");
    assert_eq!(report["spawned"], "s3-emulator");
    for kind in [
        "graceful",
        "crash",
        "partition",
        "resign",
        "server_restart",
        "operator",
    ] {
        assert!(
            faults.iter().any(|f| f["kind"] == kind),
            "no {kind} fault injected: {report:#}"
        );
    }
    for fault in faults {
        assert_eq!(fault["recovered"], true, "fault not recovered: {fault:#}");
    }
    // A release is taken over at the next poll; a crash only after the lease (2 s) was seen
    // unchanged for a whole lease.
    let graceful = report["graceful_handover_ms"]["max"].as_f64().unwrap();
    assert!(graceful < 1500.0, "{report:#}");
    let crash = report["crash_failover_ms"]["p50"].as_f64().unwrap();
    assert!((1000.0..5000.0).contains(&crash), "{report:#}");
}

#[test]
fn s3_backend_hands_over_to_the_preferred_contender() {
    // Contender 2 has the highest priority: another contender leading (first, or after each
    // graceful stop of contender 2, every 2 s) hands over to it after its minimum tenure,
    // which the S3 store does only if the tester forwards the candidate calls to it.
    let output = Command::new(TESTER)
        .args(["--backend", "s3", "--spawn-s3", "--key", "e2e-preferred"])
        .args(["--contenders", "3", "--priorities", "0,0,5"])
        .args(["--duration", "12s", "--faults", "graceful"])
        .args(["--lease-duration", "2s", "--renew-interval", "500ms"])
        .args(["--retry-interval", "250ms", "--min-tenure", "1s"])
        .args(["--report", "json", "--quiet"])
        .output()
        .expect("run the tester");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert!(output.status.success(), "{report:#}");
    assert_eq!(report["overlap_count"], 0, "{report:#}");
    assert_eq!(report["tokens_monotonic"], true, "{report:#}");
    let preferred = &report["preferred_handover_ms"];
    assert!(
        preferred["count"].as_u64().unwrap_or(0) >= 1,
        "no handover to the preferred contender: {report:#}"
    );
}
