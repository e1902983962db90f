//! [`MysqlLeaseStore`]: leases in a table, expiry on the server's clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use leader_election::priority::Candidate;
use leader_election::store::table::{self, micros, record_data, stored_token, token_from_stored};
use leader_election::store::{
    AcquireOutcome, Capabilities, Highest, Lease, LeaseRequest, Record, RecordVersion,
    RenewOutcome, check_record_len,
};
use leader_election::{BuildError, Error, LeaderInfo, LeaseStore, Operation, Result};
use mysql_async::prelude::Queryable;
use mysql_async::{Pool, Row};
use tokio::sync::OnceCell;

use crate::error::{connect_failed, failed, server_code};
use crate::names::{row_key, validate_election, validate_table};
use crate::sql::{self, Holder, Keys, Sql};

/// The default table: `leader_election_leases`.
pub const DEFAULT_TABLE: &str = "leader_election_leases";

/// The default election name: `leader-election`.
pub const DEFAULT_ELECTION: &str = "leader-election";

/// The longest leader metadata a store publishes, in bytes: 64 KiB, in the `metadata` column
/// of the lease row.
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// The longest [election record](leader_election::store::Record) a store keeps, in bytes:
/// 64 KiB, in the `metadata` column of the election's record row (see
/// [`MysqlLeaseStore::record_key`]).
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// A [`LeaseStore`] keeping each election in rows of a MySQL or MariaDB table (InnoDB).
///
/// The lease row holds the holder's instance id and lease id, the fencing token and the expiry
/// in µs since the epoch, computed with the server's clock (`UTC_TIMESTAMP(6)`), never the
/// client's. Acquire, renew and release are each one round trip: a batch of statements run as
/// one transaction, whose conditions are checked on the rows it has locked, so only the holder
/// renews or releases.
///
/// MySQL has no notification channel: a follower sleeps until the expiry the server reported,
/// so a graceful stop hands over when the stopped leader's lease would have run out (the
/// release frees the row at once, but nobody hears of it), and a follower costs about one
/// request per lease.
///
/// The table is created on the first [`connect`](LeaseStore::connect) only if it is missing;
/// an account without `CREATE` works on a table an owner made (see
/// [`setup_sql`](Self::setup_sql)). `connect` checks that the account may `SELECT`, `INSERT`
/// and `UPDATE` it, changing nothing.
///
/// Next to the lease row, each election has a guard row (see [`guard_key`](Self::guard_key))
/// written with the same lease by every acquisition and renewal and cleared only by a release.
/// A lease row deleted or overwritten by anybody but its holder (an operator, a script) leaves
/// the guard, so no contender acquires before the lease it records could have expired:
/// [`try_acquire`](LeaseStore::try_acquire) answers [`AcquireOutcome::Withheld`] with
/// [`WithholdReason::RecordTouched`](leader_election::store::WithholdReason::RecordTouched) until then. To force an election at once when the holder is
/// known to be gone, an operator runs [`force_election_sql`](Self::force_election_sql).
///
/// Deleting the guard too (`DELETE FROM` or `TRUNCATE` the whole table) leaves no record at
/// all: a contender that saw the lease held and finds no lease row answers
/// [`AcquireOutcome::Withheld`] with [`WithholdReason::RecordVanished`](leader_election::store::WithholdReason::RecordVanished) (see
/// [`LeaseRequest::expects_record`]), and the election waits one lease from then before it
/// takes the lease.
///
/// Tokens are `max(previous token + 1, server time in µs, highest token this store has seen +
/// 1)`, the previous token being the larger of the lease row's and the guard's: they keep
/// growing if an operator deletes the lease row, and if both rows go, as long as the server's
/// clock does not step back behind the last token, or this process saw it.
///
/// Leader metadata is the lease row's `metadata` column, set by the same batch that acquires or
/// renews the lease (at most [`MAX_METADATA_LEN`], 64 KiB). Preferred leaders use a candidate
/// row and the election's [record](leader_election::store::Record) a record row of the same
/// table: no other table, and no privilege beyond `SELECT`, `INSERT` and `UPDATE`.
///
/// Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct MysqlLeaseStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    table: String,
    election: String,
    keys: Keys,
    sql: Sql,
    /// Set by the first successful `connect`, once the table is known to exist and be usable.
    prepared: OnceCell<()>,
    /// The highest token this store has seen (minted, or held by another): the floor of the
    /// tokens it mints, so that a table emptied on a server whose clock came back behind the
    /// last token still gives a greater one.
    highest_token: Highest<i64>,
    /// The highest record version this store has seen (written or read): the floor of the
    /// versions it mints, as `highest_token` is for tokens.
    highest_record_version: Highest<i64>,
}

