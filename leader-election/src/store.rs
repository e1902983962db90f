//! The backend trait, [`LeaseStore`], and the values it exchanges with the core.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::Result;
use crate::priority::Candidate;
use crate::token::FencingToken;

/// Who asks for the lease, passed to every [`LeaseStore`] call.
///
/// A lease is owned by the pair (`instance_id`, `lease_id`). The core draws a fresh `lease_id`
/// for every candidacy: it stays the same across retries of an acquisition whose outcome was
/// unknown, so that a lost reply is recovered by acquiring again, and changes once a term ends,
/// so that a lease left behind by an earlier term is never taken for a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseRequest {
    /// The contender's instance id, shown to others as the leader's name.
    pub instance_id: String,
    /// A random id for this candidacy, 32 lower-case hex digits (a UUID without dashes).
    pub lease_id: String,
    /// How long the backend keeps the lease without renewal: a whole number of milliseconds,
    /// so that a backend counting in milliseconds keeps it exactly this long.
    pub ttl: Duration,
    /// The leader metadata to publish with the lease (see [`LeaderInfo::metadata`]): written
    /// atomically with every acquisition and renewal, so that it stays this value until a
    /// later renewal carries another. `None` publishes none; never empty (an empty value is
    /// `None`, see [`with_metadata`](Self::with_metadata)).
    pub metadata: Option<Vec<u8>>,
    /// Whether the caller saw the lease held by somebody else and has seen no release since,
    /// so that it expects a lease record to be there (design rule 9). A store that finds no
    /// record at all for such a request (an operator deleted it, perhaps with every other
    /// record of the election) must not create one: it answers
    /// [`AcquireOutcome::Withheld`] with [`WithholdReason::RecordVanished`], and the core
    /// withholds for the longest lease counted from that answer, since the holder may have
    /// renewed just before the deletion, after the caller's last read. The core clears it once
    /// that wait is over. A store that keeps a deleted record from letting anybody in by other
    /// means (a guard that survives, a remembered holder, a watched version) may answer as it
    /// does for any other request. Default: `false`.
    pub expects_record: bool,
}

impl LeaseRequest {
    /// A request for `instance_id` with a fresh random lease id. `ttl` is rounded up to whole
    /// milliseconds: a backend lease must never be shorter than the leader's local deadline
    /// assumes.
    pub fn new(instance_id: impl Into<String>, ttl: Duration) -> Self {
        Self {
            instance_id: instance_id.into(),
            lease_id: new_lease_id(),
            ttl: ceil_millis(ttl),
            metadata: None,
            expects_record: false,
        }
    }

    /// The same request publishing `metadata` with the lease; an empty value publishes none
    /// (`None`), so that every backend answers alike whether it could store an empty value
    /// or not.
    #[must_use]
    pub fn with_metadata(mut self, metadata: Option<Vec<u8>>) -> Self {
        self.metadata = metadata.filter(|m| !m.is_empty());
        self
    }

    /// The same request with [`expects_record`](Self::expects_record) set to `expects`.
    #[must_use]
    pub fn expecting_record(mut self, expects: bool) -> Self {
        self.expects_record = expects;
        self
    }

    /// The same request with its `lease_id` replaced (for backends or tests that need a
    /// specific one).
    #[must_use]
    pub fn with_lease_id(mut self, lease_id: impl Into<String>) -> Self {
        self.lease_id = lease_id.into();
        self
    }
}

/// `duration` rounded up to whole milliseconds.
fn ceil_millis(duration: Duration) -> Duration {
    let below = duration.subsec_nanos() % 1_000_000;
    if below == 0 {
        return duration;
    }
    duration
        .checked_add(Duration::from_nanos(u64::from(1_000_000 - below)))
        .unwrap_or(duration)
}

