//! The `operator` fault: the tester's own hands on the lease record, as a person or a script
//! would act with the backend's own tools — deleting the record, overwriting it with garbage,
//! breaking a blob lease —
//! through a connection of its own, never through a contender's.

use std::collections::HashMap;

use leader_election_blob::BlobLeaderElection;
use leader_election_blob::azure::azure_storage_blob::models::BlobClientBreakLeaseOptions;
use leader_election_redis::fred::prelude::{Client, ClientLike, Config, KeysInterface};
use serde::{Deserialize, Serialize};

use crate::backend::{BackendKind, BackendSpec};
use crate::etcd::{KeyAction, act_on_key};

/// One thing an operator does to the lease record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OperatorAction {
    /// Redis: `DEL` the lease key.
    RedisDelete,
    /// Redis: `SET` the lease key to garbage; `DEL` it when the fault is restored.
    RedisGarbageThenDelete,
    /// PostgreSQL: `DELETE` the election's row.
    PostgresDelete,
    /// PostgreSQL: `UPDATE` the election's row with garbage holder and lease id.
    PostgresUpdateGarbage,
    /// PostgreSQL: `DELETE` every row of the election — lease, guard and candidate rows — as
    /// the blanket `DELETE FROM` the table does.
    PostgresDeleteAll,
    /// etcd: delete the election key (`etcdctl del <key>`).
    EtcdDelete,
    /// etcd: put garbage in the election key (`etcdctl put`, no lease); delete it when the
    /// fault is restored.
    EtcdGarbageThenDelete,
    /// Azure Blob: Break Lease with a break period of 0 ("Break lease" in the portal).
    BlobBreak,
    /// Azure Blob: Break Lease (period 0), then delete the blob.
    BlobBreakDelete,
    /// Azure Blob: Break Lease (period 0), then overwrite the blob's metadata with garbage.
    BlobBreakOverwrite,
    /// S3: delete the lease object.
    S3Delete,
    /// S3: overwrite the lease object with a body no contender can read.
    S3Overwrite,
}

impl OperatorAction {
    /// The lower-case name used in reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::RedisDelete => "redis_delete",
            Self::RedisGarbageThenDelete => "redis_garbage_then_delete",
            Self::PostgresDelete => "postgres_delete",
            Self::PostgresUpdateGarbage => "postgres_update_garbage",
            Self::PostgresDeleteAll => "postgres_delete_all",
            Self::EtcdDelete => "etcd_delete",
            Self::EtcdGarbageThenDelete => "etcd_garbage_then_delete",
            Self::BlobBreak => "blob_break",
            Self::BlobBreakDelete => "blob_break_delete",
            Self::BlobBreakOverwrite => "blob_break_overwrite",
            Self::S3Delete => "s3_delete",
            Self::S3Overwrite => "s3_overwrite",
        }
    }

    /// What it does, for the live output.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::RedisDelete => "DEL the lease key",
            Self::RedisGarbageThenDelete => "SET the lease key to garbage (DEL it later)",
            Self::PostgresDelete => "DELETE the lease row",
            Self::PostgresUpdateGarbage => "UPDATE the lease row with garbage",
            Self::PostgresDeleteAll => "DELETE every row of the election, the guard too",
            Self::EtcdDelete => "etcdctl del the election key",
            Self::EtcdGarbageThenDelete => "etcdctl put garbage in the election key (del it later)",
            Self::BlobBreak => "break the blob lease (period 0)",
            Self::BlobBreakDelete => "break the blob lease and delete the blob",
            Self::BlobBreakOverwrite => "break the blob lease and overwrite its metadata",
            Self::S3Delete => "delete the S3 lease object",
            Self::S3Overwrite => "overwrite the S3 lease object with garbage",
        }
    }

    /// The actions an operator can take on `backend`, in the order the schedule takes them;
    /// empty where the tester has no operator's tools for it.
    pub(crate) fn for_backend(backend: BackendKind) -> &'static [Self] {
        match backend {
            BackendKind::Redis => &[Self::RedisDelete, Self::RedisGarbageThenDelete],
            BackendKind::Postgres => &[
                Self::PostgresDelete,
                Self::PostgresUpdateGarbage,
                Self::PostgresDeleteAll,
            ],
            BackendKind::Etcd => &[Self::EtcdDelete, Self::EtcdGarbageThenDelete],
            BackendKind::Blob => &[
                Self::BlobBreak,
                Self::BlobBreakDelete,
                Self::BlobBreakOverwrite,
            ],
            BackendKind::S3 => &[Self::S3Delete, Self::S3Overwrite],
            BackendKind::Memory | BackendKind::BrokenMemory => &[],
        }
    }
}

/// The tester's own connection to the backend, for operator actions.
#[derive(Debug)]
pub(crate) struct Operator {
    spec: BackendSpec,
}

impl Operator {
    /// An operator for the backend of `spec` (connecting for each action, as a person with a
    /// command-line tool would).
    pub(crate) fn new(spec: &BackendSpec) -> Self {
        Self { spec: spec.clone() }
    }

