//! [`Scheduler`]: runs each job's occurrences on the node that leads the job's election.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use leader_election::store::{Record, RecordVersion};
use leader_election::{
    ConfigError, Error, LeaderElection, LeaderElectionOptions, Leadership, LeaseStore,
};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::clock::WallClock;
use crate::event::JobEvent;
use crate::job::{Job, JobContext, Outcome};
use crate::plan::{Interrupted, Missed, Policy, Step, plan};
use crate::record::{FORMAT, JobRecord, State};
use crate::schedule::{Millis, millis, system_time};

/// Why a [`Scheduler`] cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobsError {
    /// The election options are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two jobs have one name.
    #[error("two jobs are named {0:?}: each job needs a name of its own")]
    DuplicateJob(String),
    /// A job has an empty name.
    #[error("a job's name is empty")]
    EmptyName,
    /// The store of a job keeps no election records, which the scheduler needs to run each
    /// occurrence once.
    #[error(
        "the store for job {job:?} (election {election:?}) keeps no election records, which scheduled jobs need"
    )]
    NoRecords {
        /// The job.
        job: String,
        /// The store's election.
        election: String,
    },
}

/// Runs named [`Job`]s so that each occurrence runs at most once across every node running
/// the same jobs on the same backend, and none is lost while a node is up.
///
/// Each job has an election of its own (the store [`builder`](Self::builder)'s `store_for`
/// returns for the job's name), so different jobs run on different nodes at once; the node
/// leading a job's election runs its occurrences, and claims each one in the job's record on
/// the backend before running it. See the crate docs for the argument and the policies.
pub struct Scheduler<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Scheduler<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<S> {
    jobs: Vec<Slot<S>>,
    events: broadcast::Sender<JobEvent>,
    clock: WallClock,
    stopping: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// One job, its election and what the scheduler knows of its runs here.
struct Slot<S> {
    job: Job,
    election: LeaderElection<S>,
    policy: Policy,
    next_due: watch::Sender<Option<Millis>>,
    /// Whether a run of the job is in progress on this node.
    running: watch::Sender<bool>,
    /// When the latest run here started, for `lock_at_least_for`.
    last_start: Mutex<Option<Instant>>,
}

impl<S> fmt::Debug for Scheduler<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field(
                "jobs",
                &self
                    .inner
                    .jobs
                    .iter()
                    .map(|s| &s.job.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds a [`Scheduler`]: see [`Scheduler::builder`].
pub struct SchedulerBuilder<S> {
    store_for: Box<dyn Fn(&str) -> S + Send + Sync>,
    options: LeaderElectionOptions,
    clock: WallClock,
    jobs: Vec<Job>,
    spread: bool,
}

impl<S> fmt::Debug for SchedulerBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchedulerBuilder")
            .field("options", &self.options)
            .field("jobs", &self.jobs)
            .finish_non_exhaustive()
    }
}

impl<S: LeaseStore> SchedulerBuilder<S> {
    /// The options of every job's election (the same instance id for all: this node).
    /// Default: [`LeaderElectionOptions::default`].
    #[must_use]
    pub fn options(mut self, options: LeaderElectionOptions) -> Self {
        self.options = options;
        self
    }

    /// Where the scheduler reads the time of day. Default: [`WallClock::system`].
    #[must_use]
    pub fn clock(mut self, clock: WallClock) -> Self {
        self.clock = clock;
        self
    }

    /// Spreads the jobs over the nodes: each node prefers, by rendezvous hashing of its
    /// instance id and the job's name, a different share of the jobs, and takes its share
    /// over from whichever node holds it through the elections'
    /// [preferred leaders](leader_election::priority) (a graceful handover after the holder's
    /// `min_tenure`). Every node of the jobs must set it. A handover cancels a run in progress,
    /// which the next holder then finds interrupted; the store must record candidates.
    /// Without it, each job goes to whichever node takes its lease first. Default: off.
    #[must_use]
    pub fn spread(mut self) -> Self {
        self.spread = true;
        self
    }

