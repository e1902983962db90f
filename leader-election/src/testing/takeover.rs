//! A leader that crashes or is cut off from the backend, and the follower that takes over:
//! checked with real elections on a real backend.

use std::time::Duration;

use tokio::time::Instant;

use crate::election::LeaderElection;
use crate::store::LeaseStore;
use crate::testing::race::wait_for;
use crate::testing::safety::TermRecorder;
use crate::token::FencingToken;

/// Leeway for measuring on a polled state (every 5 ms) and for the scheduler.
const MEASURE: Duration = Duration::from_millis(50);

/// The bounds of [`crashed_leader_is_replaced`] and [`cut_off_leader_steps_down`].
#[derive(Clone, Debug)]
pub struct TakeoverOptions {
    /// How long past the lease the follower may take to lead after the fault: the backend's
    /// expiry check, the follower's poll. Default: 1 s.
    pub slack: Duration,
    /// How long the follower is watched staying one while the leader renews, before the fault
    /// (a follower that took a renewed lease would fail here). Default: none.
    pub hold: Duration,
    /// How long the first contender may take to lead, and the second to see it lead. Default:
    /// 10 s.
    pub settle_within: Duration,
}

impl Default for TakeoverOptions {
    fn default() -> Self {
        Self {
            slack: Duration::from_secs(1),
            hold: Duration::ZERO,
            settle_within: Duration::from_secs(10),
        }
    }
}

/// What a takeover check measured.
#[derive(Clone, Copy, Debug)]
pub struct TakeoverReport {
    /// From the fault to the follower leading.
    pub after_fault: Duration,
    /// From the moment the leader sent its last renewal before the fault to the follower
    /// leading: never less than the lease.
    pub after_last_renewal: Duration,
    /// From the cut to the cut-off leader stepping down ([`cut_off_leader_steps_down`] only).
    pub stepped_down: Option<Duration>,
}

/// Starts `a`, then `b` (two contenders of one election, not yet started, with the same
/// timing), waits until `a` leads and `b` follows it, then drops `a` without releasing, as when
/// its process dies. `b` must lead within the lease and `options.slack` of the drop, but never
/// sooner than a lease after `a`'s last renewal was sent, with a greater token; the shared
/// checker sees no overlap. Stops `b` before returning.
///
/// # Panics
/// Saying which, when any of that fails.
pub async fn crashed_leader_is_replaced<SA: LeaseStore, SB: LeaseStore>(
    a: LeaderElection<SA>,
    b: LeaderElection<SB>,
    options: &TakeoverOptions,
) -> TakeoverReport {
    let recorder = TermRecorder::new();
    let first = settle(&a, &b, &recorder, options).await;
    let lease = a.options().lease_duration;
    let last_renewal = last_renewal_sent(&a);
    drop(a);
    let crashed = Instant::now();
    let report = taken_over(&b, first, crashed, last_renewal, lease, options, None).await;
    b.stop().await.expect("[takeover] stop the follower");
    recorder.assert_safe();
    report
}

/// Starts `a`, then `b` (two contenders of one election, not yet started, with the same
/// timing), waits until `a` leads and `b` follows it, then calls `cut`, which must cut `a` off
/// the backend (and only `a`). `a` must step down within its lease of the cut, failing closed
/// although nothing answers; `b` must lead within the lease and `options.slack` of the cut,
/// never sooner than a lease after `a`'s last renewal was sent, with a greater token. Then
/// `heal` reconnects `a`, which must come back as a follower of `b`. The shared checker sees no
/// overlap throughout. Stops both before returning.
///
/// # Panics
/// Saying which, when any of that fails.
pub async fn cut_off_leader_steps_down<SA: LeaseStore, SB: LeaseStore>(
    a: LeaderElection<SA>,
    b: LeaderElection<SB>,
    cut: impl FnOnce(),
    heal: impl FnOnce(),
    options: &TakeoverOptions,
) -> TakeoverReport {
    let recorder = TermRecorder::new();
    let first = settle(&a, &b, &recorder, options).await;
    let lease = a.options().lease_duration;
    let last_renewal = last_renewal_sent(&a);
    cut();
    let cut_at = Instant::now();
    wait_for(lease + MEASURE, || (!a.is_leader()).then_some(()))
        .await
        .unwrap_or_else(|| {
            panic!(
                "[takeover] the cut-off leader still leads {:?} after the cut: {:?}",
                cut_at.elapsed(),
                a.state()
            )
        });
    let stepped_down = cut_at.elapsed();
    let report = taken_over(
        &b,
        first,
        cut_at,
        last_renewal,
        lease,
        options,
        Some(stepped_down),
    )
    .await;
    recorder.assert_safe();
    heal();
    follows(
        &a,
        b.instance_id(),
        lease + options.settle_within,
        "healed, the old leader does not follow the new one",
    )
    .await;
    assert!(
        b.is_leader() && !a.is_leader(),
        "[takeover] after healing: {:?} / {:?}",
        a.state(),
        b.state()
    );
    a.stop().await.expect("[takeover] stop the old leader");
    b.stop().await.expect("[takeover] stop the new leader");
    recorder.assert_safe();
    report
}

