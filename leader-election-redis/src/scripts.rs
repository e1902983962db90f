//! The Lua scripts that make every operation atomic on the server, and the decoding of their
//! replies.
//!
//! The lease is one string key holding a small JSON document written by the acquire script,
//! `{"instance": .., "lease": .., "token": "..", "meta": ".."}`, with the lease's expiry as the
//! key's PX. `meta`, the leader metadata in lower-case hex, is there only while the holder
//! publishes some; the acquire and renew scripts set it in the same write that sets or extends
//! the lease. The
//! token counter is a second key without expiry. Every script re-reads and re-checks what it
//! needs, so anything written by somebody else (an operator, another program) is reported as
//! garbage instead of being trusted or crashing the script.
//!
//! The election record is a hash `{version, data}` of its own key, read and written by two more
//! scripts (see [`RedisLeaseStore::record_key`](crate::RedisLeaseStore::record_key)).

use fred::types::Value;
use leader_election::store::{AcquireOutcome, Lease, WithholdReason};
use leader_election::{Error, FencingToken, LeaderInfo, Operation};
use std::time::Duration;

/// Shared by every script: decodes the lease value, or `nil` when it is not ours.
pub(crate) const DECODE: &str = r"
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

-- Extends the decoded lease v by ms, with meta (or nil) as its metadata: the value is rewritten
-- only when the metadata changes, in the same command that sets the expiry.
local function extend(key, v, meta, ms)
  if v.meta == meta then
    redis.call('PEXPIRE', key, ms)
  else
    v.meta = meta
    redis.call('SET', key, cjson.encode(v), 'XX', 'PX', ms)
  end
end

-- The metadata of the decoded lease v for a reply: its hex text, or false (a nil reply).
local function meta_of(v)
  return type(v.meta) == 'string' and v.meta or false
end
";
/// The guards: reading the longest lease recorded, and deciding whether a free lease may be
/// granted. A function of the INFO text, so that tests can feed it values a server would
/// rarely send (a negative or missing uptime, a missing replication id).
pub(crate) const GUARDS: &str = r"
-- A field of an INFO reply, when it is there and has the expected shape; nil otherwise
-- (Redis reports a negative uptime after its clock stepped back; compatible servers may omit
-- fields).
local function info_field(info, name, shape)
  local raw = string.match(info, '[\r\n]' .. name .. ':([^\r\n]*)')
  if raw and #raw <= 64 and string.match(raw, shape) then return raw end
  return nil
end

-- The longest lease recorded for the election, at least floor; and whether the record was
-- readable (absent counts as readable: nothing recorded).
local function longest_lease(key, floor)
  local raw = redis.pcall('GET', key)
  if raw == false then return floor, true end
  if type(raw) == 'string' and string.match(raw, '^%d+$') and #raw <= 15 then
    return math.max(floor, tonumber(raw)), true
  end
  return floor, false
end

-- Records a lease of ms if it is the longest yet; an unreadable record is left for the
-- acquire script's guard, which fences and repairs it.
local function record_lease(key, ms)
  local raw = redis.pcall('GET', key)
  if raw == false or (type(raw) == 'string' and string.match(raw, '^%d+$') and #raw <= 15
      and tonumber(raw) < ms) then
    redis.call('SET', key, string.format('%.0f', ms))
  end
end

