//! The election's keys as one linearizable transaction reads them, and what they say: the
//! term's fencing token (the election key's create revision plus the token base), its leader.

use super::*;

/// `ttl` in whole seconds for an etcd lease, rounded up: an etcd lease never ends before the
/// term the core computed from `ttl`.
pub(crate) fn etcd_ttl(ttl: Duration) -> i64 {
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i64::try_from(secs.max(1)).unwrap_or(i64::MAX)
}

/// The revision the fencing token of the election key `kv` counts from: the claim's mod
/// revision its value names when a release handed the lease over (see `handover`), otherwise
/// the key's create revision.
pub(super) fn token_revision(kv: &KeyValue) -> i64 {
    Holder::decode(kv.value())
        .and_then(|h| h.token_revision)
        .and_then(|r| i64::try_from(r).ok())
        .unwrap_or_else(|| kv.create_revision())
}

/// The fencing token of the election key `kv`: its token revision (see [`token_revision`]),
/// plus the token base its value names.
pub(super) fn token_of(kv: &KeyValue) -> Result<FencingToken> {
    let base = Holder::decode(kv.value()).map_or(0, |h| h.base);
    let revision = token_revision(kv);
    u64::try_from(revision)
        .ok()
        .filter(|&r| r > 0)
        .and_then(|r| r.checked_add(base))
        .map(FencingToken::new)
        .ok_or_else(|| {
            Error::invalid_data(
                Operation::Acquire,
                format!("the election key has token revision {revision} and token base {base}"),
            )
        })
}

/// The election's keys, as one linearizable transaction read them: the lease's state. Not the
/// candidate record nor the election's record (`<key>/record`), which no acquisition reads.
pub(super) struct Keys {
    pub(super) key: Option<KeyValue>,
    pub(super) holder: Option<KeyValue>,
    /// The token base key (see [`BASE_SUFFIX`]).
    pub(super) base: Option<KeyValue>,
    /// The released key (see [`RELEASED_SUFFIX`]).
    pub(super) released: Option<KeyValue>,
    /// The successor's claim (see [`NEXT_SUFFIX`]).
    pub(super) next: Option<KeyValue>,
    /// The cluster's revision when they were read.
    pub(super) revision: i64,
}

impl Keys {
    /// The keys a transaction's `get` operations read: the election key, its holder key, the
    /// token base key, the released key and the successor's claim, in that order.
    pub(super) fn of(response: &TxnResponse) -> Self {
        let mut kvs = got(response).into_iter();
        Self {
            key: kvs.next().flatten(),
            holder: kvs.next().flatten(),
            base: kvs.next().flatten(),
            released: kvs.next().flatten(),
            next: kvs.next().flatten(),
            revision: response.header().map_or(0, |h| h.revision()),
        }
    }

    /// The token base: 0 until the cluster lost its data.
    pub(super) fn base(&self) -> Result<u64> {
        let Some(kv) = &self.base else {
            return Ok(0);
        };
        std::str::from_utf8(kv.value())
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| {
                Error::invalid_data(
                    Operation::Acquire,
                    format!(
                        "the token base key {} holds {}, not a number",
                        leader_election::backend::quoted(&String::from_utf8_lossy(kv.key())),
                        leader_election::backend::quoted(&String::from_utf8_lossy(kv.value()))
                    ),
                )
            })
    }

    /// Whether the last release named etcd lease `id`: the keys attached to it went by their
    /// holder's release, not by someone else's deletion.
    pub(super) fn released(&self, id: i64) -> bool {
        self.released
            .as_ref()
            .is_some_and(|kv| kv.value() == id.to_string().as_bytes())
    }

    /// The comparison that holds while the token base key is as read.
    pub(super) fn base_unchanged(&self, base_key: &str) -> Compare {
        match &self.base {
            None => Compare::create_revision(base_key, CompareOp::Equal, 0),
            Some(kv) => Compare::mod_revision(base_key, CompareOp::Equal, kv.mod_revision()),
        }
    }
}

/// The key-values read by the `get` operations of a transaction, in order (`None` for a key
/// that does not exist).
pub(super) fn got(response: &TxnResponse) -> Vec<Option<KeyValue>> {
    response
        .op_responses()
        .into_iter()
        .filter_map(|op| match op {
            TxnOpResponse::Get(get) => Some(get.kvs().first().cloned()),
            _ => None,
        })
        .collect()
}

pub(super) fn leader_of(kv: &KeyValue) -> Option<LeaderInfo> {
    let holder = Holder::decode(kv.value())?;
    Some(LeaderInfo::new(holder.instance_id, token_of(kv).ok()).with_metadata(holder.metadata))
}
