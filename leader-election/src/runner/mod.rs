//! The election loop: one task per running contender, owning every backend call, timer and
//! transition, so that transitions happen in one order and are published in that order.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::backoff::{Backoff, jittered};
use crate::election::{Shared, lock};
use crate::error::{Error, Operation, Result};
use crate::event::ElectionEvent;
use crate::metrics;
use crate::priority::Preference;
use crate::state::{ElectionState, Role};
use crate::store::{
    AcquireOutcome, LeaderInfo, LeaseRequest, LeaseStore, ReleaseReceiver, WithholdReason,
};
use crate::transition::LoopGuard;

mod handover;
mod lead;

/// The shortest a follower sleeps between attempts, so that a backend reporting an
/// already-expired lease cannot spin the loop.
const MIN_FOLLOWER_SLEEP: Duration = Duration::from_millis(5);

/// A request from a handle to the loop.
#[derive(Debug)]
pub(crate) enum Command {
    /// Make an acquisition attempt now and answer whether this contender leads.
    TryAcquire(oneshot::Sender<Result<bool>>),
    /// End the current term, if any (releasing the lease), and do not try to acquire for the
    /// given time; answer whether a term was ended.
    Resign(Duration, oneshot::Sender<Result<bool>>),
    /// Publish the metadata now in `Shared::metadata`: at once by a renewal while leading,
    /// with the next acquisition otherwise; answer whether the backend confirmed it.
    Proclaim(oneshot::Sender<Result<bool>>),
}

/// Why a follower's wait ended.
enum Wake {
    Timer,
    Released,
    Command,
    Stop,
    Abandon,
}

/// How a term ended, as seen by the main loop.
enum TermEnd {
    /// Back to following.
    Follow,
    /// The loop is over, with this result for `stop()`.
    Exit(Result<()>),
}

pub(crate) struct Runner<S> {
    shared: Arc<Shared<S>>,
    commands: mpsc::Receiver<Command>,
    stop: CancellationToken,
    request: LeaseRequest,
    releases: Option<ReleaseReceiver>,
    pending: Vec<oneshot::Sender<Result<bool>>>,
    /// `proclaim` calls waiting for the renewal that publishes their metadata.
    proclaims: Vec<oneshot::Sender<Result<bool>>>,
    observed: Option<LeaderInfo>,
    /// When this follower learned (or expected) that the lease became free, for the leaderless
    /// metric.
    free_since: Option<Instant>,
    /// When the lease last seen held can expire.
    expected_expiry: Option<Instant>,
    /// Since when acquisitions with the current lease id have had unknown outcomes.
    uncertain_since: Option<Instant>,
    /// Why the backend withheld the lease at the last attempt, if it did.
    withheld: Option<WithholdReason>,
    /// Until when this contender stays out of the election after resigning, or after giving
    /// up a lease id whose outcome stayed unknown.
    cool_down_until: Option<Instant>,
    /// This contender's part in preferred-leader handover.
    preference: Preference,
    /// When the store first answered that the lease record this contender saw held is gone
    /// ([`WithholdReason::RecordVanished`]), for the wait that follows.
    vanished_since: Option<Instant>,
    /// The longest a lease seen here may last: this contender's own lease, or the longest
    /// remaining time a store reported, whichever is longer.
    longest_lease: Duration,
}

impl<S: LeaseStore> Runner<S> {
    pub(crate) fn new(
        shared: Arc<Shared<S>>,
        commands: mpsc::Receiver<Command>,
        stop: CancellationToken,
    ) -> Self {
        let request = candidacy(&shared);
        Self {
            commands,
            stop,
            request,
            releases: None,
            pending: Vec::new(),
            proclaims: Vec::new(),
            observed: None,
            free_since: None,
            expected_expiry: None,
            uncertain_since: None,
            withheld: None,
            cool_down_until: None,
            preference: Preference::new(&shared.options),
            vanished_since: None,
            longest_lease: shared.options.lease_duration,
            shared,
        }
    }

    pub(crate) async fn run(self) -> Result<()> {
        let _alive = LoopGuard(Arc::clone(&self.shared));
        // At ERROR level so that the election and instance show on every event of the loop,
        // whatever level the subscriber filters at.
        let span = tracing::error_span!(
            "leader_election",
            election = %self.shared.store.election_name(),
            instance_id = %self.shared.options.instance_id,
            token = tracing::field::Empty,
        );
        self.follow().instrument(span).await
    }

