//! The election record ([`LeaseStore::read_record`](leader_election::LeaseStore::read_record)):
//! a sibling object, `<key>.record`, holding the record's bytes as they were written, and
//! nothing else. Its version is the object's ETag.
//!
//! The object is the lease object's neighbour, not part of it: nothing that reads or judges the
//! lease object (the follower's watch, the placeholder after a deletion, the candidate record)
//! ever reads this key, and the record is read and written only here. So the record outlives
//! every term, release and deletion of the lease object, and an operator deleting the record
//! object changes nothing about the lease (the record is then missing, as in a new election).
//!
//! A write is the same conditional `PUT` as every write of the lease object ([`put_typed`]):
//! `If-Match` on the version expected, or `If-None-Match: *` when no record is expected, on a
//! store that `connect` proved to enforce both (the proof is made first if it was not yet). A
//! lost race is a 412 (or a 409 `ConditionalRequestConflict`, or a 404 for an `If-Match` on a
//! record deleted meanwhile): `Ok(None)`, nothing changed.
//!
//! **Identical bytes, identical version.** S3's ETag of a simple upload is the MD5 of the body,
//! so a record written again with the same bytes gets the same ETag back (the lease object
//! avoids that with a nonce, since its followers need every renewal to look new). The record
//! needs no nonce: the [`RecordVersion`] contract is that a version is never given to *another
//! content* of the record, and an ETag that is the MD5 of the content cannot be. A write that
//! expects version `v` therefore succeeds only while the record holds exactly the bytes the
//! writer read at `v`: if others wrote in between and the record came back to the same bytes,
//! the write is made on the very content it was computed from, which is what a compare-and-set
//! on the content protects. What it does not give is "nobody wrote since" in the literal sense
//! (an `A → B → A` sequence is not seen), nor a new version for a write that changes nothing;
//! a writer that needs either must put something that changes into its data (its id and a
//! counter, say), as the core's contract asks anyway ("its data should say who wrote it").
//! (With SSE-KMS the ETag is not the MD5 and changes with every write, which is fine too.)
//!
//! [`put_typed`]: S3LeaseStore::put_typed

use leader_election::store::{Record, RecordVersion, check_record_len};
use leader_election::{Error, LeaseStore, Operation, Result};

use super::{Budget, Condition, S3LeaseStore};
use crate::error::S3Error;

/// The longest election record a store keeps, in bytes: 64 KiB (as the memory store).
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// The suffix of the record object's key: `<key>.record`.
pub(super) const RECORD_SUFFIX: &str = ".record";

impl S3LeaseStore {
    /// [`LeaseStore::read_record`]: one `GET` of `<key>.record` (S3 reads are strongly
    /// consistent); `None` when it is missing.
    pub(super) async fn get_record(&self) -> Result<Option<Record>> {
        let operation = Operation::ReadRecord;
        let budget = Budget::new(self.request_timeout);
        let client = self.client_ref().await;
        let get = client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.record_key);
        let output = match self.send(&budget, get.send()).await {
            Ok(output) => output,
            // Missing (or its bucket missing, as for the lease object): no record yet.
            Err(f) if f.status() == Some(404) => return Ok(None),
            Err(f) => return Err(f.into_error(operation, false)),
        };
        let etag = output
            .e_tag()
            .filter(|etag| !etag.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Error::invalid_data(operation, "S3 sent no ETag for the record"))?;
        // Written by hand, far longer than this store writes: refused before it is read.
        if let Some(len) = output.content_length()
            && usize::try_from(len).map_or(true, |len| len > MAX_RECORD_LEN)
        {
            return Err(Error::invalid_data(
                operation,
                format!(
                    "the record object {} holds {len} bytes, more than the {MAX_RECORD_LEN} \
                     this store writes",
                    leader_election::backend::quoted(&self.record_key)
                ),
            ));
        }
        let data = match tokio::time::timeout(budget.left(), output.body.collect()).await {
            Ok(Ok(body)) => body.into_bytes().to_vec(),
            Ok(Err(err)) => {
                return Err(Error::backend(
                    operation,
                    true,
                    S3Error::new(format!("reading the record object failed: {err}")),
                ));
            }
            Err(_) => {
                return Err(Error::backend(
                    operation,
                    true,
                    S3Error::new(format!(
                        "reading the record object took longer than {:?}",
                        budget.total
                    )),
                ));
            }
        };
        if data.len() > MAX_RECORD_LEN {
            return Err(Error::invalid_data(
                operation,
                format!(
                    "the record object holds {} bytes, more than the {MAX_RECORD_LEN} this store \
                     writes",
                    data.len()
                ),
            ));
        }
        Ok(Some(Record::new(RecordVersion::new(etag), data)))
    }

    /// [`LeaseStore::write_record`]: one conditional `PUT` of `<key>.record`, after the proof
    /// that the service enforces conditional writes (made once per store, as by `connect`).
    pub(super) async fn put_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        let operation = Operation::WriteRecord;
        check_record_len(data, MAX_RECORD_LEN)?;
        // A store that ignored the condition would let two writers both succeed: never
        // written on one that `connect` has not proven.
        self.connect().await?;
        let budget = Budget::new(self.request_timeout);
        let condition = match expected {
            Some(version) => Condition::Version(version.as_str().to_owned()),
            None => Condition::Missing,
        };
        match self
            .put_typed(
                &budget,
                &self.record_key,
                &condition,
                data.to_vec(),
                "application/octet-stream",
            )
            .await
        {
            Ok(etag) if etag.is_empty() => Err(Error::outcome_unknown(
                operation,
                S3Error::new("S3 accepted the record but sent an empty ETag"),
            )),
            Ok(etag) => Ok(Some(RecordVersion::new(etag))),
            Err(f) if f.status() == Some(404) && f.code.as_deref() == Some("NoSuchBucket") => {
                Err(self.no_bucket(operation))
            }
            // Not at the version expected (412), a racing conditional write (409), or deleted
            // meanwhile (404 on `If-Match`): nothing was written.
            Err(f) if f.is_conflict() || f.status() == Some(404) => {
                tracing::debug!(
                    election = %self.election_name,
                    status = ?f.status(),
                    "the election record was not at the version expected"
                );
                Ok(None)
            }
            Err(f) => Err(f.into_error(operation, true)),
        }
    }
}
