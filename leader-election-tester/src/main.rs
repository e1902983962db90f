//! `leader-election-tester`: runs contenders of one leader election against a backend, injects
//! faults on the leader (graceful stop, crash, partition), checks that there were never two
//! leaders at once and that fencing tokens only grew, and measures handover and failover times.
//!
//! See the crate README for the options and the report's fields.

mod backend;
mod contender;
mod etcd;
mod instrument;
mod ledger;
mod live;
mod operator;
mod proxy;
mod record;
mod redis_server;
mod report;
mod run;
mod s3;
mod schedule;
mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::{AZURITE_CONNECTION_STRING, BackendKind, BackendSpec};
use crate::contender::Timing;
use crate::redis_server::Topology;
use crate::schedule::{FaultMode, RunConfig};

/// Runs N contenders of one leader election against a backend while a fault schedule acts on
/// the leader; checks that there were never two leaders at once and measures failover.
// No `Debug`: it would print the connection string, a secret.
#[derive(Parser)]
#[command(
    name = "leader-election-tester",
    version,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    internal: Option<Internal>,
    /// Where the election is kept.
    #[arg(long, value_enum, default_value_t = BackendKind::Memory)]
    backend: BackendKind,
    /// Redis server URL (`--backend redis`).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true
    )]
    redis_url: String,
    /// Azure Storage connection string (`--backend blob`). Default: the Azurite development
    /// account at 127.0.0.1:10000.
    #[arg(
        long,
        env = "AZURE_STORAGE_CONNECTION_STRING",
        default_value = AZURITE_CONNECTION_STRING,
        hide_env_values = true,
        hide_default_value = true
    )]
    connection_string: String,
    /// PostgreSQL URL (`--backend postgres`).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres:postgres@127.0.0.1:5432/postgres",
        hide_env_values = true
    )]
    postgres_url: String,
    /// etcd members' client URLs, comma-separated (`--backend etcd`).
    #[arg(
        long,
        env = "ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = etcd::DEFAULT_ENDPOINT
    )]
    etcd_endpoints: Vec<String>,
    /// Redis key (and PostgreSQL election name, etcd key) of the election.
    #[arg(long, default_value = "leader-election-tester")]
    key: String,
    /// Blob container of the election.
    #[arg(long, default_value = "leader-election-tester")]
    container: String,
    /// Blob name of the election.
    #[arg(long, default_value = "leader")]
    blob: String,
    /// S3 endpoint (`--backend s3`): any S3-compatible store, addressed path-style with the
    /// emulator's test credentials. Default: the emulator of the docker-compose file.
    #[arg(long, env = "S3_ENDPOINT", default_value = s3::DEFAULT_ENDPOINT)]
    s3_endpoint: String,
    /// S3 bucket of the election (created when missing); the object key is `--key`.
    #[arg(long, default_value = s3::DEFAULT_BUCKET)]
    s3_bucket: String,
    /// Start moto's S3 server from `.tools/moto` (`scripts/install-moto.sh`) on a free port of
    /// 127.0.0.1 for the run, instead of using --s3-endpoint, and add its restart (empty,
    /// without the bucket) to `mixed` as `server-restart`.
    #[arg(long)]
    spawn_s3: bool,
    /// Number of contenders.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    contenders: u16,
    /// How long to run, e.g. `30s`, `2m`. Default: 30 s (90 s for blob, whose leases last
    /// at least 15 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Lease duration of every contender. Default: 2 s (15 s for blob: Azure accepts 15–60 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    lease_duration: Option<Duration>,
    /// How often the leader renews. Default: a quarter of the lease (3 s for blob).
    #[arg(long, value_parser = humantime::parse_duration)]
    renew_interval: Option<Duration>,
    /// First delay before retrying after an error; for blob also how often followers poll.
    /// Default: an eighth of the lease (1 s for blob).
    #[arg(long, value_parser = humantime::parse_duration)]
    retry_interval: Option<Duration>,
    /// Timeout of each backend call. Default: a quarter of the lease, at most 2 s.
    #[arg(long, value_parser = humantime::parse_duration)]
    operation_timeout: Option<Duration>,
    /// Which faults to inject on the leader.
    #[arg(long, value_enum, default_value_t = FaultMode::Mixed)]
    faults: FaultMode,
    /// Time with a stable leader before each fault. Default: one lease duration, at most 5 s.
    #[arg(long, value_parser = humantime::parse_duration)]
    fault_interval: Option<Duration>,
    /// End the run once this many faults have been injected and played out (leadership back,
    /// or given up on), before `--duration` if need be; `--duration` stays the limit. With
    /// `mixed`, a count of at least the number of kinds injects each kind once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    stop_after_faults: Option<u32>,
    /// Run each contender as its own OS process (crash = SIGKILL). Needs redis or blob.
    #[arg(long)]
    processes: bool,
    /// Start a Redis deployment from PATH for the run (127.0.0.1, free ports, no persistence)
    /// instead of using --redis-url, and add its server faults to `mixed`: `standalone` (the
    /// default when the flag has no value) one redis-server, restarted and paused;
    /// `sentinel` a primary, two replicas and three sentinels, failed over; `cluster` three
    /// primaries with a replica each, the election's primary killed and replaced.
    #[arg(
        long,
        value_enum,
        value_name = "TOPOLOGY",
        num_args = 0..=1,
        require_equals = false,
        default_missing_value = "standalone"
    )]
    spawn_redis: Option<Topology>,
    /// Start a three-member etcd cluster from PATH for the run (127.0.0.1, free ports) instead
    /// of using --etcd-endpoints, and add its member kills to `mixed` (as `server-handover`:
    /// the Raft leader every other time, a follower member otherwise, each started again).
    #[arg(long)]
    spawn_etcd: bool,
    /// Redis: how many replicas must acknowledge an acquisition or renewal (`WAIT`) before a
    /// contender believes it. Default: 2 with `--spawn-redis sentinel` (its two replicas),
    /// otherwise the Redis backend's default.
    #[arg(long, value_name = "N")]
    redis_min_replica_acks: Option<u32>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    report: ReportFormat,
    /// Draw the leadership intervals and faults to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    timeline: Option<PathBuf>,
    /// No live output on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Each contender's priority for preferred leaders, one per contender, e.g. `0,0,5`: a
    /// leader hands over to a waiting contender with a higher priority after its minimum
    /// tenure. Default: no priorities.
    #[arg(long, value_delimiter = ',', value_name = "P,P,...")]
    priorities: Vec<u32>,
    /// With --priorities: how long a leader keeps its term before handing over. Default: one
    /// lease.
    #[arg(long, value_parser = humantime::parse_duration)]
    min_tenure: Option<Duration>,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// One contender as a child process (used by `--processes`).
    #[command(hide = true)]
    Contender,
}

