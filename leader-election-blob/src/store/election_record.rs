//! The election record ([`LeaseStore::read_record`](leader_election::LeaseStore::read_record)):
//! a sibling block blob, `<blob>.record` in the lease blob's container, whose content is the
//! record's bytes as they were written. Its version is the blob's ETag, which Azure changes with
//! every write (a new ETag even for the same bytes), so a version is never given to another
//! content.
//!
//! The blob is the lease blob's neighbour, not part of it: nothing that reads or judges the
//! lease blob (its lease, its metadata, the touch recorded after a break or a deletion, the
//! candidate blob) ever reads this name, and the record is read and written only here. So the
//! record outlives every term, release, break and deletion of the lease blob, and an operator
//! deleting the record blob changes nothing about the lease (the record is then missing, as in a
//! new election). Nobody leases the record blob.
//!
//! A read is one Get Blob (Azure's reads are strongly consistent). A write is one Put Blob with
//! `If-Match` on the version expected, or `If-None-Match: *` when no record is expected, as the
//! lease blob's own conditional writes (its metadata written on the ETag read, its creation with
//! `If-None-Match: *`): the service checks the condition and writes in one step. A lost race is
//! a 412 `ConditionNotMet`, a 409 `BlobAlreadyExists` for a creation that found the blob, or a
//! 404 for an `If-Match` on a blob deleted meanwhile: `Ok(None)`, nothing changed. A 412 about
//! a lease (an operator leased the record blob) is an error, not a lost race, since retrying on
//! a fresh read could never succeed.

use std::future::Future;
use std::num::NonZero;

use azure_core::error::ErrorKind;
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::{Etag, RequestContent};
use azure_storage_blob::BlobClient;
use azure_storage_blob::models::{BlobClientDownloadOptions, BlockBlobClientUploadOptions};
use leader_election::backend::quoted;
use leader_election::store::{Record, RecordVersion, check_record_len, stored_record_too_long};
use leader_election::{Error, Operation, Result};
use tokio::time::Instant;

use super::BlobLeaseStore;
use crate::clock::Budget;
use crate::error::{AzureFailure, BlobError};

/// The longest election record a store keeps, in bytes: 64 KiB (as the memory store).
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// The header of a ranged response that gives the whole blob's length.
const CONTENT_RANGE: HeaderName = HeaderName::from_static("content-range");

/// Azure's longest blob name, in characters.
const MAX_BLOB_NAME_CHARS: usize = 1024;

impl BlobLeaseStore {
    /// The name of the blob holding the election's
    /// [record](leader_election::LeaseStore::read_record): `<blob>.record`, in the lease
    /// blob's container. It lives beside the lease blob and outlives every term and release
    /// (and a break or deletion of the lease blob).
    #[must_use]
    pub fn record_blob_name(&self) -> String {
        format!("{}.record", self.blob_name)
    }

    /// The client of the record blob, refused (before any request) when the lease blob's name
    /// leaves no room for the suffix.
    fn record_blob(&self, operation: Operation) -> Result<BlobClient> {
        let name = self.record_blob_name();
        if name.chars().count() > MAX_BLOB_NAME_CHARS {
            return Err(Error::backend(
                operation,
                false,
                BlobError::new(format!(
                    "the record blob's name ({} and `.record`) is longer than Azure's \
                     {MAX_BLOB_NAME_CHARS} characters: election records need a blob name of \
                     at most {} characters",
                    quoted(&self.blob_name),
                    MAX_BLOB_NAME_CHARS - ".record".len()
                )),
            ));
        }
        Ok(self.container.blob_client(&name))
    }

    /// Sends one request of the SDK's managed transfers (which answer no plain `Response`)
    /// with what is left of `budget`.
    async fn send_transfer<T>(
        &self,
        budget: &Budget,
        request: impl Future<Output = azure_core::Result<T>>,
    ) -> std::result::Result<T, AzureFailure> {
        let left = budget.left();
        if left.is_zero() {
            return Err(AzureFailure::out_of_time(budget.total()));
        }
        let started = Instant::now();
        match tokio::time::timeout(left, request).await {
            Ok(Ok(output)) => {
                budget.saw(&Headers::new(), started.elapsed());
                Ok(output)
            }
            Ok(Err(err)) => {
                if let ErrorKind::HttpResponse {
                    raw_response: Some(raw),
                    ..
                } = err.kind()
                {
                    budget.saw(raw.headers(), started.elapsed());
                }
                Err(AzureFailure::from_sdk(&err))
            }
            Err(_) => Err(AzureFailure::timed_out(budget.total())),
        }
    }

