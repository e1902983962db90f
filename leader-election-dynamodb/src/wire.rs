//! The store's SDK client, and the requests it sent, by DynamoDB operation (the service's
//! clock, from every response's `Date`, is [`leader_election_aws::Wire`]'s).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::config::http::HttpRequest;
use leader_election::store::conditional::Connection;
use leader_election_aws::{ServiceClient, Tally, Wire, WireInterceptor, one_attempt, sdk_config};

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

/// The store's client of DynamoDB, and what it learned from the wire.
pub(crate) type DynamoDbClient = ServiceClient<aws_sdk_dynamodb::Client, Operations>;

/// The requests sent, by DynamoDB operation.
#[derive(Debug, Default)]
pub(crate) struct Operations {
    get_item: AtomicU64,
    put_item: AtomicU64,
    other: AtomicU64,
}

impl Operations {
    pub(crate) fn counts(&self) -> RequestCounts {
        RequestCounts {
            get_item: self.get_item.load(Ordering::Relaxed),
            put_item: self.put_item.load(Ordering::Relaxed),
            other: self.other.load(Ordering::Relaxed),
        }
    }

    /// Counts one request, by its `X-Amz-Target` (`DynamoDB_20120810.GetItem` ...).
    fn count(&self, target: Option<&str>) {
        let operation = target.and_then(|t| t.rsplit('.').next());
        let counter = match operation {
            Some("GetItem") => &self.get_item,
            Some("PutItem") => &self.put_item,
            _ => &self.other,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Tally for Operations {
    fn sent(&self, request: &HttpRequest) {
        self.count(request.headers().get("x-amz-target"));
    }
}

/// The client of `connection`, with one attempt per request and an interceptor feeding `wire`.
pub(crate) async fn build_client(
    connection: &Connection<aws_sdk_dynamodb::Client>,
    wire: Arc<Wire<Operations>>,
) -> aws_sdk_dynamodb::Client {
    let builder = match connection {
        Connection::Client(client) => client.config().to_builder(),
        Connection::Settings(settings) => {
            let shared = sdk_config(settings, "leader-election-dynamodb").await;
            let builder = aws_sdk_dynamodb::config::Builder::from(&shared);
            match &settings.endpoint {
                Some(endpoint) => builder.endpoint_url(endpoint.clone()),
                None => builder,
            }
        }
    };
    let config = builder
        .retry_config(one_attempt())
        .interceptor(WireInterceptor::new("leader-election-dynamodb-wire", wire))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_operation() {
        let operations = Operations::default();
        operations.count(Some("DynamoDB_20120810.GetItem"));
        operations.count(Some("DynamoDB_20120810.PutItem"));
        operations.count(Some("DynamoDB_20120810.PutItem"));
        operations.count(Some("DynamoDB_20120810.DeleteItem"));
        operations.count(None);
        let counts = operations.counts();
        assert_eq!((counts.get_item, counts.put_item, counts.other), (1, 2, 2));
        assert_eq!(counts.total(), 5);
    }
}
