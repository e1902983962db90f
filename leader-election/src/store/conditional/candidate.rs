//! The candidate record of preferred leaders: a sibling object, `<key>.candidate`, holding the
//! strongest waiting contender and its ttl.
//!
//! The service has no expiry here either: a reader counts a record as expired once it has seen
//! the same version unchanged for its ttl on its own monotonic clock, from when the response
//! showing it arrived. A waiting candidate announces itself every `renew_interval`, rewriting
//! the record (a new version), so a live candidate's record never looks expired; a candidate
//! that stopped looks expired to every reader one ttl after that reader first saw its last
//! announcement. Candidates decide no safety question (a handover is an ordinary release), so
//! a reader's late judgement costs at most an early or a missed handover.

use std::time::Duration;

use tokio::time::Instant;

use super::{Budget, CandidateRecord, Condition, ConditionalObjects, ConditionalStore, Read};
use crate::error::{Error, Operation, Result};
use crate::priority::{self, Candidate};

/// One version of the candidate object as this store first saw it.
#[derive(Clone, Debug)]
pub(super) struct CandidateWatch<V> {
    /// Its version; `None` when the object is missing.
    version: Option<V>,
    /// When the response first showing it arrived.
    since: Instant,
    /// Its record; `None` when missing or unreadable.
    record: Option<CandidateRecord>,
}

impl<V> CandidateWatch<V> {
    /// The recorded candidate, unless its record expired (or there is none).
    fn live(&self, now: Instant) -> Option<Candidate> {
        let record = self.record.as_ref()?;
        let expired =
            now.saturating_duration_since(self.since) >= Duration::from_millis(record.ttl_ms);
        (!expired).then(|| Candidate::new(record.instance_id.clone(), record.priority))
    }
}

impl<B: ConditionalObjects> ConditionalStore<B> {
    /// Reads the candidate object and updates the watch.
    async fn look_candidate(
        &self,
        budget: &Budget,
        operation: Operation,
    ) -> Result<CandidateWatch<B::Version>> {
        let cached = self
            .candidates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let known = cached.as_ref().and_then(|c| c.version.as_ref());
        let read = budget
            .run(self.backend.read(&self.candidate_key, known))
            .await
            .map_err(|f| self.fail(f, operation, false))?;
        Ok(match (read, cached) {
            (Read::Unchanged, Some(cached)) => cached,
            (Read::Missing | Read::Unchanged, _) => self.saw_candidate(None, None),
            (Read::Found(version, body), _) => {
                let record = self.backend.decode_candidate(&body);
                self.saw_candidate(Some(version), record)
            }
        })
    }

    /// Records a version of the candidate object just received: the watch restarts when it is
    /// new.
    fn saw_candidate(
        &self,
        version: Option<B::Version>,
        record: Option<CandidateRecord>,
    ) -> CandidateWatch<B::Version> {
        let mut watch = self
            .candidates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match watch.as_mut() {
            Some(current) if current.version == version => {
                current.record = record;
            }
            _ => {
                *watch = Some(CandidateWatch {
                    version,
                    since: Instant::now(),
                    record,
                });
            }
        }
        watch.clone().expect("set above")
    }

    /// [`LeaseStore::announce_candidate`](crate::LeaseStore::announce_candidate).
    pub(super) async fn announce(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        let operation = Operation::AnnounceCandidate;
        if candidate.instance_id.len() > priority::MAX_CANDIDATE_ID_LEN {
            return Err(Error::invalid_data(
                operation,
                "the candidate's instance id is too long",
            ));
        }
        let budget = Budget::new(self.request_timeout);
        let watch = self.look_candidate(&budget, operation).await?;
        let condition = match (&watch.version, watch.live(Instant::now())) {
            (None, _) => Condition::Missing,
            (Some(_), Some(recorded)) if !priority::replaces(candidate, &recorded) => {
                // A stronger candidate's record stands: nothing changes.
                return Ok(());
            }
            (Some(version), _) => Condition::Version(version),
        };
        let record = CandidateRecord {
            instance_id: candidate.instance_id.clone(),
            priority: candidate.priority,
            ttl_ms: super::millis(ttl),
        };
        let body = self.backend.encode_candidate(&record);
        match budget
            .run(self.backend.write(&self.candidate_key, condition, body))
            .await
        {
            Ok(version) => {
                self.saw_candidate(Some(version), Some(record));
                Ok(())
            }
            // Another announcement came first: it stands (the next announcement tries again).
            Err(f) if f.lost() => Ok(()),
            Err(f) => Err(self.fail(f, operation, true)),
        }
    }

    /// [`LeaseStore::strongest_candidate`](crate::LeaseStore::strongest_candidate).
    pub(super) async fn strongest(&self) -> Result<Option<Candidate>> {
        let budget = Budget::new(self.request_timeout);
        let watch = self
            .look_candidate(&budget, Operation::StrongestCandidate)
            .await?;
        Ok(watch.live(Instant::now()))
    }
}
