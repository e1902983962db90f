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
