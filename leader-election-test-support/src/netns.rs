//! Real network faults for any backend: contenders each in a network namespace of their own
//! (a [`NetLab`] of `leader-election-fixtures`), and the checks every backend runs under them
//! ([`NetworkChecks`]): the leader's packets dropped both ways, only its replies, only its
//! requests, and a share of every contender's. Each check ends with the shared safety checker
//! on every term recorded.

use std::time::Duration;

use leader_election::testing::TermRecorder;
use leader_election::{LeaderElection, LeaseStore};
pub use leader_election_fixtures::netns::{NetLab, NetNamespace, PacketFault};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::{eventually, lazy, one_leader};

/// A contender in a namespace of its own: its election runs on a thread in the namespace, so
/// every connection its store opens goes through the namespace's link.
#[derive(Debug)]
pub struct Contender<S: LeaseStore> {
    ns: NetNamespace,
    election: LeaderElection<S>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl<S: LeaseStore + 'static> Contender<S> {
    /// Makes a namespace of `lab`, and in it the election `make` returns (called on the
    /// namespace's thread, so that the store's connections open there), recorded by
    /// `recorder`, and started.
    ///
    /// # Panics
    /// When the namespace cannot be made or the election does not start.
    pub async fn start(
        lab: &NetLab,
        recorder: &TermRecorder,
        make: impl FnOnce() -> LeaderElection<S> + Send + 'static,
    ) -> Self {
        let ns = lab.namespace().expect("a network namespace");
        let (ready_tx, ready) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let recorder = recorder.clone();
        let thread = ns.spawn(move || async move {
            let election = make();
            recorder.attach(&election);
            election.start().await.expect("start");
            let _ = ready_tx.send(election.clone());
            let _ = stopped.await;
            let _ = election.stop().await;
        });
        let election = ready.await.expect("the contender started");
        Self {
            ns,
            election,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The contender's election.
    pub fn election(&self) -> &LeaderElection<S> {
        &self.election
    }

    /// The contender's namespace, for its faults.
    pub fn ns(&self) -> &NetNamespace {
        &self.ns
    }

    /// Heals its link, stops its election and waits for its thread.
    ///
    /// # Panics
    /// When its thread panicked.
    pub async fn stop(mut self) {
        let _ = self.ns.heal();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .expect("joined")
                .expect("the contender's thread")
                .expect("entered its namespace");
        }
    }
}

/// Contenders of one election, each in a namespace of its own, and the recorder of their terms.
#[derive(Debug)]
pub struct NetworkChecks<S: LeaseStore> {
    /// The contenders.
    pub contenders: Vec<Contender<S>>,
    /// Every term of every contender.
    pub recorder: TermRecorder,
}

impl<S: LeaseStore + 'static> NetworkChecks<S> {
    /// Starts `count` contenders in `lab`, contender `i` with the election `make(i)` returns
    /// (called on that contender's thread, in its namespace).
    pub async fn start<F>(lab: &NetLab, count: usize, make: F) -> Self
    where
        F: Fn(usize) -> LeaderElection<S> + Clone + Send + 'static,
    {
        let recorder = TermRecorder::new();
        let mut contenders = Vec::new();
        for i in 0..count {
            let make = make.clone();
            contenders.push(Contender::start(lab, &recorder, move || make(i)).await);
        }
        Self {
            contenders,
            recorder,
        }
    }

    fn elections(&self) -> Vec<&LeaderElection<S>> {
        self.contenders.iter().map(Contender::election).collect()
    }

    /// Waits (bounded) for exactly one leader; returns it.
    pub async fn leader(&self, within: Duration) -> usize {
        one_leader(&self.elections(), within).await
    }

    /// Waits (bounded) until a contender other than `old` leads and `old` no longer believes
    /// it does; returns the new leader.
    pub async fn another_leader(&self, old: usize, within: Duration) -> usize {
        eventually(
            within,
            lazy(|| format!("no other leader than {old} within {within:?}")),
            || {
                !self.contenders[old].election.is_leader()
                    && (0..self.contenders.len())
                        .any(|i| i != old && self.contenders[i].election.is_leader())
            },
        )
        .await;
        self.leader(within).await
    }

    fn lease(&self) -> Duration {
        self.contenders[0].election.options().lease_duration
    }

    /// The leader's packets dropped both ways: another contender leads, no sooner than half a
    /// lease after the cut and within four; healed, the old leader follows.
    ///
    /// # Panics
    /// When any of that fails.
    pub async fn partition_of_the_leader(&self) {
        let lease = self.lease();
        let old = self.leader(lease * 4).await;
        self.contenders[old]
            .ns
            .inject(PacketFault::Partition)
            .expect("partition");
        let cut = Instant::now();
        let new = self.another_leader(old, lease * 4).await;
        let took = cut.elapsed();
        assert!(
            took >= lease / 2,
            "{new} led {took:?} after the cut, before the old lease could have run out"
        );
        self.contenders[old].ns.heal().expect("heal");
        eventually(
            Duration::from_secs(5),
            "the healed contender follows",
            || {
                !self.contenders[old].election.is_leader()
                    && self.contenders[new].election.is_leader()
            },
        )
        .await;
    }

