//! What a store remembers of the item between operations (the version it watches, the leases
//! it holds, the highest token seen), and the time budget of one operation.

use super::*;

/// What this store knows of the item.
#[derive(Debug, Default)]
pub(super) struct State {
    /// The version this store is watching (the last it saw) and when it first saw it.
    pub(super) watch: Option<Watch>,
    /// This store has seen the item present: a missing item was deleted (or the service lost
    /// it), and its holder may still trust its lease.
    pub(super) present_seen: bool,
    /// The leases this store holds, by lease id: the version of its last write and the token.
    pub(super) owned: HashMap<String, Owned>,
    /// The highest token this store has seen, a floor for the next one.
    pub(super) highest_token: u64,
    /// The highest token this store has seen in a record naming a holder (or written itself):
    /// a released record with a greater token belongs to a term it never saw held.
    pub(super) highest_held: u64,
    /// The longest lease this store has seen recorded.
    pub(super) longest_lease: Duration,
}

#[derive(Clone, Debug)]
pub(super) struct Owned {
    pub(super) version: String,
    pub(super) token: u64,
}

/// One read of the item: the condition that ties a write to the version read (`None` when the
/// item is missing), what it holds, and this store's watch over it.
#[derive(Debug)]
pub(super) struct Look {
    pub(super) condition: Option<Condition>,
    pub(super) seen: Seen,
    pub(super) watch: Watch,
}

/// The condition expression of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Condition {
    /// `attribute_not_exists(pk)`: only if the item is missing.
    Missing,
    /// `#v = :v`: only if the item is still at this version.
    Version(String),
    /// `attribute_exists(pk) AND NOT attribute_type(#v, :s)`: only if the item is present and
    /// holds no version of this crate (an item written by somebody else, watched for a lease).
    /// Every record of this crate has a string version, so a write on this condition can
    /// follow no write of this crate.
    Foreign,
}

/// The time budget of one operation, shared by its requests.
pub(super) struct Budget {
    pub(super) start: Instant,
    pub(super) total: Duration,
}

impl Budget {
    pub(super) fn new(total: Duration) -> Self {
        Self {
            start: Instant::now(),
            total,
        }
    }

    pub(super) fn left(&self) -> Duration {
        self.total.saturating_sub(self.start.elapsed())
    }

    pub(super) fn end(&self) -> Instant {
        self.start + self.total
    }
}

impl DynamoDbLeaseStore {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every field is replaced in single assignments, so a poisoned lock still holds
        // consistent values.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a successful write of `record` as `version`: this store's own write is the
    /// version it watches now, and the lease is this store's unless released.
    pub(super) fn wrote(&self, lease_id: &str, version: String, record: Record) {
        {
            let mut state = self.state();
            if record.holder.is_some() {
                // A conditional write of this lease succeeded: no other lease id of this store
                // can hold it any more (one whose term ended by its deadline, unrenewed).
                state.owned.clear();
                state.owned.insert(
                    lease_id.to_owned(),
                    Owned {
                        version: version.clone(),
                        token: record.token,
                    },
                );
            } else {
                state.owned.remove(lease_id);
            }
        }
        self.observe(Some(Version::new(version)), Seen::Record(record));
    }

    pub(super) fn forget(&self, lease_id: &str) {
        self.state().owned.remove(lease_id);
    }

    /// The version of this store's last write of `request`'s lease with `token`, if any.
    pub(super) fn owned_version(
        &self,
        request: &LeaseRequest,
        token: FencingToken,
    ) -> Option<String> {
        self.state()
            .owned
            .get(&request.lease_id)
            .filter(|owned| owned.token == token.get())
            .map(|owned| owned.version.clone())
    }
}
