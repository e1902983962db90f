//! The verdict of a run: overlap detection, token order, handover and failover times,
//! leaderless time and backend load, computed from leadership intervals and injected faults.
//!
//! Everything here is pure: it takes what the run recorded (times in milliseconds since the
//! run's epoch, on one monotonic clock) and returns a [`Report`], so it is tested on
//! hand-built interval sets.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use leader_election::FencingToken;
use leader_election::testing::{self, Term};
use serde::{Deserialize, Serialize};

use crate::operator::OperatorAction;

/// One term of leadership of one contender: `[start_ms, end_ms)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Interval {
    /// The contender slot (0-based); a slot keeps its number across restarts.
    pub(crate) contender: usize,
    /// Which incarnation of the slot held it (a restart after a fault starts a new one).
    pub(crate) generation: u32,
    /// The fencing token of the term.
    pub(crate) token: u64,
    /// When the contender started leading.
    pub(crate) start_ms: f64,
    /// When it stopped leading (the end of the run for a term still going on).
    pub(crate) end_ms: f64,
    /// Why the term ended (`stopped`, `deadline_passed`, `killed`, `run_end`, ...).
    pub(crate) end_reason: String,
}

/// What a fault did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultKind {
    /// The leader was stopped gracefully: it released the lease.
    Graceful,
    /// The leader was killed without releasing (SIGKILL with `--processes`).
    Crash,
    /// The leader's connection to the backend was cut while the others kept theirs.
    Partition,
    /// The Redis server (started by the tester) was killed and started again, empty.
    ServerRestart,
    /// The Redis server (started by the tester) was frozen (SIGSTOP), then resumed.
    ServerPause,
    /// The tester acted on the lease record as an operator would (deleted it, overwrote it).
    Operator,
    /// The leader resigned: released the lease and stayed a follower for a cool-down.
    Resign,
    /// The primary holding the election was failed over to a replica (`SENTINEL FAILOVER` on a
    /// Sentinel deployment started by the tester).
    ServerFailover,
    /// The primary holding the election handed its slot over to its replica (`CLUSTER
    /// FAILOVER`, coordinated: the replica catches up first), in a cluster started by the
    /// tester. The leader may keep its term: recovered means a leader when it is complete.
    ServerHandover,
}

impl FaultKind {
    /// The lower-case name used in the report and in live output.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Graceful => "graceful",
            Self::Crash => "crash",
            Self::Partition => "partition",
            Self::ServerRestart => "server_restart",
            Self::ServerPause => "server_pause",
            Self::Operator => "operator",
            Self::Resign => "resign",
            Self::ServerFailover => "server_failover",
            Self::ServerHandover => "server_handover",
        }
    }

    /// Whether the fault hits the server rather than one contender.
    pub(crate) fn is_server(self) -> bool {
        matches!(
            self,
            Self::ServerRestart | Self::ServerPause | Self::ServerFailover | Self::ServerHandover
        )
    }
}

/// A fault as injected by the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Fault {
    /// What was done.
    pub(crate) kind: FaultKind,
    /// To which contender slot (always the leader at that moment).
    pub(crate) contender: usize,
    /// The token of the term the fault hit.
    pub(crate) token: Option<u64>,
    /// When it was injected.
    pub(crate) at_ms: f64,
    /// The victim's last confirmed acquisition or renewal before the fault, if known.
    pub(crate) last_confirmed_ms: Option<f64>,
    /// When the victim was brought back (restarted, or its connection healed); for a server
    /// failover, when it was complete (the old primary a replica of the new one).
    pub(crate) restored_at_ms: Option<f64>,
    /// For an operator fault: what the operator did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) action: Option<OperatorAction>,
}

/// Backend operations counted at the store boundary during the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OpCounts {
    /// `connect` calls.
    pub(crate) connect: u64,
    /// `try_acquire` calls.
    pub(crate) acquire: u64,
    /// `renew` calls.
    pub(crate) renew: u64,
    /// `release` calls.
    pub(crate) release: u64,
    /// `current_leader` calls.
    pub(crate) current_leader: u64,
    /// `announce_candidate` and `strongest_candidate` calls (preferred leaders, with
    /// `--priorities`).
    #[serde(default)]
    pub(crate) candidate: u64,
}

