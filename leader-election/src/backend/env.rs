//! Configuration from environment variables: the one loader behind
//! [`LeaderElectionOptions::from_env`](crate::LeaderElectionOptions::from_env) and every
//! backend's `Config::from_env`, for any configuration that deserializes with serde.
//!
//! Every variable starts with [`PREFIX`] (`LEADER_ELECTION_`); the rest of its name is matched
//! without regard to case. A backend's configuration reads its own fields from
//! `LEADER_ELECTION_<SECTION>_<FIELD>` and its `options` field (the election options) from
//! `LEADER_ELECTION_<OPTION>`. Values are trimmed, then read as what the field is: a duration
//! written like `"30s"`, `"500ms"` or `"1m 30s"`, a number, a bool (`true`/`false`, `1`/`0`,
//! `yes`/`no`, `on`/`off`), text, a path, or a comma-separated list. A variable that names no
//! field (a typo) is an error. An error names the field and the variable and quotes the value
//! with [`quoted`], so a huge value never floods a log.
//!
//! ```
//! use std::time::Duration;
//! use leader_election::LeaderElectionOptions;
//! use leader_election::backend::env;
//!
//! /// A backend's configuration.
//! #[derive(Debug, Default, serde::Deserialize)]
//! #[serde(default, deny_unknown_fields)]
//! struct MyDbConfig {
//!     url: Option<String>,
//!     pool_size: usize,
//!     options: LeaderElectionOptions,
//! }
//!
//! let config: MyDbConfig = env::load("MYDB", [
//!     ("LEADER_ELECTION_MYDB_URL".to_owned(), "mydb://db:1234".to_owned()),
//!     ("LEADER_ELECTION_MYDB_POOL_SIZE".to_owned(), "4".to_owned()),
//!     ("LEADER_ELECTION_LEASE_DURATION".to_owned(), "15s".to_owned()),
//!     ("PATH".to_owned(), "/usr/bin".to_owned()),
//! ])?;
//! assert_eq!(config.url.as_deref(), Some("mydb://db:1234"));
//! assert_eq!(config.pool_size, 4);
//! assert_eq!(config.options.lease_duration, Duration::from_secs(15));
//!
//! let err = env::load::<MyDbConfig>("MYDB", [
//!     ("LEADER_ELECTION_MYDB_POOL_SIZE".to_owned(), "many".to_owned()),
//! ]).unwrap_err();
//! assert_eq!(err.field, "pool_size");
//! assert_eq!(err.rule, r#"LEADER_ELECTION_MYDB_POOL_SIZE="many" is not a whole number"#);
//! # Ok::<(), leader_election::ConfigError>(())
//! ```

use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use crate::error::{ConfigError, quoted};

/// The prefix of every environment variable this crate and its backends read.
pub const PREFIX: &str = "LEADER_ELECTION_";

/// The process's environment variables. A value that is not Unicode is kept, lossily, so that
/// reading it fails with the variable's name; a name that is not Unicode cannot be a setting.
#[must_use]
pub fn vars() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            Some((name, value.to_string_lossy().into_owned()))
        })
        .collect()
}

/// Loads a backend's configuration `T` from `vars`: its own fields from
/// `LEADER_ELECTION_<SECTION>_<FIELD>`, and, when `T` has a field named `options`, that field
/// from every other `LEADER_ELECTION_<FIELD>`. Other variables are ignored; a
/// `LEADER_ELECTION_` variable that names no field is an error. Fields without a variable take
/// `T`'s serde defaults. Nothing is validated beyond parsing.
///
/// # Errors
/// A [`ConfigError`] naming the field and the variable that does not parse, or the variable
/// that names no field.
pub fn load<T: DeserializeOwned>(
    section: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    load_with_aliases(section, &[], vars)
}

/// [`load`], with some fields read from variables of other names: `(name, field)` pairs, so
/// that `("url", "connection_string")` reads `connection_string` from
/// `LEADER_ELECTION_<SECTION>_URL` (and no longer from `..._CONNECTION_STRING`).
///
/// # Errors
/// As for [`load`].
pub fn load_with_aliases<T: DeserializeOwned>(
    section: &str,
    aliases: &[(&str, &str)],
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let section = format!("{}_", section.to_ascii_lowercase());
    let (own, options): (Vec<_>, Vec<_>) = entries(PREFIX, vars)
        .into_iter()
        .partition(|e| e.key.starts_with(&section));
    let own = own
        .into_iter()
        .map(|mut e| {
            e.key.drain(..section.len());
            if let Some((_, field)) = aliases.iter().find(|(name, _)| *name == e.key) {
                e.key = (*field).to_owned();
            } else if aliases.iter().any(|(_, field)| *field == e.key) {
                // The field's own name is not one of its variables.
                e.key.insert(0, '-');
            }
            e
        })
        .collect();
    T::deserialize(Fields {
        entries: own,
        nested: Some(options),
    })
    .map_err(Error::into_config)
}

