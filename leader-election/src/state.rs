//! The published state of an election and the current leadership term.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use crate::event::ChangeReason;
use crate::store::LeaderInfo;
use crate::token::FencingToken;

/// What this contender is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The election loop is not running.
    Stopped,
    /// Running, not leading: waiting for the lease to become free.
    Follower,
    /// Leading: holds the lease and its deadline has not passed.
    Leader,
    /// Stopping: leader work has been cancelled and the lease is being released.
    Releasing,
}

impl Role {
    /// A short lower-case name, used in logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "stopped",
            Self::Follower => "follower",
            Self::Leader => "leader",
            Self::Releasing => "releasing",
        }
    }
}

/// The latest state of one contender, published on
/// [`LeaderElection::watch`](crate::LeaderElection::watch).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElectionState {
    /// What this contender is doing.
    pub role: Role,
    /// The token of this contender's term while it leads (and while it releases that term).
    pub token: Option<FencingToken>,
    /// The leader as last observed in the backend (this contender itself while it leads).
    pub leader: Option<LeaderInfo>,
}

impl ElectionState {
    pub(crate) const fn stopped() -> Self {
        Self {
            role: Role::Stopped,
            token: None,
            leader: None,
        }
    }

    /// Whether this contender leads.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
}

/// One term of leadership: its fencing token, when it began, and a cancellation signal that
/// fires the moment it ends.
///
/// Hand it to leader-only work: check [`is_current`](Self::is_current) or await
/// [`lost`](Self::lost) to stop promptly, and send [`token`](Self::token) with every write to a
/// downstream store so stale writes can be refused.
#[derive(Clone, Debug)]
pub struct Leadership {
    inner: Arc<Term>,
}

#[derive(Debug)]
struct Term {
    token: FencingToken,
    acquired_at: SystemTime,
    acquired_instant: Instant,
    cancel: CancellationToken,
    /// The local deadline, moved forward by every confirmed renewal.
    deadline: Mutex<Instant>,
    /// Why the term ended, once it has.
    end_reason: std::sync::OnceLock<ChangeReason>,
}

impl Leadership {
    pub(crate) fn new(token: FencingToken, acquired_instant: Instant, deadline: Instant) -> Self {
        Self {
            inner: Arc::new(Term {
                token,
                acquired_at: SystemTime::now(),
                acquired_instant,
                cancel: CancellationToken::new(),
                deadline: Mutex::new(deadline),
                end_reason: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The fencing token of this term.
    #[must_use]
    pub fn token(&self) -> FencingToken {
        self.inner.token
    }

    /// Wall-clock time this term began, for display only.
    #[must_use]
    pub fn acquired_at(&self) -> SystemTime {
        self.inner.acquired_at
    }

    /// Monotonic time this term began (tokio's clock).
    #[must_use]
    pub fn acquired_instant(&self) -> Instant {
        self.inner.acquired_instant
    }

    /// The local deadline of this term: without a further confirmed renewal, it ends then.
    #[must_use]
    pub fn deadline(&self) -> Instant {
        *self
            .inner
            .deadline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this term is still going on: not ended, and its deadline not passed (checked on
    /// the monotonic clock here, so it turns false on time even if the election loop is late).
    #[must_use]
    pub fn is_current(&self) -> bool {
        !self.inner.cancel.is_cancelled() && Instant::now() < self.deadline()
    }

    /// Completes when this term ends.
    pub fn lost(&self) -> WaitForCancellationFuture<'_> {
        self.inner.cancel.cancelled()
    }

    /// A cancellation token that fires when this term ends, to pass to code built on
    /// `tokio-util`. Cancelling it does not end the term.
    #[must_use]
    pub fn cancellation_token(&self) -> CancellationToken {
        self.inner.cancel.child_token()
    }

    pub(crate) fn extend(&self, deadline: Instant) {
        *self
            .inner
            .deadline
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = deadline;
    }

    /// Why this term ended, once the election loop has ended it (`None` while it goes on,
    /// and in the moment between its deadline passing and the loop noticing).
    #[must_use]
    pub fn end_reason(&self) -> Option<ChangeReason> {
        self.inner.end_reason.get().copied()
    }

    /// Ends the term for `reason`: the reason is set before leader work is cancelled, so that
    /// work woken by the cancellation can read it.
    pub(crate) fn end(&self, reason: ChangeReason) {
        let _ = self.inner.end_reason.set(reason);
        self.inner.cancel.cancel();
    }
}
