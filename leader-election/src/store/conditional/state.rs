//! What a store remembers of the lease object between operations (the version it watches, the
//! leases it holds, the highest token seen), and how it reads the object.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    Budget, Condition, ConditionalObjects, ConditionalStore, Failure, LeaseRecord, Read, Seen,
    Watch,
};
use crate::error::{Operation, Result};
use crate::store::LeaseRequest;
use crate::token::FencingToken;

/// What this store knows of the object.
#[derive(Debug)]
pub(super) struct State<V> {
    /// The version this store is watching (the last it saw) and when it first saw it.
    pub(super) watch: Option<Watch<V>>,
    /// What that version holds, when it was read.
    pub(super) seen: Option<Seen>,
    /// This store has seen the object present: a missing object was deleted (or the service
    /// lost it), and its holder may still trust its lease.
    pub(super) present_seen: bool,
    /// The leases this store holds, by lease id: the version of its last write and the token.
    pub(super) owned: HashMap<String, (V, u64)>,
    /// The highest token this store has seen, a floor for the next one.
    pub(super) highest_token: u64,
    /// The highest token this store has seen in a record naming a holder (or written itself):
    /// a released record with a greater token belongs to a term it never saw held.
    pub(super) highest_held: u64,
    /// The longest lease this store has seen recorded.
    pub(super) longest_lease: Duration,
}

impl<V> Default for State<V> {
    fn default() -> Self {
        Self {
            watch: None,
            seen: None,
            present_seen: false,
            owned: HashMap::new(),
            highest_token: 0,
            highest_held: 0,
            longest_lease: Duration::ZERO,
        }
    }
}

/// One read of the object: its version (`None`: missing), what it holds, and this store's
/// watch over it.
#[derive(Debug)]
pub(super) struct Look<V> {
    pub(super) version: Option<V>,
    pub(super) seen: Seen,
    pub(super) watch: Watch<V>,
}

impl<B: ConditionalObjects> ConditionalStore<B> {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State<B::Version>> {
        // Every field is replaced in single assignments, so a poisoned lock still holds
        // consistent values.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a successful write of `record` as `version`: this store's own write is the
    /// version it watches now, and the lease is this store's unless released.
    pub(super) fn wrote(&self, lease_id: &str, version: B::Version, record: LeaseRecord) {
        {
            let mut state = self.state();
            if record.holder.is_some() {
                // A conditional write of this lease succeeded: no other lease id of this store
                // can hold it any more (one whose term ended by its deadline, unrenewed).
                state.owned.clear();
                state
                    .owned
                    .insert(lease_id.to_owned(), (version.clone(), record.token));
            } else {
                state.owned.remove(lease_id);
            }
        }
        self.observe(Some(version), Seen::Record(record));
    }

    pub(super) fn forget(&self, lease_id: &str) {
        self.state().owned.remove(lease_id);
    }

    /// The version of this store's last write of `request`'s lease with `token`, if any.
    pub(super) fn owned_version(
        &self,
        request: &LeaseRequest,
        token: FencingToken,
    ) -> Option<B::Version> {
        self.state()
            .owned
            .get(&request.lease_id)
            .filter(|(_, owned)| *owned == token.get())
            .map(|(version, _)| version.clone())
    }

    /// Reads the object (asking the backend whether it is still at the version this store
    /// read last, when it read one) and updates the watch.
    pub(super) async fn look(
        &self,
        budget: &Budget,
        operation: Operation,
    ) -> Result<Look<B::Version>> {
        let cached = {
            let state = self.state();
            match (&state.watch, &state.seen) {
                (Some(watch), Some(seen)) => watch.version.clone().map(|v| (v, seen.clone())),
                _ => None,
            }
        };
        let read = budget
            .run(
                self.backend
                    .read(&self.key, cached.as_ref().map(|(v, _)| v)),
            )
            .await
            .map_err(|f| self.fail(f, operation, false))?;
        Ok(match (read, cached) {
            (Read::Missing, _) => self.observe(None, Seen::Missing),
            (Read::Unchanged, Some((version, seen))) => self.observe(Some(version), seen),
            (Read::Unchanged, None) => {
                return Err(self.fail(
                    Failure::new(
                        super::FailureKind::Invalid,
                        "the backend answered `Unchanged` to a read of no known version",
                    ),
                    operation,
                    false,
                ));
            }
            (Read::Found(version, body), _) => {
                let seen = match self.backend.decode_lease(&body) {
                    Ok(record) => Seen::Record(record),
                    Err(reason) => Seen::Unreadable(reason),
                };
                let new =
                    self.state().watch.as_ref().map(|w| &w.version) != Some(&Some(version.clone()));
                if let Seen::Unreadable(reason) = &seen
                    && new
                {
                    tracing::warn!(
                        election = %self.election_name,
                        %reason,
                        "the lease {} is not a record of this backend: held by an unknown \
                         holder until it stays unchanged for a lease",
                        self.backend.terms().object,
                    );
                }
                self.observe(Some(version), seen)
            }
        })
    }

    /// Records that the object is at `version` holding `seen`, as of a response just
    /// received: the watch restarts when the version is new.
    pub(super) fn observe(&self, version: Option<B::Version>, seen: Seen) -> Look<B::Version> {
        let now = Instant::now();
        let date = self.backend.service_time();
        let mut state = self.state();
        let same = state.watch.as_ref().is_some_and(|w| w.version == version);
        if !same {
            state.watch = Some(Watch {
                version: version.clone(),
                since: now,
                date,
            });
        }
        match &seen {
            Seen::Record(record) => {
                state.present_seen = true;
                state.highest_token = state.highest_token.max(record.token);
                if record.holder.is_some() {
                    state.highest_held = state.highest_held.max(record.token);
                }
                state.longest_lease = state.longest_lease.max(record.lease());
            }
            Seen::Unreadable(_) => state.present_seen = true,
            Seen::Missing => {}
        }
        state.seen = Some(seen.clone());
        let watch = state.watch.clone().expect("set above");
        Look {
            version,
            seen,
            watch,
        }
    }

    /// Writes `record` as the lease object on `condition`; answers its new version.
    pub(super) async fn put(
        &self,
        budget: &Budget,
        condition: Condition<&B::Version>,
        record: &LeaseRecord,
    ) -> std::result::Result<B::Version, Failure> {
        let body = self.backend.encode_lease(record);
        budget
            .run(self.backend.write(&self.key, condition, body))
            .await
    }
}
