//! The shared check of scheduled jobs (feature `testing`), which every backend runs:
//! schedulers on several nodes, a graceful stop and a crash of a job's leader, and every run
//! recorded and checked: each occurrence once, none lost, tokens increasing per job.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use leader_election::testing::suite::Fixture;
use leader_election::{LeaderElectionOptions, LeaseStore};
use tokio::time::Instant;

use crate::{Job, Millis, Schedule, Scheduler, WallClock, millis};

/// One run, as the job itself saw it start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// The job.
    pub job: String,
    /// The occurrence's due time.
    pub due: Millis,
    /// The node that ran it.
    pub node: String,
    /// The run's fencing token.
    pub token: u64,
    /// 1, or 2 for a retry.
    pub attempt: u32,
    /// How long after its due time it started, by the node's clock.
    pub late_by: Duration,
}

/// Every run of the jobs it made, on every node, and the occurrences given up as
/// interrupted.
#[derive(Clone, Debug, Default)]
pub struct RunLog {
    runs: Arc<Mutex<Vec<Run>>>,
    given_up: Arc<Mutex<std::collections::HashSet<(String, Millis)>>>,
}

/// What [`RunLog::verdict`] found for one job.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobVerdict {
    /// Occurrences that ran.
    pub occurrences: usize,
    /// Occurrences that ran more than once (but by an explicit retry).
    pub duplicates: Vec<Millis>,
    /// Occurrences due between the first and the last run that never ran, and were not given
    /// up as interrupted.
    pub lost: Vec<Millis>,
    /// Occurrences that never ran because their claim was found interrupted and given up
    /// ([`OnInterrupted::Skip`](crate::OnInterrupted::Skip)): the claimant crashed or lost its
    /// term after its claim reached the backend and before it ran.
    pub given_up: Vec<Millis>,
    /// Runs whose token was below that of a run of an earlier occurrence, or equal to it on
    /// another node.
    pub token_regressions: Vec<Millis>,
    /// Start latency after the due time: median and 99th percentile.
    pub late_by_p50: Duration,
    /// See `late_by_p50`.
    pub late_by_p99: Duration,
}

impl RunLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A job named `name` on `schedule` that records each run here (as its first step: a
    /// claimed occurrence is recorded unless its claimant died or lost its term before it
    /// learnt that its claim landed, and the next holder then gives it up as interrupted, which
    /// [`watch`](Self::watch) records) and then works for `work`, run by `node`'s
    /// scheduler with clock `clock`.
    #[must_use]
    pub fn job(
        &self,
        name: &str,
        schedule: Schedule,
        node: &str,
        clock: WallClock,
        work: Duration,
    ) -> Job {
        let runs = Arc::clone(&self.runs);
        let node = node.to_owned();
        Job::new(name, schedule, move |ctx| {
            let started = millis(clock.now());
            let due = millis(ctx.due);
            runs.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Run {
                    job: ctx.job.to_string(),
                    due,
                    node: node.clone(),
                    token: ctx.token().get(),
                    attempt: ctx.attempt,
                    late_by: Duration::from_millis(started.saturating_sub(due)),
                });
            async move {
                tokio::time::sleep(work).await;
                Ok::<(), std::convert::Infallible>(())
            }
        })
    }

    /// Records that `job`'s occurrence due at `due` was given up as interrupted (a
    /// [`JobEvent::Interrupted`](crate::JobEvent::Interrupted) that did not retry it).
    pub fn give_up(&self, job: &str, due: Millis) {
        self.given_up
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((job.to_owned(), due));
    }

    /// Records every occurrence `scheduler` gives up as interrupted, until it is gone.
    pub fn watch<S: LeaseStore>(&self, scheduler: &Scheduler<S>) {
        let mut events = scheduler.subscribe();
        let log = self.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(crate::JobEvent::Interrupted {
                        job,
                        due,
                        retried: false,
                        ..
                    }) => log.give_up(&job, millis(due)),
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
    }

    /// Records `run`, seen by another means (a tester collecting the runs of other
    /// processes).
    pub fn push(&self, run: Run) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(run);
    }

    /// The jobs that ran, sorted.
    #[must_use]
    pub fn jobs(&self) -> Vec<String> {
        let mut jobs: Vec<String> = self.runs().into_iter().map(|r| r.job).collect();
        jobs.sort();
        jobs.dedup();
        jobs
    }

    /// Every run so far.
    #[must_use]
    pub fn runs(&self) -> Vec<Run> {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many runs `job` had.
    #[must_use]
    pub fn count(&self, job: &str) -> usize {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|r| r.job == job)
            .count()
    }

    /// The verdict on `job`'s runs, whose occurrences follow `schedule`.
    #[must_use]
    pub fn verdict(&self, job: &str, schedule: &Schedule) -> JobVerdict {
        let mut runs: Vec<Run> = self.runs().into_iter().filter(|r| r.job == job).collect();
        runs.sort_by_key(|r| (r.due, r.attempt));
        let mut verdict = JobVerdict::default();
        let mut seen: HashMap<Millis, u32> = HashMap::new();
        for run in &runs {
            let n = seen.entry(run.due).or_default();
            *n += 1;
            if *n > 1 && run.attempt == 1 {
                verdict.duplicates.push(run.due);
            }
        }
        verdict.occurrences = seen.len();
        if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
            let mut at = first.due;
            while let Some(next) = schedule.next_after(at) {
                if next > last.due {
                    break;
                }
                if !seen.contains_key(&next) {
                    let given_up = self
                        .given_up
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .contains(&(job.to_owned(), next));
                    if given_up {
                        verdict.given_up.push(next);
                    } else {
                        verdict.lost.push(next);
                    }
                }
                at = next;
            }
        }
        for pair in runs.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if b.token < a.token || (b.token == a.token && b.node != a.node) {
                verdict.token_regressions.push(b.due);
            }
        }
        let mut late: Vec<Duration> = runs.iter().map(|r| r.late_by).collect();
        late.sort();
        if !late.is_empty() {
            verdict.late_by_p50 = late[late.len() / 2];
            verdict.late_by_p99 = late[(late.len() * 99 / 100).min(late.len() - 1)];
        }
        verdict
    }
}

