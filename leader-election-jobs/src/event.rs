//! [`JobEvent`]: what the scheduler tells about each job's occurrences.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use leader_election::FencingToken;

use crate::job::{CatchUp, Outcome};

/// Something that happened to a job's occurrences, on this node, from
/// [`Scheduler::subscribe`](crate::Scheduler::subscribe).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobEvent {
    /// This node claimed the occurrence due at `due` and started its run.
    Started {
        /// The job.
        job: Arc<str>,
        /// When the occurrence was due.
        due: SystemTime,
        /// The run's fencing token.
        token: FencingToken,
        /// 1, or 2 for a retry.
        attempt: u32,
        /// How long after the due time it started, by this node's clock.
        late_by: Duration,
    },
    /// A run on this node ended.
    Finished {
        /// The job.
        job: Arc<str>,
        /// When the occurrence was due.
        due: SystemTime,
        /// The run's fencing token.
        token: FencingToken,
        /// 1, or 2 for a retry.
        attempt: u32,
        /// How long it ran.
        took: Duration,
        /// How it ended.
        outcome: Outcome,
    },
    /// This node found the occurrence due at `due` interrupted (started in an earlier term
    /// and never finished) and retried it or gave it up, as the job's
    /// [`OnInterrupted`](crate::OnInterrupted) says.
    Interrupted {
        /// The job.
        job: Arc<str>,
        /// When the occurrence was due.
        due: SystemTime,
        /// The token of the interrupted run.
        token: FencingToken,
        /// The interrupted run's attempt.
        attempt: u32,
        /// Whether it is run again now.
        retried: bool,
    },
    /// Occurrences nobody ran while they were due (due from `first` to `last`, `count` of
    /// them), handled as the job's [`CatchUp`] says.
    Missed {
        /// The job.
        job: Arc<str>,
        /// The first missed due time.
        first: SystemTime,
        /// The last missed due time.
        last: SystemTime,
        /// How many (counted up to a million).
        count: u64,
        /// What was done with them.
        catch_up: CatchUp,
    },
    /// The job's record on the backend cannot be used (it holds data this scheduler did not
    /// write): nothing runs until an operator removes it.
    RecordUnusable {
        /// The job.
        job: Arc<str>,
        /// Why.
        reason: String,
    },
}

impl JobEvent {
    /// The job the event is about.
    #[must_use]
    pub fn job(&self) -> &str {
        match self {
            Self::Started { job, .. }
            | Self::Finished { job, .. }
            | Self::Interrupted { job, .. }
            | Self::Missed { job, .. }
            | Self::RecordUnusable { job, .. } => job,
        }
    }
}
