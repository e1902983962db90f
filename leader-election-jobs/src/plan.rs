//! What a node leading a job does next, from the job's record and its clock: a pure function,
//! so that every case is tested without a backend.

use crate::job::{CatchUp, OnInterrupted};
use crate::record::{JobRecord, State};
use crate::schedule::{Millis, Schedule};

/// The next step of the node leading a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing due yet: wait until `due`, then plan again.
    Wait { due: Millis },
    /// Claim the occurrence due at `due` (attempt `attempt`) and run it; `missed` occurrences
    /// before it are given up with it.
    Run {
        due: Millis,
        attempt: u32,
        missed: Option<Missed>,
        interrupted: Option<Interrupted>,
    },
    /// Record the occurrence due at `due` as given up, without running it.
    GiveUp {
        due: Millis,
        missed: Option<Missed>,
        interrupted: Option<Interrupted>,
    },
    /// The record was written by a later term: this node no longer leads; wait for its term
    /// to end.
    Superseded,
    /// The schedule has no more occurrences.
    Done,
}

/// Occurrences nobody ran while they were due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Missed {
    pub(crate) first: Millis,
    pub(crate) last: Millis,
    pub(crate) count: u64,
}

/// A run found interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Interrupted {
    pub(crate) due: Millis,
    pub(crate) token: u64,
    pub(crate) attempt: u32,
}

/// The policies [`plan`] follows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// How late an occurrence may still start, in milliseconds.
    pub(crate) late_within: Millis,
    pub(crate) on_interrupted: OnInterrupted,
    pub(crate) catch_up: CatchUp,
}

/// The most missed occurrences counted one by one.
const COUNT_LIMIT: u64 = 1_000_000;

/// The next step of the node whose term has token `token`, at `now` by its clock, given the
/// job's `record` (`None`: none was ever written, since this term first found it missing at
/// `missing_since`).
pub(crate) fn plan(
    record: Option<&JobRecord>,
    token: u64,
    missing_since: Millis,
    now: Millis,
    schedule: &Schedule,
    policy: Policy,
) -> Step {
    if let Some(r) = record {
        if r.token > token {
            return Step::Superseded;
        }
        if r.state == State::Running {
            // Not running here (a node runs one occurrence at a time and records its end
            // before planning again): an earlier term's run that never finished.
            let interrupted = Some(Interrupted {
                due: r.due,
                token: r.token,
                attempt: r.attempt,
            });
            return if policy.on_interrupted == OnInterrupted::RetryOnce && r.attempt < 2 {
                Step::Run {
                    due: r.due,
                    attempt: r.attempt + 1,
                    missed: None,
                    interrupted,
                }
            } else {
                Step::GiveUp {
                    due: r.due,
                    missed: None,
                    interrupted,
                }
            };
        }
    }
    // A job without a record starts with its first occurrence after the term found it
    // missing: it knows of no earlier run, so it runs none that may have run.
    let next = match record {
        Some(r) => schedule.next_after(r.due),
        None => schedule.next_after(missing_since),
    };
    let Some(next) = next else {
        return Step::Done;
    };
    if next > now {
        return Step::Wait { due: next };
    }
    let cutoff = now.saturating_sub(policy.late_within);
    if next >= cutoff {
        // Late (leadership moved, the node was busy), not missed.
        return Step::Run {
            due: next,
            attempt: 1,
            missed: None,
            interrupted: None,
        };
    }
    let latest = schedule
        .latest_at_or_before(cutoff)
        .filter(|&l| l >= next)
        .unwrap_or(next);
    match policy.catch_up {
        CatchUp::Each => Step::Run {
            due: next,
            attempt: 1,
            missed: None,
            interrupted: None,
        },
        CatchUp::Skip => Step::GiveUp {
            due: latest,
            missed: Some(missed(schedule, next, latest)),
            interrupted: None,
        },
        CatchUp::Once => {
            let before = latest
                .checked_sub(1)
                .and_then(|b| schedule.latest_at_or_before(b))
                .filter(|&b| b >= next);
            Step::Run {
                due: latest,
                attempt: 1,
                missed: before.map(|b| missed(schedule, next, b)),
                interrupted: None,
            }
        }
    }
}

