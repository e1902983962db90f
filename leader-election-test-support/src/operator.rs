//! An election run while an operator acts on its store: three (or more) contenders, recorded
//! from before they start, with the waits an operator's test needs (one leader, a new term with
//! a greater token, every follower seeing the leader) and the terms as the old holder may trust
//! them. Any backend's `tests/operator.rs` uses it; the verdict is always the one shared
//! checker on the recorded terms.

use std::future::Future;
use std::time::Duration;

use leader_election::store::{RecordVersion, WithholdReason};
use leader_election::testing::{Term, TermRecorder, assert_safe};
use leader_election::{
    ElectionEvent, LeaderElection, LeaderElectionOptions, Leadership, LeaseStore,
};
use tokio::sync::broadcast::Receiver;
use tokio::time::Instant;

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

/// Options for contender `id` with the given timings: a `lease` renewed every `renew`, each
/// operation bounded by `timeout`, retried after 100 ms backing off to `renew`, and a 1 s
/// shutdown timeout (the fast timings of the Redis and etcd tests).
#[must_use]
pub fn timed_options(
    id: &str,
    lease: Duration,
    renew: Duration,
    timeout: Duration,
) -> LeaderElectionOptions {
    let mut options = LeaderElectionOptions::default();
    options.instance_id = id.to_owned();
    options.lease_duration = lease;
    options.renew_interval = renew;
    options.operation_timeout = Some(timeout);
    options.retry_interval = Duration::from_millis(100);
    options.max_retry_interval = renew;
    options.shutdown_timeout = Duration::from_secs(1);
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
        let next = found.expect("found");
        assert!(
            next.token > after.token(),
            "token {} after {}",
            next.token,
            after.token()
        );
        next
    }

    /// [`Self::next_term`], and how long after `since` (what the operator or the test did) it
    /// began, also written to stderr after `what`.
    pub async fn next_term_since(
        &self,
        after: &Leadership,
        since: Instant,
        limit: Duration,
        what: &str,
    ) -> (Term, Duration) {
        let next = self.next_term(after, limit).await;
        let took = next.start.duration_since(since);
        eprintln!(
            "{what}: leadership back {took:?} after it (token {})",
            next.token
        );
        (next, took)
    }

    /// Waits (at most `limit`) for the recorder's term number `index` (from 0, in the order
    /// they began), whatever its holder and token, and returns it.
    pub async fn nth_term(&self, index: usize, limit: Duration) -> Term {
        let mut found = None;
        eventually(limit, format!("term number {index}"), || {
            found = self.recorder.terms().get(index).cloned();
            found.is_some()
        })
        .await;
        found.expect("found")
    }

    /// Stops every contender, then checks every term recorded with the one shared checker.
    pub async fn stop_and_check(&self) {
        self.stop().await;
        self.recorder.assert_safe();
    }

    /// An operator's `act` on the leader's lease (its record deleted or overwritten) while the
    /// contenders run (`prefix` names it on stderr), then the rules every backend keeps: nobody leads while the old holder
    /// may still trust its lease, and leadership comes back within `limit` with a greater
    /// token. With `newcomer`, a follower is replaced by a brand-new process right after the
    /// act and only its events are watched for a withheld lease; without, every contender's
    /// are. Stops the contenders.
    ///
    /// # Panics
    /// When a rule is broken, or a wait times out.
    pub async fn touched(
        &mut self,
        prefix: &str,
        newcomer: bool,
        limit: Duration,
        act: impl Future<Output = ()>,
    ) -> Touched {
        let holder = self.leader().instance_id().to_owned();
        let old = self.leader().leadership().expect("a term");
        let mut watched: Vec<Receiver<ElectionEvent>> = if newcomer {
            Vec::new()
        } else {
            self.contenders.iter().map(|c| c.subscribe()).collect()
        };
        act.await;
        let acted = Instant::now();
        if newcomer {
            watched.push(self.replace_a_follower("fresh").await);
        }
        let what = format!("{prefix}: the operator's act");
        let (next, recovery) = self.next_term_since(&old, acted, limit, &what).await;
        let withheld = watched.iter_mut().filter_map(first_withheld).collect();
        self.stop_and_check().await;
        assert_safe(&self.terms_trusting(&old));
        Touched {
            holder,
            next,
            recovery,
            withheld,
        }
    }

    /// A blanket clean-up (the whole table emptied, the whole election deleted) by `act`,
    /// `rounds` times while the contenders run: a follower that saw the lease held and asks the
    /// moment after must not take it while the old holder's term is current; a term with a
    /// greater token follows within `next_within`, one leader and every follower seeing it
    /// within `settle_within`; nobody led while the old holder may have trusted its lease.
    /// Stops the contenders.
    ///
    /// # Panics
    /// When a rule is broken, or a wait times out.
    pub async fn cleaned_up<F, Fut>(
        &self,
        rounds: usize,
        next_within: Duration,
        settle_within: Duration,
        mut act: F,
    ) where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        for round in 0..rounds {
            let old = self.leader().leadership().expect("a term");
            let holder = self.leader().instance_id().to_owned();
            let follower = self.follower();
            act().await;
            let took = follower.try_acquire_leadership().await.expect("an answer");
            assert!(
                !took || !old.is_current(),
                "round {round}: {} took the cleaned-up lease while {holder} led with token {}",
                follower.instance_id(),
                old.token()
            );
            self.next_term(&old, next_within).await;
            self.one_leader(settle_within).await;
            self.followers_see_the_leader(settle_within).await;
            assert_safe(&self.terms_trusting(&old));
        }
        self.stop_and_check().await;
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