/// How the report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// A few readable lines.
    Text,
    /// One JSON object (fields documented in the README).
    Json,
}

/// Exit code when the run saw two leaders at once or a token going backwards.
const EXIT_UNSAFE: u8 = 1;
/// Exit code when the run could not be done (bad options, backend unavailable).
const EXIT_SETUP: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Internal::Contender) = cli.internal {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        return match runtime.block_on(contender::child_main()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("leader-election-tester contender: {err}");
                ExitCode::from(EXIT_SETUP)
            }
        };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(tester(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("leader-election-tester: {err}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}

async fn tester(cli: Cli) -> Result<ExitCode, String> {
    let blob = cli.backend == BackendKind::Blob;
    let duration = cli
        .duration
        .unwrap_or(Duration::from_secs(if blob { 90 } else { 30 }));
    let lease = cli
        .lease_duration
        .unwrap_or(Duration::from_secs(if blob { 15 } else { 2 }));
    let renew = cli.renew_interval.unwrap_or(if blob {
        Duration::from_secs(3)
    } else {
        lease / 4
    });
    let retry = cli.retry_interval.unwrap_or(if blob {
        Duration::from_secs(1)
    } else {
        lease / 8
    });
    let operation_timeout = cli
        .operation_timeout
        .unwrap_or_else(|| (lease / 4).min(Duration::from_secs(2)));
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let config = RunConfig {
        backend: BackendSpec {
            kind: cli.backend,
            redis_url: cli.redis_url,
            connection_string: cli.connection_string,
            postgres_url: cli.postgres_url,
            redis_min_replica_acks: cli.redis_min_replica_acks,
            key: cli.key,
            container: cli.container,
            blob: cli.blob,
            etcd_endpoints: cli.etcd_endpoints,
            s3: s3::S3Spec {
                endpoint: cli.s3_endpoint,
                bucket: cli.s3_bucket,
            },
        },
        contenders: usize::from(cli.contenders),
        duration,
        timing: Timing {
            lease_ms: millis(lease),
            renew_ms: millis(renew),
            retry_ms: millis(retry),
            operation_timeout_ms: millis(operation_timeout),
            priority: None,
            min_tenure_ms: cli.min_tenure.map(millis),
        },
        faults: cli.faults,
        fault_interval: cli.fault_interval.unwrap_or_else(|| {
            let interval = lease.min(Duration::from_secs(5));
            if cli.priorities.is_empty() {
                interval
            } else {
                // Time for the preferred-leader handover between faults: the tenure and the
                // renewal that notices the candidate.
                interval.max(cli.min_tenure.unwrap_or(lease) + renew * 2)
            }
        }),
        stop_after_faults: cli.stop_after_faults.map(|n| n as usize),
        processes: cli.processes,
        spawn_redis: cli.spawn_redis,
        spawn_etcd: cli.spawn_etcd,
        spawn_s3: cli.spawn_s3,
        quiet: cli.quiet,
        priorities: cli.priorities,
    };
    let s3_in_process = config.backend.kind == BackendKind::S3 && !config.processes;
    let output = run::run(config).await?;
    if s3_in_process && !cli.quiet {
        let counts = s3::request_totals();
        eprintln!(
            "s3 requests of all contenders: {} HEAD, {} GET, {} PUT, {} other",
            counts.head, counts.get, counts.put, counts.other
        );
    }
    let report = &output.report;
    if let Some(path) = &cli.timeline {
        let svg = timeline::render(&output.data);
        std::fs::write(path, svg)
            .map_err(|e| format!("cannot write the timeline to {}: {e}", path.display()))?;
        if !cli.quiet {
            eprintln!("timeline written to {}", path.display());
        }
    }
    match cli.report {
        ReportFormat::Json => {
            let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
            println!("{json}");
        }
        ReportFormat::Text => print!("{}", report.to_text()),
    }
    if !report.all_faults_recovered {
        eprintln!("warning: some faults were not followed by a new leader before the run ended");
    }
    Ok(if report.safe {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_UNSAFE)
    })
}
