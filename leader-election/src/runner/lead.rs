//! The leader's side of the loop: the term, its renewals and how it ends.

use std::time::SystemTime;

use tokio::time::{Instant, sleep_until};

use crate::backoff::renew_retry_delay;
use crate::election::lock;
use crate::error::Operation;
use crate::event::{ChangeReason, ElectionEvent};
use crate::metrics;
use crate::state::{Leadership, Role};
use crate::store::{Lease, LeaseStore, RenewOutcome};
use crate::transition::term_ended;

use super::{Command, Runner, TermEnd};

impl<S: LeaseStore> Runner<S> {
    /// Runs one term of leadership, from a lease acquired by a request sent at `sent_at`.
    pub(super) async fn lead(&mut self, lease: Lease, sent_at: Instant) -> TermEnd {
        let options = &self.shared.options;
        let valid_for = options
            .lease_duration
            .saturating_sub(options.deadline_margin());
        let renew_interval = options.renew_interval;
        let max_attempts = options.max_retry_attempts;
        let timeout = options.operation_timeout();
        let mut deadline = sent_at + valid_for;
        let now = Instant::now();
        if now >= deadline {
            // The acquisition was confirmed too late to be trusted.
            tracing::warn!(token = %lease.token, "lease acquired after its local deadline; not leading");
            self.answer(&Ok(false));
            let request = self.request.clone();
            self.release_quietly(&request, &lease).await;
            // Released, the lease may go to another contender, under whom it may be deleted.
            self.request.expects_record = true;
            self.new_candidacy();
            return TermEnd::Follow;
        }
        let term = Leadership::new(lease.token, now, deadline);
        *lock(&self.shared.term) = Some(term.clone());
        *lock(&self.shared.last_renewal) = Some(SystemTime::now());
        let me = self.me(lease.token);
        self.observe(Some(me));
        self.publish(Role::Leader, Some(lease.token));
        metrics::set_leader(self.name(), true);
        metrics::transition(self.name(), ChangeReason::Acquired);
        // The token of the latest term, on every event of the loop from now on.
        tracing::Span::current().record("token", lease.token.get());
        tracing::info!(token = %lease.token, "became leader");
        self.emit(ElectionEvent::LeadershipChanged {
            is_leader: true,
            token: lease.token,
            reason: ChangeReason::Acquired,
            at: now,
        });
        self.answer(&Ok(true));

        let mut next_renew = sent_at + renew_interval;
        let mut failures = 0u32;
        loop {
            tokio::select! {
                biased;
                () = self.shared.abandon.cancelled() => {
                    self.end_term(&term, ChangeReason::Dropped);
                    return self.exit(Ok(())).into();
                }
                () = sleep_until(deadline) => {
                    self.end_term(&term, ChangeReason::DeadlinePassed);
                    return TermEnd::Follow;
                }
                () = self.stop.cancelled() => {
                    let result = self.step_down_for_stop(&term, &lease).await;
                    return self.exit(result).into();
                }
                Some(command) = self.commands.recv() => match command {
                    Command::TryAcquire(reply) => {
                        let _ = reply.send(Ok(true));
                        continue;
                    }
                    Command::Resign(cool_down, reply) => {
                        let result =
                            self.resign(&term, &lease, cool_down, ChangeReason::Resigned).await;
                        let _ = reply.send(result.map(|()| true));
                        return TermEnd::Follow;
                    }
                    Command::Proclaim(reply) => {
                        // Renew now, carrying the new metadata: the backend stores both at
                        // once, and the caller learns when it did.
                        self.request.metadata = lock(&self.shared.metadata).clone();
                        self.proclaims.push(reply);
                        next_renew = Instant::now();
                        continue;
                    }
                },
                () = sleep_until(next_renew) => {}
            }

            let renew_sent = Instant::now();
            let renew = self.call(
                Operation::Renew,
                self.shared.store.renew(&self.request, &lease),
            );
            let result = tokio::select! {
                biased;
                () = self.shared.abandon.cancelled() => {
                    self.end_term(&term, ChangeReason::Dropped);
                    return self.exit(Ok(())).into();
                }
                () = sleep_until(deadline) => {
                    self.end_term(&term, ChangeReason::DeadlinePassed);
                    return TermEnd::Follow;
                }
                result = renew => result,
            };
            match result {
                // A renewal confirmed after the deadline must not resurrect leadership: the work
                // may already have been cancelled, and the lease may have changed hands.
                Ok(RenewOutcome::Renewed) if Instant::now() >= deadline => {
                    self.end_term(&term, ChangeReason::DeadlinePassed);
                    return TermEnd::Follow;
                }
                Ok(RenewOutcome::Renewed) => {
                    deadline = renew_sent + valid_for;
                    term.extend(deadline);
                    next_renew = renew_sent + renew_interval;
                    failures = 0;
                    *lock(&self.shared.last_renewal) = Some(SystemTime::now());
                    tracing::trace!(token = %lease.token, "renewed");
                    let me = self.me(lease.token);
                    if self.observed.as_ref() != Some(&me) {
                        // New metadata confirmed: this contender's own view shows it too.
                        self.observe(Some(me));
                        self.publish(Role::Leader, Some(lease.token));
                    }
                    self.answer_proclaims(&Ok(true));
                    if self.hand_over_to_candidate(&term, &lease).await {
                        return TermEnd::Follow;
                    }
                }
                Ok(RenewOutcome::Lost) => {
                    self.end_term(&term, ChangeReason::LeaseLost);
                    return TermEnd::Follow;
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    self.answer_proclaims(&Err(err.clone()));
                    self.fail(err);
                    if failures >= max_attempts {
                        // Release under the lease id of the term that ended: `end_term` has
                        // already drawn a new one for the next candidacy, which owns nothing.
                        let ended = self.request.clone();
                        self.end_term(&term, ChangeReason::RenewFailed);
                        // Rule 13: only once the work has ended. Work still running keeps
                        // the lease, which runs out on its own (this step-down comes before
                        // the deadline, so a release now would wake a successor early).
                        if self.work_finished().await.is_ok() {
                            self.release_quietly(&ended, &lease).await;
                        }
                        return TermEnd::Follow;
                    }
                    // Space the remaining attempts so that all of them, timeouts included,
                    // complete before the deadline: the last failure then steps down (and
                    // releases, if it can) ahead of it.
                    let now = Instant::now();
                    next_renew = now
                        + renew_retry_delay(
                            self.backoff(failures),
                            deadline.saturating_duration_since(now),
                            timeout,
                            self.shared.options.deadline_slack,
                            failures,
                            max_attempts,
                        );
                }
            }
        }
    }

    /// Ends the current term locally and goes back to following under a new candidacy.
    pub(super) fn end_term(&mut self, term: &Leadership, reason: ChangeReason) {
        self.answer_proclaims(&Ok(false));
        self.observed = None;
        term_ended(&self.shared, term, reason, Role::Follower, None);
        // A term that ran out (cut off, renewals failing) may have been followed by another
        // contender's: a record found missing later may have been deleted under that holder,
        // as for a follower that saw it held. Only a renewal that found the lease gone
        // (`LeaseLost`) leaves this contender as the last holder it knows of.
        if reason != ChangeReason::LeaseLost {
            self.request.expects_record = true;
        }
        self.new_candidacy();
    }
}
