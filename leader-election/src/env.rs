//! Configuration from environment variables: the one parser behind
//! [`LeaderElectionOptions::from_env`](crate::LeaderElectionOptions::from_env) and every
//! backend's `Config::from_env`.
//!
//! Every variable starts with [`PREFIX`] (`LEADER_ELECTION_`); the rest of its name is matched
//! without regard to case. Values are trimmed, then read as what the setting is: a duration
//! written like `"30s"`, `"500ms"` or `"1m 30s"`, a number, a bool (`true`/`false`, `1`/`0`,
//! `yes`/`no`, `on`/`off`) or text. An error names the setting and the variable and quotes the
//! value with [`quoted`], so a huge value never floods a log.
//!
//! A backend takes its own variables first, then reads the election options from the rest, so
//! that a variable nobody knows (a typo) is an error:
//!
//! ```
//! use leader_election::env::EnvVars;
//! use leader_election::LeaderElectionOptions;
//! # use std::time::Duration;
//!
//! let mut vars = EnvVars::new([
//!     ("LEADER_ELECTION_MYDB_URL".to_owned(), "mydb://db:1234".to_owned()),
//!     ("LEADER_ELECTION_MYDB_POOL_SIZE".to_owned(), "4".to_owned()),
//!     ("LEADER_ELECTION_LEASE_DURATION".to_owned(), "15s".to_owned()),
//!     ("LEADER_ELECTION_RENEW_INTERVAL".to_owned(), "5s".to_owned()),
//!     ("PATH".to_owned(), "/usr/bin".to_owned()),
//! ]);
//! let mut url: Option<String> = None;
//! let mut pool_size = 2_usize;
//! vars.set("url", "MYDB_URL", &mut url)?;
//! vars.set("pool_size", "MYDB_POOL_SIZE", &mut pool_size)?;
//! let options = vars.into_options(LeaderElectionOptions::default())?;
//! assert_eq!(url.as_deref(), Some("mydb://db:1234"));
//! assert_eq!(pool_size, 4);
//! assert_eq!(options.lease_duration, Duration::from_secs(15));
//! # Ok::<(), leader_election::ConfigError>(())
//! ```

use std::time::Duration;

use crate::error::{ConfigError, quoted};
use crate::options::LeaderElectionOptions;

/// The prefix of every environment variable this crate and its backends read.
pub const PREFIX: &str = "LEADER_ELECTION_";

/// A setting's type that can be read from an environment variable's text.
pub trait FromEnvValue: Sized {
    /// What a valid value looks like, for error messages: `a duration like "30s"`.
    const EXPECTED: &'static str;

    /// The value written in `text` (already trimmed), or `None` if it is not one.
    fn from_env_value(text: &str) -> Option<Self>;
}

impl FromEnvValue for Duration {
    const EXPECTED: &'static str = "a duration like \"30s\"";

    fn from_env_value(text: &str) -> Option<Self> {
        humantime::parse_duration(text).ok()
    }
}

impl FromEnvValue for bool {
    const EXPECTED: &'static str = "true or false";

    fn from_env_value(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        }
    }
}

impl FromEnvValue for String {
    const EXPECTED: &'static str = "text";