/// The settings of [`each_occurrence_runs_once`].
#[derive(Clone, Debug)]
pub struct JobsCheckOptions {
    /// The options of every node's elections (each node gets its own instance id).
    pub election: LeaderElectionOptions,
    /// The jobs' period.
    pub period: Duration,
    /// How long each run works.
    pub work: Duration,
    /// The nodes' clock (before their offsets). Default: the system clock; a test on paused
    /// time passes [`WallClock::tokio`].
    pub clock: WallClock,
    /// How far the nodes' clocks are apart: node *i* runs `i * skew` ahead of `clock`.
    pub skew: Duration,
    /// The most each wait of the check may take.
    pub within: Duration,
}

impl JobsCheckOptions {
    /// Jobs every `period` on elections with `election`'s options, runs of 10 ms, the system
    /// clock with 100 ms of skew between nodes, waits of at most 30 s.
    #[must_use]
    pub fn new(election: LeaderElectionOptions, period: Duration) -> Self {
        Self {
            election,
            period,
            work: Duration::from_millis(10),
            clock: WallClock::system(),
            skew: Duration::from_millis(100),
            within: Duration::from_secs(30),
        }
    }
}

/// What [`each_occurrence_runs_once`] saw, per job.
#[derive(Clone, Debug)]
pub struct JobsReport {
    /// The verdict per job.
    pub jobs: Vec<(String, JobVerdict)>,
}

/// Three nodes run the same two jobs (every `options.period`) on stores made by `new_store`
/// (which gets an election name and must return a store for it; every call with one name must
/// serve one election). After a few runs, the node leading the first job stops gracefully and
/// starts again; then the node leading the second job crashes. Every run is recorded, and each
/// job must have run each occurrence once, none lost from its first run to its last (but one
/// given up as interrupted: the crashed node's claim may reach the backend before it dies, and
/// never run), with tokens increasing from one term to the next.
///
/// # Panics
/// Saying what, when any of that fails, or a wait exceeds `options.within`.
pub async fn each_occurrence_runs_once<S, F, Fut>(
    new_store: F,
    options: &JobsCheckOptions,
) -> JobsReport
where
    S: LeaseStore,
    F: Fn(String) -> Fut,
    Fut: Future<Output = S>,
{
    let prefix = format!("jobs-check-{}", fastrand::u32(..));
    let jobs = ["first", "second"];
    let schedule = Schedule::every(options.period);
    let log = RunLog::new();
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(Some(
            start_node(i, &new_store, options, &log, &prefix, &jobs, &schedule).await,
        ));
    }
    let runs_of = |job: &str, n: usize| {
        let log = log.clone();
        let job = job.to_owned();
        async move {
            let target = log.count(&job) + n;
            wait_until(options.within, &format!("{n} more runs of {job}"), || {
                log.count(&job) >= target
            })
            .await;
        }
    };
    runs_of("first", 4).await;
    runs_of("second", 4).await;
    // The leader of the first job stops gracefully, and comes back.
    let leader = leader_of(&nodes, "first", options.within).await;
    let stopped = nodes[leader].take().expect("a node");
    stopped.stop().await.expect("[jobs] stop the leader");
    runs_of("first", 4).await;
    stopped.start().await.expect("[jobs] start again");
    nodes[leader] = Some(stopped);
    runs_of("first", 2).await;
    // The leader of the second job crashes.
    let leader = leader_of(&nodes, "second", options.within).await;
    nodes[leader].take().expect("a node").crash();
    runs_of("second", 4).await;
    runs_of("first", 2).await;
    for node in nodes.into_iter().flatten() {
        node.stop().await.expect("[jobs] stop");
    }
    let report = JobsReport {
        jobs: jobs
            .iter()
            .map(|job| ((*job).to_owned(), log.verdict(job, &schedule)))
            .collect(),
    };
    for (job, verdict) in &report.jobs {
        assert!(
            verdict.duplicates.is_empty(),
            "[jobs] {job}: occurrences ran twice: {:?}\n{:?}",
            verdict.duplicates,
            log.runs()
        );
        assert!(
            verdict.lost.is_empty(),
            "[jobs] {job}: occurrences lost while nodes were up: {:?}\n{:?}",
            verdict.lost,
            log.runs()
        );
        assert!(
            verdict.token_regressions.is_empty(),
            "[jobs] {job}: tokens went back: {:?}\n{:?}",
            verdict.token_regressions,
            log.runs()
        );
    }
    report
}

