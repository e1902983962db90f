//! [`service_setters!`](crate::service_setters): the setters every AWS backend's builder
//! shares.

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