    fn from_env_value(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

/// Bytes written as UTF-8 text (leader metadata).
impl FromEnvValue for Vec<u8> {
    const EXPECTED: &'static str = "text";

    fn from_env_value(text: &str) -> Option<Self> {
        Some(text.as_bytes().to_vec())
    }
}

/// A variable that is set gives `Some`: for settings whose default is "none".
impl<T: FromEnvValue> FromEnvValue for Option<T> {
    const EXPECTED: &'static str = T::EXPECTED;

    fn from_env_value(text: &str) -> Option<Self> {
        T::from_env_value(text).map(Some)
    }
}

macro_rules! numbers {
    ($($ty:ty: $expected:literal),* $(,)?) => {
        $(
            impl FromEnvValue for $ty {
                const EXPECTED: &'static str = $expected;

                fn from_env_value(text: &str) -> Option<Self> {
                    text.parse().ok()
                }
            }
        )*
    };
}

numbers!(
    u16: "a whole number",
    u32: "a whole number",
    u64: "a whole number",
    usize: "a whole number",
    f64: "a number",
);

/// Reads `text`, the value of the variable `var`, for the setting `field`.
///
/// # Errors
/// A [`ConfigError`] for `field` that names `var` and quotes `text` when it is not a `T`.
///
/// ```
/// use std::time::Duration;
/// use leader_election::env::parse;
///
/// let d: Duration = parse("lease_duration", "LEADER_ELECTION_LEASE_DURATION", "15s").unwrap();
/// assert_eq!(d, Duration::from_secs(15));
/// let err = parse::<bool>("enabled", "LEADER_ELECTION_ENABLED", "maybe").unwrap_err();
/// assert_eq!(err.field, "enabled");
/// assert_eq!(err.rule, r#"LEADER_ELECTION_ENABLED="maybe" is not true or false"#);
/// ```
pub fn parse<T: FromEnvValue>(
    field: &'static str,
    var: &str,
    text: &str,
) -> Result<T, ConfigError> {
    T::from_env_value(text.trim()).ok_or_else(|| {
        ConfigError::new(
            field,
            format!("{var}={} is not {}", quoted(text.trim()), T::EXPECTED),
        )
    })
}

/// The environment variables with one prefix, to be taken by the settings that read them.
///
/// See the [module documentation](self) for an example.
#[derive(Clone, Debug, Default)]
pub struct EnvVars {
    /// `(the rest of the name, lower-cased; the whole name; the value)`, in the order given.
    vars: Vec<(String, String, String)>,
}

impl EnvVars {
    /// The process environment's variables that start with [`PREFIX`]. Others are never read,
    /// so a variable that is not valid Unicode elsewhere in the environment does no harm.
    #[must_use]
    pub fn from_env() -> Self {
        Self::new(std::env::vars_os().filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            // A value that is not Unicode cannot be a valid setting: keep it, lossily, so that
            // reading it fails with the variable's name.
            Some((name, value.to_string_lossy().into_owned()))
        }))
    }

