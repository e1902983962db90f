//! Preparing the lease table on the first connection: created when missing (if the role may),
//! and checked to be usable by this role; otherwise an error that says what an operator must run.

use std::fmt;

use leader_election::{Error, Operation, Result};
use tokio_postgres::error::SqlState;

use super::{PostgresLeaseStore, TEXT};
use crate::error::{PgError, failed};

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

impl PostgresLeaseStore {
    /// Makes sure the table exists and this role may use it. Creates it only when it is missing,
    /// since `CREATE TABLE IF NOT EXISTS` needs `CREATE` on the schema even when it exists.
    pub(super) async fn prepare_table(&self) -> Result<()> {
        let op = Operation::Connect;
        let client = self.client(op).await?;
        let table = leader_election::backend::quoted(&self.inner.table);
        let setup = |problem: String, server: Option<tokio_postgres::Error>, role: &str| {
            let sql = self.setup_sql(role);
            Error::backend(
                op,
                false,
                SetupError {
                    problem,
                    server: server.map(PgError::from),
                    sql,
                },
            )
        };
        let row = match client
            .query_typed_one(&self.inner.sql.check, &[(&self.inner.sql.table, TEXT)])
            .await
        {
            Ok(row) => row,
            // A schema-qualified table in a schema this role may not use.
            Err(err) if err.code() == Some(&SqlState::INSUFFICIENT_PRIVILEGE) => {
                let role = match client
                    .query_typed_one("SELECT current_user::text", &[])
                    .await
                {
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
        let who = leader_election::backend::quoted(&role);
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
            // catalog (on the table's name, or on its row type's name, which PostgreSQL reports
            // as a duplicate object), and the table exists either way.
            Err(err)
                if err.code() == Some(&SqlState::UNIQUE_VIOLATION)
                    || err.code() == Some(&SqlState::DUPLICATE_TABLE)
                    || err.code() == Some(&SqlState::DUPLICATE_OBJECT) =>
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
}
