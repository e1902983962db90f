//! Acquiring the lease: reading the election's keys, judging what they say, and creating the
//! election key under a fresh etcd lease in one transaction; recovering a candidacy whose
//! reply was lost, and the keys an operator touched or a data loss took away.

use super::*;

/// What the election key and its holder key say, for an acquisition.
pub(super) enum Seen {
    /// Nobody holds the lease.
    Free,
    /// The caller's candidacy holds it (an acquisition whose reply was lost).
    Mine(KeyValue),
    /// Somebody else holds it.
    Held(AcquireOutcome),
    /// The election key is gone but its holder key (this key-value, attached to the holder's
    /// etcd lease) is not: the election key was deleted by someone other than its holder.
    Touched(KeyValue),
}

impl EtcdLeaseStore {
    /// The reads of the election's keys, in [`Keys::of`]'s order.
    pub(super) fn get_keys(&self) -> [TxnOp; 5] {
        [
            TxnOp::get(self.inner.key.as_str(), None),
            TxnOp::get(self.inner.holder_key.as_str(), None),
            TxnOp::get(self.inner.base_key.as_str(), None),
            TxnOp::get(self.inner.released_key.as_str(), None),
            TxnOp::get(self.inner.next_key.as_str(), None),
        ]
    }

    /// Reads the election's keys in one linearizable transaction.
    pub(super) async fn read_keys(&self, operation: Operation) -> Result<Keys> {
        let response = self
            .txn(Txn::new().and_then(self.get_keys()))
            .await
            .map_err(|err| map_etcd(operation, false, err))?;
        Ok(Keys::of(&response))
    }

    /// Keeps every token this store mints above the highest it has seen, where the cluster's
    /// revisions no longer do (it lost its data, or somebody deleted the token base key):
    /// raises the token base to that token, in a transaction that compares the base as read,
    /// so that the next acquisition's token (its revision, above `keys.revision`, plus the
    /// base) is greater. Answers whether it wrote (the keys must then be read again).
    pub(super) async fn raise_base(&self, keys: &Keys) -> Result<bool> {
        let base = keys.base()?;
        let highest = self.inner.identity.highest_token();
        let revision = u64::try_from(keys.revision).unwrap_or(0);
        if base.saturating_add(revision) >= highest {
            return Ok(false);
        }
        tracing::info!(
            key = %self.inner.key,
            base,
            revision,
            highest_token = highest,
            "raising the etcd election's token base above the highest token seen"
        );
        let txn = Txn::new()
            .when([keys.base_unchanged(&self.inner.base_key)])
            .and_then([TxnOp::put(
                self.inner.base_key.as_str(),
                highest.to_string(),
                None,
            )]);
        self.txn(txn)
            .await
            .map_err(|err| map_etcd(Operation::Acquire, false, err))?;
        Ok(true)
    }

    /// `Withheld` while the lease is withheld after the cluster lost its data.
    pub(super) fn withheld(&self, request: &LeaseRequest) -> Option<AcquireOutcome> {
        self.inner
            .identity
            .withheld(request.ttl)
            .map(|wait| AcquireOutcome::Withheld {
                wait,
                reason: WithholdReason::BackendRestarted,
            })
    }

    pub(super) fn judge(
        &self,
        request: &LeaseRequest,
        key: Option<KeyValue>,
        holder: Option<KeyValue>,
    ) -> Seen {
        match (key, holder) {
            (Some(kv), _) => match Holder::decode(kv.value()) {
                Some(h)
                    if h.instance_id == request.instance_id && h.lease_id == request.lease_id =>
                {
                    Seen::Mine(kv)
                }
                Some(h) => {
                    self.inner.last_holder.saw(&kv);
                    self.inner.identity.saw_ttl(h.ttl);
                    if let Ok(token) = token_of(&kv) {
                        self.inner.identity.saw_token(token.get());
                    }
                    Seen::Held(AcquireOutcome::Held {
                        expires_in: Some(h.ttl),
                        leader: leader_of(&kv),
                    })
                }
                // A value this store did not write: somebody else's key. It never expires by
                // itself unless attached to a lease, so nobody sleeps on it for long.
                None => Seen::Held(AcquireOutcome::Held {
                    leader: None,
                    expires_in: None,
                }),
            },
            (None, Some(holder)) => Seen::Touched(holder),
            (None, None) => Seen::Free,
        }
    }

