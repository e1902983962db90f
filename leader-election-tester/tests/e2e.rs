//! End-to-end: runs the tester binary for a few seconds with faults and checks its JSON report.

use std::process::{Command, Output};

use leader_election_fixtures::Postgres;
#[cfg(feature = "etcd")]
use leader_election_test_support::EtcdCluster;
use leader_election_test_support::{Azurite, RedisServer, closed_port, program_available};
use serde_json::Value;

mod common;

#[cfg(feature = "etcd")]
use common::LEASE_2S;
use common::{TESTER, assert_injected, report, run_tester, safe_run, setup_error};
#[cfg(target_os = "linux")]
use common::{network_faults_run, network_faults_run_of};

/// Short leases so that every kind of fault plays out within a few seconds.
const FAST: &[&str] = &[
    "--lease-duration",
    "1s",
    "--renew-interval",
    "300ms",
    "--retry-interval",
    "100ms",
    "--fault-interval",
    "500ms",
    "--faults",
    "mixed",
    "--report",
    "json",
    "--quiet",
];

/// The checks every faulty run must pass: safe, and every kind of fault injected and followed
/// by a new leader with a greater token.
fn assert_safe_and_recovered(report: &Value, output: &Output, backend: &str) {
    assert!(
        output.status.success(),
        "exit {:?}; stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(report["backend"], backend);
    assert_eq!(report["overlap_count"], 0, "{report:#}");
    assert_eq!(report["max_overlap_ms"], 0.0);
    assert_eq!(report["tokens_monotonic"], true, "{report:#}");
    let faults = report["faults"].as_array().expect("faults");
    for kind in ["graceful", "crash", "partition"] {
        assert!(
            faults.iter().any(|f| f["kind"] == kind),
            "no {kind} fault injected: {report:#}"
        );
    }
    for fault in faults {
        assert_eq!(fault["recovered"], true, "fault not recovered: {fault:#}");
        assert!(
            fault["next_token"].as_u64() > fault["token"].as_u64(),
            "the next term's token must be greater: {fault:#}"
        );
    }
    assert!(report["terms"].as_u64().unwrap() > faults.len() as u64);
    let graceful = &report["graceful_handover_ms"];
    assert!(graceful["count"].as_u64().unwrap() >= 1);
    // A graceful stop releases the lease: the next leader takes over long before it expires.
    assert!(graceful["max"].as_f64().unwrap() < 500.0, "{graceful}");
    let crash = &report["crash_failover_ms"];
    assert!(crash["count"].as_u64().unwrap() >= 1);
    // After a crash the lease must expire first: at least (nearly) a lease, but not much more.
    let p50 = crash["p50"].as_f64().unwrap();
    assert!((800.0..3000.0).contains(&p50), "{crash}");
    assert!(report["backend_ops"]["total"].as_u64().unwrap() > 0);
}

#[test]
fn memory_backend_with_faults_is_safe_and_recovers() {
    let dir = std::env::temp_dir().join(format!("tester-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let svg = dir.join("timeline.svg");
    let svg_arg = svg.to_str().unwrap();
    let mut args = vec![
        "--backend",
        "memory",
        "--duration",
        "30s",
        "--stop-after-faults",
        "3",
        "--timeline",
        svg_arg,
    ];
    args.extend_from_slice(FAST);
    let output = run_tester(&args);
    let report = report(&output);
    assert_safe_and_recovered(&report, &output, "memory");
    // --stop-after-faults ends the run once the third fault played out, long before 30 s.
    assert_eq!(report["faults"].as_array().unwrap().len(), 3, "{report:#}");
    assert!(report["duration_s"].as_f64().unwrap() < 25.0, "{report:#}");
    assert_eq!(report["contenders"], 3);
    assert_eq!(report["lease_duration_ms"], 1000.0);
    let timeline = std::fs::read_to_string(&svg).expect("timeline written");
    assert!(timeline.starts_with("<svg"), "{timeline}");
    assert!(timeline.contains("c0") && timeline.contains("c2"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run too short for the faults it was asked for says so: a warning naming each kind and the
/// duration it needs, a report field, exit status 3 (safe, but not what was asked).
#[test]
fn a_fault_kind_never_injected_is_a_warning_a_field_and_exit_3() {
    let output = run_tester(&[
        "--backend",
        "memory",
        "--duration",
        "3s",
        "--lease-duration",
        "1s",
        "--renew-interval",
        "300ms",
        "--faults",
        "mixed",
        "--report",
        "json",
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let report = report(&output);
    assert_eq!(report["safe"], true, "{report:#}");
    let missing = report["faults_not_injected"].as_array().expect("field");
    assert!(
        missing.iter().any(|m| m["kind"] == "crash"),
        "a 3 s run has no room for a crash: {report:#}"
    );
    let needs = missing[0]["run_needs_s"].as_f64().unwrap();
    assert!(needs > 3.0, "{report:#}");
    assert!(
        stderr.contains("never injected it") && stderr.contains(&format!("--duration {needs}s")),
        "{stderr}"
    );
}

#[test]
fn a_broken_backend_is_caught_and_fails_the_run() {
    // The hidden self-test backend grants the lease to every asker.
    let output = run_tester(&[
        "--backend",
        "broken-memory",
        "--duration",
        "2s",
        "--lease-duration",
        "1s",
        "--renew-interval",
        "300ms",
        "--faults",
        "none",
        "--report",
        "json",
        "--quiet",
    ]);
    assert_eq!(output.status.code(), Some(1), "an unsafe run must exit 1");
    let report = report(&output);
    assert!(report["overlap_count"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["max_overlap_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(report["safe"], false);
}

#[test]
fn processes_need_a_shared_backend() {
    let stderr = setup_error(&["--backend", "memory", "--processes", "--duration", "1s"]);
    assert!(
        stderr.contains("--processes needs a backend shared"),
        "{stderr}"
    );
}

#[test]
fn a_namespace_partition_needs_contender_processes() {
    let stderr = setup_error(&[
        "--backend",
        "redis",
        "--network",
        "netns",
        "--duration",
        "1s",
    ]);
    assert!(
        stderr.contains("--network netns needs --processes"),
        "{stderr}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn network_faults_in_namespaces_are_survived_on_redis() {
    let backend = [
        "--backend",
        "redis",
        "--spawn-redis",
        "--lease-duration",
        "1s",
        "--renew-interval",
        "300ms",
        "--retry-interval",
        "100ms",
    ];
    let Some(report) = network_faults_run(&backend, 1000.0) else {
        return;
    };
    // The cut leader's lease runs out on the server before anybody else leads.
    let failover = &report["partition_failover_ms"];
    assert!(failover["p50"].as_f64().unwrap() >= 600.0, "{failover}");
}

/// Through a Sentinel deployment the tester starts, announced at the network lab's host
/// address: every packet fault on the leader (no latency: no relay stands between a contender
/// and the nodes the sentinels name).
#[cfg(target_os = "linux")]
#[test]
fn network_faults_in_namespaces_are_survived_through_sentinel() {
    let backend = [
        "--backend",
        "redis",
        "--spawn-redis",
        "sentinel",
        "--lease-duration",
        "1s",
        "--renew-interval",
        "300ms",
        "--retry-interval",
        "100ms",
    ];
    let kinds = ["partition", "drop_replies", "drop_requests", "loss"];
    let Some(report) = network_faults_run_of(&backend, 1000.0, &kinds) else {
        return;
    };
    assert_eq!(report["spawned"], "sentinel", "{report:#}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn network_faults_in_namespaces_are_survived_on_postgres() {
    let server = Postgres::start().await;
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port());
    let backend = [
        "--backend",
        "postgres",
        "--postgres-url",
        &url,
        "--key",
        "e2e-netns",
        "--lease-duration",
        "1s",
        "--renew-interval",
        "300ms",
        "--retry-interval",
        "100ms",
    ];
    network_faults_run(&backend, 1000.0);
}

#[cfg(all(target_os = "linux", feature = "etcd"))]
#[test]
fn network_faults_in_namespaces_are_survived_on_etcd() {
    let mut backend = vec!["--backend", "etcd", "--spawn-etcd"];
    backend.extend_from_slice(LEASE_2S);
    network_faults_run(&backend, 2000.0);
}

/// Ctrl-C (SIGINT) in the middle of a `--network netns` run: the tester stops every contender,
/// reports what ran, and leaves no namespace, bridge or link behind.
#[cfg(target_os = "linux")]
#[test]
fn an_interrupted_netns_run_reports_and_leaves_nothing_behind() {
    use leader_election_fixtures::netns::leftovers;
    if leader_election_test_support::netns::NetLab::for_test().is_none() {
        return;
    }
    let mut child = Command::new(TESTER)
        .args([
            "--backend",
            "redis",
            "--spawn-redis",
            "--processes",
            "--network",
            "netns",
            "--faults",
            "partition",
            "--duration",
            "60s",
            "--lease-duration",
            "1s",
            "--renew-interval",
            "300ms",
            "--report",
            "json",
            "--quiet",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the tester");
    let stem = format!("le{:x}x", child.id());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while leftovers(&stem).unwrap().len() < 3 {
        assert!(
            std::time::Instant::now() < until,
            "the run made no namespaces"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Its reads on stdout and stderr, so that a full pipe never holds it up.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut text).map(|_| text)
    });
    let stderr = std::thread::spawn(move || {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut text).map(|_| text)
    });
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() >= until {
            let _ = child.kill();
            panic!("the tester did not end within 30 s of Ctrl-C");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = Output {
        status,
        stdout: stdout.join().unwrap().unwrap(),
        stderr: stderr.join().unwrap().unwrap(),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("interrupted (Ctrl-C)"), "{stderr}");
    let report = report(&output);
    assert_eq!(report["overlap_count"], 0, "{report:#}");
    assert_eq!(leftovers(&stem).unwrap(), Vec::<String>::new());
}

/// Whether libfaketime is here for `--clock-faults`; where it is not, says why (and fails when
/// `CLOCK_FAULT_TESTS=required`, as the test command sets it as root).
#[cfg(target_os = "linux")]
fn faketime_available() -> bool {
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .any(|dir| dir.path().join("faketime/libfaketime.so.1").is_file());
    if !found {
        let why = "libfaketime is not installed (scripts/install-faketime.sh installs it)";
        assert!(
            std::env::var("CLOCK_FAULT_TESTS").as_deref() != Ok("required"),
            "{why}"
        );
        eprintln!("skipped: {why}");
    }
    found
}

/// The timing of the clock-fault runs: a 1 s lease on a spawned Redis, contender processes.
#[cfg(target_os = "linux")]
const CLOCK_RUN: &[&str] = &[
    "--backend",
    "redis",
    "--spawn-redis",
    "--processes",
    "--duration",
    "60s",
    "--retry-interval",
    "100ms",
    "--fault-interval",
    "500ms",
    "--report",
    "json",
    "--quiet",
];

/// A safe run of [`CLOCK_RUN`] with `--clock-faults mode`, `--faults faults`, a lease of
/// `lease` renewed every `renew`, ending after `faults_count` faults; `None` without
/// libfaketime (see [`faketime_available`]).
#[cfg(target_os = "linux")]
fn clock_run(
    mode: &str,
    faults: &str,
    faults_count: &str,
    (lease, renew): (&str, &str),
) -> Option<Value> {
    if !faketime_available() {
        return None;
    }
    let mut args = CLOCK_RUN.to_vec();
    args.extend_from_slice(&[
        "--lease-duration",
        lease,
        "--renew-interval",
        renew,
        "--clock-faults",
        mode,
        "--faults",
        faults,
        "--stop-after-faults",
        faults_count,
    ]);
    let report = safe_run(&args);
    assert_eq!(report["clock_faults"], mode, "{report:#}");
    Some(report)
}

/// `--clock-faults step`: the leader's wall clock stepped 30 s forward, then (the next time)
/// back, its monotonic clock untouched. Deadlines never read the wall clock: the leader keeps
/// its term through each step and nobody else leads.
#[cfg(target_os = "linux")]
#[test]
fn wall_clock_steps_end_no_term() {
    // A lease long enough that a loaded machine never ends the term for another reason: the
    // test is that the steps do not.
    let Some(report) = clock_run("step", "clock-step", "2", ("3s", "500ms")) else {
        return;
    };
    let faults = report["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 2, "{report:#}");
    for fault in faults {
        assert_eq!(fault["kind"], "clock_step");
        assert_eq!(fault["recovered"], true, "{fault:#}");
        // The leader kept its term: no term began while its clock was off.
        assert!(fault["next_leader"].is_null(), "{fault:#}");
    }
    assert_eq!(report["terms"], 1, "{report:#}");
}

/// `--clock-faults rate`: contender processes whose clocks, monotonic included, run 0.4 %
/// fast, 0.4 % slow or exact, within the default `clock_drift_rate` of each other, through
/// graceful stops, crashes, partitions and resignations: never two leaders.
#[cfg(target_os = "linux")]
#[test]
fn clocks_running_fast_or_slow_within_the_drift_are_safe() {
    let Some(report) = clock_run("rate", "mixed", "4", ("1s", "300ms")) else {
        return;
    };
    assert_injected(&report, &["graceful", "crash", "partition", "resign"]);
    assert_eq!(report["all_faults_recovered"], true, "{report:#}");
}

#[test]
fn invalid_timing_is_refused_clearly() {
    let stderr = setup_error(&[
        "--lease-duration",
        "1s",
        "--renew-interval",
        "2s",
        "--duration",
        "1s",
    ]);
    assert!(stderr.contains("renew_interval"), "{stderr}");
}

#[test]
fn an_unreachable_backend_is_reported_clearly() {
    let port = closed_port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    let stderr = setup_error(&[
        "--backend",
        "redis",
        "--redis-url",
        &url,
        "--duration",
        "1s",
    ]);
    assert!(stderr.contains("cannot reach Redis"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    // Nothing listens: the hint to start it fits.
    assert!(stderr.contains("docker compose up -d redis"), "{stderr}");
}

#[tokio::test]
async fn a_postgres_that_refuses_the_connection_says_why() {
    // A server that takes TLS only, asked for plain text: it answers, and its answer is the
    // whole story (not "db error", and no hint to start a server that runs).
    let server = Postgres::start_tls().await;
    let url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        server.port()
    );
    let stderr = setup_error(&[
        "--backend",
        "postgres",
        "--postgres-url",
        &url,
        "--duration",
        "1s",
    ]);
    assert!(
        stderr.contains("pg_hba.conf")
            && stderr.contains("no encryption")
            && stderr.contains("SQLSTATE 28000"),
        "{stderr}"
    );
    assert!(!stderr.contains("db error"), "{stderr}");
    assert!(!stderr.contains("docker compose"), "{stderr}");

    // Nothing listens: the hint fits.
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", closed_port());
    let stderr = setup_error(&[
        "--backend",
        "postgres",
        "--postgres-url",
        &url,
        "--duration",
        "1s",
    ]);
    assert!(stderr.contains("Connection refused"), "{stderr}");
    assert!(stderr.contains("docker compose up -d postgres"), "{stderr}");
}

// === Redis ===

#[tokio::test]
async fn redis_backend_with_faults_is_safe_and_recovers() {
    let server = RedisServer::start().await;
    let url = server.url();
    let mut args = vec![
        "--backend",
        "redis",
        "--redis-url",
        &url,
        "--key",
        "e2e-in-process",
        "--duration",
        "40s",
        "--stop-after-faults",
        "5",
    ];
    args.extend_from_slice(FAST);
    let output = run_tester(&args);
    let report = report(&output);
    assert_safe_and_recovered(&report, &output, "redis");
    assert_injected(&report, &["resign", "operator"]);
    assert!(report["resign_handover_ms"]["max"].as_f64().unwrap() < 500.0);
    assert_eq!(report["processes"], false);
}

#[tokio::test]
async fn postgres_backend_with_faults_is_safe_and_recovers() {
    let server = Postgres::start().await;
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port());
    let mut args = vec![
        "--backend",
        "postgres",
        "--postgres-url",
        &url,
        "--key",
        "e2e-postgres",
        "--duration",
        "40s",
        "--stop-after-faults",
        "5",
    ];
    args.extend_from_slice(FAST);
    let output = run_tester(&args);
    let report = report(&output);
    assert_safe_and_recovered(&report, &output, "postgres");
    assert_injected(&report, &["resign", "operator"]);
}

#[tokio::test]
async fn redis_backend_with_one_process_per_contender_is_safe_and_recovers() {
    let server = RedisServer::start().await;
    let url = server.url();
    let mut args = vec![
        "--backend",
        "redis",
        "--redis-url",
        &url,
        "--key",
        "e2e-processes",
        "--processes",
        "--duration",
        "30s",
        "--stop-after-faults",
        "3",
    ];
    args.extend_from_slice(FAST);
    let output = run_tester(&args);
    let report = report(&output);
    assert_safe_and_recovered(&report, &output, "redis");
    assert_eq!(report["processes"], true);
}

#[test]
fn redis_server_restarts_and_pauses_are_survived() {
    assert!(
        program_available("redis-server"),
        "no redis-server on PATH; run scripts/install-redis.sh (./scripts/test.sh does)"
    );
    // The tester starts its own server, kills and restarts it (empty), and freezes it.
    // Graceful, crash, partition, resign, then the server restart and pause.
    let mut args = vec![
        "--backend",
        "redis",
        "--spawn-redis",
        "--duration",
        "50s",
        "--stop-after-faults",
        "6",
    ];
    args.extend_from_slice(FAST);
    let output = run_tester(&args);
    let report = report(&output);
    assert_safe_and_recovered(&report, &output, "redis");
    let faults = report["faults"].as_array().unwrap();
    for kind in ["server_restart", "server_pause"] {
        assert!(
            faults.iter().any(|f| f["kind"] == kind),
            "no {kind}: {report:#}"
        );
    }
    assert!(
        report["server_fault_recovery_ms"]["count"]
            .as_u64()
            .unwrap()
            >= 2
    );
}

/// A safe tester run of at most `duration` on the spawned Redis `topology`, with one fault of
/// `fault` (a `--faults` value) on a 1 s lease. Returns the report.
fn spawned_redis_run(topology: &str, fault: &str, duration: &str) -> Value {
    safe_run(&[
        "--backend",
        "redis",
        "--spawn-redis",
        topology,
        "--faults",
        fault,
        "--duration",
        duration,
        "--stop-after-faults",
        "1",
        "--lease-duration",
        "1s",
        "--renew-interval",
        "300ms",
        "--retry-interval",
        "100ms",
        "--fault-interval",
        "500ms",
        "--report",
        "json",
        "--quiet",
    ])
}

/// A tester run on the spawned `topology` with one `server-failover` fault (1 s lease):
/// it must succeed with at least one failover, no overlap, tokens that grow, every fault
/// recovered, and the fence measured after a completed failover. Returns the report.
fn server_failover_run(topology: &str) -> Value {
    let report = spawned_redis_run(topology, "server-failover", "50s");
    assert_eq!(report["spawned"], topology);
    let faults = report["faults"].as_array().unwrap();
    assert!(
        faults.iter().any(|f| f["kind"] == "server_failover"),
        "no failover: {report:#}"
    );
    for fault in faults {
        assert_eq!(fault["recovered"], true, "fault not recovered: {fault:#}");
        assert!(fault["next_token"].as_u64() > fault["token"].as_u64());
    }
    assert!(
        report["server_failover_after_complete_ms"]["count"]
            .as_u64()
            .unwrap()
            >= 1,
        "{report:#}"
    );
    report
}

#[test]
fn redis_sentinel_failovers_are_survived() {
    assert!(
        program_available("redis-sentinel"),
        "no redis-sentinel on PATH; run scripts/install-redis.sh (./scripts/test.sh does)"
    );
    // The tester starts a primary, two replicas and three sentinels, and forces a failover
    // (which Sentinel completes about 11 s later), then the new primary fences one lease.
    let report = server_failover_run("sentinel");
    // Both replicas must acknowledge a lease by default behind Sentinel.
    assert_eq!(report["redis_min_replica_acks"], 2, "{report:#}");
}

/// The tester cuts the Sentinel deployment's primary off its replicas and sentinels for two
/// leases, its clients still reaching it: the leader's renewals are no longer acknowledged by
/// the replicas, so it steps down; the sentinels fail over; nobody leads twice, somebody leads
/// once the old primary follows the new one, and no nftables table is left behind.
#[cfg(target_os = "linux")]
#[test]
fn a_redis_sentinel_primary_cut_off_its_peers_is_survived() {
    // Root and nftables, as for the network namespaces (or a panic where they are required).
    if leader_election_test_support::netns::NetLab::for_test().is_none() {
        return;
    }
    let report = spawned_redis_run("sentinel", "server-partition", "45s");
    assert_eq!(report["spawned"], "sentinel");
    let faults = report["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 1, "{report:#}");
    assert_eq!(faults[0]["kind"], "server_partition");
    assert_eq!(faults[0]["recovered"], true, "{report:#}");
    assert!(faults[0]["next_token"].as_u64() > faults[0]["token"].as_u64());
    let tables = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&tables.stdout);
    assert!(!tables.contains("_sentinel_"), "left behind: {tables}");
}

#[test]
fn redis_cluster_failovers_are_survived() {
    // The tester starts a 6-node Redis Cluster and kills the primary serving the election's
    // slot: the cluster promotes its replica (cluster-node-timeout 1 s), the new primary
    // fences one lease, and the killed node is started again as a replica.
    let report = server_failover_run("cluster");
    let recovery = &report["server_failover_recovery_ms"];
    assert!(recovery["count"].as_u64().unwrap() >= 1, "{report:#}");
    assert!(recovery["max"].as_f64().unwrap() > 0.0, "{report:#}");
}

#[test]
fn redis_cluster_coordinated_failovers_keep_a_leader() {
    // A coordinated CLUSTER FAILOVER: the replica catches up first, so the leader may keep its
    // term; either way nobody leads twice and a leader leads when it is complete.
    let report = spawned_redis_run("cluster", "server-handover", "40s");
    let faults = report["faults"].as_array().unwrap();
    assert!(
        faults.iter().any(|f| f["kind"] == "server_handover"),
        "no handover: {report:#}"
    );
    for fault in faults {
        assert_eq!(fault["recovered"], true, "fault not recovered: {fault:#}");
    }
}

// === etcd ===

/// etcd's timing: its shortest lease is 2 s with its default settings.
#[cfg(feature = "etcd")]
const ETCD: &[&str] = &["--fault-interval", "500ms", "--report", "json", "--quiet"];

#[cfg(feature = "etcd")]
#[tokio::test]
async fn etcd_backend_with_faults_is_safe_and_recovers() {
    let etcd = EtcdCluster::single().await;
    let endpoint = etcd.endpoint(0);
    let mut args = vec![
        "--backend",
        "etcd",
        "--etcd-endpoints",
        &endpoint,
        "--duration",
        "60s",
        "--stop-after-faults",
        "5",
        "--faults",
        "mixed",
    ];
    args.extend_from_slice(LEASE_2S);
    args.extend_from_slice(ETCD);
    let output = run_tester(&args);
    let report = report(&output);
    assert_safe_and_recovered(&report, &output, "etcd");
    assert_injected(&report, &["resign", "operator"]);
}

/// Two faults of `kind` (a `--faults` value) on a three-member cluster the tester starts: the
/// run must succeed with no overlap, tokens that grow, and both faults, of that kind,
/// recovered. Returns the report.
#[cfg(feature = "etcd")]
fn spawned_etcd_run(kind: &str) -> Value {
    let mut args = vec![
        "--backend",
        "etcd",
        "--spawn-etcd",
        "--faults",
        kind,
        "--duration",
        "60s",
        "--stop-after-faults",
        "2",
    ];
    args.extend_from_slice(LEASE_2S);
    args.extend_from_slice(ETCD);
    let report = safe_run(&args);
    assert_eq!(report["spawned"], "etcd-cluster");
    let faults = report["faults"].as_array().unwrap();
    assert_eq!(faults.len(), 2, "{report:#}");
    for fault in faults {
        assert_eq!(fault["kind"], kind.replace('-', "_"));
        assert_eq!(fault["recovered"], true, "fault not recovered: {fault:#}");
    }
    report
}

#[cfg(feature = "etcd")]
#[test]
fn an_etcd_raft_leader_cut_off_its_peers_is_survived() {
    // The tester cuts the Raft leader off its peers (its clients still reach it) for two
    // leases, twice: nobody leads twice, and somebody leads once it is healed.
    spawned_etcd_run("server-partition");
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_member_kills_are_survived() {
    // The tester starts three members and kills one at a time (the Raft leader every other
    // time), starting it again: nobody leads twice, and somebody leads after each.
    spawned_etcd_run("server-handover");
}

#[cfg(feature = "etcd")]
#[test]
fn etcd_cluster_partitions_are_survived() {
    // Each contender reaches the three members through a proxy per member; a partition cuts
    // the leader off all of them: its lease expires on the cluster and another takes over.
    let report = spawned_etcd_run("partition");
    for fault in report["faults"].as_array().unwrap() {
        assert!(
            fault["next_token"].as_u64() > fault["token"].as_u64(),
            "a partitioned leader's term must end: {fault:#}"
        );
    }
    assert_eq!(report["partition_failover_ms"]["count"], 2, "{report:#}");
}

/// Built without the `etcd` feature (the default, which needs nothing but Rust), the tester
/// refuses `--backend etcd` at once and says how to get it.
#[cfg(not(feature = "etcd"))]
#[test]
fn etcd_without_its_feature_says_which_feature_to_enable() {
    let stderr = setup_error(&["--backend", "etcd", "--duration", "5s", "--quiet"]);
    assert!(stderr.contains("--features etcd"), "{stderr}");
    assert!(stderr.contains("protoc"), "{stderr}");
}

// === Blob (Azurite) ===

#[tokio::test]
async fn blob_backend_hands_over_on_graceful_stops() {
    // Azure leases last at least 15 s, so only graceful stops fit in a short test.
    let azurite = Azurite::start().await;
    let connection_string = azurite.connection_string();
    let output = Command::new(TESTER)
        .args([
            "--backend",
            "blob",
            "--container",
            "tester-e2e",
            "--blob",
            "graceful",
        ])
        .args([
            "--duration",
            "90s",
            "--stop-after-faults",
            "2",
            "--faults",
            "graceful",
            "--fault-interval",
            "2s",
        ])
        .args(["--report", "json", "--quiet"])
        .env("AZURE_STORAGE_CONNECTION_STRING", &connection_string)
        .output()
        .expect("run the tester");
    let report = report(&output);
    assert!(output.status.success(), "{report:#}");
    assert_eq!(report["backend"], "blob");
    assert_eq!(report["overlap_count"], 0, "{report:#}");
    assert_eq!(report["tokens_monotonic"], true);
    assert_eq!(report["lease_duration_ms"], 15000.0);
    let faults = report["faults"].as_array().unwrap();
    assert!(faults.len() >= 2, "{report:#}");
    assert!(faults.iter().all(|f| f["recovered"] == true), "{report:#}");
    // Followers poll every second: a released lease is taken within a few seconds, long
    // before it would have expired.
    let max = report["graceful_handover_ms"]["max"].as_f64().unwrap();
    assert!(max < 5000.0, "{report:#}");
}

/// `--jobs`: schedulers beside the election, in this process and in contender processes, on
/// the spawned Redis through crashes and graceful stops: every occurrence once, none lost, and
/// a report per job.
#[test]
fn scheduled_jobs_run_each_occurrence_once_in_process_and_in_processes() {
    for processes in [false, true] {
        let mut args = vec![
            "--backend",
            "redis",
            "--spawn-redis",
            "--faults",
            "crash",
            "--stop-after-faults",
            "2",
            "--duration",
            "40s",
            "--lease-duration",
            "1s",
            "--renew-interval",
            "300ms",
            "--retry-interval",
            "100ms",
            "--fault-interval",
            "1s",
            "--jobs",
            "2",
            "--every",
            "200ms",
            "--report",
            "json",
            "--quiet",
        ];
        if processes {
            args.push("--processes");
        }
        let report = safe_run(&args);
        let jobs = report["jobs"].as_array().expect("a jobs report");
        assert_eq!(jobs.len(), 2, "{report:#}");
        for job in jobs {
            assert!(job["occurrences"].as_u64().unwrap() >= 10, "{job:#}");
            assert_eq!(job["duplicates"], 0, "{job:#}");
            assert_eq!(job["lost"], 0, "{job:#}");
            assert_eq!(job["token_regressions"], 0, "{job:#}");
        }
        assert_eq!(report["safe"], true, "{report:#}");
    }
}
