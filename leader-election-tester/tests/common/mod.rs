//! What the end-to-end tests share: running the tester binary and reading its JSON report.

use std::process::{Command, Output};

use serde_json::Value;

/// The tester binary of this build.
pub(crate) const TESTER: &str = env!("CARGO_BIN_EXE_leader-election-tester");

/// Runs the tester with `args` and waits for it.
pub(crate) fn run_tester(args: &[&str]) -> Output {
    Command::new(TESTER)
        .args(args)
        .output()
        .expect("run the tester")
}

/// The JSON report on the tester's stdout.
pub(crate) fn report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stdout:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// Runs the tester with `args` (`--report json` among them): it must exit 0 with a report of
/// no overlap and tokens that grow. Returns the report.
pub(crate) fn safe_run(args: &[&str]) -> Value {
    let output = run_tester(args);
    let report = report(&output);
    assert!(
        output.status.success(),
        "exit {:?}; stderr:\n{}\nreport: {report:#}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["overlap_count"], 0, "{report:#}");
    assert_eq!(report["tokens_monotonic"], true, "{report:#}");
    report
}

/// Runs the tester with `args`: it must refuse to run (exit status 2). Returns its stderr.
#[allow(dead_code, reason = "not every test binary has a refused run")]
pub(crate) fn setup_error(args: &[&str]) -> String {
    let output = run_tester(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    stderr
}

/// The timing of a 2 s lease (etcd's shortest with its default settings; the S3 tests').
#[allow(dead_code, reason = "etcd's tests need the etcd feature")]
pub(crate) const LEASE_2S: &[&str] = &[
    "--lease-duration",
    "2s",
    "--renew-interval",
    "500ms",
    "--retry-interval",
    "250ms",
];

/// Checks that faults of each of `kinds` were injected (and, as every fault, recovered from).
pub(crate) fn assert_injected(report: &Value, kinds: &[&str]) {
    let faults = report["faults"].as_array().expect("faults");
    for kind in kinds {
        assert!(
            faults.iter().any(|f| f["kind"] == *kind),
            "no {kind} fault injected: {report:#}"
        );
    }
}

/// Checks that every fault of the report was recovered from and that the term after it has a
/// greater token, except after a fault of kind `kept` (a server restart or kill the leader
/// may come through in its term, keeping its token), which may have no next term.
#[allow(
    dead_code,
    reason = "only the tests of backends whose server a term survives use it"
)]
pub(crate) fn assert_recovered_with_greater_tokens(report: &Value, kept: &str) {
    for fault in report["faults"].as_array().expect("faults") {
        assert_eq!(fault["recovered"], true, "fault not recovered: {fault:#}");
        if fault["next_token"].is_u64() {
            assert!(
                fault["next_token"].as_u64() > fault["token"].as_u64(),
                "the next term's token must be greater: {fault:#}"
            );
        } else {
            assert_eq!(fault["kind"], kept, "{fault:#}");
        }
    }
    assert_eq!(report["tokens_monotonic"], true, "{report:#}");
}

/// `--network netns` on `backend` (its flags, timing included): each contender process in a
/// network namespace of its own, and every network fault on the leader once: by nftables, a
/// partition (packets dropped both ways, no reset), its replies dropped, its requests dropped,
/// 20 % of its packets lost; by its relay, its traffic delayed past its operation_timeout with
/// jitter. Each is survived with no overlap and no token regression, and a
/// leader that hears nothing back stops believing it leads within its lease of its last
/// confirmed renewal. `None` where network namespaces cannot be made (it says why; as root,
/// the test command requires them).
#[cfg(target_os = "linux")]
#[allow(dead_code, reason = "not every backend's tests run the network faults")]
pub(crate) fn network_faults_run(backend: &[&str], lease_ms: f64) -> Option<Value> {
    network_faults_run_of(
        backend,
        lease_ms,
        &[
            "partition",
            "drop_replies",
            "drop_requests",
            "loss",
            "latency",
        ],
    )
}

/// [`network_faults_run`], where the tester injects `kinds` (`--faults network` on a backend
/// without a relay has no latency).
#[cfg(target_os = "linux")]
#[allow(dead_code, reason = "not every backend's tests run the network faults")]
pub(crate) fn network_faults_run_of(
    backend: &[&str],
    lease_ms: f64,
    kinds: &[&str],
) -> Option<Value> {
    leader_election_test_support::netns::NetLab::for_test()?;
    let faults = kinds.len().to_string();
    let mut args = backend.to_vec();
    args.extend_from_slice(&[
        "--processes",
        "--network",
        "netns",
        "--faults",
        "network",
        "--duration",
        "90s",
        "--stop-after-faults",
        &faults,
        "--fault-interval",
        "500ms",
        "--report",
        "json",
        "--quiet",
    ]);
    let report = safe_run(&args);
    assert_injected(&report, kinds);
    assert_eq!(report["all_faults_recovered"], true, "{report:#}");
    for &kind in kinds {
        let summary = &report["by_fault_kind"][kind];
        assert_eq!(summary["injected"], 1, "{kind}: {report:#}");
        assert_eq!(summary["overlaps"], 0, "{kind}: {report:#}");
        assert_eq!(summary["token_regressions"], 0, "{kind}: {report:#}");
    }
    for kind in ["partition", "drop_replies", "drop_requests", "latency"] {
        let believed = &report["by_fault_kind"][kind]["believed_after_last_confirmed_ms"];
        if let Some(max) = believed["max"].as_f64() {
            assert!(max < lease_ms, "{kind}: {believed}");
        }
    }
    Some(report)
}

/// `--backend <backend> --spawn-<backend>` with four contenders and `mixed` faults, stopped
/// after `faults` faults (at most 90 s), safe; every fault kind injected at least once:
/// graceful, crash, partition, resign, `server` (the server fault the spawned server gets) and
/// the operator. Returns the report.
#[allow(dead_code, reason = "only the tests of spawned servers use it")]
pub(crate) fn spawned_mixed_run(backend: &str, faults: u32, server: &str) -> Value {
    let spawn = format!("--spawn-{backend}");
    let faults = faults.to_string();
    let report = safe_run(
        &[
            &[
                "--backend",
                backend,
                &spawn,
                "--key",
                "e2e-mixed",
                "--contenders",
                "4",
                "--duration",
                "90s",
                "--stop-after-faults",
                &faults,
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
    assert_eq!(report["backend"], backend);
    assert_injected(
        &report,
        &[
            "graceful",
            "crash",
            "partition",
            "resign",
            server,
            "operator",
        ],
    );
    report
}

/// [`spawned_mixed_run`] on a moto emulator (`s3`, `dynamodb`), stopped after 6 faults, the
/// emulator restarted empty among them. Every fault is
/// recovered with a greater token, a release is taken over at the next poll, and a crash only
/// after the lease (2 s) was seen unchanged for a whole lease. Returns the report.
#[allow(dead_code, reason = "only the tests of the backends on moto use it")]
pub(crate) fn emulated_mixed_run(backend: &str) -> Value {
    let report = spawned_mixed_run(backend, 6, "server_restart");
    assert_eq!(report["spawned"], format!("{backend}-emulator"));
    for fault in report["faults"].as_array().expect("faults") {
        assert_eq!(fault["recovered"], true, "fault not recovered: {fault:#}");
        assert!(
            fault["next_token"].as_u64() > fault["token"].as_u64(),
            "the next term's token must be greater: {fault:#}"
        );
    }
    let graceful = report["graceful_handover_ms"]["max"].as_f64().unwrap();
    assert!(graceful < 1500.0, "{report:#}");
    let crash = report["crash_failover_ms"]["p50"].as_f64().unwrap();
    assert!((1000.0..5000.0).contains(&crash), "{report:#}");
    report
}