    /// Adds `job`.
    #[must_use]
    pub fn job(mut self, job: Job) -> Self {
        self.jobs.push(job);
        self
    }

    /// The scheduler, not started.
    ///
    /// # Errors
    /// Invalid options, two jobs with one name, an empty name, or a store that keeps no
    /// election records.
    pub fn build(self) -> Result<Scheduler<S>, JobsError> {
        let mut slots: Vec<Slot<S>> = Vec::with_capacity(self.jobs.len());
        for job in self.jobs {
            if job.name.is_empty() {
                return Err(JobsError::EmptyName);
            }
            if slots.iter().any(|s| s.job.name == job.name) {
                return Err(JobsError::DuplicateJob(job.name.to_string()));
            }
            let store = (self.store_for)(&job.name);
            if store.capabilities().max_record_len == 0 {
                return Err(JobsError::NoRecords {
                    job: job.name.to_string(),
                    election: store.election_name().to_owned(),
                });
            }
            let mut options = self.options.clone();
            if self.spread {
                options.priority = Some(rendezvous(&options.instance_id, &job.name));
            }
            let election = LeaderElection::new(store, options)?;
            let late_within = job
                .late_within
                .unwrap_or(self.options.lease_duration.saturating_mul(2));
            let policy = Policy {
                late_within: Millis::try_from(late_within.as_millis()).unwrap_or(Millis::MAX),
                on_interrupted: job.on_interrupted,
                catch_up: job.catch_up,
            };
            slots.push(Slot {
                job,
                election,
                policy,
                next_due: watch::channel(None).0,
                running: watch::channel(false).0,
                last_start: Mutex::new(None),
            });
        }
        Ok(Scheduler {
            inner: Arc::new(Inner {
                jobs: slots,
                events: broadcast::channel(1024).0,
                clock: self.clock,
                stopping: watch::channel(false).0,
                tasks: Mutex::new(Vec::new()),
            }),
        })
    }
}

impl<S: LeaseStore> Scheduler<S> {
    /// A builder. `store_for` returns the store of a job's election, from the job's name: a
    /// store for an election of its own per job, such as `jobs/<name>`, on a backend that keeps
    /// [election records](leader_election::store::Record) (every backend of this workspace
    /// does).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use std::sync::Mutex;
    /// use std::time::Duration;
    /// use leader_election::MemoryLeaseStore;
    /// use leader_election_jobs::{Job, Schedule, Scheduler};
    ///
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// // In a service: RedisLeaderElection::builder().url(..).election(format!("jobs/{job}"))
    /// // .build_store(); here, one memory store per job.
    /// let stores = Mutex::new(HashMap::<String, MemoryLeaseStore>::new());
    /// let scheduler = Scheduler::builder(move |job: &str| {
    ///     stores.lock().unwrap().entry(job.to_owned()).or_default().clone()
    /// })
    /// .job(Job::new("sync", Schedule::every(Duration::from_secs(30)), |ctx| async move {
    ///     println!("sync due at {:?}, token {}", ctx.due, ctx.token());
    ///     Ok::<(), std::io::Error>(())
    /// }))
    /// .build()?;
    /// scheduler.start().await?;
    /// // ...
    /// scheduler.stop().await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(store_for: impl Fn(&str) -> S + Send + Sync + 'static) -> SchedulerBuilder<S> {
        SchedulerBuilder {
            store_for: Box::new(store_for),
            options: LeaderElectionOptions::default(),
            clock: WallClock::system(),
            jobs: Vec::new(),
            spread: false,
        }
    }

    /// Starts every job's election, and the runs of the jobs this node comes to lead.
    ///
    /// # Errors
    /// An election that could not start (see [`LeaderElection::start`]); the ones started
    /// before it keep running until [`stop`](Self::stop).
    pub async fn start(&self) -> Result<(), Error> {
        self.inner.stopping.send_replace(false);
        for index in 0..self.inner.jobs.len() {
            self.inner.jobs[index].election.start().await?;
            let inner = Arc::clone(&self.inner);
            let task = tokio::spawn(async move {
                let slot = &inner.jobs[index];
                slot.election
                    .run_while_leader(|term| lead(Arc::clone(&inner), index, term))
                    .await;
            });
            self.inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(task);
        }
        Ok(())
    }