-- Whether a free lease may be granted now (server time in ms), when the election's leases
-- may last floor ms. Returns how long to withhold it (0: grant), why, and the guard period:
-- the longest lease the election may hold.
--
-- A server that may have lost a lease still trusted by its holder grants nothing until that
-- lease would have expired: while it has been up for less than the guard (it restarted, maybe
-- without persistence), and for one guard from when the election first saw a new replication
-- history (a failover) or no record of one (a fresh election, a promoted replica that never
-- received it, an eviction). Unreadable values fail closed: an unreadable uptime fences once
-- per server run (run_id), an unreadable replication id falls back to the run id, and an
-- unreadable record fences from now and is rewritten.
--
-- The fence record, without expiry: '<since ms> <reason> <run id or ->'.
local function check_guards(fence_key, epoch_key, longest_key, server_info, replication_info,
                            now, floor)
  local guard, readable = longest_lease(longest_key, floor)
  local up = tonumber(info_field(server_info, 'uptime_in_seconds', '^%d+$') or '')
  local run = info_field(server_info, 'run_id', '^%x+$')
  local replid = info_field(replication_info, 'master_replid', '^%x+$')

  local since, reason, seen_run
  local changed = false
  local record = redis.pcall('GET', fence_key)
  if type(record) == 'string' then
    local at, why, who = string.match(record, '^(%d+) (%a+) (%S+)$')
    since, reason, seen_run = tonumber(at or ''), why, who
  end
  local function fence(why)
    since, reason, changed = now, why, true
  end
  -- Written by somebody else, or an older version of this library: start again from now.
  if record ~= false and not since then fence('failover') end
  -- The server clock stepped back below the fence's start: start again from now.
  if since and since > now then fence(reason) end
  if not readable then
    fence('touched')
    redis.call('SET', longest_key, string.format('%.0f', guard))
  end

  local epoch = redis.pcall('GET', epoch_key)
  if type(epoch) ~= 'string' then epoch = nil end
  local history = replid or (run and ('run:' .. run))
  if (history and epoch ~= history) or (not history and not epoch) then
    fence('failover')
    redis.call('SET', epoch_key, history or '-')
  end
  if not up and run and seen_run ~= run then fence('restarted') end
  if changed then
    redis.call('SET', fence_key, string.format('%.0f %s %s', since, reason, run or '-'))
  end

  local wait, why = 0, nil
  if since and since + guard - now > 0 then wait, why = since + guard - now, reason end
  if up and guard - up * 1000 > 0 then
    wait, why = math.max(wait, guard - up * 1000), 'restarted'
  end
  return wait, why, guard
end
";
/// KEYS: lease, counter, fence, epoch, longest lease, shadow. ARGV: instance id, lease id, ttl
/// in ms, the caller's guard in ms (its `max_lease_duration`, or the longest lease it has seen),
/// the metadata in hex (empty: none), the highest token the caller has seen (0: none).
///
/// The shadow key expires with the lease (both are set by the same scripts) and is deleted only
/// by a release: a lease key missing while its shadow lives was deleted by someone else, and
/// its holder may still trust it.
///
/// Replies `{'acquired', token, guard}`, `{'held', instance, token, pttl, guard, metadata}`,
/// `{'young', wait_ms, reason, guard}` (a free lease withheld: `restarted`, `failover` or
/// `touched`) or `{'garbage', why}`, where `guard` is the longest lease the election may hold,
/// for the caller to remember.
const ACQUIRE: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local ttl = tonumber(ARGV[3])
local meta = ARGV[5] ~= '' and ARGV[5] or nil
local floor = math.max(ttl, tonumber(ARGV[4]) or 0)
local lease, garbage = decode(KEYS[1])
if garbage then return {'garbage', garbage} end
if lease then
  local guard = longest_lease(KEYS[5], floor)
  if lease.instance == ARGV[1] and lease.lease == ARGV[2] then
    extend(KEYS[1], lease, meta, ARGV[3])
    redis.call('SET', KEYS[6], lease.token, 'PX', ARGV[3])
    record_lease(KEYS[5], ttl)
    return {'acquired', lease.token, guard}
  end
  return {'held', lease.instance, lease.token, redis.call('PTTL', KEYS[1]), guard, meta_of(lease)}
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
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local wait, why, guard = check_guards(KEYS[3], KEYS[4], KEYS[5], redis.call('INFO', 'server'),
  redis.call('INFO', 'replication'), now_ms, floor)
-- Shared with every contender: one that knows a longer lease (configured, or seen before a
-- restart) makes all of them guard it.
record_lease(KEYS[5], guard)
-- The lease record was deleted by someone other than its holder (a release deletes the
-- shadow too; an expiry expires both): its holder may trust it until the shadow expires. A
-- shadow without expiry was written by somebody else: one guard from now.
local shadow = redis.call('PTTL', KEYS[6])
if shadow == -1 then
  redis.call('PEXPIRE', KEYS[6], string.format('%.0f', guard))
  shadow = guard