impl OpCounts {
    /// Every operation.
    pub(crate) fn total(&self) -> u64 {
        self.connect
            + self.acquire
            + self.renew
            + self.release
            + self.current_leader
            + self.candidate
    }

    /// The operations only a follower makes (a leader renews and releases).
    pub(crate) fn follower(&self) -> u64 {
        self.connect + self.acquire + self.current_leader
    }

    /// Adds `other` to these counts.
    pub(crate) fn add(&mut self, other: &Self) {
        self.connect += other.connect;
        self.acquire += other.acquire;
        self.renew += other.renew;
        self.release += other.release;
        self.current_leader += other.current_leader;
        self.candidate += other.candidate;
    }
}

/// Everything a run recorded, the input of [`Report::build`].
#[derive(Clone, Debug, Default)]
pub(crate) struct RunData {
    /// `memory`, `redis` or `blob`.
    pub(crate) backend: String,
    /// The Redis deployment the tester started (`standalone`, `sentinel`, `cluster`), if any.
    pub(crate) spawned: Option<String>,
    /// The Redis contenders' `min_replica_acks` (redis only).
    pub(crate) redis_min_replica_acks: Option<u32>,
    /// Number of contender slots.
    pub(crate) contenders: usize,
    /// Whether each contender ran in its own OS process.
    pub(crate) processes: bool,
    /// The measured part of the run, from the epoch to the start of shutdown.
    pub(crate) duration_ms: f64,
    /// The lease duration the contenders used.
    pub(crate) lease_duration_ms: f64,
    /// Every leadership interval, in any order.
    pub(crate) intervals: Vec<Interval>,
    /// Every fault injected, in order.
    pub(crate) faults: Vec<Fault>,
    /// Backend operations of all contenders.
    pub(crate) ops: OpCounts,
    /// Total time contenders spent running without leading, summed over contenders.
    pub(crate) follower_time_ms: f64,
}

/// `{count, p50, p99, max}` of a set of durations in milliseconds; `null`s when empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Stats {
    /// How many samples.
    pub(crate) count: usize,
    /// Median (nearest rank).
    pub(crate) p50: Option<f64>,
    /// 99th percentile (nearest rank).
    pub(crate) p99: Option<f64>,
    /// Largest sample.
    pub(crate) max: Option<f64>,
}

impl Stats {
    /// The statistics of `samples`.
    pub(crate) fn of(samples: &[f64]) -> Self {
        let mut sorted: Vec<f64> = samples.iter().copied().filter(|s| s.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        Self {
            count: sorted.len(),
            p50: percentile(&sorted, 50.0).map(round),
            p99: percentile(&sorted, 99.0).map(round),
            max: sorted.last().copied().map(round),
        }
    }
}

/// Nearest-rank percentile of sorted samples: the smallest sample with at least `p` % of the
/// samples at or below it.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Two terms of different contenders that overlapped in time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Overlap {
    /// One contender and its token.
    pub(crate) a: (usize, u64),
    /// The other contender and its token.
    pub(crate) b: (usize, u64),
    /// When the overlap began.
    pub(crate) from_ms: f64,
    /// How long it lasted.
    pub(crate) overlap_ms: f64,
}

/// `{total, per_follower_per_lease}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct BackendOps {
    /// Every backend call of every contender.
    pub(crate) total: u64,
    /// Calls made by followers (connect, acquire, current leader) per follower per lease
    /// duration: the load an idle contender puts on the backend.
    pub(crate) per_follower_per_lease: Option<f64>,
    /// The calls by operation.
    pub(crate) by_operation: OpCounts,
}

/// A fault as reported: what was injected, when, and when leadership came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct FaultReport {
    /// `graceful`, `crash` or `partition`.
    pub(crate) kind: FaultKind,
    /// The contender hit (the leader then).
    pub(crate) contender: usize,
    /// The token of the term the fault hit.
    pub(crate) token: Option<u64>,
    /// When the fault was injected.
    pub(crate) at_ms: f64,
    /// When the victim was restarted or reconnected.
    pub(crate) restored_at_ms: Option<f64>,
    /// Whether a new term began after the fault (for a `server_handover`: or a leader was
    /// leading when it completed).
    pub(crate) recovered: bool,
    /// The contender that led next.
    pub(crate) next_leader: Option<usize>,
    /// Its token.
    pub(crate) next_token: Option<u64>,
    /// From the fault to the next acquisition.
    pub(crate) recovered_after_ms: Option<f64>,
    /// For a crash: from the victim's last confirmed renewal to the next acquisition.
    pub(crate) failover_ms: Option<f64>,
    /// For an operator fault: what the operator did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) action: Option<OperatorAction>,
}