impl fmt::Debug for MysqlLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the pool's options: they hold the password.
        f.debug_struct("MysqlLeaseStore")
            .field("table", &self.inner.table)
            .field("election", &self.inner.election)
            .finish_non_exhaustive()
    }
}

/// One more than `highest`: the least token or version a write may mint. At the largest
/// `BIGINT` there is none, and the write fails rather than mint a smaller one.
fn floor_above(operation: Operation, highest: i64) -> Result<i64> {
    highest.checked_add(1).ok_or_else(|| {
        Error::invalid_data(
            operation,
            "the highest token or version seen is the largest BIGINT: none can follow it",
        )
    })
}

/// Column `index` of `row`: `None` for SQL NULL or a missing column, an error for a value that
/// is not a `T`.
fn column<T: mysql_async::prelude::FromValue>(
    operation: Operation,
    row: &Row,
    index: usize,
) -> Result<Option<T>> {
    match row.get_opt::<Option<T>, usize>(index) {
        None => Ok(None),
        Some(Ok(value)) => Ok(value),
        Some(Err(e)) => Err(Error::invalid_data(
            operation,
            format!("column {index} of the answer: {e}"),
        )),
    }
}

/// Text from a binary column: an instance id written by this library is UTF-8; anything else
/// (an operator's bytes) is shown with replacement characters rather than refused.
fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

// === impl MysqlLeaseStore ===