end
if shadow > wait then wait, why = shadow, 'touched' end
if wait > 0 then return {'young', wait, why, guard} end
-- Mint a token above the stored counter, the server clock in microseconds and the highest
-- token the caller has seen: tokens keep increasing when a restart without persistence lost
-- the counter, and also when the server's clock came back behind the last token.
local micros = tonumber(now[1]) * 1000000 + tonumber(now[2])
local seen = tonumber(ARGV[6]) or 0
local token = math.max(counter + 1, micros, seen + 1)
if token >= 9007199254740992 then
  return {'garbage', 'the token counter is beyond 2^53'}
end
token = string.format('%.0f', token)
redis.call('SET', KEYS[2], token)
local value = cjson.encode({instance = ARGV[1], lease = ARGV[2], token = token, meta = meta})
if not redis.call('SET', KEYS[1], value, 'NX', 'PX', ARGV[3]) then
  return {'garbage', 'the lease key appeared during acquisition'}
end
redis.call('SET', KEYS[6], token, 'PX', ARGV[3])
return {'acquired', token, guard}
";

/// KEYS: lease, longest lease, shadow. ARGV: instance id, lease id, token, ttl in ms, the
/// metadata in hex (empty: none). Replies 1 if renewed, else 0.
const RENEW: &str = r"
local lease = decode(KEYS[1])
if lease and lease.instance == ARGV[1] and lease.lease == ARGV[2] and lease.token == ARGV[3] then
  extend(KEYS[1], lease, ARGV[5] ~= '' and ARGV[5] or nil, ARGV[4])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
  record_lease(KEYS[2], tonumber(ARGV[4]))
  return 1
end
return 0
";

/// KEYS: lease, shadow. ARGV: instance id, lease id, token, release channel. Replies 1 if
/// released.
const RELEASE: &str = r"
local lease = decode(KEYS[1])
if lease and lease.instance == ARGV[1] and lease.lease == ARGV[2] and lease.token == ARGV[3] then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('PUBLISH', ARGV[4], ARGV[3])
  return 1
end
return 0
";

/// KEYS: lease. Replies `{'none'}`, `{'held', instance, token, pttl, metadata}` or
/// `{'garbage', why}`.
const CURRENT: &str = r"
local lease, garbage = decode(KEYS[1])
if garbage then return {'garbage', garbage} end
if not lease then return {'none'} end
return {'held', lease.instance, lease.token, redis.call('PTTL', KEYS[1]), meta_of(lease)}
";

/// Shared by the record scripts: reads the election record, a hash `{version, data}`.
/// Returns `version, data`, `nil, nil` when there is no record, or `nil, why` when the key
/// holds something this library did not write (it is then never overwritten).
const RECORD: &str = r"
local function read_record(key)
  local kind = redis.call('TYPE', key)['ok']
  if kind == 'none' then return nil, nil end
  if kind ~= 'hash' then
    return nil, 'the record key holds a value of another type (' .. kind .. '), not a hash'
  end
  local fields = redis.call('HMGET', key, 'version', 'data')
  local version, data = fields[1], fields[2]
  if redis.call('HLEN', key) ~= 2 or type(version) ~= 'string' or type(data) ~= 'string'
     or #version > 16 or not string.match(version, '^[1-9]%d*$') then
    return nil, 'the record key holds a hash this library did not write'
  end
  return version, data
end
";

/// KEYS: record. Replies `{'none'}`, `{'record', version, data}` or `{'garbage', why}`.
const READ_RECORD: &str = r"
local version, data_or_why = read_record(KEYS[1])
if version then return {'record', version, data_or_why} end
if data_or_why then return {'garbage', data_or_why} end
return {'none'}
";

