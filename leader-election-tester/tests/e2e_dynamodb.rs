//! End-to-end on DynamoDB: runs the tester binary against moto's server (`--spawn-dynamodb`,
//! from `.tools/moto`, installed by `scripts/install-moto.sh`: the S3 emulator serves DynamoDB
//! too) with every fault kind the tester has for it, the operator's hands included, in process
//! and with one process per contender, and checks its JSON report.

mod common;

#[cfg(target_os = "linux")]
use common::network_faults_run;
use common::{LEASE_2S, emulated_mixed_run, safe_run};

#[test]
fn dynamodb_backend_with_mixed_faults_is_safe_and_recovers() {
    emulated_mixed_run("dynamodb");
}

#[test]
fn dynamodb_operator_actions_on_contender_processes_are_survived() {
    // Each contender in its own process, given its backend flags (the spawned emulator's
    // endpoint, the table) by the parent; the parent deletes the lease item, then overwrites
    // it with garbage.
    let report = safe_run(
        &[
            &[
                "--backend",
                "dynamodb",
                "--spawn-dynamodb",
                "--dynamodb-table",
                "e2e-processes",
                "--processes",
                "--contenders",
                "3",
                "--duration",
                "40s",
                "--stop-after-faults",
                "2",
                "--faults",
                "operator",
                "--report",
                "json",
                "--quiet",
            ],
            LEASE_2S,
        ]
        .concat(),
    );
    assert_eq!(report["processes"], true);
    let recovery = &report["operator_recovery_ms"];
    for action in ["dynamodb_delete", "dynamodb_overwrite"] {
        assert_eq!(recovery[action]["count"], 1, "{report:#}");
    }
    assert_eq!(report["all_faults_recovered"], true, "{report:#}");
}

/// Every network fault on the leader, each contender process in a network namespace of its
/// own, against the DynamoDB emulator.
#[cfg(target_os = "linux")]
#[test]
fn network_faults_in_namespaces_are_survived_on_dynamodb() {
    let mut backend = vec![
        "--backend",
        "dynamodb",
        "--spawn-dynamodb",
        "--key",
        "e2e-netns",
    ];
    backend.extend_from_slice(LEASE_2S);
    network_faults_run(&backend, 2000.0);
}
