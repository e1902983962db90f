//! [`PostgresLeaseStore`]: leases in a table, expiry on the server's clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use leader_election::priority::Candidate;
use leader_election::store::table::{micros, stored_token, token_from_stored};
use leader_election::store::{
    AcquireOutcome, Capabilities, Highest, Lease, LeaseRequest, Record, RecordVersion,
    ReleaseReceiver, RenewOutcome, check_metadata_len,
};
use leader_election::{Error, LeaderInfo, LeaseStore, Operation, Result};
use tokio::sync::OnceCell;
use tokio_postgres::types::ToSql;
// Statements are sent as unnamed ones with their parameters' types (`query_typed`): parse, bind
// and execute in one round trip, and nothing left on the connection between transactions, so
// they also work through a transaction-mode pooler (PgBouncer), which does not keep a named
// prepared statement on the server connection it gave.
use tokio_postgres::types::Type;

const TEXT: Type = Type::TEXT;
const INT8: Type = Type::INT8;

use crate::connection::connector_for;
use crate::error::{failed, pool_failed};
use crate::listener::Listener;
use crate::names::{validate_election, validate_table};
use crate::sql::{self, Sql};
use crate::tls::Connector;
use leader_election::BuildError;
use leader_election::backend::tls::TlsSettings;

mod candidate;
mod record;
mod setup;

/// The default table: `leader_election_leases`.
pub const DEFAULT_TABLE: &str = "leader_election_leases";

/// The longest leader metadata a store publishes, in bytes: 64 KiB, in the `metadata bytea`
/// column of the lease row.
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// The longest [election record](leader_election::store::Record) a store keeps, in bytes:
/// 64 KiB, in the `metadata bytea` column of the election's record row (see
/// [`PostgresLeaseStore::record_key`]).
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// The default election name: `leader-election`.
pub const DEFAULT_ELECTION: &str = "leader-election";

/// A [`LeaseStore`] keeping one row per election in a PostgreSQL table.
///
/// Each row holds the holder's instance id and lease id, the fencing token and the expiry,
/// computed with the server's clock (`clock_timestamp()`), never the client's. Acquire, renew
/// and release are single conditional statements, so only the holder renews or releases. A
/// release sends `NOTIFY` on the [`release_channel`](Self::release_channel) with the election
/// name, which followers `LISTEN` to on a dedicated connection, so a graceful stop hands over at
/// once. Listening is a speed-up only: while the listener cannot connect, followers take over
/// when the lease can expire, and the listener keeps trying in the background.
///
/// The table is created on the first [`connect`](LeaseStore::connect) only if it is missing;
/// a role without `CREATE` on the schema works on a table an owner made (see
/// [`setup_sql`](Self::setup_sql)).
///
/// Next to the lease row, each election has a guard row (see
/// [`guard_key`](Self::guard_key)) written with the same lease by every acquisition and renewal
/// and cleared only by a release. A lease row deleted or overwritten by anybody but its holder
/// (an operator, a script) leaves the guard, so no contender acquires before the lease it
/// records could have expired: [`try_acquire`](LeaseStore::try_acquire) answers
/// [`AcquireOutcome::Withheld`] with [`WithholdReason::RecordTouched`](leader_election::store::WithholdReason::RecordTouched) until then. To force an
/// election at once when the holder is known to be gone, an operator runs
/// [`force_election_sql`](Self::force_election_sql).
///
/// Deleting the guard too (`DELETE FROM` the whole table, the blanket clean-up) leaves no
/// record at all: a contender that saw the lease held and finds no lease row answers
/// [`AcquireOutcome::Withheld`] with [`WithholdReason::RecordVanished`](leader_election::store::WithholdReason::RecordVanished) (see
/// [`LeaseRequest::expects_record`]), and the election waits one lease from then before it
/// takes the lease. Only a process that never saw the lease held acquires at once then.
///
/// Leader metadata is the lease row's `metadata bytea` column, set by the same statement that
/// acquires or renews the lease (at most [`MAX_METADATA_LEN`], 64 KiB). The store never alters
/// an existing table.
///
/// Tokens are `max(previous token + 1, server time in µs)`, the previous token being the
/// larger of the lease row's and the guard's: they keep growing even if an operator deletes
/// the lease row, and even if both rows go, as long as the server's clock does not step back.
///
/// The election's [record](leader_election::store::Record) is one more row of the same table
/// (see [`record_key`](Self::record_key)), read and written by compare-and-set on its version
/// in one statement each, and never touched by the lease statements.
///
/// Cheap to clone: clones share the pool and the listener.
#[derive(Clone)]
pub struct PostgresLeaseStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Without it there are no release notifications.
    listener: Option<Listener>,
    table: String,
    election: String,
    /// The key of the election's guard row.
    guard: String,
    /// The key of the election's record row.
    record: String,
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

