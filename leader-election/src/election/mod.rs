//! The driver: [`LeaderElection`], its handle API and the shared state behind it.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{ConfigError, Error, Operation, Result};
use crate::event::ElectionEvent;
use crate::options::LeaderElectionOptions;
use crate::runner::{Command, Runner};
use crate::state::{ElectionState, Leadership};
use crate::store::{LeaderInfo, LeaseStore};

mod tasks;

pub use tasks::TaskOutcome;

/// How many events a subscriber may fall behind before it misses some.
const EVENT_CAPACITY: usize = 64;

/// One contender in a leader election, driving a [`LeaseStore`].
///
/// Cheap to clone: clones share one contender. [`start`](Self::start) runs the election in the
/// background; the contender then acquires the lease when it is free, renews it while leading,
/// and steps down — cancelling leader work first — when its lease can no longer be trusted.
/// Dropping the last handle stops the background loop without releasing the lease, which then
/// expires; call [`stop`](Self::stop) to hand leadership over at once.
///
/// ```no_run
/// use leader_election::{LeaderElection, LeaderElectionOptions, MemoryLeaseStore, TaskOutcome};
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let election = LeaderElection::new(MemoryLeaseStore::new(), LeaderElectionOptions::default())?;
/// election.start().await?;
/// let outcome = election
///     .run_task_if_leader(|term| async move {
///         println!("leading with token {}", term.token());
///     })
///     .await;
/// if let TaskOutcome::NotLeader = outcome {
///     println!("somebody else leads");
/// }
/// election.stop().await?;
/// # Ok(()) }
/// ```
pub struct LeaderElection<S> {
    shared: Arc<Shared<S>>,
    /// Shared by the handles only (not by the loop): when the last one goes, the loop ends.
    _handles: Arc<HandleGuard>,
}

impl<S> Clone for LeaderElection<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            _handles: Arc::clone(&self._handles),
        }
    }
}

impl<S> fmt::Debug for LeaderElection<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderElection")
            .field("instance_id", &self.shared.options.instance_id)
            .field("state", &*self.shared.state.borrow())
            .finish_non_exhaustive()
    }
}

struct HandleGuard {
    abandon: CancellationToken,
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        self.abandon.cancel();
    }
}

/// State shared by the handles and the election loop.
pub(crate) struct Shared<S> {
    pub(crate) store: S,
    pub(crate) options: LeaderElectionOptions,
    pub(crate) state: watch::Sender<ElectionState>,
    pub(crate) events: broadcast::Sender<ElectionEvent>,
    pub(crate) term: Mutex<Option<Leadership>>,
    pub(crate) last_renewal: Mutex<Option<SystemTime>>,
    /// The leader metadata to publish: from the options, then from every `proclaim`.
    pub(crate) metadata: Mutex<Option<Vec<u8>>>,
    /// Leader tasks running now; `stop` waits for this to reach zero before releasing.
    pub(crate) work: Arc<watch::Sender<usize>>,
    /// Fired when the last handle is dropped.
    pub(crate) abandon: CancellationToken,
    /// Whether the loop should be running (between `start` and `stop`).
    pub(crate) expected: AtomicBool,
    /// Whether the loop is running; cleared when it ends, also by a panic.
    pub(crate) alive: Arc<AtomicBool>,
    control: tokio::sync::Mutex<Option<Running>>,
}

struct Running {
    stop: CancellationToken,
    commands: mpsc::Sender<Command>,
    handle: JoinHandle<Result<()>>,
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every value behind these locks is replaced in one assignment, so a poisoned lock still
    // holds a consistent value.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<S: LeaseStore> LeaderElection<S> {
    /// A builder for an election on `store`: the option setters of
    /// [`ElectionBuilder`](crate::ElectionBuilder), then `build()`. Backends have builders of
    /// their own (`RedisLeaderElection::builder()` ...) that make the store too.
    pub fn builder(store: S) -> crate::builder::Builder<S> {
        crate::builder::Builder::new(store)
    }