    /// The follower loop; leadership terms run inside it, from [`Self::lead`].
    async fn follow(mut self) -> Result<()> {
        tracing::debug!("election loop started");
        self.publish(Role::Follower, None);
        let mut connected = false;
        let mut failures = 0u32;
        loop {
            let cooling = self
                .cool_down_until
                .filter(|until| *until > Instant::now() && self.pending.is_empty());
            let wait = if let Some(until) = cooling {
                // Resigned, or gave up a lease id whose outcome stayed unknown: no attempt
                // until the cool-down ends (an explicit try_acquire_leadership still makes
                // one).
                Ok(until - Instant::now())
            } else if connected {
                match self.yield_to_candidate().await {
                    Some(delay) => Ok(delay),
                    None => self.attempt(&mut failures).await,
                }
            } else {
                match self
                    .call(Operation::Connect, self.shared.store.connect())
                    .await
                {
                    Ok(()) => {
                        connected = true;
                        failures = 0;
                        self.releases = self.shared.store.release_notifications();
                        continue;
                    }
                    Err(err) => {
                        failures = failures.saturating_add(1);
                        self.fail(err);
                        Ok(self.backoff(failures))
                    }
                }
            };
            let delay = match wait {
                Ok(delay) => delay,
                Err(result) => return result,
            };
            match self.wait(Instant::now() + delay).await {
                Wake::Released => {
                    self.free_since.get_or_insert_with(Instant::now);
                }
                Wake::Timer => {
                    if let Some(expiry) = self.expected_expiry.take_if(|e| *e <= Instant::now()) {
                        self.free_since.get_or_insert(expiry);
                    }
                }
                Wake::Command => {}
                Wake::Stop => return self.exit(Ok(())),
                Wake::Abandon => return self.exit(Ok(())),
            }
        }
    }

