//! [`BackendConfig`]: a backend's configuration as data, loaded from serde or the environment.

use serde::de::DeserializeOwned;

use crate::builder::ElectionBuilder;
use crate::error::ConfigError;
use crate::options::LeaderElectionOptions;

use super::env;

/// A backend's election as configuration (`RedisConfig`, `PostgresConfig` ...): serde data
/// for the application's config files, loadable from environment variables with
/// [`from_env`](Self::from_env), and turned into the backend's builder with
/// [`into_builder`](Self::into_builder). Bring it into scope with
/// `use leader_election::prelude::*` (or `use leader_election::BackendConfig`).
///
/// A backend implements [`SECTION`](Self::SECTION), [`options`](Self::options) and
/// [`into_builder`](Self::into_builder); the loaders come with it.
///
/// ```
/// use leader_election::{BackendConfig, LeaderElection, LeaderElectionOptions, MemoryLeaseStore};
/// use leader_election::Builder;
///
/// #[derive(Default, serde::Deserialize)]
/// #[serde(default, deny_unknown_fields)]
/// struct MyConfig {
///     shards: u32,
///     options: LeaderElectionOptions,
/// }
///
/// impl BackendConfig for MyConfig {
///     const SECTION: &'static str = "MYDB";
///     type Builder = Builder<MemoryLeaseStore>;
///     fn options(&self) -> &LeaderElectionOptions {
///         &self.options
///     }
///     fn into_builder(self) -> Self::Builder {
///         LeaderElection::builder(MemoryLeaseStore::new()).options(self.options)
///     }
/// }
///
/// let config = MyConfig::from_vars([
///     ("LEADER_ELECTION_MYDB_SHARDS".to_owned(), "4".to_owned()),
///     ("LEADER_ELECTION_INSTANCE_ID".to_owned(), "worker-1".to_owned()),
/// ])?;
/// assert_eq!(config.shards, 4);
/// assert_eq!(config.options.instance_id, "worker-1");
/// # use leader_election::ElectionBuilder;
/// # Ok::<(), leader_election::ConfigError>(())
/// ```
pub trait BackendConfig: DeserializeOwned {
    /// The backend's part of its variables' names: `LEADER_ELECTION_<SECTION>_<FIELD>`.
    const SECTION: &'static str;
    /// Fields read from a variable of another name, as `(name, field)` pairs (see
    /// [`env::load_with_aliases`]). Default: none.
    const ALIASES: &'static [(&'static str, &'static str)] = &[];
    /// The backend's builder.
    type Builder: ElectionBuilder;

    /// The election options held in the configuration.
    fn options(&self) -> &LeaderElectionOptions;

    /// A builder holding this configuration; its [`build`](ElectionBuilder::build) or
    /// [`build_store`](ElectionBuilder::build_store) checks it.
    fn into_builder(self) -> Self::Builder;

    /// The configuration from environment variables: the backend's own fields as
    /// `LEADER_ELECTION_<SECTION>_<FIELD>` (the backend's docs list them), and every election
    /// option as `LEADER_ELECTION_<FIELD>` (see [`LeaderElectionOptions::from_env`]). Values
    /// are read by [`env`](mod@env); fields without a variable take their defaults.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable that does not parse or names no setting, or the
    /// first option rule broken.
    fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(env::vars())
    }

    /// [`from_env`](Self::from_env) with the given `(name, value)` pairs instead of the
    /// process environment.
    ///
    /// # Errors
    /// As for [`from_env`](Self::from_env).
    fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let config: Self = env::load_with_aliases(Self::SECTION, Self::ALIASES, vars)?;
        config.options().validate()?;
        Ok(config)
    }
}
