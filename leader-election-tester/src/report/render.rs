//! The report as printed: a few readable lines (`--report text`) or one JSON object
//! (`--report json`, field names documented in the README).

use std::fmt::Write as _;

use super::{Report, Stats};
use crate::faults::FaultKind;

impl Report {
    /// The report as one pretty-printed JSON object.
    ///
    /// # Errors
    /// When serialization fails (it does not for this type).
    pub(crate) fn to_json(&self) -> Result<String, String> {
        serde_json::to_string_pretty(self).map_err(|e| e.to_string())
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
            "graceful handover: {}\ncrash failover:    {} (from the last renewal sent) | from \
             the crash: {}\npartition failover: {}",
            stats(&self.graceful_handover_ms),
            stats(&self.crash_failover_ms),
            stats(&self.crash_failover_from_crash_ms),
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
                "server handovers (Redis CLUSTER FAILOVER, etcd and ZooKeeper server kills): {handovers}, \
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
            let handovers: Vec<String> = self
                .preferred_handovers
                .iter()
                .map(|h| {
                    let priority = h
                        .to_priority
                        .map_or_else(String::new, |p| format!(" (priority {p})"));
                    format!("c{} -> c{}{priority}", h.from, h.to)
                })
                .collect();
            let _ = writeln!(out, "  handed over: {}", handovers.join(", "));
        }
        for (action, recovery) in &self.operator_recovery_ms {
            let _ = writeln!(out, "operator {action}: recovery {}", stats(recovery));
        }
        for (kind, k) in &self.by_fault_kind {
            let believed =
                k.believed_after_last_confirmed_ms
                    .as_ref()
                    .map_or_else(String::new, |b| {
                        format!(
                            " | believed it led after its last confirmed renewal: {}",
                            stats(b)
                        )
                    });
            let _ = writeln!(
                out,
                "{kind}: injected {}, recovered {} | overlaps {} | token regressions {} | \
                 leader back: {}{believed}",
                k.injected,
                k.recovered,
                k.overlaps,
                k.token_regressions,
                stats(&k.leader_back_ms)
            );
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
        if let Some(first) = self.faults_not_injected.first() {
            let kinds: Vec<&str> = self
                .faults_not_injected
                .iter()
                .map(|n| n.kind.as_str())
                .collect();
            let _ = writeln!(
                out,
                "NOT TESTED: {} never injected (the run needs about {:.0}s)",
                kinds.join(", "),
                first.run_needs_s
            );
        }
        for job in &self.jobs {
            let _ = writeln!(
                out,
                "job {}: {} occurrences ({} runs on {} contenders) | duplicates {} | lost {} \
                 (and {} with the backend's data, {} interrupted and given up) | token \
                 regressions {} | missed {} | interrupted {} | started p50 {:.1}ms p99 {:.1}ms \
                 after the due time",
                job.job,
                job.occurrences,
                job.runs,
                job.contenders,
                job.duplicates,
                job.lost,
                job.lost_with_data,
                job.given_up_interrupted,
                job.token_regressions,
                job.missed,
                job.interrupted,
                job.start_late_p50_ms,
                job.start_late_p99_ms
            );
        }
        let verdict = match (self.safe, self.jobs.is_empty()) {
            (true, true) => "SAFE: never two leaders, tokens always increased",
            (true, false) => {
                "SAFE: never two leaders, tokens always increased, each job occurrence ran once \
                 and none was lost"
            }
            (false, true) => "UNSAFE: two leaders at once or a token went backwards",
            (false, false) => {
                "UNSAFE: two leaders at once, a token went backwards, or a job occurrence ran \
                 twice or was lost"
            }
        };
        let _ = writeln!(out, "{verdict}");
        out
    }
}
