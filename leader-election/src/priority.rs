//! Preferred leaders: a contender may declare a priority, and a leader hands over gracefully to
//! a waiting contender with a strictly higher one.
//!
//! # The protocol
//! Every contender of the election sets [`priority`](crate::LeaderElectionOptions::priority)
//! (`Some(0)` for ordinary ones; `None`, the default, takes no part and costs nothing).
//!
//! - **A waiting contender makes itself known.** A follower with a priority above 0 announces
//!   itself with [`LeaseStore::announce_candidate`] before every acquisition attempt, and makes
//!   an attempt at least every `renew_interval`. The backend keeps one candidate record per
//!   election, with its own expiry of one `lease_duration`: an announcement replaces the record
//!   only if its priority is at least the recorded one, or the record expired. A candidate that
//!   stops or dies vanishes within one lease.
//! - **The leader hands over.** After each successful renewal, a leader that has led for at
//!   least [`min_tenure`](crate::LeaderElectionOptions::min_tenure) reads
//!   [`LeaseStore::strongest_candidate`]. If another contender with a strictly higher priority
//!   waits, the leader ends its term exactly as [`resign`](crate::LeaderElection::resign) does
//!   (leader work is cancelled and waited for, then the lease is released, which wakes the
//!   followers), with [`ChangeReason::PreferredLeader`](crate::ChangeReason::PreferredLeader),
//!   and stays out for one `renew_interval`.
//! - **The preferred one wins the race.** Before an attempt, a follower that does not announce
//!   itself reads the candidate record; while a contender with a higher priority than its own
//!   is announced, it makes no attempt and looks again every `renew_interval` (for at most two
//!   leases in a row, so a candidate that announces itself but never takes over cannot keep
//!   the lease free for long; then it makes one attempt). The preferred candidate, woken by
//!   the release notice (or by its own timer, at most a `renew_interval` later, on a backend
//!   without notices), takes over first. Several announcing contenders with different
//!   priorities race as usual: if one below the strongest wins, it hands over again after its
//!   own tenure.
//!
//! It never flaps: a leader keeps its term for `min_tenure`; an equal priority is no reason to
//! hand over; and a candidate whose record expired is no candidate. The handover itself is an
//! ordinary release and acquisition, so every safety rule holds through it: the new term gets a
//! greater fencing token, and no two terms overlap.
//!
//! # Cost
//! With priorities set, the leader makes one extra read per `renew_interval`; a follower with a
//! priority above 0 one extra write per attempt (at least one per `renew_interval`); the other
//! followers one extra read per attempt (about one per lease, or one per `renew_interval` while
//! a stronger candidate waits). Each backend's README says what
//! the record is and what the calls cost there.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Operation, Result};
use crate::metrics;
use crate::options::LeaderElectionOptions;
use crate::store::LeaseStore;

/// The longest `instance_id` a candidate record holds, in bytes; the same limit as for
/// [`LeaderElectionOptions::instance_id`].
pub const MAX_CANDIDATE_ID_LEN: usize = crate::options::MAX_INSTANCE_ID_LEN;

/// A contender waiting for leadership with a priority, as recorded by
/// [`LeaseStore::announce_candidate`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Candidate {
    /// The contender's instance id.
    pub instance_id: String,
    /// Its priority: higher is preferred.
    pub priority: u32,
}

impl Candidate {
    /// The candidate `instance_id` with `priority`.
    pub fn new(instance_id: impl Into<String>, priority: u32) -> Self {
        Self {
            instance_id: instance_id.into(),
            priority,
        }
    }
}

/// The error a store returns from [`LeaseStore::announce_candidate`] when it does not record
/// candidates: preferred leaders then never hand over, and the runner says so once.
#[must_use]
pub fn unsupported() -> Error {
    Error::backend(
        Operation::AnnounceCandidate,
        false,
        "this backend does not record candidates, so preferred leaders are not supported",
    )
}

/// The runner's side of the protocol: what one contender does, from its options.
#[derive(Debug)]
pub(crate) struct Preference {
    priority: Option<u32>,
    min_tenure: Duration,
    renew_interval: Duration,
    ttl: Duration,
    timeout: Duration,
    /// Since when this follower has been letting a stronger candidate go first.
    yielding_since: Option<Instant>,
    /// Whether the backend said it records no candidates (said once, then not asked again).
    unsupported: bool,
}

impl Preference {
    pub(crate) fn new(options: &LeaderElectionOptions) -> Self {
        Self {
            priority: options.priority,
            min_tenure: options.min_tenure(),
            renew_interval: options.renew_interval,
            ttl: options.lease_duration,
            timeout: options.operation_timeout(),
            yielding_since: None,
            unsupported: false,
        }
    }

