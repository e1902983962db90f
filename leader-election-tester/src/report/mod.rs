//! The report of a run: what the run recorded ([`RunData`]: leadership intervals, faults,
//! backend operations) and what is reported from it ([`Report`], whose field names are part of
//! the tester's interface). Computed in [`analysis`], printed by [`render`].

mod analysis;
mod render;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::backends::OperatorAction;
use crate::faults::FaultKind;

pub(crate) use analysis::{overlap_details, terms};

/// One term of leadership of one contender: `[start_ms, end_ms)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
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

/// A fault as injected by the run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Fault {
    /// What was done.
    pub(crate) kind: FaultKind,
    /// To which contender slot (always the leader at that moment).
    pub(crate) contender: usize,
    /// The token of the term the fault hit.
    pub(crate) token: Option<u64>,
    /// When it was injected.
    pub(crate) at_ms: f64,
    /// When the victim sent its last confirmed acquisition or renewal before the fault, if
    /// known.
    pub(crate) last_confirmed_ms: Option<f64>,
    /// When the victim sent its last request that may have extended its lease (the later of
    /// the last confirmed one and the last renewal sent, answered or not), if known.
    pub(crate) last_sent_ms: Option<f64>,
    /// When the victim was brought back (restarted, or its connection healed); for a server
    /// failover, when it was complete (the old primary a replica of the new one).
    pub(crate) restored_at_ms: Option<f64>,
    /// For an operator fault: what the operator did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) action: Option<OperatorAction>,
    /// When the victim sent the last acquisition or renewal confirmed in the term the fault
    /// hit, as known when that term ended (a reply that arrived just before the fault took
    /// effect may be reported after it was injected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) term_confirmed_ms: Option<f64>,
    /// Whether the leader may come through it keeping its term (see
    /// [`FaultKind::may_keep_term`]; a server restart of a deployment that keeps its data
    /// too), so that it is over when restored and recovered if somebody leads then.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) may_keep_term: bool,
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

/// A fault kind the run was asked for and never injected: the run ended before its turn, or
/// before it fitted (each fault needs time to play out before the run ends).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct NotInjected {
    /// The fault kind.
    pub(crate) kind: FaultKind,
    /// How long a run with these settings needs to inject every kind asked for once.
    pub(crate) run_needs_s: f64,
}

/// What the runs of one scheduled job showed (`--jobs`), from the jobs crate's shared check
/// ([`RunLog::verdict`](leader_election_jobs::testing::RunLog::verdict)).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct JobReport {
    /// The job.
    pub(crate) job: String,
    /// Occurrences that ran.
    pub(crate) occurrences: usize,
    /// Runs, retries included.
    pub(crate) runs: usize,
    /// How many contenders ran it.
    pub(crate) contenders: usize,
    /// Occurrences that ran twice (must be 0).
    pub(crate) duplicates: usize,
    /// Occurrences due between the first and the last run that never ran, but for those below
    /// (must be 0).
    pub(crate) lost: usize,
    /// Occurrences that never ran because the backend restarted empty (`server_restart`), or
    /// an operator deleted the records (`postgres_delete_all`), between the runs around them:
    /// the job's record went with the data, and the next leader started again from its clock
    /// (documented in the jobs crate's README).
    pub(crate) lost_with_data: usize,
    /// Occurrences that never ran because their claim was found interrupted and the job's
    /// policy gave them up (the claimant lost its term before it learnt that its claim
    /// landed): reported as `interrupted`, not silently lost.
    pub(crate) given_up_interrupted: usize,
    /// The due times (ms since the Unix epoch) of the first occurrences of `lost`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) lost_due_ms: Vec<u64>,
    /// Runs whose token went back from one occurrence to the next (must be 0).
    pub(crate) token_regressions: usize,
    /// Occurrences reported missed (due while nobody could run them).
    pub(crate) missed: u64,
    /// Runs found interrupted by a later term.
    pub(crate) interrupted: u64,
    /// How long after its due time a run started: median, by the running contender's clock.
    pub(crate) start_late_p50_ms: f64,
    /// The same, 99th percentile.
    pub(crate) start_late_p99_ms: f64,
}