impl fmt::Debug for PostgresLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the connection config: it holds the password.
        f.debug_struct("PostgresLeaseStore")
            .field("table", &self.inner.table)
            .field("election", &self.inner.election)
            .field("notifications", &self.inner.listener.is_some())
            .field("listening", &self.is_listening())
            .finish_non_exhaustive()
    }
}

// === impl PostgresLeaseStore ===

impl PostgresLeaseStore {
    /// A store for the election `election` in `table`, using `pool`. With `listen`, the store
    /// opens one more connection from that config to `LISTEN` for releases; without it, or
    /// while that connection cannot be made, followers wake when the lease can expire. That
    /// connection uses TLS as the config's `ssl_mode` says, without verifying the server's
    /// certificate; to verify it, use
    /// [`PostgresLeaderElectionBuilder::pool`](crate::PostgresLeaderElectionBuilder::pool) with
    /// a CA, or its `listen_connection_string`.
    ///
    /// # Errors
    /// [`BuildError::InvalidName`] for a bad table or election name;
    /// [`BuildError::TlsNotEnabled`] for a config that requires TLS without feature `tls`.
    pub fn new(
        pool: Pool,
        listen: Option<tokio_postgres::Config>,
        table: &str,
        election: impl Into<String>,
    ) -> std::result::Result<Self, BuildError> {
        let listen = match listen {
            Some(config) => {
                let connector = connector_for(&config, &TlsSettings::default())?;
                Some((config, connector))
            }
            None => None,
        };
        Self::with_listener(pool, listen, table, election)
    }

