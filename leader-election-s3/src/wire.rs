//! The store's SDK client, and the requests it sent, by method (the service's clock, from
//! every response's `Date`, is [`leader_election_aws::Wire`]'s).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_s3::config::http::HttpRequest;
use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
use leader_election::store::conditional::Connection;
use leader_election_aws::{ServiceClient, Tally, Wire, WireInterceptor, one_attempt, sdk_config};

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

/// The store's client of S3, and what it learned from the wire.
pub(crate) type S3Client = ServiceClient<aws_sdk_s3::Client, Methods>;

/// The requests sent, by HTTP method.
#[derive(Debug, Default)]
pub(crate) struct Methods {
    head: AtomicU64,
    get: AtomicU64,
    put: AtomicU64,
    other: AtomicU64,
}

impl Methods {
    pub(crate) fn counts(&self) -> RequestCounts {
        RequestCounts {
            head: self.head.load(Ordering::Relaxed),
            get: self.get.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }
}

impl Tally for Methods {
    fn sent(&self, request: &HttpRequest) {
        let counter = match request.method() {
            "HEAD" => &self.head,
            "GET" => &self.get,
            "PUT" => &self.put,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The client of `connection`, with one attempt per request and an interceptor feeding `wire`.
pub(crate) async fn build_client(
    connection: &Connection<aws_sdk_s3::Client>,
    force_path_style: bool,
    wire: Arc<Wire<Methods>>,
) -> aws_sdk_s3::Client {
    let builder = match connection {
        Connection::Client(client) => client.config().to_builder(),
        Connection::Settings(settings) => {
            let shared = sdk_config(settings, "leader-election-s3").await;
            let builder = aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(force_path_style)
                // Checksums only where S3 requires them: S3-compatible stores do not all accept
                // the SDK's default CRC trailers.
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
            match &settings.endpoint {
                Some(endpoint) => builder.endpoint_url(endpoint.clone()),
                None => builder,
            }
        }
    };
    let config = builder
        .retry_config(one_attempt())
        .interceptor(WireInterceptor::new("leader-election-s3-wire", wire))
        .build();
    aws_sdk_s3::Client::from_conf(config)
}
