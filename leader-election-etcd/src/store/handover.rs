//! Handing the lease over in the release itself: a follower claims the succession in
//! `<key>/next`, attached to an etcd lease of its own that its store keeps alive while the
//! follower keeps asking; the leader's renewals read the claim; its release puts the election
//! key naming the claimant, on the claim's etcd lease, in the one transaction that would
//! otherwise delete it. The successor's watch sees the put, and its acquisition needs no
//! request at all: a graceful handover costs one Raft commit, where a deletion would cost the
//! release, then each follower's read, grant and creation.
//!
//! Why it is safe:
//! - **One holder at a time.** The put happens only while the key is the releasing leader's
//!   (its create revision and etcd lease compared), and the leader stopped trusting its term
//!   before releasing. Nobody else can create the key while it exists, and it exists while the
//!   claim's etcd lease lives (the claim exists at the put, compared, so its lease does). The
//!   successor's deadline counts from the last keep-alive (or grant) of that lease that was
//!   answered, sent before the acquisition ([`Lease::extended_at`]), and the lease's ttl is the
//!   successor's own.
//! - **Tokens grow.** The successor's token is the claim's mod revision (plus the token base),
//!   named in the key's value (`le3`). A claim counts only if written after the releasing term
//!   began (its mod revision above the term's token revision) and unchanged since the leader
//!   read it (compared); the release deletes it. So the token is above the releasing term's,
//!   and every later term starts after this release: a later key's create revision, or a later
//!   claim's mod revision, is above it. The token base must not have changed during the term
//!   (compared), and preferred leaders (a candidate record) turn handovers off.
//! - **A claimant that stopped asking is not waited for long.** Its store stops keeping the
//!   claim's lease alive two leases after its last acquisition attempt, or a quarter lease
//!   after a key handed over to it was left untaken, and a dead one does at once: the claim
//!   goes with its lease. A key handed over to a claimant that stopped or died expires with the
//!   lease, at most a lease and a quarter after the handover, about a crashed leader's
//!   failover.

use std::sync::atomic::AtomicU64;

use tokio::task::JoinHandle;

use super::*;

/// How often the claim keeper looks at the claim.
const KEEPER_TICK: Duration = Duration::from_millis(100);

/// The succession one of this store's candidacies claimed: the claim's etcd lease and when it
/// was last extended.
#[derive(Clone, Debug)]
pub(super) struct Claimed {
    /// The candidacy (the core's lease id) and its instance.
    lease_id: String,
    instance_id: String,
    ttl: Duration,
    /// The claim's etcd lease, granted with the candidacy's ttl.
    etcd_lease: i64,
    /// When the last grant or keep-alive of `etcd_lease` that etcd answered was sent.
    extended: Instant,
    /// When the candidacy last asked for the lease (an acquisition attempt).
    asked: Instant,
}

/// The claim of this store (one at most: an election has one `<key>/next`), shared with the
/// claim keeper.
#[derive(Debug, Default)]
pub(crate) struct Claims {
    claimed: Mutex<Option<Claimed>>,
    /// Keep-alives the keeper sent, none of them through a [`LeaseStore`] call.
    keep_alives: ClaimKeepAlives,
}

/// How many keep-alives of its followers' claims of the succession an [`EtcdLeaseStore`] sent
/// on its own, outside every [`LeaseStore`] call (see
/// [`EtcdLeaseStore::claim_keep_alives`]): a counter that does not keep the store alive.
#[derive(Clone, Debug, Default)]
pub struct ClaimKeepAlives(Arc<AtomicU64>);

impl ClaimKeepAlives {
    /// The keep-alives sent so far.
    #[must_use]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Claims {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Claimed>> {
        self.claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn of(&self, request: &LeaseRequest) -> Option<Claimed> {
        self.lock()
            .clone()
            .filter(|c| c.lease_id == request.lease_id && c.instance_id == request.instance_id)
    }

    /// The claim of `request`'s candidacy, noting that it asked just now.
    fn asked(&self, request: &LeaseRequest) -> Option<Claimed> {
        let mut claimed = self.lock();
        let c = claimed
            .as_mut()
            .filter(|c| c.lease_id == request.lease_id && c.instance_id == request.instance_id)?;
        c.asked = Instant::now();
        Some(c.clone())
    }

    /// Forgets the claim of `request`'s candidacy (its lease then expires with the claim).
    pub(super) fn forget(&self, request: &LeaseRequest) {
        let mut claimed = self.lock();
        if claimed
            .as_ref()
            .is_some_and(|c| c.lease_id == request.lease_id)
        {
            *claimed = None;
        }
    }

