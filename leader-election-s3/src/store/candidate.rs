//! The candidate record of preferred leaders: a sibling object, `<key>.candidate`, holding
//! the strongest waiting contender and its ttl.
//!
//! S3 has no expiry here either: a reader counts a record as expired once it has seen the same
//! version unchanged for its ttl on its own monotonic clock, from when the response showing it
//! arrived. A waiting candidate announces itself every `renew_interval`, rewriting the record
//! (a new nonce, so a new version), so a live candidate's record never looks expired; a
//! candidate that stopped looks expired to every reader one ttl after that reader first saw
//! its last announcement. Candidates decide no safety question (a handover is an ordinary
//! release), so a reader's late judgement costs at most an early or a missed handover.

use std::time::Duration;

use leader_election::priority::Candidate;
use leader_election::{Error, Operation, Result, priority};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Budget, Condition, S3LeaseStore};
use crate::clock::Version;
use crate::error::S3Error;

/// The body of the candidate object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandidateRecord {
    v: u32,
    instance_id: String,
    priority: u32,
    ttl_ms: u64,
    /// Random, different in every write (see the lease record's nonce).
    nonce: String,
}

/// One version of the candidate object as this store first saw it.
#[derive(Clone, Debug)]
pub(super) struct CandidateWatch {
    /// Its ETag and Last-Modified; `None` when the object is missing.
    version: Option<Version>,
    /// When the response first showing it arrived.
    since: Instant,
    /// Its record; `None` when missing or unreadable.
    record: Option<CandidateRecord>,
}

impl CandidateWatch {
    /// The recorded candidate, unless its record expired (or there is none).
    fn live(&self, now: Instant) -> Option<Candidate> {
        let record = self.record.as_ref()?;
        let expired =
            now.saturating_duration_since(self.since) >= Duration::from_millis(record.ttl_ms);
        (!expired).then(|| Candidate::new(record.instance_id.clone(), record.priority))
    }
}

impl S3LeaseStore {
    /// Reads the candidate object (`HEAD`, and `GET` when its version is new to this store)
    /// and updates the watch.
    async fn look_candidate(
        &self,
        budget: &Budget,
        operation: Operation,
    ) -> Result<CandidateWatch> {
        let client = self.client_ref().await;
        let cached = self
            .candidates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(cached) = cached {
            let head = client
                .head_object()
                .bucket(&self.bucket)
                .key(&self.candidate_key);
            match self.send(budget, head.send()).await {
                Ok(output) => {
                    let version = output
                        .e_tag()
                        .map(|etag| Version::new(etag, output.last_modified().map(|t| t.secs())));
                    if version.is_some() && version == cached.version {
                        return Ok(cached);
                    }
                }
                Err(f) if f.status() == Some(404) => return Ok(self.saw_candidate(None, None)),
                Err(f) => return Err(f.into_error(operation, false)),
            }
        }
        let get = client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.candidate_key);
        match self.send(budget, get.send()).await {
            Ok(output) => {
                let version = output
                    .e_tag()
                    .map(|etag| Version::new(etag, output.last_modified().map(|t| t.secs())));
                let body = match tokio::time::timeout(budget.left(), output.body.collect()).await {
                    Ok(Ok(body)) => body.into_bytes(),
                    _ => {
                        return Err(Error::backend(
                            operation,
                            true,
                            S3Error::new("reading the candidate object failed"),
                        ));
                    }
                };
                let record = serde_json::from_slice::<CandidateRecord>(&body)
                    .ok()
                    .filter(|r| r.v == 1);
                Ok(self.saw_candidate(version, record))
            }
            Err(f) if f.status() == Some(404) => Ok(self.saw_candidate(None, None)),
            Err(f) => Err(f.into_error(operation, false)),
        }
    }

    /// Records a version of the candidate object just received: the watch restarts when it is
    /// new.
    fn saw_candidate(
        &self,
        version: Option<Version>,
        record: Option<CandidateRecord>,
    ) -> CandidateWatch {
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

    /// [`LeaseStore::announce_candidate`](leader_election::LeaseStore::announce_candidate).
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
            (Some(version), _) => Condition::Version(version.etag.clone()),
        };
        let record = CandidateRecord {
            v: 1,
            instance_id: candidate.instance_id.clone(),
            priority: candidate.priority,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            nonce: format!("{:032x}", fastrand::u128(..)),
        };
        let body = serde_json::to_vec(&record).expect("a record always serializes");
        match self
            .put_body(&budget, &self.candidate_key, &condition, body)
            .await
        {
            Ok(etag) => {
                self.saw_candidate(Some(Version::new(etag, None)), Some(record));
                Ok(())
            }
            // Another announcement came first: it stands (the next announcement tries again).
            Err(f) if f.is_conflict() || f.status() == Some(404) => Ok(()),
            Err(f) => Err(f.into_error(operation, true)),
        }
    }

    /// [`LeaseStore::strongest_candidate`](leader_election::LeaseStore::strongest_candidate).
    pub(super) async fn strongest(&self) -> Result<Option<Candidate>> {
        let budget = Budget::new(self.request_timeout);
        let watch = self
            .look_candidate(&budget, Operation::StrongestCandidate)
            .await?;
        Ok(watch.live(Instant::now()))
    }
}
