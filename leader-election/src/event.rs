//! Events published by an election.

use crate::error::Error;
use std::time::Duration;

use crate::store::{LeaderInfo, WithholdReason};
use crate::token::FencingToken;

/// Why leadership began or ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeReason {
    /// The lease was acquired.
    Acquired,
    /// The backend said the lease is no longer ours (expired, taken over, broken, deleted).
    LeaseLost,
    /// The local deadline passed without a confirmed renewal.
    DeadlinePassed,
    /// Renewal failed `max_retry_attempts` times in a row.
    RenewFailed,
    /// [`stop`](crate::LeaderElection::stop) was called.
    Stopped,
    /// The last handle to the election was dropped; the lease was left to expire.
    Dropped,
    /// [`resign`](crate::LeaderElection::resign) was called: the lease was released and this
    /// contender stays out of the election for a while.
    Resigned,
    /// A waiting contender with a higher priority was announced: the leader handed over
    /// gracefully, as with `resign` (see [preferred leaders](crate::priority)).
    PreferredLeader,
    /// The election loop panicked (a bug, most likely in the backend); the term ended at once
    /// and the lease was left to expire.
    LoopPanicked,
}

impl ChangeReason {
    /// A short lower-case name, used in logs and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Acquired => "acquired",
            Self::LeaseLost => "lease_lost",
            Self::DeadlinePassed => "deadline_passed",
            Self::RenewFailed => "renew_failed",
            Self::Stopped => "stopped",
            Self::Dropped => "dropped",
            Self::LoopPanicked => "loop_panicked",
            Self::Resigned => "resigned",
            Self::PreferredLeader => "preferred_leader",
        }
    }
}

/// Something that happened in an election, received from
/// [`LeaderElection::subscribe`](crate::LeaderElection::subscribe).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ElectionEvent {
    /// This contender became leader or stopped being leader. Strictly alternating: never two
    /// `is_leader: true` without a `false` in between.
    LeadershipChanged {
        /// Whether this contender leads now.
        is_leader: bool,
        /// The token of the term that began or ended.
        token: FencingToken,
        /// Why.
        reason: ChangeReason,
        /// When, on tokio's clock: for a term that began, when the acquisition's answer
        /// arrived; for one that ended, when it ended locally (before any release is sent; at
        /// its deadline at the latest, however late the election loop noticed it). Taken
        /// by the election itself, so that terms of several contenders compare exactly however
        /// late their events are received.
        at: tokio::time::Instant,
    },
    /// The leader seen in the backend changed (another contender took over, nobody leads, or
    /// the leader published other [metadata](crate::LeaderInfo::metadata)).
    LeaderObserved {
        /// The leader now, if any.
        leader: Option<LeaderInfo>,
    },
    /// The lease is free but the backend withholds it for a while (after a restart, a
    /// failover, or someone touching the lease record): nobody leads until then. Sent when a
    /// wait begins or its reason changes, not on every attempt.
    LeaseWithheld {
        /// Why the backend withholds the lease.
        reason: WithholdReason,
        /// How long it will withhold it, at most, from when the event was sent.
        wait: Duration,
    },
    /// A backend operation failed. The election keeps going: it retries, and steps down when
    /// its deadline passes.
    Error(Error),
}
