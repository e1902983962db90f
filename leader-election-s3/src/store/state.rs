//! What a store remembers of the object between operations (the version it watches, the
//! leases it holds, the highest token seen), and the time budget of one operation.

use super::*;

/// What this store knows of the object.
#[derive(Debug, Default)]
pub(super) struct State {
    /// The version this store is watching (the last it saw) and when it first saw it.
    pub(super) watch: Option<Watch>,
    /// What that version holds, when it was read.
    pub(super) seen: Option<Seen>,
    /// This store has seen the object present: a missing object was deleted (or the store
    /// restarted empty), and its holder may still trust its lease.
    pub(super) present_seen: bool,
    /// The leases this store holds, by lease id: the ETag of its last write and the token.
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
    pub(super) etag: String,
    pub(super) token: u64,
}

/// One read of the object: its ETag, what it holds, and this store's watch over it.
#[derive(Debug)]
pub(super) struct Look {
    pub(super) etag: Option<String>,
    pub(super) seen: Seen,
    pub(super) watch: Watch,
}

/// The condition of a write.
#[derive(Clone, Debug)]
pub(super) enum Condition {
    /// `If-None-Match: *`: only if the object is missing.
    Missing,
    /// `If-Match: <etag>`: only if the object is still this version.
    Version(String),
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

impl S3LeaseStore {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every field is replaced in single assignments, so a poisoned lock still holds
        // consistent values.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// After a successful write of `record` as version `etag`: this store's own write is the
    /// version it watches now, and the lease is this store's unless released.
    pub(super) fn wrote(&self, lease_id: &str, etag: String, record: Record) {
        {
            let mut state = self.state();
            if record.holder.is_some() {
                // A conditional write of this lease succeeded: no other lease id of this store
                // can hold it any more (one whose term ended by its deadline, unrenewed).
                state.owned.clear();
                state.owned.insert(
                    lease_id.to_owned(),
                    Owned {
                        etag: etag.clone(),
                        token: record.token,
                    },
                );
            } else {
                state.owned.remove(lease_id);
            }
        }
        // A write's reply has no Last-Modified: the next read restarts the watch once more.
        self.observe(Some(Version::new(etag, None)), Seen::Record(record));
    }

    pub(super) fn forget(&self, lease_id: &str) {
        self.state().owned.remove(lease_id);
    }

    /// The ETag of this store's last write of `request`'s lease with `token`, if any.
    pub(super) fn owned_etag(&self, request: &LeaseRequest, token: FencingToken) -> Option<String> {
        self.state()
            .owned
            .get(&request.lease_id)
            .filter(|owned| owned.token == token.get())
            .map(|owned| owned.etag.clone())
    }
}
