//! The Lua scripts that make every operation atomic on the server, and the decoding of their
//! replies.
//!
//! The lease is one string key holding a small JSON document written by the acquire script,
//! `{"instance": .., "lease": .., "token": ".."}`, with the lease's expiry as the key's PX. The
//! token counter is a second key without expiry. Every script re-reads and re-checks what it
//! needs, so anything written by somebody else (an operator, another program) is reported as
//! garbage instead of being trusted or crashing the script.

use fred::types::Value;
use leader_election::{AcquireOutcome, Error, FencingToken, LeaderInfo, Lease, Operation};
use std::time::Duration;

/// Shared by every script: decodes the lease value, or `nil` when it is not ours.
const DECODE: &str = r"
local function decode(key)
  -- One GET, no TYPE first: every script pays for this on every call.
  local raw = redis.pcall('GET', key)
  if type(raw) == 'table' and raw.err then
    return nil, 'the lease key holds a value of another type, not a string'
  end
  if not raw then return nil, nil end
  local ok, v = pcall(cjson.decode, raw)
  if not ok or type(v) ~= 'table' or type(v.instance) ~= 'string' or type(v.lease) ~= 'string'
     or type(v.token) ~= 'string' or not string.match(v.token, '^[1-9]%d*$') then
    return nil, 'the lease key holds a value this library did not write'
  end
  return v, nil
end
";
/// KEYS: lease, counter, fence, epoch. ARGV: instance id, lease id, ttl in ms.
///
/// Replies `{'acquired', token}`, `{'held', instance, token, pttl}`, `{'young', wait_ms}` (the
/// server restarted or took over from a failed primary less than a lease ago) or
/// `{'garbage', why}`.
const ACQUIRE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local lease, garbage = decode(KEYS[1])
if garbage then return {'garbage', garbage} end
if lease then
  if lease.instance == ARGV[1] and lease.lease == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return {'acquired', lease.token}
  end
  return {'held', lease.instance, lease.token, redis.call('PTTL', KEYS[1])}
end
local counter = 0
local kind = redis.call('TYPE', KEYS[2])['ok']
if kind ~= 'none' then
  local raw = kind == 'string' and redis.call('GET', KEYS[2]) or ''
  if not string.match(raw, '^%d+$') or #raw > 16 then
    return {'garbage', 'the token counter holds a value this library did not write'}
  end
  counter = tonumber(raw)
end
-- Free. A server up for less than one lease may have lost, in a restart, a lease that its
-- holder still trusts until its deadline: grant nothing until that lease would have expired.
local up = tonumber(string.match(redis.call('INFO', 'server'), 'uptime_in_seconds:(%d+)') or '')
if up then
  local wait = tonumber(ARGV[3]) - up * 1000
  if wait > 0 then return {'young', wait} end
end
-- Likewise after a failover: data replicated from a primary with another replication history
-- may lack the last lease granted there. Wait one lease once per change of history.
local replid = string.match(redis.call('INFO', 'replication'), 'master_replid:(%w+)')
if replid then
  local fence = redis.call('PTTL', KEYS[3])
  if fence > 0 then return {'young', fence} end
  local ekind = redis.call('TYPE', KEYS[4])['ok']
  local epoch = ekind == 'string' and redis.call('GET', KEYS[4]) or nil
  if epoch ~= replid then
    redis.call('SET', KEYS[4], replid)
    if ekind ~= 'none' then
      redis.call('SET', KEYS[3], replid, 'PX', ARGV[3])
      return {'young', tonumber(ARGV[3])}
    end
  end
end
-- Mint a token above both the stored counter and the server clock in microseconds, so that
-- tokens keep increasing even when a restart without persistence lost the counter.
local now = redis.call('TIME')
local micros = tonumber(now[1]) * 1000000 + tonumber(now[2])
local token = math.max(counter + 1, micros)
if token >= 9007199254740992 then
  return {'garbage', 'the token counter is beyond 2^53'}