    fn extended(&self, etcd_lease: i64, sent: Instant) {
        if let Some(c) = self.lock().as_mut().filter(|c| c.etcd_lease == etcd_lease) {
            c.extended = c.extended.max(sent);
        }
    }

    fn forget_lease(&self, etcd_lease: i64) {
        let mut claimed = self.lock();
        if claimed.as_ref().is_some_and(|c| c.etcd_lease == etcd_lease) {
            *claimed = None;
        }
    }

    /// The claim's lease, when it is due for a keep-alive (half its ttl after the last one).
    /// Forgets the claim once its candidacy stopped asking for two leases, or left the key
    /// handed over to it (`handed`) untaken for a quarter lease: a candidacy that still asks
    /// takes it within milliseconds, and one that stopped must not keep the election without a
    /// leader for longer than a crashed leader would.
    fn due(&self, handed: &Handed) -> Option<i64> {
        let mut claimed = self.lock();
        let c = claimed.as_ref()?;
        let untaken = handed
            .untaken_on(c.etcd_lease)
            .is_some_and(|ago| ago > c.ttl / 4);
        if c.asked.elapsed() > c.ttl * 2 || untaken {
            *claimed = None;
            return None;
        }
        (c.extended.elapsed() >= c.ttl / 2).then_some(c.etcd_lease)
    }

    pub(super) fn keep_alives(&self) -> ClaimKeepAlives {
        self.keep_alives.clone()
    }
}

/// Keeps the claim's etcd lease alive, in a task that ends with the store.
#[derive(Debug)]
pub(crate) struct ClaimKeeper {
    task: JoinHandle<()>,
}

impl Drop for ClaimKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ClaimKeeper {
    pub(super) fn start(pool: Arc<Pool>, claims: Arc<Claims>, handed: Arc<Handed>) -> Self {
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(KEEPER_TICK).await;
                let Some(etcd_lease) = claims.due(&handed) else {
                    continue;
                };
                let sent = Instant::now();
                claims.keep_alives.0.fetch_add(1, Ordering::Relaxed);
                match pool
                    .call(|mut client| async move {
                        client.lease_keep_alive(etcd_lease).await.map(drop)
                    })
                    .await
                {
                    Ok(()) => claims.extended(etcd_lease, sent),
                    Err(err) if is_lease_not_found(&err) => claims.forget_lease(etcd_lease),
                    // Tried again at the next tick; the claim goes if its lease expires.
                    Err(err) => {
                        tracing::debug!(error = %err, "cannot keep the etcd claim's lease alive")
                    }
                }
            }
        });
        Self { task }
    }
}

/// The last election key a release handed over (as the watch saw its put, and when), until
/// the candidacy it names acquires it.
#[derive(Debug, Default)]
pub(crate) struct Handed(Mutex<Option<(KeyValue, Instant)>>);

impl Handed {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(KeyValue, Instant)>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers `kv`, a handed-over election key the watch saw, unless a later one was seen.
    pub(crate) fn offer(&self, kv: &KeyValue) {
        let mut handed = self.lock();
        if handed
            .as_ref()
            .is_none_or(|(seen, _)| seen.mod_revision() < kv.mod_revision())
        {
            *handed = Some((kv.clone(), Instant::now()));
        }
    }

    /// The handed-over key, if it names `request`'s candidacy (taken: it is acted on once).
    pub(super) fn take_for(&self, request: &LeaseRequest) -> Option<KeyValue> {
        let mut handed = self.lock();
        let names = handed
            .as_ref()
            .and_then(|(kv, _)| Holder::decode(kv.value()))
            .is_some_and(|h| {
                h.instance_id == request.instance_id && h.lease_id == request.lease_id
            });
        if names {
            handed.take().map(|(kv, _)| kv)
        } else {
            None
        }
    }

