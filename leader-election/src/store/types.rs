//! The values a [`LeaseStore`](super::LeaseStore) exchanges with the core: who asks, what it
//! gets, who leads.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::Result;
use crate::token::FencingToken;

/// Who asks for the lease, passed to every [`LeaseStore`](super::LeaseStore) call.
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
    /// or its own term ended otherwise than by the backend saying the lease was gone (it
    /// resigned or handed over, its deadline passed, its renewals failed: another contender
    /// may hold the lease since), so that it expects a lease record to be there (design rule
    /// 9). A store that finds no
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
/// [`LeaseStore::check_metadata`](super::LeaseStore::check_metadata).
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
    /// When a request that extended the lease in the backend for its whole ttl was sent, if
    /// that was before the acquisition call: a store that acquires a lease it kept alive
    /// beforehand (one handed over to the caller's claim) answers without another request,
    /// and the leader's deadline then counts from this instant instead of from the call.
    /// `None` (the default): from the call.
    pub extended_at: Option<Instant>,
}

impl Lease {
    /// A held lease carrying `token`, extended by the acquisition call itself.
    #[must_use]
    pub const fn new(token: FencingToken) -> Self {
        Self {
            token,
            extended_at: None,
        }
    }

    /// The same, last extended in the backend by a request sent at `at`, before the
    /// acquisition call (see [`extended_at`](Self::extended_at)).
    #[must_use]
    pub const fn with_extended_at(mut self, at: Instant) -> Self {
        self.extended_at = Some(at);
        self
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

/// The answer to [`LeaseStore::try_acquire`](super::LeaseStore::try_acquire).
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
    /// [`LeaseStore`](super::LeaseStore)'s rule on backends that can forget a lease). Nothing was changed; the
    /// caller should ask again after `wait`.
    Withheld {
        /// How long the backend will keep withholding the lease, at most.
        wait: Duration,
        /// Why the lease is withheld.
        reason: WithholdReason,
    },
}

impl AcquireOutcome {
    /// The outcome of an acquisition a lease table with a guard did not grant (what the SQL
    /// backends answer), from what the server saw: the holder's row (`leader`, and how long
    /// its lease lasts, `expires_in`, when unexpired), how long the guard withholds a lease
    /// an operator deleted or overwrote (`withheld`), and whether the lease record vanished
    /// under a caller that saw it held (`vanished`, for `request`).
    ///
    /// In that order: a holder with an unexpired lease is [`Held`](Self::Held); else a guard
    /// that withholds is [`Withheld`](Self::Withheld) with
    /// [`RecordTouched`](WithholdReason::RecordTouched); else a vanished record is `Withheld`
    /// with [`RecordVanished`](WithholdReason::RecordVanished) for the request's ttl; else
    /// (nobody holds it, yet it was not granted) `Held` by nobody known, to be asked again.
    #[must_use]
    pub fn not_granted(
        request: &LeaseRequest,
        leader: Option<LeaderInfo>,
        expires_in: Option<Duration>,
        withheld: Option<Duration>,
        vanished: bool,
    ) -> Self {
        match (leader, expires_in, withheld) {
            (Some(leader), Some(expires_in), _) => Self::Held {
                leader: Some(leader),
                expires_in: Some(expires_in),
            },
            (_, _, Some(wait)) => Self::Withheld {
                wait,
                reason: WithholdReason::RecordTouched,
            },
            _ if vanished => Self::Withheld {
                wait: request.ttl,
                reason: WithholdReason::RecordVanished,
            },
            _ => Self::Held {
                leader: None,
                expires_in: None,
            },
        }
    }
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

/// The answer to [`LeaseStore::renew`](super::LeaseStore::renew).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RenewOutcome {
    /// The lease is still the caller's and lasts another `ttl` from now.
    Renewed,
    /// The caller does not hold the lease any more (it expired, was taken over, broken or
    /// deleted); nothing was changed.
    Lost,
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

/// The version of an election's [`Record`]: opaque, and never given to two different contents
/// of the record, so that a write of new content always gets a new version (a revision, a
/// counter kept beside the record, an `ETag`; a store whose `ETag` is a hash of the content
/// may give an identical content its old version back). Compared, never ordered.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RecordVersion(String);

impl RecordVersion {
    /// A version as the backend reports it.
    pub fn new(version: impl Into<String>) -> Self {
        Self(version.into())
    }

    /// The version as the backend reported it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RecordVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An election's record: a few bytes a store keeps beside the election's lease, which outlive
/// every term and release, written only by compare-and-set on their [`version`](Self::version)
/// (see [`LeaseStore::read_record`](crate::LeaseStore::read_record)). The scheduler of
/// `leader-election-jobs` keeps in it the occurrences a job ran.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Record {
    /// The version the record was read at; a write expecting it succeeds only if the record
    /// still holds what was read (nobody wrote since, or wrote the very same bytes).
    pub version: RecordVersion,
    /// What was written.
    pub data: Vec<u8>,
}

impl Record {
    /// A record read at `version`.
    pub fn new(version: RecordVersion, data: Vec<u8>) -> Self {
        Self { version, data }
    }
}

/// The error a store returns from [`LeaseStore::read_record`](crate::LeaseStore::read_record)
/// and [`write_record`](crate::LeaseStore::write_record) when it keeps no records (it declares
/// no [`max_record_len`](crate::store::Capabilities::max_record_len)): not retryable.
#[must_use]
pub fn records_unsupported(operation: crate::Operation) -> crate::Error {
    crate::Error::backend(
        operation,
        false,
        "this backend keeps no election records, which scheduled jobs need",
    )
}

/// The error for a stored record of `len` bytes, longer than the `limit` a store writes (written
/// by hand): [`Error::InvalidData`](crate::Error::InvalidData). `record` names it, as
/// "the record blob `name`".
#[must_use]
pub fn stored_record_too_long(
    operation: crate::Operation,
    record: impl std::fmt::Display,
    len: u64,
    limit: usize,
) -> crate::Error {
    crate::Error::invalid_data(
        operation,
        format!("{record} holds {len} bytes, more than the {limit} this store writes"),
    )
}

/// Checks that a record of `data.len()` bytes fits a store's `limit`
/// ([`max_record_len`](crate::store::Capabilities::max_record_len)).
///
/// # Errors
/// [`records_unsupported`] for a store keeping no records (a limit of 0), or an error that is
/// not retryable saying both lengths.
pub fn check_record_len(data: &[u8], limit: usize) -> Result<()> {
    if limit == 0 {
        return Err(records_unsupported(crate::Operation::WriteRecord));
    }
    if data.len() > limit {
        return Err(crate::Error::backend(
            crate::Operation::WriteRecord,
            false,
            format!(
                "a record of {} bytes is longer than this backend keeps ({limit} bytes)",
                data.len()
            ),
        ));
    }
    Ok(())
}
