//! The lease record: the attributes of the lease item.
//!
//! | attribute     | type | holds                                                         |
//! |---------------|------|---------------------------------------------------------------|
//! | `pk`          | S    | the election key (the table's partition key)                  |
//! | `v`           | S    | the version: 128 random bits (hex), new in every write        |
//! | `fmt`         | N    | the format of the item, `1`                                   |
//! | `token`       | N    | the fencing token of the term (kept by a release)             |
//! | `lease_ms`    | N    | the holder's lease in milliseconds (a placeholder's: the longest seen) |
//! | `released`    | BOOL | true once the holder released the lease                       |
//! | `holder`      | S    | the holder's instance id (only while held)                    |
//! | `lease_id`    | S    | the holder's lease id (only while held)                       |
//! | `metadata`    | B    | the leader metadata (only while held, when published)         |
//! | `placeholder` | BOOL | true on a placeholder written over a deleted item             |

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use leader_election::store::conditional::{CandidateRecord, Holder, LeaseRecord};

/// The format of the item this crate writes and reads.
const FORMAT: &str = "1";

/// The table's partition key attribute.
pub(crate) const PK: &str = "pk";
/// The version attribute, a fresh random value in every write.
pub(crate) const VERSION: &str = "v";
/// The election record item's data attribute.
const DATA: &str = "data";

/// An item as the SDK reads and writes it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// What tells two versions of an item apart: its version attribute, a fresh random value in
/// every write of this crate; for an item without one (written by somebody else), a
/// fingerprint of its whole content (`true`: a write on it is conditioned on the item holding
/// no version of this crate).
pub(crate) type Version = (String, bool);

/// The lease item holding `record` (without its key and version, which every write adds).
pub(crate) fn encode(record: &LeaseRecord) -> Item {
    let mut item = Item::new();
    item.insert("fmt".to_owned(), AttributeValue::N(FORMAT.to_owned()));
    item.insert(
        "token".to_owned(),
        AttributeValue::N(record.token.to_string()),
    );
    item.insert(
        "lease_ms".to_owned(),
        AttributeValue::N(record.lease_ms.to_string()),
    );
    let released = record.holder.is_none() && !record.placeholder;
    item.insert("released".to_owned(), AttributeValue::Bool(released));
    if let Some(holder) = &record.holder {
        item.insert(
            "holder".to_owned(),
            AttributeValue::S(holder.instance_id.clone()),
        );
        item.insert(
            "lease_id".to_owned(),
            AttributeValue::S(holder.lease_id.clone()),
        );
        if let Some(metadata) = holder.metadata.as_ref().filter(|m| !m.is_empty()) {
            item.insert(
                "metadata".to_owned(),
                AttributeValue::B(Blob::new(metadata.clone())),
            );
        }
    }
    if record.placeholder {
        item.insert("placeholder".to_owned(), AttributeValue::Bool(true));
    }
    item
}

/// `item` as the item `key` at `version`.
pub(crate) fn keyed(mut item: Item, key: &str, version: &str) -> Item {
    item.insert(PK.to_owned(), AttributeValue::S(key.to_owned()));
    item.insert(VERSION.to_owned(), AttributeValue::S(version.to_owned()));
    item
}

/// The version of `item`: its version attribute when it is a string, otherwise (an item this
/// crate did not write) a fingerprint of its whole content, `~` and 16 hex digits, which no
/// version attribute of this crate can equal.
pub(crate) fn version_of(item: &Item) -> Version {
    if let Some(AttributeValue::S(version)) = item.get(VERSION) {
        return (version.clone(), false);
    }
    let mut hasher = DefaultHasher::new();
    hash_map(item, &mut hasher);
    (format!("~{:016x}", hasher.finish()), true)
}

