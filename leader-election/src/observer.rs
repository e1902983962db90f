//! [`LeaderObserver`]: follows an election — who leads, with which token and metadata — without
//! ever contending, for routers, dashboards and other services.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::backoff::jittered;
use crate::error::{Error, Operation};
use crate::event::ElectionEvent;
use crate::store::{LeaderInfo, LeaseStore};

/// How many events a subscriber may fall behind before it misses some.
const EVENT_CAPACITY: usize = 64;

/// After a release notice, the first delay before asking again while nobody leads; it doubles
/// with every answer that still shows nobody, up to the poll interval.
const FIRST_EAGER_DELAY: Duration = Duration::from_millis(10);

/// Follows an election without contending: the current leader, its token and its
/// [metadata](LeaderInfo::metadata) on a watch channel, changes as
/// [`ElectionEvent::LeaderObserved`] (and backend failures as [`ElectionEvent::Error`]). A
/// change of any of them is a change: a leader that [proclaims](crate::LeaderElection::proclaim)
/// new metadata shows at the next poll.
///
/// It asks the backend who leads once per `poll_interval` (choose the election's lease
/// duration: then it costs the backend what a follower costs, one request per lease, and
/// notices a crashed leader's successor about as soon as the followers do), and at once when
/// the backend announces a release, then after 10, 20, 40 ms … until the next leader shows. It
/// never acquires, renews or releases anything. Dropping the last handle stops it.
///
/// ```no_run
/// use std::time::Duration;
/// use leader_election::{LeaderObserver, MemoryLeaseStore};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let observer = LeaderObserver::start(MemoryLeaseStore::new(), Duration::from_secs(15));
/// let mut leader = observer.watch();
/// while leader.changed().await.is_ok() {
///     println!("now leading: {:?}", *leader.borrow());
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct LeaderObserver {
    inner: Arc<Inner>,
}

struct Inner {
    leader: watch::Receiver<Option<LeaderInfo>>,
    events: broadcast::Sender<ElectionEvent>,
    stop: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl fmt::Debug for LeaderObserver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderObserver")
            .field("leader", &*self.inner.leader.borrow())
            .finish_non_exhaustive()
    }
}

impl LeaderObserver {
    /// Starts observing the election kept in `store`, asking who leads every `poll_interval`
    /// (at least 10 ms) and at every release notice. Runs on the current tokio runtime until
    /// the last handle is dropped.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn start<S: LeaseStore>(store: S, poll_interval: Duration) -> Self {
        let poll_interval = poll_interval.max(Duration::from_millis(10));
        let (publish, leader) = watch::channel(None);
        let events = broadcast::Sender::new(EVENT_CAPACITY);
        let stop = CancellationToken::new();
        tokio::spawn(observe(
            store,
            poll_interval,
            publish,
            events.clone(),
            stop.clone(),
        ));
        Self {
            inner: Arc::new(Inner {
                leader,
                events,
                stop,
            }),
        }
    }

    /// The leader as last observed (`None`: nobody leads, or nothing observed yet).
    #[must_use]
    pub fn leader(&self) -> Option<LeaderInfo> {
        self.inner.leader.borrow().clone()
    }

    /// A receiver of the observed leader, always holding the latest value.
    #[must_use]
    pub fn watch(&self) -> watch::Receiver<Option<LeaderInfo>> {
        self.inner.leader.clone()
    }

    /// A receiver of every [`ElectionEvent::LeaderObserved`] and [`ElectionEvent::Error`] from
    /// now on; one that falls more than 64 events behind misses the oldest.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<ElectionEvent> {
        self.inner.events.subscribe()
    }
}