/// The report of one run. The field names are part of the tester's interface (see README).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Report {
    /// The backend used.
    pub(crate) backend: String,
    /// The Redis deployment the tester started (`--spawn-redis`): `standalone`, `sentinel`,
    /// `cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) spawned: Option<String>,
    /// The Redis contenders' `min_replica_acks`: how many replicas must acknowledge an
    /// acquisition or renewal before it is believed (redis only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) redis_min_replica_acks: Option<u32>,
    /// Number of contenders.
    pub(crate) contenders: usize,
    /// Whether each contender was its own OS process.
    pub(crate) processes: bool,
    /// Length of the measured run, in seconds.
    pub(crate) duration_s: f64,
    /// Lease duration, in milliseconds.
    pub(crate) lease_duration_ms: f64,
    /// Number of leadership terms.
    pub(crate) terms: usize,
    /// Pairs of terms of different contenders overlapping in time: must be 0.
    pub(crate) overlap_count: usize,
    /// The longest such overlap (0 when none).
    pub(crate) max_overlap_ms: f64,
    /// The first overlaps found, for diagnosis.
    pub(crate) overlaps: Vec<Overlap>,
    /// Whether tokens strictly increase from each term to the next.
    pub(crate) tokens_monotonic: bool,
    /// From a graceful stop of the leader to the next acquisition.
    pub(crate) graceful_handover_ms: Stats,
    /// From the leader's resignation to the next acquisition.
    #[serde(default)]
    pub(crate) resign_handover_ms: Stats,
    /// From a leader handing over to a waiting contender with a higher priority (its term
    /// ended with `preferred_leader`) to the next acquisition (`--priorities`).
    #[serde(default)]
    pub(crate) preferred_handover_ms: Stats,
    /// From a crashed leader's last confirmed renewal to the next acquisition.
    pub(crate) crash_failover_ms: Stats,
    /// From cutting the leader's connection to the next acquisition.
    pub(crate) partition_failover_ms: Stats,
    /// From restarting or pausing the server to the next acquisition (`--spawn-redis`).
    pub(crate) server_fault_recovery_ms: Stats,
    /// From the failover's start (`SENTINEL FAILOVER`; for a cluster, the kill of the primary
    /// serving the election) to the next acquisition (`--spawn-redis sentinel|cluster`).
    #[serde(default)]
    pub(crate) server_failover_recovery_ms: Stats,
    /// From the failover's completion (Sentinel: the old primary a replica of the new one,
    /// when its clients move to the new primary; cluster: every node agreeing that the
    /// promoted replica serves the slot) to the next acquisition: the failover fence's cost.
    #[serde(default)]
    pub(crate) server_failover_after_complete_ms: Stats,
    /// Coordinated failovers (`server_handover`) the leader came through keeping its term.
    #[serde(default)]
    pub(crate) server_handovers_kept: usize,
    /// From an operator's action on the lease record to the next acquisition, by action.
    #[serde(default)]
    pub(crate) operator_recovery_ms: BTreeMap<String, Stats>,
    /// Time within the run with no leader at all (including the first election).
    pub(crate) leaderless_ms_total: f64,
    /// Load on the backend.
    pub(crate) backend_ops: BackendOps,
    /// Every fault injected.
    pub(crate) faults: Vec<FaultReport>,
    /// Whether every fault was followed by a new term.
    pub(crate) all_faults_recovered: bool,
    /// `overlap_count == 0 && tokens_monotonic`: the run saw no safety violation.
    pub(crate) safe: bool,
}

/// How many overlaps the report lists in detail.
const OVERLAPS_LISTED: usize = 20;

fn round(ms: f64) -> f64 {
    (ms * 10.0).round() / 10.0
}

/// The terms of a run as the workspace's one safety checker
/// ([`leader_election::testing::assert_safe`] and its parts) takes them: each contender slot is
/// one contender, on the run's millisecond clock.
pub(crate) fn terms(intervals: &[Interval]) -> Vec<Term<usize, f64>> {
    intervals
        .iter()
        .map(|i| Term {
            contender: i.contender,
            token: FencingToken::new(i.token),
            start: i.start_ms,
            end: i.end_ms,
            end_reason: None,
        })
        .collect()
}