    /// Refreshes (or grants) the etcd lease of `request`'s candidacy, in this call: the core's
    /// deadline runs from before this call, so the etcd lease must be granted or kept alive
    /// after it.
    pub(super) async fn fresh_lease(&self, request: &LeaseRequest) -> Result<i64> {
        // An earlier attempt's lease is kept alive only while it certainly lives: etcd answers
        // a keep-alive of an expired lease only once its expiry checker revoked it (up to
        // half a second later), which would stall the attempt. An older one is left to expire.
        let remembered = self
            .leases()
            .get(request)
            .filter(|g| g.refreshed.elapsed() < request.ttl / 2);
        if let Some(granted) = remembered {
            let sent = Instant::now();
            match self.keep_alive(granted.id).await {
                Ok(()) => {
                    self.leases().set_refreshed(request, sent);
                    return Ok(granted.id);
                }
                Err(err) if is_lease_not_found(&err) => {}
                Err(err) => return Err(map_etcd(Operation::Acquire, false, err)),
            }
        }
        // A grant whose reply was lost leaves an unused lease that expires by itself: it is no
        // acquisition, so its failure is a known one.
        let sent = Instant::now();
        let response = self
            .grant(etcd_ttl(request.ttl))
            .await
            .map_err(|err| map_etcd(Operation::Acquire, false, err))?;
        self.leases()
            .insert(request, Granted::new(response.id(), request, sent));
        Ok(response.id())
    }

    /// The election key's value for `request`'s term, whose token is `token_revision` (or the
    /// key's create revision) plus `base`.
    pub(super) fn holder_value(
        request: &LeaseRequest,
        base: u64,
        token_revision: Option<u64>,
    ) -> Vec<u8> {
        Holder {
            instance_id: request.instance_id.clone(),
            lease_id: request.lease_id.clone(),
            ttl: request.ttl,
            metadata: request.metadata.clone(),
            base,
            token_revision,
        }
        .encode()
    }

    /// The election key names the caller's own candidacy: an acquisition whose reply was lost,
    /// or a lease a release handed over to the caller's claim (see `handover`). Keeps its etcd
    /// lease alive in this call and publishes the request's metadata, keeping the token.
    pub(super) async fn recover(
        &self,
        request: &LeaseRequest,
        kv: &KeyValue,
    ) -> Result<Option<Lease>> {
        let Some(holder) = Holder::decode(kv.value()) else {
            return Ok(None);
        };
        let token = token_of(kv)?;
        let etcd_lease = kv.lease();
        let sent = Instant::now();
        match self.keep_alive(etcd_lease).await {
            Ok(_) => {}
            // Expired: its revocation deletes the key in a moment.
            Err(err) if is_lease_not_found(&err) => {
                self.leases().remove(request);
                return Ok(None);
            }
            Err(err) => return Err(map_etcd(Operation::Acquire, false, err)),
        }
        if self
            .leases()
            .get(request)
            .is_none_or(|g| g.id != etcd_lease)
        {
            self.leases()
                .insert(request, Granted::new(etcd_lease, request, sent));
        }
        self.leases()
            .set_term(request, holder.base, kv.create_revision(), token.get());
        let value = Self::holder_value(request, holder.base, holder.token_revision);
        if kv.value() != value.as_slice() {
            let txn = Txn::new()
                .when([
                    Compare::create_revision(
                        self.inner.key.as_str(),
                        CompareOp::Equal,
                        kv.create_revision(),
                    ),
                    Compare::lease(self.inner.key.as_str(), CompareOp::Equal, etcd_lease),
                ])
                .and_then([TxnOp::put(
                    self.inner.key.as_str(),
                    value,
                    Some(PutOptions::new().with_lease(etcd_lease)),
                )]);
            let response = self
                .txn(txn)
                .await
                .map_err(|err| map_etcd(Operation::Acquire, true, err))?;
            if !response.succeeded() {
                return Ok(None);
            }
        }
        self.leases()
            .set_published(request, request.metadata.clone());
        self.inner.claims.forget(request);
        self.inner.identity.saw_token(token.get());
        Ok(Some(Lease::new(token)))
    }

