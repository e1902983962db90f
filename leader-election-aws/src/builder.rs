//! What every AWS backend's builder shares: its service setters
//! ([`service_setters!`](crate::service_setters)), the client a caller gives it
//! ([`GivenClient`]), and its checks ([`Target::check`]).

use std::fmt;

use leader_election::BuildError;
use leader_election::store::conditional::{Connection, ServiceSettings, check_key};

/// The region used when neither the builder nor the AWS configuration names one (an
/// S3-compatible store or a local emulator usually ignores it, but requests must be signed for
/// some region).
pub const DEFAULT_REGION: &str = "us-east-1";

/// The election key (the name of an S3 object, the `pk` of a DynamoDB item) used when none is
/// set.
pub const DEFAULT_KEY: &str = "leader-election-lock";

/// The setters of an AWS backend's builder that say how to reach the service, as inherent
/// methods (so that a caller needs no trait in scope): `endpoint` (the service's URL),
/// `region` (the region requests are signed for), `static_credentials` (an access key
/// instead of the AWS credential chain) and `client` (a client of the SDK built by the
/// caller, instead of all three).
///
/// The builder holds its configuration (in the field named first) and the client given (in
/// the [`GivenClient`] named second). The first three setters (`endpoint` and `region` through
/// [`config_setters!`](leader_election::backend::config_setters)) fill the configuration's fields
/// `endpoint`, `region`, `access_key_id` (`Option<String>` each) and `secret_access_key`
/// (`Option<`[`Secret`](leader_election::backend::Secret)`>`), which every AWS backend's
/// configuration has; the macro also writes the builder's
/// `service_settings()`, those four fields as the [`ServiceSettings`](crate::ServiceSettings)
/// that [`Target::check`] checks against the client given when the store is built. The secret
/// never appears in `Debug` output.
///
/// Each setter takes the documentation written before its name:
///
/// ```
/// use leader_election::backend::Secret;
/// use leader_election_aws::GivenClient;
///
/// #[derive(Debug, Default)]
/// pub struct MyConfig {
///     pub endpoint: Option<String>,
///     pub region: Option<String>,
///     pub access_key_id: Option<String>,
///     pub secret_access_key: Option<Secret>,
/// }
///
/// #[derive(Debug, Default)]
/// pub struct MyBuilder {
///     config: MyConfig,
///     client: GivenClient<String>,
/// }
///
/// leader_election_aws::service_setters! {
///     MyBuilder { config, client: String }
///     /// The service's URL.
///     endpoint;
///     /// The region requests are signed for.
///     region;
///     /// An access key instead of the AWS credential chain.
///     static_credentials;
///     /// A client of the caller's instead of all three.
///     client;
/// }
///
/// let builder = MyBuilder::default()
///     .endpoint("http://127.0.0.1:5000")
///     .region("eu-west-1")
///     .static_credentials("test", "SECRET");
/// assert_eq!(builder.config.region.as_deref(), Some("eu-west-1"));
/// assert!(!format!("{builder:?}").contains("SECRET"));
/// let settings = builder.service_settings();
/// assert_eq!(settings.credentials, Some(("test".to_owned(), "SECRET".to_owned())));
/// assert!(MyBuilder::default().client("mine".to_owned()).client.is_set());
/// ```
#[macro_export]
macro_rules! service_setters {
    (
        $builder:ty { $config:ident, $client:ident: $client_ty:ty }
        $(#[$endpoint:meta])* endpoint;
        $(#[$region:meta])* region;
        $(#[$credentials:meta])* static_credentials;
        $(#[$client_doc:meta])* client;
    ) => {
        ::leader_election::backend::config_setters! {
            $builder { $config }
            $(#[$endpoint])*
            endpoint: impl Into<::std::string::String>;
            $(#[$region])*
            region: impl Into<::std::string::String>;
        }

        impl $builder {
            $(#[$credentials])*
            pub fn static_credentials(
                mut self,
                access_key_id: impl ::core::convert::Into<::std::string::String>,
                secret_access_key: impl ::core::convert::Into<::std::string::String>,
            ) -> Self {
                let secret_access_key: ::std::string::String = secret_access_key.into();
                self.$config.access_key_id = ::core::option::Option::Some(access_key_id.into());
                self.$config.secret_access_key =
                    ::core::option::Option::Some(secret_access_key.into());
                self
            }

            $(#[$client_doc])*
            pub fn client(mut self, client: $client_ty) -> Self {
                self.$client = $crate::GivenClient::new(client);
                self
            }

            /// The configuration's `endpoint`, `region` and static credentials (only when both
            /// the access key id and its secret are set), for the store's checks
            /// (`leader_election_aws::Target::check`).
            pub(crate) fn service_settings(&self) -> $crate::ServiceSettings {
                let config = &self.$config;
                $crate::ServiceSettings::from_config(
                    config.endpoint.clone(),
                    config.region.clone(),
                    config.access_key_id.clone(),
                    config
                        .secret_access_key
                        .as_ref()
                        .map(|secret| secret.expose().to_owned()),
                )
            }
        }
    };
}

/// The client of the SDK that a caller gave an AWS backend's builder, if any. Its `Debug`
/// says only whether one is set (a client's own is long, and shows its whole configuration).
#[derive(Clone)]
pub struct GivenClient<C>(Option<C>);

impl<C> GivenClient<C> {
    /// The client given.
    #[must_use]
    pub fn new(client: C) -> Self {
        Self(Some(client))
    }

    /// Whether a client is given.
    #[must_use]
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// The client given, if any.
    #[must_use]
    pub fn into_inner(self) -> Option<C> {
        self.0
    }
}

impl<C> Default for GivenClient<C> {
    fn default() -> Self {
        Self(None)
    }
}

impl<C> fmt::Debug for GivenClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0.as_ref().map(|_| "<set>"), f)
    }
}

/// What an AWS backend's builder names, for its checks and their errors: the service, its
/// container (a bucket, a table) and its naming rules, its object (an object, an item), the
/// longest key the service takes, and the settings that belong to a client given.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The service, in errors (`S3`, `DynamoDB`).
    pub service: &'static str,
    /// What to set when no container is: the hint of [`BuildError::MissingConnection`].
    pub missing: &'static str,
    /// The service's naming rules of a container: [`BuildError::InvalidName`] for a name
    /// that breaks one.
    pub check_container: fn(&str) -> Result<(), BuildError>,
    /// An object of the service, in errors (`object`, `item`).
    pub object: &'static str,
    /// The longest key the service takes, in bytes (the election key may take that less the
    /// candidate object's suffix).
    pub max_key: usize,
    /// The settings that belong to a client given, in errors.
    pub client_settings: &'static str,
}

/// What [`Target::check`] let through: the container, the election key, and how to reach the
/// service.
#[derive(Debug)]
pub struct Checked<C> {
    /// The container (bucket, table) holding the election.
    pub container: String,
    /// The election key.
    pub key: String,
    /// The client given, or the settings to build one from.
    pub connection: Connection<C>,
}

impl Target {
    /// A builder's settings, its options already checked, checked in this order: the
    /// `container`, required and checked by [`check_container`](Self::check_container); the `key`
    /// ([`DEFAULT_KEY`] when none), by [`check_key`]; then the `service` settings, against a
    /// `client` given ([`ServiceSettings::connection`], with `others_set` the backend's own
    /// settings of the client).
    ///
    /// # Errors
    /// [`BuildError::MissingConnection`], what `check_container` returns,
    /// [`BuildError::InvalidName`] for the key, [`BuildError::InvalidUrl`] and
    /// [`BuildError::ConflictingConnection`], the first that applies.
    pub fn check<C>(
        &self,
        container: Option<String>,
        key: Option<String>,
        service: ServiceSettings,
        client: GivenClient<C>,
        others_set: bool,
    ) -> Result<Checked<C>, BuildError> {
        let container = container.ok_or(BuildError::MissingConnection {
            backend: self.service,
            hint: self.missing,
        })?;
        (self.check_container)(&container)?;
        let key = key.unwrap_or_else(|| DEFAULT_KEY.to_owned());
        check_key(&key, self.max_key, self.service, self.object)?;
        let connection =
            service.connection(client.into_inner(), others_set, self.client_settings)?;
        Ok(Checked {
            container,
            key,
            connection,
        })
    }
}
