//! The analysis of a run: the safety verdict (overlapping terms and token order, by the
//! workspace's one checker, [`leader_election::testing`]), and the statistics of handovers,
//! failovers, leaderless time and backend load. Pure: it takes what the run recorded (times in
//! milliseconds since the run's epoch, on one monotonic clock) and returns a [`Report`], so it
//! is tested on hand-built interval sets.

use std::collections::BTreeMap;

use leader_election::FencingToken;
use leader_election::testing::{self, Term};

use super::{
    BackendOps, Fault, FaultReport, Interval, KindReport, Overlap, PreferredHandover, Report,
    RunData, Stats,
};
use crate::faults::FaultKind;

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

/// Every term that ended by handing over to a preferred contender, with the next term.
fn preferred_handovers(data: &RunData) -> Vec<PreferredHandover> {
    let priority = |slot: usize| data.priorities.get(slot).copied();
    data.intervals
        .iter()
        .filter(|i| i.end_reason == "preferred_leader")
        .filter_map(|i| {
            let next = next_term_after(&data.intervals, i.end_ms)?;
            Some(PreferredHandover {
                from: i.contender,
                from_priority: priority(i.contender),
                to: next.contender,
                to_priority: priority(next.contender),
                at_ms: round(i.end_ms),
                after_ms: round(next.start_ms - i.end_ms),
            })
        })
        .collect()
}

/// The kind of the latest fault injected at or before `at`, if any.
fn fault_before(faults: &[Fault], at: f64) -> Option<FaultKind> {
    faults
        .iter()
        .filter(|f| f.at_ms <= at)
        .max_by(|a, b| a.at_ms.total_cmp(&b.at_ms))
        .map(|f| f.kind)
}

/// What the faults of each kind did: counts, the overlaps and token regressions the shared
/// checker finds laid at the latest fault before each, leader back after, and for the faults
/// that stop every reply reaching the victim how long it believed it led after its last
/// confirmed renewal.
fn by_fault_kind(
    data: &RunData,
    terms: &[Term<usize, f64>],
    reports: &[FaultReport],
) -> BTreeMap<String, KindReport> {
    type Samples = (KindReport, Vec<f64>, Vec<f64>);
    fn entry(kinds: &mut BTreeMap<String, Samples>, kind: FaultKind) -> &mut Samples {
        kinds.entry(kind.as_str().to_owned()).or_default()
    }
    let mut kinds: BTreeMap<String, Samples> = BTreeMap::new();
    for (fault, report) in data.faults.iter().zip(reports) {
        let (summary, back, believed) = entry(&mut kinds, fault.kind);
        summary.injected += 1;
        summary.recovered += usize::from(report.recovered);
        back.extend(report.recovered_after_ms);
        let silenced = matches!(
            fault.kind,
            FaultKind::Partition
                | FaultKind::DropReplies
                | FaultKind::DropRequests
                | FaultKind::Latency
        );
        if silenced && let Some(confirmed) = fault.term_confirmed_ms.or(fault.last_confirmed_ms) {
            let healed = fault.restored_at_ms.unwrap_or(f64::INFINITY);
            believed.extend(
                data.intervals
                    .iter()
                    .filter(|i| {
                        i.contender == fault.contender
                            && Some(i.token) == fault.token
                            && i.start_ms <= fault.at_ms
                            && i.end_ms <= healed
                    })
                    .map(|i| i.end_ms - confirmed),
            );
        }
    }
    for (a, b) in testing::overlaps(terms) {
        if let Some(kind) = fault_before(&data.faults, a.start.max(b.start)) {
            entry(&mut kinds, kind).0.overlaps += 1;
        }
    }
    for (_, later) in testing::token_regressions(terms) {
        if let Some(kind) = fault_before(&data.faults, later.start) {
            entry(&mut kinds, kind).0.token_regressions += 1;
        }
    }
    kinds
        .into_iter()
        .map(|(kind, (mut summary, back, believed))| {
            summary.leader_back_ms = Stats::of(&back);
            if !believed.is_empty() {
                summary.believed_after_last_confirmed_ms = Some(Stats::of(&believed));
            }
            (kind, summary)
        })
        .collect()
}

