//! What a contender tells the tester, in process or as JSON lines on a child's stdout.

use serde::{Deserialize, Serialize};

use crate::report::OpCounts;

/// One thing a contender saw, with its time in milliseconds since the run's epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Record {
    /// The contender became leader.
    Acquired {
        /// When.
        at_ms: f64,
        /// The token of the new term.
        token: u64,
    },
    /// The contender stopped leading.
    Lost {
        /// When.
        at_ms: f64,
        /// The token of the term that ended.
        token: u64,
        /// Why (`ChangeReason::as_str`).
        reason: String,
    },
    /// The backend confirmed an acquisition or a renewal sent at `at_ms`.
    Confirmed {
        /// When the confirmed request was sent.
        at_ms: f64,
        /// When its answer came back: a term begins after this (a lower bound of its start).
        returned_ms: f64,
        /// Whether it was an acquisition (else a renewal).
        acquired: bool,
    },
    /// A renewal was sent at `at_ms`: answered or not, it may extend the lease on the server
    /// from then.
    Renewing {
        /// When.
        at_ms: f64,
    },
    /// A release was sent: a term that was going on ended before this (an upper bound of its
    /// end).
    Releasing {
        /// When.
        at_ms: f64,
    },
    /// A backend operation failed.
    Error {
        /// When.
        at_ms: f64,
        /// The error, as displayed.
        message: String,
    },
    /// Backend operations so far, cumulative for this incarnation of the contender.
    Ops {
        /// The counts.
        ops: OpCounts,
    },
    /// The contender's election loop ended (after a graceful stop).
    Exited {
        /// When.
        at_ms: f64,
    },
    /// A scheduled job's run started on the contender (`--jobs`).
    JobRun {
        /// When, on the run's clock.
        at_ms: f64,
        /// The job.
        job: String,
        /// The occurrence's due time, in ms since the Unix epoch.
        due: u64,
        /// The run's fencing token.
        token: u64,
        /// 1, or 2 for a retry.
        attempt: u32,
        /// How long after the due time it started, by the contender's wall clock, in ms.
        late_ms: u64,
    },
    /// Occurrences of a scheduled job nobody ran while they were due, or a run found
    /// interrupted (`--jobs`).
    JobNotice {
        /// When.
        at_ms: f64,
        /// The job.
        job: String,
        /// `missed` or `interrupted`.
        what: String,
        /// How many occurrences.
        count: u64,
        /// The due time of an interrupted run (ms since the Unix epoch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<u64>,
    },
}