impl MysqlLeaseStore {
    /// A store for the election `election` in `table`, using `pool` (a pool the caller made:
    /// its connections should not be shared with statements that leave transactions open).
    ///
    /// # Errors
    /// [`BuildError::InvalidName`] for a bad table or election name.
    pub fn new(
        pool: Pool,
        table: &str,
        election: impl Into<String>,
    ) -> std::result::Result<Self, BuildError> {
        let election = election.into();
        validate_table(table)?;
        validate_election(&election)?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                sql: Sql::new(table),
                keys: Keys::new(&election),
                table: table.to_owned(),
                election,
                prepared: OnceCell::new(),
                highest_token: Highest::default(),
                highest_record_version: Highest::default(),
            }),
        })
    }

    /// The table holding the leases.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.inner.table
    }

    /// The election's name: its lease row's key.
    #[must_use]
    pub fn election(&self) -> &str {
        &self.inner.election
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// The key of the election's guard row: the election's name, the unit separator (U+001F,
    /// `CHAR(31)` in SQL) and `guard`. Election names may not contain control characters, so it
    /// is never an election's own key. The guard row records the last lease granted (holder,
    /// lease id, token, expiry) and is cleared only by a release, so that a lease row deleted or
    /// overwritten by someone else does not let a contender in while the old holder may still
    /// trust its lease.
    #[must_use]
    pub fn guard_key(&self) -> String {
        row_key(&self.inner.election, "guard")
    }

    /// The key of the election's candidate row of preferred leaders (the election's name, the
    /// unit separator U+001F, `candidate`): the candidate in `holder`, its priority in `token`,
    /// the record's expiry in `expires_at`.
    #[must_use]
    pub fn candidate_key(&self) -> String {
        row_key(&self.inner.election, "candidate")
    }

    /// The key of the election's record row (the election's name, the unit separator U+001F,
    /// `record`): the [record](leader_election::store::Record)'s data in `metadata`, its
    /// version in `token`; `holder`, `lease_id` and `expires_at` NULL. No lease batch touches
    /// it, so it outlives every term, release and forced election.
    #[must_use]
    pub fn record_key(&self) -> String {
        row_key(&self.inner.election, "record")
    }

    /// The SQL an operator runs to force a new election at once, when the holder is known to
    /// be gone (its process is dead, not merely unresponsive): frees the lease row and clears
    /// the guard row (both keep their tokens, so the next token is still greater). Followers
    /// take over at their next attempt (within a lease). Needs `UPDATE` on the table.
    ///
    /// A holder that is still alive keeps believing it leads until its next renewal fails (at
    /// most a lease): to hand over from a live leader, stop it, or delete its lease row only,
    /// which makes it step down and elects a new leader once its lease has run out. The README
    /// shows this SQL under "What an operator may do".
    #[must_use]
    pub fn force_election_sql(&self) -> String {
        sql::force_election(&self.inner.table, &self.inner.election)
    }

    /// The SQL an owner runs once so that `account` (as SQL names it: `'app'@'%'`) can take
    /// part in this store's elections without `CREATE`: `CREATE TABLE IF NOT EXISTS` for the
    /// table, and `GRANT SELECT, INSERT, UPDATE` on it. The README shows it for the default
    /// table.
    #[must_use]
    pub fn setup_sql(&self, account: &str) -> String {
        sql::setup(&self.inner.table, account)
    }

    /// Runs `batch` on a connection of the pool and answers its last result set's first row.
    async fn run(&self, operation: Operation, batch: &str) -> Result<Option<Row>> {
        self.execute(batch).await.map_err(|e| match e {
            Failure::Connect(e) => connect_failed(operation, e),
            Failure::Batch(e) => failed(operation, e),
        })
    }

    /// [`run`](Self::run) with the client's error.
    ///
    /// The connection is reset when it goes back to the pool unless the batch finished: a
    /// batch the server failed part-way, or that was dropped at the operation's timeout, may
    /// have left its transaction open, holding row locks every contender waits for.
    ///
    /// A batch whose connection broke is sent once more on a new connection: a pooled
    /// connection is found dead only when used (after a server restart, or a proxy or firewall
    /// that dropped it while idle), and every batch is safe to run twice (acquiring a lease
    /// one holds keeps it, renewing twice extends it, releasing twice frees it once).
    async fn execute(&self, batch: &str) -> std::result::Result<Option<Row>, Failure> {
        match self.execute_once(batch).await {
            Err(Failure::Batch(e)) if e.is_fatal() => {
                tracing::debug!(error = %e, "the connection broke; sending the batch again");
                self.execute_once(batch).await
            }
            other => other,
        }
    }

    async fn execute_once(&self, batch: &str) -> std::result::Result<Option<Row>, Failure> {
        let mut conn = self.inner.pool.get_conn().await.map_err(Failure::Connect)?;
        conn.reset_connection(true);
        let answer = async {
            let mut result = conn.query_iter(batch).await?;
            let mut last = None;
            while !result.is_empty() {
                let rows: Vec<Row> = result.collect().await?;
                if let Some(row) = rows.into_iter().next() {
                    last = Some(row);
                }
            }
            // A statement that failed after the first is kept back by the client until the
            // result is drained: it surfaces here, and nothing after it ran.
            result.drop_result().await?;
            Ok::<_, mysql_async::Error>(last)
        }
        .await
        .map_err(Failure::Batch)?;
        conn.reset_connection(false);
        Ok(answer)
    }

    /// The first row of `batch`'s answer, which it always has.
    async fn run_one(&self, operation: Operation, batch: &str) -> Result<Row> {
        self.run(operation, batch)
            .await?
            .ok_or_else(|| Error::invalid_data(operation, "the server answered no row"))
    }

    /// Checks the table (creating it if it is missing and the account may), once.
    async fn prepare_table(&self) -> Result<()> {
        let op = Operation::Connect;
        let probe = self.inner.sql.probe(&self.inner.keys);
        match self.execute(&probe).await {
            Ok(_) => return Ok(()),
            Err(Failure::Batch(e)) if server_code(&e) == Some(ER_NO_SUCH_TABLE) => {}
            Err(Failure::Batch(e)) => return Err(failed(op, e)),
            Err(Failure::Connect(e)) => return Err(connect_failed(op, e)),
        }
        if let Err(create) = self.run(op, &self.inner.sql.create()).await {
            tracing::warn!(
                table = %self.inner.table,
                error = %create,
                "the lease table is missing and cannot be created: run the store's setup_sql as its owner"
            );
            return Err(create);
        }
        self.run(op, &probe).await.map(|_| ())
    }
}