/// Checks `metadata` against a store's `limit` in bytes, for
/// [`LeaseStore::check_metadata`].
///
/// # Errors
/// [`Error::MetadataTooLarge`](crate::Error::MetadataTooLarge) when it is longer.
pub fn check_metadata_len(metadata: &[u8], limit: usize) -> Result<()> {
    if metadata.len() > limit {
        return Err(crate::Error::MetadataTooLarge {
            len: metadata.len(),
            limit,
        });
    }
    Ok(())
}

/// A fresh random lease id: 128 random bits as 32 lower-case hex digits, the form Azure
/// accepts as a proposed lease id once dashes are added.
#[must_use]
pub fn new_lease_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// A lease held by the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lease {
    /// The token minted when this lease was acquired.
    pub token: FencingToken,
}

impl Lease {
    /// A held lease carrying `token`.
    #[must_use]
    pub const fn new(token: FencingToken) -> Self {
        Self { token }
    }
}

/// The leader as seen in the backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct LeaderInfo {
    /// The leader's instance id.
    pub instance_id: String,
    /// The token of the leader's current term, where the backend records it.
    pub token: Option<FencingToken>,
    /// What the leader publishes with its lease (its address, a shard map version ...), like
    /// etcd's `Proclaim`: set by [`LeaderElectionOptions::metadata`] and
    /// [`LeaderElection::proclaim`], stored atomically with the lease, and never carried over
    /// from one holder to the next. `None` when the leader publishes none; never empty.
    ///
    /// [`LeaderElectionOptions::metadata`]: crate::LeaderElectionOptions::metadata
    /// [`LeaderElection::proclaim`]: crate::LeaderElection::proclaim
    pub metadata: Option<Vec<u8>>,
}

impl LeaderInfo {
    /// A leader with the given id and token, publishing no metadata.
    pub fn new(instance_id: impl Into<String>, token: Option<FencingToken>) -> Self {
        Self {
            instance_id: instance_id.into(),
            token,
            metadata: None,
        }
    }

    /// The same leader publishing `metadata` (an empty value is `None`).
    #[must_use]
    pub fn with_metadata(mut self, metadata: Option<Vec<u8>>) -> Self {
        self.metadata = metadata.filter(|m| !m.is_empty());
        self
    }

    /// The metadata as UTF-8 text: `None` when there is none or it is not valid UTF-8.
    #[must_use]
    pub fn metadata_str(&self) -> Option<&str> {
        self.metadata
            .as_deref()
            .and_then(|m| std::str::from_utf8(m).ok())
    }
}

/// The answer to [`LeaseStore::try_acquire`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AcquireOutcome {
    /// The caller holds the lease now.
    Acquired(Lease),
    /// Somebody else holds it.
    Held {
        /// The holder, where the backend can tell.
        leader: Option<LeaderInfo>,
        /// The longest the current lease can still last without being renewed, where the
        /// backend can tell; followers sleep that long instead of polling.
        expires_in: Option<Duration>,
    },
    /// Nobody holds the lease, but the backend grants none yet, because a lease it cannot see
    /// any more may still be trusted by its holder (see
    /// [`LeaseStore`]'s rule on backends that can forget a lease). Nothing was changed; the
    /// caller should ask again after `wait`.
    Withheld {
        /// How long the backend will keep withholding the lease, at most.
        wait: Duration,
        /// Why the lease is withheld.
        reason: WithholdReason,
    },
}

/// Why a backend withholds a free lease, in [`AcquireOutcome::Withheld`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WithholdReason {
    /// The backend started less than a lease ago (or cannot tell how long ago it started) and
    /// may have lost a lease in the restart.
    BackendRestarted,
    /// The backend took over from a failed primary less than a lease ago and may lack the last
    /// lease granted there.
    Failover,
    /// The lease record was deleted, broken or overwritten by someone other than its holder less
    /// than a lease ago; its holder may still trust it.
    RecordTouched,
    /// The caller saw the lease held and now finds no lease record at all, without having seen
    /// a release: it was deleted under its holder, who may still trust it (see
    /// [`LeaseRequest::expects_record`]). The core, not the store, times this wait.
    RecordVanished,
}

