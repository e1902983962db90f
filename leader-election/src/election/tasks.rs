//! Work done as leader: a task run only while leading, work started per term, and what
//! they answer.

use crate::event::ChangeReason;
use crate::state::{Leadership, Role};
use crate::store::LeaseStore;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::watch;

use super::LeaderElection;

impl<S: LeaseStore> LeaderElection<S> {
    /// Runs `task` only if this contender leads, handing it the current term.
    ///
    /// The task runs on the caller's task. If leadership ends while it runs (the term's
    /// cancellation fires, or its deadline passes without a renewal, even if the election loop
    /// is late to notice), the task is dropped at its next `.await` point: leader work never
    /// outlives the leadership by more than that. [`stop`](Self::stop) waits for running tasks
    /// before releasing the lease.
    ///
    /// # Cancel safety
    /// Dropping the future drops `task` at its current `.await` point, as when leadership is
    /// lost, and unregisters it, so that [`stop`](Self::stop) no longer waits for it. The
    /// election itself is not affected.
    pub async fn run_task_if_leader<F, Fut, T>(&self, task: F) -> TaskOutcome<T>
    where
        F: FnOnce(Leadership) -> Fut,
        Fut: Future<Output = T>,
    {
        let Some(term) = self.leadership() else {
            return TaskOutcome::NotLeader;
        };
        let _work = WorkGuard::enter(&self.shared.work);
        // The term may have ended between the check and the registration; stop() waits only
        // for registered work, so check again now that this task is counted.
        if !term.is_current() {
            return TaskOutcome::NotLeader;
        }
        let work = task(term.clone());
        tokio::pin!(work);
        loop {
            // The term's own deadline too, not only the loop's signal: leader work stops on
            // time even if the election loop is late.
            let deadline = term.deadline();
            tokio::select! {
                biased;
                () = term.lost() => return TaskOutcome::LeadershipLost(None),
                () = tokio::time::sleep_until(deadline) => {
                    if !term.is_current() {
                        return TaskOutcome::LeadershipLost(None);
                    }
                    // Renewed meanwhile: wait for the new deadline.
                }
                value = &mut work => {
                    return if term.is_current() {
                        TaskOutcome::Completed(value)
                    } else {
                        TaskOutcome::LeadershipLost(Some(value))
                    };
                }
            }
        }
    }

    /// Runs leader work for every term this contender wins, until the election stops: `work`
    /// is called with the term when it begins, and the future it returns runs until the term
    /// ends (it is then dropped at its next `.await` point, as in
    /// [`run_task_if_leader`](Self::run_task_if_leader)) or until it completes; the next term
    /// calls `work` again. This is the long-running counterpart of `run_task_if_leader`, like
    /// client-go's `OnStartedLeading`.
    ///
    /// Returns, once the election has stopped (after [`stop`](Self::stop), or at once if it is
    /// not running), why the last term ended, or `None` if this contender never led meanwhile.
    /// [`stop`](Self::stop) waits for the running work, as for other leader tasks.
    ///
    /// ```no_run
    /// # use leader_election::{LeaderElection, LeaderElectionOptions, MemoryLeaseStore};
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let election = LeaderElection::new(MemoryLeaseStore::new(), LeaderElectionOptions::default())?;
    /// election.start().await?;
    /// let worker = election.clone();
    /// let last_end = tokio::spawn(async move {
    ///     worker
    ///         .run_while_leader(|term| async move {
    ///             loop {
    ///                 // One batch of leader work, fenced with term.token().
    ///                 tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    ///             }
    ///         })
    ///         .await
    /// });
    /// // ... later:
    /// election.stop().await?;
    /// println!("the last term ended because: {:?}", last_end.await?);
    /// # Ok(()) }
    /// ```
    ///
    /// # Cancel safety
    /// Dropping the future drops the running work, as when a term ends; the election itself
    /// is not affected.
    pub async fn run_while_leader<F, Fut>(&self, mut work: F) -> Option<ChangeReason>
    where
        F: FnMut(Leadership) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut state = self.watch();
        let mut last_end = None;
        loop {
            let role = state.borrow_and_update().role;
            match role {
                Role::Leader => {
                    if let Some(term) = self.leadership() {
                        let _ = self.run_task_if_leader(&mut work).await;
                        // Work that finished early is done for this term: wait for its end.
                        term.lost().await;
                        last_end = term.end_reason();
                        continue;
                    }
                }
                Role::Stopped
                    if !self.shared.expected.load(Ordering::SeqCst)
                        || !self.shared.alive.load(Ordering::SeqCst) =>
                {
                    return last_end;
                }
                _ => {}
            }
            if state.changed().await.is_err() {
                return last_end;
            }
        }
    }

    /// Runs the synchronous `task` on tokio's blocking thread pool, only if this contender
    /// leads. A synchronous task cannot be interrupted: it should check
    /// [`Leadership::is_current`] between steps. [`stop`](Self::stop) waits for it (up to
    /// `shutdown_timeout`) before releasing the lease.
    ///
    /// # Panics
    /// Resumes the panic of `task`, if it panicked.
    pub async fn run_blocking_task_if_leader<F, T>(&self, task: F) -> TaskOutcome<T>
    where
        F: FnOnce(Leadership) -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(term) = self.leadership() else {
            return TaskOutcome::NotLeader;
        };
        let work = WorkGuard::enter(&self.shared.work);
        if !term.is_current() {
            return TaskOutcome::NotLeader;
        }
        let handle_term = term.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _work = work;
            task(handle_term)
        })
        .await;
        match joined {
            Ok(value) if term.is_current() => TaskOutcome::Completed(value),
            Ok(value) => TaskOutcome::LeadershipLost(Some(value)),
            Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
            Err(_) => TaskOutcome::LeadershipLost(None),
        }
    }
}

/// What became of a task given to [`LeaderElection::run_task_if_leader`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum TaskOutcome<T> {
    /// The task ran to completion while this contender led throughout.
    Completed(T),
    /// This contender did not lead; the task did not run.
    NotLeader,
    /// Leadership ended while the task ran. Holds the task's result if it finished anyway
    /// (a blocking task, or one that completed as leadership ended); `None` if it was cut off.
    LeadershipLost(Option<T>),
}

impl<T> TaskOutcome<T> {
    /// Whether the task completed while leading.
    #[must_use]
    pub fn is_completed(&self) -> bool {
        matches!(self, Self::Completed(_))
    }

    /// The result of a task that completed while leading.
    #[must_use]
    pub fn completed(self) -> Option<T> {
        match self {
            Self::Completed(value) => Some(value),
            _ => None,
        }
    }
}

/// Counts one running leader task while alive.
pub(crate) struct WorkGuard {
    work: Arc<watch::Sender<usize>>,
}

impl WorkGuard {
    fn enter(work: &Arc<watch::Sender<usize>>) -> Self {
        work.send_modify(|n| *n += 1);
        Self {
            work: Arc::clone(work),
        }
    }
}

impl Drop for WorkGuard {
    fn drop(&mut self) {
        self.work.send_modify(|n| *n = n.saturating_sub(1));
    }
}