/// Loads `T` from the variables named `<prefix><FIELD>`, for a configuration read without a
/// section (the election options alone: `LEADER_ELECTION_LEASE_DURATION` ...).
///
/// # Errors
/// As for [`load`].
pub fn load_prefixed<T: DeserializeOwned>(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    T::deserialize(Fields {
        entries: entries(prefix, vars),
        nested: None,
    })
    .map_err(Error::into_config)
}

/// One variable: the rest of its name after the prefix (lower case), its name, its value.
#[derive(Clone, Debug)]
struct Entry {
    key: String,
    var: String,
    value: String,
}

fn entries(prefix: &str, vars: impl IntoIterator<Item = (String, String)>) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for (var, value) in vars {
        let Some(rest) = var.strip_prefix(prefix) else {
            continue;
        };
        let key = rest.to_ascii_lowercase();
        // The last of several spellings of one variable counts.
        entries.retain(|e| e.key != key);
        entries.push(Entry { key, var, value });
    }
    entries
}

// === Errors ===

/// A loading error: the field it is about (once known) and the rule, which names the variable.
#[derive(Debug)]
struct Error {
    field: &'static str,
    rule: String,
}

impl Error {
    fn into_config(self) -> ConfigError {
        ConfigError::new(self.field, self.rule)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        // Messages from serde may repeat the input: cut them like every echoed value.
        let mut rule = msg.to_string();
        if let Some((cut, _)) = rule.char_indices().nth(200) {
            rule.truncate(cut);
            rule.push('…');
        }
        Self {
            field: "environment",
            rule,
        }
    }

    fn invalid_type(_: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::custom(format_args!("is not {expected}"))
    }

    fn invalid_value(_: de::Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        Self::custom(format_args!("is not {expected}"))
    }
}

// === The struct of fields ===

/// A configuration struct: the variables for its fields, and those for its nested `options`.
/// A variable whose name is a field's name, `_`, and more (`tls_ca_file`) is for that field's
/// own field (`ca_file` of `tls`), when no field has its whole name.
struct Fields {
    entries: Vec<Entry>,
    nested: Option<Vec<Entry>>,
}

impl<'de> de::Deserializer<'de> for Fields {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_struct("", &[], visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut entries = self.entries;
        let mut groups: Vec<(&'static str, Vec<Entry>)> = Vec::new();
        if let Some(nested) = self.nested.filter(|n| !n.is_empty()) {
            if fields.contains(&"options") {
                groups.push(("options", nested));
            } else {
                // No options here: those variables name no field either.
                entries.extend(nested);
            }
        }
        let mut own = Vec::new();
        for mut entry in entries {
            // A field of the whole name first; else the group whose name and `_` start it.
            let group = (!fields.contains(&entry.key.as_str()))
                .then(|| {
                    fields.iter().copied().find(|field| {
                        entry
                            .key
                            .strip_prefix(field)
                            .is_some_and(|rest| rest.len() > 1 && rest.starts_with('_'))
                    })
                })
                .flatten();
            let Some(group) = group else {
                own.push(entry);
                continue;
            };
            entry.key.drain(..=group.len());
            match groups.iter_mut().find(|(name, _)| *name == group) {
                Some((_, members)) => members.push(entry),
                None => groups.push((group, vec![entry])),
            }
        }
        visitor.visit_map(FieldAccess {
            entries: own.into_iter(),
            fields,
            current: None,
            groups: groups.into_iter(),
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct FieldAccess {
    entries: std::vec::IntoIter<Entry>,
    fields: &'static [&'static str],
    /// The field whose value comes next: one variable, or a group of them.
    current: Option<(&'static str, Current)>,
    groups: std::vec::IntoIter<(&'static str, Vec<Entry>)>,
}

enum Current {
    One(Entry),
    Group(Vec<Entry>),
}

impl FieldAccess {
    fn unknown(entry: &Entry) -> Error {
        Error {
            field: "environment",
            rule: format!(
                "the variable {} names no setting: {} is not one (check the spelling)",
                quoted(&entry.var),
                quoted(&entry.key)
            ),
        }
    }
}

impl<'de> MapAccess<'de> for FieldAccess {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if let Some(entry) = self.entries.next() {
            let Some(field) = self.fields.iter().copied().find(|f| *f == entry.key) else {
                return Err(Self::unknown(&entry));
            };
            self.current = Some((field, Current::One(entry)));
            return seed.deserialize(field.into_deserializer()).map(Some);
        }
        if let Some((field, members)) = self.groups.next() {
            self.current = Some((field, Current::Group(members)));
            return seed.deserialize(field.into_deserializer()).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.current.take() {
            Some((field, Current::One(entry))) => seed
                .deserialize(Value {
                    text: entry.value.trim(),
                })
                .map_err(|e| Error {
                    field,
                    rule: format!("{}={} {}", entry.var, quoted(entry.value.trim()), e.rule),
                }),
            Some((_, Current::Group(entries))) => seed.deserialize(Fields {
                entries,
                nested: None,
            }),
            None => Err(de::Error::custom("a value was asked for before its field")),
        }
    }
}

// === One value ===

/// The text of one variable, read as whatever the field asks for.
struct Value<'a> {
    text: &'a str,
}

impl Value<'_> {
    fn parse<T: std::str::FromStr>(&self, expected: &str) -> Result<T, Error> {
        self.text
            .parse()
            .map_err(|_| de::Error::custom(format_args!("is not {expected}")))
    }
}

macro_rules! numbers {
    ($($method:ident $visit:ident $ty:ty: $expected:literal;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                visitor.$visit(self.parse::<$ty>($expected)?)
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Value<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.text)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => visitor.visit_bool(true),
            "false" | "0" | "no" | "off" => visitor.visit_bool(false),
            _ => Err(de::Error::custom("is not true or false")),
        }
    }

    numbers! {
        deserialize_i8 visit_i8 i8: "a whole number";
        deserialize_i16 visit_i16 i16: "a whole number";
        deserialize_i32 visit_i32 i32: "a whole number";
        deserialize_i64 visit_i64 i64: "a whole number";
        deserialize_u8 visit_u8 u8: "a whole number";
        deserialize_u16 visit_u16 u16: "a whole number";
        deserialize_u32 visit_u32 u32: "a whole number";
        deserialize_u64 visit_u64 u64: "a whole number";
        deserialize_f32 visit_f32 f32: "a number";
        deserialize_f64 visit_f64 f64: "a number";
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // A variable that is set gives `Some`.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let items = self
            .text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|text| Value { text });
        visitor.visit_seq(de::value::SeqDeserializer::new(items))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self.text.into_deserializer())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom("is a group of settings, not one value"))
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple
        tuple_struct map identifier ignored_any
    }
}