/// Node `i` of the check, started: its own instance id, its clock `i * skew` ahead, a store
/// per job.
async fn start_node<S, F, Fut>(
    i: usize,
    new_store: &F,
    options: &JobsCheckOptions,
    log: &RunLog,
    prefix: &str,
    jobs: &[&str],
    schedule: &Schedule,
) -> Scheduler<S>
where
    S: LeaseStore,
    F: Fn(String) -> Fut,
    Fut: Future<Output = S>,
{
    let id = format!("node-{i}");
    let clock = options
        .clock
        .clone()
        .ahead(options.skew.saturating_mul(u32::try_from(i).unwrap_or(0)));
    let mut stores = HashMap::new();
    for job in jobs {
        stores.insert(
            (*job).to_owned(),
            new_store(format!("{prefix}-{job}")).await,
        );
    }
    let stores = Mutex::new(stores);
    let mut election = options.election.clone();
    election.instance_id.clone_from(&id);
    let mut builder = Scheduler::builder(move |job: &str| {
        stores
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(job)
            .expect("one store per job")
    })
    .options(election)
    .clock(clock.clone());
    for job in jobs {
        builder = builder.job(log.job(job, schedule.clone(), &id, clock.clone(), options.work));
    }
    let scheduler = builder.build().expect("[jobs] build a scheduler");
    log.watch(&scheduler);
    scheduler.start().await.expect("[jobs] start a scheduler");
    scheduler
}

/// The index of the node leading `job`, waiting up to `within` for one.
async fn leader_of<S: LeaseStore>(
    nodes: &[Option<Scheduler<S>>],
    job: &str,
    within: Duration,
) -> usize {
    let leader = || {
        nodes.iter().position(|n| {
            n.as_ref()
                .and_then(|s| s.election(job))
                .is_some_and(leader_election::LeaderElection::is_leader)
        })
    };
    wait_until(within, &format!("a leader of {job}"), || leader().is_some()).await;
    leader().unwrap_or_default()
}

/// Waits until `done` holds, looking every 10 ms, for at most `within`.
async fn wait_until(within: Duration, what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < within,
            "[jobs] waited {within:?} for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// [`each_occurrence_runs_once`] on a backend's [`Fixture`] (the generic suite's): its stores
/// and its election options, jobs every 300 ms, runs of 10 ms, the system clock with 100 ms
/// between nodes. Each backend's suite runs it.
///
/// # Panics
/// As [`each_occurrence_runs_once`].
pub async fn on_fixture<F: Fixture>(fixture: &F) -> JobsReport {
    let options = JobsCheckOptions::new(fixture.options(), Duration::from_millis(300));
    let report =
        each_occurrence_runs_once(|name| async move { fixture.store(&name).await }, &options).await;
    for (job, verdict) in &report.jobs {
        eprintln!(
            "[jobs] {job}: {} occurrences, {} duplicates, {} lost, {} given up as interrupted, started p50 {:?} / p99 {:?} after the due time",
            verdict.occurrences,
            verdict.duplicates.len(),
            verdict.lost.len(),
            verdict.given_up.len(),
            verdict.late_by_p50,
            verdict.late_by_p99
        );
    }
    report
}