    /// Stops gracefully: claims no new occurrence, waits for the runs in progress to end (up
    /// to the options' `shutdown_timeout`; past it they are cancelled), keeps each job for its
    /// [`lock_at_least_for`](Job::lock_at_least_for), then stops every election, which gives
    /// the jobs' leases up so that other nodes take them over at once.
    ///
    /// # Errors
    /// The first error of an election's [`stop`](LeaderElection::stop); every election is
    /// stopped anyway.
    pub async fn stop(&self) -> Result<(), Error> {
        self.inner.stopping.send_replace(true);
        let limit = self
            .inner
            .jobs
            .first()
            .map_or(Duration::ZERO, |s| s.election.options().shutdown_timeout);
        let _ = tokio::time::timeout(limit, async {
            for slot in &self.inner.jobs {
                let mut running = slot.running.subscribe();
                let _ = running.wait_for(|r| !r).await;
            }
        })
        .await;
        for slot in &self.inner.jobs {
            let last = *slot
                .last_start
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(started) = last
                && slot.election.is_leader()
            {
                tokio::time::sleep_until(started + slot.job.at_least).await;
            }
        }
        let mut result = Ok(());
        for slot in &self.inner.jobs {
            if let Err(err) = slot.election.stop().await
                && result.is_ok()
            {
                result = Err(err);
            }
        }
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in tasks {
            let _ = task.await;
        }
        for slot in &self.inner.jobs {
            slot.next_due.send_replace(None);
        }
        result
    }

    /// Simulates this node's process dying: every job's work stops where it is, and no lease
    /// is released (they expire on the backend); a run in progress stays "running" in its
    /// job's record. For tests (feature `testing`).
    #[cfg(any(test, feature = "testing"))]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    pub fn crash(self) {
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in tasks {
            task.abort();
        }
        // The elections' loops end with their last handle, without releasing.
        drop(self);
    }

    /// Events of every job's occurrences on this node.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.inner.events.subscribe()
    }

    /// When the next occurrence of `job` is due, while this node leads it (`None` otherwise,
    /// or for an unknown job).
    #[must_use]
    pub fn next_due(&self, job: &str) -> Option<std::time::SystemTime> {
        let slot = self.slot(job)?;
        if !slot.election.is_leader() {
            return None;
        }
        (*slot.next_due.borrow()).map(system_time)
    }

    /// The election of `job`: who leads it, its events, its state.
    #[must_use]
    pub fn election(&self, job: &str) -> Option<&LeaderElection<S>> {
        self.slot(job).map(|s| &s.election)
    }

    /// The names of the jobs, in the order they were added.
    pub fn jobs(&self) -> impl Iterator<Item = &str> {
        self.inner.jobs.iter().map(|s| &*s.job.name)
    }

    fn slot(&self, job: &str) -> Option<&Slot<S>> {
        self.inner.jobs.iter().find(|s| &*s.job.name == job)
    }
}

/// The priority of node `node` for `job` ([`SchedulerBuilder::spread`]): a hash of both
/// (FNV-1a, then MurmurHash3's finalizer, so that names differing in one character spread),
/// at least 1 so that the node announces itself.
fn rendezvous(node: &str, job: &str) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in node.bytes().chain([0]).chain(job.bytes()) {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash ^= hash >> 16;
    hash = hash.wrapping_mul(0x85eb_ca6b);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(0xc2b2_ae35);
    hash ^= hash >> 16;
    hash.max(1)
}

impl<S> Inner<S> {
    fn emit(&self, event: JobEvent) {
        crate::metrics::event(&event);
        let _ = self.events.send(event);
    }
}

/// The record as last read or written by this term: the decoded record (if any) and its
/// version.
type Known = (Option<JobRecord>, Option<RecordVersion>);