    /// The election key is gone but its holder key is not: withholds the lease while the
    /// holder's etcd lease lives. Answers `None` when the caller may go on.
    pub(super) async fn touched(
        &self,
        request: &LeaseRequest,
        holder: &KeyValue,
    ) -> Result<Option<AcquireOutcome>> {
        let etcd_lease = holder.lease();
        let mine = self
            .leases()
            .get(request)
            .is_some_and(|g| etcd_lease != 0 && g.id == etcd_lease);
        if mine {
            // This very candidacy's holder key (an acquisition whose reply was lost, then the
            // key deleted): the caller never believed it led, so nobody trusts it; give the
            // lease up and start clean. Only this candidacy: another one of this store (another
            // contender sharing it) may lead under its lease.
            let _ = self.revoke(etcd_lease).await;
            self.leases().remove(request);
            return Ok(None);
        }
        if etcd_lease != 0 {
            if let Some(wait) = self.lease_lives(etcd_lease).await? {
                return Ok(Some(AcquireOutcome::Withheld {
                    wait,
                    reason: WithholdReason::RecordTouched,
                }));
            }
            self.inner.last_holder.forget(etcd_lease);
        }
        // Attached to no live lease (written by hand): it protects nobody; remove it, only as
        // it was read.
        let txn = Txn::new()
            .when([Compare::mod_revision(
                self.inner.holder_key.as_str(),
                CompareOp::Equal,
                holder.mod_revision(),
            )])
            .and_then([TxnOp::delete(self.inner.holder_key.as_str(), None)]);
        self.txn(txn)
            .await
            .map_err(|err| map_etcd(Operation::Acquire, false, err))?;
        Ok(None)
    }

    /// Whether etcd lease `id` still exists, and if so how long to wait before asking again:
    /// its remaining time to live in whole seconds, at least one (etcd rounds it down, and
    /// answers 0 for a lease with less than a second left, which its holder may still trust).
    /// `None` once it expired or was revoked. A failed read is an error: never "gone".
    pub(super) async fn lease_lives(&self, id: i64) -> Result<Option<Duration>> {
        match self.time_to_live(id).await {
            Ok(response) => Ok(u64::try_from(response.ttl())
                .ok()
                .map(|ttl| Duration::from_secs(ttl.max(1)))),
            Err(err) if is_lease_not_found(&err) => Ok(None),
            Err(err) => Err(map_etcd(Operation::Acquire, false, err)),
        }
    }

    /// Both keys are gone: withholds the lease while the etcd lease of the last holder this
    /// store saw lives, since the keys may have been deleted by someone other than their holder
    /// (`etcdctl del --prefix`), who then still trusts its term until its next renewal. A
    /// release names its lease in the released key, in the transaction that deletes the keys,
    /// so it makes nobody wait. Answers `None` when the caller may go on.
    pub(super) async fn vanished(
        &self,
        request: &LeaseRequest,
        keys: &Keys,
    ) -> Result<Option<AcquireOutcome>> {
        let Some(etcd_lease) = self.inner.last_holder.get() else {
            return Ok(None);
        };
        // This very candidacy's lease (an acquisition whose reply was lost): the caller never
        // believed it led. Another candidacy of this store is a holder like any other.
        let mine = self
            .leases()
            .get(request)
            .is_some_and(|g| g.id == etcd_lease);
        if !mine
            && !keys.released(etcd_lease)
            && let Some(wait) = self.lease_lives(etcd_lease).await?
        {
            return Ok(Some(AcquireOutcome::Withheld {
                wait,
                reason: WithholdReason::RecordTouched,
            }));
        }
        self.inner.last_holder.forget(etcd_lease);
        Ok(None)
    }

