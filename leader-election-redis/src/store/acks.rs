//! Replica acknowledgements (`WAIT`) that are provably about the write they follow.
//!
//! `WAIT` counts the replicas holding the writes of the connection it is sent on. fred sends a
//! command on whatever connection the client has when it is written: after a reconnect between
//! the script's reply and `WAIT` (a killed connection, a virtual IP moved to another server),
//! `WAIT` runs on a connection that made no write, or on another server, and answers at once
//! with replicas that never saw the write. So the store reads the connection's identity
//! (`CLIENT INFO`: the server's client id and both ends' addresses) before the script and
//! again after `WAIT`, each command sent only once the previous one answered. A client's
//! connections to one server follow one another and are never reused, so an identity seen
//! before the script and again after `WAIT` is one connection that carried the script and
//! then `WAIT`; a different identity is an unknown outcome.

use std::sync::atomic::Ordering;

use fred::interfaces::ClientLike;
use fred::types::{ClusterHash, CustomCommand, Value};
use leader_election::{Error, Operation, Result};

use super::RedisLeaseStore;
use crate::error::map_fred;

/// One connection's identity, from `CLIENT INFO`: `id=`, `addr=` and `laddr=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Connection(String);

/// What a write must be acknowledged by: the replicas wanted, and the connection it is sent on.
#[derive(Debug)]
pub(super) struct Acks {
    wanted: u32,
    connection: Connection,
}

impl RedisLeaseStore {
    /// Before a write that replicas must acknowledge: the connection it will be sent on. `None`
    /// when [`min_replica_acks`](Self::min_replica_acks) is 0.
    pub(super) async fn before_write(&self, operation: Operation) -> Result<Option<Acks>> {
        let wanted = self.min_replica_acks();
        if wanted == 0 {
            return Ok(None);
        }
        let connection = self.connection(operation).await?;
        Ok(Some(Acks { wanted, connection }))
    }

    /// Waits (`WAIT`) until the replicas wanted hold every write sent so far on the
    /// connection of `acks`, then checks that `WAIT` ran on that connection. Fewer replicas,
    /// or another connection, is an unknown outcome of `operation`: its write reached the
    /// primary but may not survive a failover.
    pub(super) async fn await_replicas(
        &self,
        operation: Operation,
        acks: Option<Acks>,
    ) -> Result<()> {
        let Some(Acks { wanted, connection }) = acks else {
            return Ok(());
        };
        #[cfg(test)]
        self.pause_before_wait().await;
        // Half the command timeout: the server answers (with the count so far) before the
        // client gives up on the reply.
        let wait_ms = (self.inner.timeout_ms.load(Ordering::Relaxed) / 2).max(1);
        let command =
            CustomCommand::new_static("WAIT", ClusterHash::Custom(self.inner.keys.slot), true);
        let acked: Value = self
            .inner
            .client
            .with_options(&self.command_options())
            .custom(
                command,
                vec![
                    Value::Integer(i64::from(wanted)),
                    Value::Integer(i64::try_from(wait_ms).unwrap_or(i64::MAX)),
                ],
            )
            .await
            .map_err(|e| map_fred(operation, e))?;
        let acked = acked.as_u64().ok_or_else(|| {
            Error::invalid_data(operation, "WAIT answered something else than a count")
        })?;
        let after = self.connection(operation).await?;
        if after != connection {
            return Err(Error::outcome_unknown(
                operation,
                format!(
                    "the connection changed between the write and WAIT (from `{}` to `{}`): \
                     WAIT's count is not about this write, so it is not believed",
                    connection.0, after.0
                ),
            ));
        }
        if acked >= u64::from(wanted) {
            return Ok(());
        }
        Err(Error::outcome_unknown(
            operation,
            format!(
                "only {acked} of {wanted} replicas acknowledged within {wait_ms} ms \
                 (min_replica_acks = {wanted}): not believed, a failover could lose it"
            ),
        ))
    }

    /// When replicas must acknowledge writes: proves, before the store is used, that the
    /// server tells a connection's identity (`CLIENT INFO`, Redis 6.2 or later, allowed to
    /// this user), without which no acknowledgement could be believed (DESIGN.md rule 12).
    pub(super) async fn check_acks_provable(&self) -> Result<()> {
        if self.min_replica_acks() == 0 {
            return Ok(());
        }
        self.connection(Operation::Connect)
            .await
            .map_err(|err| match err {
                Error::Backend { source, .. } => Error::backend(
                    Operation::Connect,
                    false,
                    format!(
                        "min_replica_acks needs `CLIENT INFO` (Redis 6.2 or later, allowed to \
                         this user by its ACL) to tell that WAIT runs on the connection of the \
                         write it acknowledges: {source}"
                    ),
                ),
                other => other,
            })
            .map(drop)
    }

    /// The identity of the connection the next command goes out on, as of its answer.
    async fn connection(&self, operation: Operation) -> Result<Connection> {
        let command =
            CustomCommand::new_static("CLIENT", ClusterHash::Custom(self.inner.keys.slot), false);
        let info: Value = self
            .inner
            .client
            .with_options(&self.command_options())
            .custom(command, vec![Value::from("INFO")])
            .await
            .map_err(|e| map_fred(operation, e))?;
        let info = info.as_string().ok_or_else(|| {
            Error::invalid_data(operation, "CLIENT INFO answered something else than text")
        })?;
        identity(&info).ok_or_else(|| {
            Error::invalid_data(
                operation,
                format!(
                    "CLIENT INFO named no connection id: {}",
                    leader_election::backend::quoted(&info)
                ),
            )
        })
    }

    /// Tests only: the next write stops before its `WAIT` (see
    /// [`PauseBeforeWait`](super::PauseBeforeWait)).
    #[cfg(test)]
    pub(crate) fn set_pause_before_wait(&self, pause: super::PauseBeforeWait) {
        *self
            .inner
            .before_wait
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(pause);
    }

    #[cfg(test)]
    async fn pause_before_wait(&self) {
        let pause = self
            .inner
            .before_wait
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some((arrived, go_on)) = pause {
            let _ = arrived.send(());
            let _ = go_on.await;
        }
    }
}

/// A connection's identity in a `CLIENT INFO` line: its `id=`, `addr=` and `laddr=` fields
/// (the id alone could repeat on another server, or on the same one after a restart). `None`
/// without an id.
fn identity(info: &str) -> Option<Connection> {
    let field = |name: &str| {
        info.split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
    };
    let id = field("id")?;
    let addr = field("addr").unwrap_or("?");
    let laddr = field("laddr").unwrap_or("?");
    Some(Connection(format!("id={id} addr={addr} laddr={laddr}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_its_id_and_both_addresses() {
        let line = "id=24 addr=127.0.0.1:41192 laddr=127.0.0.1:29188 fd=8 name= age=0 idle=0 \
                    flags=N db=0 cmd=client|info user=default redir=-1 resp=2\n";
        let later = line.replace("age=0 idle=0", "age=9 idle=3");
        assert_eq!(identity(line), identity(&later));
        assert_eq!(
            identity(line).unwrap().0,
            "id=24 addr=127.0.0.1:41192 laddr=127.0.0.1:29188"
        );
        // Another server may hand out the same id.
        let elsewhere = line.replace("laddr=127.0.0.1:29188", "laddr=127.0.0.1:29189");
        assert_ne!(identity(line), identity(&elsewhere));
        assert_ne!(identity(line), identity(&line.replace("id=24", "id=25")));
        assert_eq!(identity("flags=N db=0"), None);
        assert_eq!(identity(""), None);
    }
}
