//! What the store writes in etcd: the election key's value (the holder, its candidacy and its
//! metadata), the candidate record and the election's record, in a compact text form readable
//! with `etcdctl get`.

use std::time::Duration;

use leader_election::priority::Candidate;

/// The first word of every value this store writes; a value without it is not ours.
const MAGIC: &str = "le1";
/// The first word of an election key's value whose token is its create revision plus a base
/// (written only after the cluster lost its data, see `store::identity`).
const MAGIC_BASED: &str = "le2";
/// The first word of an election key's value whose token is a revision it names plus a base:
/// written by a release that hands the lease over to the successor's claim (see
/// `store::handover`), whose token is the claim's mod revision.
const MAGIC_HANDED: &str = "le3";

/// The election key's value: who holds the lease, under which candidacy, for how long a term
/// (its ttl, in milliseconds), and what it publishes.
///
/// Written as `le1 <ttl_ms> <lease_id> <len>:<instance_id>` followed, when there is metadata,
/// by a newline and the metadata's raw bytes. With a token base (above 0), as
/// `le2 <base> <ttl_ms> ...`: a store that does not know bases takes it for a value it did not
/// write, and never takes the lease over while the key lives. Handed over by a release (its
/// token revision named), as `le3 <base> <token_revision> <ttl_ms> ...`, likewise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) instance_id: String,
    pub(crate) lease_id: String,
    pub(crate) ttl: Duration,
    pub(crate) metadata: Option<Vec<u8>>,
    /// What the key's create revision (or `token_revision`) is added to for its fencing token.
    pub(crate) base: u64,
    /// The revision the fencing token counts from when it is not the key's create revision:
    /// the mod revision of the successor's claim a release handed the lease over to.
    pub(crate) token_revision: Option<u64>,
}

impl Holder {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let magic = match (self.token_revision, self.base) {
            (Some(revision), base) => format!("{MAGIC_HANDED} {base} {revision}"),
            (None, 0) => MAGIC.to_owned(),
            (None, base) => format!("{MAGIC_BASED} {base}"),
        };
        let mut value = format!(
            "{magic} {ttl_ms} {} {}:{}",
            self.lease_id,
            self.instance_id.len(),
            self.instance_id
        )
        .into_bytes();
        if let Some(metadata) = &self.metadata {
            value.push(b'\n');
            value.extend_from_slice(metadata);
        }
        value
    }

    /// The holder a value names, or `None` if the value is not one this store wrote.
    pub(crate) fn decode(value: &[u8]) -> Option<Self> {
        let (magic, rest) = split_word(value)?;
        let (base, token_revision, rest) = if magic == MAGIC.as_bytes() {
            (0, None, rest)
        } else if magic == MAGIC_BASED.as_bytes() {
            let (base, rest) = split_number(rest)?;
            (base, None, rest)
        } else if magic == MAGIC_HANDED.as_bytes() {
            let (base, rest) = split_number(rest)?;
            let (revision, rest) = split_number(rest)?;
            if revision == 0 {
                return None;
            }
            (base, Some(revision), rest)
        } else {
            return None;
        };
        let (ttl_ms, rest) = split_word(rest)?;
        let ttl_ms: u64 = std::str::from_utf8(ttl_ms).ok()?.parse().ok()?;
        let (lease_id, rest) = split_word(rest)?;
        let colon = rest.iter().position(|&b| b == b':')?;
        let len: usize = std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()?;
        let rest = &rest[colon + 1..];
        let instance_id = rest.get(..len)?;
        let metadata = match &rest[len..] {
            [] => None,
            [b'\n', metadata @ ..] => Some(metadata.to_vec()).filter(|m| !m.is_empty()),
            _ => return None,
        };
        Some(Self {
            instance_id: String::from_utf8(instance_id.to_vec()).ok()?,
            lease_id: String::from_utf8(lease_id.to_vec()).ok()?,
            ttl: Duration::from_millis(ttl_ms),
            metadata,
            base,
            token_revision,
        })
    }
}

/// The candidate record: `le1 <priority> <instance_id>`.
pub(crate) fn encode_candidate(candidate: &Candidate) -> Vec<u8> {
    format!("{MAGIC} {} {}", candidate.priority, candidate.instance_id).into_bytes()
}

/// The candidate a record names, or `None` if it is not one this store wrote.
pub(crate) fn decode_candidate(value: &[u8]) -> Option<Candidate> {
    let (magic, rest) = split_word(value)?;
    if magic != MAGIC.as_bytes() {
        return None;
    }
    let (priority, instance_id) = split_word(rest)?;
    let priority: u32 = std::str::from_utf8(priority).ok()?.parse().ok()?;
    let instance_id = std::str::from_utf8(instance_id).ok()?;
    Some(Candidate::new(instance_id, priority))
}

/// The election record's value: `le1 <write id>\n` and the data as written, where the write id
/// is 16 lowercase hex digits, drawn at random for each write (see `store::election_record`).
pub(crate) fn encode_election_record(write_id: u64, data: &[u8]) -> Vec<u8> {
    let mut value = format!("{MAGIC} {write_id:016x}\n").into_bytes();
    value.extend_from_slice(data);
    value
}

/// The write id and the data of an election record's value, or `None` if it is not one this
/// store wrote.
pub(crate) fn decode_election_record(value: &[u8]) -> Option<(u64, &[u8])> {
    let (magic, rest) = split_word(value)?;
    if magic != MAGIC.as_bytes() {
        return None;
    }
    let (id, data) = (rest.get(..16)?, rest.get(16..)?);
    let data = data.strip_prefix(b"\n")?;
    if !id
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let id = u64::from_str_radix(std::str::from_utf8(id).ok()?, 16).ok()?;
    Some((id, data))
}

