//! The one safety checker of the workspace: what a run recorded, as [`Term`]s, and whether two
//! contenders ever led at once ([`overlaps`]) or a token failed to grow ([`token_regressions`]).
//! [`assert_safe`] asserts both; every test and the tester use these functions, so that one
//! definition of "safe" is checked everywhere.

use std::fmt;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::election::LeaderElection;
use crate::event::{ChangeReason, ElectionEvent};
use crate::store::LeaseStore;
use crate::token::FencingToken;

/// One term of leadership of one contender: it believed it led during `[start, end)`.
///
/// `C` names the contender: it must tell apart every process, or every incarnation of one (a
/// contender restarted after a crash is another contender). `T` is the clock: tokio's
/// [`Instant`] in tests, milliseconds since the start of a run in the tester.
#[derive(Clone, Debug, PartialEq)]
pub struct Term<C = String, T = Instant> {
    /// Who led.
    pub contender: C,
    /// The fencing token of the term.
    pub token: FencingToken,
    /// When it began to lead.
    pub start: T,
    /// When it stopped leading (for a term still going on: when the record was read).
    pub end: T,
    /// Why it ended, if it has (as the election reported it).
    pub end_reason: Option<ChangeReason>,
}

impl<C, T: PartialOrd> Term<C, T> {
    /// Whether this term and `other` share an instant: `[start, end)` intervals that intersect.
    pub fn overlaps(&self, other: &Self) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// Two terms found together: an overlap, or a token that did not grow.
pub type TermPair<'a, C, T> = (&'a Term<C, T>, &'a Term<C, T>);

/// Every pair of terms of different contenders that overlap in time, earlier-starting first.
pub fn overlaps<C: PartialEq, T: PartialOrd + Copy>(
    terms: &[Term<C, T>],
) -> Vec<TermPair<'_, C, T>> {
    let mut sorted: Vec<&Term<C, T>> = terms.iter().collect();
    sorted.sort_by(|a, b| {
        a.start
            .partial_cmp(&b.start)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut found = Vec::new();
    for (i, a) in sorted.iter().enumerate() {
        for b in &sorted[i + 1..] {
            // Sorted by start: no later term can overlap `a` once one starts after it ends.
            if b.start >= a.end {
                break;
            }
            if a.contender != b.contender && a.overlaps(b) {
                found.push((*a, *b));
            }
        }
    }
    found
}

/// Every pair of consecutive terms (in the order they began; ties by token) whose token did not
/// strictly grow. Empty when every term's token is greater than every earlier term's.
pub fn token_regressions<C, T: PartialOrd + Copy>(terms: &[Term<C, T>]) -> Vec<TermPair<'_, C, T>> {
    let mut sorted: Vec<&Term<C, T>> = terms.iter().collect();
    sorted.sort_by(|a, b| {
        a.start
            .partial_cmp(&b.start)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.token.cmp(&b.token))
    });
    sorted
        .windows(2)
        .filter(|pair| pair[1].token <= pair[0].token)
        .map(|pair| (pair[0], pair[1]))
        .collect()
}

/// Whether tokens strictly increase in the order terms began.
pub fn tokens_increase<C, T: PartialOrd + Copy>(terms: &[Term<C, T>]) -> bool {
    token_regressions(terms).is_empty()
}

/// Panics, listing what went wrong, if two contenders' terms overlap or a term's token is not
/// greater than the one before it.
pub fn assert_safe<C: PartialEq + fmt::Debug, T: PartialOrd + Copy + fmt::Debug>(
    terms: &[Term<C, T>],
) {
    let overlapping = overlaps(terms);
    let regressions = token_regressions(terms);
    if overlapping.is_empty() && regressions.is_empty() {
        return;
    }
    let mut message = String::new();
    for (a, b) in &overlapping {
        message.push_str(&format!("two leaders at once: {a:?} and {b:?}\n"));
    }
    for (a, b) in &regressions {
        message.push_str(&format!("token did not increase: {a:?} then {b:?}\n"));
    }
    panic!("unsafe election ({} terms):\n{message}", terms.len());
}

/// Records the terms of elections from their [`ElectionEvent::LeadershipChanged`] events, on
/// tokio's clock. Cheap to clone; clones share the record. Attach it before starting an
/// election so that no term is missed.
///
/// A term's start is when the event was received, a little after the contender began to
/// believe it leads, and its end likewise a little after it stopped; on tokio's paused clock
/// both are exact. A recorder that falls behind the event buffer panics rather than lose a term.
#[derive(Clone, Debug, Default)]
pub struct TermRecorder {
    terms: Arc<Mutex<Vec<Term>>>,
}

