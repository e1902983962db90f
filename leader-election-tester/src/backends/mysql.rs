//! The MySQL backend (`leader-election-mysql`): MySQL or MariaDB at `--mysql-url`, or a MariaDB
//! server started by `--spawn-mysql`, whose crash and restart (on its data) is a server fault;
//! the election named by the key; the operator's hands are SQL on the election's rows.

use std::fmt;
use std::sync::Arc;

use clap::Args;
use leader_election::{BoxLeaseStore, ElectionBuilder, LeaderElectionOptions};
use leader_election_fixtures::MariaDb;
use leader_election_mysql::mysql_async::prelude::Queryable;
use leader_election_mysql::{DEFAULT_TABLE, MysqlLeaderElection, mysql_async};
use serde::{Deserialize, Serialize};

use super::{Backend, BackendSpec, BoxFuture, OperatorAction, Server, redact_url};
use crate::faults::FaultKind;

/// The default URL: the docker-compose file's `mysql` service (MariaDB).
const DEFAULT_URL: &str = "mysql://root:mysql@127.0.0.1:3306/elections";

/// `DELETE` the election's lease row.
const DELETE: OperatorAction = OperatorAction::new("mysql_delete", "DELETE the lease row");
/// `UPDATE` the election's lease row with a garbage holder and lease id.
const UPDATE_GARBAGE: OperatorAction =
    OperatorAction::new("mysql_update_garbage", "UPDATE the lease row with garbage");
/// `DELETE` every row of the election (lease, guard, candidate and record rows, and those of
/// the elections named after it, such as `--jobs`'), as the blanket `DELETE FROM` the table
/// does.
const DELETE_ALL: OperatorAction = OperatorAction::new(
    "mysql_delete_all",
    "DELETE every row of the election, the guard too",
)
.removing_records();

/// How to reach MySQL.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Args)]
#[group(skip)]
pub(crate) struct Settings {
    /// MySQL or MariaDB URL (`--backend mysql`): `mysql://user:password@host:3306/database`.
    #[arg(
        id = "mysql_url",
        value_name = "URL",
        long = "mysql-url",
        env = "MYSQL_URL",
        default_value = DEFAULT_URL,
        hide_env_values = true
    )]
    pub(crate) url: String,
    /// Run a MariaDB server for the run (Debian's `mariadb-server`, see
    /// `scripts/install-mariadb.sh`), in place of --mysql-url; `mixed` then kills it and starts
    /// it again on its data, as `server-restart`.
    #[arg(id = "spawn_mysql", long = "spawn-mysql")]
    #[serde(skip)]
    pub(crate) spawn: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            url: DEFAULT_URL.to_owned(),
            spawn: false,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("mysql::Settings")
            .field("url", &redact_url(&self.url))
            .field("spawn", &self.spawn)
            .finish()
    }
}

/// Runs `statement` with `params` through a connection of its own.
async fn execute(
    spec: &BackendSpec,
    statement: String,
    params: mysql_async::Params,
) -> Result<(), String> {
    let opts = mysql_async::Opts::from_url(&spec.mysql.url).map_err(|e| format!("mysql: {e}"))?;
    let mut conn = mysql_async::Conn::new(opts)
        .await
        .map_err(|e| format!("mysql: {e}"))?;
    let result = conn
        .exec_drop(statement, params)
        .await
        .map_err(|e| format!("mysql: {e}"));
    let _ = conn.disconnect().await;
    result
}

/// `--backend mysql`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mysql;

