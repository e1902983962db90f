//! How the election's values are put to Azure: lease durations, lease ids, and the metadata
//! values a blob can carry.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use leader_election::{Error, Operation, Result};
use sha2::{Digest, Sha256};

use crate::error::BlobError;
use crate::store::{MAX_LEASE_SECS, MIN_LEASE_SECS};

/// The Azure lease duration for `ttl`: whole seconds, rounded up so that Azure never frees the
/// lease before the core's deadline, and within Azure's 15–60 s.
pub(crate) fn lease_seconds(ttl: Duration, operation: Operation) -> Result<i32> {
    let mut seconds = ttl.as_secs();
    if ttl.subsec_nanos() > 0 {
        seconds += 1;
    }
    if !(MIN_LEASE_SECS..=MAX_LEASE_SECS).contains(&seconds) {
        return Err(Error::backend(
            operation,
            false,
            BlobError::new(format!(
                "Azure leases last 15 to 60 s; a ttl of {ttl:?} cannot be granted"
            )),
        ));
    }
    Ok(i32::try_from(seconds).unwrap_or(i32::MAX))
}

/// The request's lease id (32 hex digits) in the UUID form Azure requires.
pub(crate) fn azure_lease_id(lease_id: &str, operation: Operation) -> Result<String> {
    if lease_id.len() != 32 || !lease_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::backend(
            operation,
            false,
            BlobError::new("the lease id must be 32 hexadecimal digits"),
        ));
    }
    let id = lease_id.to_ascii_lowercase();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &id[..8],
        &id[8..12],
        &id[12..16],
        &id[16..20],
        &id[20..]
    ))
}

/// Leader metadata as a metadata value: base64, which any bytes survive in an HTTP header.
pub(crate) fn metadata_base64(metadata: &[u8]) -> String {
    STANDARD.encode(metadata)
}

/// The bytes of a stored metadata value, or `None` if it is not base64.
pub(crate) fn metadata_bytes(value: &str) -> Option<Vec<u8>> {
    STANDARD.decode(value.trim()).ok()
}

/// The first 128 bits of SHA-256 of the lease id, hex.
pub(crate) fn lease_hash(lease_id: &str) -> String {
    let digest = Sha256::digest(lease_id.to_ascii_lowercase().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Percent-encodes everything but printable ASCII (and `%`), so that any instance id fits in
/// a metadata header value.
pub(crate) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if (0x21..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

pub(crate) fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_become_uuids() {
        let id = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(
            azure_lease_id(id, Operation::Acquire).unwrap(),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        assert!(azure_lease_id("xyz", Operation::Acquire).is_err());
        assert!(azure_lease_id(&"g".repeat(32), Operation::Acquire).is_err());
    }

    #[test]
    pub(crate) fn lease_seconds_round_up_and_stay_in_range() {
        let s = |ms| lease_seconds(Duration::from_millis(ms), Operation::Acquire);
        assert_eq!(s(15_000).unwrap(), 15);
        assert_eq!(s(14_500).unwrap(), 15);
        assert_eq!(s(59_001).unwrap(), 60);
        assert!(s(14_000).is_err());
        assert!(s(60_001).is_err());
    }

    #[test]
    fn instance_ids_round_trip_through_metadata() {
        for id in ["web-1", "a b", "naïve-é", "100%", "x\u{7f}y"] {
            let encoded = percent_encode(id);
            assert!(
                encoded.bytes().all(|b| (0x21..=0x7e).contains(&b)),
                "{encoded}"
            );
            assert_eq!(percent_decode(&encoded).as_deref(), Some(id));
        }
        assert_eq!(percent_decode("%zz"), None);
    }

    #[test]
    pub(crate) fn lease_hash_is_stable_and_not_the_id() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(lease_hash(id), lease_hash(&id.to_ascii_uppercase()));
        assert_eq!(lease_hash(id).len(), 32);
        assert_ne!(lease_hash(id), id);
    }
}
