//! Metrics through the `metrics` facade (feature `metrics`), labelled by job:
//!
//! - `leader_election_job_runs_total{job, outcome}`: counter, runs ended on this node, by
//!   [`Outcome::as_str`](crate::Outcome::as_str);
//! - `leader_election_job_run_seconds{job}`: histogram, how long runs took;
//! - `leader_election_job_start_delay_seconds{job}`: histogram, how long after its due time a
//!   run started (by this node's clock);
//! - `leader_election_job_missed_total{job}`: counter, occurrences nobody ran while due;
//! - `leader_election_job_next_due_timestamp_seconds{job}`: gauge, the next due time (Unix
//!   seconds) while this node leads the job.

use std::time::Duration;

use crate::event::JobEvent;
use crate::job::Outcome;
use crate::schedule::Millis;

#[cfg(feature = "metrics")]
pub(crate) fn event(event: &JobEvent) {
    if let JobEvent::Missed { job, count, .. } = event {
        metrics::counter!("leader_election_job_missed_total", "job" => job.to_string())
            .increment(*count);
    }
}

#[cfg(feature = "metrics")]
pub(crate) fn started(job: &str, late_by: Duration) {
    metrics::histogram!("leader_election_job_start_delay_seconds", "job" => job.to_owned())
        .record(late_by.as_secs_f64());
}

#[cfg(feature = "metrics")]
pub(crate) fn finished(job: &str, outcome: &Outcome, took: Duration) {
    metrics::counter!(
        "leader_election_job_runs_total",
        "job" => job.to_owned(),
        "outcome" => outcome.as_str()
    )
    .increment(1);
    metrics::histogram!("leader_election_job_run_seconds", "job" => job.to_owned())
        .record(took.as_secs_f64());
}

#[cfg(feature = "metrics")]
#[allow(clippy::cast_precision_loss)] // Unix seconds fit an f64's 52 bits for ages.
pub(crate) fn next_due(job: &str, due: Millis) {
    metrics::gauge!("leader_election_job_next_due_timestamp_seconds", "job" => job.to_owned())
        .set(due as f64 / 1000.0);
}

#[cfg(not(feature = "metrics"))]
pub(crate) fn event(_: &JobEvent) {}

#[cfg(not(feature = "metrics"))]
pub(crate) fn started(_: &str, _: Duration) {}

#[cfg(not(feature = "metrics"))]
pub(crate) fn finished(_: &str, _: &Outcome, _: Duration) {}

#[cfg(not(feature = "metrics"))]
pub(crate) fn next_due(_: &str, _: Millis) {}
