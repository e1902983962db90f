//! [`EtcdLeaseStore`]: the core's [`LeaseStore`] on etcd's leases, transactions and watches.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{
    Compare, CompareOp, Error as EtcdError, GetResponse, KeyValue, LeaseGrantResponse,
    LeaseTimeToLiveResponse, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse,
};
use leader_election::priority::Candidate;
use leader_election::store::{
    AcquireOutcome, Capabilities, Lease, LeaseRequest, Record, RecordVersion, ReleaseNotifier,
    ReleaseReceiver, RenewOutcome, WithholdReason,
};
use leader_election::{Error, FencingToken, LeaderInfo, LeaseStore, Operation, Result};
use tokio::sync::OnceCell;

use crate::connection::{Connector, Pool};
use crate::error::{is_lease_not_found, map_etcd};
use crate::record::Holder;
use crate::watch::ReleaseWatch;

mod acquire;
mod candidate;
mod election_record;
mod handover;
mod identity;
mod keys;
mod leases;
mod rpc;

pub(crate) use keys::etcd_ttl;
use keys::{Keys, got, leader_of, token_of, token_revision};

use candidate::CandidateLeases;
pub use handover::ClaimKeepAlives;
use handover::{ClaimKeeper, Claims};
pub(crate) use handover::{Handed, is_handover};
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

/// The longest [election record](leader_election::store::Record) this store keeps, in bytes
/// (its [`max_record_len`](Capabilities::max_record_len)): 64 KiB, like the leader metadata.
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// The suffix of the key that records the holder's etcd lease beside the election key.
pub(crate) const HOLDER_SUFFIX: &str = "/holder";
/// The suffix of the candidate record's key (preferred leaders).
pub(crate) const CANDIDATE_SUFFIX: &str = "/candidate";
/// The suffix of the key that holds the token base, written once the cluster lost its data.
pub(crate) const BASE_SUFFIX: &str = "/token-base";
/// The suffix of the key in which a holder's release names its etcd lease, written in the
/// transaction that deletes the election key and its holder key.
pub(crate) const RELEASED_SUFFIX: &str = "/released";
/// The suffix of the key in which a follower claims the succession of the current term (see
/// `store::handover`), attached to no lease.
pub(crate) const NEXT_SUFFIX: &str = "/next";
/// The suffix of the key that keeps the election's record
/// ([`LeaseStore::read_record`]), without a lease: no part of the lease's state.
pub(crate) const RECORD_SUFFIX: &str = "/record";

/// How many times an operation reads again when the keys change under it.
const ATTEMPTS: usize = 3;

/// A [`LeaseStore`] on etcd: the election key is created in a transaction only if absent and
/// attached to an etcd lease granted by the cluster (server-side expiry); keep-alive renews it,
/// revocation releases it, and a watch on the key wakes followers when it is deleted. The
/// fencing token is the key's create revision. A follower answered `Held` claims the succession
/// in `<key>/next`, and a release that its holder's renewal saw claimed hands the key over to
/// the claimant in the same transaction, on the claim's etcd lease, instead of deleting it
/// (the term's token is then the claim's mod revision; see the crate's README).
///
/// Beside the election key `<key>` it keeps `<key>/holder`, attached to the same etcd lease,
/// so that a deletion of the election key alone (by an operator) never lets a contender in
/// while the holder's lease lives; `<key>/candidate` for [preferred
/// leaders](leader_election::priority), attached to a lease of its own; and `<key>/record`,
/// the election's [record](leader_election::store::Record), attached to no lease and untouched
/// by the lease's operations, so that it outlives every term. It also remembers the
/// etcd lease of the last holder it saw, so that a deletion of both keys never lets it in
/// while that lease lives either; a release that deletes the keys names the lease in
/// `<key>/released`, so that its followers take over at once. It recognises a cluster that lost its data (a new cluster id, or revisions gone
/// backwards), grants nothing for the longest term it has seen after it, and keeps tokens
/// above the highest it has seen with a token base in `<key>/token-base` (see the crate's
/// README).
///
/// Cheap to clone; clones share the client, the watch, the candidacies' etcd leases, the last
/// holder seen and what they know of the cluster. Made by
/// [`EtcdLeaderElectionBuilder::build_store`](leader_election::ElectionBuilder::build_store)
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
    released_key: String,
    record_key: String,
    next_key: String,
    pool: Arc<Pool>,
    watch: OnceCell<ReleaseWatch>,
    notifier: Arc<ReleaseNotifier>,
    /// Set by the watch when it wakes the followers (a key deleted, or the watch reopened),
    /// taken by the next acquisition: its etcd lease is then granted alongside its read.
    woken: Arc<AtomicBool>,
    /// The etcd lease of each candidacy, by the core's lease id.
    leases: Mutex<Leases>,
    /// The etcd lease of each candidate's announcements (preferred leaders).
    candidate_leases: Mutex<CandidateLeases>,
    /// The etcd lease of the last holder seen holding the election key (by a linearizable
    /// read, or in the watch's deletion of the key), until it is known to be gone: when every
    /// key of the election is deleted by someone else, it still says that the lease may be
    /// trusted by its holder.
    last_holder: Arc<LastHolder>,
    /// The last election key a release handed over, as the watch saw it.
    handed: Arc<Handed>,
    /// The succession claimed by one of this store's candidacies, and its keeper.
    claims: Arc<Claims>,
    keeper: OnceCell<ClaimKeeper>,
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