    /// Whether this contender announces itself as a follower.
    fn announces(&self) -> bool {
        self.priority.is_some_and(|p| p > 0) && !self.unsupported
    }

    /// The longest a follower may sleep between attempts: a `renew_interval` while it
    /// announces itself, so that its record never expires while it waits.
    pub(crate) fn cap_sleep(&self, sleep: Duration) -> Duration {
        if self.announces() {
            sleep.min(self.renew_interval)
        } else {
            sleep
        }
    }

    /// How long a resigning leader stays out after handing over.
    pub(crate) fn cool_down(&self) -> Duration {
        self.renew_interval
    }

    /// Called before each acquisition attempt of a follower: announces this contender, or
    /// answers how long to wait first for a stronger candidate to take over. Only a follower
    /// that knows the last leader waits, and never for that leader: a record naming it is left
    /// over from before it led (it announced itself, then acquired), and it has just left. A
    /// follower that knows no leader (it just started, or its own term just ended) makes its
    /// attempt, which tells it who leads. Failures are logged and never keep the follower
    /// from its attempt.
    pub(crate) async fn before_attempt<S: LeaseStore>(
        &mut self,
        store: &S,
        instance_id: &str,
        last_leader: Option<&str>,
    ) -> Option<Duration> {
        let priority = self.priority?;
        if self.announces() {
            let candidate = Candidate::new(instance_id, priority);
            let announced = self
                .call(
                    store,
                    Operation::AnnounceCandidate,
                    store.announce_candidate(&candidate, self.ttl),
                )
                .await;
            if let Err(err) = announced {
                self.failed(&err);
            }
            return None;
        }
        let Some(last_leader) = last_leader else {
            self.yielding_since = None;
            return None;
        };
        let stronger = self
            .stronger_candidate(store, instance_id, priority)
            .await
            .filter(|c| c.instance_id != last_leader);
        let Some(stronger) = stronger else {
            self.yielding_since = None;
            return None;
        };
        let since = *self.yielding_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= self.ttl * 2 {
            // A candidate that keeps announcing itself but never takes over must not keep
            // the lease free: one attempt, then a new wait.
            self.yielding_since = None;
            return None;
        }
        tracing::debug!(
            candidate = %stronger.instance_id,
            priority = stronger.priority,
            "a stronger candidate waits; letting it try first"
        );
        Some(crate::backoff::jittered(self.renew_interval, 0.1))
    }

    /// Called by a leader after each successful renewal of a term acquired at `acquired`:
    /// the candidate to hand over to, if the tenure is served and one with a strictly higher
    /// priority waits.
    pub(crate) async fn handover_to<S: LeaseStore>(
        &mut self,
        store: &S,
        instance_id: &str,
        acquired: Instant,
    ) -> Option<Candidate> {
        let priority = self.priority?;
        if acquired.elapsed() < self.min_tenure {
            return None;
        }
        self.stronger_candidate(store, instance_id, priority).await
    }

    /// The strongest unexpired candidate, if it is another contender with a priority above
    /// `priority`.
    async fn stronger_candidate<S: LeaseStore>(
        &mut self,
        store: &S,
        instance_id: &str,
        priority: u32,
    ) -> Option<Candidate> {
        let strongest = self
            .call(
                store,
                Operation::StrongestCandidate,
                store.strongest_candidate(),
            )
            .await;
        match strongest {
            Ok(candidate) => candidate.filter(|c| outranks(c, instance_id, priority)),
            Err(err) => {
                self.failed(&err);
                None
            }
        }
    }

    async fn call<S: LeaseStore, T>(
        &self,
        store: &S,
        operation: Operation,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, call)
            .await
            .unwrap_or(Err(Error::Timeout {
                operation,
                after: self.timeout,
            }));
        metrics::operation(
            store.election_name(),
            operation,
            started.elapsed(),
            result.is_ok(),
        );
        result
    }

    fn failed(&mut self, err: &Error) {
        if err.operation() == Some(Operation::AnnounceCandidate) && !err.is_retryable() {
            if !self.unsupported {
                tracing::warn!(error = %err, "cannot announce this contender's priority");
            }
            self.unsupported = true;
        } else {
            tracing::debug!(error = %err, "preferred-leader call failed");
        }
    }
}

/// Whether `candidate` is another contender than `instance_id`, with a priority strictly above
/// `priority`.
fn outranks(candidate: &Candidate, instance_id: &str, priority: u32) -> bool {
    candidate.priority > priority && candidate.instance_id != instance_id
}

/// Whether an announcement of `new` replaces the unexpired record `recorded`: a priority at
/// least as high, or the same contender (whose priority may have changed). Every backend
/// applies this rule atomically.
#[must_use]
pub fn replaces(new: &Candidate, recorded: &Candidate) -> bool {
    new.priority >= recorded.priority || new.instance_id == recorded.instance_id
}