/// The server's code for a table that does not exist.
const ER_NO_SUCH_TABLE: u16 = 1146;

/// Why a batch failed: no connection (nothing was sent), or the batch itself.
enum Failure {
    Connect(mysql_async::Error),
    Batch(mysql_async::Error),
}

impl LeaseStore for MysqlLeaseStore {
    fn election_name(&self) -> &str {
        &self.inner.election
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_candidates()
            .with_metadata(MAX_METADATA_LEN)
            .with_records(MAX_RECORD_LEN)
    }

    async fn connect(&self) -> Result<()> {
        self.inner
            .prepared
            .get_or_try_init(|| self.prepare_table())
            .await?;
        Ok(())
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        let op = Operation::Acquire;
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let floor = floor_above(op, self.inner.highest_token.get())?;
        let batch = self.inner.sql.acquire(
            &self.inner.keys,
            &Holder::new(&request.instance_id, &request.lease_id),
            micros(request.ttl),
            request.expects_record,
            request.metadata.as_deref(),
            floor,
        );
        let row = self.run_one(op, &batch).await?;
        let acquired = column::<i64>(op, &row, 0)? == Some(1);
        let token = column::<i64>(op, &row, 1)?;
        if let Some(token) = token {
            // The lease row's token, ours or the holder's: a floor for every later one.
            self.inner.highest_token.saw(token);
        }
        if acquired {
            let token = token.ok_or_else(|| Error::invalid_data(op, "no token"))?;
            return Ok(AcquireOutcome::Acquired(Lease::new(token_from_stored(
                op, token,
            )?)));
        }
        let duration = |us: i64| u64::try_from(us).ok().map(Duration::from_micros);
        let expires_in = column::<i64>(op, &row, 3)?.and_then(duration);
        // Only an unexpired lease has a holder to tell of: an expired or broken row (an
        // operator's garbage) is read no further.
        let holder = column::<Vec<u8>>(op, &row, 2)?.filter(|_| expires_in.is_some());
        let leader = match holder.map(text) {
            Some(holder) => {
                let token = token.map(|t| token_from_stored(op, t)).transpose()?;
                let metadata = column::<Vec<u8>>(op, &row, 6)?;
                Some(LeaderInfo::new(holder, token).with_metadata(metadata))
            }
            None => None,
        };
        Ok(AcquireOutcome::not_granted(
            request,
            leader,
            expires_in,
            column::<i64>(op, &row, 4)?.and_then(duration),
            column::<i64>(op, &row, 5)? == Some(1),
        ))
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        let op = Operation::Renew;
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let batch = self.inner.sql.renew(
            &self.inner.keys,
            &Holder::new(&request.instance_id, &request.lease_id),
            stored_token(lease.token),
            micros(request.ttl),
            request.metadata.as_deref(),
        );
        let row = self.run_one(op, &batch).await?;
        Ok(if column::<i64>(op, &row, 0)?.unwrap_or(0) > 0 {
            RenewOutcome::Renewed
        } else {
            RenewOutcome::Lost
        })
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let op = Operation::Release;
        let batch = self.inner.sql.release(
            &self.inner.keys,
            &Holder::new(&request.instance_id, &request.lease_id),
            stored_token(lease.token),
        );
        let row = self.run_one(op, &batch).await?;
        Ok(column::<i64>(op, &row, 0)?.unwrap_or(0) > 0)
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        let op = Operation::CurrentLeader;
        let batch = self.inner.sql.current(&self.inner.keys.lease);
        let Some(row) = self.run(op, &batch).await? else {
            return Ok(None);
        };
        let holder = column::<Vec<u8>>(op, &row, 0)?
            .map(text)
            .ok_or_else(|| Error::invalid_data(op, "no holder"))?;
        let token =
            column::<i64>(op, &row, 1)?.ok_or_else(|| Error::invalid_data(op, "no token"))?;
        let metadata = column::<Vec<u8>>(op, &row, 2)?;
        Ok(Some(
            LeaderInfo::new(holder, Some(token_from_stored(op, token)?)).with_metadata(metadata),
        ))
    }

