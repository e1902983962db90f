//! `leader-election-tester`: runs contenders of one leader election against a backend, injects
//! faults on the leader (graceful stop, crash, partition), checks that there were never two
//! leaders at once and that fencing tokens only grew, and measures handover and failover times.
//!
//! See the crate README for the options and the report's fields.

mod backends;
mod contender;
mod faults;
mod instrument;
mod ledger;
mod live;
mod record;
mod report;
mod run;
mod schedule;
mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backends::BackendSpec;
use crate::contender::Timing;
use crate::faults::ClockMode;
use crate::schedule::{FaultMode, Network, RunConfig};

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
    /// The backend, and every backend's connection settings.
    #[command(flatten)]
    backend: BackendSpec,
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
    /// Up to this much more quiet time before each fault, uniformly at random, so that faults
    /// do not fall at one phase of the followers' sleeps (where a backend has no release
    /// notice, a follower wakes when the lease it saw could expire, about a lease after a
    /// term began: with the default interval a graceful stop would find one just waking).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    fault_jitter: Duration,
    /// End the run once this many faults have been injected and played out (leadership back,
    /// or given up on), before `--duration` if need be; `--duration` stays the limit. With
    /// `mixed`, a count of at least the number of kinds injects each kind once.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    stop_after_faults: Option<u32>,
    /// Run each contender as its own OS process (crash = SIGKILL). Needs a backend other
    /// than memory.
    #[arg(long)]
    processes: bool,
    /// How a partition cuts the leader off: `proxy` closes its connections through TCP proxies
    /// of the tester; `netns` (with --processes; Linux, root, `ip` and `nft`) runs each
    /// contender process in a network namespace of its own and drops its packets with
    /// nftables, silently, as a real network fails.
    #[arg(long, value_enum, default_value_t = Network::Proxy)]
    network: Network,
    /// Run each contender process (with --processes) under libfaketime: `step` gives it a
    /// wall clock the `clock-step` fault steps by 30 s (its monotonic clock untouched);
    /// `rate` runs its clocks, monotonic included, 0.4 % fast, 0.4 % slow or exact, by slot.
    #[arg(long, value_enum, value_name = "MODE")]
    clock_faults: Option<ClockMode>,
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
    /// Scheduled jobs: every contender also runs a scheduler (leader-election-jobs) with this
    /// many jobs, each due every `--every`, on elections of their own beside the run's; every
    /// run is recorded, and the report checks that no occurrence ran twice, none was lost,
    /// and tokens grew per job. With `--processes`, in each contender process.
    #[arg(long, value_name = "N", default_value_t = 0)]
    jobs: u16,
    /// How often each job of `--jobs` is due.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    every: Duration,
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
/// Exit code when the run was safe but never injected a fault kind it was asked for: it did
/// not test what was asked (`faults_not_injected` in the report says which, and how long the
/// run needs).
const EXIT_NOT_TESTED: u8 = 3;

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
    let defaults = cli.backend.backend.defaults();
    let duration = cli.duration.unwrap_or(defaults.duration);
    let lease = cli.lease_duration.unwrap_or(defaults.lease);
    let renew = cli.renew_interval.or(defaults.renew).unwrap_or(lease / 4);
    let retry = cli.retry_interval.or(defaults.retry).unwrap_or(lease / 8);
    let operation_timeout = cli
        .operation_timeout
        .unwrap_or_else(|| (lease / 4).min(Duration::from_secs(2)));
    let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let backend = cli.backend.backend;
    let config = RunConfig {
        backend: cli.backend,
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
        fault_jitter: cli.fault_jitter,
        stop_after_faults: cli.stop_after_faults.map(|n| n as usize),
        processes: cli.processes,
        network: cli.network,
        clock_faults: cli.clock_faults,
        quiet: cli.quiet,
        priorities: cli.priorities,
        jobs: (cli.jobs > 0).then_some(crate::contender::JobsSpec {
            count: usize::from(cli.jobs),
            every: cli.every,
        }),
    };
    let in_process = !config.processes;
    let output = run::run(config).await?;
    // Counted in this process: the stores of child processes are not.
    if let Some(requests) = backend.requests().filter(|_| in_process && !cli.quiet) {
        eprintln!("{requests}");
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
        ReportFormat::Json => println!("{}", report.to_json()?),
        ReportFormat::Text => print!("{}", report.to_text()),
    }
    if !report.all_faults_recovered {
        eprintln!("warning: some faults were not followed by a new leader before the run ended");
    }
    for missing in &report.faults_not_injected {
        eprintln!(
            "warning: --faults asked for {} and the run never injected it: it was not tested; \
             these settings need a run of about {}s (--duration {}s)",
            missing.kind.as_str(),
            missing.run_needs_s,
            missing.run_needs_s
        );
    }
    Ok(if !report.safe {
        ExitCode::from(EXIT_UNSAFE)
    } else if !report.faults_not_injected.is_empty() {
        ExitCode::from(EXIT_NOT_TESTED)
    } else {
        ExitCode::SUCCESS
    })
}
