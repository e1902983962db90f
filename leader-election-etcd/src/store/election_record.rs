//! The election's record ([`LeaseStore::read_record`], [`LeaseStore::write_record`]):
//! `<key>/record`, attached to no etcd lease, read linearizably and written by one
//! transaction that compares the version expected. No operation of the lease (acquire, renew,
//! release, the watch, the keys an acquisition reads) touches it, so it outlives every term.
//!
//! A version is `<cluster id>:<mod revision>:<write id>` (the cluster id in hex, the record
//! key's mod revision in decimal, the write id in 16 hex digits):
//!
//! - the **mod revision** is what the transaction compares, and is never given to two writes
//!   in one cluster's history;
//! - but a cluster that lost its data (see `identity`) starts its revisions again near 1, and
//!   keeps its cluster id when a single member restarts on an empty data directory or a
//!   snapshot is restored without `--bump-revision`: a record written there may reach the
//!   mod revision of a version read from the old cluster, with other content. So each write
//!   draws a random **write id**, kept at the head of the value (see
//!   [`encode_election_record`]), and a write compares it too: a write whose expected version
//!   was read from the old cluster fails, since the new cluster's record carries another
//!   write id. (A record restored from a snapshot with the very write id and mod revision
//!   read is the content its reader read: a write expecting it is right to succeed.)
//! - the **cluster id** refuses, before anything is sent, a version read from a cluster other
//!   than the one this store was last answered by (a new cluster id is a data loss too).

use etcd_client::ResponseHeader;
use leader_election::store::check_record_len;

use super::*;
use crate::record::{decode_election_record, election_record_bounds, encode_election_record};

/// What a [`RecordVersion`] this store gives says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Version {
    /// The cluster that answered the read or the write; 0 when its reply did not say.
    cluster_id: u64,
    /// The record key's mod revision.
    mod_revision: i64,
    /// The write's random id, at the head of the record's value.
    write_id: u64,
}

impl Version {
    fn encode(self) -> RecordVersion {
        RecordVersion::new(format!(
            "{:x}:{}:{:016x}",
            self.cluster_id, self.mod_revision, self.write_id
        ))
    }

    /// The version `version` says, or `None` if this store never gives it (only the form
    /// [`encode`](Self::encode) writes: versions are compared as strings).
    fn parse(version: &RecordVersion) -> Option<Self> {
        let mut parts = version.as_str().split(':');
        let (cluster_id, mod_revision, write_id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let parsed = Self {
            cluster_id: u64::from_str_radix(cluster_id, 16).ok()?,
            mod_revision: mod_revision.parse().ok().filter(|&r: &i64| r > 0)?,
            write_id: u64::from_str_radix(write_id, 16).ok()?,
        };
        (parsed.encode() == *version).then_some(parsed)
    }
}

fn cluster_id(header: Option<&ResponseHeader>) -> u64 {
    header.map_or(0, ResponseHeader::cluster_id)
}

impl EtcdLeaseStore {
    /// A linearizable read of the record key.
    pub(super) async fn read_election_record(&self) -> Result<Option<Record>> {
        let key = self.inner.record_key.as_str();
        let response = self
            .get(key)
            .await
            .map_err(|err| map_etcd(Operation::ReadRecord, false, err))?;
        let Some(kv) = response.kvs().first() else {
            return Ok(None);
        };
        let Some((write_id, data)) = decode_election_record(kv.value()) else {
            return Err(Error::invalid_data(
                Operation::ReadRecord,
                format!(
                    "the record key {} holds a value this store did not write",
                    leader_election::backend::quoted(key)
                ),
            ));
        };
        let version = Version {
            cluster_id: cluster_id(response.header()),
            mod_revision: kv.mod_revision(),
            write_id,
        };
        Ok(Some(Record::new(version.encode(), data.to_vec())))
    }

    /// Writes `data` as the record, in one transaction, only if the record is still at
    /// `expected` (its mod revision and write id; see the module) or, for `None`, absent. The
    /// put carries no lease.
    pub(super) async fn write_election_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        check_record_len(data, MAX_RECORD_LEN)?;
        let key = self.inner.record_key.as_str();
        let unchanged = match expected {
            None => vec![Compare::create_revision(key, CompareOp::Equal, 0)],
            Some(expected) => {
                // A version this store never gives: the record is not at it.
                let Some(version) = Version::parse(expected) else {
                    return Ok(None);
                };
                // Read from another cluster than the one answering now (one that lost its
                // data, or another altogether): the record is not at it.
                if version.cluster_id != 0
                    && self
                        .inner
                        .identity
                        .cluster_id()
                        .is_some_and(|id| id != version.cluster_id)
                {
                    return Ok(None);
                }
                // The mod revision, and the write id at the head of the value, which the
                // same mod revision in a cluster that lost its data would not carry.
                let (low, high) = election_record_bounds(version.write_id);
                vec![
                    Compare::mod_revision(key, CompareOp::Equal, version.mod_revision),
                    Compare::value(key, CompareOp::Greater, low),
                    Compare::value(key, CompareOp::Less, high),
                ]
            }
        };
        let write_id = fastrand::u64(..);
        let txn = Txn::new().when(unchanged).and_then([TxnOp::put(
            key,
            encode_election_record(write_id, data),
            None,
        )]);
        let response = self
            .txn(txn)
            .await
            .map_err(|err| map_etcd(Operation::WriteRecord, true, err))?;
        if !response.succeeded() {
            return Ok(None);
        }
        // The transaction's revision is the mod revision of the key it put.
        let mod_revision = response.header().map_or(0, ResponseHeader::revision).max(0);
        if mod_revision == 0 {
            return Err(Error::invalid_data(
                Operation::WriteRecord,
                "etcd confirmed the record's write without its revision: read the record again",
            ));
        }
        Ok(Some(
            Version {
                cluster_id: cluster_id(response.header()),
                mod_revision,
                write_id,
            }
            .encode(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_name_the_cluster_the_revision_and_the_write() {
        let version = Version {
            cluster_id: 0xcdf8_1819_4e3a_8c32,
            mod_revision: 57,
            write_id: 0xab,
        };
        assert_eq!(
            version.encode().as_str(),
            "cdf818194e3a8c32:57:00000000000000ab"
        );
        assert_eq!(Version::parse(&version.encode()), Some(version));
        for version in [
            Version {
                cluster_id: 0,
                mod_revision: 1,
                write_id: 0,
            },
            Version {
                cluster_id: u64::MAX,
                mod_revision: i64::MAX,
                write_id: u64::MAX,
            },
        ] {
            assert_eq!(Version::parse(&version.encode()), Some(version));
        }
        // The same revision after a data loss, written by another write: another version.
        assert_ne!(
            version.encode(),
            Version {
                write_id: 0xac,
                ..version
            }
            .encode()
        );
    }

    #[test]
    fn versions_this_store_never_gives_are_not_parsed() {
        for version in [
            "",
            "57",
            "c:57",
            "c:57:00000000000000ab:1",
            "c:0:00000000000000ab",
            "c:-5:00000000000000ab",
            "c:057:00000000000000ab",
            "C:57:00000000000000ab",
            "c:57:ab",
            "c:57:00000000000000AB",
            "c:57:+0000000000000ab",
            "x:57:00000000000000ab",
            "c:57:000000000000000000ab",
            "c:99999999999999999999:00000000000000ab",
        ] {
            assert_eq!(
                Version::parse(&RecordVersion::new(version)),
                None,
                "{version:?}"
            );
        }
    }
}
