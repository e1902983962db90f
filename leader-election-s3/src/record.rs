//! The JSON bodies of the lease object and of the candidate object.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use leader_election::store::conditional::{CandidateRecord, Holder, LeaseRecord, nonce};
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
struct Body {
    /// The format version, [`VERSION`].
    v: u32,
    /// The holder; `None` once its holder released the lease (the record keeps the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    holder: Option<HolderBody>,
    /// The fencing token of the term this record belongs to (or belonged to, once released).
    token: u64,
    /// The holder's lease duration in milliseconds.
    lease_ms: u64,
    /// Random, different in every write.
    nonce: String,
    /// A placeholder over a deleted object (see [`LeaseRecord::placeholder`]). Unknown to
    /// releases of this crate that predate it (`deny_unknown_fields`): they count it as
    /// unreadable, held by an unknown holder for a lease, which is as safe.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    placeholder: bool,
}

/// Who holds the lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HolderBody {
    instance_id: String,
    lease_id: String,
    /// The leader metadata, base64 (standard alphabet, padded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    metadata: Option<String>,
}

/// The body of the candidate object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CandidateBody {
    v: u32,
    instance_id: String,
    priority: u32,
    ttl_ms: u64,
    /// Random, different in every write (see the lease record's nonce).
    nonce: String,
}

/// The lease object's body holding `record`, with a fresh nonce.
pub(crate) fn encode(record: &LeaseRecord) -> Vec<u8> {
    let body = Body {
        v: VERSION,
        holder: record.holder.as_ref().map(|holder| HolderBody {
            instance_id: holder.instance_id.clone(),
            lease_id: holder.lease_id.clone(),
            metadata: holder.metadata.as_deref().map(|m| STANDARD.encode(m)),
        }),
        token: record.token,
        lease_ms: record.lease_ms,
        nonce: nonce(),
        placeholder: record.placeholder,
    };
    serde_json::to_vec(&body).expect("a record always serializes")
}

/// The record in a lease object's body, or why it is not one of this crate's format.
pub(crate) fn decode(bytes: &[u8]) -> Result<LeaseRecord, String> {
    let body = serde_json::from_slice::<Body>(bytes).map_err(|e| e.to_string())?;
    if body.v != VERSION {
        return Err(format!("format {}, not {VERSION}", body.v));
    }
    Ok(LeaseRecord {
        holder: body.holder.map(|holder| Holder {
            instance_id: holder.instance_id,
            lease_id: holder.lease_id,
            metadata: holder.metadata.and_then(|m| STANDARD.decode(m).ok()),
        }),
        token: body.token,
        lease_ms: body.lease_ms,
        placeholder: body.placeholder,
    })
}

/// The candidate object's body holding `record`, with a fresh nonce.
pub(crate) fn encode_candidate(record: &CandidateRecord) -> Vec<u8> {
    let body = CandidateBody {
        v: 1,
        instance_id: record.instance_id.clone(),
        priority: record.priority,
        ttl_ms: record.ttl_ms,
        nonce: nonce(),
    };
    serde_json::to_vec(&body).expect("a record always serializes")
}

/// The record in a candidate object's body; `None` when it is not one.
pub(crate) fn decode_candidate(bytes: &[u8]) -> Option<CandidateRecord> {
    let body = serde_json::from_slice::<CandidateBody>(bytes)
        .ok()
        .filter(|r| r.v == 1)?;
    Some(CandidateRecord {
        instance_id: body.instance_id,
        priority: body.priority,
        ttl_ms: body.ttl_ms,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use leader_election::FencingToken;

    use leader_election_aws::testing::{assert_held_record, held_record};

    use super::*;

    #[test]
    fn records_round_trip_and_every_write_differs() {
        let (request, record) = held_record();
        assert_ne!(encode(&record), encode(&record), "the same bytes twice");
        let read = decode(&encode(&record)).unwrap();
        assert_held_record(&read, &request, &record);

        let released = LeaseRecord::released(FencingToken::new(7));
        let read = decode(&encode(&released)).unwrap();
        assert_eq!(read.leader(), None);
        assert_eq!(read.token, 7);
        assert!(!read.placeholder);
        assert!(
            !String::from_utf8(encode(&released))
                .unwrap()
                .contains("placeholder")
        );

        let placeholder = LeaseRecord::placeholder(FencingToken::new(8), Duration::from_secs(3));
        let read = decode(&encode(&placeholder)).unwrap();
        assert!(read.placeholder);
        assert_eq!(read.leader(), None);
        assert_eq!(read.lease(), Duration::from_secs(3));

        let candidate = CandidateRecord {
            instance_id: "c".to_owned(),
            priority: 3,
            ttl_ms: 500,
        };
        assert_eq!(
            decode_candidate(&encode_candidate(&candidate)),
            Some(candidate)
        );
    }

    #[test]
    fn foreign_bodies_are_unreadable() {
        for body in [
            &b""[..],
            b"garbage",
            br#"{"v":2,"token":1,"lease_ms":1,"nonce":"x"}"#,
            br#"{"v":1,"token":1,"lease_ms":1,"nonce":"x","extra":true}"#,
        ] {
            assert!(decode(body).is_err(), "{body:?}");
        }
    }
}