/// Hashes `map` the same way whatever the order its entries come in.
fn hash_map(map: &Item, hasher: &mut DefaultHasher) {
    let mut names: Vec<_> = map.keys().collect();
    names.sort();
    names.len().hash(hasher);
    for name in names {
        name.hash(hasher);
        hash_value(&map[name], hasher);
    }
}

/// Hashes `value` canonically: maps by sorted name, sets (which DynamoDB keeps unordered)
/// sorted.
fn hash_value(value: &AttributeValue, hasher: &mut DefaultHasher) {
    fn sorted<T: AsRef<[u8]>>(set: &[T]) -> Vec<&[u8]> {
        let mut set: Vec<&[u8]> = set.iter().map(AsRef::as_ref).collect();
        set.sort();
        set
    }
    match value {
        AttributeValue::S(v) => ("S", v).hash(hasher),
        AttributeValue::N(v) => ("N", v).hash(hasher),
        AttributeValue::B(v) => ("B", v.as_ref()).hash(hasher),
        AttributeValue::Bool(v) => ("BOOL", v).hash(hasher),
        AttributeValue::Null(v) => ("NULL", v).hash(hasher),
        AttributeValue::Ss(v) => ("SS", sorted(v)).hash(hasher),
        AttributeValue::Ns(v) => ("NS", sorted(v)).hash(hasher),
        AttributeValue::Bs(v) => {
            let blobs: Vec<&[u8]> = v.iter().map(Blob::as_ref).collect();
            ("BS", sorted(&blobs)).hash(hasher);
        }
        AttributeValue::L(list) => {
            ("L", list.len()).hash(hasher);
            for value in list {
                hash_value(value, hasher);
            }
        }
        AttributeValue::M(map) => {
            "M".hash(hasher);
            hash_map(map, hasher);
        }
        // A type this SDK release does not know: its description, the best there is.
        other => ("?", format!("{other:?}")).hash(hasher),
    }
}

/// The lease record in `item`, or what is wrong with it.
pub(crate) fn decode(item: &Item) -> Result<LeaseRecord, String> {
    const KNOWN: [&str; 10] = [
        PK,
        VERSION,
        "fmt",
        "token",
        "lease_ms",
        "released",
        "holder",
        "lease_id",
        "metadata",
        "placeholder",
    ];
    let mut unexpected: Vec<_> = item
        .keys()
        .filter(|name| !KNOWN.contains(&name.as_str()))
        .map(|name| format!("`{name}`"))
        .collect();
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(format!("unexpected attributes {}", unexpected.join(", ")));
    }
    string(item, VERSION)?.ok_or("no version attribute `v`")?;
    let format = number(item, "fmt")?.ok_or("no format attribute `fmt`")?;
    if format != FORMAT {
        return Err(format!("format {format}, not {FORMAT}"));
    }
    let token = whole(item, "token")?.ok_or("no `token`")?;
    let lease_ms = whole(item, "lease_ms")?.ok_or("no `lease_ms`")?;
    let released = boolean(item, "released")?.ok_or("no `released`")?;
    let placeholder = boolean(item, "placeholder")?.unwrap_or(false);
    let holder = string(item, "holder")?;
    let lease_id = string(item, "lease_id")?;
    let metadata = match item.get("metadata") {
        None => None,
        Some(AttributeValue::B(blob)) => Some(blob.as_ref().to_vec()),
        Some(_) => return Err("`metadata` is not binary (B)".to_owned()),
    };
    let holder = match (holder, lease_id) {
        (Some(instance_id), Some(lease_id)) if !released && !placeholder => Some(Holder {
            instance_id: instance_id.to_owned(),
            lease_id: lease_id.to_owned(),
            metadata,
        }),
        (None, None) if metadata.is_none() && (released != placeholder) => None,
        _ => {
            return Err(
                "`holder`, `lease_id`, `metadata`, `released` and `placeholder` disagree"
                    .to_owned(),
            );
        }
    };
    Ok(LeaseRecord {
        holder,
        token,
        lease_ms,
        placeholder,
    })
}

