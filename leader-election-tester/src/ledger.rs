//! The term ledger: what the run's verdict is decided on. It turns the contenders' records
//! (acquired, lost, confirmed, releasing, killed), each with its time on the run's clock, into
//! leadership intervals, always taking the bound that could only widen a term, so that an
//! overlap is never hidden. Pure: no clock, no I/O; the run feeds it and reads it.

use std::collections::HashMap;

use crate::report::Interval;

/// The term a contender slot is in now.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Open {
    /// The incarnation of the slot that leads.
    pub(crate) generation: u32,
    /// Its token.
    pub(crate) token: u64,
    /// When it began.
    pub(crate) start_ms: f64,
}

/// Every term of a run, open and closed.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    open: Vec<Option<Open>>,
    closed: Vec<Interval>,
    /// The incarnation and time of each slot's last confirmed acquisition.
    acquired_at: Vec<Option<(u32, f64)>>,
    /// The incarnation and time of each slot's last release call.
    released_at: Vec<Option<(u32, f64)>>,
    /// When each killed incarnation died.
    killed: HashMap<(usize, u32), f64>,
}

impl Ledger {
    /// A ledger for `slots` contender slots, none leading.
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            open: vec![None; slots],
            closed: Vec::new(),
            acquired_at: vec![None; slots],
            released_at: vec![None; slots],
            killed: HashMap::new(),
        }
    }

    /// The store confirmed an acquisition by `slot`'s incarnation `generation`, returning at
    /// `returned_ms`: the term began no later than that.
    pub(crate) fn acquisition_confirmed(&mut self, slot: usize, generation: u32, returned_ms: f64) {
        self.acquired_at[slot] = Some((generation, returned_ms));
    }

    /// `slot`'s incarnation `generation` reported leading with `token` at `at_ms`. Returns when
    /// the term is taken to have begun: the earlier of the report and the confirmed
    /// acquisition, so that overlaps are never hidden.
    pub(crate) fn acquired(&mut self, slot: usize, generation: u32, token: u64, at_ms: f64) -> f64 {
        let start_ms = match self.acquired_at[slot].take() {
            Some((g, returned)) if g == generation && returned <= at_ms => returned,
            _ => at_ms,
        };
        if let Some(&dead_ms) = self.killed.get(&(slot, generation)) {
            // Reported by a process that was killed since: it led until it died.
            self.closed.push(Interval {
                contender: slot,
                generation,
                token,
                start_ms,
                end_ms: dead_ms.max(start_ms),
                end_reason: "killed".into(),
            });
            return start_ms;
        }
        if let Some(open) = self.open[slot] {
            self.close(slot, open.generation, None, start_ms, "superseded");
        }
        self.open[slot] = Some(Open {
            generation,
            token,
            start_ms,
        });
        start_ms
    }

    /// `slot`'s incarnation `generation` reported the end of its term with `token` at
    /// `at_ms`. A release sent after the term ended but before the report bounds the end
    /// more tightly.
    pub(crate) fn lost(&mut self, slot: usize, generation: u32, token: u64, at_ms: f64, why: &str) {
        let end_ms = match (self.released_at[slot], self.open[slot]) {
            (Some((g, released)), Some(open))
                if g == generation && released >= open.start_ms && released < at_ms =>
            {
                released
            }
            _ => at_ms,
        };
        self.close(slot, generation, Some(token), end_ms, why);
    }

    /// `slot`'s incarnation `generation` called release at `at_ms`: only after its term ended,
    /// so a term closed later, when its end was received, really ended by then.
    pub(crate) fn releasing(&mut self, slot: usize, generation: u32, at_ms: f64) {
        self.released_at[slot] = Some((generation, at_ms));
        if let Some(interval) = self.closed.iter_mut().rev().find(|i| {
            i.contender == slot
                && i.generation == generation
                && i.start_ms <= at_ms
                && at_ms < i.end_ms
        }) {
            interval.end_ms = at_ms;
        }
    }

    /// `slot`'s incarnation `generation` was killed at `dead_ms`: whatever it led ended then,
    /// including a term it reports later.
    pub(crate) fn killed(&mut self, slot: usize, generation: u32, dead_ms: f64) {
        self.killed.insert((slot, generation), dead_ms);
        self.close(slot, generation, None, dead_ms, "killed");
    }

    /// The open term of `slot`, if it leads.
    pub(crate) fn open(&self, slot: usize) -> Option<Open> {
        self.open[slot]
    }

    /// The slot whose term began last among those open: the leader as far as the records say.
    pub(crate) fn leader(&self) -> Option<usize> {
        self.open
            .iter()
            .enumerate()
            .filter_map(|(slot, o)| o.map(|o| (slot, o.start_ms)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(slot, _)| slot)
    }

    /// The slots leading now, other than `slot`. A term whose contender has already sent its
    /// release (its end report may still be on the way) is over.
    pub(crate) fn other_leaders(&self, slot: usize) -> Vec<usize> {
        (0..self.open.len())
            .filter(|other| *other != slot)
            .filter(|other| {
                self.open[*other].is_some_and(|open| {
                    !self.released_at[*other]
                        .is_some_and(|(g, at)| g == open.generation && at >= open.start_ms)
                })
            })
            .collect()
    }

    /// Whether any term, open or closed, began after `at_ms`.
    pub(crate) fn began_after(&self, at_ms: f64) -> bool {
        self.open.iter().flatten().any(|o| o.start_ms > at_ms)
            || self.closed.iter().any(|i| i.start_ms > at_ms)
    }

    /// How many terms began after `at_ms`, open and closed.
    pub(crate) fn count_began_after(&self, at_ms: f64) -> usize {
        self.open
            .iter()
            .flatten()
            .filter(|o| o.start_ms > at_ms)
            .count()
            + self.closed.iter().filter(|i| i.start_ms > at_ms).count()
    }

    /// How many terms there were, open and closed.
    pub(crate) fn terms(&self) -> usize {
        self.closed.len() + self.open.iter().flatten().count()
    }

    /// Closes every open term at `end_ms` and returns every term, in the order they began.
    pub(crate) fn finish(mut self, end_ms: f64) -> Vec<Interval> {
        for slot in 0..self.open.len() {
            if let Some(open) = self.open[slot] {
                self.close(slot, open.generation, None, end_ms, "run_end");
            }
        }
        self.closed
            .sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
        self.closed
    }

    /// Ends the open term of `slot` if it belongs to `generation` (and has `token`, if given).
    fn close(&mut self, slot: usize, generation: u32, token: Option<u64>, at_ms: f64, why: &str) {
        let Some(open) = self.open[slot] else {
            return;
        };
        if open.generation != generation || token.is_some_and(|t| t != open.token) {
            return;
        }
        self.open[slot] = None;
        self.closed.push(Interval {
            contender: slot,
            generation,
            token: open.token,
            start_ms: open.start_ms,
            end_ms: at_ms.max(open.start_ms),
            end_reason: why.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(intervals: &[Interval]) -> Vec<(usize, u64, f64, f64, &str)> {
        intervals
            .iter()
            .map(|i| {
                (
                    i.contender,
                    i.token,
                    i.start_ms,
                    i.end_ms,
                    i.end_reason.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn a_term_begins_at_the_confirmed_acquisition_and_ends_at_its_report() {
        let mut ledger = Ledger::new(2);
        ledger.acquisition_confirmed(0, 0, 10.0);
        assert_eq!(ledger.acquired(0, 0, 1, 12.0), 10.0);
        assert_eq!(ledger.leader(), Some(0));
        ledger.lost(0, 0, 1, 100.0, "deadline_passed");
        assert_eq!(ledger.leader(), None);
        assert_eq!(
            spans(&ledger.finish(200.0)),
            [(0, 1, 10.0, 100.0, "deadline_passed")]
        );
    }

    #[test]
    fn a_confirmation_of_another_incarnation_or_a_later_time_is_ignored() {
        let mut ledger = Ledger::new(1);
        ledger.acquisition_confirmed(0, 0, 10.0);
        assert_eq!(ledger.acquired(0, 1, 1, 12.0), 12.0);
        ledger.acquisition_confirmed(0, 1, 50.0);
        ledger.lost(0, 1, 1, 40.0, "stopped");
        assert_eq!(ledger.acquired(0, 1, 2, 45.0), 45.0);
    }

    #[test]
    fn a_release_bounds_the_end_of_the_term_it_follows() {
        // Received before the end: the end is the release.
        let mut ledger = Ledger::new(1);
        ledger.acquired(0, 0, 1, 0.0);
        ledger.releasing(0, 0, 30.0);
        ledger.lost(0, 0, 1, 35.0, "stopped");
        // Received after the end: the closed term is shortened to the release.
        ledger.acquired(0, 0, 2, 50.0);
        ledger.lost(0, 0, 2, 80.0, "stopped");
        ledger.releasing(0, 0, 70.0);
        assert_eq!(
            spans(&ledger.finish(100.0)),
            [(0, 1, 0.0, 30.0, "stopped"), (0, 2, 50.0, 70.0, "stopped")]
        );
    }

    #[test]
    fn a_killed_incarnation_led_until_it_died_even_if_it_reports_later() {
        let mut ledger = Ledger::new(2);
        ledger.acquired(0, 0, 1, 0.0);
        ledger.killed(0, 0, 20.0);
        // A report of a term still in flight from the dead process.
        ledger.acquired(0, 0, 2, 25.0);
        // Its other reports change nothing.
        ledger.lost(0, 0, 2, 40.0, "deadline_passed");
        assert_eq!(ledger.leader(), None);
        assert_eq!(
            spans(&ledger.finish(50.0)),
            [(0, 1, 0.0, 20.0, "killed"), (0, 2, 25.0, 25.0, "killed")]
        );
    }

    #[test]
    fn a_loss_for_another_token_or_incarnation_does_not_close_the_term() {
        let mut ledger = Ledger::new(1);
        ledger.acquired(0, 1, 5, 0.0);
        ledger.lost(0, 1, 4, 10.0, "lease_lost");
        ledger.lost(0, 0, 5, 10.0, "lease_lost");
        assert_eq!(ledger.open(0).map(|o| o.token), Some(5));
        assert_eq!(spans(&ledger.finish(60.0)), [(0, 5, 0.0, 60.0, "run_end")]);
    }

    #[test]
    fn two_open_terms_are_visible_and_kept() {
        let mut ledger = Ledger::new(3);
        ledger.acquired(0, 0, 1, 0.0);
        ledger.acquired(2, 0, 2, 5.0);
        assert_eq!(ledger.other_leaders(2), [0]);
        assert_eq!(ledger.leader(), Some(2));
        assert!(ledger.began_after(4.0));
        assert_eq!(ledger.count_began_after(-1.0), 2);
        assert_eq!(ledger.terms(), 2);
        let intervals = ledger.finish(10.0);
        assert_eq!(intervals.len(), 2);
        let terms = crate::report::terms(&intervals);
        assert_eq!(leader_election::testing::overlaps(&terms).len(), 1);
    }

    #[test]
    fn a_new_term_of_the_same_slot_supersedes_an_open_one() {
        let mut ledger = Ledger::new(1);
        ledger.acquired(0, 0, 1, 0.0);
        ledger.acquired(0, 1, 2, 30.0);
        assert_eq!(
            spans(&ledger.finish(40.0)),
            [
                (0, 1, 0.0, 30.0, "superseded"),
                (0, 2, 30.0, 40.0, "run_end")
            ]
        );
    }
}