    /// Only the leader's replies dropped (its requests still land): it stops believing it
    /// leads before its lease minus the deadline margin has passed since its last answered
    /// renewal, and another contender leads within four leases. Returns how long it believed
    /// after that renewal.
    ///
    /// # Panics
    /// When any of that fails.
    pub async fn dropped_replies_to_the_leader(&self) -> Duration {
        let lease = self.lease();
        let old = self.leader(lease * 4).await;
        let election = &self.contenders[old].election;
        self.contenders[old]
            .ns
            .inject(PacketFault::DropReplies)
            .expect("drop replies");
        eventually(lease * 2, "the leader still believes it leads", || {
            !election.is_leader()
        })
        .await;
        let term = self
            .recorder
            .terms_of(election.instance_id())
            .pop()
            .expect("its term");
        // On the monotonic clock (the wall clock does not move in these checks).
        let since = std::time::SystemTime::now()
            .duration_since(
                election
                    .last_leadership_renewal()
                    .expect("a renewal answered before the cut"),
            )
            .unwrap_or_default();
        let last_confirmed = Instant::now() - since;
        let believed = term.end.saturating_duration_since(last_confirmed);
        let bound = lease - election.options().deadline_margin();
        assert!(
            believed < bound,
            "the leader believed it led {believed:?} after its last answered renewal (lease \
             {lease:?} minus the margin: {bound:?})"
        );
        let new = self.another_leader(old, lease * 4).await;
        assert_ne!(new, old);
        self.contenders[old].ns.heal().expect("heal");
        believed
    }

    /// Only the leader's requests dropped: another contender leads within four leases.
    ///
    /// # Panics
    /// When it does not.
    pub async fn dropped_requests_from_the_leader(&self) {
        let lease = self.lease();
        let old = self.leader(lease * 4).await;
        self.contenders[old]
            .ns
            .inject(PacketFault::DropRequests)
            .expect("drop requests");
        let new = self.another_leader(old, lease * 4).await;
        assert_ne!(new, old);
        self.contenders[old].ns.heal().expect("heal");
    }

    /// `percent` of every contender's packets lost for three leases; then one leader within
    /// four leases. Returns the number of terms so far.
    ///
    /// # Panics
    /// When no single leader follows.
    pub async fn loss_everywhere(&self, percent: u8) -> usize {
        let lease = self.lease();
        self.leader(lease * 4).await;
        for contender in &self.contenders {
            contender
                .ns
                .inject(PacketFault::Loss { percent })
                .expect("loss");
        }
        // The fault lasts three leases (its length, not a wait for anything).
        tokio::time::sleep(lease * 3).await;
        for contender in &self.contenders {
            contender.ns.heal().expect("heal");
        }
        self.leader(lease * 4).await;
        self.recorder.terms().len()
    }

    /// Stops every contender, then checks every term recorded with the shared checker: no two
    /// overlapped, and tokens increased.
    ///
    /// # Panics
    /// When they did not.
    pub async fn finish(self) {
        for contender in self.contenders {
            contender.stop().await;
        }
        self.recorder.assert_safe();
    }
}

/// The network checks as tests, one per check, in a backend's test file: `$start` is an async
/// function of the test file taking `(&NetLab, &str)` (the lab and a name for the election)
/// and returning what must live as long as the check (its server) and the [`NetworkChecks`].
/// Each test says why and passes where no lab can be made (see [`NetLab::for_test`]).
#[macro_export]
macro_rules! network_checks {
    ($start:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_leader_whose_packets_are_dropped_both_ways_is_replaced_after_its_lease() {
            let Some(lab) = $crate::netns::NetLab::for_test() else {
                return;
            };
            let (_server, checks) = $start(&lab, "netns-partition").await;
            checks.partition_of_the_leader().await;
            checks.finish().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_leader_that_never_hears_its_renewals_answered_steps_down_within_its_lease() {
            let Some(lab) = $crate::netns::NetLab::for_test() else {
                return;
            };
            let (_server, checks) = $start(&lab, "netns-replies").await;
            let believed = checks.dropped_replies_to_the_leader().await;
            eprintln!("the leader believed it led {believed:?} after its last answered renewal");
            checks.finish().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_leader_whose_requests_are_dropped_is_replaced() {
            let Some(lab) = $crate::netns::NetLab::for_test() else {
                return;
            };
            let (_server, checks) = $start(&lab, "netns-requests").await;
            checks.dropped_requests_from_the_leader().await;
            checks.finish().await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_quarter_of_every_contenders_packets_lost_never_makes_two_leaders() {
            let Some(lab) = $crate::netns::NetLab::for_test() else {
                return;
            };
            let (_server, checks) = $start(&lab, "netns-loss").await;
            let terms = checks.loss_everywhere(25).await;
            eprintln!("terms under 25 % loss: {terms}");
            checks.finish().await;
        }
    };
}
