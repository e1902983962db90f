//! [`EtcdLeaseStore`]: the core's [`LeaseStore`] on etcd's leases, transactions and watches.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{
    Compare, CompareOp, Error as EtcdError, GetResponse, KeyValue, LeaseGrantResponse,
    LeaseTimeToLiveResponse, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse,
};
use leader_election::{
    AcquireOutcome, Candidate, Error, FencingToken, LeaderInfo, Lease, LeaseRequest, LeaseStore,
    Operation, ReleaseNotifier, ReleaseReceiver, RenewOutcome, Result, WithholdReason,
    check_metadata_len,
};
use tokio::sync::OnceCell;

use crate::connection::{Connector, Pool};
use crate::error::{is_lease_not_found, map_etcd};
use crate::record::Holder;
use crate::watch::ReleaseWatch;

mod candidate;
mod identity;
mod leases;

use candidate::CandidateLeases;
use identity::Identity;
pub(crate) use leases::LastHolder;
use leases::{Granted, Leases};

/// The key an election uses when none is given.
pub const DEFAULT_KEY: &str = "leader-election-lock";

/// The longest election key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// The longest leader metadata this store publishes, in bytes (etcd refuses requests over
/// 1.5 MiB by default; leader metadata is meant to be small).
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// The suffix of the key that records the holder's etcd lease beside the election key.
pub(crate) const HOLDER_SUFFIX: &str = "/holder";
/// The suffix of the candidate record's key (preferred leaders).
pub(crate) const CANDIDATE_SUFFIX: &str = "/candidate";
/// The suffix of the key that holds the token base, written once the cluster lost its data.
pub(crate) const BASE_SUFFIX: &str = "/token-base";

/// How many times an operation reads again when the keys change under it.
const ATTEMPTS: usize = 3;

/// A [`LeaseStore`] on etcd: the election key is created in a transaction only if absent and
/// attached to an etcd lease granted by the cluster (server-side expiry); keep-alive renews it,
/// revocation releases it, and a watch on the key wakes followers when it is deleted. The
/// fencing token is the key's create revision.
///
/// Beside the election key `<key>` it keeps `<key>/holder`, attached to the same etcd lease,
/// so that a deletion of the election key alone (by an operator) never lets a contender in
/// while the holder's lease lives; and `<key>/candidate` for [preferred
/// leaders](leader_election::priority), attached to a lease of its own. It also remembers the
/// etcd lease of the last holder it saw, so that a deletion of both keys never lets it in
/// while that lease lives either; release revokes the lease first, so that it hands over at
/// once. It recognises a cluster that lost its data (a new cluster id, or revisions gone
/// backwards), grants nothing for the longest term it has seen after it, and keeps tokens
/// above the highest it has seen with a token base in `<key>/token-base` (see the crate's
/// README).
///
/// Cheap to clone; clones share the client, the watch, the candidacies' etcd leases, the last
/// holder seen and what they know of the cluster. Made by
/// [`EtcdLeaderElectionBuilder::build_store`](crate::EtcdLeaderElectionBuilder::build_store)
/// (or `build`).
#[derive(Clone)]
pub struct EtcdLeaseStore {
    inner: Arc<Inner>,
}

struct Inner {
    key: String,
    holder_key: String,
    candidate_key: String,
    base_key: String,
    pool: Arc<Pool>,
    watch: OnceCell<ReleaseWatch>,
    notifier: Arc<ReleaseNotifier>,
    /// The etcd lease of each candidacy, by the core's lease id.
    leases: Mutex<Leases>,
    /// The etcd lease of each candidate's announcements (preferred leaders).
    candidate_leases: Mutex<CandidateLeases>,
    /// The etcd lease of the last holder seen holding the election key (by a linearizable
    /// read, or in the watch's deletion of the key), until it is known to be gone: when every
    /// key of the election is deleted by someone else, it still says that the lease may be
    /// trusted by its holder.
    last_holder: Arc<LastHolder>,
    /// The cluster this store talks to, the highest token and the longest term it has seen:
    /// to recognise that the cluster lost its data.
    identity: Identity,
}

impl fmt::Debug for EtcdLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdLeaseStore")
            .field("key", &self.inner.key)
            .field("connector", self.inner.pool.connector())
            .field("connected", &self.inner.pool.connected())
            .finish_non_exhaustive()
    }
}