/// Two values between which (both excluded) lie exactly the election record values that
/// begin with `le1 <write_id>` and a byte up to `\n`: every value this store wrote with
/// `write_id`, and no value it wrote with another. etcd compares values only whole (byte by
/// byte, as Go's `bytes.Compare`), so a transaction checks that the record is still the one
/// a write with `write_id` left with `value > low && value < high`.
pub(crate) fn election_record_bounds(write_id: u64) -> (Vec<u8>, Vec<u8>) {
    let low = format!("{MAGIC} {write_id:016x}").into_bytes();
    let mut high = low.clone();
    high.push(b'\n' + 1);
    (low, high)
}

/// The number before the first space, and the bytes after it.
fn split_number(value: &[u8]) -> Option<(u64, &[u8])> {
    let (word, rest) = split_word(value)?;
    Some((std::str::from_utf8(word).ok()?.parse().ok()?, rest))
}

/// The bytes before the first space, and those after it.
fn split_word(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = value.iter().position(|&b| b == b' ')?;
    Some((&value[..space], &value[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_round_trip_with_any_metadata_and_ids() {
        for (instance_id, metadata) in [
            ("node-1", None),
            (
                "with space: and\ncolon",
                Some(b"addr=10.0.0.7:8080".to_vec()),
            ),
            ("ünï", Some(vec![0, 255, b'\n', b' ', 1])),
            ("", Some(b"\n".to_vec())),
        ] {
            for base in [0, 1, u64::MAX] {
                let holder = Holder {
                    instance_id: instance_id.to_owned(),
                    lease_id: "0123456789abcdef0123456789abcdef".to_owned(),
                    ttl: Duration::from_millis(2500),
                    metadata: metadata.clone(),
                    base,
                    token_revision: None,
                };
                assert_eq!(Holder::decode(&holder.encode()), Some(holder.clone()));
                let handed = Holder {
                    token_revision: Some(42),
                    ..holder
                };
                assert_eq!(Holder::decode(&handed.encode()), Some(handed.clone()));
            }
        }
        let plain = Holder {
            instance_id: "a".to_owned(),
            lease_id: "f".repeat(32),
            ttl: Duration::from_secs(2),
            metadata: None,
            base: 0,
            token_revision: None,
        };
        assert_eq!(
            plain.encode(),
            format!("le1 2000 {} 1:a", "f".repeat(32)).into_bytes()
        );
        let based = Holder {
            base: 17,
            ..plain.clone()
        };
        assert_eq!(
            based.encode(),
            format!("le2 17 2000 {} 1:a", "f".repeat(32)).into_bytes()
        );
        let handed = Holder {
            token_revision: Some(9),
            ..plain
        };
        assert_eq!(
            handed.encode(),
            format!("le3 0 9 2000 {} 1:a", "f".repeat(32)).into_bytes()
        );
    }

    #[test]
    fn foreign_values_are_not_holders() {
        for value in [
            &b""[..],
            b"leader",
            b"le2 1 x 1:a",
            b"le3 0 0 2000 f 1:a",
            b"le3 0 x 2000 f 1:a",
            b"le1 x y 1:a",
            b"le1 10 id 5:a",
            b"le1 10 id 1:ab",
            b"le2 x 10 id 1:a",
            b"le2 10 id 1:a",
        ] {
            assert_eq!(Holder::decode(value), None, "{value:?}");
        }
    }

    #[test]
    fn candidates_round_trip() {
        let candidate = Candidate::new("node 7", 42);
        assert_eq!(
            decode_candidate(&encode_candidate(&candidate)),
            Some(candidate)
        );
        assert_eq!(decode_candidate(b"le1 x a"), None);
    }

    #[test]
    fn election_records_round_trip_with_any_data() {
        for data in [
            &b""[..],
            b"x",
            b"\n",
            &[0, 255, b'\n', b' ', 1],
            &[b'r'; 70_000],
        ] {
            for id in [0, 1, 0xdead_beef, u64::MAX] {
                let value = encode_election_record(id, data);
                assert_eq!(decode_election_record(&value), Some((id, data)));
            }
        }
        assert_eq!(
            encode_election_record(0xab, b"{}"),
            b"le1 00000000000000ab\n{}".to_vec()
        );
        for value in [
            &b""[..],
            b"{}",
            b"le1",
            b"le1 00000000000000ab",
            b"le1 00000000000000ab{}",
            b"le1 00000000000000AB\n{}",
            b"le1 00000000000000ag\n{}",
            b"le1 +0000000000000ab\n{}",
            b"le2 00000000000000ab\n{}",
            b"le1 ab\n{}",
        ] {
            assert_eq!(decode_election_record(value), None, "{value:?}");
        }
    }

    #[test]
    fn election_record_bounds_hold_the_values_of_one_write_only() {
        let within = |id: u64, value: &[u8]| {
            let (low, high) = election_record_bounds(id);
            value > low.as_slice() && value < high.as_slice()
        };
        for id in [0, 0xab, u64::MAX] {
            for data in [&b""[..], b"\n", &[0xff; 3], &[0; 3]] {
                assert!(within(id, &encode_election_record(id, data)));
                for other in [0, 1, 0xaa, 0xac, 0xab0, u64::MAX, u64::MAX - 1] {
                    if other != id {
                        assert!(!within(id, &encode_election_record(other, data)));
                    }
                }
            }
        }
        // Foreign values: the bare prefix, and longer look-alikes.
        for value in [
            &b"le1 00000000000000ab"[..],
            b"le1 00000000000000ab0\n",
            b"le1 00000000000000ab \n",
            b"x",
            b"",
        ] {
            assert!(!within(0xab, value), "{value:?}");
        }
    }
}
