//! What the store keeps in ZooKeeper: the names of an election's znodes and the bytes in them.
//!
//! Under the election's path `P`:
//! - `P/c-<lease id>-<sequence>`: one ephemeral sequential znode per contender (per lease id),
//!   holding [`Contender`] data; the lowest sequence leads;
//! - `P/s-<session id>`: an ephemeral marker per store session, alive exactly as long as the
//!   session is;
//! - `P/guard`: the last holder granted the lease ([`Guard`]), persistent;
//! - `P/released`: the czxid of the last holder that released the lease, persistent.
//!
//! Nothing here panics on bytes an operator wrote: data that does not parse is `None`.

use leader_election::{Error, Operation, Result};

/// The prefix of a contender's znode name.
pub(crate) const CONTENDER_PREFIX: &str = "c-";
/// The prefix of a session marker's name.
pub(crate) const MARKER_PREFIX: &str = "s-";
/// The guard's name.
pub(crate) const GUARD: &str = "guard";
/// The release marker's name.
pub(crate) const RELEASED: &str = "released";

/// The first byte of a contender's data: its format's version.
const CONTENDER_FORMAT: u8 = 1;

/// The name a contender's znode is created with, before ZooKeeper appends its sequence: the
/// lease id in the name lets a store find a znode whose creation reply it never received (as
/// Curator's "protected" mode does).
pub(crate) fn contender_prefix(lease_id: &str) -> String {
    format!("{CONTENDER_PREFIX}{lease_id}-")
}

/// The sequence of a contender's znode name (`c-<lease id>-<sequence>`), or `None` for any
/// other name.
pub(crate) fn sequence(name: &str) -> Option<i64> {
    let rest = name.strip_prefix(CONTENDER_PREFIX)?;
    let (lease_id, digits) = rest.rsplit_once('-')?;
    if lease_id.is_empty() || digits.len() < 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The name of the marker of session `id`.
pub(crate) fn marker(session: i64) -> String {
    format!("{MARKER_PREFIX}{session:016x}")
}

/// The contenders among `children`, lowest sequence first.
pub(crate) fn queue(children: &[String]) -> Vec<(i64, &str)> {
    let mut queue: Vec<(i64, &str)> = children
        .iter()
        .filter_map(|name| sequence(name).map(|seq| (seq, name.as_str())))
        .collect();
    queue.sort_unstable();
    queue
}

/// What a contender's znode holds: who it is and the metadata it publishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Contender {
    pub(crate) instance_id: String,
    pub(crate) lease_id: String,
    pub(crate) metadata: Option<Vec<u8>>,
}

impl Contender {
    /// The bytes: the format byte, the instance id and the lease id (each a big-endian `u16`
    /// length and UTF-8), then the metadata (none when empty).
    pub(crate) fn encode(
        operation: Operation,
        instance_id: &str,
        lease_id: &str,
        metadata: Option<&[u8]>,
    ) -> Result<Vec<u8>> {
        let metadata = metadata.unwrap_or_default();
        let mut out = Vec::with_capacity(5 + instance_id.len() + lease_id.len() + metadata.len());
        out.push(CONTENDER_FORMAT);
        for text in [instance_id, lease_id] {
            let len = u16::try_from(text.len()).map_err(|_| {
                Error::invalid_data(
                    operation,
                    format!("an id of {} bytes is longer than 65535", text.len()),
                )
            })?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(metadata);
        Ok(out)
    }

    /// The contender in `data`, or `None` when it is not data this library wrote.
    pub(crate) fn decode(data: &[u8]) -> Option<Self> {
        let (&format, mut rest) = data.split_first()?;
        if format != CONTENDER_FORMAT {
            return None;
        }
        let mut text = || -> Option<String> {
            let len = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
            let bytes = rest.get(2..2 + len)?;
            rest = &rest[2 + len..];
            String::from_utf8(bytes.to_vec()).ok()
        };
        let instance_id = text()?;
        let lease_id = text()?;
        Some(Self {
            instance_id,
            lease_id,
            metadata: (!rest.is_empty()).then(|| rest.to_vec()),
        })
    }
}

/// What the guard holds: the last holder granted the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Guard {
    /// The czxid of the holder's znode: its token.
    pub(crate) czxid: i64,
    /// The holder's session.
    pub(crate) session: i64,
    /// The holder's znode name.
    pub(crate) name: String,
    /// The holder's lease, in milliseconds: how long it may trust its lease after its last
    /// renewal.
    pub(crate) ttl_ms: u64,
}

