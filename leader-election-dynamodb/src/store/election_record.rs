//! The election record ([`LeaseStore::read_record`](leader_election::LeaseStore::read_record)):
//! a sibling item, `<key>.record`, holding the record's bytes (`data`, binary) and a version
//! (`v`, 128 random bits, new in every write), and nothing else.
//!
//! The item is the lease item's neighbour, not part of it: nothing that reads or judges the
//! lease item (the follower's watch, the placeholder after a deletion, the candidate record)
//! ever reads this key, and the record is read and written only here. So the record outlives
//! every term, release and deletion of the lease item, and an operator deleting the record
//! item changes nothing about the lease (the record is then missing, as in a new election).
//!
//! A write is the same conditional `PutItem` as every write of the lease item
//! ([`put_item`](DynamoDbLeaseStore::put_item)): `#v = :expected` on the version expected, or
//! `attribute_not_exists(pk)` when no record is expected, on a service that `connect` proved
//! to enforce both (the proof is made first if it was not yet). A lost race is a
//! `ConditionalCheckFailedException`: `Ok(None)`, nothing changed. Every write has a version
//! of its own, the same bytes written again included.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use leader_election::store::{Record, RecordVersion, check_record_len};
use leader_election::{Error, LeaseStore, Operation, Result};

use super::{Budget, Condition, DynamoDbLeaseStore};
use crate::record::{Item, PK, VERSION, new_version};

/// The longest election record a store keeps, in bytes: 64 KiB (as the memory store).
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// The suffix of the record item's key: `<key>.record`.
pub(super) const RECORD_SUFFIX: &str = ".record";

/// The record item's data attribute.
const DATA: &str = "data";

impl DynamoDbLeaseStore {
    /// [`LeaseStore::read_record`]: one strongly consistent `GetItem` of `<key>.record`;
    /// `None` when it is missing.
    pub(super) async fn get_record(&self) -> Result<Option<Record>> {
        let operation = Operation::ReadRecord;
        let budget = Budget::new(self.request_timeout);
        let item = match self.get_item(&budget, &self.record_key).await {
            Ok(Some(item)) => item,
            Ok(None) => return Ok(None),
            Err(f) if f.is_missing_table() => return Err(self.no_table(operation)),
            Err(f) => return Err(f.into_error(operation, false)),
        };
        self.decode_record(&item).map(Some).map_err(|reason| {
            Error::invalid_data(
                operation,
                format!(
                    "the record item {} is not an election record of this crate: {reason}",
                    leader_election::backend::quoted(&self.record_key)
                ),
            )
        })
    }

    fn decode_record(&self, item: &Item) -> std::result::Result<Record, String> {
        let mut unexpected: Vec<_> = item
            .keys()
            .filter(|name| ![PK, VERSION, DATA].contains(&name.as_str()))
            .map(|name| format!("`{name}`"))
            .collect();
        if !unexpected.is_empty() {
            unexpected.sort();
            return Err(format!("unexpected attributes {}", unexpected.join(", ")));
        }
        let version = match item.get(VERSION) {
            Some(AttributeValue::S(version)) if !version.is_empty() => version.clone(),
            Some(_) => return Err("`v` is not a non-empty string (S)".to_owned()),
            None => return Err("no version attribute `v`".to_owned()),
        };
        let data = match item.get(DATA) {
            Some(AttributeValue::B(blob)) => blob.as_ref().to_vec(),
            Some(_) => return Err("`data` is not binary (B)".to_owned()),
            // DynamoDB refuses empty binary values: an empty record has no `data`.
            None => Vec::new(),
        };
        if data.len() > MAX_RECORD_LEN {
            return Err(format!(
                "it holds {} bytes, more than the {MAX_RECORD_LEN} this store writes",
                data.len()
            ));
        }
        Ok(Record::new(RecordVersion::new(version), data))
    }

    /// [`LeaseStore::write_record`]: one conditional `PutItem` of `<key>.record`, after the
    /// proof that the service enforces condition expressions (made once per store, as by
    /// `connect`).
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
        let condition = match expected {
            Some(version) => Condition::Version(version.as_str().to_owned()),
            None => Condition::Missing,
        };
        let version = new_version();
        let mut item = Item::new();
        item.insert(PK.to_owned(), AttributeValue::S(self.record_key.clone()));
        item.insert(VERSION.to_owned(), AttributeValue::S(version.clone()));
        if !data.is_empty() {
            item.insert(DATA.to_owned(), AttributeValue::B(Blob::new(data.to_vec())));
        }
        match self.put_item(&budget, &condition, item).await {
            Ok(()) => Ok(Some(RecordVersion::new(version))),
            Err(f) if f.is_missing_table() => Err(self.no_table(operation)),
            // Not at the version expected (or deleted meanwhile): nothing was written.
            Err(f) if f.is_conflict() => {
                tracing::debug!(
                    election = %self.election_name,
                    code = ?f.code,
                    "the election record was not at the version expected"
                );
                Ok(None)
            }
            Err(f) => Err(f.into_error(operation, true)),
        }
    }
}