impl Backend for Mysql {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn about(&self) -> &'static str {
        "A MySQL or MariaDB server (crate `leader-election-mysql`)"
    }

    fn spawn_option(&self) -> Option<(&'static str, &'static [FaultKind])> {
        Some(("--spawn-mysql", &[FaultKind::ServerRestart]))
    }

    fn spawn_requested(&self, spec: &BackendSpec) -> bool {
        spec.mysql.spawn
    }

    fn spawn<'a>(
        &'a self,
        spec: &'a mut BackendSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Server>, String>> {
        Box::pin(async move {
            // The fixture panics when MariaDB is missing or does not start: report that.
            let server = tokio::spawn(MariaDb::start())
                .await
                .map_err(|e| format!("cannot start MariaDB: {e}"))?;
            spec.mysql.url = server.url();
            Ok(Arc::new(Spawned(server)) as Arc<dyn Server>)
        })
    }

    fn urls<'s>(&self, spec: &'s mut BackendSpec) -> Vec<&'s mut String> {
        vec![&mut spec.mysql.url]
    }

    fn default_port(&self) -> u16 {
        3306
    }

    fn open(
        &self,
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        MysqlLeaderElection::builder()
            .url(spec.mysql.url.clone())
            .election(spec.key.clone())
            .options(options.clone())
            .build_store()
            .map(BoxLeaseStore::new)
            .map_err(|e| format!("mysql: {e}"))
    }

    fn reach(&self, spec: &BackendSpec) -> Option<(String, &'static str)> {
        Some((
            format!("MySQL at {}", redact_url(&spec.mysql.url)),
            "start it (`docker compose up -d mysql`), pass --mysql-url / MYSQL_URL, or --spawn-mysql",
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
        let key = spec.key.clone();
        let (statement, params) = match action {
            UPDATE_GARBAGE => (
                format!(
                    "UPDATE {DEFAULT_TABLE} SET holder = 'operator', lease_id = 'garbage' \
                     WHERE election = ?"
                ),
                mysql_async::Params::from((key,)),
            ),
            // Every row whose key starts with the election's name.
            DELETE_ALL => (
                format!("DELETE FROM {DEFAULT_TABLE} WHERE LEFT(election, ?) = ?"),
                mysql_async::Params::from((key.len(), key)),
            ),
            _ => (
                format!("DELETE FROM {DEFAULT_TABLE} WHERE election = ?"),
                mysql_async::Params::from((key,)),
            ),
        };
        Box::pin(execute(spec, statement, params))
    }
}

/// The MariaDB server of `--spawn-mysql`.
#[derive(Debug)]
struct Spawned(MariaDb);

impl Server for Spawned {
    fn name(&self) -> String {
        "mariadb".to_owned()
    }

    fn describe(&self) -> String {
        format!("started MariaDB on 127.0.0.1:{}", self.0.port())
    }

    fn fault_text(&self, _kind: FaultKind) -> String {
        "kill MariaDB and start it again on its data (a crash)".to_owned()
    }

    fn restored_text(&self, _kind: FaultKind) -> String {
        "MariaDB is back".to_owned()
    }

    /// InnoDB on disk: the lease rows survive, and a leader whose renewal gets through once
    /// the server is back keeps its term.
    fn restart_keeps_data(&self) -> bool {
        true
    }

    fn restart(self: Arc<Self>) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move {
            // The fixture panics when the server does not come back: say so.
            tokio::spawn(async move {
                self.0.kill().await;
                self.0.restart().await;
            })
            .await
            .map_err(|e| format!("MariaDB did not come back: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_replaces_the_host_and_port_and_spawning_offers_the_restart() {
        let mut spec = BackendSpec::on("mysql");
        spec.mysql.url = "mysql://app:secret@127.0.0.1:3307/app".into();
        assert_eq!(
            Mysql.upstreams(&spec),
            Ok(vec!["127.0.0.1:3307".parse().unwrap()])
        );
        let via = Mysql.via(&spec, &["127.0.0.1:4242".parse().unwrap()]);
        assert_eq!(via.mysql.url, "mysql://app:secret@127.0.0.1:4242/app");
        assert!(Mysql.server_faults(&spec).is_empty());
        spec.mysql.spawn = true;
        assert_eq!(Mysql.spawn_flag(&spec), Some("--spawn-mysql"));
        assert_eq!(Mysql.server_faults(&spec), &[FaultKind::ServerRestart]);
        assert!(!format!("{:?}", spec.mysql).contains("secret"));
    }
}
