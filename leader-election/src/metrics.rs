//! Metrics through the `metrics` facade (feature `metrics`); without the feature every function
//! here compiles to nothing.
//!
//! | name | kind | labels | meaning |
//! | --- | --- | --- | --- |
//! | `leader_election_is_leader` | gauge | `election` | 1 while this contender leads, else 0 |
//! | `leader_election_transitions_total` | counter | `election`, `transition` (`acquired`, `lost`, `released`), `reason` | leadership changes, with the [`ChangeReason`] name |
//! | `leader_election_operation_duration_seconds` | histogram | `election`, `operation` (`acquire`, `renew`, `release`, `current_leader`, `connect`, `announce_candidate`, `strongest_candidate`) | latency of every backend call, failed ones included |
//! | `leader_election_operation_errors_total` | counter | `election`, `operation` | failed backend calls (timeouts included) |
//! | `leader_election_renew_failures_total` | counter | `election` | failed renewals by the leader |
//! | `leader_election_leaderless_seconds` | histogram | `election` | as seen by a follower: from the moment the lease became free (release notice or expected expiry) to the moment a leader was seen again |

#![cfg_attr(not(feature = "metrics"), allow(unused_variables))]

use std::time::Duration;

use crate::error::Operation;
use crate::event::ChangeReason;

pub(crate) fn set_leader(election: &str, is_leader: bool) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("leader_election_is_leader", "election" => election.to_owned())
        .set(if is_leader { 1.0 } else { 0.0 });
}

pub(crate) fn transition(election: &str, reason: ChangeReason) {
    #[cfg(feature = "metrics")]
    {
        let transition = match reason {
            ChangeReason::Acquired => "acquired",
            ChangeReason::Stopped | ChangeReason::Resigned | ChangeReason::PreferredLeader => {
                "released"
            }
            _ => "lost",
        };
        metrics::counter!(
            "leader_election_transitions_total",
            "election" => election.to_owned(),
            "transition" => transition,
            "reason" => reason.as_str(),
        )
        .increment(1);
    }
}

pub(crate) fn operation(election: &str, operation: Operation, elapsed: Duration, ok: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::histogram!(
            "leader_election_operation_duration_seconds",
            "election" => election.to_owned(),
            "operation" => operation.as_str(),
        )
        .record(elapsed.as_secs_f64());
        if !ok {
            metrics::counter!(
                "leader_election_operation_errors_total",
                "election" => election.to_owned(),
                "operation" => operation.as_str(),
            )
            .increment(1);
            if operation == Operation::Renew {
                metrics::counter!(
                    "leader_election_renew_failures_total",
                    "election" => election.to_owned(),
                )
                .increment(1);
            }
        }
    }
}

pub(crate) fn leaderless(election: &str, duration: Duration) {
    #[cfg(feature = "metrics")]
    metrics::histogram!("leader_election_leaderless_seconds", "election" => election.to_owned())
        .record(duration.as_secs_f64());
}