    /// One acquisition attempt as a follower. `Ok` holds how long to wait before the next one;
    /// `Err` ends the loop with the given result.
    async fn attempt(&mut self, failures: &mut u32) -> Result<Duration, Result<()>> {
        if let Some(releases) = &mut self.releases {
            releases.mark_seen();
        }
        let sent_at = Instant::now();
        let outcome = self
            .call(
                Operation::Acquire,
                self.shared.store.try_acquire(&self.request),
            )
            .await;
        if outcome.is_ok() {
            self.uncertain_since = None;
        }
        if !matches!(outcome, Ok(AcquireOutcome::Withheld { .. })) {
            self.withheld = None;
        }
        match outcome {
            Ok(AcquireOutcome::Acquired(lease)) => {
                *failures = 0;
                self.request.expects_record = false;
                self.vanished_since = None;
                if let Some(free_since) = self.free_since.take() {
                    metrics::leaderless(self.name(), free_since.elapsed());
                }
                self.expected_expiry = None;
                // A lease the store kept alive before this call counts from then.
                let sent_at = lease.extended_at.map_or(sent_at, |at| at.min(sent_at));
                match self.lead(lease, sent_at).await {
                    TermEnd::Follow => Ok(Duration::ZERO),
                    TermEnd::Exit(result) => Err(result),
                }
            }
            Ok(AcquireOutcome::Held { leader, expires_in }) => {
                *failures = 0;
                self.answer(&Ok(false));
                if let Some(free_since) = self.free_since.take() {
                    // Somebody else took over; a leader that merely renewed in time (perhaps
                    // with new metadata) left no gap.
                    let term = |l: &Option<LeaderInfo>| {
                        l.as_ref().map(|l| (l.instance_id.clone(), l.token))
                    };
                    if leader.is_some() && term(&leader) != term(&self.observed) {
                        metrics::leaderless(self.name(), free_since.elapsed());
                    }
                }
                self.expected_expiry = expires_in.map(|d| sent_at + d);
                if leader.is_some() {
                    // From now on a record found missing was deleted under its holder.
                    self.request.expects_record = true;
                    self.vanished_since = None;
                    if let Some(expires_in) = expires_in {
                        self.longest_lease = self.longest_lease.max(expires_in);
                    }
                }
                self.observe(leader);
                Ok(self.follower_sleep(expires_in))
            }
            Ok(AcquireOutcome::Withheld { wait, reason }) => {
                *failures = 0;
                let wait =
                    if reason == WithholdReason::RecordVanished && self.request.expects_record {
                        // Rule 9, timed here for every store: the holder may have renewed just
                        // before the deletion, after this contender's last read, so it may trust
                        // its lease for up to a whole lease from the moment the store found the
                        // record gone (at the latest, when its answer arrived).
                        let since = *self.vanished_since.get_or_insert_with(Instant::now);
                        let until = since + self.longest_lease;
                        let now = Instant::now();
                        if now >= until {
                            tracing::debug!("the vanished lease has run out; acquiring");
                            self.request.expects_record = false;
                            self.vanished_since = None;
                            self.withheld = None;
                            return Ok(Duration::ZERO);
                        }
                        until - now
                    } else {
                        wait
                    };
                self.answer(&Ok(false));
                self.observe(None);
                self.free_since.get_or_insert_with(Instant::now);
                if self.withheld != Some(reason) {
                    // Said once per wait: otherwise nobody leads for up to a lease (or longer)
                    // and nothing tells the user why.
                    tracing::info!(
                        reason = reason.as_str(),
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "the backend withholds the lease: {reason}; nobody leads for up to {wait:?}"
                    );
                    self.emit(ElectionEvent::LeaseWithheld { reason, wait });
                    self.withheld = Some(reason);
                }
                let jitter = wait.mul_f64(fastrand::f64() * self.shared.options.retry_jitter * 0.1);
                Ok((wait + jitter).max(MIN_FOLLOWER_SLEEP))
            }
            Err(err) => {
                *failures = failures.saturating_add(1);
                // An unknown outcome may mean the lease is ours already: asking again with the
                // same lease id answers that at once. Repeated failures back off.
                let retry_now = err.is_outcome_unknown() && *failures == 1;
                if err.is_outcome_unknown() {
                    // Asking again with the same lease id also extends a lease we may hold
                    // without knowing it; if our replies keep getting lost, that would lock
                    // everybody out. After one lease of that, give the id up: a lease held
                    // under it expires, and the next candidacy starts clean. Sit out while it
                    // runs out (one lease from now at most) and half a lease more, so that
                    // the others, who wake when it expires, take it first: a new id asked for
                    // while the replies are still lost would lock them out all over again.
                    let since = *self.uncertain_since.get_or_insert_with(Instant::now);
                    let lease = self.shared.options.lease_duration;
                    if since.elapsed() >= lease {
                        tracing::debug!("abandoning a candidacy whose outcome stayed unknown");
                        self.new_candidacy();
                        self.uncertain_since = None;
                        self.cool_down_until = Some(Instant::now() + lease + lease / 2);
                    }
                }
                self.fail(err);
                Ok(if retry_now {
                    Duration::ZERO
                } else {
                    self.backoff(*failures)
                })
            }
        }
    }

    /// Ends the loop: publishes `Stopped` and answers waiting handles.
    fn exit(&mut self, result: Result<()>) -> Result<()> {
        self.answer(&Err(Error::NotRunning));
        self.answer_proclaims(&Ok(false));
        self.publish(Role::Stopped, None);
        tracing::debug!("election loop stopped");
        result
    }

    /// Waits as a follower until `until`, a release notification, a command, or the end.
    async fn wait(&mut self, until: Instant) -> Wake {
        let Self {
            shared,
            commands,
            stop,
            releases,
            pending,
            cool_down_until,
            request,
            ..
        } = self;
        loop {
            let released = async {
                match releases {
                    Some(releases) => releases.released().await,
                    None => std::future::pending().await,
                }
            };
            return tokio::select! {
                biased;
                () = shared.abandon.cancelled() => Wake::Abandon,
                () = stop.cancelled() => Wake::Stop,
                Some(command) = commands.recv() => {
                    match command {
                        Command::TryAcquire(reply) => pending.push(reply),
                        Command::Resign(cool_down, reply) => {
                            *cool_down_until = Some(Instant::now() + cool_down);
                            let _ = reply.send(Ok(false));
                        }
                        Command::Proclaim(reply) => {
                            // Published with the next acquisition; no reason to try one now.
                            request.metadata = lock(&shared.metadata).clone();
                            let _ = reply.send(Ok(false));
                            continue;
                        }
                    }
                    Wake::Command
                }
                () = released => Wake::Released,
                () = sleep_until(until) => Wake::Timer,
            };
        }
    }