/// The overlaps the shared checker finds, with when each began and how long it lasted.
pub(crate) fn overlap_details(terms: &[Term<usize, f64>]) -> Vec<Overlap> {
    testing::overlaps(terms)
        .into_iter()
        .map(|(a, b)| {
            let from = a.start.max(b.start);
            let to = a.end.min(b.end);
            Overlap {
                a: (a.contender, a.token.get()),
                b: (b.contender, b.token.get()),
                from_ms: round(from),
                overlap_ms: round(to - from),
            }
        })
        .collect()
}

/// Time in `[0, until)` covered by no interval.
pub(crate) fn leaderless_ms(intervals: &[Interval], until: f64) -> f64 {
    let mut spans: Vec<(f64, f64)> = intervals
        .iter()
        .map(|i| (i.start_ms.max(0.0), i.end_ms.min(until)))
        .filter(|(s, e)| e > s)
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut covered = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (s, e) in spans {
        match &mut current {
            Some((_, ce)) if s <= *ce => *ce = ce.max(e),
            _ => {
                if let Some((cs, ce)) = current {
                    covered += ce - cs;
                }
                current = Some((s, e));
            }
        }
    }
    if let Some((cs, ce)) = current {
        covered += ce - cs;
    }
    (until.max(0.0) - covered).max(0.0)
}

/// The first term to begin strictly after `at`.
/// For every term that ended by handing over to a preferred contender: from its end to the
/// next term's start.
fn preferred_handovers(intervals: &[Interval]) -> Vec<f64> {
    intervals
        .iter()
        .filter(|i| i.end_reason == "preferred_leader")
        .filter_map(|i| next_term_after(intervals, i.end_ms).map(|n| n.start_ms - i.end_ms))
        .collect()
}

fn next_term_after(intervals: &[Interval], at: f64) -> Option<&Interval> {
    intervals
        .iter()
        .filter(|i| i.start_ms > at)
        .min_by(|a, b| a.start_ms.total_cmp(&b.start_ms))
}