/// What the node leading job `index` does for the whole term: plans, claims and runs its
/// occurrences one after the other. Dropped when the term ends.
async fn lead<S: LeaseStore>(inner: Arc<Inner<S>>, index: usize, term: Leadership) {
    let slot = &inner.jobs[index];
    let options = slot.election.options();
    let retry = options.retry_interval;
    let token = term.token().get();
    let mut known: Option<Known> = None;
    let mut missing_since: Option<Millis> = None;
    // A claim of this term whose write's outcome is unknown: not run. If the record shows it,
    // it is run now.
    let mut unconfirmed: Option<JobRecord> = None;
    // The end of a run of this term whose write failed: written again if the record still
    // shows the run.
    let mut unrecorded: Option<JobRecord> = None;
    loop {
        let (record, version) = match known.take() {
            Some(k) => k,
            None => match read(&inner, slot).await {
                Ok(Some(k)) => k,
                Ok(None) => {
                    // Unusable: reported; look again a lease later.
                    tokio::time::sleep(options.lease_duration).await;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(job = %slot.job.name, error = %err, "reading the job's record failed");
                    tokio::time::sleep(retry).await;
                    continue;
                }
            },
        };
        if let (Some(current), Some(at)) = (&record, &version)
            && current.state == State::Running
            && current.token == token
        {
            if let Some(done) = unrecorded.take_if(|d| d.claim == current.claim) {
                match write(slot, Some(at), &done).await {
                    Written::Yes(k) => known = Some(k),
                    Written::No => {}
                    Written::Unknown => {
                        unrecorded = Some(done);
                        tokio::time::sleep(retry).await;
                    }
                }
                continue;
            }
            if let Some(claim) = unconfirmed.take_if(|c| c.claim == current.claim) {
                let (k, u) = run_and_record(&inner, slot, &term, claim, at.clone()).await;
                (known, unrecorded) = (k, u);
                continue;
            }
        }
        let now = millis(inner.clock.now());
        let missing = if record.is_none() {
            *missing_since.get_or_insert(now)
        } else {
            missing_since = None;
            now
        };
        match plan(
            record.as_ref(),
            token,
            missing,
            now,
            &slot.job.schedule,
            slot.policy,
        ) {
            Step::Wait { due } => {
                slot.next_due.send_replace(Some(due));
                crate::metrics::next_due(&slot.job.name, due);
                sleep_until_due(&inner.clock, due).await;
                known = Some((record, version));
            }
            Step::Superseded => {
                // A later term wrote the record: this one ends as soon as the election sees it.
                tokio::time::sleep(retry).await;
            }
            Step::Done => {
                slot.next_due.send_replace(None);
                std::future::pending::<()>().await;
            }
            Step::GiveUp {
                due,
                missed,
                interrupted,
            } => {
                let outcome = if interrupted.is_some() {
                    Outcome::Interrupted
                } else {
                    Outcome::Missed
                };
                let settled = JobRecord {
                    format: FORMAT,
                    due,
                    state: State::Done,
                    outcome: Some(outcome),
                    token,
                    node: slot.election.instance_id().to_owned(),
                    attempt: record
                        .as_ref()
                        .filter(|r| r.due == due)
                        .map_or(1, |r| r.attempt),
                    claim: fastrand::u64(..),
                    at: now,
                };
                known = write(slot, version.as_ref(), &settled).await.known();
                if known.is_some() {
                    report(&inner, slot, missed, interrupted, false);
                } else {
                    tokio::time::sleep(retry).await;
                }
            }
            Step::Run {
                due,
                attempt,
                missed,
                interrupted,
            } => {
                if *inner.stopping.borrow() {
                    // Stopping: claim nothing more; the election's stop ends the term.
                    slot.next_due.send_replace(None);
                    std::future::pending::<()>().await;
                }
                let claim = JobRecord {
                    format: FORMAT,
                    due,
                    state: State::Running,
                    outcome: None,
                    token,
                    node: slot.election.instance_id().to_owned(),
                    attempt,
                    claim: fastrand::u64(..),
                    at: now,
                };
                let claimed = match write(slot, version.as_ref(), &claim).await {
                    Written::Yes((_, Some(claimed))) => claimed,
                    outcome => {
                        if matches!(outcome, Written::Unknown) {
                            unconfirmed = Some(claim);
                        }
                        // Somebody else wrote the record, or nobody knows: read it again.
                        tokio::time::sleep(retry.min(Duration::from_millis(50))).await;
                        continue;
                    }
                };
                report(&inner, slot, missed, interrupted, true);
                let (k, u) = run_and_record(&inner, slot, &term, claim, claimed).await;
                (known, unrecorded) = (k, u);
            }
        }
    }
}

