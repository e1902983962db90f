//! The SDK side of a store: the shared configuration its client is built from, and the client
//! itself, built at the first operation.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_smithy_types::retry::RetryConfig;
use aws_types::SdkConfig;
use aws_types::region::Region;
use leader_election::store::conditional::{Connection, ServiceSettings};
use tokio::sync::OnceCell;

use crate::DEFAULT_REGION;
use crate::wire::Wire;

/// One attempt per request: the election retries by itself, within the lease, and an SDK
/// retry would spend the operation's budget unseen.
#[must_use]
pub fn one_attempt() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(1)
}

/// The AWS configuration a service client is built from: the usual chain (environment,
/// profile files, web identity, ECS/EC2 metadata) with the `settings`' region and static
/// credentials (named `provider` in the SDK's logs) in its place where they are set, no
/// stalled-stream protection (the operation's own timeout bounds every request), and
/// [`DEFAULT_REGION`] when nothing names a region.
///
/// The `settings`' endpoint is not in it: a service's builder takes it (`endpoint_url`), so
/// that it wins over `AWS_ENDPOINT_URL_<SERVICE>` as well; nor is [`one_attempt`], which the
/// service's builder sets on a client given too.
pub async fn sdk_config(settings: &ServiceSettings, provider: &'static str) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled());
    if let Some(region) = &settings.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some((id, secret)) = &settings.credentials {
        loader = loader.credentials_provider(Credentials::new(
            id.clone(),
            secret.clone(),
            None,
            None,
            provider,
        ));
    }
    let shared = Box::pin(loader.load()).await;
    if shared.region().is_some() {
        return shared;
    }
    shared
        .into_builder()
        .region(Region::new(DEFAULT_REGION))
        .build()
}

/// A store's client of its service: the [`Connection`] the builder checked, the client built
/// from it at the first use (which cannot fail: missing credentials show at the first
/// request), and the [`Wire`] its interceptor feeds.
pub struct ServiceClient<C, T> {
    connection: Connection<C>,
    client: OnceCell<C>,
    wire: Arc<Wire<T>>,
}

impl<C, T> fmt::Debug for ServiceClient<C, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClient")
            .field("endpoint", &self.connection.endpoint())
            .field("built", &self.client.initialized())
            .finish_non_exhaustive()
    }
}

impl<C, T: Default> ServiceClient<C, T> {
    /// A client of `connection`, not built yet.
    #[must_use]
    pub fn new(connection: Connection<C>) -> Self {
        Self {
            connection,
            client: OnceCell::new(),
            wire: Arc::new(Wire::default()),
        }
    }
}

impl<C, T> ServiceClient<C, T> {
    /// How the store reaches its service.
    #[must_use]
    pub fn connection(&self) -> &Connection<C> {
        &self.connection
    }

    /// What the client's interceptor learned from the wire.
    #[must_use]
    pub fn wire(&self) -> &Wire<T> {
        &self.wire
    }

    /// The client, built by `build` from the connection and the wire (for its interceptor) at
    /// the first call.
    pub async fn get<'a, F, Fut>(&'a self, build: F) -> &'a C
    where
        F: FnOnce(&'a Connection<C>, Arc<Wire<T>>) -> Fut,
        Fut: Future<Output = C>,
    {
        self.client
            .get_or_init(|| build(&self.connection, Arc::clone(&self.wire)))
            .await
    }
}
