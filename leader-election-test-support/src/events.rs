//! Counting what an election reports (the terms themselves are recorded by
//! `leader_election::testing::TermRecorder`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use leader_election::{ElectionEvent, LeaderElection, LeaseStore};

/// How many [`ElectionEvent::Error`]s an election reported since [`attach`](Self::attach).
#[derive(Clone, Debug, Default)]
pub struct ErrorCount(Arc<AtomicUsize>);

impl ErrorCount {
    /// Counts `election`'s errors from now on.
    pub fn attach<S: LeaseStore>(election: &LeaderElection<S>) -> Self {
        let count = Self::default();
        let errors = Arc::clone(&count.0);
        let mut events = election.subscribe();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok(ElectionEvent::Error(_)) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => break,
                }
            }
        });
        count
    }

    /// The errors counted so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}
