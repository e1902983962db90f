//! The candidate record of preferred leaders: a sibling blob, `<blob>.candidate`, empty, whose
//! metadata holds the candidate (`candidate_instance_id`, `candidate_priority`) and when the
//! record expires (`candidate_expires_at`, Unix seconds on the service's clock, read from the
//! `Date` header: never the local clock). Written conditionally on the ETag just read, so that
//! the priority comparison and the write are one atomic step: a write that lost a race to
//! another announcement changes nothing (the waiting contender announces again at its next
//! attempt).

use std::collections::HashMap;
use std::time::Duration;

use azure_core::http::Etag;
use azure_storage_blob::BlobClient;
use azure_storage_blob::models::{
    AppendBlobClientCreateOptions, BlobClientGetPropertiesResultHeaders,
    BlobClientSetMetadataOptions,
};
use leader_election::priority::Candidate;
use leader_election::priority::replaces;
use leader_election::{Error, Operation, Result};

use super::BlobLeaseStore;
use crate::clock::{Budget, date_of};
use crate::encoding::{percent_decode, percent_encode};
use crate::error::AzureFailure;

const META_ID: &str = "candidate_instance_id";
const META_PRIORITY: &str = "candidate_priority";
const META_EXPIRES: &str = "candidate_expires_at";

/// One read of the candidate blob.
struct Record {
    etag: Option<Etag>,
    /// The candidate, if the blob holds a readable, unexpired one.
    candidate: Option<Candidate>,
    /// The response's `Date`, Unix seconds.
    date: Option<u64>,
}

impl BlobLeaseStore {
    /// The name of the blob holding the candidate record of preferred leaders:
    /// `<blob>.candidate`, in the lease blob's container.
    #[must_use]
    pub fn candidate_blob_name(&self) -> String {
        format!("{}.candidate", self.blob_name)
    }

    fn candidate_blob(&self) -> BlobClient {
        self.container.blob_client(&self.candidate_blob_name())
    }

    /// Reads the candidate blob; `None` when it (or the container) does not exist.
    async fn read_candidate(
        &self,
        budget: &Budget,
        blob: &BlobClient,
        operation: Operation,
    ) -> Result<Option<Record>> {
        let response = match self.send(budget, blob.get_properties(None)).await {
            Ok(response) => response,
            Err(f) if f.status() == Some(404) => return Ok(None),
            Err(f) => return Err(f.into_error(operation, false)),
        };
        let invalid = |what: &str| {
            Error::invalid_data(
                operation,
                format!("unreadable {what} in the candidate blob's properties"),
            )
        };
        let etag = response.etag().map_err(|_| invalid("ETag"))?;
        let metadata: HashMap<String, String> = response
            .metadata()
            .map_err(|_| invalid("metadata"))?
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        let date = date_of(response.headers());
        // A record that cannot be read (written by hand) counts as none: announcements
        // replace it.
        let candidate = (|| {
            let expires: u64 = metadata.get(META_EXPIRES)?.trim().parse().ok()?;
            if date? >= expires {
                return None;
            }
            let priority = metadata.get(META_PRIORITY)?.trim().parse().ok()?;
            let id = percent_decode(metadata.get(META_ID)?)?;
            Some(Candidate::new(id, priority))
        })();
        Ok(Some(Record {
            etag,
            candidate,
            date,
        }))
    }

    pub(super) async fn announce(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        let op = Operation::AnnounceCandidate;
        let budget = Budget::new(self.request_timeout);
        let blob = self.candidate_blob();
        let record = self.read_candidate(&budget, &blob, op).await?;
        if let Some(recorded) = record.as_ref().and_then(|r| r.candidate.as_ref())
            && !replaces(candidate, recorded)
        {
            return Ok(());
        }
        // `Date` has one-second resolution and the write comes after the read: two seconds
        // more than the ttl, rounded up, so the record never expires before `ttl` from the
        // write.
        let now = record
            .as_ref()
            .and_then(|r| r.date)
            .or_else(|| budget.latest_date())
            .ok_or_else(|| Error::invalid_data(op, "the service sent no Date header"))?;
        let expires = now + ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0) + 2;
        let metadata = HashMap::from([
            (META_ID.to_owned(), percent_encode(&candidate.instance_id)),
            (META_PRIORITY.to_owned(), candidate.priority.to_string()),
            (META_EXPIRES.to_owned(), expires.to_string()),
        ]);
        let written = match record {
            Some(record) => {
                let options = BlobClientSetMetadataOptions {
                    if_match: record.etag,
                    ..Default::default()
                };
                self.send(&budget, blob.set_metadata(&metadata, Some(options)))
                    .await
                    .map(drop)
            }
            None => self.create_candidate(&budget, &blob, metadata).await,
        };
        match written {
            Ok(()) => Ok(()),
            // Another announcement came first: it stands until the next attempt.
            Err(f) if matches!(f.status(), Some(409 | 412)) => Ok(()),
            Err(f) => Err(f.into_error(op, true)),
        }
    }

    /// Creates the candidate blob with `metadata` (and the container, if allowed and missing).
    async fn create_candidate(
        &self,
        budget: &Budget,
        blob: &BlobClient,
        metadata: HashMap<String, String>,
    ) -> std::result::Result<(), AzureFailure> {
        let append = blob.append_blob_client();
        let create = || {
            let options = AppendBlobClientCreateOptions {
                if_none_match: Some(Etag::from("*")),
                metadata: Some(metadata.clone()),
                ..Default::default()
            };
            self.send(budget, append.create(Some(options)))
        };
        match create().await {
            Err(f) if f.is(404, "ContainerNotFound") && self.create_container => {
                match self.send(budget, self.container.create(None)).await {
                    Ok(_) => {}
                    Err(f) if f.status() == Some(409) => {}
                    Err(f) => return Err(f),
                }
                create().await.map(drop)
            }
            other => other.map(drop),
        }
    }

    pub(super) async fn strongest(&self) -> Result<Option<Candidate>> {
        let budget = Budget::new(self.request_timeout);
        let record = self
            .read_candidate(
                &budget,
                &self.candidate_blob(),
                Operation::StrongestCandidate,
            )
            .await?;
        Ok(record.and_then(|r| r.candidate))
    }
}