impl WithholdReason {
    /// A short lower-case name, used in logs and metrics labels.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BackendRestarted => "backend_restarted",
            Self::Failover => "failover",
            Self::RecordTouched => "record_touched",
            Self::RecordVanished => "record_vanished",
        }
    }

    /// A sentence saying why, for logs.
    #[must_use]
    pub const fn describe(self) -> &'static str {
        match self {
            Self::BackendRestarted => {
                "the backend started less than a lease ago and may have lost a lease its holder still trusts"
            }
            Self::Failover => {
                "the backend failed over less than a lease ago and may lack a lease its holder still trusts"
            }
            Self::RecordTouched => {
                "the lease record was deleted or overwritten by someone other than its holder, who may still trust it"
            }
            Self::RecordVanished => {
                "the lease record this contender saw held is gone without a release, and its holder may still trust it"
            }
        }
    }
}

impl std::fmt::Display for WithholdReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// The answer to [`LeaseStore::renew`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenewOutcome {
    /// The lease is still the caller's and lasts another `ttl` from now.
    Renewed,
    /// The caller does not hold the lease any more (it expired, was taken over, broken or
    /// deleted); nothing was changed.
    Lost,
}

/// The few atomic operations a backend must offer.
///
/// A store performs single operations; it does no timing, retries or events: the core does. Each
/// operation must be atomic on the backend, and "ownership" always means the pair
/// (`instance_id`, `lease_id`) of a [`LeaseRequest`], compared on the backend itself.
///
/// Errors: return [`Error::backend`](crate::Error::backend) for failures that certainly did not
/// take effect and [`Error::outcome_unknown`](crate::Error::outcome_unknown) for those that may
/// have (a timeout, a connection dropped mid-request). The core wraps every call in
/// `operation_timeout` and resolves unknown outcomes by calling `try_acquire` again with the same
/// request.
///
/// A backend that can forget a lease it granted (a restart without persistence, a failover to a
/// replica that had not received it) must grant no lease for one lease duration after such an
/// event: the forgotten lease's holder still trusts it until its deadline. The Redis backend does
/// this; it cannot be checked from outside, so each backend tests it with its own fault tests.
///
/// The conformance suite in [`testing`](crate::testing) (feature `testing`) checks the rest;
/// every backend runs it.
pub trait LeaseStore: Send + Sync + 'static {
    /// The name of the election this store serves (a key, a blob path), for logs and
    /// metrics. Default: `"leader-election"`.
    fn election_name(&self) -> &str {
        "leader-election"
    }

    /// Prepares the store: connects, loads scripts, subscribes to notifications. Called before
    /// the first operation of every run of the election loop and again after it fails; must be
    /// cheap when the store is already prepared. Default: nothing to do.
    ///
    /// # Cancel safety
    /// The core drops this future at any await point when `operation_timeout` elapses, and calls it again later: a dropped call must leave the store able to prepare again.
    fn connect(&self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Whether `metadata` (never empty) can be published with a lease of this store, checked
    /// before anything is written: by the election when it is configured or proclaimed, and by
    /// the store itself in [`try_acquire`](Self::try_acquire) and [`renew`](Self::renew) for a
    /// request carrying metadata. A store never truncates metadata.
    ///
    /// Default: refuses all metadata with [`Error::MetadataTooLarge`](crate::Error::MetadataTooLarge)
    /// and a limit of 0, for stores that cannot publish any. A store that can overrides it,
    /// usually with [`check_metadata_len`]; a store wrapping another forwards it.
    ///
    /// # Errors
    /// [`Error::MetadataTooLarge`](crate::Error::MetadataTooLarge) past the store's limit, or
    /// the store's reason it cannot publish metadata now.
    fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
        check_metadata_len(metadata, 0)
    }

    /// Tries to acquire the lease for `request.ttl`.
    ///
    /// - Free or expired: the caller gets it, with a fresh token strictly greater than every
    ///   token minted before for this election, minted atomically with the acquisition.
    /// - Already held by the same (`instance_id`, `lease_id`): acquired again with the token it
    ///   already has, its expiry set to `ttl` from now and its metadata to `request.metadata`. This is how a caller recovers an
    ///   acquisition whose reply was lost.
    /// - Held by anybody else: [`AcquireOutcome::Held`], nothing changed.
    /// - Free, but possibly still trusted by a holder the backend forgot: nothing changed,
    ///   [`AcquireOutcome::Withheld`] with how long to wait and why.
    ///
    /// # Cancel safety
    /// The core drops this future at any await point when `operation_timeout` elapses, and treats the outcome as unknown: the request may or may not have taken effect, and the core recovers by calling `try_acquire` again with the same request, so a dropped call must leave nothing that a repeated one cannot resolve.
    fn try_acquire(
        &self,
        request: &LeaseRequest,
    ) -> impl Future<Output = Result<AcquireOutcome>> + Send;

    /// Extends the caller's lease to `request.ttl` from now and sets its metadata to
    /// `request.metadata`, in one atomic step, only if the caller still holds it with the
    /// token of `lease`; otherwise changes nothing and answers [`RenewOutcome::Lost`].
    ///
    /// # Cancel safety
    /// The core drops this future at any await point when `operation_timeout` elapses: the renewal may or may not have taken effect, and the leader then counts its lease from its last confirmed renewal.
    fn renew(
        &self,
        request: &LeaseRequest,
        lease: &Lease,
    ) -> impl Future<Output = Result<RenewOutcome>> + Send;

    /// Gives the lease up, only if the caller holds it; for anyone else a no-op. Answers whether
    /// a lease was released. A release wakes the followers waiting on
    /// [`release_notifications`](Self::release_notifications).
    ///
    /// # Cancel safety
    /// The core drops this future at any await point when `operation_timeout` elapses: the release may or may not have taken effect; if not, the lease expires on its own.
    fn release(
        &self,
        request: &LeaseRequest,
        lease: &Lease,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Who holds the lease now, if anybody.
    ///
    /// # Cancel safety
    /// The core drops this future at any await point when `operation_timeout` elapses; a read, it changes nothing.
    fn current_leader(&self) -> impl Future<Output = Result<Option<LeaderInfo>>> + Send;

    /// A receiver that changes whenever a lease of this election is released, so that followers
    /// take over at once instead of waiting for expiry. Default: `None`, no notifications;
    /// followers then wake when the lease can expire.
    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        None
    }

    /// Records that `candidate` waits for leadership, for [preferred
    /// leaders](crate::priority). The backend keeps one candidate record per election, which
    /// expires `ttl` after it was last written (on the backend's clock). The announcement
    /// replaces the record, atomically, only if the record expired or
    /// [`priority::replaces`](crate::priority::replaces) it (a priority at least as high, or
    /// the same contender); otherwise it changes nothing and still answers `Ok`.
    ///
    /// Default: [`priority::unsupported`](crate::priority::unsupported), an error that is not
    /// retryable: the contender then stops announcing itself, and no leader hands over to it.
    ///
    /// # Cancel safety
    /// The core drops this future at any await point when `operation_timeout` elapses: the announcement may or may not have been recorded, and the contender announces itself again on its next wait.
    fn announce_candidate(
        &self,
        candidate: &Candidate,
        ttl: Duration,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (candidate, ttl);
        async { Err(crate::priority::unsupported()) }
    }

    /// The candidate recorded by [`announce_candidate`](Self::announce_candidate), unless its
    /// record expired. Default: `None`, as for a backend that records no candidates.
    ///
    /// # Cancel safety
    /// The core drops this future at any await point when `operation_timeout` elapses; a read, it changes nothing.
    fn strongest_candidate(&self) -> impl Future<Output = Result<Option<Candidate>>> + Send {
        async { Ok(None) }
    }
}