    /// How long ago a key was handed over on etcd lease `id` and left untaken.
    fn untaken_on(&self, id: i64) -> Option<Duration> {
        self.lock()
            .as_ref()
            .filter(|(kv, _)| kv.lease() == id)
            .map(|(_, at)| at.elapsed())
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
    /// (`next`, as read with it) or this one already, on the lease its store keeps alive.
    /// Best effort: a failed claim leaves the handover to the followers' acquisitions.
    pub(super) async fn claim(
        &self,
        request: &LeaseRequest,
        held: &KeyValue,
        next: Option<&KeyValue>,
    ) {
        let claims = &self.inner.claims;
        let ours = claims.asked(request);
        if Holder::decode(held.value()).is_none() {
            return;
        }
        let term = token_revision(held);
        if let Some(next) = next
            && next.mod_revision() > term
            && let Some(claimant) = Holder::decode(next.value())
        {
            let mine = claimant.instance_id == request.instance_id
                && claimant.lease_id == request.lease_id;
            if !mine {
                // Another candidacy's claim, for this term.
                claims.forget(request);
                return;
            }
            if ours.as_ref().is_some_and(|c| c.etcd_lease == next.lease()) {
                return;
            }
        }
        if let Err(err) = self.put_claim(request, held, next, ours).await {
            claims.forget(request);
            tracing::debug!(key = %self.inner.key, error = %err, "cannot claim the etcd election's succession");
        }
    }

    /// Writes `request`'s claim on its claim lease (`ours`, if it certainly lives, or a new
    /// one), if the key is still `held` and the claim still `next`.
    async fn put_claim(
        &self,
        request: &LeaseRequest,
        held: &KeyValue,
        next: Option<&KeyValue>,
        ours: Option<Claimed>,
    ) -> std::result::Result<(), EtcdError> {
        let etcd_lease = match ours.filter(|c| c.extended.elapsed() < c.ttl / 2) {
            Some(c) => c.etcd_lease,
            None => {
                let sent = Instant::now();
                let granted = self.grant(etcd_ttl(request.ttl)).await?;
                *self.inner.claims.lock() = Some(Claimed {
                    lease_id: request.lease_id.clone(),
                    instance_id: request.instance_id.clone(),
                    ttl: request.ttl,
                    etcd_lease: granted.id(),
                    extended: sent,
                    asked: sent,
                });
                granted.id()
            }
        };
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
                Some(PutOptions::new().with_lease(etcd_lease)),
            )]);
        if !self.txn(txn).await?.succeeded() {
            // Somebody was faster, or the term changed: the next attempt looks again.
            self.inner.claims.forget(request);
        }
        Ok(())
    }

    /// The acquisition of a key handed over to `request`'s claim (`kv`, as the watch saw it),
    /// without a request: the claim's lease was kept alive by this store, so the term counts
    /// from its last keep-alive. `None` when the claim's lease is not known to live for long
    /// enough (the caller then keeps it alive itself, see `recover`) or the metadata must be
    /// published.
    pub(super) fn take_over(&self, request: &LeaseRequest, kv: &KeyValue) -> Result<Option<Lease>> {
        let Some(claimed) = self.inner.claims.of(request) else {
            return Ok(None);
        };
        let Some(holder) = Holder::decode(kv.value()) else {
            return Ok(None);
        };
        if claimed.etcd_lease != kv.lease()
            || claimed.extended.elapsed() >= request.ttl * 3 / 4
            || holder.metadata != request.metadata
        {
            return Ok(None);
        }
        let token = token_of(kv)?;
        self.inner.claims.forget(request);
        {
            let mut leases = self.leases();
            leases.insert(request, Granted::new(kv.lease(), request, claimed.extended));
            leases.set_term(request, holder.base, kv.create_revision(), token.get());
            leases.set_published(request, request.metadata.clone());
        }
        self.inner.identity.saw_token(token.get());
        Ok(Some(Lease::new(token).with_extended_at(
            tokio::time::Instant::from_std(claimed.extended),
        )))
    }

    /// The successor the release of `granted`'s term (`request`'s) hands the lease over to: the
    /// claim its last renewal read, if written during the term by another candidacy, on an
    /// etcd lease.
    pub(super) fn successor(&self, request: &LeaseRequest, granted: &Granted) -> Option<Successor> {
        let claim = granted.claim.clone()?;
        let claimant = Holder::decode(claim.value())?;
        let term = granted.token.checked_sub(granted.base)?;
        let revision = u64::try_from(claim.mod_revision()).ok()?;
        if revision <= term
            || granted.key_create == 0
            || claim.lease() == 0
            || claimant.lease_id == request.lease_id
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
    /// candidate record, puts the key and its holder key naming the successor on the claim's
    /// etcd lease and deletes the claim; otherwise `plain`, the release that deletes the keys.
    /// Answers whether it released, either way.
    pub(super) async fn hand_over(
        &self,
        granted: &Granted,
        successor: &Successor,
        plain: Txn,
    ) -> Result<bool> {
        let term = i64::try_from(granted.token - granted.base).unwrap_or(i64::MAX);
        let attached = || Some(PutOptions::new().with_lease(successor.claim.lease()));
        let [key, lease] = self.ours(granted);
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
        Ok(response.succeeded()
            || response.op_responses().into_iter().any(|op| match op {
                TxnOpResponse::Txn(inner) => inner.succeeded(),
                _ => false,
            }))
    }
}
