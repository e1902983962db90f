//! The store's SDK client, and what it learns from the wire: the service's clock (`Date`)
//! from every response, and a count of the requests sent, by method.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use leader_election::store::conditional::{ServiceClock, ServiceSettings};

use crate::DEFAULT_REGION;
use crate::store::Connection;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The requests a store has sent, by HTTP method (every attempt counts; the store sets the
/// SDK to make one attempt per request). For measuring what an election costs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestCounts {
    /// `HEAD` requests (a follower's poll).
    pub head: u64,
    /// `GET` requests (reading the lease record after it changed; reading the election
    /// record).
    pub get: u64,
    /// `PUT` requests (acquisitions, renewals, releases; writing the election record;
    /// creating a bucket).
    pub put: u64,
    /// Any other method.
    pub other: u64,
}

impl RequestCounts {
    /// All requests.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.head + self.get + self.put + self.other
    }
}

/// Shared between a store and the interceptor installed in its client.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    /// The latest `Date` received.
    pub(crate) clock: ServiceClock,
    head: AtomicU64,
    get: AtomicU64,
    put: AtomicU64,
    other: AtomicU64,
}

impl Wire {
    pub(crate) fn counts(&self) -> RequestCounts {
        RequestCounts {
            head: self.head.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
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
}

/// The client of `connection`, with one attempt per request and an interceptor feeding `wire`.
pub(crate) async fn build_client(
    connection: &Connection,
    force_path_style: bool,
    wire: &Arc<Wire>,
) -> aws_sdk_s3::Client {
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
                    "leader-election-s3",
                ));
            }
            let shared = Box::pin(loader.load()).await;
            let mut builder = aws_sdk_s3::config::Builder::from(&shared)
                .retry_config(RetryConfig::standard().with_max_attempts(1))
                .force_path_style(force_path_style)
                // Checksums only where S3 requires them: S3-compatible stores do not all accept
                // the SDK's default CRC trailers.
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
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
    aws_sdk_s3::Client::from_conf(config)
}

/// The SDK interceptor feeding a [`Wire`].
#[derive(Debug)]
pub(crate) struct WireInterceptor(pub(crate) Arc<Wire>);

impl Intercept for WireInterceptor {
    fn name(&self) -> &'static str {
        "leader-election-s3-wire"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let counter = match context.request().method() {
            "HEAD" => &self.0.head,
            "GET" => &self.0.get,
            "PUT" => &self.0.put,
            _ => &self.0.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
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
}