    /// [`new`](Self::new) with the listener's connector chosen by the caller.
    pub(crate) fn with_listener(
        pool: Pool,
        listen: Option<(tokio_postgres::Config, Connector)>,
        table: &str,
        election: impl Into<String>,
    ) -> std::result::Result<Self, BuildError> {
        let election = election.into();
        validate_table(table)?;
        validate_election(&election)?;
        let sql = Sql::new(table);
        let listener = listen.map(|(config, connector)| {
            Listener::new(config, connector, sql.channel.clone(), election.clone())
        });
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                listener,
                sql,
                table: table.to_owned(),
                guard: sql::guard_key(&election),
                record: sql::record_key(&election),
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

    /// The election's name: its row's primary key.
    #[must_use]
    pub fn election(&self) -> &str {
        &self.inner.election
    }

    /// The key of the election's guard row in the table: the election's name, the unit
    /// separator (U+001F, `chr(31)` in SQL) and `guard`. Election names may not contain control
    /// characters, so it is never an election's own key. The guard row records the last lease
    /// granted (holder, lease id, token, expiry) and is cleared only by a release, so that a
    /// lease row deleted or overwritten by someone else does not let a contender in while the
    /// old holder may still trust its lease.
    #[must_use]
    pub fn guard_key(&self) -> &str {
        &self.inner.guard
    }

    /// The SQL an operator runs to force a new election at once, when the holder is known to
    /// be gone (its process is dead, not merely unresponsive): in one transaction, frees the
    /// lease row, clears the guard row (both keep their tokens, so the next token is still
    /// greater), and notifies the followers, who acquire at once. Needs `UPDATE` on the table.
    ///
    /// A holder that is still alive keeps believing it leads until its next renewal fails (at
    /// most a lease): to hand over from a live leader, stop it (its release hands over at once)
    /// or delete its lease row only, which makes it step down and elects a new leader once its
    /// lease has run out. The README shows this SQL under "What an operator may do".
    #[must_use]
    pub fn force_election_sql(&self) -> String {
        sql::force_election(&self.inner.table, &self.inner.election)
    }

    /// The channel on which releases are announced: `<table>_released` (a schema-qualified
    /// table's dot as `_`) when that fits in PostgreSQL's 63-byte identifier limit; otherwise
    /// its first 46 bytes, `_`, and the 64-bit FNV-1a hash of the table name in 16 hex digits.
    /// Stores on the same table, in any process and version, use the same channel.
    #[must_use]
    pub fn release_channel(&self) -> &str {
        &self.inner.sql.channel
    }

    /// Whether the release listener is connected and listening now. Always false without a
    /// listener; false until the first [`connect`](LeaseStore::connect) and while the listener
    /// cannot connect (it keeps trying in the background).
    #[must_use]
    pub fn is_listening(&self) -> bool {
        self.inner
            .listener
            .as_ref()
            .is_some_and(Listener::is_listening)
    }

    /// The SQL an owner runs once so that `role` can take part in this store's elections without
    /// `CREATE` on the schema: `CREATE TABLE IF NOT EXISTS` for the table, `GRANT USAGE` on its
    /// schema when the name is schema-qualified, and `GRANT SELECT, INSERT, UPDATE` on the table.
    /// The README shows it for the default table.
    #[must_use]
    pub fn setup_sql(&self, role: &str) -> String {
        sql::setup(&self.inner.table, role)
    }

    /// The metadata parameter of acquire and renew, after checking it.
    fn metadata_param(request: &LeaseRequest) -> Result<Option<Vec<u8>>> {
        if let Some(metadata) = &request.metadata {
            check_metadata_len(metadata, MAX_METADATA_LEN)?;
        }
        Ok(request.metadata.clone())
    }

    /// The connection pool.
    #[must_use]
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    async fn client(&self, operation: Operation) -> Result<deadpool_postgres::Client> {
        self.inner
            .pool
            .get()
            .await
            .map_err(|e| pool_failed(operation, e))
    }
}

impl LeaseStore for PostgresLeaseStore {
    fn election_name(&self) -> &str {
        &self.inner.election
    }

    fn capabilities(&self) -> Capabilities {
        // Release notices need a connection to LISTEN on: none with a pool made by the caller.
        let caps = Capabilities::none()
            .with_candidates()
            .with_metadata(MAX_METADATA_LEN)
            .with_records(MAX_RECORD_LEN);
        if self.inner.listener.is_some() {
            caps.with_release_notifications()
        } else {
            caps
        }
    }

