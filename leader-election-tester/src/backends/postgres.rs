//! The PostgreSQL backend (`leader-election-postgres`): a server at `--postgres-url`, the
//! election named by the key; the operator's hands are SQL on the election's rows.

use std::fmt;

use clap::Args;
use leader_election::{BoxLeaseStore, ElectionBuilder, LeaderElectionOptions};
use leader_election_postgres::{DEFAULT_TABLE, PostgresLeaderElection};
use serde::{Deserialize, Serialize};

use super::{Backend, BackendSpec, BoxFuture, OperatorAction, redact_url};

/// The default URL: the docker-compose file's `postgres` service.
const DEFAULT_URL: &str = "postgres://postgres:postgres@127.0.0.1:5432/postgres";

/// `DELETE` the election's row.
const DELETE: OperatorAction = OperatorAction::new("postgres_delete", "DELETE the lease row");
/// `UPDATE` the election's row with garbage holder and lease id.
const UPDATE_GARBAGE: OperatorAction = OperatorAction::new(
    "postgres_update_garbage",
    "UPDATE the lease row with garbage",
);
/// `DELETE` every row of the election (lease, guard, candidate and record rows, and those of
/// the elections named after it, such as `--jobs`'), as the blanket `DELETE FROM` the table
/// does.
const DELETE_ALL: OperatorAction = OperatorAction::new(
    "postgres_delete_all",
    "DELETE every row of the election, the guard too",
)
.removing_records();

/// How to reach PostgreSQL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Args)]
#[group(skip)]
pub(crate) struct Settings {
    /// PostgreSQL URL (`--backend postgres`).
    #[arg(
        id = "postgres_url",
        value_name = "URL",
        long = "postgres-url",
        env = "DATABASE_URL",
        default_value = DEFAULT_URL,
        hide_env_values = true
    )]
    pub(crate) url: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("postgres::Settings")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// Runs `statement` with the election's name as `$1`, through a connection of its own.
async fn execute(spec: &BackendSpec, statement: String) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(&spec.postgres.url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("postgres: {e}"))?;
    let connection = tokio::spawn(connection);
    let result = client
        .execute(&statement, &[&spec.key])
        .await
        .map(drop)
        .map_err(|e| format!("postgres: {e}"));
    drop(client);
    let _ = connection.await;
    result
}

/// `--backend postgres`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Postgres;

impl Backend for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn about(&self) -> &'static str {
        "A PostgreSQL server (crate `leader-election-postgres`)"
    }

    fn urls<'s>(&self, spec: &'s mut BackendSpec) -> Vec<&'s mut String> {
        vec![&mut spec.postgres.url]
    }

    fn default_port(&self) -> u16 {
        5432
    }

    fn open(
        &self,
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        PostgresLeaderElection::builder()
            .connection_string(spec.postgres.url.clone())
            .election(spec.key.clone())
            .options(options.clone())
            .build_store()
            .map(BoxLeaseStore::new)
            .map_err(|e| format!("postgres: {e}"))
    }

    fn reach(&self, spec: &BackendSpec) -> Option<(String, &'static str)> {
        Some((
            format!("PostgreSQL at {}", redact_url(&spec.postgres.url)),
            "start it (`docker compose up -d postgres`) or pass --postgres-url / DATABASE_URL",
        ))
    }

    fn operator_actions(&self) -> &'static [OperatorAction] {
        &[DELETE, UPDATE_GARBAGE, DELETE_ALL]
    }

    fn act<'a>(
        &'a self,
        spec: &'a BackendSpec,
        action: OperatorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        let statement = match action {
            UPDATE_GARBAGE => format!(
                "UPDATE {DEFAULT_TABLE} SET holder = 'operator', lease_id = 'garbage' \
                 WHERE election = $1"
            ),
            DELETE_ALL => format!("DELETE FROM {DEFAULT_TABLE} WHERE starts_with(election, $1)"),
            _ => format!("DELETE FROM {DEFAULT_TABLE} WHERE election = $1"),
        };
        Box::pin(execute(spec, statement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_replaces_the_host_and_port_of_the_url() {
        let mut spec = BackendSpec::on("postgres");
        spec.postgres.url = "postgres://app:secret@127.0.0.1:5433/app".into();
        assert_eq!(
            Postgres.upstreams(&spec),
            Ok(vec!["127.0.0.1:5433".parse().unwrap()])
        );
        let via = Postgres.via(&spec, &["127.0.0.1:4242".parse().unwrap()]);
        assert_eq!(via.postgres.url, "postgres://app:secret@127.0.0.1:4242/app");
    }
}
