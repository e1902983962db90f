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
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use leader_election::store::LeaseRequest;
use leader_election::{FencingToken, LeaderInfo};

use crate::clock::Version;

/// The format of the item this crate writes and reads.
const FORMAT: &str = "1";

/// The table's partition key attribute.
pub(crate) const PK: &str = "pk";
/// The version attribute, a fresh random value in every write.
pub(crate) const VERSION: &str = "v";

/// An item as the SDK reads and writes it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// The lease item's record.
///
/// Every write carries a fresh random version (`v`): it is what followers watch, and what
/// every conditional write compares (`#v = :expected`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Record {
    /// The holder; `None` once its holder released the lease (the record keeps the token), or
    /// in a placeholder.
    pub(crate) holder: Option<Holder>,
    /// The fencing token of the term this record belongs to (or belonged to, once released).
    pub(crate) token: u64,
    /// The holder's lease duration in milliseconds: a follower waits at least this long (on
    /// its own clock) over an unchanged version before taking over.
    pub(crate) lease_ms: u64,
    /// Written by a contender that found the item missing after it had seen it present (a
    /// deletion, or a service that lost it): nobody holds it, but whoever held the deleted
    /// record may still trust its lease, so every contender watches this version for a lease
    /// before taking it over. A write conditioned on this version cannot follow a later
    /// deletion, as a creation with `attribute_not_exists(pk)` could.
    pub(crate) placeholder: bool,
}

/// Who holds the lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Holder {
    /// The holder's instance id.
    pub(crate) instance_id: String,
    /// The holder's lease id: with the instance id, the lease's owner.
    pub(crate) lease_id: String,
    /// The leader metadata.
    pub(crate) metadata: Option<Vec<u8>>,
}

/// What a read of the item found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// No item.
    Missing,
    /// A record this crate wrote.
    Record(Record),
    /// Something this crate cannot read (written by somebody else), and why: held by an
    /// unknown holder.
    Unreadable(String),
}

impl Record {
    /// The record of `request` holding the lease with `token`.
    pub(crate) fn held(request: &LeaseRequest, token: FencingToken) -> Self {
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
    pub(crate) fn released(token: FencingToken) -> Self {
        Self {
            holder: None,
            token: token.get(),
            lease_ms: 0,
            placeholder: false,
        }
    }

    /// The placeholder written over a missing item by a contender that had seen it present
    /// (see [`Record::placeholder`](Self#structfield.placeholder)), with `token` above every
    /// token that contender has seen and `lease`, the longest lease it has seen recorded: how
    /// long every contender watches it.
    pub(crate) fn placeholder(token: FencingToken, lease: Duration) -> Self {
        Self {
            holder: None,
            token: token.get(),
            lease_ms: millis(lease),
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
        Some(
            LeaderInfo::new(
                holder.instance_id.clone(),
                Some(FencingToken::new(self.token)),
            )
            .with_metadata(holder.metadata.clone()),
        )
    }

    /// The holder's lease duration.
    pub(crate) fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// The item to write under `key`, as version `version`.
    pub(crate) fn encode(&self, key: &str, version: &str) -> Item {
        let mut item = Item::new();
        item.insert(PK.to_owned(), AttributeValue::S(key.to_owned()));
        item.insert(VERSION.to_owned(), AttributeValue::S(version.to_owned()));
        item.insert("fmt".to_owned(), AttributeValue::N(FORMAT.to_owned()));
        item.insert(
            "token".to_owned(),
            AttributeValue::N(self.token.to_string()),
        );
        item.insert(
            "lease_ms".to_owned(),
            AttributeValue::N(self.lease_ms.to_string()),
        );
        let released = self.holder.is_none() && !self.placeholder;
        item.insert("released".to_owned(), AttributeValue::Bool(released));
        if let Some(holder) = &self.holder {
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
        if self.placeholder {
            item.insert("placeholder".to_owned(), AttributeValue::Bool(true));
        }
        item
    }
}

/// A fresh version: 128 random bits as hex.
pub(crate) fn new_version() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// The version of `item`: its version attribute when it is a string, otherwise (an item this
/// crate did not write) a fingerprint of its whole content, `~` and 16 hex digits, which no
/// version attribute of this crate can equal.
pub(crate) fn version_of(item: &Item) -> Version {
    if let Some(AttributeValue::S(version)) = item.get(VERSION) {
        return Version::new(version.clone());
    }
    let mut hasher = DefaultHasher::new();
    hash_map(item, &mut hasher);
    Version::new(format!("~{:016x}", hasher.finish()))
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

impl Seen {
    /// Reads an item: a record of this crate's format, or [`Seen::Unreadable`] naming what is
    /// wrong with it.
    pub(crate) fn decode(item: &Item) -> Self {
        match decode(item) {
            Ok(record) => Self::Record(record),
            Err(reason) => Self::Unreadable(reason),
        }
    }
}

fn decode(item: &Item) -> Result<Record, String> {
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
    Ok(Record {
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(item: &Item) -> Record {
        match Seen::decode(item) {
            Seen::Record(record) => record,
            other => panic!("not read back: {other:?}"),
        }
    }

    #[test]
    fn records_round_trip_and_every_write_has_its_version() {
        let request =
            LeaseRequest::new("a", Duration::from_secs(5)).with_metadata(Some(vec![0, 255, b'"']));
        let record = Record::held(&request, FencingToken::new(7));
        let (v1, v2) = (new_version(), new_version());
        assert_ne!(v1, v2);
        let item = record.encode("k", &v1);
        assert_eq!(version_of(&item), Version::new(v1));
        let read = decoded(&item);
        assert_eq!(read, record);
        assert!(read.is_owned_by(&request));
        assert!(!read.is_owned_by(&LeaseRequest::new("a", Duration::from_secs(5))));
        let leader = read.leader().unwrap();
        assert_eq!(leader.instance_id, "a");
        assert_eq!(leader.token, Some(FencingToken::new(7)));
        assert_eq!(leader.metadata, Some(vec![0, 255, b'"']));
        assert_eq!(read.lease(), Duration::from_secs(5));

        let released = read_released();
        assert_eq!(released.leader(), None);
        assert_eq!(released.token, 7);
        assert!(!released.placeholder);

        let placeholder = Record::placeholder(FencingToken::new(8), Duration::from_secs(3));
        let read = decoded(&placeholder.encode("k", &v2));
        assert!(read.placeholder);
        assert_eq!(read.leader(), None);
        assert_eq!(read.lease(), Duration::from_secs(3));
    }

    fn read_released() -> Record {
        let item = Record::released(FencingToken::new(7)).encode("k", &new_version());
        assert!(!item.contains_key("placeholder"));
        decoded(&item)
    }

    #[test]
    fn foreign_items_are_unreadable_and_say_why() {
        let good = Record::released(FencingToken::new(1)).encode("k", "v1");
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
            match Seen::decode(&item) {
                Seen::Unreadable(reason) => assert!(reason.contains(named), "{reason}"),
                other => panic!("{item:?} read as {other:?}"),
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
        assert!(version_of(&a).0.starts_with('~'));
        let mut numeric = a.clone();
        numeric.insert(VERSION.into(), AttributeValue::N("1".into()));
        assert!(version_of(&numeric).0.starts_with('~'));
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
