//! The store's SDK client, and what it learns from the wire: the service's clock (`Date`) from every response,
//! and a count of the requests sent, by DynamoDB operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig,
};
use leader_election::store::conditional::{ServiceClock, ServiceSettings};

use crate::DEFAULT_REGION;
use crate::store::Connection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The requests a store has sent, by DynamoDB operation (every attempt counts; the store sets
/// the SDK to make one attempt per request). For measuring what an election costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestCounts {
    /// `GetItem` requests (a follower's poll, strongly consistent; reading the election
    /// record).
    pub get_item: u64,
    /// `PutItem` requests (acquisitions, renewals, releases, every one conditional; writing
    /// the election record).
    pub put_item: u64,
    /// Any other operation (`DeleteItem` of the probe at `connect`, `CreateTable`,
    /// `DescribeTable`).
    pub other: u64,
}

impl RequestCounts {
    /// All requests.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.get_item + self.put_item + self.other
    }
}

/// Shared between a store and the interceptor installed in its client.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    /// The latest `Date` received.
    pub(crate) clock: ServiceClock,
    get_item: AtomicU64,
    put_item: AtomicU64,
    other: AtomicU64,
}

impl Wire {
    pub(crate) fn counts(&self) -> RequestCounts {
        RequestCounts {
            get_item: self.get_item.load(Ordering::Relaxed),
            put_item: self.put_item.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }

    fn saw_date(&self, value: &str) {
        if let Ok(time) = httpdate::parse_http_date(value)
            && let Ok(since_epoch) = time.duration_since(UNIX_EPOCH)
        {
            self.clock.saw(since_epoch.as_secs());
        }
    }

    /// Counts one request, by its `X-Amz-Target` (`DynamoDB_20120810.GetItem` ...).
    fn sent(&self, target: Option<&str>) {
        let operation = target.and_then(|t| t.rsplit('.').next());
        let counter = match operation {
            Some("GetItem") => &self.get_item,
            Some("PutItem") => &self.put_item,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The client of `connection`, with one attempt per request and an interceptor feeding `wire`.
pub(crate) async fn build_client(
    connection: &Connection,
    wire: &Arc<Wire>,
) -> aws_sdk_dynamodb::Client {
    let interceptor = WireInterceptor(Arc::clone(wire));
    let config = match connection {
        Connection::Client(client) => client
            .config()
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .interceptor(interceptor)
            .build(),
        Connection::Settings(ServiceSettings {
            endpoint,
            region,
            credentials,
        }) => {
            let mut loader = aws_config::defaults(BehaviorVersion::latest());
            if let Some(region) = region {
                loader = loader.region(Region::new(region.clone()));
            }
            if let Some((id, secret)) = credentials {
                loader = loader.credentials_provider(Credentials::new(
                    id.clone(),
                    secret.clone(),
                    None,
                    None,
                    "leader-election-dynamodb",
                ));
            }
            let shared = Box::pin(loader.load()).await;
            let mut builder = aws_sdk_dynamodb::config::Builder::from(&shared)
                .retry_config(RetryConfig::standard().with_max_attempts(1))
                .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
                .interceptor(interceptor);
            if shared.region().is_none() {
                builder = builder.region(Region::new(DEFAULT_REGION));
            }
            if let Some(endpoint) = endpoint {
                builder = builder.endpoint_url(endpoint.clone());
            }
            builder.build()
        }
    };
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// The SDK interceptor feeding a [`Wire`].
#[derive(Debug)]
pub(crate) struct WireInterceptor(pub(crate) Arc<Wire>);

impl Intercept for WireInterceptor {
    fn name(&self) -> &'static str {
        "leader-election-dynamodb-wire"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.sent(context.request().headers().get("x-amz-target"));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            self.0.saw_date(date);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_only_move_forward() {
        let wire = Wire::default();
        wire.saw_date("Tue, 01 Dec 2026 19:37:21 GMT");
        assert_eq!(wire.clock.latest(), 1_796_153_841);
        wire.saw_date("Tue, 01 Dec 2026 19:37:20 GMT");
        assert_eq!(wire.clock.latest(), 1_796_153_841);
        wire.saw_date("not a date");
        assert_eq!(wire.clock.latest(), 1_796_153_841);
    }

    #[test]
    fn requests_are_counted_by_operation() {
        let wire = Wire::default();
        wire.sent(Some("DynamoDB_20120810.GetItem"));
        wire.sent(Some("DynamoDB_20120810.PutItem"));
        wire.sent(Some("DynamoDB_20120810.PutItem"));
        wire.sent(Some("DynamoDB_20120810.DeleteItem"));
        wire.sent(None);
        let counts = wire.counts();
        assert_eq!((counts.get_item, counts.put_item, counts.other), (1, 2, 2));
        assert_eq!(counts.total(), 5);
    }
}
