//! The candidate record of preferred leaders: a sibling item, `<key>.candidate`, holding the
//! strongest waiting contender and its ttl.
//!
//! DynamoDB has no expiry here either (its TTL deletes lazily): a reader counts a record as
//! expired once it has seen the same version unchanged for its ttl on its own monotonic clock,
//! from when the response showing it arrived. A waiting candidate announces itself every
//! `renew_interval`, rewriting the record (a new version), so a live candidate's record never
//! looks expired; a candidate that stopped looks expired to every reader one ttl after that
//! reader first saw its last announcement. Candidates decide no safety question (a handover
//! is an ordinary release), so a reader's late judgement costs at most an early or a missed
//! handover.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use leader_election::priority::Candidate;
use leader_election::{Error, Operation, Result, priority};
use tokio::time::Instant;

use super::{Budget, Condition, DynamoDbLeaseStore};
use crate::clock::Version;
use crate::record::{Item, PK, VERSION, new_version, version_of};

/// The suffix of the candidate item's key: `<key>.candidate`.
pub(super) const CANDIDATE_SUFFIX: &str = ".candidate";

/// The record of the candidate item.
#[derive(Clone, Debug, PartialEq, Eq)]
struct CandidateRecord {
    instance_id: String,
    priority: u32,
    ttl_ms: u64,
}

impl CandidateRecord {
    /// The record in `item`, `None` when it is not one of this crate's (written by hand:
    /// treated as no candidate, and replaced by the next announcement).
    fn decode(item: &Item) -> Option<Self> {
        if item
            .keys()
            .any(|k| ![PK, VERSION, "instance_id", "priority", "ttl_ms"].contains(&k.as_str()))
        {
            return None;
        }
        let number = |name: &str| match item.get(name) {
            Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
            _ => None,
        };
        match (item.get(VERSION), item.get("instance_id")) {
            (Some(AttributeValue::S(_)), Some(AttributeValue::S(instance_id))) => Some(Self {
                instance_id: instance_id.clone(),
                priority: u32::try_from(number("priority")?).ok()?,
                ttl_ms: number("ttl_ms")?,
            }),
            _ => None,
        }
    }

    fn encode(&self, key: &str, version: &str) -> Item {
        let mut item = Item::new();
        item.insert(PK.to_owned(), AttributeValue::S(key.to_owned()));
        item.insert(VERSION.to_owned(), AttributeValue::S(version.to_owned()));
        item.insert(
            "instance_id".to_owned(),
            AttributeValue::S(self.instance_id.clone()),
        );
        item.insert(
            "priority".to_owned(),
            AttributeValue::N(self.priority.to_string()),
        );
        item.insert(
            "ttl_ms".to_owned(),
            AttributeValue::N(self.ttl_ms.to_string()),
        );
        item
    }
}

/// One version of the candidate item as this store first saw it.
#[derive(Clone, Debug)]
pub(super) struct CandidateWatch {
    /// Its version; `None` when the item is missing.
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

impl DynamoDbLeaseStore {
    /// Reads the candidate item (one strongly consistent `GetItem`) and updates the watch.
    async fn look_candidate(
        &self,
        budget: &Budget,
        operation: Operation,
    ) -> Result<CandidateWatch> {
        match self.get_item(budget, &self.candidate_key).await {
            Ok(Some(item)) => {
                Ok(self.saw_candidate(Some(version_of(&item)), CandidateRecord::decode(&item)))
            }
            Ok(None) => Ok(self.saw_candidate(None, None)),
            Err(f) if f.is_missing_table() => Err(self.no_table(operation)),
            Err(f) => Err(f.into_error(operation, false)),
        }
    }

    /// Records a version of the candidate item just received: the watch restarts when it is
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
        let next = match watch.take() {
            Some(current) if current.version == version => CandidateWatch { record, ..current },
            _ => CandidateWatch {
                version,
                since: Instant::now(),
                record,
            },
        };
        *watch = Some(next.clone());
        next
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
            (Some(version), _) if version.0.starts_with('~') => Condition::Foreign,
            (Some(version), _) => Condition::Version(version.0.clone()),
        };
        let record = CandidateRecord {
            instance_id: candidate.instance_id.clone(),
            priority: candidate.priority,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        };
        let version = new_version();
        match self
            .put_item(
                &budget,
                &condition,
                record.encode(&self.candidate_key, &version),
            )
            .await
        {
            Ok(()) => {
                self.saw_candidate(Some(Version::new(version)), Some(record));
                Ok(())
            }
            // Another announcement came first: it stands (the next announcement tries again).
            Err(f) if f.is_conflict() => Ok(()),
            Err(f) if f.is_missing_table() => Err(self.no_table(operation)),
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
