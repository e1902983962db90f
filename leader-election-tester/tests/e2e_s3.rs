//! End-to-end on S3: runs the tester binary against moto's S3 server (`--spawn-s3`, from
//! `.tools/moto`, installed by `scripts/install-moto.sh`) with every fault kind the tester has
//! for it, the operator's hands included, and checks its JSON report.

mod common;

#[cfg(target_os = "linux")]
use common::network_faults_run;
use common::{LEASE_2S, emulated_mixed_run, safe_run};

#[test]
fn s3_backend_with_mixed_faults_is_safe_and_recovers() {
    emulated_mixed_run("s3");
}

#[test]
fn s3_backend_hands_over_to_the_preferred_contender() {
    // Contender 2 has the highest priority: another contender leading (first, or after each
    // graceful stop of contender 2) hands over to it after its minimum tenure. The S3 store
    // does that only if every layer between the election and the store forwards the candidate
    // calls (announce, strongest): a wrapper that dropped them switched preferred leaders off
    // without a word, and this run then saw no handover at all.
    let report = safe_run(
        &[
            &[
                "--backend",
                "s3",
                "--spawn-s3",
                "--key",
                "e2e-preferred",
                "--contenders",
                "3",
                "--priorities",
                "0,0,5",
                "--duration",
                "20s",
                "--faults",
                "graceful",
                "--stop-after-faults",
                "3",
                "--min-tenure",
                "1s",
                "--report",
                "json",
                "--quiet",
            ],
            LEASE_2S,
        ]
        .concat(),
    );
    // The candidate calls reached the store.
    assert!(
        report["backend_ops"]["by_operation"]["candidate"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "no candidate call: {report:#}"
    );
    // A leader with a lower priority handed over, and the priority-5 contender led next.
    let handovers = report["preferred_handovers"]
        .as_array()
        .unwrap_or_else(|| panic!("no handover to the preferred contender: {report:#}"));
    assert!(
        handovers
            .iter()
            .any(|h| h["to"] == 2 && h["to_priority"] == 5 && h["from"] != 2),
        "no handover to contender 2 (priority 5): {report:#}"
    );
    assert!(
        report["preferred_handover_ms"]["count"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{report:#}"
    );
}

/// Every network fault on the leader, each contender process in a network namespace of its
/// own, against the S3 emulator.
#[cfg(target_os = "linux")]
#[test]
fn network_faults_in_namespaces_are_survived_on_s3() {
    let mut backend = vec!["--backend", "s3", "--spawn-s3", "--key", "e2e-netns"];
    backend.extend_from_slice(LEASE_2S);
    network_faults_run(&backend, 2000.0);
}
