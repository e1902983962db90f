//! The Redis keys and channel of one election, and the rules of its name.

use leader_election::BuildError;

use super::MAX_KEY_LEN;

/// The Redis keys and channel of one election, all sharing the hash tag `{key}`, so that every
/// script touches a single slot of a cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Keys {
    pub(crate) name: String,
    pub(crate) lease: String,
    pub(crate) counter: String,
    pub(crate) fence: String,
    pub(crate) epoch: String,
    pub(crate) longest: String,
    pub(crate) shadow: String,
    /// The election record (see [`RedisLeaseStore::record_key`](super::RedisLeaseStore::record_key)).
    pub(crate) record: String,
    pub(crate) channel: String,
    pub(super) slot: u16,
}

impl Keys {
    pub(crate) fn new(name: &str) -> std::result::Result<Self, BuildError> {
        validate_key(name)?;
        let lease = format!("{{{name}}}:lease");
        Ok(Self {
            name: name.to_owned(),
            slot: fred::util::redis_keyslot(lease.as_bytes()),
            lease,
            counter: format!("{{{name}}}:token"),
            fence: format!("{{{name}}}:fence"),
            epoch: format!("{{{name}}}:epoch"),
            longest: format!("{{{name}}}:maxttl"),
            shadow: format!("{{{name}}}:held"),
            record: format!("{{{name}}}:record"),
            channel: format!("{{{name}}}:released"),
        })
    }
}

/// Checks an election key: the rules every backend's names share
/// ([`check_name`](leader_election::backend::check_name): not empty or blank, at most
/// [`MAX_KEY_LEN`] bytes, no control characters), and no braces (they would change the hash
/// tag `{key}`).
pub(crate) fn validate_key(key: &str) -> std::result::Result<(), BuildError> {
    leader_election::backend::check_name("key", key, MAX_KEY_LEN)?;
    if key.contains(['{', '}']) {
        return Err(BuildError::invalid_name(
            "key",
            key,
            "must not contain `{` or `}`: the key is wrapped in a hash tag",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_and_the_channel_of_an_election_share_one_cluster_slot() {
        // Each script's keys must hash to one slot, or a cluster refuses it (CROSSSLOT).
        for name in ["billing-jobs", "leader-election-lock", "a", "x:y:z", "ünï"] {
            let keys = Keys::new(name).unwrap();
            let all = [
                &keys.lease,
                &keys.counter,
                &keys.fence,
                &keys.epoch,
                &keys.longest,
                &keys.shadow,
                &keys.record,
                &keys.channel,
            ];
            for key in all {
                assert_eq!(
                    fred::util::redis_keyslot(key.as_bytes()),
                    keys.slot,
                    "{key} of {name}"
                );
            }
            // The slot is the name's own, whatever the suffix.
            assert_eq!(fred::util::redis_keyslot(name.as_bytes()), keys.slot);
        }
    }
}
