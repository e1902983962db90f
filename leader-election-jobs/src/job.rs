//! [`Job`]: a named piece of work, its [`Schedule`] and its policies; [`JobContext`], what a
//! run gets; [`Outcome`], how it ended.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use leader_election::Leadership;
use leader_election::{BoxError, FencingToken};
use serde::{Deserialize, Serialize};

use crate::schedule::Schedule;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type RunFn = Arc<dyn Fn(JobContext) -> BoxFuture<Result<(), BoxError>> + Send + Sync>;

/// What a scheduler does with an occurrence whose run was interrupted: its record says it
/// started in an earlier term and never finished (the node crashed, or lost its lease, during
/// the run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum OnInterrupted {
    /// Give the occurrence up (at most once). The default.
    #[default]
    Skip,
    /// Run it once more, as attempt 2; an interrupted retry is given up. The occurrence may
    /// then have run twice, if the first run finished but its node lost the lease before it
    /// could record so: its fencing token lets downstream writes refuse the older run.
    RetryOnce,
}

/// What a scheduler does with occurrences that nobody ran while they were due: due more than
/// [`late_within`](Job::late_within) ago when a node first could run them (every node, or the
/// backend, was down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CatchUp {
    /// Give them all up and wait for the next occurrence.
    Skip,
    /// Run the latest of them, once, and give up the others. The default.
    #[default]
    Once,
    /// Run each of them, oldest first, one after the other.
    Each,
}

/// How a run, or an occurrence, ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Outcome {
    /// The job returned `Ok`.
    Succeeded,
    /// The job returned an error (its text).
    Failed {
        /// The error's text.
        error: String,
    },
    /// The job ran past [`lock_at_most_for`](Job::lock_at_most_for) and was cancelled.
    TimedOut,
    /// The node's term ended during the run, which was cancelled.
    LeadershipLost,
    /// The run was found interrupted by a later term and given up
    /// ([`OnInterrupted::Skip`]).
    Interrupted,
    /// Nobody ran the occurrence while it was due, and [`CatchUp`] gave it up.
    Missed,
}

impl Outcome {
    /// A short lower-case name, for logs and metrics labels.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed { .. } => "failed",
            Self::TimedOut => "timed_out",
            Self::LeadershipLost => "leadership_lost",
            Self::Interrupted => "interrupted",
            Self::Missed => "missed",
        }
    }
}

/// What one run of a job gets.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct JobContext {
    /// The job's name.
    pub job: Arc<str>,
    /// When the occurrence was due (its name: the same on every node).
    pub due: SystemTime,
    /// 1 for the first run of the occurrence, 2 for a retry ([`OnInterrupted::RetryOnce`]).
    pub attempt: u32,
    /// The term this run belongs to: its [fencing token](Leadership::token) goes with every
    /// downstream write, and [`Leadership::is_current`] says whether it still leads (a
    /// synchronous step should check it). The run is cancelled when the term ends.
    pub term: Leadership,
}

impl JobContext {
    /// The fencing token of the run's term, strictly greater than that of every earlier run
    /// of this job.
    #[must_use]
    pub fn token(&self) -> FencingToken {
        self.term.token()
    }
}

/// A named job: what to run, when, and the policies of its runs.
///
/// ```
/// use std::time::Duration;
/// use leader_election_jobs::{Job, Schedule};
///
/// let cleanup = Job::new("cleanup", Schedule::every(Duration::from_secs(300)), |ctx| async move {
///     println!("cleanup due at {:?}, fenced with {}", ctx.due, ctx.token());
///     Ok::<(), std::io::Error>(())
/// })
/// .lock_at_most_for(Duration::from_secs(60));
/// # let _ = cleanup;
/// ```
#[derive(Clone)]
pub struct Job {
    pub(crate) name: Arc<str>,
    pub(crate) schedule: Schedule,
    pub(crate) run: RunFn,
    pub(crate) at_most: Option<Duration>,
    pub(crate) at_least: Duration,
    pub(crate) late_within: Option<Duration>,
    pub(crate) on_interrupted: OnInterrupted,
    pub(crate) catch_up: CatchUp,
}

impl Job {
    /// A job named `name` (its election is named after it: see
    /// [`Scheduler::builder`](crate::Scheduler::builder)), due on `schedule`, running `run`.
    pub fn new<F, Fut, E>(name: impl Into<String>, schedule: Schedule, run: F) -> Self
    where
        F: Fn(JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let run: RunFn = Arc::new(move |ctx| {
            let fut = run(ctx);
            Box::pin(async move { fut.await.map_err(Into::into) })
        });
        Self {
            name: Arc::from(name.into()),
            schedule,
            run,
            at_most: None,
            at_least: Duration::ZERO,
            late_within: None,
            on_interrupted: OnInterrupted::default(),
            catch_up: CatchUp::default(),
        }
    }

    /// The longest a run may take: past it, the run is cancelled ([`Outcome::TimedOut`]).
    /// While it runs, the node keeps the job's lease by renewal, and the run is cancelled at
    /// once if the lease is lost. Default: no bound but the term.
    #[must_use]
    pub fn lock_at_most_for(mut self, bound: Duration) -> Self {
        self.at_most = Some(bound);
        self
    }

    /// The shortest time the node keeps the job after a run started, even if the run was
    /// shorter: a graceful [`stop`](crate::Scheduler::stop) waits for it before giving the
    /// job's lease up. Default: zero.
    #[must_use]
    pub fn lock_at_least_for(mut self, hold: Duration) -> Self {
        self.at_least = hold;
        self
    }

    /// How late an occurrence may still start: one due longer ago when a node first could run
    /// it is *missed*, and [`catch_up`](Self::catch_up) decides. Default: twice the election's
    /// lease, so that an occurrence due while leadership moved (a crash, a handover) runs late
    /// rather than being missed.
    #[must_use]
    pub fn late_within(mut self, grace: Duration) -> Self {
        self.late_within = Some(grace);
        self
    }

    /// What to do with a run found interrupted. Default: [`OnInterrupted::Skip`].
    #[must_use]
    pub fn on_interrupted(mut self, policy: OnInterrupted) -> Self {
        self.on_interrupted = policy;
        self
    }

    /// What to do with missed occurrences. Default: [`CatchUp::Once`].
    #[must_use]
    pub fn catch_up(mut self, policy: CatchUp) -> Self {
        self.catch_up = policy;
        self
    }

    /// The job's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The job's schedule.
    #[must_use]
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("schedule", &self.schedule)
            .field("lock_at_most_for", &self.at_most)
            .field("lock_at_least_for", &self.at_least)
            .field("late_within", &self.late_within)
            .field("on_interrupted", &self.on_interrupted)
            .field("catch_up", &self.catch_up)
            .finish_non_exhaustive()
    }
}