impl TermRecorder {
    /// An empty record.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `election`'s terms from now on under its instance id, and returns the
    /// recorder for chaining.
    pub fn attach<S: LeaseStore>(&self, election: &LeaderElection<S>) -> &Self {
        self.attach_as(election, election.instance_id())
    }

    /// Attaches every one of `elections`, then starts them in turn: the usual start of a test
    /// with several contenders, each recorded from before its first transition.
    ///
    /// # Errors
    /// The first error of [`LeaderElection::start`]; the elections before it keep running.
    pub async fn start_all<S: LeaseStore>(
        &self,
        elections: &[LeaderElection<S>],
    ) -> crate::Result<()> {
        for election in elections {
            self.attach(election);
        }
        for election in elections {
            election.start().await?;
        }
        Ok(())
    }

    /// Records `election`'s terms from now on under the name `contender` (for contenders that
    /// share an instance id, such as the incarnations of one restarted process).
    pub fn attach_as<S: LeaseStore>(
        &self,
        election: &LeaderElection<S>,
        contender: impl Into<String>,
    ) -> &Self {
        let mut events = election.subscribe();
        let contender = contender.into();
        let terms = Arc::clone(&self.terms);
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(ElectionEvent::LeadershipChanged {
                        is_leader,
                        token,
                        reason,
                        at,
                    }) => {
                        let now = at;
                        let mut terms = lock(&terms);
                        if is_leader {
                            terms.push(Term {
                                contender: contender.clone(),
                                token,
                                start: now,
                                end: now,
                                end_reason: None,
                            });
                        } else if let Some(open) = terms.iter_mut().rev().find(|t| {
                            t.contender == contender && t.token == token && t.end_reason.is_none()
                        }) {
                            open.end = now;
                            open.end_reason = Some(reason);
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        panic!("the term recorder of {contender} missed {missed} events")
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        self
    }

    /// Every term recorded so far, in the order they began; a term still going on ends now.
    #[must_use]
    pub fn terms(&self) -> Vec<Term> {
        let now = Instant::now();
        let mut terms = lock(&self.terms).clone();
        for term in &mut terms {
            if term.end_reason.is_none() {
                term.end = now;
            }
        }
        terms
    }

    /// The terms of one contender so far, in order.
    #[must_use]
    pub fn terms_of(&self, contender: &str) -> Vec<Term> {
        self.terms()
            .into_iter()
            .filter(|t| t.contender == contender)
            .collect()
    }

    /// The contender whose term is going on, if any.
    #[must_use]
    pub fn current(&self) -> Option<Term> {
        self.terms().into_iter().rfind(|t| t.end_reason.is_none())
    }

    /// Waits up to `within` for a term with a token above `above` to be going on, and returns
    /// it: how a test waits for the next leader after a fault.
    ///
    /// # Panics
    /// When no such term is going on within `within`, showing the terms recorded.
    pub async fn term_after(&self, above: u64, within: std::time::Duration) -> Term {
        let deadline = Instant::now() + within;
        loop {
            if let Some(term) = self
                .terms()
                .into_iter()
                .find(|t| t.token.get() > above && t.end_reason.is_none())
            {
                return term;
            }
            assert!(
                Instant::now() < deadline,
                "no term with a token above {above} within {within:?}: {:?}",
                self.terms()
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// [`assert_safe`] on every term recorded so far.
    pub fn assert_safe(&self) {
        assert_safe(&self.terms());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(contender: &str, token: u64, start: f64, end: f64) -> Term<String, f64> {
        Term {
            contender: contender.to_owned(),
            token: FencingToken::new(token),
            start,
            end,
            end_reason: Some(ChangeReason::Stopped),
        }
    }

    #[test]
    fn clean_handovers_are_safe() {
        let terms = [
            term("a", 1, 0.0, 10.0),
            term("b", 2, 10.0, 20.0),
            term("a", 3, 25.0, 30.0),
        ];
        assert!(overlaps(&terms).is_empty());
        assert!(tokens_increase(&terms));
        assert_safe(&terms);
    }

    #[test]
    fn an_overlap_is_found_however_the_terms_are_ordered() {
        let terms = [
            term("c", 3, 30.0, 40.0),
            term("b", 2, 9.0, 20.0),
            term("a", 1, 0.0, 10.0),
        ];
        let found = overlaps(&terms);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].0.token.get(), found[0].1.token.get()), (1, 2));
        // A term inside a long one, after shorter ones in between, is found too.
        let nested = [
            term("a", 1, 0.0, 100.0),
            term("b", 2, 10.0, 20.0),
            term("c", 3, 50.0, 60.0),
        ];
        assert_eq!(overlaps(&nested).len(), 2);
    }

    #[test]
    fn terms_of_one_contender_never_count_as_overlap() {
        let terms = [term("a", 1, 0.0, 10.0), term("a", 2, 5.0, 20.0)];
        assert!(overlaps(&terms).is_empty());
    }

    #[test]
    fn tokens_going_backwards_or_repeating_are_caught() {
        let backwards = [term("a", 2, 0.0, 10.0), term("b", 1, 10.0, 20.0)];
        assert_eq!(token_regressions(&backwards).len(), 1);
        let repeated = [term("a", 2, 0.0, 10.0), term("a", 2, 10.0, 20.0)];
        assert!(!tokens_increase(&repeated));
    }

    #[test]
    #[should_panic(expected = "two leaders at once")]
    fn assert_safe_panics_on_an_overlap() {
        assert_safe(&[term("a", 1, 0.0, 11.0), term("b", 2, 10.0, 20.0)]);
    }

    #[test]
    #[should_panic(expected = "token did not increase")]
    fn assert_safe_panics_on_a_token_going_back() {
        assert_safe(&[term("a", 5, 0.0, 10.0), term("b", 4, 10.0, 20.0)]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_recorder_records_terms_from_events() {
        use crate::{LeaderElectionOptions, MemoryLeaseStore, Role};
        let store = MemoryLeaseStore::new();
        let mut options = LeaderElectionOptions {
            instance_id: "a".into(),
            ..LeaderElectionOptions::default()
        };
        let a = LeaderElection::new(store.clone(), options.clone()).unwrap();
        options.instance_id = "b".into();
        let b = LeaderElection::new(store, options).unwrap();
        let recorder = TermRecorder::new();
        recorder.attach(&a).attach(&b);
        a.start().await.unwrap();
        let mut state = a.watch();
        state.wait_for(|s| s.role == Role::Leader).await.unwrap();
        b.start().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        a.stop().await.unwrap();
        let mut state = b.watch();
        state.wait_for(|s| s.role == Role::Leader).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let terms = recorder.terms();
        assert_eq!(terms.len(), 2, "{terms:?}");
        assert_eq!(terms[0].contender, "a");
        assert_eq!(terms[0].end_reason, Some(ChangeReason::Stopped));
        assert_eq!(recorder.current().unwrap().contender, "b");
        assert_eq!(recorder.terms_of("b").len(), 1);
        recorder.assert_safe();
    }

    #[tokio::test(start_paused = true)]
    async fn start_all_records_every_contender_and_term_after_waits_for_the_next_leader() {
        use crate::{LeaderElectionOptions, MemoryLeaseStore};
        let store = MemoryLeaseStore::new();
        let elections: Vec<_> = ["a", "b"]
            .into_iter()
            .map(|id| {
                let options = LeaderElectionOptions {
                    instance_id: id.into(),
                    ..LeaderElectionOptions::default()
                };
                LeaderElection::new(store.clone(), options).unwrap()
            })
            .collect();
        let recorder = TermRecorder::new();
        recorder.start_all(&elections).await.unwrap();
        let first = recorder
            .term_after(0, std::time::Duration::from_secs(5))
            .await;
        let leader = elections
            .iter()
            .find(|e| e.instance_id() == first.contender)
            .unwrap();
        leader.stop().await.unwrap();
        let next = recorder
            .term_after(first.token.get(), std::time::Duration::from_secs(5))
            .await;
        assert_ne!(next.contender, first.contender);
        assert!(next.token > first.token);
        recorder.assert_safe();
    }

    #[tokio::test(start_paused = true)]
    #[should_panic(expected = "no term with a token above")]
    async fn term_after_panics_when_no_new_term_comes() {
        TermRecorder::new()
            .term_after(0, std::time::Duration::from_secs(1))
            .await;
    }
}
