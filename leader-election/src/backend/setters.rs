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