/// Runs the occurrence `claim` claimed (the record now at `claimed`), and records how it
/// ended: the record as now known, or the end to write again when that failed.
async fn run_and_record<S: LeaseStore>(
    inner: &Arc<Inner<S>>,
    slot: &Slot<S>,
    term: &Leadership,
    claim: JobRecord,
    claimed: RecordVersion,
) -> (Option<Known>, Option<JobRecord>) {
    let outcome = run(inner, slot, term, &claim).await;
    let finished = JobRecord {
        state: State::Done,
        outcome: Some(outcome),
        at: millis(inner.clock.now()),
        ..claim
    };
    match write(slot, Some(&claimed), &finished).await {
        Written::Yes(known) => (Some(known), None),
        Written::No => (None, None),
        Written::Unknown => (None, Some(finished)),
    }
}

/// Emits the events of occurrences given up or found interrupted.
fn report<S>(
    inner: &Inner<S>,
    slot: &Slot<S>,
    missed: Option<Missed>,
    interrupted: Option<Interrupted>,
    retried: bool,
) {
    if let Some(m) = missed {
        inner.emit(JobEvent::Missed {
            job: Arc::clone(&slot.job.name),
            first: system_time(m.first),
            last: system_time(m.last),
            count: m.count,
            catch_up: slot.policy.catch_up,
        });
    }
    if let Some(i) = interrupted {
        inner.emit(JobEvent::Interrupted {
            job: Arc::clone(&slot.job.name),
            due: system_time(i.due),
            token: leader_election::FencingToken::new(i.token),
            attempt: i.attempt,
            retried,
        });
    }
}

/// Runs the claimed occurrence, within the term and `lock_at_most_for`.
async fn run<S: LeaseStore>(
    inner: &Arc<Inner<S>>,
    slot: &Slot<S>,
    term: &Leadership,
    claim: &JobRecord,
) -> Outcome {
    let started = Instant::now();
    *slot
        .last_start
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(started);
    slot.running.send_replace(true);
    let late_by = Duration::from_millis(claim.at.saturating_sub(claim.due));
    inner.emit(JobEvent::Started {
        job: Arc::clone(&slot.job.name),
        due: system_time(claim.due),
        token: term.token(),
        attempt: claim.attempt,
        late_by,
    });
    crate::metrics::started(&slot.job.name, late_by);
    // If the term ends during the run, the whole term's work is dropped here: the guard
    // reports the run's end.
    let mut guard = RunGuard {
        inner,
        slot,
        due: claim.due,
        term,
        attempt: claim.attempt,
        started,
        done: false,
    };
    let ctx = JobContext {
        job: Arc::clone(&slot.job.name),
        due: system_time(claim.due),
        attempt: claim.attempt,
        term: term.clone(),
    };
    let span = tracing::info_span!(
        "job_run",
        job = %slot.job.name,
        due = claim.due,
        token = term.token().get(),
        attempt = claim.attempt
    );
    let work = (slot.job.run)(ctx).instrument(span);
    let result = match slot.job.at_most {
        Some(bound) => tokio::time::timeout(bound, work).await,
        None => Ok(work.await),
    };
    let outcome = match result {
        Ok(Ok(())) => Outcome::Succeeded,
        Ok(Err(err)) => Outcome::Failed {
            error: err.to_string(),
        },
        Err(_) => Outcome::TimedOut,
    };
    guard.finish(outcome.clone());
    outcome
}