end
token = string.format('%.0f', token)
redis.call('SET', KEYS[2], token)
local value = cjson.encode({instance = ARGV[1], lease = ARGV[2], token = token})
if not redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[3]) then
  return {'garbage', 'the lease key appeared during acquisition'}
end
return {'acquired', token}
";

/// KEYS: lease. ARGV: instance id, lease id, token, ttl in ms. Replies 1 if renewed, else 0.
const RENEW: &str = r"
local lease = decode(KEYS[1])
if lease and lease.instance == ARGV[1] and lease.lease == ARGV[2] and lease.token == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
";

/// KEYS: lease. ARGV: instance id, lease id, token, release channel. Replies 1 if released.
const RELEASE: &str = r"
local lease = decode(KEYS[1])
if lease and lease.instance == ARGV[1] and lease.lease == ARGV[2] and lease.token == ARGV[3] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[4], ARGV[3])
  return 1
end
return 0
";

/// KEYS: lease. Replies `{'none'}`, `{'held', instance, token, pttl}` or `{'garbage', why}`.
const CURRENT: &str = r"
local lease, garbage = decode(KEYS[1])
if garbage then return {'garbage', garbage} end
if not lease then return {'none'} end
return {'held', lease.instance, lease.token, redis.call('PTTL', KEYS[1])}
";

/// One of the scripts, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Script {
    Acquire,
    Renew,
    Release,
    Current,
}

impl Script {
    pub(crate) const ALL: [Self; 4] = [Self::Acquire, Self::Renew, Self::Release, Self::Current];

    /// The full source sent to the server.
    pub(crate) fn source(self) -> String {
        let body = match self {
            Self::Acquire => ACQUIRE,
            Self::Renew => RENEW,
            Self::Release => RELEASE,
            Self::Current => CURRENT,
        };
        format!("{DECODE}{body}")
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Acquire => 0,
            Self::Renew => 1,
            Self::Release => 2,
            Self::Current => 3,
        }
    }

    pub(crate) const fn operation(self) -> Operation {
        match self {
            Self::Acquire => Operation::Acquire,
            Self::Renew => Operation::Renew,
            Self::Release => Operation::Release,
            Self::Current => Operation::CurrentLeader,
        }
    }
}

// === reply decoding ===

fn invalid(operation: Operation, what: impl std::fmt::Display) -> Error {
    Error::invalid_data(operation, format!("unexpected script reply: {what}"))
}

fn items(operation: Operation, value: Value) -> Result<Vec<Value>, Error> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(invalid(operation, format!("{other:?}"))),
    }
}

fn text(operation: Operation, value: Option<&Value>) -> Result<String, Error> {
    value
        .and_then(Value::as_string)
        .ok_or_else(|| invalid(operation, "a field is missing or not text"))
}

fn token(operation: Operation, value: Option<&Value>) -> Result<FencingToken, Error> {
    let raw = text(operation, value)?;
    raw.parse::<u64>()
        .map(FencingToken::new)
        .map_err(|_| Error::invalid_data(operation, format!("token {raw:?} is not a number")))
}

fn pttl(operation: Operation, value: Option<&Value>) -> Result<Option<Duration>, Error> {
    let ms = value
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid(operation, "the remaining time is missing"))?;
    // -1: the key has no expiry (written by hand); -2: it vanished. Neither tells a wait.
    Ok(u64::try_from(ms).ok().map(Duration::from_millis))
}

fn held(operation: Operation, items: &[Value]) -> Result<(LeaderInfo, Option<Duration>), Error> {
    let instance = text(operation, items.get(1))?;
    let token = token(operation, items.get(2))?;
    let expires_in = pttl(operation, items.get(3))?;
    Ok((LeaderInfo::new(instance, Some(token)), expires_in))
}

