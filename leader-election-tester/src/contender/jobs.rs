//! `--jobs`: a scheduler on an in-process contender, its jobs each on an election of its own
//! on the run's backend, every run reported as a [`Record::JobRun`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use leader_election::BoxLeaseStore;
use leader_election::testing::{FaultControl, FaultyStore};
use leader_election_jobs::{CatchUp, Job, JobEvent, Schedule, Scheduler, WallClock, millis};
use tokio::sync::broadcast;

use super::{Clock, Timing};
use crate::backends::BackendSpec;
use crate::record::Record;

/// Where a contender's job records go: the run's sink in this process, stdout in a child.
pub(crate) type Emit = Arc<dyn Fn(Record) + Send + Sync>;

/// What `--jobs` and `--every` ask for; sent to child processes as JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct JobsSpec {
    /// How many jobs.
    pub(crate) count: usize,
    /// Every how long each is due.
    pub(crate) every: Duration,
}

impl JobsSpec {
    /// The name of job `i`.
    pub(crate) fn name(i: usize) -> String {
        format!("job-{i}")
    }
}

/// One contender's jobs: their stores (opened once, like the contender's own), and the
/// scheduler of the current incarnation.
#[derive(Debug)]
pub(crate) struct Jobs {
    spec: JobsSpec,
    stores: HashMap<String, FaultyStore<BoxLeaseStore>>,
    scheduler: Option<Scheduler<FaultyStore<BoxLeaseStore>>>,
}

impl Jobs {
    /// Opens the stores of `spec`'s jobs on `backend` (already through the contender's
    /// proxies, if any): each job's election is the run's key followed by `-<job>`.
    pub(crate) fn open(
        spec: JobsSpec,
        backend: &BackendSpec,
        timing: &Timing,
    ) -> Result<Self, String> {
        let options = timing.options("jobs");
        let mut stores = HashMap::new();
        for i in 0..spec.count {
            let job = JobsSpec::name(i);
            let election = format!("{}-{job}", backend.key);
            let on = backend.backend.for_election(backend, &election);
            stores.insert(job, FaultyStore::new(on.backend.open(&on, &options)?));
        }
        Ok(Self {
            spec,
            stores,
            scheduler: None,
        })
    }

    /// The fault controls of the jobs' stores (for a backend reached without a proxy).
    pub(crate) fn controls(&self) -> Vec<FaultControl> {
        self.stores.values().map(FaultyStore::control).collect()
    }

    /// Starts the scheduler of a contender's incarnation, as `id`; every run and notice goes
    /// to `emit`.
    pub(crate) async fn start(
        &mut self,
        id: &str,
        timing: &Timing,
        clock: Clock,
        emit: Emit,
    ) -> Result<(), String> {
        if self.scheduler.is_none() {
            let stores = Mutex::new(self.stores.clone());
            let mut builder = Scheduler::builder(move |job: &str| {
                stores
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(job)
                    .expect("a store per job")
            })
            .options(timing.options(id));
            for i in 0..self.spec.count {
                let emit = Arc::clone(&emit);
                let wall = WallClock::system();
                let job = Job::new(
                    JobsSpec::name(i),
                    Schedule::every(self.spec.every),
                    move |ctx| {
                        let due = millis(ctx.due);
                        emit(Record::JobRun {
                            at_ms: clock.now_ms(),
                            job: ctx.job.to_string(),
                            due,
                            token: ctx.token().get(),
                            attempt: ctx.attempt,
                            late_ms: millis(wall.now()).saturating_sub(due),
                        });
                        async { Ok::<(), std::convert::Infallible>(()) }
                    },
                )
                // The tester checks that no occurrence is lost while a contender is up:
                // occurrences due while the backend was out of reach run late, each.
                .catch_up(CatchUp::Each);
                builder = builder.job(job);
            }
            let scheduler = builder.build().map_err(|e| format!("jobs: {e}"))?;
            forward_notices(scheduler.subscribe(), clock, emit);
            self.scheduler = Some(scheduler);
        }
        if let Some(scheduler) = &self.scheduler {
            scheduler.start().await.map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Stops gracefully.
    pub(crate) async fn stop(&mut self) {
        if let Some(scheduler) = &self.scheduler {
            let _ = scheduler.stop().await;
        }
    }

    /// Dies without releasing.
    pub(crate) fn crash(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.crash();
        }
    }

    /// Forgets the scheduler, for the next incarnation.
    pub(crate) fn reset(&mut self) {
        self.scheduler = None;
    }
}

/// Forwards missed and interrupted occurrences as [`Record::JobNotice`]s.
fn forward_notices(mut events: broadcast::Receiver<JobEvent>, clock: Clock, emit: Emit) {
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let (job, what, count, due) = match &event {
                JobEvent::Missed { job, count, .. } => (job.to_string(), "missed", *count, None),
                JobEvent::Interrupted { job, due, .. } => {
                    (job.to_string(), "interrupted", 1, Some(millis(*due)))
                }
                _ => continue,
            };
            emit(Record::JobNotice {
                at_ms: clock.now_ms(),
                job,
                what: what.to_owned(),
                count,
                due,
            });
        }
    });
}
