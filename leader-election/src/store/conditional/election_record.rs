//! The election record ([`LeaseStore::read_record`](crate::LeaseStore::read_record)): a sibling
//! object, `<key>.record`, holding the record's data and nothing else.
//!
//! The object is the lease object's neighbour, not part of it: nothing that reads or judges the
//! lease object (the follower's watch, the placeholder after a deletion, the candidate record)
//! ever reads this name, and the record is read and written only here. So the record outlives
//! every term, release and deletion of the lease object, and an operator deleting the record
//! object changes nothing about the lease (the record is then missing, as in a new election).
//!
//! A write is the same conditional write as every write of the lease object: on the version
//! expected, or on [`Condition::Missing`] when no record is expected, on a store that
//! `connect` proved to enforce both (the proof is made first if it was not yet). A lost race
//! is `Ok(None)`: nothing changed.

use super::{Budget, Condition, ConditionalObjects, ConditionalStore, Read};
use crate::LeaseStore;
use crate::backend::quoted;
use crate::error::{Error, Operation, Result};
use crate::store::{Record, RecordVersion, check_record_len, stored_record_too_long};

pub use crate::store::MAX_RECORD_LEN;

/// The suffix of the record object's name: `<key>.record`.
pub const RECORD_SUFFIX: &str = ".record";

impl<B: ConditionalObjects> ConditionalStore<B> {
    /// [`LeaseStore::read_record`]: one read of `<key>.record`; `None` when it is missing.
    pub(super) async fn get_record(&self) -> Result<Option<Record>> {
        let operation = Operation::ReadRecord;
        let budget = Budget::new(self.request_timeout);
        let (version, body) = match budget.run(self.backend.read(&self.record_key, None)).await {
            Ok(Read::Found(version, body)) => (version, body),
            Ok(Read::Missing | Read::Unchanged) => return Ok(None),
            Err(f) => return Err(self.fail(f, operation, false)),
        };
        let object = self.backend.terms().object;
        let data = self.backend.decode_data(body).map_err(|reason| {
            Error::invalid_data(
                operation,
                format!(
                    "the record {object} {} is not an election record of this store: {reason}",
                    quoted(&self.record_key)
                ),
            )
        })?;
        if data.len() > MAX_RECORD_LEN {
            return Err(stored_record_too_long(
                operation,
                format_args!("the record {object} {}", quoted(&self.record_key)),
                data.len() as u64,
                MAX_RECORD_LEN,
            ));
        }
        let version = self.backend.version_text(&version);
        if version.is_empty() {
            return Err(Error::invalid_data(
                operation,
                "the service sent no version for the record",
            ));
        }
        Ok(Some(Record::new(RecordVersion::new(version), data)))
    }

    /// [`LeaseStore::write_record`]: one conditional write of `<key>.record`, after the proof
    /// that the service enforces conditional writes (made once per store, as by `connect`).
    pub(super) async fn put_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        let operation = Operation::WriteRecord;
        check_record_len(data, MAX_RECORD_LEN)?;
        // A service that ignored the condition would let two writers both succeed: never
        // written on one that `connect` has not proven.
        self.connect().await?;
        let budget = Budget::new(self.request_timeout);
        let expected = expected.map(|v| self.backend.version_from_text(v.as_str()));
        let condition = match &expected {
            Some(version) => Condition::Version(version),
            None => Condition::Missing,
        };
        let body = self.backend.encode_data(data);
        match budget
            .run(self.backend.write(&self.record_key, condition, body))
            .await
        {
            Ok(version) => Ok(Some(RecordVersion::new(
                self.backend.version_text(&version),
            ))),
            // Not at the version expected, a racing conditional write, or deleted meanwhile:
            // nothing was written.
            Err(f) if f.lost() => {
                tracing::debug!(
                    election = %self.election_name,
                    error = %f.message,
                    "the election record was not at the version expected"
                );
                Ok(None)
            }
            Err(f) => Err(self.fail(f, operation, true)),
        }
    }
}