fn garbage(operation: Operation, items: &[Value]) -> Error {
    let why = items
        .get(1)
        .and_then(Value::as_string)
        .unwrap_or_else(|| "unreadable data".to_owned());
    Error::invalid_data(operation, why)
}

/// Decodes the acquire script's reply.
pub(crate) fn acquire_reply(value: Value) -> Result<AcquireOutcome, Error> {
    let op = Operation::Acquire;
    let items = items(op, value)?;
    match items.first().and_then(Value::as_str).as_deref() {
        Some("acquired") => Ok(AcquireOutcome::Acquired(Lease::new(token(
            op,
            items.get(1),
        )?))),
        Some("held") => {
            let (leader, expires_in) = held(op, &items)?;
            Ok(AcquireOutcome::Held {
                leader: Some(leader),
                expires_in,
            })
        }
        // Nobody holds it, but a lease lost in a restart may still be trusted by its holder.
        Some("young") => Ok(AcquireOutcome::Held {
            leader: None,
            expires_in: pttl(op, items.get(1))?,
        }),
        Some("garbage") => Err(garbage(op, &items)),
        _ => Err(invalid(op, format!("{items:?}"))),
    }
}

/// Decodes the reply of the renew or release script: whether it took effect.
pub(crate) fn flag_reply(operation: Operation, value: &Value) -> Result<bool, Error> {
    match value.as_i64() {
        Some(1) => Ok(true),
        Some(0) => Ok(false),
        _ => Err(invalid(operation, format!("{value:?}"))),
    }
}

/// Decodes the current-leader script's reply.
pub(crate) fn current_reply(value: Value) -> Result<Option<LeaderInfo>, Error> {
    let op = Operation::CurrentLeader;
    let items = items(op, value)?;
    match items.first().and_then(Value::as_str).as_deref() {
        Some("none") => Ok(None),
        Some("held") => Ok(Some(held(op, &items)?.0)),
        Some("garbage") => Err(garbage(op, &items)),
        _ => Err(invalid(op, format!("{items:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn decodes_acquired_and_held() {
        let acquired = acquire_reply(Value::Array(vec![s("acquired"), s("42")])).unwrap();
        assert_eq!(
            acquired,
            AcquireOutcome::Acquired(Lease::new(FencingToken::new(42)))
        );
        let held = acquire_reply(Value::Array(vec![
            s("held"),
            s("a"),
            s("7"),
            Value::Integer(1500),
        ]))
        .unwrap();
        assert_eq!(
            held,
            AcquireOutcome::Held {
                leader: Some(LeaderInfo::new("a", Some(FencingToken::new(7)))),
                expires_in: Some(Duration::from_millis(1500)),
            }
        );
        let forever = acquire_reply(Value::Array(vec![
            s("held"),
            s("a"),
            s("7"),
            Value::Integer(-1),
        ]))
        .unwrap();
        assert!(matches!(
            forever,
            AcquireOutcome::Held {
                expires_in: None,
                ..
            }
        ));
    }

    #[test]
    fn odd_replies_are_invalid_data_not_panics() {
        for reply in [
            Value::Null,
            Value::Integer(3),
            Value::Array(vec![]),
            Value::Array(vec![s("acquired")]),
            Value::Array(vec![s("acquired"), s("-1")]),
            Value::Array(vec![s("acquired"), s("99999999999999999999999")]),
            Value::Array(vec![s("held"), s("a")]),
            Value::Array(vec![s("garbage"), s("why")]),
            Value::Array(vec![s("what")]),
        ] {
            let err = acquire_reply(reply.clone()).expect_err("should fail");
            assert!(matches!(err, Error::InvalidData { .. }), "{reply:?}: {err}");
        }
        assert!(flag_reply(Operation::Renew, &Value::Integer(2)).is_err());
        assert!(current_reply(Value::Array(vec![s("garbage")])).is_err());
        assert_eq!(current_reply(Value::Array(vec![s("none")])).unwrap(), None);
    }
}
