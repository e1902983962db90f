//! A deployment the tester started for a backend (`--spawn-redis`, `--spawn-etcd`,
//! `--spawn-s3`), so that the server itself can be a fault: what it offers, and how each of its
//! faults is done.

use std::fmt;
use std::sync::Arc;

use tokio::time::Instant;

use super::BoxFuture;
use crate::faults::FaultKind;

/// When a failover (or a member kill) was complete: the old primary could no longer be
/// written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FailoverDone {
    /// When the promoted replica answered as the primary (etcd: when the other members
    /// answered).
    pub(crate) promoted: Instant,
    /// When the old primary followed the new one (Sentinel: it became a replica; Cluster:
    /// every node agreed that the promoted replica serves the slot, the old primary being
    /// dead).
    pub(crate) completed: Instant,
    /// When the killed node, started again, had rejoined.
    pub(crate) rejoined: Option<Instant>,
    /// The old primary's port (etcd: the killed member's).
    pub(crate) old_primary: u16,
    /// The promoted server's port (etcd: the Raft leader's).
    pub(crate) new_primary: u16,
}

/// A deployment the tester started; every process is killed (by PID) when it is dropped.
/// A fault a deployment does not offer is never asked of it (the run checks the backend's
/// [`server_faults`](super::Backend::server_faults) first); the default methods refuse it all
/// the same.
pub(crate) trait Server: Send + Sync + fmt::Debug {
    /// What the report's `spawned` says (`standalone`, `etcd-cluster`, ...).
    fn name(&self) -> String;

    /// One line saying what runs where, for the live output.
    fn describe(&self) -> String;

    /// What a fault of `kind` does, for the live output.
    fn fault_text(&self, kind: FaultKind) -> String;

    /// What the live output says when the fault of `kind` is over.
    fn restored_text(&self, kind: FaultKind) -> String;

    /// How long after a failover another one can succeed, in ms (a Redis Cluster's primaries
    /// vote once per two node timeouts).
    fn failover_gap_ms(&self) -> f64 {
        0.0
    }

    /// How much longer than a lease leadership may take to come back after a
    /// `server_partition` healed: a Sentinel primary cut off long enough for a failover serves
    /// its clients until the sentinels turn it into a replica, about 10 s after it hears them
    /// again.
    fn partition_settles(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Whether its data outlives a `server_restart` (a database on disk), so that a leader may
    /// come through the restart in its term. Default: no (the server comes back empty).
    fn restart_keeps_data(&self) -> bool {
        false
    }

    /// Kills the server and starts it again at once (`server_restart`).
    ///
    /// # Errors
    /// When it does not come back.
    fn restart(self: Arc<Self>) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async { Err("this deployment is not restarted".to_owned()) })
    }

    /// Freezes (`true`) or resumes (`false`) the server (`server_pause`).
    fn set_paused(&self, _paused: bool) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Cuts (`true`) a member of a replicated deployment (the Raft leader) off its peers while
    /// its clients still reach it, or heals it (`false`) (`server_partition`).
    ///
    /// # Errors
    /// When the deployment cannot, or has no member to cut.
    fn set_peers_cut(&self, _cut: bool) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Err("this deployment is not partitioned".to_owned()) })
    }

    /// Fails the primary holding the election over to a replica and waits until the failover
    /// is complete (`server_failover`).
    ///
    /// # Errors
    /// When the deployment has no replica, or the failover does not complete in time.
    fn failover(self: Arc<Self>) -> BoxFuture<'static, Result<FailoverDone, String>> {
        Box::pin(async { Err("this deployment is not failed over".to_owned()) })
    }

    /// A failover the leader may come through in its term (`server_handover`): a coordinated
    /// one, or a member of a cluster killed and started again.
    ///
    /// # Errors
    /// When the deployment cannot do it, or it does not complete in time.
    fn handover(self: Arc<Self>) -> BoxFuture<'static, Result<FailoverDone, String>> {
        Box::pin(async { Err("this deployment hands nothing over".to_owned()) })
    }

    /// What a completed failover did, for the live output; `ms` gives the run time of an
    /// instant, `at_ms` is when the fault was injected.
    fn failover_text(
        &self,
        done: &FailoverDone,
        ms: &dyn Fn(Instant) -> f64,
        at_ms: f64,
    ) -> String {
        let mut text = format!(
            "failover {} -> {}: promoted after {:.0} ms, complete after {:.0} ms",
            done.old_primary,
            done.new_primary,
            ms(done.promoted) - at_ms,
            ms(done.completed) - at_ms,
        );
        if let Some(rejoined) = done.rejoined {
            text.push_str(&format!(
                "; {} restarted, a replica again after {:.0} ms",
                done.old_primary,
                ms(rejoined) - at_ms
            ));
        }
        text
    }
}
