//! What every AWS backend's builder shares: its service setters
//! ([`service_setters!`](crate::service_setters)) and its checks ([`Target::check`]).

use leader_election::store::conditional::{Connection, ServiceSettings, check_key};
use leader_election::{BuildError, LeaderElectionOptions};

/// The region used when neither the builder nor the AWS configuration names one (an
/// S3-compatible store or a local emulator usually ignores it, but requests must be signed for
/// some region).
pub const DEFAULT_REGION: &str = "us-east-1";

/// The setters of an AWS backend's builder that say how to reach the service, as inherent
/// methods (so that a caller needs no trait in scope): `endpoint` (the service's URL),
/// `region` (the region requests are signed for) and `static_credentials` (an access key
/// instead of the AWS credential chain). They fill the builder's
/// [`ServiceSettings`](crate::ServiceSettings) field, which the store checks when it is built
/// ([`ServiceSettings::connection`](crate::ServiceSettings::connection)); the secret never
/// appears in `Debug` output.
///
/// Each setter takes the documentation written before its name:
///
/// ```
/// use leader_election_aws::ServiceSettings;
///
/// #[derive(Default)]
/// pub struct MyBuilder {
///     service: ServiceSettings,
/// }
///
/// leader_election_aws::service_setters! {
///     MyBuilder { service }
///     /// The service's URL.
///     endpoint;
///     /// The region requests are signed for.
///     region;
///     /// An access key instead of the AWS credential chain.
///     static_credentials;
/// }
///
/// let builder = MyBuilder::default()
///     .endpoint("http://127.0.0.1:5000")
///     .region("eu-west-1")
///     .static_credentials("test", "SECRET");
/// assert_eq!(builder.service.region.as_deref(), Some("eu-west-1"));
/// assert!(!format!("{:?}", builder.service).contains("SECRET"));
/// ```
#[macro_export]
macro_rules! service_setters {
    (
        $builder:ty { $field:ident }
        $(#[$endpoint:meta])* endpoint;
        $(#[$region:meta])* region;
        $(#[$credentials:meta])* static_credentials;
    ) => {
        impl $builder {
            $(#[$endpoint])*
            pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
                self.$field.endpoint = Some(endpoint.into());
                self
            }

            $(#[$region])*
            pub fn region(mut self, region: impl Into<String>) -> Self {
                self.$field.region = Some(region.into());
                self
            }

            $(#[$credentials])*
            pub fn static_credentials(
                mut self,
                access_key_id: impl Into<String>,
                secret_access_key: impl Into<String>,
            ) -> Self {
                self.$field.credentials =
                    Some((access_key_id.into(), secret_access_key.into()));
                self
            }
        }
    };
}

/// What an AWS backend's builder names, for its checks and their errors: the service, its
/// container (a bucket, a table) and object (an object, an item), the longest key the service
/// takes, and the settings that belong to a client given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The service, in errors (`S3`, `DynamoDB`).
    pub service: &'static str,
    /// What to set when no container is: the hint of [`BuildError::MissingConnection`].
    pub missing: &'static str,
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
    /// A builder's settings checked in this order: the election `options`; the `container`,
    /// required and checked by `check_container`; the `key` (`default_key` when none), by
    /// [`check_key`]; then the `service` settings, against a `client` given
    /// ([`ServiceSettings::connection`], with `others_set` the backend's own settings of the
    /// client).
    ///
    /// # Errors
    /// [`BuildError::Options`], [`BuildError::MissingConnection`], what `check_container`
    /// returns, [`BuildError::InvalidName`] for the key, [`BuildError::InvalidUrl`] and
    /// [`BuildError::ConflictingConnection`], the first that applies.
    #[allow(clippy::too_many_arguments)]
    pub fn check<C>(
        &self,
        options: &LeaderElectionOptions,
        container: Option<String>,
        check_container: impl FnOnce(&str) -> Result<(), BuildError>,
        key: Option<String>,
        default_key: &str,
        service: ServiceSettings,
        client: Option<C>,
        others_set: bool,
    ) -> Result<Checked<C>, BuildError> {
        options.validate()?;
        let container = container.ok_or(BuildError::MissingConnection {
            backend: self.service,
            hint: self.missing,
        })?;
        check_container(&container)?;
        let key = key.unwrap_or_else(|| default_key.to_owned());
        check_key(&key, self.max_key, self.service, self.object)?;
        let connection = service.connection(client, others_set, self.client_settings)?;
        Ok(Checked {
            container,
            key,
            connection,
        })
    }
}
