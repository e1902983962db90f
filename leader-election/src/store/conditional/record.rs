//! The records the engine reads and writes, whatever each backend's format for them.

use std::time::Duration;

use crate::store::{LeaderInfo, LeaseRequest};
use crate::token::FencingToken;

/// The lease object's record, as the engine reads and writes it; each backend has its own
/// format for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The holder; `None` once its holder released the lease (the record keeps the token), or
    /// in a placeholder.
    pub holder: Option<Holder>,
    /// The fencing token of the term this record belongs to (or belonged to, once released).
    pub token: u64,
    /// The holder's lease in milliseconds (a placeholder's: the longest its writer had seen):
    /// a follower watches a version at least this long before taking it over.
    pub lease_ms: u64,
    /// Written by a contender that found the object missing after it had seen it present (a
    /// deletion, or a service that lost it): nobody holds it, but whoever held the deleted
    /// record may still trust its lease, so every contender watches this version for a lease
    /// before taking it over. A write conditioned on this version cannot follow a later
    /// deletion, as a creation on [`Condition::Missing`](super::Condition::Missing) could.
    pub placeholder: bool,
}

/// Who holds the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The holder's instance id.
    pub instance_id: String,
    /// The holder's lease id: with the instance id, the lease's owner.
    pub lease_id: String,
    /// The leader metadata.
    pub metadata: Option<Vec<u8>>,
}

impl LeaseRecord {
    /// The record of `request` holding the lease with `token`.
    #[must_use]
    pub fn held(request: &LeaseRequest, token: FencingToken) -> Self {
        Self {
            holder: Some(Holder {
                instance_id: request.instance_id.clone(),
                lease_id: request.lease_id.clone(),
                metadata: request.metadata.clone(),
            }),
            token: token.get(),
            lease_ms: millis(request.ttl),
            placeholder: false,
        }
    }

    /// The record left by the holder's release of the term with `token`: free, keeping the
    /// token so that the next one is greater.
    #[must_use]
    pub fn released(token: FencingToken) -> Self {
        Self {
            holder: None,
            token: token.get(),
            lease_ms: 0,
            placeholder: false,
        }
    }

    /// The placeholder (see [`placeholder`](Self#structfield.placeholder)) with `token` and
    /// `lease`, the longest lease its writer has seen recorded.
    #[must_use]
    pub fn placeholder(token: FencingToken, lease: Duration) -> Self {
        Self {
            holder: None,
            token: token.get(),
            lease_ms: millis(lease),
            placeholder: true,
        }
    }

    /// Whether `request` owns this record's lease.
    #[must_use]
    pub fn is_owned_by(&self, request: &LeaseRequest) -> bool {
        self.holder.as_ref().is_some_and(|holder| {
            holder.instance_id == request.instance_id && holder.lease_id == request.lease_id
        })
    }

    /// The holder as a [`LeaderInfo`], unless released.
    #[must_use]
    pub fn leader(&self) -> Option<LeaderInfo> {
        let holder = self.holder.as_ref()?;
        Some(
            LeaderInfo::new(
                holder.instance_id.clone(),
                Some(FencingToken::new(self.token)),
            )
            .with_metadata(holder.metadata.clone()),
        )
    }

    /// The holder's lease.
    #[must_use]
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }
}

/// The candidate object's record (preferred leaders): the strongest waiting contender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateRecord {
    /// Its instance id.
    pub instance_id: String,
    /// Its priority.
    pub priority: u32,
    /// How long the record stands unchanged before it counts as expired, in milliseconds.
    pub ttl_ms: u64,
}

/// A duration in whole milliseconds, saturating.
#[must_use]
pub fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// 128 random bits as hex: a version or a nonce, new for every write.
#[must_use]
pub fn nonce() -> String {
    format!("{:032x}", fastrand::u128(..))
}
