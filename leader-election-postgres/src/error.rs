//! How the PostgreSQL backend's runtime errors are told. Its configuration errors are the
//! core's [`BuildError`](leader_election::BuildError).

use std::fmt;

use leader_election::{Error, Operation};
use tokio_postgres::error::{DbError, SqlState};

// === Runtime errors ===

/// A PostgreSQL error whose message says everything its chain knows: the server's own message
/// (severity, message, SQLSTATE, detail, hint) where the server answered, and each cause
/// otherwise (`error connecting to server: Connection refused`). tokio-postgres says only "db
/// error" for a server's answer, and deadpool wraps it again ("Error occurred while creating
/// a new object: db error"), so a log line or a message printed without its sources would
/// lose the one thing that says what is wrong. The wrapped error stays the source.
#[derive(Debug)]
pub(crate) struct PgError(BoxError);

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl From<tokio_postgres::Error> for PgError {
    fn from(err: tokio_postgres::Error) -> Self {
        Self(Box::new(err))
    }
}

impl From<deadpool_postgres::PoolError> for PgError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        Self(Box::new(err))
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&describe(&*self.0))
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// `err` and its causes in one line, with the server's message in place of "db error".
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(db) = server_error(err) {
            parts.push(server_message(db));
            break;
        }
        let part = match err.downcast_ref::<deadpool_postgres::PoolError>() {
            // deadpool's "Error occurred while creating a new object: {cause}" repeats the
            // cause, which comes next.
            Some(deadpool_postgres::PoolError::Backend(_)) => "cannot open a connection".to_owned(),
            _ => err.to_string(),
        };
        // Some errors repeat their cause in their own message: say it once.
        if !parts.last().is_some_and(|last| last.contains(&part)) {
            parts.push(part);
        }
        next = err.source();
    }
    parts.join(": ")
}

/// The server's answer in `err`, if it is one.
fn server_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a DbError> {
    err.downcast_ref::<DbError>().or_else(|| {
        err.downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
    })
}

/// `FATAL: message (SQLSTATE code); detail; hint: hint`.
fn server_message(db: &DbError) -> String {
    let mut text = format!(
        "{}: {} (SQLSTATE {})",
        db.severity(),
        db.message(),
        db.code().code()
    );
    if let Some(detail) = db.detail() {
        text.push_str("; ");
        text.push_str(detail);
    }
    if let Some(hint) = db.hint() {
        text.push_str("; hint: ");
        text.push_str(hint);
    }
    text
}

/// A failed statement of `operation`, classified: a connection broken mid-statement leaves the
/// outcome unknown; an error the server answered with means the statement did not take effect
/// (retryable unless only an operator can fix it: a missing table, a missing privilege).
pub(crate) fn failed(operation: Operation, err: tokio_postgres::Error) -> Error {
    if err.as_db_error().is_none() && (err.is_closed() || is_io(&err)) {
        Error::outcome_unknown(operation, PgError::from(err))
    } else {
        let retryable = err.as_db_error().is_none_or(|db| {
            !matches!(
                *db.code(),
                SqlState::UNDEFINED_TABLE | SqlState::INSUFFICIENT_PRIVILEGE
            )
        });
        Error::backend(operation, retryable, PgError::from(err))
    }
}

fn is_io(err: &tokio_postgres::Error) -> bool {
    std::error::Error::source(err).is_some_and(|s| s.is::<std::io::Error>())
}

/// No connection for `operation` from the pool (the server refused or could not be reached,
/// or the pool timed out): nothing was sent, so it is retryable.
pub(crate) fn pool_failed(operation: Operation, err: deadpool_postgres::PoolError) -> Error {
    Error::backend(operation, true, PgError::from(err))
}