/// KEYS: record. ARGV: `1` when a record is expected (`0`: only if there is none), the version
/// expected, the data, the highest record version the caller has seen (0: none).
///
/// Versions are minted like fencing tokens: `max(current version + 1, server TIME in µs,
/// highest version the caller has seen + 1)`. A counter kept beside the record would restart
/// at 1 after an operator deleted the record (or a restart without persistence lost it), and
/// hand a version already given to other data to a writer still holding it; the server's
/// clock does not come back (it is past every version it minted unless versions were minted
/// faster than one per µs), and the caller's floor covers a clock that stepped back behind a
/// version it saw.
///
/// Replies `{'written', version}`, `{'conflict'}` (not at the version expected: nothing
/// written) or `{'garbage', why}` (nothing written).
const WRITE_RECORD: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local current, data_or_why = read_record(KEYS[1])
if not current and data_or_why then return {'garbage', data_or_why} end
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return {'conflict'} end
elseif current then
  return {'conflict'}
end
local now = redis.call('TIME')
local micros = tonumber(now[1]) * 1000000 + tonumber(now[2])
local version = math.max(micros, tonumber(current or '0') + 1, (tonumber(ARGV[4]) or 0) + 1)
if version >= 9007199254740992 then
  return {'garbage', 'the record version is beyond 2^53'}
end
version = string.format('%.0f', version)
redis.call('HSET', KEYS[1], 'version', version, 'data', ARGV[3])
return {'written', version}
";

/// One of the scripts, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Script {
    Acquire,
    Renew,
    Release,
    Current,
    ReadRecord,
    WriteRecord,
}

impl Script {
    /// The scripts of the lease, loaded by `connect`. The record scripts are loaded on first
    /// use, so that elections without records pay nothing for them.
    pub(crate) const ALL: [Self; 4] = [Self::Acquire, Self::Renew, Self::Release, Self::Current];

    /// How many scripts there are: the length of the store's SHA1 cache.
    pub(crate) const COUNT: usize = 6;

    /// The full source sent to the server.
    pub(crate) fn source(self) -> String {
        let body = match self {
            Self::Acquire => ACQUIRE,
            Self::Renew => RENEW,
            Self::Release => RELEASE,
            Self::Current => CURRENT,
            Self::ReadRecord => return format!("{RECORD}{READ_RECORD}"),
            Self::WriteRecord => return format!("{RECORD}{WRITE_RECORD}"),
        };
        format!("{DECODE}{GUARDS}{body}")
    }

    pub(crate) const fn index(self) -> usize {
        match self {
            Self::Acquire => 0,
            Self::Renew => 1,
            Self::Release => 2,
            Self::Current => 3,
            Self::ReadRecord => 4,
            Self::WriteRecord => 5,
        }
    }

    pub(crate) const fn operation(self) -> Operation {
        match self {
            Self::Acquire => Operation::Acquire,
            Self::Renew => Operation::Renew,
            Self::Release => Operation::Release,
            Self::Current => Operation::CurrentLeader,
            Self::ReadRecord => Operation::ReadRecord,
            Self::WriteRecord => Operation::WriteRecord,
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

/// The leader of a `held` reply, its metadata at `meta`.
fn held(
    operation: Operation,
    items: &[Value],
    meta: usize,
) -> Result<(LeaderInfo, Option<Duration>), Error> {
    let instance = text(operation, items.get(1))?;
    let token = token(operation, items.get(2))?;
    let expires_in = pttl(operation, items.get(3))?;
    let metadata =
        match items.get(meta) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value.as_str().and_then(|hex| from_hex(&hex)).ok_or_else(
                || {
                    Error::invalid_data(
                        operation,
                        "the lease key's leader metadata is not hex text this library wrote",
                    )
                },
            )?),
        };
    Ok((
        LeaderInfo::new(instance, Some(token)).with_metadata(metadata),
        expires_in,
    ))
}

/// Leader metadata as the scripts store it: lower-case hex, so that any bytes survive JSON.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    hex
}

/// The bytes of `hex`, or `None` if it is not an even number of hex digits.
fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| char::from(b).to_digit(16);
            u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()
        })
        .collect()
}

fn garbage(operation: Operation, items: &[Value]) -> Error {
    let why = items
        .get(1)
        .and_then(Value::as_string)
        .unwrap_or_else(|| "unreadable data".to_owned());
    Error::invalid_data(operation, why)
}