/// Reports a run's end, also when the run is dropped with its term.
struct RunGuard<'a, S> {
    inner: &'a Inner<S>,
    slot: &'a Slot<S>,
    due: Millis,
    term: &'a Leadership,
    attempt: u32,
    started: Instant,
    done: bool,
}

impl<S> RunGuard<'_, S> {
    fn finish(&mut self, outcome: Outcome) {
        self.done = true;
        self.slot.running.send_replace(false);
        let took = self.started.elapsed();
        crate::metrics::finished(&self.slot.job.name, &outcome, took);
        self.inner.emit(JobEvent::Finished {
            job: Arc::clone(&self.slot.job.name),
            due: system_time(self.due),
            token: self.term.token(),
            attempt: self.attempt,
            took,
            outcome,
        });
    }
}

impl<S> Drop for RunGuard<'_, S> {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Outcome::LeadershipLost);
        }
    }
}

/// How long one call to the store may take.
fn call_timeout<S: LeaseStore>(slot: &Slot<S>) -> Duration {
    slot.election.options().operation_timeout()
}

/// Reads the job's record: `Ok(None)` when it holds data this scheduler cannot use (reported).
async fn read<S: LeaseStore>(inner: &Inner<S>, slot: &Slot<S>) -> Result<Option<Known>, Error> {
    let record =
        match tokio::time::timeout(call_timeout(slot), slot.election.store().read_record()).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(Error::backend(
                    leader_election::Operation::ReadRecord,
                    true,
                    "reading the job's record timed out",
                ));
            }
        };
    match record {
        None => Ok(Some((None, None))),
        Some(Record { version, data, .. }) => match JobRecord::decode(&data) {
            Ok(job) => Ok(Some((Some(job), Some(version)))),
            Err(reason) => {
                tracing::error!(job = %slot.job.name, %reason, "the job's record is unusable");
                inner.emit(JobEvent::RecordUnusable {
                    job: Arc::clone(&slot.job.name),
                    reason,
                });
                Ok(None)
            }
        },
    }
}

/// What became of a write of the job's record.
enum Written {
    /// Written: the record as now known.
    Yes(Known),
    /// Not written: the record was not at the version expected.
    No,
    /// Nobody knows (the write or the read after it failed).
    Unknown,
}

impl Written {
    fn known(self) -> Option<Known> {
        match self {
            Self::Yes(known) => Some(known),
            Self::No | Self::Unknown => None,
        }
    }
}

/// Writes `record` if the job's record is still at `expected`; when the outcome is unknown, a
/// read says whether this very write landed (its claim number is in the data).
async fn write<S: LeaseStore>(
    slot: &Slot<S>,
    expected: Option<&RecordVersion>,
    record: &JobRecord,
) -> Written {
    let store = slot.election.store();
    let data = record.encode();
    match tokio::time::timeout(call_timeout(slot), store.write_record(expected, &data)).await {
        Ok(Ok(Some(version))) => return Written::Yes((Some(record.clone()), Some(version))),
        Ok(Ok(None)) => return Written::No,
        Ok(Err(err)) => {
            tracing::warn!(job = %slot.job.name, error = %err, "writing the job's record failed");
        }
        Err(_) => {
            tracing::warn!(job = %slot.job.name, "writing the job's record timed out");
        }
    }
    let read = tokio::time::timeout(call_timeout(slot), store.read_record()).await;
    match read {
        Ok(Ok(Some(current))) if current.data == data => {
            Written::Yes((Some(record.clone()), Some(current.version)))
        }
        Ok(Ok(_)) => Written::No,
        _ => Written::Unknown,
    }
}

/// Sleeps until the wall clock reads `due`, looking at it at least every second (it may be
/// stepped while we sleep).
async fn sleep_until_due(clock: &WallClock, due: Millis) {
    loop {
        let now = millis(clock.now());
        if now >= due {
            return;
        }
        let wait = Duration::from_millis(due - now).min(Duration::from_secs(1));
        tokio::time::sleep(wait).await;
    }
}