/// The first term to begin strictly after `at`.
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
        let mut crash_from_crash = Vec::new();
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
                let kept = fault.may_keep_term
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
                        Some(n.start_ms - fault.last_sent_ms.unwrap_or(fault.at_ms))
                    }
                    _ => None,
                };
                if let Some(after) = recovered_after {
                    match fault.kind {
                        FaultKind::Graceful => graceful.push(after),
                        FaultKind::Resign => resign.push(after),
                        FaultKind::Crash => {
                            crash.push(failover.unwrap_or(after));
                            crash_from_crash.push(after);
                        }
                        FaultKind::Partition => partition.push(after),
                        FaultKind::DropReplies
                        | FaultKind::DropRequests
                        | FaultKind::Loss
                        | FaultKind::Latency
                        | FaultKind::ClockStep => {}
                        FaultKind::ServerRestart | FaultKind::ServerPause => server.push(after),
                        FaultKind::ServerHandover | FaultKind::ServerPartition => {}
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
                    last_confirmed_ms: fault.last_confirmed_ms.map(round),
                    last_sent_ms: fault.last_sent_ms.map(round),
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
        let preferred = preferred_handovers(data);
        Self {
            backend: data.backend.clone(),
            spawned: data.spawned.clone(),
            redis_min_replica_acks: data.redis_min_replica_acks,
            contenders: data.contenders,
            processes: data.processes,
            clock_faults: data.clock_faults.clone(),
            duration_s: (data.duration_ms / 10.0).round() / 100.0,
            lease_duration_ms: round(lease),
            terms: data.intervals.len(),
            overlap_count,
            max_overlap_ms,
            overlaps: all_overlaps.into_iter().take(OVERLAPS_LISTED).collect(),
            tokens_monotonic,
            graceful_handover_ms: Stats::of(&graceful),
            resign_handover_ms: Stats::of(&resign),
            preferred_handover_ms: Stats::of(
                &preferred.iter().map(|h| h.after_ms).collect::<Vec<_>>(),
            ),
            preferred_handovers: preferred,
            crash_failover_ms: Stats::of(&crash),
            crash_failover_from_crash_ms: Stats::of(&crash_from_crash),
            partition_failover_ms: Stats::of(&partition),
            server_fault_recovery_ms: Stats::of(&server),
            server_failover_recovery_ms: Stats::of(&failover_recovery),
            server_failover_after_complete_ms: Stats::of(&after_complete),
            server_handovers_kept: handovers_kept,
            operator_recovery_ms: operator
                .iter()
                .map(|(action, samples)| (action.clone(), Stats::of(samples)))
                .collect(),
            by_fault_kind: by_fault_kind(data, &terms, &faults),
            leaderless_ms_total: round(leaderless_ms(&data.intervals, data.duration_ms)),
            backend_ops: BackendOps {
                total: data.ops.total(),
                per_follower_per_lease,
                by_operation: data.ops,
            },
            all_faults_recovered: faults.iter().all(|f| f.recovered),
            faults_not_injected: data.not_injected.clone(),
            faults,
            jobs: data.jobs.clone(),
            safe: overlap_count == 0
                && tokens_monotonic
                && data.jobs.iter().all(super::JobReport::ok),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Fault, NotInjected, OpCounts};

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
            last_sent_ms: last,
            restored_at_ms: None,
            action: None,
            term_confirmed_ms: None,
            may_keep_term: kind.may_keep_term(),
        }
    }

    #[test]
    fn preferred_handovers_run_from_the_handing_over_term_to_the_next() {
        let mut handed = iv(0, 1, 0.0, 100.0);
        handed.end_reason = "preferred_leader".into();
        let mut d = data(
            vec![handed, iv(2, 2, 101.5, 300.0), iv(1, 3, 400.0, 500.0)],
            vec![],
        );
        d.priorities = vec![0, 0, 5];
        let report = Report::build(&d);
        assert_eq!(report.preferred_handover_ms.count, 1);
        assert_eq!(report.preferred_handover_ms.max, Some(1.5));
        let handover = &report.preferred_handovers[0];
        assert_eq!((handover.from, handover.to), (0, 2));
        assert_eq!(handover.to_priority, Some(5));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["preferred_handovers"][0]["to"], 2);
        assert!(report.to_text().contains("c0 -> c2 (priority 5)"));
    }

    #[test]
    fn each_fault_kind_is_reported_with_what_it_did() {
        // c0 leads with token 1; its replies are dropped at 1000 (last confirmed renewal sent
        // at 900): it believes it leads until 2700, c1 takes over at 3100, the fault is healed
        // at 3200. Loss hits c1 at 5000: it keeps its term through the heal at 7000. Then a
        // partition of c1 at 8000 after which c2 leads with a token that went back, and
        // overlaps c1's term.
        let intervals = vec![
            iv(0, 1, 0.0, 2700.0),
            iv(1, 2, 3100.0, 8600.0),
            iv(2, 2, 8500.0, 9000.0),
        ];
        let mut replies = fault(FaultKind::DropReplies, 0, 1000.0, Some(700.0));
        replies.token = Some(1);
        replies.restored_at_ms = Some(3200.0);
        // The reply to the renewal sent at 900 arrived just before the fault took effect, and
        // was reported after it was injected.
        replies.term_confirmed_ms = Some(900.0);
        let mut loss = fault(FaultKind::Loss, 1, 5000.0, Some(4900.0));
        loss.token = Some(2);
        loss.restored_at_ms = Some(7000.0);
        let mut cut = fault(FaultKind::Partition, 1, 8000.0, Some(7900.0));
        cut.token = Some(2);
        let report = Report::build(&data(intervals, vec![replies, loss, cut]));
        let kinds = &report.by_fault_kind;
        let replies = &kinds["drop_replies"];
        assert_eq!((replies.injected, replies.recovered), (1, 1));
        assert_eq!((replies.overlaps, replies.token_regressions), (0, 0));
        assert_eq!(replies.leader_back_ms.max, Some(2100.0));
        let believed = replies.believed_after_last_confirmed_ms.as_ref().unwrap();
        assert_eq!(believed.max, Some(1800.0));
        // The leader kept its term through the loss: recovered, with no new term.
        let loss = &kinds["loss"];
        assert_eq!((loss.injected, loss.recovered), (1, 1));
        assert_eq!(loss.leader_back_ms.count, 0);
        assert!(loss.believed_after_last_confirmed_ms.is_none());
        // What went wrong after the partition is laid at the partition's door.
        let cut = &kinds["partition"];
        assert_eq!((cut.overlaps, cut.token_regressions), (1, 1));
        // Never healed: the victim's belief counts to its term's end.
        assert_eq!(
            cut.believed_after_last_confirmed_ms
                .as_ref()
                .and_then(|b| b.max),
            Some(700.0)
        );
        assert!(!report.safe);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["by_fault_kind"]["drop_replies"]["injected"], 1);
        let text = report.to_text();
        assert!(
            text.contains("drop_replies: injected 1, recovered 1"),
            "{text}"
        );
    }

    #[test]
    fn a_fault_kind_never_injected_is_reported_and_not_tested() {
        let mut d = data(vec![iv(0, 1, 0.0, 10_000.0)], vec![]);
        d.not_injected = vec![NotInjected {
            kind: FaultKind::ServerFailover,
            run_needs_s: 64.0,
        }];
        let report = Report::build(&d);
        assert_eq!(report.faults_not_injected.len(), 1);
        let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
        assert_eq!(json["faults_not_injected"][0]["kind"], "server_failover");
        assert_eq!(json["faults_not_injected"][0]["run_needs_s"], 64.0);
        assert!(
            report
                .to_text()
                .contains("NOT TESTED: server_failover never injected (the run needs about 64s)")
        );
        // Safe, but not what was asked: the verdict does not hide it.
        assert!(report.safe);
    }

    #[test]
    fn crash_failover_runs_from_the_last_renewal_sent_even_unanswered() {
        // The last confirmed renewal was sent at 3500; one more went out at 3900 and was never
        // answered (the leader died at 4000), but it extended the lease on the server.
        let intervals = vec![iv(0, 1, 0.0, 4000.0), iv(1, 2, 6100.0, 8000.0)];
        let mut crash = fault(FaultKind::Crash, 0, 4000.0, Some(3500.0));
        crash.last_sent_ms = Some(3900.0);
        let report = Report::build(&data(intervals, vec![crash]));
        assert_eq!(report.crash_failover_ms.p50, Some(2200.0));
        assert_eq!(report.crash_failover_from_crash_ms.p50, Some(2100.0));
        let text = report.to_text();
        assert!(text.contains("from the last renewal sent"), "{text}");
        assert!(text.contains("from the crash: n=1 p50=2100ms"), "{text}");
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
        // From the crash itself: 900 ms.
        assert_eq!(report.crash_failover_from_crash_ms.p50, Some(900.0));
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