impl Guard {
    /// The text `1 <czxid> <session, hex> <name> <lease in ms>`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        format!(
            "1 {} {:x} {} {}",
            self.czxid, self.session, self.name, self.ttl_ms
        )
        .into_bytes()
    }

    /// The guard in `data`, or `None` when it is empty or not what this library writes.
    pub(crate) fn decode(data: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(data).ok()?;
        let mut parts = text.split(' ');
        if parts.next()? != "1" {
            return None;
        }
        let czxid = parts.next()?.parse().ok()?;
        let session = u64::from_str_radix(parts.next()?, 16).ok()?;
        let name = parts.next()?.to_owned();
        let ttl_ms = parts.next()?.parse().ok()?;
        if parts.next().is_some() || sequence(&name).is_none() {
            return None;
        }
        Some(Self {
            czxid,
            session: i64::from_ne_bytes(session.to_ne_bytes()),
            name,
            ttl_ms,
        })
    }
}

/// The release marker's text: the czxid of the released znode.
pub(crate) fn encode_released(czxid: i64) -> Vec<u8> {
    czxid.to_string().into_bytes()
}

/// The czxid in the release marker, or `None`.
pub(crate) fn decode_released(data: &[u8]) -> Option<i64> {
    std::str::from_utf8(data).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contender_data_round_trips_and_garbage_is_none() {
        let op = Operation::Acquire;
        for metadata in [None, Some(&b"\0\xff{}"[..])] {
            let data = Contender::encode(op, "node-1", "abc", metadata).unwrap();
            let back = Contender::decode(&data).unwrap();
            assert_eq!(back.instance_id, "node-1");
            assert_eq!(back.lease_id, "abc");
            assert_eq!(back.metadata.as_deref(), metadata);
        }
        for garbage in [
            &b""[..],
            b"\x01",
            b"\x01\x00\x05ab",
            b"\x02\x00\x00\x00\x00",
            b"\x01\xff\xff",
        ] {
            assert_eq!(Contender::decode(garbage), None, "{garbage:?}");
        }
        assert!(Contender::encode(op, &"x".repeat(70_000), "a", None).is_err());
    }

    #[test]
    fn names_and_queue_order() {
        let lease = "0123456789abcdef0123456789abcdef";
        let name = format!("{}0000000042", contender_prefix(lease));
        assert_eq!(sequence(&name), Some(42));
        for other in [
            "guard",
            "released",
            "s-00ff",
            "c-",
            "c-x-12",
            "c--0000000001",
            "c-a-00000000x1",
        ] {
            assert_eq!(sequence(other), None, "{other}");
        }
        let children: Vec<String> = [
            "c-b-0000000003",
            "guard",
            "c-a-0000000010",
            "s-1",
            "c-c-0000000001",
        ]
        .map(String::from)
        .to_vec();
        let names: Vec<&str> = queue(&children).into_iter().map(|(_, n)| n).collect();
        assert_eq!(
            names,
            ["c-c-0000000001", "c-b-0000000003", "c-a-0000000010"]
        );
        assert_eq!(marker(255), "s-00000000000000ff");
    }

    #[test]
    fn guard_and_release_marker_round_trip() {
        let guard = Guard {
            czxid: 77,
            session: -5,
            name: "c-a-0000000001".to_owned(),
            ttl_ms: 2000,
        };
        assert_eq!(Guard::decode(&guard.encode()), Some(guard));
        for garbage in [
            &b""[..],
            b"1 x 1 c-a-0000000001 5",
            b"2 1 1 c-a-0000000001 5",
            b"1 1 1 guard 5",
            b"1 1 1 c-a-0000000001",
            b"\xff",
        ] {
            assert_eq!(Guard::decode(garbage), None);
        }
        assert_eq!(decode_released(&encode_released(9)), Some(9));
        assert_eq!(decode_released(b"nope"), None);
    }
}
