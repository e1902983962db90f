//! How a term ends: one function for every way ([`term_ended`]), and the guard that ends a
//! term left open when the election loop itself ends, a panic included ([`LoopGuard`]).

use std::sync::Arc;

use crate::election::{Shared, lock};
use crate::event::{ChangeReason, ElectionEvent};
use crate::metrics;
use crate::state::{ElectionState, Leadership, Role};
use crate::store::{LeaderInfo, LeaseStore};

/// Fails closed when the loop ends, however it ends (a panicking backend included): clears the
/// liveness flag and ends any term still open, so leader work never outlives the loop.
pub(crate) struct LoopGuard<S: LeaseStore>(pub(crate) Arc<Shared<S>>);

impl<S: LeaseStore> Drop for LoopGuard<S> {
    fn drop(&mut self) {
        self.0
            .alive
            .store(false, std::sync::atomic::Ordering::SeqCst);
        // Taken in a statement of its own: the lock must be released before `term_ended`
        // takes it again.
        let open = lock(&self.0.term).take();
        if let Some(term) = open {
            // Reached with a term still open only when the loop panicked: every other way out
            // of a term ends it first.
            term_ended(
                &self.0,
                &term,
                ChangeReason::LoopPanicked,
                Role::Stopped,
                None,
            );
        }
    }
}

/// Ends `term` locally, for every way a term can end, so that the side effects always happen
/// in this order: leader work is cancelled, the shared term cleared, the new `role` published
/// (keeping the term's token while releasing it), then metrics, the log line and the event.
pub(crate) fn term_ended<S: LeaseStore>(
    shared: &Shared<S>,
    term: &Leadership,
    reason: ChangeReason,
    role: Role,
    leader: Option<LeaderInfo>,
) {
    // A term stops being current at its deadline whenever the loop notices (see
    // `Leadership::is_current`): a late loop reports that moment, not its own.
    let at = tokio::time::Instant::now().min(term.deadline());
    term.end(reason);
    lock(&shared.term).take();
    let token = (role == Role::Releasing).then(|| term.token());
    shared.state.send_replace(ElectionState {
        role,
        token,
        leader,
    });
    let name = shared.store.election_name();
    metrics::set_leader(name, false);
    metrics::transition(name, reason);
    match reason {
        ChangeReason::Stopped
        | ChangeReason::Dropped
        | ChangeReason::Resigned
        | ChangeReason::PreferredLeader => {
            tracing::info!(token = %term.token(), reason = reason.as_str(), "stopped leading");
        }
        ChangeReason::LoopPanicked => {
            tracing::error!(token = %term.token(), reason = reason.as_str(), "the election loop panicked; stopped leading");
        }
        _ => tracing::warn!(token = %term.token(), reason = reason.as_str(), "lost leadership"),
    }
    // No receivers is fine; a full receiver drops its oldest events, never blocking here.
    let _ = shared.events.send(ElectionEvent::LeadershipChanged {
        is_leader: false,
        token: term.token(),
        reason,
        at,
    });
}