/// Attaches and starts `a`, then `b`; returns `a`'s token once `a` leads, `b` follows it, and
/// `b` stayed a follower for `options.hold`.
async fn settle<SA: LeaseStore, SB: LeaseStore>(
    a: &LeaderElection<SA>,
    b: &LeaderElection<SB>,
    recorder: &TermRecorder,
    options: &TakeoverOptions,
) -> FencingToken {
    recorder.attach(a);
    recorder.attach(b);
    a.start()
        .await
        .expect("[takeover] start the first contender");
    let first = wait_for(options.settle_within, || a.leadership())
        .await
        .unwrap_or_else(|| {
            panic!(
                "[takeover] the first contender does not lead within {:?}: {:?}",
                options.settle_within,
                a.state()
            )
        })
        .token();
    b.start()
        .await
        .expect("[takeover] start the second contender");
    follows(
        b,
        a.instance_id(),
        options.settle_within,
        "the second contender does not see the leader",
    )
    .await;
    let until = Instant::now() + options.hold;
    loop {
        assert!(
            a.is_leader() && !b.is_leader(),
            "[takeover] before the fault, the leader must keep its term: {:?} / {:?}",
            a.state(),
            b.state()
        );
        if Instant::now() >= until {
            return first;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `follower` sees `leader` lead; panics with `failure` after `within`.
async fn follows<S: LeaseStore>(
    follower: &LeaderElection<S>,
    leader: &str,
    within: Duration,
    failure: &str,
) {
    wait_for(within, || {
        follower
            .state()
            .leader
            .is_some_and(|l| l.instance_id == leader)
            .then_some(())
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "[takeover] {failure} within {within:?}: {:?}",
            follower.state()
        )
    });
}

/// When the leader sent its latest confirmed renewal (or acquisition): its deadline runs from
/// then.
fn last_renewal_sent<S: LeaseStore>(leader: &LeaderElection<S>) -> Instant {
    let leadership = leader
        .leadership()
        .expect("[takeover] the leader leads before the fault");
    let o = leader.options();
    leadership.deadline() - (o.lease_duration - o.deadline_margin())
}

/// Waits for `b` to lead after a fault at `fault_at` and checks the bounds.
async fn taken_over<S: LeaseStore>(
    b: &LeaderElection<S>,
    first: FencingToken,
    fault_at: Instant,
    last_renewal: Instant,
    lease: Duration,
    options: &TakeoverOptions,
    stepped_down: Option<Duration>,
) -> TakeoverReport {
    let within = lease + options.slack;
    let token = wait_for(within, || b.leadership())
        .await
        .unwrap_or_else(|| {
            panic!(
                "[takeover] the follower does not lead within {within:?} of the fault: {:?}",
                b.state()
            )
        })
        .token();
    let report = TakeoverReport {
        after_fault: fault_at.elapsed(),
        after_last_renewal: last_renewal.elapsed(),
        stepped_down,
    };
    assert!(
        report.after_last_renewal + MEASURE >= lease,
        "[takeover] the follower took a lease that could not have expired: {report:?}, lease \
         {lease:?}"
    );
    assert!(
        token > first,
        "[takeover] the new term's token {token} must be greater than {first}"
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FaultyStore;
    use crate::{LeaderElectionOptions, MemoryLeaseStore};

    fn options(id: &str) -> LeaderElectionOptions {
        LeaderElectionOptions {
            instance_id: id.to_owned(),
            ..LeaderElectionOptions::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_crash_on_the_memory_store_is_taken_over_after_the_lease() {
        let store = MemoryLeaseStore::new();
        let a = LeaderElection::new(store.clone(), options("a")).unwrap();
        let b = LeaderElection::new(store, options("b")).unwrap();
        let lease = a.options().lease_duration;
        let o = TakeoverOptions {
            hold: lease * 2,
            ..TakeoverOptions::default()
        };
        let report = crashed_leader_is_replaced(a, b, &o).await;
        assert!(report.after_last_renewal >= lease, "{report:?}");
        assert!(report.after_fault <= lease + o.slack, "{report:?}");
        assert!(report.stepped_down.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_partition_on_the_memory_store_steps_the_leader_down_first() {
        let store = MemoryLeaseStore::new();
        let faulty = FaultyStore::new(store.clone());
        let control = faulty.control();
        let a = LeaderElection::new(faulty, options("a")).unwrap();
        let b = LeaderElection::new(store, options("b")).unwrap();
        let lease = a.options().lease_duration;
        let heal = control.clone();
        let report = cut_off_leader_steps_down(
            a,
            b,
            move || control.set_partitioned(true),
            move || heal.heal(),
            &TakeoverOptions::default(),
        )
        .await;
        let stepped_down = report.stepped_down.expect("measured");
        assert!(stepped_down <= lease, "{report:?}");
        assert!(report.after_fault >= stepped_down, "{report:?}");
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "could not have expired")]
    async fn a_follower_taking_a_live_lease_is_caught() {
        // A release hands the lease over at once: passed off as a crash right after a
        // renewal, the follower leads long before that renewal's lease could expire.
        let store = MemoryLeaseStore::new();
        let a = LeaderElection::new(store.clone(), options("a")).unwrap();
        let b = LeaderElection::new(store.clone(), options("b")).unwrap();
        let recorder = TermRecorder::new();
        let first = settle(&a, &b, &recorder, &TakeoverOptions::default()).await;
        let lease = a.options().lease_duration;
        let fault_at = Instant::now();
        // Pretend the last renewal was just now, and hand b the lease by releasing it.
        a.stop().await.unwrap();
        let _ = taken_over(
            &b,
            first,
            fault_at,
            Instant::now(),
            lease,
            &TakeoverOptions::default(),
            None,
        )
        .await;
    }
}