impl Report {
    /// Computes the report of a run.
    pub(crate) fn build(data: &RunData) -> Self {
        let terms = terms(&data.intervals);
        let all_overlaps = overlap_details(&terms);
        let max_overlap_ms = all_overlaps
            .iter()
            .map(|o| o.overlap_ms)
            .fold(0.0, f64::max);
        let mut graceful = Vec::new();
        let mut crash = Vec::new();
        let mut partition = Vec::new();
        let mut server = Vec::new();
        let mut failover_recovery = Vec::new();
        let mut after_complete = Vec::new();
        let mut resign = Vec::new();
        let mut handovers_kept = 0;
        let mut operator: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let faults: Vec<FaultReport> = data
            .faults
            .iter()
            .map(|fault| {
                let next = next_term_after(&data.intervals, fault.at_ms);
                // A coordinated failover need not end the leader's term: it held on if its
                // term (same contender and token) lasted past the failover's completion.
                let kept = fault.kind == FaultKind::ServerHandover
                    && fault.restored_at_ms.is_some_and(|done| {
                        data.intervals.iter().any(|i| {
                            i.contender == fault.contender
                                && Some(i.token) == fault.token
                                && i.end_ms > done
                        })
                    });
                handovers_kept += usize::from(kept);
                // Then no later term is this fault's doing.
                let next = if kept { None } else { next };
                let recovered_after = next.map(|n| n.start_ms - fault.at_ms);
                let failover = match (fault.kind, next) {
                    (FaultKind::Crash, Some(n)) => {
                        Some(n.start_ms - fault.last_confirmed_ms.unwrap_or(fault.at_ms))
                    }
                    _ => None,
                };
                if let Some(after) = recovered_after {
                    match fault.kind {
                        FaultKind::Graceful => graceful.push(after),
                        FaultKind::Resign => resign.push(after),
                        FaultKind::Crash => crash.push(failover.unwrap_or(after)),
                        FaultKind::Partition => partition.push(after),
                        FaultKind::ServerRestart | FaultKind::ServerPause => server.push(after),
                        FaultKind::ServerHandover => {}
                        FaultKind::ServerFailover => {
                            failover_recovery.push(after);
                            if let (Some(n), Some(done)) = (next, fault.restored_at_ms) {
                                after_complete.push((n.start_ms - done).max(0.0));
                            }
                        }
                        FaultKind::Operator => operator
                            .entry(fault.action.map_or("unknown", |a| a.as_str()).to_owned())
                            .or_default()
                            .push(after),
                    }
                }
                FaultReport {
                    kind: fault.kind,
                    contender: fault.contender,
                    token: fault.token,
                    at_ms: round(fault.at_ms),
                    restored_at_ms: fault.restored_at_ms.map(round),
                    recovered: next.is_some() || kept,
                    next_leader: next.map(|n| n.contender),
                    next_token: next.map(|n| n.token),
                    recovered_after_ms: recovered_after.map(round),
                    failover_ms: failover.map(round),
                    action: fault.action,
                }
            })
            .collect();
        let lease = data.lease_duration_ms;
        let per_follower_per_lease = (data.follower_time_ms > 0.0 && lease > 0.0)
            .then(|| data.ops.follower() as f64 / (data.follower_time_ms / lease))
            .map(|v| (v * 100.0).round() / 100.0);
        let overlap_count = all_overlaps.len();
        let tokens_monotonic = testing::tokens_increase(&terms);
        Self {
            backend: data.backend.clone(),
            spawned: data.spawned.clone(),
            redis_min_replica_acks: data.redis_min_replica_acks,
            contenders: data.contenders,
            processes: data.processes,
            duration_s: (data.duration_ms / 10.0).round() / 100.0,
            lease_duration_ms: round(lease),
            terms: data.intervals.len(),
            overlap_count,
            max_overlap_ms,
            overlaps: all_overlaps.into_iter().take(OVERLAPS_LISTED).collect(),
            tokens_monotonic,
            graceful_handover_ms: Stats::of(&graceful),
            resign_handover_ms: Stats::of(&resign),
            preferred_handover_ms: Stats::of(&preferred_handovers(&data.intervals)),
            crash_failover_ms: Stats::of(&crash),
            partition_failover_ms: Stats::of(&partition),
            server_fault_recovery_ms: Stats::of(&server),
            server_failover_recovery_ms: Stats::of(&failover_recovery),
            server_failover_after_complete_ms: Stats::of(&after_complete),
            server_handovers_kept: handovers_kept,
            operator_recovery_ms: operator
                .iter()
                .map(|(action, samples)| (action.clone(), Stats::of(samples)))
                .collect(),
            leaderless_ms_total: round(leaderless_ms(&data.intervals, data.duration_ms)),
            backend_ops: BackendOps {
                total: data.ops.total(),
                per_follower_per_lease,
                by_operation: data.ops,
            },
            all_faults_recovered: faults.iter().all(|f| f.recovered),
            faults,
            safe: overlap_count == 0 && tokens_monotonic,
        }
    }

