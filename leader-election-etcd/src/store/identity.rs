//! What a store remembers of the cluster it talks to, to recognise that the cluster lost its
//! data (DESIGN rule 14): a member restarted on an empty data directory, or a cluster restored
//! from a snapshot without `--bump-revision`, starts its revisions again near 1, and forgets
//! every lease, while a holder may still trust its term until its next renewal.
//!
//! Two signs, from the headers of etcd's replies: the cluster id changed, or a linearizable
//! reply (a transaction or a read) carries a revision below one this store was answered with
//! before. Revisions never go backwards across linearizable replies of one cluster, whichever
//! member answers; the cluster id alone is not enough, since a single member started again on
//! an empty directory with the same settings gets the same id.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use etcd_client::ResponseHeader;
use tokio::time::Instant;

/// The cluster a store talks to, as its replies show it, and the highest fencing token and
/// longest term the store has seen.
#[derive(Debug, Default)]
pub(crate) struct Identity(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    cluster_id: Option<u64>,
    /// The highest revision of a linearizable reply.
    revision: i64,
    /// The highest fencing token seen: minted, or read from the election key.
    token: u64,
    /// The longest term a holder was seen with.
    longest: Duration,
    /// When the store last found that the cluster lost its data.
    lost_at: Option<Instant>,
}

impl Identity {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes in the header of a reply; `linearizable` for transactions and reads, whose
    /// revisions never go backwards. Answers whether the reply shows the cluster lost its data.
    pub(crate) fn observe(&self, header: Option<&ResponseHeader>, linearizable: bool) -> bool {
        header.is_some_and(|h| self.take_in(h.cluster_id(), h.revision(), linearizable))
    }

    fn take_in(&self, cluster_id: u64, revision: i64, linearizable: bool) -> bool {
        let mut state = self.lock();
        let changed = cluster_id != 0 && state.cluster_id.is_some_and(|id| id != cluster_id);
        let backwards = linearizable && revision > 0 && revision < state.revision;
        if cluster_id != 0 {
            state.cluster_id = Some(cluster_id);
        }
        if changed || backwards {
            tracing::warn!(
                cluster_id,
                revision,
                highest_revision = state.revision,
                highest_token = state.token,
                "the etcd cluster lost its data (its cluster id changed or its revisions went \
                 backwards): no lease is granted for the longest lease, and tokens stay above \
                 the highest seen"
            );
            state.lost_at = Some(Instant::now());
            state.revision = revision;
            return true;
        }
        if linearizable {
            state.revision = state.revision.max(revision);
        }
        false
    }

    /// Remembers a token seen in the election key, or minted.
    pub(crate) fn saw_token(&self, token: u64) {
        let mut state = self.lock();
        state.token = state.token.max(token);
    }

    /// Remembers a holder's term.
    pub(crate) fn saw_ttl(&self, ttl: Duration) {
        let mut state = self.lock();
        state.longest = state.longest.max(ttl);
    }

    /// The id of the cluster this store was last answered by, if any reply said.
    pub(crate) fn cluster_id(&self) -> Option<u64> {
        self.lock().cluster_id
    }

    /// The highest token seen.
    pub(crate) fn highest_token(&self) -> u64 {
        self.lock().token
    }

    /// How long the lease is still withheld after a data loss: the longest term seen (at
    /// least `ttl`, the caller's) from when the loss was found. `None` when it is not.
    pub(crate) fn withheld(&self, ttl: Duration) -> Option<Duration> {
        let state = self.lock();
        let until = state.lost_at? + state.longest.max(ttl);
        Some(until.saturating_duration_since(Instant::now())).filter(|wait| !wait.is_zero())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn revisions_going_backwards_withhold_for_the_longest_term() {
        let identity = Identity::default();
        identity.saw_ttl(Duration::from_secs(5));
        assert!(!identity.take_in(7, 10, true));
        assert!(!identity.take_in(7, 12, true));
        // A lease reply from a member behind the others proves nothing.
        assert!(!identity.take_in(7, 3, false));
        assert_eq!(identity.withheld(Duration::from_secs(2)), None);
        assert!(identity.take_in(7, 2, true));
        assert_eq!(
            identity.withheld(Duration::from_secs(2)),
            Some(Duration::from_secs(5))
        );
        // Found once: the new cluster's revisions are the reference from now on.
        assert!(!identity.take_in(7, 3, true));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(identity.withheld(Duration::from_secs(2)), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_cluster_id_withholds_even_with_higher_revisions() {
        let identity = Identity::default();
        assert!(!identity.take_in(7, 10, true));
        assert!(identity.take_in(8, 50, false));
        assert_eq!(
            identity.withheld(Duration::from_secs(2)),
            Some(Duration::from_secs(2))
        );
    }
}
