//! Options shared by every backend.

use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// The longest any duration option may be. Longer values are almost certainly a unit mistake,
/// and keeping them bounded keeps all deadline arithmetic far from overflow.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest `instance_id` accepted, in bytes.
pub(crate) const MAX_INSTANCE_ID_LEN: usize = 256;

/// How an election behaves: lease timing, retries and shutdown.
///
/// Every field has a documented default; [`validate`](Self::validate) checks the combination and
/// is called by every constructor. The struct deserializes with serde, with durations written as
/// `"30s"`, `"500ms"` or `"1m 30s"`, and missing fields taking their defaults:
///
/// ```
/// # use leader_election::LeaderElectionOptions;
/// # use std::time::Duration;
/// let options: LeaderElectionOptions = serde_json::from_str(
///     r#"{ "instance_id": "worker-1", "lease_duration": "15s", "renew_interval": "5s" }"#,
/// ).unwrap();
/// assert_eq!(options.lease_duration, Duration::from_secs(15));
/// options.validate().unwrap();
/// ```
///
/// # How the timings fit together
/// A leader that acquired or renewed its lease by a request sent at `t` considers itself leader
/// until `t + lease_duration - deadline_margin()`, where the margin is
/// `lease_duration * clock_drift_rate + deadline_slack`. It renews every `renew_interval`; a
/// failed renewal is retried, at most `max_retry_attempts` times in a row, spaced so that all
/// attempts fit before that deadline. When the deadline passes without a confirmed renewal, it
/// stops leading locally, whether or not the backend can be reached.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LeaderElectionOptions {
    /// The identity of this contender, shown to the others as the leader's name.
    ///
    /// Default: the host name, the process id and a random suffix, e.g. `web-7f9c-4242-1a2b3c4d`.
    /// Never empty; at most 256 bytes.
    pub instance_id: String,
    /// How long a lease lasts on the backend without renewal.
    ///
    /// Default: 30 s.
    #[serde(with = "humantime_serde")]
    pub lease_duration: Duration,
    /// How often the leader renews its lease. Must be shorter than the lease.
    ///
    /// Default: 10 s.
    #[serde(with = "humantime_serde")]
    pub renew_interval: Duration,
    /// The first delay before trying again after an error.
    ///
    /// Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub retry_interval: Duration,
    /// The longest delay between two attempts after repeated errors.
    ///
    /// Default: 40 s.
    #[serde(with = "humantime_serde")]
    pub max_retry_interval: Duration,
    /// The factor by which the retry delay grows after each consecutive error; 1.0 to 3.0.
    ///
    /// Default: 2.0.
    pub retry_backoff_factor: f64,
    /// The relative random spread applied to retry delays, so that contenders do not retry in
    /// lock step; 0.0 to 0.5 (0.1 means ±10 %).
    ///
    /// Default: 0.1.
    pub retry_jitter: f64,
    /// Consecutive failed renewals after which the leader steps down, even before its lease
    /// deadline. At least 1.
    ///
    /// Default: 3.
    pub max_retry_attempts: u32,
    /// Whether [`stop`](crate::LeaderElection::stop) releases the lease so that another
    /// contender takes over at once, instead of letting it expire.
    ///
    /// Default: true.
    pub enable_graceful_shutdown: bool,
    /// The longest any single backend call may take before its outcome is treated as unknown.
    /// Read it with [`operation_timeout()`](Self::operation_timeout), which applies the default.
    ///
    /// Default: `None`, meaning a quarter of `lease_duration`, at most 2 s, so that short leases
    /// work without setting it.
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Option<Duration>,
    /// The largest relative error assumed between the rates of this machine's monotonic clock
    /// and the backend's clock; part of the deadline margin. 0.0 to 0.5.
    ///
    /// Default: 0.01 (1 %).
    pub clock_drift_rate: f64,
    /// A fixed part of the deadline margin, covering scheduling delays between the deadline
    /// timer firing and leader work noticing it.
    ///
    /// Default: 100 ms.
    #[serde(with = "humantime_serde")]
    pub deadline_slack: Duration,
    /// How long [`stop`](crate::LeaderElection::stop) waits for leader work to finish after
    /// cancelling it. Work still running after that keeps the lease from being released: it
    /// then expires on its own, so a successor never starts while the old work runs.
    ///
    /// Default: 5 s.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// What this contender publishes with its leadership while it leads (its address, a shard
    /// map version ...), read by followers and observers in
    /// [`LeaderInfo::metadata`](crate::LeaderInfo::metadata), like etcd's `Proclaim`. Change it
    /// while running with [`proclaim`](crate::LeaderElection::proclaim). Each backend limits its
    /// size (memory, Redis and PostgreSQL 64 KiB, Azure Blob 4 KiB), checked when the election
    /// is created; an empty value publishes none. Read from serde and from
    /// `LEADER_ELECTION_METADATA` as UTF-8 text.
    ///
    /// Default: `None`.
    #[serde(deserialize_with = "metadata_text")]
    pub metadata: Option<Vec<u8>>,
    /// This contender's priority for [preferred leaders](crate::priority): `Some(p)` takes part
    /// in preferred-leader handover — as a follower with `p > 0` it announces itself on the
    /// backend every `renew_interval`, and as a leader it reads the strongest announced
    /// candidate after each renewal and hands over gracefully to one with a strictly higher
    /// priority once it has led for [`min_tenure`](Self::min_tenure). Every contender of an
    /// election that uses priorities should set one (`Some(0)` for ordinary ones).
    ///
    /// Default: `None`: no preference, no extra backend calls.
    pub priority: Option<u32>,
    /// How long a leader keeps its term before it hands over to a preferred candidate, so that
    /// leadership never flaps. Read it with [`min_tenure()`](Self::min_tenure), which applies
    /// the default.
    ///
    /// Default: `None`, meaning one `lease_duration`.
    #[serde(with = "humantime_serde")]
    pub min_tenure: Option<Duration>,
}

