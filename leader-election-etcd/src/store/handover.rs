//! Handing the lease over in the release itself: a follower claims the succession in
//! `<key>/next` while somebody leads; the leader's renewals read the claim; its release puts the
//! election key naming the claimant, on the leader's own etcd lease, in the one transaction
//! that would otherwise delete it. The successor's watch sees the put, and its acquisition only
//! keeps the etcd lease alive: a graceful handover costs one Raft commit and a keep-alive, where
//! a deletion would cost the release, then each follower's read and creation.
//!
//! Why it is safe:
//! - **One holder at a time.** The put happens only while the key is the releasing leader's
//!   (its create revision and etcd lease compared), and the leader stopped trusting its term
//!   before releasing. Nobody else can create the key while it exists, and it exists while the
//!   etcd lease lives: the successor's deadline runs from before its keep-alive, and the lease's
//!   ttl is at least the successor's (claims name their ttl; a release hands over only to a ttl
//!   no longer than its own lease's).
//! - **Tokens grow.** The successor's token is the claim's mod revision (plus the token base),
//!   named in the key's value (`le3`). A claim counts only if written after the releasing term
//!   began (its mod revision above the term's token revision) and unchanged since the leader
//!   read it (compared); the release deletes it. So the token is above the releasing term's,
//!   and every later term starts after this release: a later key's create revision, or a later
//!   claim's mod revision, is above it. The token base must not have changed during the term
//!   (compared), and preferred leaders (a candidate record) turn handovers off.
//! - **Nothing is trusted on a claim alone.** A claimant that stopped or died leaves a lease
//!   nobody keeps alive: it expires a lease after the releasing leader's last renewal, like a
//!   crash, and the followers take over as after one.

use super::*;

/// The last election key a release handed over (as the watch saw its put), until the candidacy
/// it names acquires it.
#[derive(Debug, Default)]
pub(crate) struct Handed(Mutex<Option<KeyValue>>);

impl Handed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<KeyValue>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers `kv`, a handed-over election key the watch saw, unless a later one was seen.
    pub(crate) fn offer(&self, kv: &KeyValue) {
        let mut handed = self.lock();
        if handed
            .as_ref()
            .is_none_or(|seen| seen.mod_revision() < kv.mod_revision())
        {
            *handed = Some(kv.clone());
        }
    }

    /// The handed-over key, if it names `request`'s candidacy (taken: it is acted on once).
    pub(super) fn take_for(&self, request: &LeaseRequest) -> Option<KeyValue> {
        let mut handed = self.lock();
        let names = handed
            .as_ref()
            .and_then(|kv| Holder::decode(kv.value()))
            .is_some_and(|h| {
                h.instance_id == request.instance_id && h.lease_id == request.lease_id
            });
        if names { handed.take() } else { None }
    }

    /// Forgets everything: the cluster lost its data.
    pub(crate) fn reset(&self) {
        *self.lock() = None;
    }
}

/// Whether the value `kv` holds is a handed-over election key whose holder differs from the
/// one in `prev` (the key before the put): a handover, not a renewal publishing metadata.
pub(crate) fn is_handover(kv: &KeyValue, prev: Option<&KeyValue>) -> bool {
    let Some(holder) = Holder::decode(kv.value()).filter(|h| h.token_revision.is_some()) else {
        return false;
    };
    let previous = prev.and_then(|p| Holder::decode(p.value()));
    previous.is_none_or(|p| {
        (p.instance_id, p.lease_id, p.token_revision)
            != (holder.instance_id, holder.lease_id, holder.token_revision)
    })
}

/// The successor a release may hand the lease over to.
pub(super) struct Successor {
    /// The claim, as the leader's last renewal read it.
    claim: KeyValue,
    /// The election key's value naming the successor.
    value: Vec<u8>,
    instance_id: String,
}

