//! Handover measurement shared by the backends' benchmarks (examples): one loop, so that every
//! backend's figure means the same thing.

use std::time::{Duration, SystemTime};

use leader_election::{LeaderElection, LeaseStore};
use tokio::time::Instant;

/// The index of a contender other than `skip` that leads, polling every 200 µs.
///
/// # Panics
/// When none leads within `within`.
pub async fn next_leader<S: LeaseStore>(
    elections: &[LeaderElection<S>],
    skip: Option<usize>,
    within: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    loop {
        if let Some(i) = (0..elections.len())
            .filter(|&i| Some(i) != skip)
            .find(|&i| elections[i].is_leader())
        {
            return i;
        }
        assert!(Instant::now() < deadline, "no leader within {within:?}");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// One graceful handover: stops the leader `from`, waits until another contender leads, then
/// starts `from` again (as a follower). Answers who leads and how long it took from the stop
/// to another contender leading.
///
/// # Panics
/// When `from` cannot stop or start, or no other contender leads within `within`.
pub async fn hand_over<S: LeaseStore>(
    elections: &[LeaderElection<S>],
    from: usize,
    within: Duration,
) -> (usize, Duration) {
    let started = Instant::now();
    let stopping = elections[from].clone();
    let stop = tokio::spawn(async move { stopping.stop().await });
    let next = next_leader(elections, Some(from), within).await;
    let took = started.elapsed();
    stop.await.expect("join").expect("stop");
    elections[from].start().await.expect("restart");
    (next, took)
}

/// Graceful handovers among `elections` (started here, stopped at the end): `rounds` times,
/// after a pause of `settle(round)` so that followers are caught at various points of their
/// wait, the leader is stopped and the time until another contender leads is measured; the
/// stopped contender then starts again. Returns the times in milliseconds, sorted.
///
/// # Panics
/// When an election cannot start or stop, or no leader shows within `within`.
pub async fn handovers<S: LeaseStore>(
    elections: &[LeaderElection<S>],
    rounds: usize,
    within: Duration,
    mut settle: impl FnMut(usize) -> Duration,
) -> Vec<f64> {
    for e in elections {
        e.start().await.expect("start");
    }
    let mut leader = next_leader(elections, None, within).await;
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        tokio::time::sleep(settle(round)).await;
        let (next, took) = hand_over(elections, leader, within).await;
        samples.push(took.as_secs_f64() * 1000.0);
        leader = next;
    }
    for e in elections {
        e.stop().await.expect("stop");
    }
    samples.sort_by(f64::total_cmp);
    samples
}

/// One crash failover on one election: `crashing` starts and leads, `survivor` starts and
/// follows, and after `pause` (so that rounds catch the leader at various points of a renewal
/// interval) the leader vanishes without releasing. Answers the time from its last renewal
/// until `survivor` leads, in leases of `lease`; `survivor` is stopped.
///
/// # Panics
/// When a contender cannot start or stop, or `crashing` does not lead within 60 s.
pub async fn crash_failover<S: LeaseStore>(
    crashing: LeaderElection<S>,
    survivor: LeaderElection<S>,
    pause: Duration,
    lease: Duration,
) -> f64 {
    crashing.start().await.expect("start");
    let _ = next_leader(
        std::slice::from_ref(&crashing),
        None,
        Duration::from_secs(60),
    )
    .await;
    survivor.start().await.expect("start");
    tokio::time::sleep(pause).await;
    let last_renewal = crashing.last_leadership_renewal().expect("renewed");
    drop(crashing);
    let mut watch = survivor.watch();
    watch
        .wait_for(|s| s.is_leader())
        .await
        .expect("the survivor leads");
    let took = SystemTime::now()
        .duration_since(last_renewal)
        .unwrap_or_default();
    survivor.stop().await.expect("stop");
    took.as_secs_f64() / lease.as_secs_f64()
}

/// The `p` quantile (0.0–1.0) of `sorted` by nearest rank.
///
/// # Panics
/// When `sorted` is empty.
#[must_use]
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let last = sorted.len() - 1;
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((last as f64) * p.clamp(0.0, 1.0)).round() as usize;
    sorted[i.min(last)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use leader_election::{LeaderElectionOptions, MemoryLeaseStore};

    #[test]
    fn percentiles_use_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 51.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&sorted, 1.0), 100.0);
    }

    #[tokio::test]
    async fn handovers_are_measured_between_contenders() {
        let store = MemoryLeaseStore::new();
        let elections: Vec<_> = (0..3)
            .map(|i| {
                let mut options = LeaderElectionOptions::default();
                options.instance_id = format!("c{i}");
                LeaderElection::new(store.clone(), options).unwrap()
            })
            .collect();
        let samples = handovers(&elections, 5, Duration::from_secs(60), |_| {
            Duration::from_millis(10)
        })
        .await;
        assert_eq!(samples.len(), 5);
        // A release wakes a follower at once, long before the 30 s lease could expire.
        assert!(samples.iter().all(|ms| *ms < 1000.0), "{samples:?}");
        assert!(elections.iter().all(|e| !e.is_leader()));
    }
}