/// `impl LeaseStore for $pointer<S>`: every method goes to the store pointed to.
macro_rules! forward_through_pointer {
    ($(#[$doc:meta])* $pointer:ident) => {
        $(#[$doc])*
        impl<S: LeaseStore + ?Sized> LeaseStore for $pointer<S> {
            fn election_name(&self) -> &str {
                (**self).election_name()
            }
            fn connect(&self) -> impl Future<Output = Result<()>> + Send {
                (**self).connect()
            }
            fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
                (**self).check_metadata(metadata)
            }
            fn try_acquire(
                &self,
                request: &LeaseRequest,
            ) -> impl Future<Output = Result<AcquireOutcome>> + Send {
                (**self).try_acquire(request)
            }
            fn renew(
                &self,
                request: &LeaseRequest,
                lease: &Lease,
            ) -> impl Future<Output = Result<RenewOutcome>> + Send {
                (**self).renew(request, lease)
            }
            fn release(
                &self,
                request: &LeaseRequest,
                lease: &Lease,
            ) -> impl Future<Output = Result<bool>> + Send {
                (**self).release(request, lease)
            }
            fn current_leader(&self) -> impl Future<Output = Result<Option<LeaderInfo>>> + Send {
                (**self).current_leader()
            }
            fn release_notifications(&self) -> Option<ReleaseReceiver> {
                (**self).release_notifications()
            }
            fn announce_candidate(
                &self,
                candidate: &Candidate,
                ttl: Duration,
            ) -> impl Future<Output = Result<()>> + Send {
                (**self).announce_candidate(candidate, ttl)
            }
            fn strongest_candidate(&self) -> impl Future<Output = Result<Option<Candidate>>> + Send {
                (**self).strongest_candidate()
            }
        }
    };
}

forward_through_pointer!(
    /// A shared store is a store: every method goes to the one behind the [`Arc`].
    Arc
);
forward_through_pointer!(
    /// A boxed store is a store: every method goes to the one in the [`Box`].
    Box
);

/// The sending side of release notifications, kept by a store.
///
/// It counts releases; receivers wake when the count changes, so a notification sent while a
/// follower was busy is not lost.
#[derive(Debug)]
pub struct ReleaseNotifier {
    sender: watch::Sender<u64>,
}

impl Default for ReleaseNotifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ReleaseNotifier {
    /// A notifier with no release seen yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            sender: watch::Sender::new(0),
        }
    }

    /// Records a release and wakes every receiver.
    pub fn notify(&self) {
        self.sender
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A new receiver; releases before this call are considered seen.
    #[must_use]
    pub fn subscribe(&self) -> ReleaseReceiver {
        ReleaseReceiver {
            receiver: self.sender.subscribe(),
        }
    }
}

/// The receiving side of release notifications, handed to the core by
/// [`LeaseStore::release_notifications`].
#[derive(Clone, Debug)]
pub struct ReleaseReceiver {
    receiver: watch::Receiver<u64>,
}

impl ReleaseReceiver {
    /// Marks every release so far as seen. The core calls it before each acquisition attempt,
    /// so that only releases after the attempt wake it.
    pub fn mark_seen(&mut self) {
        self.receiver.borrow_and_update();
    }

    /// Waits for a release not yet marked seen. Never completes once the notifier is gone.
    pub async fn released(&mut self) {
        if self.receiver.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_rounded_up_to_whole_milliseconds() {
        let ttl = |d| LeaseRequest::new("a", d).ttl;
        assert_eq!(
            ttl(Duration::from_micros(1_500_001)),
            Duration::from_millis(1501)
        );
        assert_eq!(ttl(Duration::from_nanos(1)), Duration::from_millis(1));
        assert_eq!(
            ttl(Duration::from_millis(1500)),
            Duration::from_millis(1500)
        );
        assert!(ttl(Duration::MAX) >= Duration::from_secs(u64::MAX));
    }
}