/// Leader metadata from text: serde has no other way to write bytes in a configuration file.
fn metadata_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<u8>>, D::Error> {
    let text: Option<String> = Deserialize::deserialize(deserializer)?;
    Ok(text.map(String::into_bytes))
}

impl Default for LeaderElectionOptions {
    fn default() -> Self {
        Self {
            instance_id: default_instance_id(),
            lease_duration: Duration::from_secs(30),
            renew_interval: Duration::from_secs(10),
            retry_interval: Duration::from_secs(5),
            max_retry_interval: Duration::from_secs(40),
            retry_backoff_factor: 2.0,
            retry_jitter: 0.1,
            max_retry_attempts: 3,
            enable_graceful_shutdown: true,
            operation_timeout: None,
            clock_drift_rate: 0.01,
            deadline_slack: Duration::from_millis(100),
            shutdown_timeout: Duration::from_secs(5),
            metadata: None,
            priority: None,
            min_tenure: None,
        }
    }
}

/// The default instance id: host name, process id and a random suffix.
#[must_use]
pub(crate) fn default_instance_id() -> String {
    let host = gethostname::gethostname();
    let host = host.to_string_lossy();
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    let host = if host.is_empty() { "host".into() } else { host };
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// The most the default `operation_timeout` can be.
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// The shortest `retry_interval` accepted: shorter ones would let a follower spin on errors.
pub(crate) const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// The smallest deadline margin accepted: a leader must give up its term strictly before its
/// backend lease can expire.
pub(crate) const MIN_DEADLINE_MARGIN: Duration = Duration::from_millis(1);

impl LeaderElectionOptions {
    /// The timeout of every backend call: the `operation_timeout` field if set, otherwise a
    /// quarter of `lease_duration`, at most 2 s.
    #[must_use]
    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
            .unwrap_or_else(|| (self.lease_duration / 4).min(DEFAULT_OPERATION_TIMEOUT))
    }

    /// The shortest term a leader keeps before handing over to a preferred candidate: the
    /// `min_tenure` field if set, otherwise `lease_duration`.
    #[must_use]
    pub fn min_tenure(&self) -> Duration {
        self.min_tenure.unwrap_or(self.lease_duration)
    }

    /// The part of the lease that a leader gives up to clock-rate error and scheduling delay:
    /// `lease_duration * clock_drift_rate + deadline_slack`.
    #[must_use]
    pub fn deadline_margin(&self) -> Duration {
        let rate = if self.clock_drift_rate.is_finite() {
            self.clock_drift_rate.clamp(0.0, 1.0)
        } else {
            1.0
        };
        self.lease_duration
            .min(MAX_DURATION)
            .mul_f64(rate)
            .saturating_add(self.deadline_slack.min(MAX_DURATION))
    }

    /// Checks every option and their combinations.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field that breaks one of these rules:
    /// - `instance_id` is not empty or blank, has no control characters, and is at most 256 bytes;
    /// - `lease_duration`, `renew_interval`, `retry_interval`, `max_retry_interval`,
    ///   `operation_timeout` and `shutdown_timeout` are above zero, and every duration
    ///   (`min_tenure` included) is at most 24 h;
    /// - `renew_interval < lease_duration`;
    /// - `max_retry_interval >= retry_interval`;
    /// - `retry_backoff_factor` is within 1.0–3.0, `retry_jitter` within 0.0–0.5,
    ///   `clock_drift_rate` within 0.0–0.5;
    /// - `retry_interval` is at least 10 ms, and the deadline margin at least 1 ms;
    /// - `max_retry_attempts >= 1`;
    /// - the deadline leaves time to renew: a renewal sent after `renew_interval` that takes
    ///   the whole `operation_timeout` still confirms before `lease_duration - deadline_margin()`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.instance_id.trim().is_empty() {
            return Err(ConfigError::new("instance_id", "must not be empty"));
        }
        if self.instance_id.len() > MAX_INSTANCE_ID_LEN {
            return Err(ConfigError::new(
                "instance_id",
                format!(
                    "must be at most {MAX_INSTANCE_ID_LEN} bytes, got {}",
                    self.instance_id.len()
                ),
            ));
        }
        if self.instance_id.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "instance_id",
                "must not contain control characters",
            ));
        }
        for (field, value) in [
            ("lease_duration", self.lease_duration),
            ("renew_interval", self.renew_interval),
            ("retry_interval", self.retry_interval),
            ("max_retry_interval", self.max_retry_interval),
            ("operation_timeout", self.operation_timeout()),
            ("shutdown_timeout", self.shutdown_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(field, "must be greater than zero"));
            }
        }
        for (field, value) in [
            ("lease_duration", self.lease_duration),
            ("renew_interval", self.renew_interval),
            ("retry_interval", self.retry_interval),
            ("max_retry_interval", self.max_retry_interval),
            ("operation_timeout", self.operation_timeout()),
            ("shutdown_timeout", self.shutdown_timeout),
            ("deadline_slack", self.deadline_slack),
            ("min_tenure", self.min_tenure()),
        ] {
            if value > MAX_DURATION {
                return Err(ConfigError::new(
                    field,
                    format!("must be at most 24h, got {value:?}"),
                ));
            }
        }
        if self.renew_interval >= self.lease_duration {
            return Err(ConfigError::new(
                "renew_interval",
                format!(
                    "must be shorter than lease_duration ({:?} >= {:?})",
                    self.renew_interval, self.lease_duration
                ),
            ));
        }
        if self.max_retry_interval < self.retry_interval {
            return Err(ConfigError::new(
                "max_retry_interval",
                format!(
                    "must not be shorter than retry_interval ({:?} < {:?})",
                    self.max_retry_interval, self.retry_interval
                ),
            ));
        }
        check_range("retry_backoff_factor", self.retry_backoff_factor, 1.0, 3.0)?;
        check_range("retry_jitter", self.retry_jitter, 0.0, 0.5)?;
        check_range("clock_drift_rate", self.clock_drift_rate, 0.0, 0.5)?;
        if self.retry_interval < MIN_RETRY_INTERVAL {
            return Err(ConfigError::new(
                "retry_interval",
                format!(
                    "must be at least {MIN_RETRY_INTERVAL:?}, got {:?}",
                    self.retry_interval
                ),
            ));
        }
        if self.deadline_margin() < MIN_DEADLINE_MARGIN {
            return Err(ConfigError::new(
                "deadline_slack",
                format!(
                    "the deadline margin (lease_duration * clock_drift_rate + deadline_slack) \
                     must be at least {MIN_DEADLINE_MARGIN:?}, got {:?}",
                    self.deadline_margin()
                ),
            ));
        }
        if self.max_retry_attempts == 0 {
            return Err(ConfigError::new("max_retry_attempts", "must be at least 1"));
        }
        let margin = self.deadline_margin();
        let usable = self.lease_duration.saturating_sub(margin);
        let needed = self.renew_interval + self.operation_timeout();
        if needed >= usable {
            return Err(ConfigError::new(
                "renew_interval",
                format!(
                    "leaves no time to renew: renew_interval + operation_timeout ({needed:?}) must be \
                     shorter than lease_duration - deadline margin ({usable:?}, margin {margin:?} = \
                     lease_duration * clock_drift_rate + deadline_slack)"
                ),
            ));
        }
        Ok(())
    }
}

