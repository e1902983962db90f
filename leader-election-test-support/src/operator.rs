//! An election run while an operator acts on its store: three (or more) contenders, recorded
//! from before they start, with the waits an operator's test needs (one leader, a new term with
//! a greater token, every follower seeing the leader) and the terms as the old holder may trust
//! them. Any backend's `tests/operator.rs` uses it; the verdict is always the one shared
//! checker on the recorded terms.

use std::time::Duration;

use leader_election::store::WithholdReason;
use leader_election::testing::{Term, TermRecorder};
use leader_election::{
    ElectionEvent, LeaderElection, LeaderElectionOptions, Leadership, LeaseStore,
};

use crate::eventually;

/// The lease of the server-backed backends' test contenders (SQL, ZooKeeper): 2 s.
pub const LEASE: Duration = Duration::from_secs(2);

/// The options those tests share, for contender `id`: a 2 s lease ([`LEASE`]) renewed every
/// 500 ms, retries from 200 ms up to 500 ms, a 500 ms operation timeout.
#[must_use]
pub fn options(id: &str) -> LeaderElectionOptions {
    let mut options = LeaderElectionOptions::default();
    options.instance_id = id.to_owned();
    options.lease_duration = LEASE;
    options.renew_interval = Duration::from_millis(500);
    options.retry_interval = Duration::from_millis(200);
    options.max_retry_interval = Duration::from_millis(500);
    options.operation_timeout = Some(Duration::from_millis(500));
    options
}

/// Makes contender `id` of the election (built, not started).
pub type Contender<S> = Box<dyn Fn(&str) -> LeaderElection<S> + Send + Sync>;

/// Contenders of one election, recorded from before they start.
pub struct Contenders<S: LeaseStore> {
    /// The contenders running now.
    pub contenders: Vec<LeaderElection<S>>,
    /// Every term any of them held.
    pub recorder: TermRecorder,
    make: Contender<S>,
}

impl<S: LeaseStore> std::fmt::Debug for Contenders<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contenders")
            .field("contenders", &self.contenders.len())
            .finish_non_exhaustive()
    }
}

impl<S: LeaseStore> Contenders<S> {
    /// Starts `count` contenders (`c0`, `c1` …) made by `make`, and waits (at most 10 s each)
    /// for one leader and for every follower to have seen it, so that followers sleep until
    /// the lease can expire.
    ///
    /// # Panics
    /// When a contender does not start, or the waits time out.
    pub async fn start(count: usize, make: Contender<S>) -> Self {
        let recorder = TermRecorder::new();
        let contenders: Vec<_> = (0..count).map(|i| make(&format!("c{i}"))).collect();
        for c in &contenders {
            recorder.attach(c);
        }
        for c in &contenders {
            c.start().await.expect("start");
        }
        let election = Self {
            contenders,
            recorder,
            make,
        };
        election.one_leader(Duration::from_secs(10)).await;
        election
            .followers_see_the_leader(Duration::from_secs(10))
            .await;
        election
    }

    /// The leader now.
    ///
    /// # Panics
    /// When none leads.
    pub fn leader(&self) -> &LeaderElection<S> {
        self.contenders
            .iter()
            .find(|c| c.is_leader())
            .expect("a leader")
    }

    /// A follower now.
    ///
    /// # Panics
    /// When every contender leads (or there is none).
    pub fn follower(&self) -> &LeaderElection<S> {
        self.contenders
            .iter()
            .find(|c| !c.is_leader())
            .expect("a follower")
    }

    /// Waits (at most `limit`) until exactly one contender leads.
    pub async fn one_leader(&self, limit: Duration) {
        eventually(limit, "one leader", || {
            self.contenders.iter().filter(|c| c.is_leader()).count() == 1
        })
        .await;
    }

    /// Waits (at most `limit`) until every follower has seen the current leader.
    pub async fn followers_see_the_leader(&self, limit: Duration) {
        let leader = self.leader().instance_id().to_owned();
        eventually(limit, "followers to see the leader", || {
            self.contenders
                .iter()
                .all(|c| c.is_leader() || c.state().leader.is_some_and(|l| l.instance_id == leader))
        })
        .await;
    }

    /// A follower process replaced by a brand-new one, `id`, which asks for the lease at once
    /// and remembers nothing. Returns the events of the new process.
    pub async fn replace_a_follower(
        &mut self,
        id: &str,
    ) -> tokio::sync::broadcast::Receiver<ElectionEvent> {
        let i = self
            .contenders
            .iter()
            .position(|c| !c.is_leader())
            .expect("a follower");
        self.contenders
            .remove(i)
            .stop()
            .await
            .expect("stop a follower");
        self.add(id).await
    }

    /// A brand-new process `id` joins. Returns its events.
    pub async fn add(&mut self, id: &str) -> tokio::sync::broadcast::Receiver<ElectionEvent> {
        let fresh = (self.make)(id);
        self.recorder.attach(&fresh);
        let events = fresh.subscribe();
        fresh.start().await.expect("start");
        self.contenders.push(fresh);
        events
    }

    /// The leader leaves without releasing: it crashed, or hangs. Returns its term.
    pub fn drop_the_leader(&mut self) -> Leadership {
        let i = self
            .contenders
            .iter()
            .position(|c| c.is_leader())
            .expect("a leader");
        let leader = self.contenders.remove(i);
        let term = leader.leadership().expect("a term");
        drop(leader);
        term
    }

    /// Waits (at most `limit`) for a term with a token greater than `after`'s, and returns it.
    pub async fn next_term(&self, after: &Leadership, limit: Duration) -> Term {
        let mut found = None;
        eventually(limit, "a new term", || {
            found = self
                .recorder
                .terms()
                .into_iter()
                .find(|t| t.token > after.token());
            found.is_some()
        })
        .await;
        found.expect("found")
    }

    /// Stops every contender (a failed stop is ignored: an operator's action may have made
    /// its release fail).
    pub async fn stop(&self) {
        for c in &self.contenders {
            let _ = c.stop().await;
        }
    }

    /// The recorded terms, with the term of `trusted` lasting until its local deadline: a
    /// holder that has not noticed yet (paused, partitioned, between two renewals) trusts its
    /// lease until then, and nobody may lead before.
    pub fn terms_trusting(&self, trusted: &Leadership) -> Vec<Term> {
        let mut terms = self.recorder.terms();
        for term in &mut terms {
            if term.token == trusted.token() && term.end < trusted.deadline() {
                term.end = trusted.deadline();
            }
        }
        terms
    }
}

/// The first [`ElectionEvent::LeaseWithheld`] among the events received so far on `events`
/// (why a new process was kept waiting, and how long), if any.
pub fn first_withheld(
    events: &mut tokio::sync::broadcast::Receiver<ElectionEvent>,
) -> Option<(WithholdReason, Duration)> {
    let mut withheld = None;
    while let Ok(event) = events.try_recv() {
        if let ElectionEvent::LeaseWithheld { reason, wait } = event {
            withheld.get_or_insert((reason, wait));
        }
    }
    withheld
}
