//! Options shared by every backend.

use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// The longest any duration option may be. Longer values are almost certainly a unit mistake,
/// and keeping them bounded keeps all deadline arithmetic far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest `instance_id` accepted, in bytes.
pub const MAX_INSTANCE_ID_LEN: usize = 256;

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
pub fn default_instance_id() -> String {
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
pub const MIN_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// The smallest deadline margin accepted: a leader must give up its term strictly before its
/// backend lease can expire.
pub const MIN_DEADLINE_MARGIN: Duration = Duration::from_millis(1);

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

/// The prefix of the environment variables read by [`LeaderElectionOptions::from_env`]: the
/// same as [`env::PREFIX`](crate::env::PREFIX).
pub const ENV_PREFIX: &str = crate::env::PREFIX;

/// How [`LeaderElectionOptions::FIELDS`] sets one option from an environment variable's
/// `(name, value)`.
pub type FieldSetter = fn(&mut LeaderElectionOptions, &str, &str) -> Result<(), ConfigError>;

/// The one list of option fields read from text: each entry's setter parses the value as the
/// field's type with [`env::parse`](crate::env::parse).
macro_rules! fields {
    ($($field:ident),* $(,)?) => {
        &[$((stringify!($field), |options, var, value| {
            options.$field = crate::env::parse(stringify!($field), var, value)?;
            Ok(())
        })),*]
    };
}

impl LeaderElectionOptions {
    /// Every option by field name, with the function that sets it from an environment
    /// variable's name and value: what [`from_env`](Self::from_env) and every backend's
    /// `Config::from_env` accept as `LEADER_ELECTION_<FIELD>`.
    pub const FIELDS: &'static [(&'static str, FieldSetter)] = fields![
        instance_id,
        lease_duration,
        renew_interval,
        retry_interval,
        max_retry_interval,
        retry_backoff_factor,
        retry_jitter,
        max_retry_attempts,
        enable_graceful_shutdown,
        operation_timeout,
        clock_drift_rate,
        deadline_slack,
        shutdown_timeout,
        metadata,
        priority,
        min_tenure,
    ];

    /// The defaults, overridden by environment variables named after the fields with the
    /// prefix `LEADER_ELECTION_` (`LEADER_ELECTION_INSTANCE_ID`,
    /// `LEADER_ELECTION_LEASE_DURATION=15s`, `LEADER_ELECTION_RETRY_JITTER=0.2`,
    /// `LEADER_ELECTION_ENABLE_GRACEFUL_SHUTDOWN=false`, ...), then validated. Values are read
    /// by [`leader_election::env`](crate::env).
    ///
    /// Backends read their own settings under the same prefix (`LEADER_ELECTION_REDIS_URL`,
    /// ...) in their `Config::from_env`, which takes them out and reads the options from the
    /// rest; called directly, this refuses such variables as unknown settings.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that cannot be parsed, a variable with the prefix
    /// that names no option (a typo), or the first rule of [`validate`](Self::validate) broken.
    pub fn from_env() -> Result<Self, ConfigError> {
        crate::env::EnvVars::from_env().into_options(Self::default())
    }

    /// These options, overridden by the `(name, value)` pairs whose names start with `prefix`
    /// (the rest of the name is the field name, case-insensitive), then validated. Pairs
    /// without the prefix are ignored. [`from_env`](Self::from_env) is this with the
    /// process environment.
    ///
    /// # Errors
    /// As for [`from_env`](Self::from_env).
    pub fn with_vars(
        self,
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        crate::env::EnvVars::with_prefix(prefix, vars).into_options(self)
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
mod tests {
    use super::*;

    fn valid() -> LeaderElectionOptions {
        LeaderElectionOptions {
            instance_id: "a".into(),
            ..LeaderElectionOptions::default()
        }
    }

    fn field_of(options: &LeaderElectionOptions) -> &'static str {
        options.validate().expect_err("should be invalid").field
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let o = LeaderElectionOptions::default();
        o.validate().unwrap();
        assert_eq!(o.lease_duration, Duration::from_secs(30));
        assert_eq!(o.renew_interval, Duration::from_secs(10));
        assert_eq!(o.retry_interval, Duration::from_secs(5));
        assert_eq!(o.max_retry_interval, Duration::from_secs(40));
        assert_eq!(o.retry_backoff_factor, 2.0);
        assert_eq!(o.retry_jitter, 0.1);
        assert_eq!(o.max_retry_attempts, 3);
        assert!(o.enable_graceful_shutdown);
        assert_eq!(o.operation_timeout, None);
        assert_eq!(o.operation_timeout(), Duration::from_secs(2));
        assert!(o.operation_timeout() < o.renew_interval / 2);
        assert_eq!(o.deadline_margin(), Duration::from_millis(400));
    }

    #[test]
    fn short_leases_work_with_the_default_operation_timeout() {
        let mut o = valid();
        o.lease_duration = Duration::from_secs(2);
        o.renew_interval = Duration::from_millis(500);
        o.validate().unwrap();
        assert_eq!(o.operation_timeout(), Duration::from_millis(500));
        o.operation_timeout = Some(Duration::from_secs(2));
        assert_eq!(field_of(&o), "renew_interval");
    }

    #[test]
    fn a_zero_deadline_margin_is_rejected() {
        let mut o = valid();
        o.clock_drift_rate = 0.0;
        o.deadline_slack = Duration::ZERO;
        assert_eq!(field_of(&o), "deadline_slack");
        o.deadline_slack = Duration::from_millis(1);
        o.validate().unwrap();
    }

    #[test]
    fn a_tiny_retry_interval_is_rejected() {
        let mut o = valid();
        o.retry_interval = Duration::from_millis(9);
        assert_eq!(field_of(&o), "retry_interval");
        o.retry_interval = MIN_RETRY_INTERVAL;
        o.validate().unwrap();
    }

    #[test]
    fn errors_do_not_echo_huge_input_whole() {
        let huge = "9".repeat(100_000);
        for field in ["LEASE_DURATION", "RETRY_JITTER", "ENABLE_GRACEFUL_SHUTDOWN"] {
            let err = LeaderElectionOptions::default()
                .with_vars("P_", [(format!("P_{field}"), format!("x{huge}"))])
                .unwrap_err();
            assert!(
                err.to_string().len() < 300,
                "{field}: {} bytes",
                err.to_string().len()
            );
        }
        let err = LeaderElectionOptions::default()
            .with_vars("P_", [(format!("P_{huge}"), "1".to_owned())])
            .unwrap_err();
        assert!(err.to_string().len() < 300);
    }

    #[test]
    fn default_instance_ids_are_unique_and_carry_the_pid() {
        let a = default_instance_id();
        let b = default_instance_id();
        assert_ne!(a, b);
        assert!(a.contains(&std::process::id().to_string()));
        assert!(!a.is_empty() && a.len() <= MAX_INSTANCE_ID_LEN);
    }

    #[test]
    fn empty_blank_long_or_control_instance_id_is_rejected() {
        for id in ["", "   ", "a\nb"] {
            let o = LeaderElectionOptions {
                instance_id: id.into(),
                ..valid()
            };
            assert_eq!(field_of(&o), "instance_id", "{id:?}");
        }
        let o = LeaderElectionOptions {
            instance_id: "x".repeat(MAX_INSTANCE_ID_LEN + 1),
            ..valid()
        };
        assert_eq!(field_of(&o), "instance_id");
    }

    #[test]
    fn zero_durations_are_rejected() {
        type Setter = fn(&mut LeaderElectionOptions);
        let cases: [(&str, Setter); 6] = [
            ("lease_duration", |o| o.lease_duration = Duration::ZERO),
            ("renew_interval", |o| o.renew_interval = Duration::ZERO),
            ("retry_interval", |o| o.retry_interval = Duration::ZERO),
            ("max_retry_interval", |o| {
                o.max_retry_interval = Duration::ZERO
            }),
            ("operation_timeout", |o| {
                o.operation_timeout = Some(Duration::ZERO)
            }),
            ("shutdown_timeout", |o| o.shutdown_timeout = Duration::ZERO),
        ];
        for (field, set) in cases {
            let mut o = valid();
            set(&mut o);
            assert_eq!(field_of(&o), field);
            assert!(o.validate().unwrap_err().to_string().contains(field));
        }
    }

    #[test]
    fn absurdly_long_durations_are_rejected_without_panicking() {
        let mut o = valid();
        o.deadline_slack = Duration::MAX;
        assert_eq!(field_of(&o), "deadline_slack");
        let mut o = valid();
        o.lease_duration = Duration::MAX;
        assert_eq!(field_of(&o), "lease_duration");
        let _ = o.deadline_margin();
    }

    #[test]
    fn renew_interval_must_be_shorter_than_the_lease() {
        let mut o = valid();
        o.renew_interval = o.lease_duration;
        let err = o.validate().unwrap_err();
        assert_eq!(err.field, "renew_interval");
        assert!(err.rule.contains("shorter than lease_duration"), "{err}");
    }

    #[test]
    fn max_retry_interval_must_cover_retry_interval() {
        let mut o = valid();
        o.max_retry_interval = Duration::from_secs(1);
        assert_eq!(field_of(&o), "max_retry_interval");
    }

    #[test]
    fn factors_out_of_range_are_rejected() {
        for f in [0.99, 3.01, f64::NAN, f64::INFINITY] {
            let mut o = valid();
            o.retry_backoff_factor = f;
            assert_eq!(field_of(&o), "retry_backoff_factor", "{f}");
        }
        for j in [-0.01, 0.51, f64::NAN] {
            let mut o = valid();
            o.retry_jitter = j;
            assert_eq!(field_of(&o), "retry_jitter", "{j}");
        }
        for r in [-0.1, 0.6, f64::NAN] {
            let mut o = valid();
            o.clock_drift_rate = r;
            assert_eq!(field_of(&o), "clock_drift_rate", "{r}");
        }
        let mut o = valid();
        o.retry_backoff_factor = 1.0;
        o.retry_jitter = 0.5;
        o.validate().unwrap();
    }

    #[test]
    fn zero_retry_attempts_are_rejected() {
        let mut o = valid();
        o.max_retry_attempts = 0;
        assert_eq!(field_of(&o), "max_retry_attempts");
    }

    #[test]
    fn a_margin_that_leaves_no_time_to_renew_is_rejected() {
        // 10 s lease, 8 s renew, 2 s timeout: nothing is left for the 0.2 s margin.
        let mut o = valid();
        o.lease_duration = Duration::from_secs(10);
        o.renew_interval = Duration::from_secs(8);
        o.operation_timeout = Some(Duration::from_secs(2));
        let err = o.validate().unwrap_err();
        assert_eq!(err.field, "renew_interval");
        assert!(err.rule.contains("leaves no time to renew"), "{err}");
        // A huge drift rate eats the lease just the same.
        let mut o = valid();
        o.lease_duration = Duration::from_secs(20);
        o.clock_drift_rate = 0.5;
        assert_eq!(field_of(&o), "renew_interval");
        // The same timings with a shorter timeout fit.
        let mut o = valid();
        o.lease_duration = Duration::from_secs(10);
        o.renew_interval = Duration::from_secs(8);
        o.operation_timeout = Some(Duration::from_millis(500));
        o.validate().unwrap();
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn environment_variables_override_defaults() {
        let o = valid()
            .with_vars(
                ENV_PREFIX,
                vars(&[
                    ("LEADER_ELECTION_INSTANCE_ID", "pod-7"),
                    ("LEADER_ELECTION_LEASE_DURATION", "15s"),
                    ("LEADER_ELECTION_RENEW_INTERVAL", "5s"),
                    ("LEADER_ELECTION_RETRY_JITTER", "0.2"),
                    ("LEADER_ELECTION_MAX_RETRY_ATTEMPTS", "5"),
                    ("LEADER_ELECTION_ENABLE_GRACEFUL_SHUTDOWN", "false"),
                    ("PATH", "/usr/bin"),
                ]),
            )
            .unwrap();
        assert_eq!(o.instance_id, "pod-7");
        assert_eq!(o.lease_duration, Duration::from_secs(15));
        assert_eq!(o.renew_interval, Duration::from_secs(5));
        assert_eq!(o.retry_jitter, 0.2);
        assert_eq!(o.max_retry_attempts, 5);
        assert!(!o.enable_graceful_shutdown);
    }

    #[test]
    fn bad_environment_variables_name_the_field() {
        let err = valid()
            .with_vars(
                ENV_PREFIX,
                vars(&[("LEADER_ELECTION_LEASE_DURATION", "soon")]),
            )
            .unwrap_err();
        assert_eq!(err.field, "lease_duration");
        let err = valid()
            .with_vars(
                ENV_PREFIX,
                vars(&[("LEADER_ELECTION_RETRY_JITTER", "lots")]),
            )
            .unwrap_err();
        assert_eq!(err.field, "retry_jitter");
        let err = valid()
            .with_vars(ENV_PREFIX, vars(&[("LEADER_ELECTION_LEASE_DURATON", "5s")]))
            .unwrap_err();
        assert!(err.rule.contains("lease_duraton"), "{err}");
        let err = valid()
            .with_vars(
                ENV_PREFIX,
                vars(&[("LEADER_ELECTION_RENEW_INTERVAL", "40s")]),
            )
            .unwrap_err();
        assert_eq!(err.field, "renew_interval", "validated after parsing");
    }

    #[test]
    fn deserializes_human_durations_and_fills_defaults() {
        let o: LeaderElectionOptions = serde_json::from_str(
            r#"{"instance_id":"n1","lease_duration":"2s","renew_interval":"500ms",
                "operation_timeout":"200ms","retry_interval":"1m 30s"}"#,
        )
        .unwrap();
        assert_eq!(o.instance_id, "n1");
        assert_eq!(o.lease_duration, Duration::from_secs(2));
        assert_eq!(o.renew_interval, Duration::from_millis(500));
        assert_eq!(o.retry_interval, Duration::from_secs(90));
        assert_eq!(o.max_retry_attempts, 3);
        let err =
            serde_json::from_str::<LeaderElectionOptions>(r#"{"lease_duraton":"2s"}"#).unwrap_err();
        assert!(err.to_string().contains("lease_duraton"), "{err}");
        let err = serde_json::from_str::<LeaderElectionOptions>(r#"{"lease_duration":"soon"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("duration"), "{err}");
    }
}