    pub(super) async fn acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        // A release handed the lease over to this candidacy's claim (the watch saw it), on the
        // claim's etcd lease, which this store kept alive: no request. Otherwise the read below
        // finds the key naming this candidacy, and `recover` keeps the lease alive.
        if let Some(kv) = self.inner.handed.take_for(request)
            && let Some(lease) = self.take_over(request, &kv)?
        {
            return Ok(AcquireOutcome::Acquired(lease));
        }
        // Woken by a deletion, the keys are likely free: the etcd lease a creation needs is
        // granted (or kept alive) alongside the read instead of after it. Otherwise (a poll,
        // mostly answered `Held`) only the read.
        let (mut keys, mut prepared) = if self.inner.woken.swap(false, Ordering::AcqRel) {
            let (keys, lease) = tokio::join!(
                self.read_keys(Operation::Acquire),
                self.fresh_lease(request)
            );
            (keys?, lease.ok())
        } else {
            (self.read_keys(Operation::Acquire).await?, None)
        };
        for _ in 0..ATTEMPTS {
            // Before anything else, so that a contender told to wait still raises the base for
            // the others.
            if self.raise_base(&keys).await? {
                keys = self.read_keys(Operation::Acquire).await?;
                continue;
            }
            let base = keys.base()?;
            let held = keys.key.clone();
            match self.judge(request, keys.key.take(), keys.holder.take()) {
                Seen::Held(outcome) => {
                    if let Some(held) = &held {
                        self.claim(request, held, keys.next.as_ref()).await;
                    }
                    return Ok(outcome);
                }
                Seen::Mine(kv) => {
                    if let Some(lease) = self.recover(request, &kv).await? {
                        return Ok(AcquireOutcome::Acquired(lease));
                    }
                }
                Seen::Touched(kv) => {
                    if let Some(outcome) = self.withheld(request) {
                        return Ok(outcome);
                    }
                    if let Some(outcome) = self.touched(request, &kv).await? {
                        return Ok(outcome);
                    }
                }
                Seen::Free => {
                    // After a data loss, etcd knows nothing of the lease a holder may still
                    // trust (its etcd lease answers "not found" like an expired one).
                    if let Some(outcome) = self.withheld(request) {
                        return Ok(outcome);
                    }
                    if let Some(outcome) = self.vanished(request, &keys).await? {
                        return Ok(outcome);
                    }
                    let etcd_lease = match prepared.take() {
                        Some(id) => id,
                        None => self.fresh_lease(request).await?,
                    };
                    // The grant may have been the first reply from an emptied cluster.
                    if let Some(outcome) = self.withheld(request) {
                        return Ok(outcome);
                    }
                    match self.create(request, &keys, base, etcd_lease).await? {
                        Ok(outcome) => return Ok(outcome),
                        Err(seen) => {
                            keys = seen;
                            continue;
                        }
                    }
                }
            }
            keys = self.read_keys(Operation::Acquire).await?;
        }
        Err(Error::backend(
            Operation::Acquire,
            true,
            "the election key kept changing during the acquisition",
        ))
    }

    /// Creates the election key and its holder key under `etcd_lease`, if both are still
    /// absent and the token base is as read in `keys`. The keys as they are when somebody was
    /// faster.
    pub(super) async fn create(
        &self,
        request: &LeaseRequest,
        keys: &Keys,
        base: u64,
        etcd_lease: i64,
    ) -> Result<std::result::Result<AcquireOutcome, Keys>> {
        let attached = || Some(PutOptions::new().with_lease(etcd_lease));
        let txn = Txn::new()
            .when([
                Compare::create_revision(self.inner.key.as_str(), CompareOp::Equal, 0),
                Compare::create_revision(self.inner.holder_key.as_str(), CompareOp::Equal, 0),
                keys.base_unchanged(&self.inner.base_key),
            ])
            .and_then([
                TxnOp::put(
                    self.inner.key.as_str(),
                    Self::holder_value(request, base, None),
                    attached(),
                ),
                TxnOp::put(
                    self.inner.holder_key.as_str(),
                    request.instance_id.as_str(),
                    attached(),
                ),
            ])
            .or_else(self.get_keys());
        let response = self
            .txn(txn)
            .await
            .map_err(|err| map_etcd(Operation::Acquire, true, err))?;
        if !response.succeeded() {
            // Somebody was faster. Our etcd lease stays with the candidacy: the next attempt
            // keeps it alive, or it expires unused within its ttl.
            return Ok(Err(Keys::of(&response)));
        }
        let revision = response.header().map_or(0, |h| h.revision());
        let token = u64::try_from(revision)
            .ok()
            .filter(|&r| r > 0)
            .and_then(|r| r.checked_add(base))
            .ok_or_else(|| {
                Error::invalid_data(
                    Operation::Acquire,
                    format!("a transaction reply with revision {revision} (token base {base})"),
                )
            })?;
        // Never a token at or below one seen: only when the cluster lost its data between the
        // read and this transaction. Give the keys up (revoking the lease deletes them) and
        // wait as after any data loss.
        if token <= self.inner.identity.highest_token() {
            self.leases().remove(request);
            let _ = self.revoke(etcd_lease).await;
            return Ok(Ok(self.withheld(request).unwrap_or(
                AcquireOutcome::Withheld {
                    wait: request.ttl,
                    reason: WithholdReason::BackendRestarted,
                },
            )));
        }
        self.inner.identity.saw_token(token);
        self.inner.claims.forget(request);
        {
            let mut leases = self.leases();
            leases.set_published(request, request.metadata.clone());
            leases.set_term(request, base, revision, token);
        }
        Ok(Ok(AcquireOutcome::Acquired(Lease::new(FencingToken::new(
            token,
        )))))
    }
}