/// What the election key and its holder key say, for an acquisition.
enum Seen {
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

/// `ttl` in whole seconds for an etcd lease, rounded up: an etcd lease never ends before the
/// term the core computed from `ttl`.
pub(crate) fn etcd_ttl(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

/// The fencing token of the election key `kv`: its create revision, plus the token base its
/// value names.
fn token_of(kv: &KeyValue) -> Result<FencingToken> {
    let base = Holder::decode(kv.value()).map_or(0, |h| h.base);
    u64::try_from(kv.create_revision())
        .ok()
        .filter(|&r| r > 0)
        .and_then(|r| r.checked_add(base))
        .map(FencingToken::new)
        .ok_or_else(|| {
            Error::invalid_data(
                Operation::Acquire,
                format!(
                    "the election key has create revision {} and token base {base}",
                    kv.create_revision()
                ),
            )
        })
}

/// The create revision of the election key of the term with `token`, created with `base`.
fn revision_of(token: FencingToken, base: u64) -> i64 {
    i64::try_from(token.get().saturating_sub(base)).unwrap_or(i64::MAX)
}

/// The election's keys, as one linearizable transaction read them.
struct Keys {
    key: Option<KeyValue>,
    holder: Option<KeyValue>,
    /// The token base key (see [`BASE_SUFFIX`]).
    base: Option<KeyValue>,
    /// The cluster's revision when they were read.
    revision: i64,
}

impl Keys {
    /// The keys a transaction's `get` operations read: the election key, its holder key and
    /// the token base key, in that order.
    fn of(response: &TxnResponse) -> Self {
        let mut kvs = got(response).into_iter();
        Self {
            key: kvs.next().flatten(),
            holder: kvs.next().flatten(),
            base: kvs.next().flatten(),
            revision: response.header().map_or(0, |h| h.revision()),
        }
    }

    /// The token base: 0 until the cluster lost its data.
    fn base(&self) -> Result<u64> {
        let Some(kv) = &self.base else {
            return Ok(0);
        };
        std::str::from_utf8(kv.value())
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                Error::invalid_data(
                    Operation::Acquire,
                    format!(
                        "the token base key {} holds {}, not a number",
                        leader_election::quoted(&String::from_utf8_lossy(kv.key())),
                        leader_election::quoted(&String::from_utf8_lossy(kv.value()))
                    ),
                )
            })
    }

    /// The comparison that holds while the token base key is as read.
    fn base_unchanged(&self, base_key: &str) -> Compare {
        match &self.base {
            None => Compare::create_revision(base_key, CompareOp::Equal, 0),
            Some(kv) => Compare::mod_revision(base_key, CompareOp::Equal, kv.mod_revision()),
        }
    }
}

/// The key-values read by the `get` operations of a transaction, in order (`None` for a key
/// that does not exist).
fn got(response: &TxnResponse) -> Vec<Option<KeyValue>> {
    response
        .op_responses()
        .into_iter()
        .filter_map(|op| match op {
            TxnOpResponse::Get(get) => Some(get.kvs().first().cloned()),
            _ => None,
        })
        .collect()
}

fn leader_of(kv: &KeyValue) -> Option<LeaderInfo> {
    let holder = Holder::decode(kv.value())?;
    Some(LeaderInfo::new(holder.instance_id, token_of(kv).ok()).with_metadata(holder.metadata))
}

impl EtcdLeaseStore {
    pub(crate) fn new(key: &str, connector: Connector) -> Self {
        Self {
            inner: Arc::new(Inner {
                key: key.to_owned(),
                holder_key: format!("{key}{HOLDER_SUFFIX}"),
                candidate_key: format!("{key}{CANDIDATE_SUFFIX}"),
                base_key: format!("{key}{BASE_SUFFIX}"),
                pool: Arc::new(Pool::new(connector)),
                watch: OnceCell::new(),
                notifier: Arc::new(ReleaseNotifier::new()),
                leases: Mutex::new(Leases::default()),
                candidate_leases: Mutex::new(CandidateLeases::default()),
                last_holder: Arc::new(LastHolder::default()),
                identity: Identity::default(),
            }),
        }
    }