    /// A short human-readable summary, for the end of a run without `--report json`.
    pub(crate) fn to_text(&self) -> String {
        let mut out = String::new();
        let stats = |s: &Stats| match (s.p50, s.p99, s.max) {
            (Some(p50), Some(p99), Some(max)) => {
                format!("n={} p50={p50}ms p99={p99}ms max={max}ms", s.count)
            }
            _ => "n=0".to_owned(),
        };
        let _ = writeln!(
            out,
            "backend {}{}{} | {} contenders{} | {:.1}s | lease {}ms",
            self.backend,
            self.spawned
                .as_deref()
                .map_or_else(String::new, |t| format!(" ({t})")),
            self.redis_min_replica_acks
                .map_or_else(String::new, |n| format!(" | min_replica_acks {n}")),
            self.contenders,
            if self.processes { " (processes)" } else { "" },
            self.duration_s,
            self.lease_duration_ms
        );
        let _ = writeln!(
            out,
            "terms {} | overlaps {} (max {}ms) | tokens monotonic: {}",
            self.terms, self.overlap_count, self.max_overlap_ms, self.tokens_monotonic
        );
        let _ = writeln!(
            out,
            "graceful handover: {}\ncrash failover:    {}\npartition failover: {}",
            stats(&self.graceful_handover_ms),
            stats(&self.crash_failover_ms),
            stats(&self.partition_failover_ms)
        );
        if self.server_failover_recovery_ms.count > 0 {
            let _ = writeln!(
                out,
                "server failover recovery: {}\n  after the failover completed: {}",
                stats(&self.server_failover_recovery_ms),
                stats(&self.server_failover_after_complete_ms)
            );
        }
        let handovers = self
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::ServerHandover)
            .count();
        if handovers > 0 {
            let _ = writeln!(
                out,
                "server handovers (Redis CLUSTER FAILOVER, etcd member kills): {handovers}, \
                 the leader kept its term through {}",
                self.server_handovers_kept
            );
        }
        if self.server_fault_recovery_ms.count > 0 {
            let _ = writeln!(
                out,
                "server fault recovery: {}",
                stats(&self.server_fault_recovery_ms)
            );
        }
        if self.resign_handover_ms.count > 0 {
            let _ = writeln!(out, "resign handover: {}", stats(&self.resign_handover_ms));
        }
        if self.preferred_handover_ms.count > 0 {
            let _ = writeln!(
                out,
                "preferred-leader handover: {}",
                stats(&self.preferred_handover_ms)
            );
        }
        for (action, recovery) in &self.operator_recovery_ms {
            let _ = writeln!(out, "operator {action}: recovery {}", stats(recovery));
        }
        let recovered = self.faults.iter().filter(|f| f.recovered).count();
        let _ = writeln!(
            out,
            "leaderless {}ms | backend ops {} ({} per follower per lease) | faults {}/{} recovered",
            self.leaderless_ms_total,
            self.backend_ops.total,
            self.backend_ops
                .per_follower_per_lease
                .map_or_else(|| "-".to_owned(), |v| v.to_string()),
            recovered,
            self.faults.len()
        );
        let verdict = if self.safe {
            "SAFE: never two leaders, tokens always increased"
        } else {
            "UNSAFE: two leaders at once or a token went backwards"
        };
        let _ = writeln!(out, "{verdict}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(contender: usize, token: u64, start_ms: f64, end_ms: f64) -> Interval {
        Interval {
            contender,
            generation: 0,
            token,
            start_ms,
            end_ms,
            end_reason: "test".into(),
        }
    }

    fn fault(kind: FaultKind, contender: usize, at_ms: f64, last: Option<f64>) -> Fault {
        Fault {
            kind,
            contender,
            token: None,
            at_ms,
            last_confirmed_ms: last,
            restored_at_ms: None,
            action: None,
        }
    }

    #[test]
    fn preferred_handovers_run_from_the_handing_over_term_to_the_next() {
        let mut handed = iv(0, 1, 0.0, 100.0);
        handed.end_reason = "preferred_leader".into();
        let report = Report::build(&data(
            vec![handed, iv(2, 2, 101.5, 300.0), iv(1, 3, 400.0, 500.0)],
            vec![],
        ));
        assert_eq!(report.preferred_handover_ms.count, 1);
        assert_eq!(report.preferred_handover_ms.max, Some(1.5));
    }

    fn data(intervals: Vec<Interval>, faults: Vec<Fault>) -> RunData {
        RunData {
            backend: "memory".into(),
            contenders: 3,
            duration_ms: 10_000.0,
            lease_duration_ms: 1000.0,
            intervals,
            faults,
            ..RunData::default()
        }
    }

    #[test]
    fn clean_handovers_have_no_overlap() {
        // Back-to-back terms (end == next start) do not overlap: intervals are half-open.
        let intervals = vec![
            iv(0, 1, 0.0, 1000.0),
            iv(1, 2, 1000.0, 2500.0),
            iv(2, 3, 2600.0, 4000.0),
            iv(0, 4, 4000.0, 10_000.0),
        ];
        assert!(overlap_details(&terms(&intervals)).is_empty());
        let report = Report::build(&data(intervals, vec![]));
        assert_eq!(report.overlap_count, 0);
        assert_eq!(report.max_overlap_ms, 0.0);
        assert!(report.tokens_monotonic);
        assert!(report.safe);
        assert_eq!(report.terms, 4);
        assert_eq!(report.leaderless_ms_total, 100.0);
    }

