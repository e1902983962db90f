//! [`PostgresLeaseStore`]: leases in a table, expiry on the server's clock.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use leader_election::{
    AcquireOutcome, Error, FencingToken, LeaderInfo, Lease, LeaseRequest, LeaseStore, Operation,
    ReleaseNotifier, ReleaseReceiver, RenewOutcome, Result,
};
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, NoTls};

use crate::error::BuildError;
use crate::names::{quote_identifier, validate_election, validate_table};
use crate::sql::{self, Sql};

/// The default table: `leader_election_leases`.
pub const DEFAULT_TABLE: &str = "leader_election_leases";

/// The default election name: `leader-election`.
pub const DEFAULT_ELECTION: &str = "leader-election";

/// A [`LeaseStore`] keeping one row per election in a PostgreSQL table.
///
/// Each row holds the holder's instance id and lease id, the fencing token and the expiry,
/// computed with the server's clock (`clock_timestamp()`), never the client's. Acquire, renew
/// and release are single conditional statements, so only the holder renews or releases. A
/// release sends `NOTIFY` on the [`release_channel`](Self::release_channel) with the election
/// name, which
/// followers `LISTEN` to on a dedicated connection, so a graceful stop hands over at once.
///
/// The table is created on the first [`connect`](LeaseStore::connect) only if it is missing;
/// a role without `CREATE` on the schema works on a table an owner made (see
/// [`setup_sql`](Self::setup_sql)).
///
/// Tokens are `max(previous token + 1, server time in µs)`: they keep growing even if an
/// operator deletes the row, as long as the server's clock does not step back.
///
/// Cheap to clone: clones share the pool and the listener.
#[derive(Clone)]
pub struct PostgresLeaseStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Where the listener connects; without it there are no release notifications.
    listen: Option<tokio_postgres::Config>,
    table: String,
    election: String,
    sql: Sql,
    prepared: OnceCell<()>,
    notifier: ReleaseNotifier,
    listener: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// True while the listener's `LISTEN` is active.
    listening: tokio::sync::watch::Sender<bool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(listener) = listener {
            listener.abort();
        }
    }
}

impl fmt::Debug for PostgresLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the connection config: it holds the password.
        f.debug_struct("PostgresLeaseStore")
            .field("table", &self.inner.table)
            .field("election", &self.inner.election)
            .field("notifications", &self.inner.listen.is_some())
            .finish_non_exhaustive()
    }
}

// === Errors ===

/// A `tokio_postgres` error whose message includes the server's (its own says "db error").
#[derive(Debug)]
struct PgError(tokio_postgres::Error);

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_db_error() {
            Some(db) => {
                write!(
                    f,
                    "{}: {} (SQLSTATE {})",
                    db.severity(),
                    db.message(),
                    db.code().code()
                )?;
                if let Some(detail) = db.detail() {
                    write!(f, "; {detail}")?;
                }
                if let Some(hint) = db.hint() {
                    write!(f, "; hint: {hint}")?;
                }
                Ok(())
            }
            None => match std::error::Error::source(&self.0) {
                Some(cause) => write!(f, "{}: {cause}", self.0),
                None => write!(f, "{}", self.0),
            },
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The lease table is missing or out of reach, and only an operator can fix it: says what to
/// run.
#[derive(Debug)]
struct SetupError {
    problem: String,
    server: Option<PgError>,
    sql: String,
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)?;
        if let Some(server) = &self.server {
            write!(f, " ({server})")?;
        }
        write!(
            f,
            ". Run this once as the schema's owner (see the README, \"Setting up the table\"):\n{}",
            self.sql
        )
    }
}

impl std::error::Error for SetupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.server.as_ref().map(|e| e as _)
    }
}

fn failed(operation: Operation, err: tokio_postgres::Error) -> Error {
    // A broken connection mid-statement leaves the outcome unknown; an error the server
    // answered with means the statement did not take effect.
    if err.as_db_error().is_none() && (err.is_closed() || is_io(&err)) {
        Error::outcome_unknown(operation, PgError(err))
    } else {
        let retryable = err.as_db_error().is_none_or(|db| {
            !matches!(
                *db.code(),
                SqlState::UNDEFINED_TABLE | SqlState::INSUFFICIENT_PRIVILEGE
            )
        });
        Error::backend(operation, retryable, PgError(err))
    }
}

fn is_io(err: &tokio_postgres::Error) -> bool {
    std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>())
}

fn pool_failed(operation: Operation, err: deadpool_postgres::PoolError) -> Error {
    Error::backend(operation, true, err)
}

/// A ttl in whole microseconds, rounded up: the server never keeps a lease for less than asked.
fn micros(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_nanos().div_ceil(1000)).unwrap_or(i64::MAX)
}

/// A lease's token as the table stores it.
fn db_token(lease: &Lease) -> i64 {
    i64::try_from(lease.token.get()).unwrap_or(i64::MAX)
}

