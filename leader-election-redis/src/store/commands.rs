//! Sending a store's commands: connecting, subscribing to releases, and running the
//! election's Lua scripts by SHA1 (loaded once per server, again after `NOSCRIPT`), with the
//! arguments they take.

use std::fmt;
use std::sync::PoisonError;
use std::time::Duration;

use fred::interfaces::ClientLike;
use fred::prelude::ClientState;
use fred::types::{ClusterHash, CustomCommand, Value};
use leader_election::store::LeaseRequest;
use leader_election::{Error, LeaseStore, Operation, Result};

use super::RedisLeaseStore;
use crate::error::{is_noscript, map_fred};
use crate::scripts::{self, Script};

impl RedisLeaseStore {
    pub(super) async fn ensure_connected(&self) -> Result<()> {
        let client = &self.inner.client;
        match client.state() {
            ClientState::Connected => Ok(()),
            // Never connected, or gave up: start the connection task (again).
            ClientState::Disconnected => client
                .init()
                .await
                .map(drop)
                .map_err(|e| map_fred(Operation::Connect, e)),
            // The connection task is (re)connecting already: wait for its next attempt.
            ClientState::Connecting | ClientState::Disconnecting => client
                .wait_for_connect()
                .await
                .map_err(|e| map_fred(Operation::Connect, e)),
        }
    }

    pub(super) async fn ensure_subscribed(&self) -> Result<()> {
        self.inner
            .hub
            .register(&self.inner.keys.channel, &self.inner.notifier)
            .await
    }

    pub(super) async fn load(&self, script: Script) -> Result<String> {
        let command =
            CustomCommand::new_static("SCRIPT", ClusterHash::Custom(self.inner.keys.slot), false);
        let sha: Value = self
            .inner
            .client
            .with_options(&self.command_options())
            .custom(command, vec![Value::from("LOAD"), script.source().into()])
            .await
            .map_err(|e| map_fred(Operation::Connect, e))?;
        let sha = sha.as_string().ok_or_else(|| {
            Error::invalid_data(Operation::Connect, "SCRIPT LOAD answered no SHA1")
        })?;
        self.shas()[script.index()] = Some(sha.clone());
        Ok(sha)
    }

    pub(super) fn shas(&self) -> std::sync::MutexGuard<'_, [Option<String>; Script::COUNT]> {
        // Each slot is replaced in one assignment, so a poisoned lock still holds valid data.
        self.inner
            .shas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `script` by SHA1, loading it first if needed and again once on `NOSCRIPT`.
    pub(super) async fn run(
        &self,
        script: Script,
        keys: &[&str],
        args: Vec<Value>,
    ) -> Result<Value> {
        let operation = script.operation();
        let cached = self.shas()[script.index()].clone();
        let sha = match cached {
            Some(sha) => sha,
            None => self.load(script).await.map_err(|e| retag(e, operation))?,
        };
        match self.evalsha(&sha, keys, args.clone()).await {
            Err(err) if is_noscript(&err) => {
                // Not run at all: the server lost its script cache (restart, failover, SCRIPT
                // FLUSH). Load it and try once more.
                tracing::debug!(script = ?script, "NOSCRIPT: reloading the script");
                let sha = self.load(script).await.map_err(|e| retag(e, operation))?;
                self.evalsha(&sha, keys, args)
                    .await
                    .map_err(|e| map_fred(operation, e))
            }
            result => result.map_err(|e| map_fred(operation, e)),
        }
    }

    async fn evalsha(
        &self,
        sha: &str,
        keys: &[&str],
        args: Vec<Value>,
    ) -> std::result::Result<Value, fred::error::Error> {
        let command =
            CustomCommand::new_static("EVALSHA", ClusterHash::Custom(self.inner.keys.slot), false);
        let mut all = Vec::with_capacity(2 + keys.len() + args.len());
        all.push(Value::from(sha));
        all.push(Value::Integer(keys.len() as i64));
        all.extend(keys.iter().map(|k| Value::from(*k)));
        all.extend(args);
        self.inner
            .client
            .with_options(&self.command_options())
            .custom(command, all)
            .await
    }
}

/// Errors met while loading a script on behalf of `operation` are reported as that operation's.
fn retag(err: Error, operation: Operation) -> Error {
    match err {
        Error::Backend {
            retryable, source, ..
        } => Error::backend(operation, retryable, SharedSource(source)),
        Error::InvalidData { message, .. } => Error::invalid_data(operation, message),
        other => other,
    }
}

/// Keeps an already shared error as the source of a new one.
#[derive(Debug)]
struct SharedSource(leader_election::SharedError);

impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// `duration` in whole milliseconds, rounded up: a lease sent as a shorter one could expire on
/// the server before its holder's `sent_at + ttl`.
pub(super) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// The metadata argument of the acquire and renew scripts: hex, empty for none. Checked first,
/// so that metadata over the limit writes nothing.
pub(super) fn metadata_arg(store: &RedisLeaseStore, request: &LeaseRequest) -> Result<Value> {
    match &request.metadata {
        Some(metadata) => {
            store.check_metadata(metadata)?;
            Ok(Value::from(scripts::to_hex(metadata)))
        }
        None => Ok(Value::from("")),
    }
}

pub(super) fn ttl_ms(ttl: Duration) -> Value {
    let ms = i64::try_from(duration_ms(ttl)).unwrap_or(i64::MAX).max(1);
    Value::Integer(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_rounded_up_to_whole_milliseconds() {
        // Rounding down would let the backend expire a lease before `sent_at + ttl`.
        assert_eq!(ttl_ms(Duration::from_micros(1500)), Value::Integer(2));
        assert_eq!(ttl_ms(Duration::from_nanos(1_000_001)), Value::Integer(2));
        assert_eq!(ttl_ms(Duration::from_millis(1500)), Value::Integer(1500));
        assert_eq!(ttl_ms(Duration::ZERO), Value::Integer(1));
        assert_eq!(ttl_ms(Duration::MAX), Value::Integer(i64::MAX));
    }
}