/// The longest lease the election may hold, in ms, as a reply reports it.
fn guard(value: Option<&Value>) -> Option<u64> {
    value
        .and_then(Value::as_i64)
        .and_then(|ms| u64::try_from(ms).ok())
}

/// Decodes the acquire script's reply, with the longest lease the election may hold (in ms)
/// when the reply tells it.
pub(crate) fn acquire_reply(value: Value) -> Result<(AcquireOutcome, Option<u64>), Error> {
    let op = Operation::Acquire;
    let items = items(op, value)?;
    match items.first().and_then(Value::as_str).as_deref() {
        Some("acquired") => Ok((
            AcquireOutcome::Acquired(Lease::new(token(op, items.get(1))?)),
            guard(items.get(2)),
        )),
        Some("held") => {
            let (leader, expires_in) = held(op, &items, 5)?;
            Ok((
                AcquireOutcome::Held {
                    leader: Some(leader),
                    expires_in,
                },
                guard(items.get(4)),
            ))
        }
        // Nobody holds it, but a lease the server may have lost may still be trusted.
        Some("young") => {
            let wait = pttl(op, items.get(1))?
                .filter(|wait| !wait.is_zero())
                .ok_or_else(|| invalid(op, "a withheld lease without a wait"))?;
            let reason = match items.get(2).and_then(Value::as_str).as_deref() {
                Some("restarted") => WithholdReason::BackendRestarted,
                Some("failover") => WithholdReason::Failover,
                Some("touched") => WithholdReason::RecordTouched,
                other => return Err(invalid(op, format!("withheld because {other:?}"))),
            };
            Ok((
                AcquireOutcome::Withheld { wait, reason },
                guard(items.get(3)),
            ))
        }
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
        Some("held") => Ok(Some(held(op, &items, 4)?.0)),
        Some("garbage") => Err(garbage(op, &items)),
        _ => Err(invalid(op, format!("{items:?}"))),
    }
}

/// A record version as a reply carries it: digits the scripts checked, below 2^53.
fn record_version(operation: Operation, value: Option<&Value>) -> Result<u64, Error> {
    let raw = text(operation, value)?;
    raw.parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| invalid(operation, format!("record version {raw:?} is not a number")))
}

/// Decodes the read-record script's reply: the version (a number, for the store's floor) and
/// the data.
pub(crate) fn read_record_reply(value: Value) -> Result<Option<(u64, Vec<u8>)>, Error> {
    let op = Operation::ReadRecord;
    let items = items(op, value)?;
    match items.first().and_then(Value::as_str).as_deref() {
        Some("none") => Ok(None),
        Some("record") => {
            let version = record_version(op, items.get(1))?;
            let data = match items.get(2) {
                Some(data) => data
                    .as_bytes()
                    .ok_or_else(|| invalid(op, "the record's data is not a string"))?
                    .to_vec(),
                None => return Err(invalid(op, "the record's data is missing")),
            };
            Ok(Some((version, data)))
        }
        Some("garbage") => Err(garbage(op, &items)),
        _ => Err(invalid(op, format!("{items:?}"))),
    }
}