    /// The election key.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.inner.key
    }

    /// The key beside the election key that records its holder, attached to the same etcd
    /// lease: `<key>/holder`.
    #[must_use]
    pub fn holder_key(&self) -> &str {
        &self.inner.holder_key
    }

    /// The candidate record's key (preferred leaders): `<key>/candidate`.
    #[must_use]
    pub fn candidate_key(&self) -> &str {
        &self.inner.candidate_key
    }

    /// The key that holds the token base, the number every token's revision is added to:
    /// `<key>/token-base`. It is written only after the cluster lost its data (see the crate's
    /// README), and carries no lease.
    #[must_use]
    pub fn token_base_key(&self) -> &str {
        &self.inner.base_key
    }

    /// Takes in a reply's header (see [`Identity::observe`]); after a data loss, the holder
    /// remembered from the old cluster's revisions means nothing any more.
    fn observe(&self, header: Option<&etcd_client::ResponseHeader>, linearizable: bool) {
        if self.inner.identity.observe(header, linearizable) {
            self.inner.last_holder.reset();
        }
    }

    // === RPCs, through the pool (see `connection`) ===
    // Every reply's header goes to `observe`: transactions and reads are linearizable.

    async fn txn(&self, txn: Txn) -> std::result::Result<TxnResponse, EtcdError> {
        let response = self
            .inner
            .pool
            .call(|mut client| {
                let txn = txn.clone();
                async move { client.txn(txn).await }
            })
            .await?;
        self.observe(response.header(), true);
        Ok(response)
    }

    async fn get(&self, key: &str) -> std::result::Result<GetResponse, EtcdError> {
        let response = self
            .inner
            .pool
            .call(|mut client| async move { client.get(key, None).await })
            .await?;
        self.observe(response.header(), true);
        Ok(response)
    }

    /// One keep-alive of etcd lease `id`: etcd-client sends one request on a new stream and
    /// fails with "lease not found" when its TTL is 0.
    async fn keep_alive(&self, id: i64) -> std::result::Result<(), EtcdError> {
        self.inner
            .pool
            .call(|mut client| async move { client.lease_keep_alive(id).await.map(drop) })
            .await
    }

    async fn grant(&self, ttl: i64) -> std::result::Result<LeaseGrantResponse, EtcdError> {
        let response = self
            .inner
            .pool
            .call(|mut client| async move { client.lease_grant(ttl, None).await })
            .await?;
        self.observe(response.header(), false);
        Ok(response)
    }

    async fn revoke(&self, id: i64) -> std::result::Result<(), EtcdError> {
        self.inner
            .pool
            .call(|mut client| async move { client.lease_revoke(id).await.map(drop) })
            .await
    }

    async fn time_to_live(
        &self,
        id: i64,
    ) -> std::result::Result<LeaseTimeToLiveResponse, EtcdError> {
        let response = self
            .inner
            .pool
            .call(|mut client| async move { client.lease_time_to_live(id, None).await })
            .await?;
        self.observe(response.header(), false);
        Ok(response)
    }

    fn leases(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.inner
            .leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The reads of the election's keys, in [`Keys::of`]'s order.
    fn get_keys(&self) -> [TxnOp; 3] {
        [
            TxnOp::get(self.inner.key.as_str(), None),
            TxnOp::get(self.inner.holder_key.as_str(), None),
            TxnOp::get(self.inner.base_key.as_str(), None),
        ]
    }

    /// Reads the election's keys in one linearizable transaction.
    async fn read_keys(&self, operation: Operation) -> Result<Keys> {
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
    async fn raise_base(&self, keys: &Keys) -> Result<bool> {
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
    fn withheld(&self, request: &LeaseRequest) -> Option<AcquireOutcome> {
        self.inner
            .identity
            .withheld(request.ttl)
            .map(|wait| AcquireOutcome::Withheld {
                wait,
                reason: WithholdReason::BackendRestarted,
            })
    }

    fn judge(
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
    async fn fresh_lease(&self, request: &LeaseRequest) -> Result<i64> {
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
        self.leases().insert(
            request,
            Granted {
                id: response.id(),
                instance_id: request.instance_id.clone(),
                published: None,
                refreshed: sent,
                base: 0,
            },
        );
        Ok(response.id())
    }

    fn holder_value(request: &LeaseRequest, base: u64) -> Vec<u8> {
        Holder {
            instance_id: request.instance_id.clone(),
            lease_id: request.lease_id.clone(),
            ttl: request.ttl,
            metadata: request.metadata.clone(),
            base,
        }
        .encode()
    }

    /// The caller's own acquisition whose reply was lost: keeps its etcd lease alive in this
    /// call and publishes the request's metadata, keeping the token.
    async fn recover(&self, request: &LeaseRequest, kv: &KeyValue) -> Result<Option<Lease>> {
        let etcd_lease = kv.lease();
        let base = Holder::decode(kv.value()).map_or(0, |h| h.base);
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
            self.leases().insert(
                request,
                Granted {
                    id: etcd_lease,
                    instance_id: request.instance_id.clone(),
                    published: None,
                    refreshed: Instant::now(),
                    base,
                },
            );
        }
        self.leases().set_base(request, base);
        let value = Self::holder_value(request, base);
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
        let token = token_of(kv)?;
        self.inner.identity.saw_token(token.get());
        Ok(Some(Lease::new(token)))
    }

    /// The election key is gone but its holder key is not: withholds the lease while the
    /// holder's etcd lease lives. Answers `None` when the caller may go on.
    async fn touched(
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
    async fn lease_lives(&self, id: i64) -> Result<Option<Duration>> {
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
    /// release revokes the lease before its keys go, so it makes nobody wait. Answers `None`
    /// when the caller may go on.
    async fn vanished(&self, request: &LeaseRequest) -> Result<Option<AcquireOutcome>> {
        let Some(etcd_lease) = self.inner.last_holder.get() else {
            return Ok(None);
        };
        // This very candidacy's lease (an acquisition whose reply was lost): the caller never
        // believed it led. Another candidacy of this store is a holder like any other.
        let mine = self
            .leases()
            .get(request)
            .is_some_and(|g| g.id == etcd_lease);
        if !mine && let Some(wait) = self.lease_lives(etcd_lease).await? {
            return Ok(Some(AcquireOutcome::Withheld {
                wait,
                reason: WithholdReason::RecordTouched,
            }));
        }
        self.inner.last_holder.forget(etcd_lease);
        Ok(None)
    }

    async fn acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let mut keys = self.read_keys(Operation::Acquire).await?;
        for _ in 0..ATTEMPTS {
            // Before anything else, so that a contender told to wait still raises the base for
            // the others.
            if self.raise_base(&keys).await? {
                keys = self.read_keys(Operation::Acquire).await?;
                continue;
            }
            let base = keys.base()?;
            match self.judge(request, keys.key.take(), keys.holder.take()) {
                Seen::Held(outcome) => return Ok(outcome),
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
                    if let Some(outcome) = self.vanished(request).await? {
                        return Ok(outcome);
                    }
                    let etcd_lease = self.fresh_lease(request).await?;
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
    async fn create(
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
                    Self::holder_value(request, base),
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
        {
            let mut leases = self.leases();
            leases.set_published(request, request.metadata.clone());
            leases.set_base(request, base);
        }
        Ok(Ok(AcquireOutcome::Acquired(Lease::new(FencingToken::new(
            token,
        )))))
    }

    async fn renew_lease(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let Some(granted) = self.leases().get(request) else {
            return Ok(RenewOutcome::Lost);
        };
        let sent = Instant::now();
        match self.keep_alive(granted.id).await {
            Ok(()) => self.leases().set_refreshed(request, sent),
            Err(err) if is_lease_not_found(&err) => {
                self.leases().remove(request);
                return Ok(RenewOutcome::Lost);
            }
            Err(err) => return Err(map_etcd(Operation::Renew, false, err)),
        }
        let key = self.inner.key.as_str();
        let ours = [
            Compare::create_revision(
                key,
                CompareOp::Equal,
                revision_of(lease.token, granted.base),
            ),
            Compare::lease(key, CompareOp::Equal, granted.id),
        ];
        let publish = granted.published.as_ref() != Some(&request.metadata);
        let mut txn = Txn::new().when(ours);
        if publish {
            txn = txn.and_then([TxnOp::put(
                key,
                Self::holder_value(request, granted.base),
                Some(PutOptions::new().with_lease(granted.id)),
            )]);
        }
        let response = self
            .txn(txn)
            .await
            .map_err(|err| map_etcd(Operation::Renew, publish, err))?;
        if response.succeeded() {
            self.leases()
                .set_published(request, request.metadata.clone());
            return Ok(RenewOutcome::Renewed);
        }
        // The key was deleted or replaced by someone else while our etcd lease lives: step
        // down, and revoke the lease so that its holder key goes too and followers take over
        // at once instead of waiting for it to expire.
        self.leases().remove(request);
        let _ = self.revoke(granted.id).await;
        Ok(RenewOutcome::Lost)
    }

    async fn release_lease(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let Some(granted) = self.leases().get(request) else {
            return Ok(false);
        };
        let key = self.inner.key.as_str();
        // Whether the key is still ours, read in a linearizable transaction; then the
        // revocation of our etcd lease deletes both keys in one step. The lease is gone before
        // the followers' watch sees the keys go, so none of them waits for it (see
        // `vanished`); deleting the keys first would make every follower that saw the holder
        // wait for the lease.
        let txn = Txn::new().when([
            Compare::create_revision(
                key,
                CompareOp::Equal,
                revision_of(lease.token, granted.base),
            ),
            Compare::lease(key, CompareOp::Equal, granted.id),
        ]);
        let ours = self
            .txn(txn)
            .await
            .map_err(|err| map_etcd(Operation::Release, false, err))?
            .succeeded();
        self.leases().remove(request);
        match self.revoke(granted.id).await {
            // Revoked, or already expired: the keys attached to it are gone.
            Ok(()) => Ok(ours),
            Err(err) if is_lease_not_found(&err) => Ok(ours),
            // The keys may still be ours until the lease expires: the release failed.
            Err(err) if ours => Err(map_etcd(Operation::Release, true, err)),
            // Not ours: the lease holds nothing we need, and expires by itself.
            Err(_) => Ok(false),
        }
    }

    async fn leader(&self) -> Result<Option<LeaderInfo>> {
        let response = self
            .get(self.inner.key.as_str())
            .await
            .map_err(|err| map_etcd(Operation::CurrentLeader, false, err))?;
        let Some(kv) = response.kvs().first() else {
            return Ok(None);
        };
        if let Some(holder) = Holder::decode(kv.value()) {
            self.inner.last_holder.saw(kv);
            self.inner.identity.saw_ttl(holder.ttl);
            if let Ok(token) = token_of(kv) {
                self.inner.identity.saw_token(token.get());
            }
        }
        leader_of(kv).map(Some).ok_or_else(|| {
            Error::invalid_data(
                Operation::CurrentLeader,
                format!(
                    "the election key {} holds a value this store did not write",
                    leader_election::quoted(&self.inner.key)
                ),
            )
        })
    }
}

impl LeaseStore for EtcdLeaseStore {
    fn election_name(&self) -> &str {
        &self.inner.key
    }

    /// Makes the client (authenticating when a user is set) and starts the watch on the
    /// election key; cheap once both are up.
    async fn connect(&self) -> Result<()> {
        self.inner
            .watch
            .get_or_try_init(|| {
                ReleaseWatch::start(
                    Arc::clone(&self.inner.pool),
                    vec![self.inner.key.clone(), self.inner.holder_key.clone()],
                    Arc::clone(&self.inner.notifier),
                    Arc::clone(&self.inner.last_holder),
                )
            })
            .await
            .map_err(|err| map_etcd(Operation::Connect, false, err))?;
        Ok(())
    }

    fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
        check_metadata_len(metadata, MAX_METADATA_LEN)
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        self.acquire(request).await
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        self.renew_lease(request, lease).await
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        self.release_lease(request, lease).await
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        self.leader().await
    }

    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        Some(self.inner.notifier.subscribe())
    }

    async fn announce_candidate(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        self.announce(candidate, ttl).await
    }

    async fn strongest_candidate(&self) -> Result<Option<Candidate>> {
        self.strongest().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_ttls_are_whole_seconds_rounded_up() {
        assert_eq!(etcd_ttl(Duration::from_secs(2)), 2);
        assert_eq!(etcd_ttl(Duration::from_millis(2001)), 3);
        assert_eq!(etcd_ttl(Duration::from_millis(10)), 1);
        assert_eq!(etcd_ttl(Duration::ZERO), 1);
    }
}