/// The occurrences from `first` to `last`, counted up to [`COUNT_LIMIT`].
fn missed(schedule: &Schedule, first: Millis, last: Millis) -> Missed {
    let mut count = 1;
    let mut at = first;
    while count < COUNT_LIMIT {
        match schedule.next_after(at) {
            Some(n) if n <= last => {
                count += 1;
                at = n;
            }
            _ => break,
        }
    }
    Missed { first, last, count }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::record::FORMAT;

    fn every_second() -> Schedule {
        Schedule::every(Duration::from_secs(1))
    }

    fn policy(catch_up: CatchUp, on_interrupted: OnInterrupted) -> Policy {
        Policy {
            late_within: 4_000,
            on_interrupted,
            catch_up,
        }
    }

    fn record(due: Millis, state: State, token: u64, attempt: u32) -> JobRecord {
        JobRecord {
            format: FORMAT,
            due,
            state,
            outcome: None,
            token,
            node: "n".into(),
            attempt,
            claim: 1,
            at: due,
        }
    }

    #[test]
    fn a_new_job_waits_for_its_first_occurrence_after_now() {
        let p = policy(CatchUp::Once, OnInterrupted::Skip);
        assert_eq!(
            plan(None, 1, 10_000, 10_000, &every_second(), p),
            Step::Wait { due: 11_000 }
        );
        assert_eq!(
            plan(None, 1, 10_500, 10_500, &every_second(), p),
            Step::Wait { due: 11_000 }
        );
        // Once due, the first occurrence after the record was found missing runs.
        assert!(matches!(
            plan(None, 1, 10_500, 11_000, &every_second(), p),
            Step::Run { due: 11_000, .. }
        ));
    }

    #[test]
    fn the_next_occurrence_after_the_recorded_one_runs_when_due_and_late_within_the_grace() {
        let p = policy(CatchUp::Once, OnInterrupted::Skip);
        let done = record(10_000, State::Done, 1, 1);
        assert_eq!(
            plan(Some(&done), 2, 0, 10_400, &every_second(), p),
            Step::Wait { due: 11_000 }
        );
        let run = |due| Step::Run {
            due,
            attempt: 1,
            missed: None,
            interrupted: None,
        };
        assert_eq!(
            plan(Some(&done), 2, 0, 11_000, &every_second(), p),
            run(11_000)
        );
        // 4 s late is still late, not missed.
        assert_eq!(
            plan(Some(&done), 2, 0, 15_000, &every_second(), p),
            run(11_000)
        );
    }

    #[test]
    fn missed_occurrences_follow_the_catch_up_policy() {
        let done = record(10_000, State::Done, 1, 1);
        // At 20 s, with 4 s of grace: 11..=16 s are missed, 17..=20 s are late.
        let now = 20_000;
        assert_eq!(
            plan(
                Some(&done),
                2,
                0,
                now,
                &every_second(),
                policy(CatchUp::Skip, OnInterrupted::Skip)
            ),
            Step::GiveUp {
                due: 16_000,
                missed: Some(Missed {
                    first: 11_000,
                    last: 16_000,
                    count: 6
                }),
                interrupted: None
            }
        );
        assert_eq!(
            plan(
                Some(&done),
                2,
                0,
                now,
                &every_second(),
                policy(CatchUp::Once, OnInterrupted::Skip)
            ),
            Step::Run {
                due: 16_000,
                attempt: 1,
                missed: Some(Missed {
                    first: 11_000,
                    last: 15_000,
                    count: 5
                }),
                interrupted: None
            }
        );
        assert_eq!(
            plan(
                Some(&done),
                2,
                0,
                now,
                &every_second(),
                policy(CatchUp::Each, OnInterrupted::Skip)
            ),
            Step::Run {
                due: 11_000,
                attempt: 1,
                missed: None,
                interrupted: None
            }
        );
    }

    #[test]
    fn an_interrupted_run_is_retried_once_or_given_up() {
        let running = record(10_000, State::Running, 1, 1);
        let interrupted = Some(Interrupted {
            due: 10_000,
            token: 1,
            attempt: 1,
        });
        assert_eq!(
            plan(
                Some(&running),
                2,
                0,
                10_500,
                &every_second(),
                policy(CatchUp::Once, OnInterrupted::Skip)
            ),
            Step::GiveUp {
                due: 10_000,
                missed: None,
                interrupted
            }
        );
        assert_eq!(
            plan(
                Some(&running),
                2,
                0,
                10_500,
                &every_second(),
                policy(CatchUp::Once, OnInterrupted::RetryOnce)
            ),
            Step::Run {
                due: 10_000,
                attempt: 2,
                missed: None,
                interrupted
            }
        );
        // A retry interrupted in its turn is given up.
        let retry = record(10_000, State::Running, 2, 2);
        assert!(matches!(
            plan(
                Some(&retry),
                3,
                0,
                10_500,
                &every_second(),
                policy(CatchUp::Once, OnInterrupted::RetryOnce)
            ),
            Step::GiveUp { due: 10_000, .. }
        ));
    }

    #[test]
    fn a_record_of_a_later_term_means_this_term_is_over() {
        let later = record(10_000, State::Done, 5, 1);
        assert_eq!(
            plan(
                Some(&later),
                4,
                0,
                10_500,
                &every_second(),
                policy(CatchUp::Once, OnInterrupted::Skip)
            ),
            Step::Superseded
        );
    }
}