fn string<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, String> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(value)) => Ok(Some(value)),
        Some(_) => Err(format!("`{name}` is not a string (S)")),
    }
}

fn number<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, String> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(value)) => Ok(Some(value)),
        Some(_) => Err(format!("`{name}` is not a number (N)")),
    }
}

fn whole(item: &Item, name: &str) -> Result<Option<u64>, String> {
    number(item, name)?
        .map(|n| {
            n.parse::<u64>()
                .map_err(|_| format!("`{name}` is not a whole number from 0 to 2^64-1: {n}"))
        })
        .transpose()
}

fn boolean(item: &Item, name: &str) -> Result<Option<bool>, String> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::Bool(value)) => Ok(Some(*value)),
        Some(_) => Err(format!("`{name}` is not a boolean (BOOL)")),
    }
}

/// The candidate record in `item`, `None` when it is not one of this crate's (written by
/// hand: treated as no candidate, and replaced by the next announcement).
pub(crate) fn decode_candidate(item: &Item) -> Option<CandidateRecord> {
    if item
        .keys()
        .any(|k| ![PK, VERSION, "instance_id", "priority", "ttl_ms"].contains(&k.as_str()))
    {
        return None;
    }
    let number = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse::<u64>().ok(),
        _ => None,
    };
    match (item.get(VERSION), item.get("instance_id")) {
        (Some(AttributeValue::S(_)), Some(AttributeValue::S(instance_id))) => {
            Some(CandidateRecord {
                instance_id: instance_id.clone(),
                priority: u32::try_from(number("priority")?).ok()?,
                ttl_ms: number("ttl_ms")?,
            })
        }
        _ => None,
    }
}

/// The candidate item holding `record` (without its key and version).
pub(crate) fn encode_candidate(record: &CandidateRecord) -> Item {
    let mut item = Item::new();
    item.insert(
        "instance_id".to_owned(),
        AttributeValue::S(record.instance_id.clone()),
    );
    item.insert(
        "priority".to_owned(),
        AttributeValue::N(record.priority.to_string()),
    );
    item.insert(
        "ttl_ms".to_owned(),
        AttributeValue::N(record.ttl_ms.to_string()),
    );
    item
}

/// The election record item holding `data` (without its key and version): DynamoDB refuses
/// empty binary values, so an empty record has no `data`.
pub(crate) fn encode_data(data: &[u8]) -> Item {
    let mut item = Item::new();
    if !data.is_empty() {
        item.insert(DATA.to_owned(), AttributeValue::B(Blob::new(data.to_vec())));
    }
    item
}