    /// Calls the backend, bounded by `operation_timeout`.
    async fn call<T>(
        &self,
        operation: Operation,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let timeout = self.shared.options.operation_timeout();
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, call)
            .await
            .unwrap_or(Err(Error::Timeout {
                operation,
                after: timeout,
            }));
        let elapsed = started.elapsed();
        metrics::operation(self.name(), operation, elapsed, result.is_ok());
        let outcome = match &result {
            Ok(_) => "ok",
            Err(err) if err.is_outcome_unknown() => "unknown",
            Err(_) => "error",
        };
        // TRACE: a healthy election makes one of these per renewal, which INFO must not show.
        tracing::trace!(
            operation = operation.as_str(),
            outcome,
            elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            "backend call"
        );
        result
    }

    /// Reports a failed backend call: error event, log, and the answer to waiting handles.
    fn fail(&mut self, err: Error) {
        tracing::warn!(error = %err, "backend operation failed");
        self.answer(&Err(err.clone()));
        self.emit(ElectionEvent::Error(err));
    }

    fn answer(&mut self, result: &Result<bool>) {
        for reply in self.pending.drain(..) {
            let _ = reply.send(result.clone());
        }
    }

    fn answer_proclaims(&mut self, result: &Result<bool>) {
        for reply in self.proclaims.drain(..) {
            let _ = reply.send(result.clone());
        }
    }

    /// This contender as the leader of the term with `token`, with the metadata it publishes.
    fn me(&self, token: crate::FencingToken) -> LeaderInfo {
        LeaderInfo::new(self.request.instance_id.clone(), Some(token))
            .with_metadata(self.request.metadata.clone())
    }

    fn observe(&mut self, leader: Option<LeaderInfo>) {
        if leader == self.observed {
            return;
        }
        tracing::debug!(leader = ?leader.as_ref().map(|l| &l.instance_id), "leader observed");
        self.observed.clone_from(&leader);
        let role = self.shared.state.borrow().role;
        if role == Role::Follower {
            self.publish(Role::Follower, None);
        }
        self.emit(ElectionEvent::LeaderObserved { leader });
    }

    fn publish(&self, role: Role, token: Option<crate::FencingToken>) {
        self.shared.state.send_replace(ElectionState {
            role,
            token,
            leader: self.observed.clone(),
        });
    }

    fn emit(&self, event: ElectionEvent) {
        // No receivers is fine; a full receiver drops its oldest events, never blocking here.
        let _ = self.shared.events.send(event);
    }

    fn name(&self) -> &str {
        self.shared.store.election_name()
    }

    /// A fresh lease id for the next candidacy; what this contender saw of the lease stays.
    fn new_candidacy(&mut self) {
        let expects_record = self.request.expects_record;
        self.request = candidacy(&self.shared).expecting_record(expects_record);
    }

    /// How long a follower sleeps after finding the lease held: until it can expire (plus a
    /// little jitter, so that followers do not all ask at the same instant), or
    /// `retry_interval` when the backend cannot tell.
    fn follower_sleep(&self, expires_in: Option<Duration>) -> Duration {
        let options = &self.shared.options;
        let sleep = match expires_in {
            Some(expires_in) => {
                let expires_in = expires_in.min(options.lease_duration);
                let jitter = expires_in.mul_f64(fastrand::f64() * options.retry_jitter * 0.1);
                (expires_in + jitter).max(MIN_FOLLOWER_SLEEP)
            }
            None => jittered(options.retry_interval, options.retry_jitter),
        };
        self.preference.cap_sleep(sleep)
    }

    /// The delay after `failures` consecutive failures: exponential from `retry_interval`,
    /// capped at `max_retry_interval`, with jitter.
    fn backoff(&self, failures: u32) -> Duration {
        Backoff::from_options(&self.shared.options).delay(failures)
    }
}

/// A request for a new candidacy: a fresh lease id, with the metadata to publish now.
fn candidacy<S>(shared: &Shared<S>) -> LeaseRequest {
    LeaseRequest::new(
        shared.options.instance_id.clone(),
        shared.options.lease_duration,
    )
    .with_metadata(lock(&shared.metadata).clone())
}

impl From<Result<()>> for TermEnd {
    fn from(result: Result<()>) -> Self {
        Self::Exit(result)
    }
}