impl EtcdLeaseStore {
    pub(crate) fn new(key: &str, connector: Connector) -> Self {
        Self {
            inner: Arc::new(Inner {
                key: key.to_owned(),
                holder_key: format!("{key}{HOLDER_SUFFIX}"),
                candidate_key: format!("{key}{CANDIDATE_SUFFIX}"),
                base_key: format!("{key}{BASE_SUFFIX}"),
                released_key: format!("{key}{RELEASED_SUFFIX}"),
                record_key: format!("{key}{RECORD_SUFFIX}"),
                next_key: format!("{key}{NEXT_SUFFIX}"),
                pool: Arc::new(Pool::new(connector)),
                watch: OnceCell::new(),
                notifier: Arc::new(ReleaseNotifier::new()),
                woken: Arc::new(AtomicBool::new(false)),
                leases: Mutex::new(Leases::default()),
                candidate_leases: Mutex::new(CandidateLeases::default()),
                last_holder: Arc::new(LastHolder::default()),
                handed: Arc::new(Handed::default()),
                claims: Arc::new(Claims::default()),
                keeper: OnceCell::new(),
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

    /// The key in which a release names the etcd lease it gave up, written in the transaction
    /// that deletes the election key and its holder key (see [`release`](LeaseStore::release)):
    /// `<key>/released`. It carries no lease.
    #[must_use]
    pub fn released_key(&self) -> &str {
        &self.inner.released_key
    }

    /// The key that keeps the election's record (see
    /// [`read_record`](LeaseStore::read_record)): `<key>/record`. It carries no lease, and no
    /// acquisition, renewal, release or expiry touches it: it outlives every term (see the
    /// crate's README).
    #[must_use]
    pub fn record_key(&self) -> &str {
        &self.inner.record_key
    }

    /// How many keep-alives this store sent for its candidacies' claims of the succession (see
    /// [`next_key`](Self::next_key)) on its own, outside every [`LeaseStore`] call: one every
    /// half lease while a follower of this store holds the claim. The counter goes on counting
    /// and does not keep the store alive.
    #[must_use]
    pub fn claim_keep_alives(&self) -> ClaimKeepAlives {
        self.inner.claims.keep_alives()
    }

    /// The key in which a follower claims the succession of the current term, so that the
    /// leader's release hands the lease over to it (see the crate's README): `<key>/next`. It
    /// is attached to the claimant's etcd lease, which its store keeps alive while the
    /// claimant keeps asking.
    #[must_use]
    pub fn next_key(&self) -> &str {
        &self.inner.next_key
    }

    /// Takes in a reply's header (see [`Identity::observe`]); after a data loss, the holder
    /// remembered from the old cluster's revisions means nothing any more.
    fn observe(&self, header: Option<&etcd_client::ResponseHeader>, linearizable: bool) {
        if self.inner.identity.observe(header, linearizable) {
            self.inner.last_holder.reset();
            self.inner.handed.reset();
        }
    }

    async fn renew_lease(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        let Some(granted) = self
            .leases()
            .get(request)
            .filter(|g| g.token == lease.token.get())
        else {
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
        let publish = granted.published.as_ref() != Some(&request.metadata);
        let mut ops = Vec::with_capacity(2);
        if publish {
            ops.push(TxnOp::put(
                key,
                Self::holder_value(request, granted.base, Self::handed_revision(&granted)),
                Some(PutOptions::new().with_lease(granted.id)),
            ));
        }
        // The successor's claim, for the release (see `handover`).
        ops.push(TxnOp::get(self.inner.next_key.as_str(), None));
        let txn = Txn::new().when(self.ours(&granted)).and_then(ops);
        let response = self
            .txn(txn)
            .await
            .map_err(|err| map_etcd(Operation::Renew, publish, err))?;
        if response.succeeded() {
            let claim = got(&response).into_iter().next().flatten();
            let mut leases = self.leases();
            leases.set_published(request, request.metadata.clone());
            leases.set_claim(request, claim);
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
        let Some(granted) = self
            .leases()
            .get(request)
            .filter(|g| g.token == lease.token.get())
        else {
            return Ok(false);
        };
        let key = self.inner.key.as_str();
        // One transaction, while the key is still ours: deletes both keys and names our etcd
        // lease in the released key, so that a follower that saw the holder knows the keys went
        // by their holder's release and waits for nothing (see `vanished`). Revoking the lease
        // after it ends the candidacy; the successor need not wait for that.
        let plain = Txn::new().when(self.ours(&granted)).and_then([
            TxnOp::delete(key, None),
            TxnOp::delete(self.inner.holder_key.as_str(), None),
            TxnOp::put(
                self.inner.released_key.as_str(),
                granted.id.to_string(),
                None,
            ),
        ]);
        // With a successor's claim, the same transaction hands the key over to it instead, on
        // the claim's etcd lease.
        self.leases().remove(request);
        let ours = match self.successor(request, &granted) {
            Some(successor) => self.hand_over(&granted, &successor, plain).await?,
            None => self
                .txn(plain)
                .await
                .map_err(|err| map_etcd(Operation::Release, true, err))?
                .succeeded(),
        };
        // The keys are gone, handed over to the claim's lease (ours) or someone else's: the
        // lease holds nothing we need, and expires by itself if the revocation fails.
        let _ = self.revoke(granted.id).await;
        Ok(ours)
    }

    /// The comparisons that hold while the election key is `granted`'s term's: its create
    /// revision and its etcd lease.
    fn ours(&self, granted: &Granted) -> [Compare; 2] {
        let key = self.inner.key.as_str();
        [
            Compare::create_revision(key, CompareOp::Equal, granted.key_create),
            Compare::lease(key, CompareOp::Equal, granted.id),
        ]
    }

    /// The token revision `granted`'s term names in the key's value: `Some` when it was handed
    /// over (the token is not the key's create revision plus the base).
    fn handed_revision(granted: &Granted) -> Option<u64> {
        let revision = granted.token.checked_sub(granted.base)?;
        (i64::try_from(revision).ok() != Some(granted.key_create)).then_some(revision)
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
                    leader_election::backend::quoted(&self.inner.key)
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
                    Arc::clone(&self.inner.handed),
                    Arc::clone(&self.inner.woken),
                )
            })
            .await
            .map_err(|err| map_etcd(Operation::Connect, false, err))?;
        self.inner
            .keeper
            .get_or_init(|| async {
                ClaimKeeper::start(
                    Arc::clone(&self.inner.pool),
                    Arc::clone(&self.inner.claims),
                    Arc::clone(&self.inner.handed),
                )
            })
            .await;
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_release_notifications()
            .with_candidates()
            .with_metadata(MAX_METADATA_LEN)
            .with_records(MAX_RECORD_LEN)
            .with_handover()
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

    /// A linearizable read of `<key>/record`.
    async fn read_record(&self) -> Result<Option<Record>> {
        self.read_election_record().await
    }

    /// One transaction on `<key>/record`, comparing the version expected: its mod revision
    /// and the write it names (see the crate's README).
    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        self.write_election_record(expected, data).await
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