    /// Does `action` to the lease record.
    ///
    /// # Errors
    /// When the backend cannot be reached or refuses the command.
    pub(crate) async fn act(&self, action: OperatorAction) -> Result<(), String> {
        match action {
            OperatorAction::RedisDelete => self.redis(&["DEL"]).await,
            OperatorAction::RedisGarbageThenDelete => self.redis(&["SET", "garbage"]).await,
            OperatorAction::PostgresDelete => {
                self.postgres(&format!(
                    "DELETE FROM {} WHERE election = $1",
                    leader_election_postgres::DEFAULT_TABLE
                ))
                .await
            }
            OperatorAction::PostgresUpdateGarbage => {
                self.postgres(&format!(
                    "UPDATE {} SET holder = 'operator', lease_id = 'garbage' WHERE election = $1",
                    leader_election_postgres::DEFAULT_TABLE
                ))
                .await
            }
            OperatorAction::PostgresDeleteAll => {
                self.postgres(&format!(
                    "DELETE FROM {} WHERE starts_with(election, $1)",
                    leader_election_postgres::DEFAULT_TABLE
                ))
                .await
            }
            OperatorAction::EtcdDelete => act_on_key(&self.spec, KeyAction::Delete).await,
            OperatorAction::EtcdGarbageThenDelete => {
                act_on_key(&self.spec, KeyAction::Garbage).await
            }
            OperatorAction::BlobBreak => self.blob(false, false).await,
            OperatorAction::BlobBreakDelete => self.blob(true, false).await,
            OperatorAction::BlobBreakOverwrite => self.blob(false, true).await,
            OperatorAction::S3Delete => {
                crate::s3::operator(&self.spec.s3, &self.spec.key, false).await
            }
            OperatorAction::S3Overwrite => {
                crate::s3::operator(&self.spec.s3, &self.spec.key, true).await
            }
        }
    }

    /// The second half of an action that has one, done when the fault is restored.
    ///
    /// # Errors
    /// As for [`act`](Self::act).
    pub(crate) async fn follow_up(&self, action: OperatorAction) -> Result<(), String> {
        match action {
            OperatorAction::RedisGarbageThenDelete => self.redis(&["DEL"]).await,
            OperatorAction::EtcdGarbageThenDelete => {
                act_on_key(&self.spec, KeyAction::Delete).await
            }
            _ => Ok(()),
        }
    }

    /// Runs `command` (`DEL` or `SET value`) on the election's lease key.
    async fn redis(&self, command: &[&str]) -> Result<(), String> {
        let config = Config::from_url(&self.spec.redis_url).map_err(|e| format!("redis: {e}"))?;
        let client = Client::new(config, None, None, None);
        client.init().await.map_err(|e| format!("redis: {e}"))?;
        let key = format!("{{{}}}:lease", self.spec.key);
        let result = match command {
            ["DEL"] => client.del::<i64, _>(&key).await.map(drop),
            ["SET", value] => {
                client
                    .set::<(), _, _>(&key, *value, None, None, false)
                    .await
            }
            _ => unreachable!("only DEL and SET are used"),
        };
        let _ = client.quit().await;
        result.map_err(|e| format!("redis: {e}"))
    }

    /// Breaks the election blob's lease at once, then deletes the blob or overwrites its
    /// metadata, with the official SDK client the blob crate hands out.
    async fn blob(&self, delete: bool, overwrite: bool) -> Result<(), String> {
        let client = BlobLeaderElection::builder()
            .connection_string(self.spec.connection_string.clone())
            .container_name(self.spec.container.clone())
            .blob_name(self.spec.blob.clone())
            .build_blob_client()
            .map_err(|e| format!("blob: {e}"))?;
        client
            .break_lease(Some(BlobClientBreakLeaseOptions {
                break_period: Some(0),
                ..Default::default()
            }))
            .await
            .map_err(|e| format!("blob: break lease: {e}"))?;
        if delete {
            client
                .delete(None)
                .await
                .map_err(|e| format!("blob: delete: {e}"))?;
        }
        if overwrite {
            let garbage = HashMap::from([
                ("leader_token".to_owned(), "not-a-number".to_owned()),
                ("leader_instance_id".to_owned(), "%zz".to_owned()),
            ]);
            client
                .set_metadata(&garbage, None)
                .await
                .map_err(|e| format!("blob: set metadata: {e}"))?;
        }
        Ok(())
    }

    /// Runs `statement` with the election's name as `$1`.
    async fn postgres(&self, statement: &str) -> Result<(), String> {
        let (client, connection) =
            tokio_postgres::connect(&self.spec.postgres_url, tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("postgres: {e}"))?;
        let connection = tokio::spawn(connection);
        let result = client
            .execute(statement, &[&self.spec.key])
            .await
            .map(drop)
            .map_err(|e| format!("postgres: {e}"));
        drop(client);
        let _ = connection.await;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_with_a_record_has_actions_and_names_are_unique() {
        let mut names = Vec::new();
        for backend in [
            BackendKind::Redis,
            BackendKind::Postgres,
            BackendKind::Blob,
            BackendKind::Etcd,
            BackendKind::S3,
        ] {
            let actions = OperatorAction::for_backend(backend);
            assert!(actions.len() >= 2, "{backend:?}");
            names.extend(actions.iter().map(|a| a.as_str()));
        }
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(OperatorAction::for_backend(BackendKind::Memory).is_empty());
    }
}