/// What came of an operator's touch of the lease ([`Contenders::touched`]).
#[derive(Debug)]
pub struct Touched {
    /// Who led when the operator acted.
    pub holder: String,
    /// The next term (its token greater than the touched one's).
    pub next: Term,
    /// From the act to the next term.
    pub recovery: Duration,
    /// The first withheld lease each watched process was told of (none for one never told).
    pub withheld: Vec<(WithholdReason, Duration)>,
}

impl Touched {
    /// Asserts that a watched process was told the lease is withheld because its record was
    /// touched, for at most `lease`.
    ///
    /// # Panics
    /// When none was, or for another reason, or longer.
    pub fn assert_withheld(&self, lease: Duration) {
        let (reason, wait) = *self
            .withheld
            .first()
            .expect("nobody was told the lease is withheld");
        assert_eq!(reason, WithholdReason::RecordTouched);
        assert!(wait <= lease, "withheld for {wait:?}");
    }
}

/// The first [`ElectionEvent::LeaseWithheld`] among the events received so far on `events`
/// (why a new process was kept waiting, and how long), if any.
pub fn first_withheld(events: &mut Receiver<ElectionEvent>) -> Option<(WithholdReason, Duration)> {
    let mut withheld = None;
    while let Ok(event) = events.try_recv() {
        if let ElectionEvent::LeaseWithheld { reason, wait } = event {
            withheld.get_or_insert((reason, wait));
        }
    }
    withheld
}

/// Asserts that `store`'s election record is `data` at `version` (what an operator's action
/// on the lease must leave alone).
///
/// # Panics
/// When the record cannot be read, is missing, or is another.
pub async fn assert_record<S: LeaseStore>(store: &S, version: &RecordVersion, data: &[u8]) {
    let record = store
        .read_record()
        .await
        .expect("read")
        .expect("the record");
    assert_eq!(
        (&record.version, record.data.as_slice()),
        (version, data),
        "the election record"
    );
}

/// What an operator types at the lease table of the SQL backends (PostgreSQL, MySQL), the same
/// on both: `$1` stands for the election's name.
pub mod sql {
    /// Deletes the election's lease row.
    #[must_use]
    pub fn delete_the_lease_row(table: &str) -> String {
        format!("DELETE FROM {table} WHERE election = $1")
    }

    /// Overwrites the election's lease row with `set` (a backend's `SET` list of garbage).
    #[must_use]
    pub fn overwrite_the_lease_row(table: &str, set: &str) -> String {
        format!("UPDATE {table} SET {set} WHERE election = $1")
    }

    /// Sets the lease row's holder to `NULL`.
    #[must_use]
    pub fn null_the_holder(table: &str) -> String {
        format!("UPDATE {table} SET holder = NULL WHERE election = $1")
    }
}

/// The touched-lease checks both SQL backends run, as tests, one per operator statement:
/// `$touched` is an async function of the test file taking `(prefix, sql)` that runs `sql`
/// (with `$1` for the election) as an operator while contenders run and checks the rules of
/// [`Contenders::touched`]; `$table` is the lease table, `$garbage` the backend's `SET` list
/// that overwrites the lease row with garbage.
#[macro_export]
macro_rules! sql_operator_checks {
    ($touched:path, $table:expr, garbage: $garbage:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn deleting_the_lease_row_waits_out_the_lease() {
            let sql = $crate::operator::sql::delete_the_lease_row($table);
            $touched("delete", &sql).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn overwriting_the_lease_row_with_garbage_waits_out_the_lease() {
            let sql = $crate::operator::sql::overwrite_the_lease_row($table, $garbage);
            $touched("garbage", &sql).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn setting_the_holder_to_null_waits_out_the_lease() {
            let sql = $crate::operator::sql::null_the_holder($table);
            $touched("null-holder", &sql).await;
        }
    };
}