impl EtcdLeaseStore {
    /// Claims the succession of `held`, the election key somebody else holds, for `request`'s
    /// candidacy, unless a claim written during the holder's term names another candidacy
    /// (`next`, as read with it). Best effort: a failed claim leaves the handover to the
    /// followers' acquisitions.
    pub(super) async fn claim(
        &self,
        request: &LeaseRequest,
        held: &KeyValue,
        next: Option<&KeyValue>,
    ) {
        let Some(holder) = Holder::decode(held.value()) else {
            return;
        };
        // The holder's etcd lease must outlast this candidacy's term when handed over.
        if etcd_ttl(request.ttl) > etcd_ttl(holder.ttl) {
            return;
        }
        let term = token_revision(held);
        if let Some(next) = next
            && next.mod_revision() > term
            && let Some(claimant) = Holder::decode(next.value())
            && (claimant.instance_id != request.instance_id
                || claimant.lease_id == request.lease_id)
        {
            return;
        }
        let unchanged = match next {
            None => Compare::create_revision(self.inner.next_key.as_str(), CompareOp::Equal, 0),
            Some(next) => Compare::mod_revision(
                self.inner.next_key.as_str(),
                CompareOp::Equal,
                next.mod_revision(),
            ),
        };
        let txn = Txn::new()
            .when([
                Compare::mod_revision(
                    self.inner.key.as_str(),
                    CompareOp::Equal,
                    held.mod_revision(),
                ),
                unchanged,
            ])
            .and_then([TxnOp::put(
                self.inner.next_key.as_str(),
                Self::holder_value(request, 0, None),
                None,
            )]);
        if let Err(err) = self.txn(txn).await {
            tracing::debug!(key = %self.inner.key, error = %err, "cannot claim the etcd election's succession");
        }
    }

    /// The successor the release of `granted`'s term (`request`'s) hands the lease over to: the
    /// claim its last renewal read, if written during the term by another candidacy whose ttl
    /// the etcd lease covers.
    pub(super) fn successor(&self, request: &LeaseRequest, granted: &Granted) -> Option<Successor> {
        let claim = granted.claim.clone()?;
        let claimant = Holder::decode(claim.value())?;
        let term = granted.token.checked_sub(granted.base)?;
        let revision = u64::try_from(claim.mod_revision()).ok()?;
        if revision <= term
            || granted.key_create == 0
            || claimant.lease_id == request.lease_id
            || etcd_ttl(claimant.ttl) > granted.ttl_secs
        {
            return None;
        }
        let value = Holder {
            base: granted.base,
            token_revision: Some(revision),
            ..claimant.clone()
        }
        .encode();
        Some(Successor {
            claim,
            value,
            instance_id: claimant.instance_id,
        })
    }

    /// The release of `granted`'s term that hands the lease over to `successor`: while the key
    /// is this term's, the token base unchanged since the term began, the claim as read and no
    /// candidate record, puts the key and its holder key naming the successor on this term's
    /// etcd lease and deletes the claim; otherwise `plain`, the release that deletes the keys.
    /// Answers whether it handed over, and whether it released at all.
    pub(super) async fn hand_over(
        &self,
        granted: &Granted,
        successor: &Successor,
        ours: [Compare; 2],
        plain: Txn,
    ) -> Result<(bool, bool)> {
        let term = i64::try_from(granted.token - granted.base).unwrap_or(i64::MAX);
        let attached = || Some(PutOptions::new().with_lease(granted.id));
        let [key, lease] = ours;
        let txn = Txn::new()
            .when([
                key,
                lease,
                Compare::mod_revision(
                    self.inner.next_key.as_str(),
                    CompareOp::Equal,
                    successor.claim.mod_revision(),
                ),
                Compare::create_revision(self.inner.candidate_key.as_str(), CompareOp::Equal, 0),
                Compare::mod_revision(self.inner.base_key.as_str(), CompareOp::Less, term),
            ])
            .and_then([
                TxnOp::put(self.inner.key.as_str(), successor.value.clone(), attached()),
                TxnOp::put(
                    self.inner.holder_key.as_str(),
                    successor.instance_id.as_str(),
                    attached(),
                ),
                TxnOp::delete(self.inner.next_key.as_str(), None),
            ])
            .or_else([TxnOp::txn(plain)]);
        let response = self
            .txn(txn)
            .await
            .map_err(|err| map_etcd(Operation::Release, true, err))?;
        if response.succeeded() {
            return Ok((true, true));
        }
        let released = response.op_responses().into_iter().any(|op| match op {
            TxnOpResponse::Txn(inner) => inner.succeeded(),
            _ => false,
        });
        Ok((false, released))
    }
}