fn token_of(operation: Operation, raw: i64) -> Result<FencingToken> {
    u64::try_from(raw)
        .map(FencingToken::new)
        .map_err(|_| Error::invalid_data(operation, format!("negative token {raw}")))
}

impl PostgresLeaseStore {
    /// A store for the election `election` in `table`, using `pool`. With `listen`, the store
    /// opens one more connection from that config to `LISTEN` for releases; without it,
    /// followers wake when the lease can expire.
    ///
    /// # Errors
    /// [`BuildError::InvalidTable`] or [`BuildError::InvalidElection`] for bad names.
    pub fn new(
        pool: Pool,
        listen: Option<tokio_postgres::Config>,
        table: &str,
        election: impl Into<String>,
    ) -> std::result::Result<Self, BuildError> {
        let election = election.into();
        validate_table(table)?;
        validate_election(&election)?;
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                listen,
                sql: Sql::new(table),
                table: table.to_owned(),
                election,
                prepared: OnceCell::new(),
                notifier: ReleaseNotifier::new(),
                listener: std::sync::Mutex::new(None),
                listening: tokio::sync::watch::Sender::new(false),
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

    /// The channel on which releases are announced: `<table>_released` (a schema-qualified
    /// table's dot as `_`) when that fits in PostgreSQL's 63-byte identifier limit; otherwise
    /// its first 46 bytes, `_`, and the 64-bit FNV-1a hash of the table name in 16 hex digits.
    /// Stores on the same table, in any process and version, use the same channel.
    #[must_use]
    pub fn release_channel(&self) -> &str {
        &self.inner.sql.channel
    }

    /// The SQL an owner runs once so that `role` can take part in this store's elections without
    /// `CREATE` on the schema: `CREATE TABLE IF NOT EXISTS` for the table, `GRANT USAGE` on its
    /// schema when the name is schema-qualified, and `GRANT SELECT, INSERT, UPDATE` on the table.
    /// The README shows it for the default table.
    #[must_use]
    pub fn setup_sql(&self, role: &str) -> String {
        sql::setup(&self.inner.table, role)
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

    /// Makes sure the table exists and this role may use it. Creates it only when it is missing,
    /// since `CREATE TABLE IF NOT EXISTS` needs `CREATE` on the schema even when it exists.
    async fn prepare_table(&self) -> Result<()> {
        let op = Operation::Connect;
        let client = self.client(op).await?;
        let table = leader_election::quoted(&self.inner.table);
        let setup = |problem: String, server: Option<tokio_postgres::Error>, role: &str| {
            let sql = self.setup_sql(role);
            Error::backend(
                op,
                false,
                SetupError {
                    problem,
                    server: server.map(PgError),
                    sql,
                },
            )
        };
        let row = match client
            .query_one(&self.inner.sql.check, &[&self.inner.sql.table])
            .await
        {
            Ok(row) => row,
            // A schema-qualified table in a schema this role may not use.
            Err(err) if err.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                let role = match client.query_one("SELECT current_user::text", &[]).await {
                    Ok(row) => row.try_get(0).unwrap_or_else(|_| "<role>".to_owned()),
                    Err(_) => "<role>".to_owned(),
                };
                let problem =
                    format!("this role may not use the schema of the lease table {table}");
                return Err(setup(problem, Some(err), &role));
            }
            Err(err) => return Err(failed(op, err)),
        };
        let exists: bool = row.try_get(0).map_err(|e| failed(op, e))?;
        let role: String = row.try_get(1).map_err(|e| failed(op, e))?;
        let missing: String = row.try_get(2).map_err(|e| failed(op, e))?;
        let who = leader_election::quoted(&role);
        if exists {
            if missing.is_empty() {
                return Ok(());
            }
            let problem = format!("role {who} lacks {missing} on the lease table {table}");
            return Err(setup(problem, None, &role));
        }
        match client.batch_execute(&self.inner.sql.create).await {
            Ok(()) => Ok(()),
            // Two contenders creating the table at once: one of them loses the race on the
            // catalog, and the table exists either way.
            Err(err)
                if err.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    || err.code() == Some(&SqlState::DUPLICATE_TABLE) =>
            {
                Ok(())
            }
            Err(err)
                if err.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE)
                    || err.code() == Some(&SqlState::INVALID_SCHEMA_NAME) =>
            {
                let problem = format!(
                    "the lease table {table} does not exist, and role {who} may not create it"
                );
                Err(setup(problem, Some(err), &role))
            }
            Err(err) => Err(failed(op, err)),
        }
    }