    /// A contender for the election kept in `store`, configured by `options`. Nothing runs
    /// until [`start`](Self::start).
    ///
    /// # Errors
    /// [`ConfigError`] when `options` fail [`LeaderElectionOptions::validate`], or when the
    /// store cannot publish `options.metadata` ([`LeaseStore::check_metadata`]: too long for
    /// the backend).
    pub fn new(store: S, options: LeaderElectionOptions) -> Result<Self, ConfigError> {
        options.validate()?;
        if options.priority.is_some() && !store.capabilities().candidates {
            return Err(ConfigError::new(
                "priority",
                format!(
                    "the store of {} records no candidates, so a priority would have no effect: \
                     unset it, or use a store that supports preferred leaders",
                    store.election_name()
                ),
            ));
        }
        let metadata = options.metadata.clone().filter(|m| !m.is_empty());
        if let Some(metadata) = &metadata {
            store
                .check_metadata(metadata)
                .map_err(|err| ConfigError::new("metadata", err.to_string()))?;
        }
        let abandon = CancellationToken::new();
        let shared = Arc::new(Shared {
            store,
            options,
            state: watch::Sender::new(ElectionState::stopped()),
            events: broadcast::Sender::new(EVENT_CAPACITY),
            term: Mutex::new(None),
            last_renewal: Mutex::new(None),
            metadata: Mutex::new(metadata),
            work: Arc::new(watch::Sender::new(0)),
            abandon: abandon.clone(),
            expected: AtomicBool::new(false),
            alive: Arc::new(AtomicBool::new(false)),
            control: tokio::sync::Mutex::new(None),
        });
        Ok(Self {
            shared,
            _handles: Arc::new(HandleGuard { abandon }),
        })
    }

    /// Starts the election loop in the background, on the current tokio runtime. The first
    /// acquisition attempt is made at once. Does nothing if the loop is already running; after
    /// [`stop`](Self::stop), starts it again as a new candidacy.
    ///
    /// # Errors
    /// None today; the `Result` leaves room for backends that check their setup here.
    ///
    /// # Cancel safety
    /// Cancel safe. If the future is dropped before it completes, either no loop was started, or
    /// one was and runs as if the call had completed. A loop still stopping after a
    /// [`stop`](Self::stop) that was dropped half-way is waited for first, so two loops never
    /// run at once.
    pub async fn start(&self) -> Result<()> {
        let mut control = self.shared.control.lock().await;
        if let Some(running) = control.as_mut() {
            if !running.stop.is_cancelled() && !running.handle.is_finished() {
                return Ok(());
            }
            // A loop told to stop (by a stop() whose future was dropped) is still finishing:
            // its end must not overlap the new loop's start.
            let _ = (&mut running.handle).await;
            *control = None;
        }
        let stop = CancellationToken::new();
        let (commands, receiver) = mpsc::channel(16);
        let runner = Runner::new(Arc::clone(&self.shared), receiver, stop.clone());
        self.shared.alive.store(true, Ordering::SeqCst);
        self.shared.expected.store(true, Ordering::SeqCst);
        let handle = tokio::spawn(runner.run());
        *control = Some(Running {
            stop,
            commands,
            handle,
        });
        Ok(())
    }

    /// Stops the election loop: cancels leader work, waits for it up to `shutdown_timeout`,
    /// releases the lease if `enable_graceful_shutdown` is set (waking followers at once), and
    /// publishes the change. Does nothing if not running.
    ///
    /// # Errors
    /// The loop always stops; an error says the lease could not be released and will expire on
    /// its own: the release failed ([`Error::Backend`], [`Error::Timeout`], ...), leader work
    /// was still running ([`Error::WorkStillRunning`]), or the loop had panicked
    /// ([`Error::LoopPanicked`]).
    ///
    /// # Cancel safety
    /// Cancel safe. If the future is dropped before it completes, the loop still stops (leader
    /// work is cancelled, and the lease released as above); a later `stop` waits for it and
    /// returns its result, and a later [`start`](Self::start) waits for it before starting
    /// anew.
    pub async fn stop(&self) -> Result<()> {
        // Held until the loop has finished, so that a concurrent `start` cannot run a second
        // loop while this one still releases and publishes.
        let mut control = self.shared.control.lock().await;
        let Some(running) = control.as_mut() else {
            return Ok(());
        };
        self.shared.expected.store(false, Ordering::SeqCst);
        running.stop.cancel();
        // Awaited in place: if this future is dropped here, the handle stays in `control` for
        // the next `start` or `stop` to wait for.
        let joined = (&mut running.handle).await;
        *control = None;
        match joined {
            Ok(result) => result,
            Err(err) if err.is_panic() => {
                let panic = err.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Err(Error::LoopPanicked(message))
            }
            Err(_) => Ok(()),
        }
    }