    async fn connect(&self) -> Result<()> {
        self.inner
            .prepared
            .get_or_try_init(|| self.prepare_table())
            .await?;
        // Not waited for: listening only speeds handover up, and a release before LISTEN takes
        // effect is covered by the wake-up the listener sends once it does.
        if let Some(listener) = &self.inner.listener {
            listener.start();
        }
        Ok(())
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        let op = Operation::Acquire;
        let metadata = Self::metadata_param(request)?;
        let client = self.client(op).await?;
        let ttl = micros(request.ttl);
        let floor = self.inner.highest_token.get();
        let params: [(&(dyn ToSql + Sync), Type); 8] = [
            (&self.inner.election, TEXT),
            (&request.instance_id, TEXT),
            (&request.lease_id, TEXT),
            (&ttl, INT8),
            (&self.inner.guard, TEXT),
            (&request.expects_record, Type::BOOL),
            (&metadata, Type::BYTEA),
            (&floor, INT8),
        ];
        let row = client
            .query_typed_one(&self.inner.sql.statements.acquire, &params)
            .await
            .map_err(|e| failed(op, e))?;
        let acquired: bool = row.try_get(0).map_err(|e| failed(op, e))?;
        let token: Option<i64> = row.try_get(1).map_err(|e| failed(op, e))?;
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
        let holder: Option<String> = row.try_get(2).map_err(|e| failed(op, e))?;
        let remaining: Option<i64> = row.try_get(3).map_err(|e| failed(op, e))?;
        let withheld: Option<i64> = row.try_get(4).map_err(|e| failed(op, e))?;
        let vanished: bool = row.try_get(6).map_err(|e| failed(op, e))?;
        let duration = |us: i64| u64::try_from(us).ok().map(Duration::from_micros);
        let expires_in = remaining.and_then(duration);
        // Only an unexpired lease has a holder to tell of: an expired or broken row (an
        // operator's garbage) is read no further.
        let leader = match holder.filter(|_| expires_in.is_some()) {
            Some(holder) => {
                let token = token.map(|t| token_from_stored(op, t)).transpose()?;
                let metadata: Option<Vec<u8>> = row.try_get(7).map_err(|e| failed(op, e))?;
                Some(LeaderInfo::new(holder, token).with_metadata(metadata))
            }
            None => None,
        };
        // Nobody holding it and no guard (`Held` by nobody): free in this statement's
        // snapshot, but taken by a contender whose statement committed meanwhile.
        Ok(AcquireOutcome::not_granted(
            request,
            leader,
            expires_in,
            withheld.and_then(duration),
            vanished,
        ))
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        let op = Operation::Renew;
        let metadata = Self::metadata_param(request)?;
        let client = self.client(op).await?;
        let token = stored_token(lease.token);
        let ttl = micros(request.ttl);
        let params: [(&(dyn ToSql + Sync), Type); 7] = [
            (&self.inner.election, TEXT),
            (&request.instance_id, TEXT),
            (&request.lease_id, TEXT),
            (&token, INT8),
            (&ttl, INT8),
            (&self.inner.guard, TEXT),
            (&metadata, Type::BYTEA),
        ];
        let updated = client
            .execute_typed(&self.inner.sql.statements.renew, &params)
            .await
            .map_err(|e| failed(op, e))?;
        Ok(if updated == 1 {
            RenewOutcome::Renewed
        } else {
            RenewOutcome::Lost
        })
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let op = Operation::Release;
        let client = self.client(op).await?;
        let token = stored_token(lease.token);
        let rows = client
            .query_typed(
                &self.inner.sql.release,
                &[
                    (&self.inner.election, TEXT),
                    (&request.instance_id, TEXT),
                    (&request.lease_id, TEXT),
                    (&token, INT8),
                    (&self.inner.sql.channel, TEXT),
                    (&self.inner.guard, TEXT),
                ],
            )
            .await
            .map_err(|e| failed(op, e))?;
        match rows.first() {
            Some(row) => row.try_get(0).map_err(|e| failed(op, e)),
            None => Ok(false),
        }
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        let op = Operation::CurrentLeader;
        let client = self.client(op).await?;
        let row = client
            .query_typed_opt(
                &self.inner.sql.statements.current,
                &[(&self.inner.election, TEXT)],
            )
            .await
            .map_err(|e| failed(op, e))?;
        let Some(row) = row else { return Ok(None) };
        let holder: String = row.try_get(0).map_err(|e| failed(op, e))?;
        let token = token_from_stored(op, row.try_get(1).map_err(|e| failed(op, e))?)?;
        let metadata: Option<Vec<u8>> = row.try_get(2).map_err(|e| failed(op, e))?;
        Ok(Some(
            LeaderInfo::new(holder, Some(token)).with_metadata(metadata),
        ))
    }

    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        self.inner.listener.as_ref().map(Listener::subscribe)
    }

    async fn announce_candidate(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        self.announce(candidate, ttl).await
    }

    async fn strongest_candidate(&self) -> Result<Option<Candidate>> {
        self.strongest().await
    }

    async fn read_record(&self) -> Result<Option<Record>> {
        self.read_election_record().await
    }

    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        self.write_election_record(expected, data).await
    }
}
