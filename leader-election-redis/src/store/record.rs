//! The election record: `{key}:record`, a hash `{version, data}` without expiry, read and
//! written by one script each (compare-and-set on the version, minted from the server's
//! `TIME`), on one key of the election's slot, so that it works on a cluster too.

use fred::types::Value;
use leader_election::store::{Record, RecordVersion, check_record_len};
use leader_election::{Operation, Result};

use super::{MAX_RECORD_LEN, RedisLeaseStore};
use crate::scripts::{self, Script};

impl RedisLeaseStore {
    /// The Redis key holding the election's [record](leader_election::store::Record):
    /// `{key}:record`, a hash with the fields `version` (decimal digits, minted by the server as
    /// `max(previous + 1, server TIME in µs)`, so never given again, even after the key is
    /// deleted) and `data` (the bytes written), without expiry. No lease operation touches it:
    /// it outlives every term, release, `DEL {key}:lease` and forced election. Deleting it
    /// forgets the record; a value of another shape there is reported as
    /// [`Error::InvalidData`](leader_election::Error::InvalidData) and never overwritten.
    #[must_use]
    pub fn record_key(&self) -> &str {
        &self.inner.keys.record
    }

    pub(super) async fn read_election_record(&self) -> Result<Option<Record>> {
        let reply = self
            .run(Script::ReadRecord, &[&self.inner.keys.record], Vec::new())
            .await?;
        let Some((version, data)) = scripts::read_record_reply(reply)? else {
            return Ok(None);
        };
        Ok(Some(
            self.inner.highest_record_version.record(version, data),
        ))
    }

    /// The compare-and-set: one script, then, with
    /// [`min_replica_acks`](Self::with_min_replica_acks), `WAIT` for the replicas as after an
    /// acquisition (too few acknowledgements: an unknown outcome).
    pub(super) async fn write_election_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        let operation = Operation::WriteRecord;
        check_record_len(data, MAX_RECORD_LEN)?;
        let acks = self.before_write(operation).await?;
        let floor = self.inner.highest_record_version.get();
        let reply = self
            .run(
                Script::WriteRecord,
                &[&self.inner.keys.record],
                vec![
                    Value::from(if expected.is_some() { "1" } else { "0" }),
                    Value::from(expected.map_or("", RecordVersion::as_str)),
                    Value::Bytes(data.to_vec().into()),
                    Value::from(floor.to_string()),
                ],
            )
            .await?;
        let Some(version) = scripts::write_record_reply(reply)? else {
            return Ok(None);
        };
        let version = self.inner.highest_record_version.version(version);
        self.await_replicas(operation, acks).await?;
        Ok(Some(version))
    }
}