impl JobReport {
    /// Whether the job's runs were as promised: each occurrence once, none lost, tokens
    /// growing.
    pub(crate) fn ok(&self) -> bool {
        self.duplicates == 0 && self.lost == 0 && self.token_regressions == 0
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
    /// Each contender's priority for preferred leaders, by slot; empty without `--priorities`.
    pub(crate) priorities: Vec<u32>,
    /// The fault kinds asked for and never injected (none when `--stop-after-faults` ended
    /// the run: that count was asked for).
    pub(crate) not_injected: Vec<NotInjected>,
    /// What `--clock-faults` did to the contenders' clocks (`step`, `rate`), if anything.
    pub(crate) clock_faults: Option<String>,
    /// The scheduled jobs' runs (`--jobs`), by job.
    pub(crate) jobs: Vec<JobReport>,
}

/// `{count, p50, p99, max}` of a set of durations in milliseconds; `null`s when empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
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

/// A leader handing over to a waiting contender with a higher priority: the term that ended
/// with `preferred_leader`, and the next term to begin.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct PreferredHandover {
    /// The contender that handed over.
    pub(crate) from: usize,
    /// Its priority.
    pub(crate) from_priority: Option<u32>,
    /// The contender that led next.
    pub(crate) to: usize,
    /// Its priority.
    pub(crate) to_priority: Option<u32>,
    /// When the handing-over term ended.
    pub(crate) at_ms: f64,
    /// From that end to the next term's start.
    pub(crate) after_ms: f64,
}

/// Two terms of different contenders that overlapped in time.
#[derive(Clone, Debug, PartialEq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct FaultReport {
    /// `graceful`, `crash` or `partition`.
    pub(crate) kind: FaultKind,
    /// The contender hit (the leader then).
    pub(crate) contender: usize,
    /// The token of the term the fault hit.
    pub(crate) token: Option<u64>,
    /// When the fault was injected.
    pub(crate) at_ms: f64,
    /// When the victim sent its last confirmed acquisition or renewal before the fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_confirmed_ms: Option<f64>,
    /// When the victim sent its last request that may have extended its lease (answered or
    /// not): where a crash's `failover_ms` starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) last_sent_ms: Option<f64>,
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
    /// For a crash: from the victim's last renewal sent (answered or in flight) to the next
    /// acquisition.
    pub(crate) failover_ms: Option<f64>,
    /// For an operator fault: what the operator did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) action: Option<OperatorAction>,
}

/// What the faults of one kind did (`by_fault_kind`). An overlap or a token regression is laid
/// at the door of the latest fault injected before it began.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct KindReport {
    /// How many were injected.
    pub(crate) injected: usize,
    /// How many were followed by a new term, or came through with the leader keeping its term
    /// (`server_handover`, `loss`).
    pub(crate) recovered: usize,
    /// Pairs of overlapping terms of different contenders: must be 0.
    pub(crate) overlaps: usize,
    /// Terms whose token did not exceed the one before: must be 0.
    pub(crate) token_regressions: usize,
    /// From the fault to the next term's start.
    pub(crate) leader_back_ms: Stats,
    /// For a fault that stops every reply reaching the leader in time (`partition`,
    /// `drop_replies`, `drop_requests`, `latency`), when its term ended before the fault was healed: from its last
    /// confirmed acquisition or renewal (when that was sent) to the end of its belief that it
    /// led. The library ends the belief before the lease minus its safety margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) believed_after_last_confirmed_ms: Option<Stats>,
}

/// The report of one run. The field names are part of the tester's interface (see README).
#[derive(Clone, Debug, PartialEq, Serialize)]
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
    /// What `--clock-faults` did to the contenders' clocks: `step` (wall clocks stepped by
    /// the `clock_step` fault) or `rate` (clocks running fast or slow); absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) clock_faults: Option<String>,
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
    /// Every handover to a preferred contender: who handed over to whom (`--priorities`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) preferred_handovers: Vec<PreferredHandover>,
    /// From a crashed leader's last renewal sent (answered or still in flight: either may
    /// have extended its lease on the server) to the next acquisition: what the library
    /// bounds by a lease and its slack.
    pub(crate) crash_failover_ms: Stats,
    /// From the crash itself to the next acquisition: what a service sees.
    pub(crate) crash_failover_from_crash_ms: Stats,
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
    /// What the faults of each kind did, by kind (`partition`, `drop_replies` ...).
    #[serde(default)]
    pub(crate) by_fault_kind: BTreeMap<String, KindReport>,
    /// Time within the run with no leader at all (including the first election).
    pub(crate) leaderless_ms_total: f64,
    /// Load on the backend.
    pub(crate) backend_ops: BackendOps,
    /// Every fault injected.
    pub(crate) faults: Vec<FaultReport>,
    /// Whether every fault was followed by a new term.
    pub(crate) all_faults_recovered: bool,
    /// The fault kinds asked for (`--faults`) that the run never injected: it did not test
    /// them. Empty when every kind asked for was injected at least once.
    pub(crate) faults_not_injected: Vec<NotInjected>,
    /// The scheduled jobs' runs (`--jobs`), by job; absent without jobs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) jobs: Vec<JobReport>,
    /// `overlap_count == 0 && tokens_monotonic`, and every job's occurrences ran once, none
    /// lost, tokens growing: the run saw no safety violation.
    pub(crate) safe: bool,
}
