//! The backend trait, [`LeaseStore`], and the values it exchanges with the core.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::priority::Candidate;

mod boxed;
mod capabilities;
pub mod conditional;
mod highest;
pub mod layer;
mod memory;
mod notify;
pub mod table;
mod types;

pub use boxed::BoxLeaseStore;
pub use capabilities::Capabilities;
pub use highest::Highest;
pub use layer::{Forward, StoreHooks};
pub use memory::MemoryLeaseStore;
pub use notify::{ReleaseNotifier, ReleaseReceiver};
pub use types::{
    AcquireOutcome, LeaderInfo, Lease, LeaseRequest, Record, RecordVersion, RenewOutcome,
    WithholdReason, check_metadata_len, check_record_len, new_lease_id, records_unsupported,
    stored_record_too_long,
};

/// The longest leader metadata a store publishes, in bytes, unless its service needs less: 64
/// KiB, the [`max_metadata_len`](Capabilities::max_metadata_len) of the memory store and of
/// every backend but Azure Blob (whose metadata travels in a blob's metadata headers), so that
/// code tested on one fits on the others.
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// The longest [election record](Record) a store keeps, in bytes: 64 KiB, the
/// [`max_record_len`](Capabilities::max_record_len) of the memory store and of every backend.
pub const MAX_RECORD_LEN: usize = 64 * 1024;
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
/// The conformance suite in [`testing`](https://docs.rs/leader-election/latest/leader_election/testing/index.html) (feature `testing`) checks the rest;
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

    /// What the store can do beyond the required operations: release notices, candidates
    /// (preferred leaders), the longest metadata it publishes. Required, so that a store
    /// declares each capability rather than inheriting a silent default; the conformance suite
    /// checks that it does what it declares. A store wrapping another forwards it.
    fn capabilities(&self) -> Capabilities;

    /// Whether `metadata` (never empty) can be published with a lease of this store, checked
    /// before anything is written: by the election when it is configured or proclaimed, and by
    /// the store itself in [`try_acquire`](Self::try_acquire) and [`renew`](Self::renew) for a
    /// request carrying metadata. A store never truncates metadata.
    ///
    /// Default: [`check_metadata_len`] with the declared
    /// [`max_metadata_len`](Capabilities::max_metadata_len), so that a store publishing none
    /// refuses all metadata. A store with further rules overrides it; a store wrapping another
    /// forwards it.
    ///
    /// # Errors
    /// [`Error::MetadataTooLarge`](crate::Error::MetadataTooLarge) past the store's limit, or
    /// the store's reason it cannot publish metadata now.
    fn check_metadata(&self, metadata: &[u8]) -> Result<()> {
        check_metadata_len(metadata, self.capabilities().max_metadata_len)
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
    /// take over at once instead of waiting for expiry. Default: `None`, for a store that does
    /// not declare [`release_notifications`](Capabilities::release_notifications); followers
    /// then wake when the lease can expire.
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
    /// retryable, for a store that does not declare [`candidates`](Capabilities::candidates)
    /// (the core then refuses to build an election with a priority on it).
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

    /// The election's [`Record`], if one was written: a few bytes kept beside the lease that
    /// outlive every term and release (scheduled jobs keep in it what ran). The read is
    /// linearizable: it sees every write that completed before it started.
    ///
    /// Default: [`records_unsupported`], for a store that declares no
    /// [`max_record_len`](Capabilities::max_record_len).
    ///
    /// # Cancel safety
    /// The core drops this future at any await point when `operation_timeout` elapses; a read, it changes nothing.
    fn read_record(&self) -> impl Future<Output = Result<Option<Record>>> + Send {
        async { Err(records_unsupported(crate::Operation::ReadRecord)) }
    }

    /// Writes `data` as the election's record, atomically, only if the record is still at
    /// version `expected` (`None`: only if there is no record). Answers the new version, or
    /// `None` when the record was not as expected (nothing changed). Whoever holds the lease,
    /// and whether anybody does, makes no difference. A record longer than
    /// [`max_record_len`](Capabilities::max_record_len) is refused before anything is
    /// written ([`check_record_len`]).
    ///
    /// Default: [`records_unsupported`], for a store that declares no
    /// [`max_record_len`](Capabilities::max_record_len).
    ///
    /// # Cancel safety
    /// The core drops this future at any await point when `operation_timeout` elapses: the write may or may not have taken effect, and the caller reads the record again to find out (its data should say who wrote it).
    fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> impl Future<Output = Result<Option<RecordVersion>>> + Send {
        let _ = (expected, data);
        async { Err(records_unsupported(crate::Operation::WriteRecord)) }
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
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
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
            fn read_record(&self) -> impl Future<Output = Result<Option<Record>>> + Send {
                (**self).read_record()
            }
            fn write_record(
                &self,
                expected: Option<&RecordVersion>,
                data: &[u8],
            ) -> impl Future<Output = Result<Option<RecordVersion>>> + Send {
                (**self).write_record(expected, data)
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