    #[test]
    fn an_overlapping_set_is_caught() {
        let intervals = vec![
            iv(0, 1, 0.0, 1000.0),
            // Contender 1 starts leading 250 ms before contender 0 stops.
            iv(1, 2, 750.0, 3000.0),
            // Contender 2 overlaps contender 1 entirely inside its term.
            iv(2, 3, 1500.0, 1600.0),
            iv(0, 4, 3000.0, 5000.0),
        ];
        let found = overlap_details(&terms(&intervals));
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].a, (0, 1));
        assert_eq!(found[0].b, (1, 2));
        assert_eq!(found[0].from_ms, 750.0);
        assert_eq!(found[0].overlap_ms, 250.0);
        assert_eq!(found[1].overlap_ms, 100.0);
        let report = Report::build(&data(intervals, vec![]));
        assert_eq!(report.overlap_count, 2);
        assert_eq!(report.max_overlap_ms, 250.0);
        assert!(!report.safe);
    }

    #[test]
    fn terms_of_one_contender_never_count_as_overlap() {
        // A contender's own successive generations are not two leaders.
        let intervals = vec![iv(0, 1, 0.0, 1000.0), iv(0, 2, 900.0, 2000.0)];
        assert!(overlap_details(&terms(&intervals)).is_empty());
    }

    #[test]
    fn an_overlap_is_found_however_the_intervals_are_ordered() {
        let intervals = vec![
            iv(1, 2, 500.0, 600.0),
            iv(2, 3, 700.0, 800.0),
            iv(0, 1, 0.0, 5000.0),
        ];
        assert_eq!(overlap_details(&terms(&intervals)).len(), 2);
    }

    #[test]
    fn tokens_going_backwards_or_repeating_are_caught() {
        let backwards = vec![iv(0, 5, 0.0, 100.0), iv(1, 4, 200.0, 300.0)];
        assert!(!testing::tokens_increase(&terms(&backwards)));
        let repeated = vec![iv(0, 5, 0.0, 100.0), iv(1, 5, 200.0, 300.0)];
        assert!(!testing::tokens_increase(&terms(&repeated)));
        let fine = vec![iv(1, 9, 200.0, 300.0), iv(0, 5, 0.0, 100.0)];
        assert!(testing::tokens_increase(&terms(&fine)));
        let report = Report::build(&data(backwards, vec![]));
        assert!(!report.tokens_monotonic);
        assert!(!report.safe);
        assert_eq!(report.overlap_count, 0);
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let stats = Stats::of(&samples);
        assert_eq!(stats.count, 100);
        assert_eq!(stats.p50, Some(50.0));
        assert_eq!(stats.p99, Some(99.0));
        assert_eq!(stats.max, Some(100.0));
        let one = Stats::of(&[42.0]);
        assert_eq!(
            (one.p50, one.p99, one.max),
            (Some(42.0), Some(42.0), Some(42.0))
        );
        let unsorted = Stats::of(&[30.0, 10.0, 20.0]);
        assert_eq!(unsorted.p50, Some(20.0));
        assert_eq!(unsorted.p99, Some(30.0));
        let none = Stats::of(&[]);
        assert_eq!(none.count, 0);
        assert_eq!(none.p50, None);
        let json = serde_json::to_value(&none).unwrap();
        assert_eq!(json["p99"], serde_json::Value::Null);
    }

    #[test]
    fn leaderless_time_merges_overlapping_and_clips_to_the_run() {
        let intervals = vec![
            iv(0, 1, 100.0, 500.0),
            iv(1, 2, 400.0, 900.0),
            iv(2, 3, 1000.0, 20_000.0),
        ];
        // Gaps: [0,100) and [900,1000); the last term is clipped at 10 s.
        assert_eq!(leaderless_ms(&intervals, 10_000.0), 200.0);
        assert_eq!(leaderless_ms(&[], 10_000.0), 10_000.0);
    }

    #[test]
    fn faults_are_attributed_to_the_next_term() {
        let intervals = vec![
            iv(0, 1, 0.0, 2000.0),
            // Graceful stop of 0 at 2000, 1 takes over 15 ms later.
            iv(1, 2, 2015.0, 4000.0),
            // 1 crashes at 4000; its last renewal was at 3700; 2 takes over at 4900.
            iv(2, 3, 4900.0, 7000.0),
            // 2 is partitioned at 7000; 0 takes over at 8000.
            iv(0, 4, 8000.0, 10_000.0),
        ];
        let faults = vec![
            fault(FaultKind::Graceful, 0, 2000.0, Some(1900.0)),
            fault(FaultKind::Crash, 1, 4000.0, Some(3700.0)),
            fault(FaultKind::Partition, 2, 7000.0, Some(6900.0)),
            fault(FaultKind::Crash, 0, 9500.0, Some(9400.0)),
        ];
        let report = Report::build(&data(intervals, faults));
        assert_eq!(report.graceful_handover_ms.count, 1);
        assert_eq!(report.graceful_handover_ms.max, Some(15.0));
        assert_eq!(report.crash_failover_ms.count, 1);
        assert_eq!(report.crash_failover_ms.p50, Some(1200.0));
        assert_eq!(report.partition_failover_ms.max, Some(1000.0));
        assert_eq!(report.faults[1].next_leader, Some(2));
        assert_eq!(report.faults[1].next_token, Some(3));
        assert_eq!(report.faults[1].recovered_after_ms, Some(900.0));
        assert_eq!(report.faults[1].failover_ms, Some(1200.0));
        // The last crash was never followed by a new term.
        assert!(!report.faults[3].recovered);
        assert!(!report.all_faults_recovered);
        assert!(report.safe);
    }

    #[test]
    fn follower_load_is_per_follower_per_lease() {
        let mut d = data(vec![], vec![]);
        d.ops = OpCounts {
            connect: 2,
            acquire: 18,
            renew: 100,
            release: 1,
            current_leader: 0,
            candidate: 0,
        };
        // Two followers for 10 s with a 1 s lease: 20 follower-leases, 20 follower calls.
        d.follower_time_ms = 20_000.0;
        let report = Report::build(&d);
        assert_eq!(report.backend_ops.total, 121);
        assert_eq!(report.backend_ops.per_follower_per_lease, Some(1.0));
        let json = serde_json::to_value(&report).unwrap();
        for field in [
            "backend",
            "contenders",
            "duration_s",
            "lease_duration_ms",
            "terms",
            "overlap_count",
            "max_overlap_ms",
            "tokens_monotonic",
            "graceful_handover_ms",
            "crash_failover_ms",
            "leaderless_ms_total",
            "backend_ops",
            "faults",
        ] {
            assert!(json.get(field).is_some(), "missing {field}");
        }
        assert!(json["backend_ops"].get("per_follower_per_lease").is_some());
        assert!(json["crash_failover_ms"].get("p99").is_some());
    }

    #[test]
    fn a_leader_may_keep_its_term_through_a_coordinated_failover() {
        // c0 keeps token 1 through the first handover; the second one ends its term, and c1
        // leads next.
        let mut kept = fault(FaultKind::ServerHandover, 0, 1000.0, None);
        kept.token = Some(1);
        kept.restored_at_ms = Some(1500.0);
        let mut ended = fault(FaultKind::ServerHandover, 0, 4000.0, None);
        ended.token = Some(1);
        ended.restored_at_ms = Some(4500.0);
        let report = Report::build(&data(
            vec![iv(0, 1, 0.0, 4200.0), iv(1, 2, 6000.0, 9000.0)],
            vec![kept, ended],
        ));
        assert_eq!(report.server_handovers_kept, 1);
        assert!(report.faults[0].recovered);
        assert_eq!(report.faults[0].next_leader, None);
        assert!(report.faults[1].recovered);
        assert_eq!(report.faults[1].next_leader, Some(1));
        assert_eq!(report.faults[1].recovered_after_ms, Some(2000.0));
        assert!(report.all_faults_recovered && report.safe);
        assert!(report.to_text().contains("kept its term through 1"));
    }

    #[test]
    fn server_failovers_are_measured_from_the_fault_and_from_completion() {
        let mut failover = fault(FaultKind::ServerFailover, 0, 1000.0, Some(900.0));
        failover.restored_at_ms = Some(12_000.0);
        let mut d = data(
            vec![iv(0, 1, 0.0, 12_100.0), iv(1, 2, 13_500.0, 15_000.0)],
            vec![failover],
        );
        d.spawned = Some("sentinel".into());
        let report = Report::build(&d);
        assert_eq!(report.server_failover_recovery_ms.p50, Some(12_500.0));
        assert_eq!(report.server_failover_after_complete_ms.p50, Some(1500.0));
        assert_eq!(report.server_fault_recovery_ms.count, 0);
        assert!(report.safe);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["spawned"], "sentinel");
        assert_eq!(json["faults"][0]["kind"], "server_failover");
        assert!(report.to_text().contains("after the failover completed"));
    }
}