    /// Makes one acquisition attempt now, without waiting for the loop's next one, and answers
    /// whether this contender leads afterwards. Starts the loop first if it is not running,
    /// since leadership needs it for renewal.
    ///
    /// # Errors
    /// The backend error of the attempt; [`Error::NotRunning`] if the election was stopped
    /// meanwhile.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future drops only the answer. The loop may still make the
    /// attempt, and leads if it succeeds, exactly as if its own timer had fired.
    pub async fn try_acquire_leadership(&self) -> Result<bool> {
        self.start().await?;
        let (reply, answer) = oneshot::channel();
        let commands = {
            let control = self.shared.control.lock().await;
            control.as_ref().map(|r| r.commands.clone())
        };
        let Some(commands) = commands else {
            return Err(Error::NotRunning);
        };
        if commands.send(Command::TryAcquire(reply)).await.is_err() {
            return Err(Error::NotRunning);
        }
        answer.await.unwrap_or(Err(Error::NotRunning))
    }

    /// Steps down without leaving the election: ends this contender's term, if it leads
    /// (leader work is cancelled, then waited for up to `shutdown_timeout`, then the lease is
    /// released so that a follower takes over within milliseconds), and keeps it as a follower
    /// that does not try to acquire for `cool_down`. For rolling deploys and manual failover;
    /// [`stop`](Self::stop) leaves the election altogether. Answers whether a term was ended.
    ///
    /// During the cool-down the contender follows the election as usual (state, events,
    /// [`current_leader`](Self::current_leader)); an explicit
    /// [`try_acquire_leadership`](Self::try_acquire_leadership) still makes an attempt.
    ///
    /// # Errors
    /// [`Error::NotRunning`] when the election is not running; [`Error::WorkStillRunning`]
    /// when leader work outlived `shutdown_timeout` (the lease is then left to expire); the
    /// release's error otherwise (the term has ended all the same).
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future drops only the answer; the loop resigns all the same.
    pub async fn resign(&self, cool_down: Duration) -> Result<bool> {
        let Some(commands) = self.running_commands().await else {
            return Err(Error::NotRunning);
        };
        let (reply, answer) = oneshot::channel();
        if commands
            .send(Command::Resign(cool_down, reply))
            .await
            .is_err()
        {
            return Err(Error::NotRunning);
        }
        answer.await.unwrap_or(Err(Error::NotRunning))
    }

    /// Publishes `metadata` with this contender's leadership, replacing what it published
    /// before (its address, a shard map version ...), like etcd's `Proclaim`; an empty value
    /// withdraws it. Followers and observers read it in [`LeaderInfo::metadata`] from
    /// [`current_leader`](Self::current_leader) and [`LeaderObserver`](crate::LeaderObserver)
    /// (which publishes a change of metadata alone as a new value); this contender's own
    /// [`ElectionState::leader`] shows it once confirmed.
    ///
    /// While this contender leads, the value is written at once, by a renewal made for it (the
    /// backend stores it atomically with that renewal), and this answers `true` once the backend
    /// has confirmed it. Otherwise (following, stopped, or the term ended first) it answers
    /// `false`: the value is kept and published with the next acquisition.
    ///
    /// # Errors
    /// [`Error::MetadataTooLarge`] (or the backend's own reason, from
    /// [`LeaseStore::check_metadata`]) when the backend cannot publish it: nothing changed and
    /// the previous value stays. The renewal's error when that renewal failed: the value is
    /// kept and goes with the next renewal, which the leader retries as usual.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future drops only the answer; the value is published all the
    /// same.
    pub async fn proclaim(&self, metadata: impl Into<Vec<u8>>) -> Result<bool> {
        let metadata = Some(metadata.into()).filter(|m| !m.is_empty());
        if let Some(metadata) = &metadata {
            self.shared.store.check_metadata(metadata)?;
        }
        *lock(&self.shared.metadata) = metadata;
        // Not running: kept for the next start.
        let Some(commands) = self.running_commands().await else {
            return Ok(false);
        };
        let (reply, answer) = oneshot::channel();
        if commands.send(Command::Proclaim(reply)).await.is_err() {
            return Ok(false);
        }
        answer.await.unwrap_or(Ok(false))
    }

