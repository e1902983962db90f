//! The lease record: the JSON body of the lease object.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use leader_election::store::LeaseRequest;
use leader_election::{FencingToken, LeaderInfo};
use serde::{Deserialize, Serialize};

/// The version of the record format this crate writes and reads.
const VERSION: u32 = 1;

/// The lease object's body.
///
/// Every write carries a fresh random `nonce`, so that no two writes have the same bytes: S3's
/// ETag of a simple upload is the MD5 of the body, and a renewal that wrote the same bytes again
/// would keep the ETag, so followers would count the lease as unrenewed and take it over beside
/// a live leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Record {
    /// The format version, [`VERSION`].
    pub(crate) v: u32,
    /// The holder; `None` once its holder released the lease (the record keeps the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) holder: Option<Holder>,
    /// The fencing token of the term this record belongs to (or belonged to, once released).
    pub(crate) token: u64,
    /// The holder's lease duration in milliseconds: a follower waits at least this long (on
    /// its own clock) over an unchanged version before taking over.
    pub(crate) lease_ms: u64,
    /// Random, different in every write.
    pub(crate) nonce: String,
    /// Written by a contender that found the object missing after it had seen it present (a
    /// deletion, or a store that lost it): nobody holds it, but whoever held the deleted record
    /// may still trust its lease, so every contender watches this version for a lease before
    /// taking it over. A write tied to this version (`If-Match`) cannot follow a later
    /// deletion, as a creation with `If-None-Match: *` could. Unknown to releases of this
    /// crate that predate it (`deny_unknown_fields`): they count it as unreadable, held by an
    /// unknown holder for a lease, which is as safe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) placeholder: bool,
}

/// Who holds the lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Holder {
    /// The holder's instance id.
    pub(crate) instance_id: String,
    /// The holder's lease id: with the instance id, the lease's owner.
    pub(crate) lease_id: String,
    /// The leader metadata, base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<String>,
}

/// What a read of the object found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// No object.
    Missing,
    /// A record this crate wrote.
    Record(Record),
    /// Something this crate cannot read (written by somebody else): held by an unknown holder.
    Unreadable,
}

impl Record {
    /// The record of `request` holding the lease with `token`.
    pub(crate) fn held(request: &LeaseRequest, token: FencingToken) -> Self {
        Self {
            v: VERSION,
            holder: Some(Holder {
                instance_id: request.instance_id.clone(),
                lease_id: request.lease_id.clone(),
                metadata: request.metadata.as_deref().map(|m| STANDARD.encode(m)),
            }),
            token: token.get(),
            lease_ms: millis(request.ttl),
            nonce: nonce(),
            placeholder: false,
        }
    }

    /// The record left by the holder's release of the term with `token`: free, keeping the
    /// token so that the next one is greater.
    pub(crate) fn released(token: FencingToken) -> Self {
        Self {
            v: VERSION,
            holder: None,
            token: token.get(),
            lease_ms: 0,
            nonce: nonce(),
            placeholder: false,
        }
    }

    /// The placeholder written over a missing object by a contender that had seen it present
    /// (see [`Record::placeholder`](Self#structfield.placeholder)), with `token` above every
    /// token that contender has seen and `lease`, the longest lease it has seen recorded: how
    /// long every contender watches it.
    pub(crate) fn placeholder(token: FencingToken, lease: std::time::Duration) -> Self {
        Self {
            v: VERSION,
            holder: None,
            token: token.get(),
            lease_ms: millis(lease),
            nonce: nonce(),
            placeholder: true,
        }
    }

    /// Whether `request` owns this record's lease.
    pub(crate) fn is_owned_by(&self, request: &LeaseRequest) -> bool {
        self.holder.as_ref().is_some_and(|holder| {
            holder.instance_id == request.instance_id && holder.lease_id == request.lease_id
        })
    }

    /// The holder as a [`LeaderInfo`], unless released.
    pub(crate) fn leader(&self) -> Option<LeaderInfo> {
        let holder = self.holder.as_ref()?;
        let metadata = holder
            .metadata
            .as_deref()
            .and_then(|m| STANDARD.decode(m).ok());
        Some(
            LeaderInfo::new(
                holder.instance_id.clone(),
                Some(FencingToken::new(self.token)),
            )
            .with_metadata(metadata),
        )
    }

    /// The holder's lease duration.
    pub(crate) fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.lease_ms)
    }

    /// The body to upload.
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record always serializes")
    }
}

impl Seen {
    /// Reads an object's body: a record of this crate's format, or [`Seen::Unreadable`].
    pub(crate) fn decode(body: &[u8]) -> Self {
        match serde_json::from_slice::<Record>(body) {
            Ok(record) if record.v == VERSION => Self::Record(record),
            _ => Self::Unreadable,
        }
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// 128 random bits as hex.
fn nonce() -> String {
    format!("{:032x}", fastrand::u128(..))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn records_round_trip_and_every_write_differs() {
        let request =
            LeaseRequest::new("a", Duration::from_secs(5)).with_metadata(Some(vec![0, 255, b'"']));
        let record = Record::held(&request, FencingToken::new(7));
        let again = Record::held(&request, FencingToken::new(7));
        assert_ne!(record.encode(), again.encode(), "the same bytes twice");
        let Seen::Record(read) = Seen::decode(&record.encode()) else {
            panic!("not read back")
        };
        assert_eq!(read, record);
        assert!(read.is_owned_by(&request));
        assert!(!read.is_owned_by(&LeaseRequest::new("a", Duration::from_secs(5))));
        let leader = read.leader().unwrap();
        assert_eq!(leader.instance_id, "a");
        assert_eq!(leader.token, Some(FencingToken::new(7)));
        assert_eq!(leader.metadata, Some(vec![0, 255, b'"']));
        assert_eq!(read.lease(), Duration::from_secs(5));

        let released = Record::released(FencingToken::new(7));
        let Seen::Record(read) = Seen::decode(&released.encode()) else {
            panic!("not read back")
        };
        assert_eq!(read.leader(), None);
        assert_eq!(read.token, 7);
        assert!(!read.placeholder);
        assert!(
            !String::from_utf8(released.encode())
                .unwrap()
                .contains("placeholder")
        );

        let placeholder = Record::placeholder(FencingToken::new(8), Duration::from_secs(3));
        let Seen::Record(read) = Seen::decode(&placeholder.encode()) else {
            panic!("not read back")
        };
        assert!(read.placeholder);
        assert_eq!(read.leader(), None);
        assert_eq!(read.lease(), Duration::from_secs(3));
    }

    #[test]
    fn foreign_bodies_are_unreadable() {
        for body in [
            &b""[..],
            b"garbage",
            br#"{"v":2,"token":1,"lease_ms":1,"nonce":"x"}"#,
            br#"{"v":1,"token":1,"lease_ms":1,"nonce":"x","extra":true}"#,
        ] {
            assert_eq!(Seen::decode(body), Seen::Unreadable, "{body:?}");
        }
    }
}
