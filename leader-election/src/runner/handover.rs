//! How a leader gives its lease up: a stop, a resign, a hand-over to a preferred candidate,
//! a step-down after failed renewals; leader work always ends before the release.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Operation, Result};
use crate::event::{ChangeReason, ElectionEvent};
use crate::state::{Leadership, Role};
use crate::store::{Lease, LeaseRequest, LeaseStore};
use crate::transition::term_ended;

use super::Runner;

impl<S: LeaseStore> Runner<S> {
    /// Graceful stop of a leader: cancel the work, wait for it, release.
    pub(super) async fn step_down_for_stop(
        &mut self,
        term: &Leadership,
        lease: &Lease,
    ) -> Result<()> {
        term_ended(
            &self.shared,
            term,
            ChangeReason::Stopped,
            Role::Releasing,
            self.observed.clone(),
        );
        self.work_finished().await?;
        if !self.shared.options.enable_graceful_shutdown {
            return Ok(());
        }
        let request = self.request.clone();
        self.release_after_work(&request, lease).await
    }

    /// Resigning leader: ends the term, waits for leader work (up to `shutdown_timeout`),
    /// releases so that a follower takes over at once, and stays out for `cool_down`.
    pub(super) async fn resign(
        &mut self,
        term: &Leadership,
        lease: &Lease,
        cool_down: Duration,
        reason: ChangeReason,
    ) -> Result<()> {
        self.answer_proclaims(&Ok(false));
        self.observed = None;
        term_ended(&self.shared, term, reason, Role::Follower, None);
        self.cool_down_until = Some(Instant::now() + cool_down);
        let request = self.request.clone();
        // The successor's record may be deleted under it before this contender asks again:
        // found missing then, it is withheld as from a follower that saw it held.
        self.request.expects_record = true;
        self.new_candidacy();
        self.work_finished().await?;
        self.release_after_work(&request, lease).await
    }

    /// A follower about to attempt: announces its priority, or answers how long to let a
    /// stronger candidate try first (see [preferred leaders](crate::priority)).
    pub(super) async fn yield_to_candidate(&mut self) -> Option<Duration> {
        if !self.pending.is_empty() {
            return None;
        }
        let Self {
            shared,
            preference,
            observed,
            ..
        } = self;
        let last_leader = observed.as_ref().map(|l| l.instance_id.as_str());
        preference
            .before_attempt(&shared.store, &shared.options.instance_id, last_leader)
            .await
    }

    /// A leader that has just renewed: hands over to a waiting candidate with a higher
    /// priority once its minimum tenure is served. Answers whether the term ended.
    pub(super) async fn hand_over_to_candidate(
        &mut self,
        term: &Leadership,
        lease: &Lease,
    ) -> bool {
        let Self {
            shared, preference, ..
        } = self;
        let candidate = preference
            .handover_to(
                &shared.store,
                &shared.options.instance_id,
                term.acquired_instant(),
            )
            .await;
        let Some(candidate) = candidate else {
            return false;
        };
        tracing::info!(
            candidate = %candidate.instance_id,
            priority = candidate.priority,
            "handing over to a preferred candidate"
        );
        let cool_down = self.preference.cool_down();
        // Errors were reported by `resign`; the term has ended all the same.
        let _ = self
            .resign(term, lease, cool_down, ChangeReason::PreferredLeader)
            .await;
        true
    }

    /// Waits, up to `shutdown_timeout`, for leader work (already cancelled) to finish. Work
    /// still running then keeps the lease from being released: it expires on its own, so a
    /// successor never starts while the old work runs.
    pub(super) async fn work_finished(&mut self) -> Result<()> {
        let grace = self.shared.options.shutdown_timeout;
        let mut work = self.shared.work.subscribe();
        let idle = tokio::time::timeout(grace, work.wait_for(|running| *running == 0))
            .await
            .is_ok();
        if idle {
            return Ok(());
        }
        let err = Error::WorkStillRunning(grace);
        tracing::warn!(error = %err, "not releasing the lease");
        self.emit(ElectionEvent::Error(err.clone()));
        Err(err)
    }

    /// Releases `lease` (acquired by `request`) once leader work has finished, reporting a
    /// failure.
    pub(super) async fn release_after_work(
        &mut self,
        request: &LeaseRequest,
        lease: &Lease,
    ) -> Result<()> {
        let released = self
            .call(
                Operation::Release,
                self.shared.store.release(request, lease),
            )
            .await;
        match released {
            Ok(released) => {
                tracing::debug!(token = %lease.token, released, "released the lease");
                Ok(())
            }
            Err(err) => {
                self.fail(err.clone());
                Err(err)
            }
        }
    }

    /// Best-effort release after stepping down for cause: frees the lease at once if the
    /// backend can still be reached. Only the owner can release, so this is always safe.
    /// `request` is the one that acquired `lease`.
    pub(super) async fn release_quietly(&mut self, request: &LeaseRequest, lease: &Lease) {
        let released = self
            .call(
                Operation::Release,
                self.shared.store.release(request, lease),
            )
            .await;
        if let Err(err) = released {
            tracing::debug!(error = %err, "could not release after stepping down");
        }
    }
}
