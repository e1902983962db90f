//! The etcd leases a store granted for the core's candidacies, by the core's lease id.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use etcd_client::KeyValue;
use leader_election::store::LeaseRequest;

/// How many candidacies' etcd leases a store remembers; older ones are forgotten (their etcd
/// leases expire on their own) so that a long-lived store does not grow.
const MAX_REMEMBERED_LEASES: usize = 16;

/// The etcd leases granted for the core's candidacies.
#[derive(Default)]
pub(super) struct Leases {
    pub(super) by_lease_id: HashMap<String, Granted>,
    /// Lease ids, oldest first, to forget the oldest past [`MAX_REMEMBERED_LEASES`].
    pub(super) order: Vec<String>,
}

#[derive(Clone, Debug)]
pub(super) struct Granted {
    /// The etcd lease id.
    pub(super) id: i64,
    pub(super) instance_id: String,
    /// The metadata last written to the election key under this lease, once it was.
    pub(super) published: Option<Option<Vec<u8>>>,
    /// When the lease was last granted or kept alive (a request sent after this instant).
    pub(super) refreshed: Instant,
    /// The token base of the election key this candidacy holds (its token is the key's token
    /// revision plus this), once it does.
    pub(super) base: u64,
    /// The election key's create revision in this candidacy's term, once it holds the key (a
    /// key handed over keeps the create revision it had: see `handover`); 0 before.
    pub(super) key_create: i64,
    /// The fencing token of this candidacy's term, once it holds the key; 0 before.
    pub(super) token: u64,
    /// The successor's claim (`<key>/next`) as this candidacy's last renewal read it, while it
    /// holds the key: the release hands the lease over to it (see `handover`).
    pub(super) claim: Option<KeyValue>,
}

impl Granted {
    /// A lease granted (or found) for `request`, holding no key yet.
    pub(super) fn new(id: i64, request: &LeaseRequest, refreshed: Instant) -> Self {
        Self {
            id,
            instance_id: request.instance_id.clone(),
            published: None,
            refreshed,
            base: 0,
            key_create: 0,
            token: 0,
            claim: None,
        }
    }
}

impl Leases {
    pub(super) fn get(&self, request: &LeaseRequest) -> Option<Granted> {
        self.by_lease_id
            .get(&request.lease_id)
            .filter(|g| g.instance_id == request.instance_id)
            .cloned()
    }

    pub(super) fn insert(&mut self, request: &LeaseRequest, granted: Granted) {
        if self
            .by_lease_id
            .insert(request.lease_id.clone(), granted)
            .is_none()
        {
            self.order.push(request.lease_id.clone());
        }
        while self.order.len() > MAX_REMEMBERED_LEASES {
            let oldest = self.order.remove(0);
            self.by_lease_id.remove(&oldest);
        }
    }

    pub(super) fn remove(&mut self, request: &LeaseRequest) -> Option<Granted> {
        let granted = self.get(request)?;
        self.by_lease_id.remove(&request.lease_id);
        self.order.retain(|id| *id != request.lease_id);
        Some(granted)
    }

    pub(super) fn set_refreshed(&mut self, request: &LeaseRequest, at: Instant) {
        if let Some(granted) = self.by_lease_id.get_mut(&request.lease_id) {
            granted.refreshed = at;
        }
    }

    pub(super) fn set_published(&mut self, request: &LeaseRequest, metadata: Option<Vec<u8>>) {
        if let Some(granted) = self.by_lease_id.get_mut(&request.lease_id) {
            granted.published = Some(metadata);
        }
    }

    /// Records the term `request`'s candidacy holds: the key's token base, create revision and
    /// fencing token.
    pub(super) fn set_term(
        &mut self,
        request: &LeaseRequest,
        base: u64,
        key_create: i64,
        token: u64,
    ) {
        if let Some(granted) = self.by_lease_id.get_mut(&request.lease_id) {
            granted.base = base;
            granted.key_create = key_create;
            granted.token = token;
        }
    }

    pub(super) fn set_claim(&mut self, request: &LeaseRequest, claim: Option<KeyValue>) {
        if let Some(granted) = self.by_lease_id.get_mut(&request.lease_id) {
            granted.claim = claim;
        }
    }
}

/// The etcd lease of the last holder a store saw holding the election key, shared by the
/// store's clones and its watch: the holder with the highest mod revision seen, so that a
/// watch event delivered late (a member behind the others) never replaces a later holder read
/// meanwhile with an earlier one.
#[derive(Debug, Default)]
pub(crate) struct LastHolder(Mutex<Remembered>);

#[derive(Debug, Default)]
struct Remembered {
    /// The etcd lease, until it is known to be gone.
    lease: Option<i64>,
    /// The mod revision of the election key it was seen in; kept when the lease is forgotten,
    /// so that an earlier holder is never remembered again.
    mod_revision: i64,
}

impl LastHolder {
    fn lock(&self) -> MutexGuard<'_, Remembered> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers the etcd lease of `kv`, the election key as read from etcd or as it was when
    /// deleted, unless it is attached to none or a later version of the key was seen.
    pub(crate) fn saw(&self, kv: &KeyValue) {
        self.saw_lease(kv.lease(), kv.mod_revision());
    }

    fn saw_lease(&self, lease: i64, mod_revision: i64) {
        let mut last = self.lock();
        if lease != 0 && mod_revision >= last.mod_revision {
            *last = Remembered {
                lease: Some(lease),
                mod_revision,
            };
        }
    }

    pub(crate) fn get(&self) -> Option<i64> {
        self.lock().lease
    }

    /// Forgets etcd lease `id`, known to be gone, unless a later holder was seen since.
    pub(crate) fn forget(&self, id: i64) {
        let mut last = self.lock();
        if last.lease == Some(id) {
            last.lease = None;
        }
    }

    /// Forgets everything: the cluster lost its data, and its revisions started again.
    pub(crate) fn reset(&self) {
        *self.lock() = Remembered::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_holder_never_replaces_a_later_one() {
        let last = LastHolder::default();
        last.saw_lease(0xb, 12);
        // The deletion of an earlier holder's key, delivered late by a watch.
        last.saw_lease(0xa, 10);
        assert_eq!(last.get(), Some(0xb));
        last.forget(0xb);
        last.saw_lease(0xa, 10);
        assert_eq!(last.get(), None);
        last.saw_lease(0xc, 15);
        assert_eq!(last.get(), Some(0xc));
        last.reset();
        last.saw_lease(0xd, 3);
        assert_eq!(last.get(), Some(0xd));
    }
}