impl<'de> IntoDeserializer<'de, Error> for Value<'_> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;
    use crate::options::LeaderElectionOptions;

    #[derive(Debug, Default, PartialEq, serde::Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Config {
        url: Option<String>,
        size: u32,
        ratio: f64,
        enabled: bool,
        path: Option<PathBuf>,
        endpoints: Vec<String>,
        #[serde(with = "humantime_serde")]
        wait: Option<Duration>,
        options: LeaderElectionOptions,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_parse_as_their_field() {
        let config: Config = load(
            "X",
            vars(&[
                ("LEADER_ELECTION_X_URL", " db://h "),
                ("LEADER_ELECTION_X_SIZE", "7"),
                ("LEADER_ELECTION_X_RATIO", "0.25"),
                ("LEADER_ELECTION_X_ENABLED", "YES"),
                ("LEADER_ELECTION_X_PATH", "/etc/ca.pem"),
                ("LEADER_ELECTION_X_ENDPOINTS", "http://a:1, http://b:2,"),
                ("LEADER_ELECTION_X_WAIT", "1m 30s"),
                ("LEADER_ELECTION_INSTANCE_ID", "pod-7"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(config.url.as_deref(), Some("db://h"));
        assert_eq!(config.size, 7);
        assert_eq!(config.ratio, 0.25);
        assert!(config.enabled);
        assert_eq!(config.path, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.endpoints, ["http://a:1", "http://b:2"]);
        assert_eq!(config.wait, Some(Duration::from_secs(90)));
        assert_eq!(config.options.instance_id, "pod-7");
        for (text, expected) in [("on", true), ("1", true), ("off", false), ("No", false)] {
            let config: Config = load("X", vars(&[("LEADER_ELECTION_X_ENABLED", text)])).unwrap();
            assert_eq!(config.enabled, expected, "{text}");
        }
        let mut config: Config = load("X", vars(&[])).unwrap();
        // Every field at its default (the instance id is drawn afresh each time).
        config.options.instance_id = String::new();
        let mut default = Config::default();
        default.options.instance_id = String::new();
        assert_eq!(config, default, "no variable, all defaults");
    }

    #[test]
    fn a_variable_for_a_field_of_a_group_sets_it() {
        #[derive(Debug, Default, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct WithTls {
            url: Option<String>,
            tls: crate::backend::tls::TlsFiles,
            options: LeaderElectionOptions,
        }
        let config: WithTls = load(
            "X",
            vars(&[
                ("LEADER_ELECTION_X_URL", "db://h"),
                ("LEADER_ELECTION_X_TLS_CA_FILE", "/etc/ca.pem"),
                ("LEADER_ELECTION_X_TLS_KEY_FILE", "/etc/key.pem"),
                ("LEADER_ELECTION_INSTANCE_ID", "pod-7"),
            ]),
        )
        .unwrap();
        assert_eq!(config.url.as_deref(), Some("db://h"));
        assert_eq!(config.tls.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(config.tls.cert_file, None);
        assert_eq!(config.tls.key_file, Some(PathBuf::from("/etc/key.pem")));
        assert_eq!(config.options.instance_id, "pod-7");
        let err =
            load::<WithTls>("X", vars(&[("LEADER_ELECTION_X_TLS_CA", "/etc/ca.pem")])).unwrap_err();
        assert!(err.rule.contains("LEADER_ELECTION_X_TLS_CA"), "{err}");
        assert!(err.rule.contains("names no setting"), "{err}");
        let err = load::<WithTls>("X", vars(&[("LEADER_ELECTION_X_TLS", "on")])).unwrap_err();
        assert_eq!(err.field, "tls");
        assert!(err.rule.contains("group of settings"), "{err}");
    }

    #[test]
    fn errors_name_the_field_and_variable_and_quote_the_value() {
        let err = load::<Config>("X", vars(&[("LEADER_ELECTION_X_SIZE", "-1")])).unwrap_err();
        assert_eq!(err.field, "size");
        assert_eq!(
            err.rule,
            r#"LEADER_ELECTION_X_SIZE="-1" is not a whole number"#
        );
        let err =
            load::<Config>("X", vars(&[("LEADER_ELECTION_LEASE_DURATION", "soon")])).unwrap_err();
        assert_eq!(err.field, "lease_duration");
        assert!(
            err.rule
                .starts_with(r#"LEADER_ELECTION_LEASE_DURATION="soon" is not"#),
            "{err}"
        );
        let err = load::<Config>("X", vars(&[("LEADER_ELECTION_X_ENABLED", "maybe")])).unwrap_err();
        assert_eq!(
            err.rule,
            r#"LEADER_ELECTION_X_ENABLED="maybe" is not true or false"#
        );
        let huge = "9".repeat(100_000);
        let err = load::<Config>(
            "X",
            vars(&[("LEADER_ELECTION_X_SIZE", &format!("x{huge}"))]),
        )
        .unwrap_err();
        assert!(err.to_string().len() < 300, "{}", err.to_string().len());
        let err = load::<Config>(
            "X",
            vars(&[("LEADER_ELECTION_X_WAIT", &format!("x{huge}"))]),
        )
        .unwrap_err();
        assert!(err.to_string().len() < 600, "{}", err.to_string().len());
    }

    #[test]
    fn unknown_variables_are_errors_that_name_them() {
        let err = load::<Config>("X", vars(&[("LEADER_ELECTION_X_ULR", "db://h")])).unwrap_err();
        assert_eq!(err.field, "environment");
        assert!(err.rule.contains("LEADER_ELECTION_X_ULR"), "{err}");
        let err =
            load::<Config>("X", vars(&[("LEADER_ELECTION_LEASE_DURATON", "5s")])).unwrap_err();
        assert!(err.rule.contains("LEADER_ELECTION_LEASE_DURATON"), "{err}");
        let huge = "X".repeat(100_000);
        let err =
            load::<Config>("X", vars(&[(&format!("LEADER_ELECTION_{huge}"), "1")])).unwrap_err();
        assert!(err.to_string().len() < 300);
        // A configuration without election options: their variables name no field.
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Bare {
            #[allow(dead_code)]
            url: Option<String>,
        }
        let err = load::<Bare>("X", vars(&[("LEADER_ELECTION_LEASE_DURATION", "5s")])).unwrap_err();
        assert!(err.rule.contains("LEADER_ELECTION_LEASE_DURATION"), "{err}");
    }

    #[test]
    fn aliases_name_a_field_by_another_variable() {
        let aliases = [("address", "url")];
        let config: Config = load_with_aliases(
            "X",
            &aliases,
            vars(&[("LEADER_ELECTION_X_ADDRESS", "db://h")]),
        )
        .unwrap();
        assert_eq!(config.url.as_deref(), Some("db://h"));
        let err = load_with_aliases::<Config>(
            "X",
            &aliases,
            vars(&[("LEADER_ELECTION_X_URL", "db://h")]),
        )
        .unwrap_err();
        assert!(err.rule.contains("LEADER_ELECTION_X_URL"), "{err}");
    }

    #[test]
    fn names_match_in_any_case_and_the_last_spelling_counts() {
        let config: Config = load(
            "x",
            vars(&[
                ("LEADER_ELECTION_X_SIZE", "1"),
                ("LEADER_ELECTION_x_size", "2"),
                ("OTHER_X_SIZE", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(config.size, 2);
    }
}