impl LeaderElectionOptions {
    /// The defaults, overridden by environment variables named after the fields with the
    /// prefix `LEADER_ELECTION_` (`LEADER_ELECTION_INSTANCE_ID`,
    /// `LEADER_ELECTION_LEASE_DURATION=15s`, `LEADER_ELECTION_RETRY_JITTER=0.2`,
    /// `LEADER_ELECTION_ENABLE_GRACEFUL_SHUTDOWN=false`, ...), then validated. Values are read
    /// by [`backend::env`](crate::backend::env), which every backend's `Config::from_env` uses
    /// too.
    ///
    /// Backends read their own settings under the same prefix (`LEADER_ELECTION_REDIS_URL`,
    /// ...) in their `Config::from_env`; called directly, this refuses such variables as
    /// unknown settings.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that cannot be parsed, a variable with the prefix
    /// that names no option (a typo), or the first rule of [`validate`](Self::validate) broken.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(crate::backend::env::vars())
    }

    /// [`from_env`](Self::from_env) with the given `(name, value)` pairs instead of the
    /// process environment; pairs without the prefix are ignored.
    ///
    /// # Errors
    /// As for [`from_env`](Self::from_env).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let options: Self = crate::backend::env::load_prefixed(crate::backend::env::PREFIX, vars)?;
        options.validate()?;
        Ok(options)
    }
}

fn check_range(field: &'static str, value: f64, min: f64, max: f64) -> Result<(), ConfigError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::new(
            field,
            format!("must be between {min} and {max}, got {value}"),
        ))
    }
}

#[cfg(test)]
mod tests;
