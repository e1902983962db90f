//! End-to-end on MySQL: runs the tester binary against a MariaDB server it starts
//! (`--spawn-mysql`, Debian's `mariadb-server`, installed by `scripts/install-mariadb.sh`) with
//! every fault kind the tester has for it (the server crashed and restarted on its data, the
//! operator's hands included), in process and with one process per contender, and checks its
//! JSON report.

mod common;

#[cfg(target_os = "linux")]
use common::network_faults_run;
use common::{LEASE_2S, assert_recovered_with_greater_tokens, safe_run, spawned_mixed_run};

#[test]
fn mysql_backend_with_mixed_faults_is_safe_and_recovers() {
    let report = spawned_mixed_run("mysql", 7, "server_restart");
    assert_eq!(report["spawned"], "mariadb");
    // A restart the leader came through keeps its term and token; every other fault
    // ends it, and the next term's token is greater.
    assert_recovered_with_greater_tokens(&report, "server_restart");
}

#[test]
fn mysql_operator_actions_on_contender_processes_are_survived() {
    // Each contender in its own process, given the spawned server's URL by the parent; the
    // parent deletes the lease row, overwrites it, and deletes every row of the election.
    let report = safe_run(
        &[
            &[
                "--backend",
                "mysql",
                "--spawn-mysql",
                "--key",
                "e2e-processes",
                "--processes",
                "--contenders",
                "3",
                "--duration",
                "40s",
                "--stop-after-faults",
                "3",
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
    for action in ["mysql_delete", "mysql_update_garbage", "mysql_delete_all"] {
        assert_eq!(recovery[action]["count"], 1, "{report:#}");
    }
    assert_eq!(report["all_faults_recovered"], true, "{report:#}");
}

/// Every network fault on the leader, each contender process in a network namespace of its
/// own, against MariaDB.
#[cfg(target_os = "linux")]
#[test]
fn network_faults_in_namespaces_are_survived_on_mysql() {
    let mut backend = vec!["--backend", "mysql", "--spawn-mysql", "--key", "e2e-netns"];
    backend.extend_from_slice(LEASE_2S);
    network_faults_run(&backend, 2000.0);
}