    async fn announce_candidate(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        let op = Operation::AnnounceCandidate;
        let batch = self.inner.sql.announce_candidate(
            &self.inner.keys,
            &candidate.instance_id,
            candidate.priority,
            micros(ttl),
        );
        self.run(op, &batch).await.map(|_| ())
    }

    async fn strongest_candidate(&self) -> Result<Option<Candidate>> {
        let op = Operation::StrongestCandidate;
        // The lease row's read, on the candidate row: holder and priority while unexpired.
        let batch = self.inner.sql.current(&self.inner.keys.candidate);
        let Some(row) = self.run(op, &batch).await? else {
            return Ok(None);
        };
        let holder = column::<Vec<u8>>(op, &row, 0)?
            .map(text)
            .ok_or_else(|| Error::invalid_data(op, "the candidate row has no candidate"))?;
        let priority = column::<i64>(op, &row, 1)?.unwrap_or(-1);
        table::candidate(op, holder, priority).map(Some)
    }

    async fn read_record(&self) -> Result<Option<Record>> {
        let op = Operation::ReadRecord;
        let batch = self.inner.sql.read_record(&self.inner.keys);
        let Some(row) = self.run(op, &batch).await? else {
            return Ok(None);
        };
        let version = column::<i64>(op, &row, 0)?
            .ok_or_else(|| Error::invalid_data(op, "the record row has no version"))?;
        let data = record_data(op, column::<Vec<u8>>(op, &row, 1)?)?;
        Ok(Some(
            self.inner.highest_record_version.record(version, data),
        ))
    }

    /// The compare-and-set: a row inserted only when there is none when no record is
    /// expected; rewritten only at the expected version otherwise. A version that is not a
    /// number this store wrote matches nothing.
    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        let op = Operation::WriteRecord;
        check_record_len(data, MAX_RECORD_LEN)?;
        let floor = floor_above(op, self.inner.highest_record_version.get())?;
        let batch = match expected.map(|v| v.as_str().parse::<i64>()) {
            None => self.inner.sql.insert_record(&self.inner.keys, data, floor),
            Some(Ok(expected)) => {
                self.inner
                    .sql
                    .update_record(&self.inner.keys, data, floor, expected)
            }
            Some(Err(_)) => return Ok(None),
        };
        let row = self.run_one(op, &batch).await?;
        let Some(version) = column::<i64>(op, &row, 0)? else {
            return Ok(None);
        };
        Ok(Some(self.inner.highest_record_version.version(version)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_floor_above_the_largest_bigint() {
        assert_eq!(floor_above(Operation::Acquire, 41).unwrap(), 42);
        assert!(floor_above(Operation::Acquire, i64::MAX).is_err());
    }
}
