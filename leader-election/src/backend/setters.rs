//! [`config_setters!`](crate::backend::config_setters): a backend builder's setters for the
//! fields of the configuration it holds.

/// Writes the setters of a backend's builder that fill a field of the configuration the builder
/// holds, as inherent methods: each sets `Some(value)` in the field of the same name, so that the
/// builder and its configuration ([`BackendConfig`](crate::BackendConfig)) have one list of
/// settings, and [`into_builder`](crate::BackendConfig::into_builder) has nothing to map.
///
/// A setter written `name: impl Into<T>` takes anything that converts into `T`, and one written
/// `name: T` takes a `T`; either way the value is converted into the field's type (a
/// [`Secret`](crate::backend::Secret) from a `String`, for one). Each setter takes the
/// documentation written before its name.
///
/// ```
/// use std::time::Duration;
/// use leader_election::backend::Secret;
///
/// #[derive(Debug, Default)]
/// pub struct MyConfig {
///     pub url: Option<Secret>,
///     pub table: Option<String>,
///     pub timeout: Option<Duration>,
/// }
///
/// #[derive(Debug, Default)]
/// pub struct MyBuilder {
///     config: MyConfig,
/// }
///
/// leader_election::backend::config_setters! {
///     MyBuilder { config }
///     /// The server's URL.
///     url: impl Into<String>;
///     /// The table holding the leases.
///     table: impl Into<String>;
///     /// How long a request may take.
///     timeout: Duration;
/// }
///
/// let builder = MyBuilder::default()
///     .url("db://app:hunter2@db")
///     .table("leases")
///     .timeout(Duration::from_secs(2));
/// assert_eq!(builder.config.table.as_deref(), Some("leases"));
/// assert_eq!(builder.config.timeout, Some(Duration::from_secs(2)));
/// assert!(!format!("{builder:?}").contains("hunter2"));
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __config_setters {
    ($builder:ty { $field:ident } $($setters:tt)*) => {
        impl $builder {
            $crate::__config_setters!(@setters $field $($setters)*);
        }
    };
    (@setters $field:ident) => {};
    (@setters $field:ident $(#[$meta:meta])* $name:ident: impl Into<$ty:ty>; $($rest:tt)*) => {
        $(#[$meta])*
        pub fn $name(mut self, $name: impl ::core::convert::Into<$ty>) -> Self {
            let value: $ty = ::core::convert::Into::into($name);
            self.$field.$name = ::core::option::Option::Some(::core::convert::Into::into(value));
            self
        }
        $crate::__config_setters!(@setters $field $($rest)*);
    };
    (@setters $field:ident $(#[$meta:meta])* $name:ident: $ty:ty; $($rest:tt)*) => {
        $(#[$meta])*
        pub fn $name(mut self, $name: $ty) -> Self {
            self.$field.$name = ::core::option::Option::Some(::core::convert::Into::into($name));
            self
        }
        $crate::__config_setters!(@setters $field $($rest)*);
    };
}

/// A backend builder holding `config` (an expression of the backend's configuration type):
/// `Builder { config, ..Default::default() }`, with, when the backend crate's feature `tls` is
/// on, the configuration's `tls` files ([`TlsFiles`](crate::backend::tls::TlsFiles)) moved to
/// the builder's TLS settings ([`TlsBuilder::tls_files`](crate::TlsBuilder::tls_files)), which
/// its `tls_*` setters then extend. For a configuration's
/// [`into_builder`](crate::BackendConfig::into_builder) in a backend whose configuration has
/// its `tls` field under its own feature `tls`:
///
/// ```
/// #[derive(Default)]
/// struct MyConfig {
///     table: Option<String>,
/// }
///
/// #[derive(Default)]
/// struct MyLeaderElectionBuilder {
///     config: MyConfig,
///     pool: Option<String>,
/// }
///
/// // In `impl BackendConfig for MyConfig`:
/// fn into_builder(config: MyConfig) -> MyLeaderElectionBuilder {
///     leader_election::backend::builder_with_tls!(MyLeaderElectionBuilder { config: config })
/// }
///
/// let builder = into_builder(MyConfig { table: Some("leases".to_owned()) });
/// assert_eq!(builder.config.table.as_deref(), Some("leases"));
/// assert!(builder.pool.is_none());
/// ```
///
/// The builder implements [`Default`] and, with feature `tls`, [`TlsBuilder`](crate::TlsBuilder);
/// the `#[cfg(feature = "tls")]` the macro writes is the backend crate's own.
#[doc(hidden)]
#[macro_export]
macro_rules! __builder_with_tls {
    ($builder:ident { $field:ident: $config:expr }) => {{
        #[allow(unused_mut)]
        let mut config = $config;
        #[cfg(feature = "tls")]
        let files = ::core::mem::take(&mut config.tls);
        let builder = $builder {
            $field: config,
            ..::core::default::Default::default()
        };
        #[cfg(feature = "tls")]
        let builder = $crate::TlsBuilder::tls_files(builder, files);
        builder
    }};
}

/// A backend builder's [`ElectionBuilder`](crate::ElectionBuilder) impl, for a builder that
/// holds its configuration in a field `config` (with its options in `config.options`):
/// [`election_options`](crate::ElectionBuilder::election_options) are the configuration's, and
/// [`build_store`](crate::ElectionBuilder::build_store) checks them
/// ([`LeaderElectionOptions::validate`](crate::LeaderElectionOptions::validate)) before it
/// calls the backend's function, which makes the store from the builder and checks the rest.
/// The errors are [`BuildError`](crate::BuildError)s; the documentation written before the
/// builder's name is `build_store`'s.
///
/// ```
/// use leader_election::{BuildError, ElectionBuilder, LeaderElectionOptions, MemoryLeaseStore};
///
/// #[derive(Default)]
/// struct MyConfig {
///     options: LeaderElectionOptions,
/// }
///
/// #[derive(Default)]
/// struct MyLeaderElectionBuilder {
///     config: MyConfig,
/// }
///
/// leader_election::backend::election_builder! {
///     /// The store alone.
///     MyLeaderElectionBuilder => MemoryLeaseStore, store_from
/// }
///
/// // Called with options already checked.
/// fn store_from(_builder: MyLeaderElectionBuilder) -> Result<MemoryLeaseStore, BuildError> {
///     Ok(MemoryLeaseStore::new())
/// }
///
/// let election = MyLeaderElectionBuilder::default().instance_id("a").build().unwrap();
/// assert_eq!(election.options().instance_id, "a");
/// let refused = MyLeaderElectionBuilder::default().renew_interval(std::time::Duration::from_secs(99));
/// assert!(matches!(refused.build_store(), Err(BuildError::Options(_))));
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __election_builder {
    ($(#[$meta:meta])* $builder:ty => $store:ty, $build:path) => {
        impl $crate::ElectionBuilder for $builder {
            type Store = $store;
            type Error = $crate::BuildError;

            fn election_options(&mut self) -> &mut $crate::LeaderElectionOptions {
                &mut self.config.options
            }

            $(#[$meta])*
            fn build_store(self) -> ::core::result::Result<$store, $crate::BuildError> {
                self.config.options.validate()?;
                $build(self)
            }
        }
    };
}

/// A backend configuration's [`BackendConfig`](crate::BackendConfig) impl, for a configuration
/// with its election options in a field `options` whose builder holds it in a field `config`:
/// its section (and the aliases of its variables, if any), its options, and an
/// [`into_builder`](crate::BackendConfig::into_builder) that moves it into the builder (with
/// `with tls`, through [`builder_with_tls!`](crate::backend::builder_with_tls), for a
/// configuration with a `tls` field under the backend's feature `tls`). The documentation
/// written before the configuration's name is the impl's.
///
/// ```
/// use leader_election::{BackendConfig, BuildError, LeaderElectionOptions, MemoryLeaseStore};
///
/// #[derive(Default, serde::Deserialize)]
/// #[serde(default, deny_unknown_fields)]
/// struct MyConfig {
///     table: Option<String>,
///     options: LeaderElectionOptions,
/// }
///
/// #[derive(Default)]
/// struct MyLeaderElectionBuilder {
///     config: MyConfig,
/// }
/// # leader_election::backend::election_builder!(MyLeaderElectionBuilder => MemoryLeaseStore, store_from);
/// # fn store_from(_: MyLeaderElectionBuilder) -> Result<MemoryLeaseStore, BuildError> {
/// #     Ok(MemoryLeaseStore::new())
/// # }
///
/// leader_election::backend::backend_config! {
///     /// Its variables: `LEADER_ELECTION_MYDB_TABLE` (or `..._TABLE_NAME`).
///     MyConfig: "MYDB", aliases [("table_name", "table")] => MyLeaderElectionBuilder
/// }
///
/// let config = MyConfig::from_vars([
///     ("LEADER_ELECTION_MYDB_TABLE_NAME".to_owned(), "leases".to_owned()),
/// ])?;
/// assert_eq!(config.into_builder().config.table.as_deref(), Some("leases"));
/// # Ok::<(), leader_election::ConfigError>(())
/// ```
#[doc(hidden)]
#[macro_export]
macro_rules! __backend_config {
    ($(#[$meta:meta])* $config:ty: $section:literal $(, aliases $aliases:expr)? => $builder:ident $(with $tls:ident)?) => {
        $(#[$meta])*
        impl $crate::BackendConfig for $config {
            const SECTION: &'static str = $section;
            $(const ALIASES: &'static [(&'static str, &'static str)] = &$aliases;)?
            type Builder = $builder;

            fn options(&self) -> &$crate::LeaderElectionOptions {
                &self.options
            }

            // A builder holding only its configuration needs no struct update.
            #[allow(clippy::needless_update)]
            fn into_builder(self) -> $builder {
                $crate::__backend_config!(@into $builder, self $(, $tls)?)
            }
        }
    };
    (@into $builder:ident, $config:expr) => {
        $builder {
            config: $config,
            ..::core::default::Default::default()
        }
    };
    (@into $builder:ident, $config:expr, tls) => {
        $crate::__builder_with_tls!($builder { config: $config })
    };
}