    /// The leader metadata this contender publishes while it leads (the options' value, or the
    /// last [`proclaim`](Self::proclaim)ed one).
    #[must_use]
    pub fn metadata(&self) -> Option<Vec<u8>> {
        lock(&self.shared.metadata).clone()
    }

    /// Where to send commands to the loop, while it runs and is not stopping.
    async fn running_commands(&self) -> Option<mpsc::Sender<Command>> {
        let control = self.shared.control.lock().await;
        control
            .as_ref()
            .filter(|r| !r.stop.is_cancelled() && !r.handle.is_finished())
            .map(|r| r.commands.clone())
    }

    /// Whether this contender leads now. Turns false the moment the local lease deadline
    /// passes, even before the loop has noticed.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.leadership().is_some()
    }

    /// The current term, while this contender leads.
    #[must_use]
    pub fn leadership(&self) -> Option<Leadership> {
        lock(&self.shared.term)
            .as_ref()
            .filter(|term| term.is_current())
            .cloned()
    }

    /// Wall-clock time of the last confirmed acquisition or renewal, for display only (never
    /// used for decisions).
    #[must_use]
    pub fn last_leadership_renewal(&self) -> Option<SystemTime> {
        *lock(&self.shared.last_renewal)
    }

    /// Asks the backend who leads now, bounded by `operation_timeout`.
    ///
    /// # Errors
    /// The backend's error, or [`Error::Timeout`].
    pub async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        let timeout = self.shared.options.operation_timeout();
        tokio::time::timeout(timeout, self.shared.store.current_leader())
            .await
            .unwrap_or(Err(Error::Timeout {
                operation: Operation::CurrentLeader,
                after: timeout,
            }))
    }

    /// Whether this contender is in working order, for a liveness or readiness probe (like
    /// client-go's leader-election health check). Unhealthy when the election loop should be
    /// running but is not (it ended unexpectedly), or when this contender still believes it
    /// leads although its last confirmed renewal is older than the lease: its loop is stuck,
    /// and restarting the process is the safe way out.
    #[must_use]
    pub fn health(&self) -> Health {
        let state = self.state();
        let expected = self.shared.expected.load(Ordering::SeqCst);
        let alive = self.shared.alive.load(Ordering::SeqCst);
        let term = lock(&self.shared.term).clone();
        let options = &self.shared.options;
        let since_renewal = term.as_ref().map(|term| {
            let confirmed_sent = term.deadline()
                - options
                    .lease_duration
                    .saturating_sub(options.deadline_margin());
            tokio::time::Instant::now().saturating_duration_since(confirmed_sent)
        });
        let problem = if expected && !alive {
            Some("the election loop ended unexpectedly")
        } else if since_renewal.is_some_and(|age| age > options.lease_duration) {
            Some("believes it leads but has not renewed within its lease")
        } else {
            None
        };
        Health {
            healthy: problem.is_none(),
            problem,
            role: state.role,
            since_renewal,
        }
    }

    /// This contender's instance id.
    #[must_use]
    pub fn instance_id(&self) -> &str {
        &self.shared.options.instance_id
    }

    /// The options this contender runs with.
    #[must_use]
    pub fn options(&self) -> &LeaderElectionOptions {
        &self.shared.options
    }

    /// The backend store.
    #[must_use]
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// A receiver of every event from now on. Events are buffered per receiver; one that falls
    /// more than 64 events behind misses the oldest ones (`RecvError::Lagged`). A slow or
    /// absent receiver never delays the election.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<ElectionEvent> {
        self.shared.events.subscribe()
    }

    /// A receiver of the current [`ElectionState`], always holding the latest value.
    #[must_use]
    pub fn watch(&self) -> watch::Receiver<ElectionState> {
        self.shared.state.subscribe()
    }

    /// The current state.
    #[must_use]
    pub fn state(&self) -> ElectionState {
        self.shared.state.borrow().clone()
    }
}

/// The answer of [`LeaderElection::health`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// Whether the contender is in working order.
    pub healthy: bool,
    /// What is wrong, when unhealthy.
    pub problem: Option<&'static str>,
    /// The published role.
    pub role: crate::state::Role,
    /// While leading: time since the request of the last confirmed acquisition or renewal was
    /// sent.
    pub since_renewal: Option<Duration>,
}