async fn observe<S: LeaseStore>(
    store: S,
    poll_interval: Duration,
    publish: watch::Sender<Option<LeaderInfo>>,
    events: broadcast::Sender<ElectionEvent>,
    stop: CancellationToken,
) {
    let timeout = poll_interval.min(Duration::from_secs(2));
    let mut connected = false;
    let mut releases = None;
    // After a release: the next, shorter delay while the next leader has not shown yet.
    let mut eager: Option<Duration> = None;
    loop {
        if !connected {
            match tokio::time::timeout(timeout, store.connect()).await {
                Ok(Ok(())) => {
                    connected = true;
                    releases = store.release_notifications();
                }
                Ok(Err(err)) => {
                    let _ = events.send(ElectionEvent::Error(err));
                }
                Err(_) => {
                    let _ = events.send(ElectionEvent::Error(Error::Timeout {
                        operation: Operation::Connect,
                        after: timeout,
                    }));
                }
            }
        }
        if connected {
            if let Some(releases) = &mut releases {
                releases.mark_seen();
            }
            match tokio::time::timeout(timeout, store.current_leader()).await {
                Ok(Ok(leader)) => {
                    if leader.is_some() {
                        eager = None;
                    }
                    if *publish.borrow() != leader {
                        publish.send_replace(leader.clone());
                        let _ = events.send(ElectionEvent::LeaderObserved { leader });
                    }
                }
                Ok(Err(err)) => {
                    let _ = events.send(ElectionEvent::Error(err));
                }
                Err(_) => {
                    let _ = events.send(ElectionEvent::Error(Error::Timeout {
                        operation: Operation::CurrentLeader,
                        after: timeout,
                    }));
                }
            }
        }
        let now = Instant::now();
        let next = match eager.filter(|delay| *delay < poll_interval) {
            Some(delay) => {
                eager = Some(delay * 2);
                now + delay
            }
            None => now + jittered(poll_interval, 0.1),
        };
        let released = async {
            match &mut releases {
                Some(releases) => releases.released().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = released => eager = Some(FIRST_EAGER_DELAY),
            () = sleep_until(next) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FaultyStore;
    use crate::{LeaderElection, LeaderElectionOptions, MemoryLeaseStore, Role};

    fn options(id: &str) -> LeaderElectionOptions {
        LeaderElectionOptions {
            instance_id: id.into(),
            ..LeaderElectionOptions::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn follows_handovers_and_crashes_without_contending() {
        let memory = MemoryLeaseStore::new();
        let faulty = FaultyStore::new(memory.clone());
        let ops = faulty.control();
        let lease = options("x").lease_duration;
        let observer = LeaderObserver::start(faulty, lease);
        let mut seen = observer.watch();
        let mut events = observer.subscribe();
        let a = LeaderElection::new(memory.clone(), options("a")).unwrap();
        let b = LeaderElection::new(memory.clone(), options("b")).unwrap();
        a.start().await.unwrap();
        a.watch()
            .wait_for(|s| s.role == Role::Leader)
            .await
            .unwrap();
        b.start().await.unwrap();
        // The first leader shows within one poll.
        let t = Instant::now();
        seen.wait_for(|l| l.as_ref().is_some_and(|l| l.instance_id == "a"))
            .await
            .unwrap();
        assert!(Instant::now() - t <= lease.mul_f64(1.1));
        // A graceful handover shows within milliseconds (release notice).
        let t = Instant::now();
        a.stop().await.unwrap();
        seen.wait_for(|l| l.as_ref().is_some_and(|l| l.instance_id == "b"))
            .await
            .unwrap();
        assert!(
            Instant::now() - t < Duration::from_millis(50),
            "{:?}",
            Instant::now() - t
        );
        assert!(matches!(
            events.try_recv(),
            Ok(ElectionEvent::LeaderObserved { .. })
        ));
        // A crash shows about when the followers notice it.
        a.start().await.unwrap();
        drop(b);
        let t = Instant::now();
        seen.wait_for(|l| l.as_ref().is_some_and(|l| l.instance_id == "a"))
            .await
            .unwrap();
        assert!(Instant::now() - t <= lease * 2 + lease / 5);
        // It never contends, and costs about one request per lease.
        let before = ops.operations();
        tokio::time::sleep(lease * 10).await;
        let per_lease = (ops.operations() - before) as f64 / 10.0;
        assert!(per_lease <= 1.2, "{per_lease} requests per lease");
        assert_eq!(
            memory.current_leader().await.unwrap().unwrap().instance_id,
            "a"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn errors_are_reported_and_dropping_stops_it() {
        let faulty = FaultyStore::new(MemoryLeaseStore::new());
        let control = faulty.control();
        control.fail_next(1);
        let observer = LeaderObserver::start(faulty, Duration::from_secs(1));
        let mut events = observer.subscribe();
        let event = events.recv().await.unwrap();
        assert!(matches!(event, ElectionEvent::Error(_)), "{event:?}");
        drop(observer);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = control.operations();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            control.operations(),
            before,
            "still polling after being dropped"
        );
    }
}
