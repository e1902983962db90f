//! The election record: one more row of the lease table, keyed by the election's name, the unit
//! separator (U+001F) and `record`, with the data in `metadata` and the version in `token`
//! (`holder`, `lease_id` and `expires_at` NULL). Each read or write is one statement (see
//! [`RecordSql`](crate::sql::RecordSql)). No schema change and no privilege beyond the lease
//! rows' (`SELECT`, `INSERT`, `UPDATE`).

use leader_election::store::table::record_data;
use leader_election::store::{Record, RecordVersion, check_record_len};
use leader_election::{Operation, Result};
use tokio_postgres::types::{ToSql, Type};

use super::{INT8, MAX_RECORD_LEN, PostgresLeaseStore, TEXT, failed};

impl PostgresLeaseStore {
    /// The key of the election's record row in the table: the election's name, the unit
    /// separator (U+001F, `chr(31)` in SQL) and `record`; in SQL, for the election `billing`,
    /// `'billing' || chr(31) || 'record'`. Its `metadata` column holds the
    /// [record](leader_election::store::Record)'s data and its `token` column the version;
    /// `holder`, `lease_id` and `expires_at` are NULL. No lease statement touches it, so it
    /// outlives every term, release, forced election and
    /// `DELETE FROM <table> WHERE election = '<name>'`.
    #[must_use]
    pub fn record_key(&self) -> &str {
        &self.inner.record
    }

    pub(super) async fn read_election_record(&self) -> Result<Option<Record>> {
        let op = Operation::ReadRecord;
        let client = self.client(op).await?;
        let row = client
            .query_typed_opt(&self.inner.sql.record.read, &[(&self.inner.record, TEXT)])
            .await
            .map_err(|e| failed(op, e))?;
        let Some(row) = row else { return Ok(None) };
        let version: i64 = row.try_get(0).map_err(|e| failed(op, e))?;
        let data = record_data(op, row.try_get(1).map_err(|e| failed(op, e))?)?;
        Ok(Some(
            self.inner.highest_record_version.record(version, data),
        ))
    }

    /// The compare-and-set: an `INSERT … ON CONFLICT DO NOTHING` when no record is expected,
    /// an `UPDATE … WHERE token = expected` otherwise; one statement either way.
    pub(super) async fn write_election_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        let op = Operation::WriteRecord;
        check_record_len(data, MAX_RECORD_LEN)?;
        let floor = self.inner.highest_record_version.get();
        let client = self.client(op).await?;
        let row = match expected.map(RecordVersion::as_str) {
            None => {
                let params: [(&(dyn ToSql + Sync), Type); 3] = [
                    (&self.inner.record, TEXT),
                    (&data, Type::BYTEA),
                    (&floor, INT8),
                ];
                client
                    .query_typed_opt(&self.inner.sql.record.insert, &params)
                    .await
            }
            Some(expected) => {
                let params: [(&(dyn ToSql + Sync), Type); 4] = [
                    (&self.inner.record, TEXT),
                    (&data, Type::BYTEA),
                    (&floor, INT8),
                    (&expected, TEXT),
                ];
                client
                    .query_typed_opt(&self.inner.sql.record.update, &params)
                    .await
            }
        }
        .map_err(|e| failed(op, e))?;
        let Some(row) = row else { return Ok(None) };
        let version: i64 = row.try_get(0).map_err(|e| failed(op, e))?;
        Ok(Some(self.inner.highest_record_version.version(version)))
    }
}