    /// [`LeaseStore::read_record`](leader_election::LeaseStore::read_record): one Get Blob of
    /// the record blob; `None` when it (or the container) is missing.
    pub(super) async fn get_record(&self) -> Result<Option<Record>> {
        let operation = Operation::ReadRecord;
        let blob = self.record_blob(operation)?;
        let budget = Budget::new(self.request_timeout);
        // One request: the first (and only) part covers every record this store writes and one
        // byte more, so that a longer blob (written by hand) shows without being read whole.
        let options = BlobClientDownloadOptions {
            parallel: NonZero::new(1),
            partition_size: NonZero::new(MAX_RECORD_LEN + 1),
            ..Default::default()
        };
        let download = match self
            .send_transfer(&budget, blob.download(Some(options)))
            .await
        {
            Ok(download) => download,
            Err(f) if f.status() == Some(404) => return Ok(None),
            Err(f) => return Err(f.into_error(operation, false)),
        };
        let etag = download
            .properties
            .etag
            .as_ref()
            .map(ToString::to_string)
            .filter(|etag| !etag.is_empty())
            .ok_or_else(|| Error::invalid_data(operation, "Azure sent no ETag for the record"))?;
        let too_long = |len: u64| {
            stored_record_too_long(
                operation,
                format_args!("the record blob {}", quoted(&self.record_blob_name())),
                len,
                MAX_RECORD_LEN,
            )
        };
        if let Some(total) = blob_length(&download.headers, download.properties.content_length)
            && total > MAX_RECORD_LEN as u64
        {
            return Err(too_long(total));
        }
        let data = match tokio::time::timeout(budget.left(), download.body.collect()).await {
            Ok(Ok(body)) => body.to_vec(),
            Ok(Err(err)) => {
                return Err(AzureFailure::from_sdk(&err).into_error(operation, false));
            }
            Err(_) => {
                return Err(AzureFailure::timed_out(budget.total()).into_error(operation, false));
            }
        };
        if data.len() > MAX_RECORD_LEN {
            return Err(too_long(data.len() as u64));
        }
        Ok(Some(Record::new(RecordVersion::new(etag), data)))
    }

    /// [`LeaseStore::write_record`](leader_election::LeaseStore::write_record): one Put Blob of
    /// the record blob, conditional on `expected` (and the container created first when it is
    /// missing and may be).
    pub(super) async fn put_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        let operation = Operation::WriteRecord;
        check_record_len(data, MAX_RECORD_LEN)?;
        let blob = self.record_blob(operation)?;
        let budget = Budget::new(self.request_timeout);
        let body = data.to_vec();
        let block_blob = blob.block_blob_client();
        let upload = || {
            let (if_match, if_none_match) = match expected {
                Some(version) => (Some(Etag::from(version.as_str())), None),
                None => (None, Some(Etag::from("*"))),
            };
            let options = BlockBlobClientUploadOptions {
                if_match,
                if_none_match,
                blob_content_type: Some("application/octet-stream".to_owned()),
                parallel: NonZero::new(1),
                ..Default::default()
            };
            self.send_transfer(
                &budget,
                block_blob.upload(RequestContent::from(body.clone()), Some(options)),
            )
        };
        let mut written = upload().await;
        if let Err(f) = &written
            && f.is(404, "ContainerNotFound")
            && expected.is_none()
        {
            if !self.create_container {
                return Err(Error::backend(
                    operation,
                    false,
                    BlobError::new(format!(
                        "the container {} does not exist and create_container_if_not_exists is \
                         off",
                        quoted(&self.container_name)
                    )),
                ));
            }
            match self.send(&budget, self.container.create(None)).await {
                Ok(_) => {
                    tracing::info!(container = %self.container_name, "created the container");
                }
                Err(f) if f.status() == Some(409) => {}
                Err(f) => return Err(f.into_error(operation, false)),
            }
            if !budget.room_for_write() {
                return Err(Error::backend(
                    operation,
                    true,
                    BlobError::new(format!(
                        "the operation_timeout of {:?} ran out before the record could be \
                         written; nothing was written",
                        budget.total()
                    )),
                ));
            }
            written = upload().await;
        }
        match written {
            Ok(result) => match result.etag.map(String::from).filter(|e| !e.is_empty()) {
                Some(etag) => Ok(Some(RecordVersion::new(etag))),
                None => Err(Error::outcome_unknown(
                    operation,
                    BlobError::new("Azure accepted the record but sent no ETag"),
                )),
            },
            Err(f) if lost_race(&f, expected.is_some()) => {
                tracing::debug!(
                    election = %self.election_name,
                    status = ?f.status(),
                    code = ?f.code,
                    "the election record was not at the version expected"
                );
                Ok(None)
            }
            Err(f) => Err(f.into_error(operation, true)),
        }
    }
}

/// Whether a conditional Put Blob failed because the record was not as expected: a 412 (the
/// ETag moved on), a 409 (a creation that found the blob, as Azure answers `If-None-Match: *`
/// on an existing blob, or a racing creation), or, for a write expecting a version
/// (`if_match`), a 404 (the blob or its container deleted meanwhile). Not a refusal about a
/// lease on the record blob (`LeaseIdMissing` and the like), which no fresh read would get
/// past.
fn lost_race(failure: &AzureFailure, if_match: bool) -> bool {
    let lease = failure
        .code
        .as_deref()
        .is_some_and(|code| code.starts_with("Lease"));
    let race = match failure.status() {
        Some(409 | 412) => true,
        Some(404) => if_match,
        _ => false,
    };
    race && !lease
}

/// The whole blob's length, from a (possibly ranged) Get Blob response: the total of its
/// `Content-Range` (`bytes 0-65536/123456`), else its `Content-Length`.
fn blob_length(headers: &Headers, content_length: Option<u64>) -> Option<u64> {
    headers
        .get_optional_str(&CONTENT_RANGE)
        .and_then(|range| range.rsplit_once('/'))
        .and_then(|(_, total)| total.trim().parse().ok())
        .or(content_length)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_is_the_content_range_total() {
        let mut headers = Headers::new();
        assert_eq!(blob_length(&headers, Some(5)), Some(5));
        headers.insert(CONTENT_RANGE, "bytes 0-65536/123456");
        assert_eq!(blob_length(&headers, Some(65537)), Some(123_456));
        headers.insert(CONTENT_RANGE, "bytes */x");
        assert_eq!(blob_length(&headers, Some(3)), Some(3));
    }
}