    /// The `(name, value)` pairs whose name starts with [`PREFIX`]; the others are ignored.
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self::with_prefix(PREFIX, vars)
    }

    /// The `(name, value)` pairs whose name starts with `prefix`; the others are ignored.
    pub fn with_prefix(prefix: &str, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let vars = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(prefix)?.to_ascii_lowercase();
                Some((rest, name, value))
            })
            .collect();
        Self { vars }
    }

    /// Whether no variable is left.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Removes the variable named the prefix followed by `name` (`"REDIS_URL"`, any case) and
    /// reads it for the setting `field`; `None` if it is not set. When a name is given twice,
    /// the last one counts.
    ///
    /// # Errors
    /// As for [`parse`].
    pub fn take<T: FromEnvValue>(
        &mut self,
        field: &'static str,
        name: &str,
    ) -> Result<Option<T>, ConfigError> {
        let name = name.to_ascii_lowercase();
        let mut found = None;
        self.vars.retain(|(rest, var, value)| {
            if *rest == name {
                found = Some((var.clone(), value.clone()));
                false
            } else {
                true
            }
        });
        found
            .map(|(var, value)| parse(field, &var, &value))
            .transpose()
    }

    /// [`take`](Self::take), storing the value in `target` when the variable is set.
    ///
    /// # Errors
    /// As for [`parse`].
    pub fn set<T: FromEnvValue>(
        &mut self,
        field: &'static str,
        name: &str,
        target: &mut T,
    ) -> Result<(), ConfigError> {
        if let Some(value) = self.take(field, name)? {
            *target = value;
        }
        Ok(())
    }

    /// `options` with every variable left applied as an option (the rest of its name is the
    /// field name: `LEADER_ELECTION_LEASE_DURATION` sets `lease_duration`), then validated.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that does not parse, a variable left that names
    /// no option (a typo, or another backend's setting), or the first rule of
    /// [`LeaderElectionOptions::validate`] broken.
    pub fn into_options(
        self,
        mut options: LeaderElectionOptions,
    ) -> Result<LeaderElectionOptions, ConfigError> {
        for (rest, var, value) in &self.vars {
            let Some(set) = LeaderElectionOptions::FIELDS
                .iter()
                .find_map(|(field, set)| (*field == rest).then_some(set))
            else {
                return Err(ConfigError::new(
                    "environment",
                    format!(
                        "the variable {} names no setting: {} is not an option (check the spelling)",
                        quoted(var),
                        quoted(rest)
                    ),
                ));
            };
            set(&mut options, var, value)?;
        }
        options.validate()?;
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> EnvVars {
        EnvVars::new(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn values_parse_as_their_type() {
        assert_eq!(
            parse::<Duration>("f", "V", " 1m 30s "),
            Ok(Duration::from_secs(90))
        );
        for yes in ["true", "1", "YES", "on"] {
            assert_eq!(parse::<bool>("f", "V", yes), Ok(true), "{yes}");
        }
        for no in ["false", "0", "No", "OFF"] {
            assert_eq!(parse::<bool>("f", "V", no), Ok(false), "{no}");
        }
        assert_eq!(parse::<u32>("f", "V", "7"), Ok(7));
        assert_eq!(parse::<f64>("f", "V", "0.25"), Ok(0.25));
        assert_eq!(parse::<String>("f", "V", " a b "), Ok("a b".to_owned()));
        assert_eq!(
            parse::<Option<Duration>>("f", "V", "2s"),
            Ok(Some(Duration::from_secs(2)))
        );
    }

    #[test]
    fn errors_name_the_field_and_variable_and_quote_the_value() {
        let err = parse::<Duration>("lease_duration", "LEADER_ELECTION_LEASE_DURATION", "soon")
            .unwrap_err();
        assert_eq!(err.field, "lease_duration");
        assert_eq!(
            err.rule,
            r#"LEADER_ELECTION_LEASE_DURATION="soon" is not a duration like "30s""#
        );
        let err = parse::<usize>("pool_size", "P", "-1").unwrap_err();
        assert!(err.rule.contains("a whole number"), "{err}");
        let huge = "9".repeat(100_000);
        let err = parse::<u32>("n", "N", &format!("x{huge}")).unwrap_err();
        assert!(err.to_string().len() < 300, "{}", err.to_string().len());
    }

    #[test]
    fn take_removes_the_variable_in_any_case_and_the_last_one_counts() {
        let mut env = vars(&[
            ("LEADER_ELECTION_X_SIZE", "1"),
            ("LEADER_ELECTION_x_size", "2"),
            ("OTHER_X_SIZE", "3"),
        ]);
        assert_eq!(env.take::<u32>("size", "X_SIZE"), Ok(Some(2)));
        assert!(env.is_empty());
        assert_eq!(env.take::<u32>("size", "X_SIZE"), Ok(None));
        let mut size = 5_u32;
        env.set("size", "X_SIZE", &mut size).unwrap();
        assert_eq!(size, 5, "an unset variable keeps the default");
    }

    #[test]
    fn unknown_variables_are_errors_that_name_them() {
        let err = vars(&[("LEADER_ELECTION_LEASE_DURATON", "5s")])
            .into_options(LeaderElectionOptions::default())
            .unwrap_err();
        assert_eq!(err.field, "environment");
        assert!(err.rule.contains("LEADER_ELECTION_LEASE_DURATON"), "{err}");
        let huge = "X".repeat(100_000);
        let err = vars(&[(&format!("LEADER_ELECTION_{huge}"), "1")])
            .into_options(LeaderElectionOptions::default())
            .unwrap_err();
        assert!(err.to_string().len() < 300);
    }

    #[test]
    fn every_option_field_is_read() {
        let pairs: Vec<(String, String)> = LeaderElectionOptions::FIELDS
            .iter()
            .map(|(field, _)| {
                let value = match *field {
                    "instance_id" => "pod-1",
                    "lease_duration" => "20s",
                    "renew_interval" | "retry_interval" => "2s",
                    "max_retry_interval" | "shutdown_timeout" => "3s",
                    "operation_timeout" => "1s",
                    "deadline_slack" => "50ms",
                    "retry_backoff_factor" => "1.5",
                    "retry_jitter" | "clock_drift_rate" => "0.05",
                    "max_retry_attempts" => "4",
                    "enable_graceful_shutdown" => "off",
                    "metadata" => "10.0.0.7:8080",
                    "priority" => "7",
                    "min_tenure" => "40s",
                    other => panic!("no test value for {other}"),
                };
                (
                    format!("{PREFIX}{}", field.to_ascii_uppercase()),
                    value.to_owned(),
                )
            })
            .collect();
        let o = EnvVars::new(pairs)
            .into_options(LeaderElectionOptions::default())
            .unwrap();
        let expected = LeaderElectionOptions {
            instance_id: "pod-1".into(),
            lease_duration: Duration::from_secs(20),
            renew_interval: Duration::from_secs(2),
            retry_interval: Duration::from_secs(2),
            max_retry_interval: Duration::from_secs(3),
            retry_backoff_factor: 1.5,
            retry_jitter: 0.05,
            max_retry_attempts: 4,
            enable_graceful_shutdown: false,
            operation_timeout: Some(Duration::from_secs(1)),
            clock_drift_rate: 0.05,
            deadline_slack: Duration::from_millis(50),
            shutdown_timeout: Duration::from_secs(3),
            metadata: Some(b"10.0.0.7:8080".to_vec()),
            priority: Some(7),
            min_tenure: Some(Duration::from_secs(40)),
        };
        assert_eq!(o, expected);
    }
}