/// Decodes the write-record script's reply: the new version, or `None` when the record was not
/// at the version expected.
pub(crate) fn write_record_reply(value: Value) -> Result<Option<u64>, Error> {
    let op = Operation::WriteRecord;
    let items = items(op, value)?;
    match items.first().and_then(Value::as_str).as_deref() {
        Some("written") => record_version(op, items.get(1)).map(Some),
        Some("conflict") => Ok(None),
        Some("garbage") => Err(garbage(op, &items)),
        _ => Err(invalid(op, format!("{items:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_replies_are_decoded_or_invalid_data() {
        assert_eq!(
            read_record_reply(Value::Array(vec![s("none")])).unwrap(),
            None
        );
        let binary = Value::Bytes(vec![0, 255, b'x'].into());
        assert_eq!(
            read_record_reply(Value::Array(vec![s("record"), s("17"), binary])).unwrap(),
            Some((17, vec![0, 255, b'x']))
        );
        assert_eq!(
            read_record_reply(Value::Array(vec![s("record"), s("17"), s("")])).unwrap(),
            Some((17, Vec::new()))
        );
        assert_eq!(
            write_record_reply(Value::Array(vec![s("written"), s("18")])).unwrap(),
            Some(18)
        );
        assert_eq!(
            write_record_reply(Value::Array(vec![s("conflict")])).unwrap(),
            None
        );
        for reply in [
            Value::Null,
            Value::Array(vec![]),
            Value::Array(vec![s("garbage"), s("why")]),
            Value::Array(vec![s("record"), s("x"), s("data")]),
            Value::Array(vec![s("record"), s("0"), s("data")]),
            Value::Array(vec![s("record"), s("1")]),
            Value::Array(vec![s("record"), s("1"), Value::Integer(3)]),
            Value::Array(vec![s("what")]),
        ] {
            let err = read_record_reply(reply.clone()).expect_err("should fail");
            assert!(matches!(err, Error::InvalidData { .. }), "{reply:?}: {err}");
        }
        for reply in [
            Value::Array(vec![s("written")]),
            Value::Array(vec![s("written"), s("-3")]),
            Value::Array(vec![s("garbage"), s("why")]),
            Value::Integer(1),
        ] {
            let err = write_record_reply(reply.clone()).expect_err("should fail");
            assert!(matches!(err, Error::InvalidData { .. }), "{reply:?}: {err}");
        }
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn decodes_acquired_and_held() {
        let acquired = acquire_reply(Value::Array(vec![s("acquired"), s("42")]))
            .unwrap()
            .0;
        assert_eq!(
            acquired,
            AcquireOutcome::Acquired(Lease::new(FencingToken::new(42)))
        );
        let held = acquire_reply(Value::Array(vec![
            s("held"),
            s("a"),
            s("7"),
            Value::Integer(1500),
            Value::Integer(6000),
        ]))
        .unwrap();
        assert_eq!(held.1, Some(6000));
        let held = held.0;
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
        .unwrap()
        .0;
        assert!(matches!(
            forever,
            AcquireOutcome::Held {
                expires_in: None,
                ..
            }
        ));
    }

    #[test]
    fn metadata_round_trips_through_hex_and_garbage_is_invalid_data() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
        assert_eq!(to_hex(b"\x00\xffA"), "00ff41");
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("é1"), None);
        let reply = |meta: Value| {
            current_reply(Value::Array(vec![
                s("held"),
                s("a"),
                s("7"),
                Value::Integer(1500),
                meta,
            ]))
        };
        let leader = reply(s("6869")).unwrap().unwrap();
        assert_eq!(leader.metadata_str(), Some("hi"));
        assert_eq!(reply(Value::Null).unwrap().unwrap().metadata, None);
        let err = reply(s("xyz")).unwrap_err();
        assert!(matches!(err, Error::InvalidData { .. }), "{err}");
    }

    #[test]
    fn decodes_withheld_with_its_reason() {
        for (name, reason) in [
            ("restarted", WithholdReason::BackendRestarted),
            ("failover", WithholdReason::Failover),
            ("touched", WithholdReason::RecordTouched),
        ] {
            let reply = Value::Array(vec![
                s("young"),
                Value::Integer(1200),
                s(name),
                Value::Integer(30_000),
            ]);
            assert_eq!(
                acquire_reply(reply).unwrap(),
                (
                    AcquireOutcome::Withheld {
                        wait: Duration::from_millis(1200),
                        reason
                    },
                    Some(30_000)
                )
            );
        }
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
            Value::Array(vec![s("young"), Value::Integer(0), s("restarted")]),
            Value::Array(vec![s("young"), Value::Integer(5), s("bored")]),
            Value::Array(vec![s("young"), Value::Integer(5)]),
        ] {
            let err = acquire_reply(reply.clone()).expect_err("should fail");
            assert!(matches!(err, Error::InvalidData { .. }), "{reply:?}: {err}");
        }
        assert!(flag_reply(Operation::Renew, &Value::Integer(2)).is_err());
        assert!(current_reply(Value::Array(vec![s("garbage")])).is_err());
        assert_eq!(current_reply(Value::Array(vec![s("none")])).unwrap(), None);
    }
}