/// The data of an election record item, or what is wrong with it.
pub(crate) fn decode_data(item: &Item) -> Result<Vec<u8>, String> {
    let mut unexpected: Vec<_> = item
        .keys()
        .filter(|name| ![PK, VERSION, DATA].contains(&name.as_str()))
        .map(|name| format!("`{name}`"))
        .collect();
    if !unexpected.is_empty() {
        unexpected.sort();
        return Err(format!("unexpected attributes {}", unexpected.join(", ")));
    }
    match item.get(VERSION) {
        Some(AttributeValue::S(version)) if !version.is_empty() => {}
        Some(_) => return Err("`v` is not a non-empty string (S)".to_owned()),
        None => return Err("no version attribute `v`".to_owned()),
    }
    match item.get(DATA) {
        Some(AttributeValue::B(blob)) => Ok(blob.as_ref().to_vec()),
        Some(_) => Err("`data` is not binary (B)".to_owned()),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use leader_election::FencingToken;

    use leader_election::store::conditional::nonce;

    use leader_election_aws::testing::{assert_held_record, held_record};

    use super::*;

    fn decoded(item: &Item) -> LeaseRecord {
        decode(item).unwrap_or_else(|reason| panic!("not read back: {reason}"))
    }

    #[test]
    fn records_round_trip_and_every_write_has_its_version() {
        let (request, record) = held_record();
        let (v1, v2) = (nonce(), nonce());
        assert_ne!(v1, v2);
        let item = keyed(encode(&record), "k", &v1);
        assert_eq!(version_of(&item), (v1, false));
        assert_held_record(&decoded(&item), &request, &record);

        let released = read_released();
        assert_eq!(released.leader(), None);
        assert_eq!(released.token, 7);
        assert!(!released.placeholder);

        let placeholder = LeaseRecord::placeholder(FencingToken::new(8), Duration::from_secs(3));
        let read = decoded(&keyed(encode(&placeholder), "k", &v2));
        assert!(read.placeholder);
        assert_eq!(read.leader(), None);
        assert_eq!(read.lease(), Duration::from_secs(3));
    }

    fn read_released() -> LeaseRecord {
        let item = keyed(
            encode(&LeaseRecord::released(FencingToken::new(7))),
            "k",
            &nonce(),
        );
        assert!(!item.contains_key("placeholder"));
        decoded(&item)
    }

    #[test]
    fn foreign_items_are_unreadable_and_say_why() {
        let good = keyed(
            encode(&LeaseRecord::released(FencingToken::new(1))),
            "k",
            "v1",
        );
        let cases: Vec<(Item, &str)> = vec![
            (Item::new(), "`v`"),
            (
                {
                    let mut i = good.clone();
                    i.insert("extra".into(), AttributeValue::Bool(true));
                    i
                },
                "`extra`",
            ),
            (
                {
                    let mut i = good.clone();
                    i.insert("token".into(), AttributeValue::N("-1".into()));
                    i
                },
                "`token`",
            ),
            (
                {
                    let mut i = good.clone();
                    i.insert("token".into(), AttributeValue::S("1".into()));
                    i
                },
                "`token`",
            ),
            (
                {
                    let mut i = good.clone();
                    i.insert("fmt".into(), AttributeValue::N("2".into()));
                    i
                },
                "format 2",
            ),
            (
                {
                    let mut i = good.clone();
                    i.insert("holder".into(), AttributeValue::S("x".into()));
                    i
                },
                "disagree",
            ),
        ];
        for (item, named) in cases {
            match decode(&item) {
                Err(reason) => assert!(reason.contains(named), "{reason}"),
                Ok(other) => panic!("{item:?} read as {other:?}"),
            }
        }
    }

    #[test]
    fn items_without_a_version_are_told_apart_by_content() {
        let mut a = Item::new();
        a.insert(PK.into(), AttributeValue::S("k".into()));
        a.insert("x".into(), AttributeValue::N("1".into()));
        let mut b = a.clone();
        b.insert("x".into(), AttributeValue::N("2".into()));
        assert_eq!(version_of(&a), version_of(&a.clone()));
        assert_ne!(version_of(&a), version_of(&b));
        assert!(version_of(&a).1);
        let mut numeric = a.clone();
        numeric.insert(VERSION.into(), AttributeValue::N("1".into()));
        assert!(version_of(&numeric).1);
        // Maps and sets compare by content, whatever their order.
        let nested = |order: &[&str]| {
            let mut item = a.clone();
            let map: Item = order
                .iter()
                .map(|k| ((*k).to_owned(), AttributeValue::N((*k).len().to_string())))
                .collect();
            item.insert("m".into(), AttributeValue::M(map));
            item.insert(
                "ss".into(),
                AttributeValue::Ss(order.iter().map(|k| (*k).to_owned()).collect()),
            );
            item
        };
        let forward = nested(&["a", "bb", "ccc", "dddd", "eeeee"]);
        let backward = nested(&["eeeee", "dddd", "ccc", "bb", "a"]);
        assert_eq!(version_of(&forward), version_of(&backward));
        assert_ne!(version_of(&forward), version_of(&a));
    }
}
