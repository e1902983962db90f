//! What the contenders report, taken in by the run: terms into the ledger, renewals, errors
//! and backend operations, each shown in the live output; and the progress line.

use super::Run;
use crate::contender::Event;
use crate::record::Record;

impl Run {
    /// Takes in every record reported so far.
    pub(super) fn drain(&mut self) {
        while let Ok(event) = self.events.try_recv() {
            self.handle(event);
        }
    }

    /// Takes in one record.
    pub(super) fn handle(&mut self, event: Event) {
        let Event {
            slot,
            generation,
            record,
        } = event;
        match record {
            Record::Acquired { at_ms, token } => {
                self.last_error[slot] = None;
                let at_ms = self.ledger.acquired(slot, generation, token, at_ms);
                let others: Vec<String> = self
                    .ledger
                    .other_leaders(slot)
                    .into_iter()
                    .map(|other| format!("c{other}"))
                    .collect();
                let mut text = format!("c{slot} leads, token {token}");
                if let Some(fault) = self.faults.last()
                    && fault.at_ms < at_ms
                    && self.ledger.count_began_after(fault.at_ms) == 1
                {
                    text.push_str(&format!(
                        "  (new leader {:.0} ms after the {})",
                        at_ms - fault.at_ms,
                        fault.kind.as_str()
                    ));
                }
                if !others.is_empty() {
                    text.push_str(&format!("  !! TWO LEADERS: also {}", others.join(", ")));
                }
                self.live.line(at_ms, &text);
            }
            Record::Lost {
                at_ms,
                token,
                reason,
            } => {
                self.last_error[slot] = None;
                // Every confirmation of the term has been reported (one process, in order):
                // the last one is what the victim of a fault on this term could trust.
                if generation == self.targets.slots[slot].generation() {
                    for fault in self.faults.iter_mut().filter(|f| {
                        f.contender == slot
                            && f.token == Some(token)
                            && f.term_confirmed_ms.is_none()
                    }) {
                        fault.term_confirmed_ms = self.last_confirmed[slot];
                    }
                }
                self.ledger.lost(slot, generation, token, at_ms, &reason);
                self.live.line(
                    at_ms,
                    &format!("c{slot} stops leading, token {token} ({reason})"),
                );
            }
            Record::Confirmed {
                at_ms,
                returned_ms,
                acquired,
            } => {
                if generation == self.targets.slots[slot].generation() {
                    self.last_confirmed[slot] = Some(at_ms);
                }
                if acquired {
                    self.ledger
                        .acquisition_confirmed(slot, generation, returned_ms);
                }
            }
            Record::Renewing { at_ms } => {
                if generation == self.targets.slots[slot].generation() {
                    self.last_sent[slot] = Some(at_ms);
                }
            }
            Record::Releasing { at_ms } => self.ledger.releasing(slot, generation, at_ms),
            Record::Error { at_ms, message } => {
                self.errors += 1;
                if self.last_error[slot].as_deref() != Some(message.as_str()) {
                    self.live
                        .line(at_ms, &format!("c{slot} backend error: {message}"));
                    self.last_error[slot] = Some(message);
                }
            }
            Record::Ops { ops } => {
                self.child_ops.insert((slot, generation), ops);
            }
            Record::Exited { .. } => {}
            Record::JobRun {
                at_ms,
                job,
                due,
                token,
                attempt,
                late_ms,
            } => {
                if !self.cfg.quiet && attempt > 1 {
                    self.live
                        .line(at_ms, &format!("c{slot} retries {job} due at {due}"));
                }
                self.job_started.entry((job.clone(), due)).or_insert(at_ms);
                self.job_runs.push(leader_election_jobs::testing::Run {
                    job,
                    due,
                    node: format!("c{slot}-g{generation}"),
                    token,
                    attempt,
                    late_by: std::time::Duration::from_millis(late_ms),
                });
            }
            Record::JobNotice {
                at_ms,
                job,
                what,
                count,
                due,
            } => {
                if let Some(due) = due {
                    self.job_interrupted.insert((job.clone(), due));
                }
                self.live.line(
                    at_ms,
                    &format!("c{slot}: {job}: {count} occurrence(s) {what}"),
                );
                *self.job_notices.entry((job, what)).or_default() += count;
            }
        }
    }

    pub(super) fn progress(&mut self) {
        let now_ms = self.clock.now_ms();
        let leader = match self.leader() {
            Some(slot) => format!(
                "leader c{slot} (token {})",
                self.ledger.open(slot).map_or(0, |o| o.token)
            ),
            None => "no leader".to_owned(),
        };
        let terms = self.ledger.terms();
        let summary = format!(
            "{leader} | terms {terms} | faults {} | errors {}",
            self.faults.len(),
            self.errors
        );
        let total = self.cfg.duration.as_secs_f64() * 1000.0;
        self.live.progress(now_ms, total, &summary);
    }
}