    fn start_listener(&self) {
        let Some(config) = self.inner.listen.clone() else {
            return;
        };
        let mut listener = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if listener.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let channel = self.inner.sql.channel.clone();
        let election = self.inner.election.clone();
        *listener = Some(tokio::spawn(async move {
            let mut delay = Duration::from_millis(100);
            loop {
                let result = listen(&config, &channel, &election, &weak).await;
                let Some(inner) = weak.upgrade() else { return };
                inner.listening.send_replace(false);
                if let Err(err) = result {
                    tracing::warn!(error = %err, election, "release listener lost its connection");
                }
                // Releases may have been missed while disconnected: wake followers to look.
                inner.notifier.notify();
                drop(inner);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }));
    }
}

/// Listens for release notices until the connection ends.
async fn listen(
    config: &tokio_postgres::Config,
    channel: &str,
    election: &str,
    inner: &std::sync::Weak<Inner>,
) -> std::result::Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notice)) => {
                    if tx.send(notice).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {}", quote_identifier(channel)))
        .await?;
    match inner.upgrade() {
        Some(inner) => {
            inner.listening.send_replace(true);
            // A release may have come before LISTEN took effect: wake followers to look.
            inner.notifier.notify();
        }
        None => return Ok(()),
    }
    while let Some(notice) = rx.recv().await {
        if notice.payload() == election {
            let Some(inner) = inner.upgrade() else { break };
            inner.notifier.notify();
        }
    }
    drop(client);
    match driver.await {
        Ok(result) => result,
        Err(_) => Ok(()),
    }
}

impl LeaseStore for PostgresLeaseStore {
    fn election_name(&self) -> &str {
        &self.inner.election
    }

    async fn connect(&self) -> Result<()> {
        self.inner
            .prepared
            .get_or_try_init(|| self.prepare_table())
            .await?;
        self.start_listener();
        if self.inner.listen.is_some() {
            // Followers rely on notices from the moment they are prepared. The core bounds this
            // wait with `operation_timeout` and retries while the server cannot be reached.
            let mut listening = self.inner.listening.subscribe();
            let _ = listening.wait_for(|on| *on).await;
        }
        Ok(())
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        let op = Operation::Acquire;
        let client = self.client(op).await?;
        let rows = client
            .query(
                &self.inner.sql.acquire,
                &[
                    &self.inner.election,
                    &request.instance_id,
                    &request.lease_id,
                    &micros(request.ttl),
                ],
            )
            .await
            .map_err(|e| failed(op, e))?;
        let Some(row) = rows.first() else {
            // Taken by a contender whose insert committed after this statement's snapshot.
            return Ok(AcquireOutcome::Held {
                leader: None,
                expires_in: None,
            });
        };
        let acquired: bool = row.try_get(0).map_err(|e| failed(op, e))?;
        let token = token_of(op, row.try_get(1).map_err(|e| failed(op, e))?)?;
        if acquired {
            return Ok(AcquireOutcome::Acquired(Lease::new(token)));
        }
        let holder: Option<String> = row.try_get(2).map_err(|e| failed(op, e))?;
        let remaining: Option<i64> = row.try_get(3).map_err(|e| failed(op, e))?;
        Ok(AcquireOutcome::Held {
            leader: holder.map(|h| LeaderInfo::new(h, Some(token))),
            expires_in: remaining
                .and_then(|us| u64::try_from(us).ok())
                .map(Duration::from_micros),
        })
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        let op = Operation::Renew;
        let client = self.client(op).await?;
        let token = db_token(lease);
        let updated = client
            .execute(
                &self.inner.sql.renew,
                &[
                    &self.inner.election,
                    &request.instance_id,
                    &request.lease_id,
                    &token,
                    &micros(request.ttl),
                ],
            )
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
        let token = db_token(lease);
        let rows = client
            .query(
                &self.inner.sql.release,
                &[
                    &self.inner.election,
                    &request.instance_id,
                    &request.lease_id,
                    &token,
                    &self.inner.sql.channel,
                ],
            )
            .await
            .map_err(|e| failed(op, e))?;
        Ok(!rows.is_empty())
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        let op = Operation::CurrentLeader;
        let client = self.client(op).await?;
        let row = client
            .query_opt(&self.inner.sql.current, &[&self.inner.election])
            .await
            .map_err(|e| failed(op, e))?;
        let Some(row) = row else { return Ok(None) };
        let holder: String = row.try_get(0).map_err(|e| failed(op, e))?;
        let token = token_of(op, row.try_get(1).map_err(|e| failed(op, e))?)?;
        Ok(Some(LeaderInfo::new(holder, Some(token))))
    }

    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        self.inner
            .listen
            .is_some()
            .then(|| self.inner.notifier.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_microseconds() {
        assert_eq!(micros(Duration::from_millis(1500)), 1_500_000);
        assert_eq!(micros(Duration::from_nanos(1)), 1);
        assert_eq!(micros(Duration::from_nanos(2_000_001)), 2001);
        assert_eq!(micros(Duration::MAX), i64::MAX);
    }
}
