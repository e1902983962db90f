//! The candidate record of preferred leaders: `{key}:candidate`, a string
//! `"<priority>:<instance id>"` expiring by `PX`, written by one small script so that the
//! priority comparison and the write are atomic.

use std::time::Duration;

use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::{ClusterHash, CustomCommand, Value};
use leader_election::priority::Candidate;
use leader_election::{Error, Operation, Result};

use super::{RedisLeaseStore, ttl_ms};
use crate::error::map_fred;

/// Replaces the record unless it holds another contender with a higher priority; a record that
/// cannot be read is replaced. Sent with `EVAL`: it runs at most once per `renew_interval` per
/// waiting contender, so caching it by SHA1 would save little.
const ANNOUNCE: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  local sep = string.find(current, ':', 1, true)
  local priority = sep and tonumber(string.sub(current, 1, sep - 1))
  if priority and tonumber(ARGV[2]) < priority and string.sub(current, sep + 1) ~= ARGV[1] then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2] .. ':' .. ARGV[1], 'PX', ARGV[3])
return 1
";

impl RedisLeaseStore {
    /// The Redis key holding the candidate record of preferred leaders: `{key}:candidate`.
    #[must_use]
    pub fn candidate_key(&self) -> String {
        format!("{{{}}}:candidate", self.inner.keys.name)
    }

    pub(super) async fn announce(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        let operation = Operation::AnnounceCandidate;
        let command =
            CustomCommand::new_static("EVAL", ClusterHash::Custom(self.inner.keys.slot), false);
        let args = vec![
            Value::from(ANNOUNCE),
            Value::Integer(1),
            Value::from(self.candidate_key()),
            Value::from(candidate.instance_id.as_str()),
            Value::Integer(i64::from(candidate.priority)),
            ttl_ms(ttl),
        ];
        let _: Value = self
            .inner
            .client
            .with_options(&self.command_options())
            .custom(command, args)
            .await
            .map_err(|e| map_fred(operation, e))?;
        Ok(())
    }

    pub(super) async fn strongest(&self) -> Result<Option<Candidate>> {
        let operation = Operation::StrongestCandidate;
        let record: Option<String> = self
            .inner
            .client
            .with_options(&self.command_options())
            .get(self.candidate_key())
            .await
            .map_err(|e| map_fred(operation, e))?;
        record.as_deref().map(parse).transpose()
    }
}

/// Reads a record `"<priority>:<instance id>"`.
fn parse(record: &str) -> Result<Candidate> {
    record
        .split_once(':')
        .and_then(|(priority, id)| Some(Candidate::new(id, priority.parse().ok()?)))
        .ok_or_else(|| {
            Error::invalid_data(
                Operation::StrongestCandidate,
                format!(
                    "the candidate record {} is not `<priority>:<instance id>`",
                    leader_election::backend::quoted(record)
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_parsed_or_refused() {
        assert_eq!(parse("5:pod:1").unwrap(), Candidate::new("pod:1", 5));
        assert!(parse("x:pod").is_err());
        assert!(parse("pod").is_err());
        assert!(parse("-1:pod").is_err());
    }
}
