//! The store's requests: the SDK client (built at the first operation), one request within an
//! operation's budget, reading an item, conditional writes, and the table created when
//! missing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{
    BehaviorVersion, Credentials, Region, StalledStreamProtectionConfig,
};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use leader_election::{Operation, Result};
use tokio::time::Instant;

use super::{Budget, Condition, Connection, DynamoDbLeaseStore, Look};
use crate::builder::DEFAULT_REGION;
use crate::clock::{Version, Watch};
use crate::error::{Failure, RequestFailure};
use crate::record::{Item, PK, Record, Seen, VERSION, new_version, version_of};
use crate::wire::WireInterceptor;

impl DynamoDbLeaseStore {
    pub(super) async fn client_ref(&self) -> &aws_sdk_dynamodb::Client {
        self.client
            .get_or_init(|| async {
                let interceptor = WireInterceptor(Arc::clone(&self.wire));
                let config = match &self.connection {
                    Connection::Client(client) => client
                        .config()
                        .to_builder()
                        .retry_config(RetryConfig::standard().with_max_attempts(1))
                        .interceptor(interceptor)
                        .build(),
                    Connection::Settings {
                        endpoint,
                        region,
                        credentials,
                    } => {
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
            })
            .await
    }

    /// Sends one request with what is left of `budget`.
    pub(super) async fn send<T, E>(
        &self,
        budget: &Budget,
        request: impl Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
    ) -> std::result::Result<T, RequestFailure>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let left = budget.left();
        if left.is_zero() {
            return Err(RequestFailure::out_of_time(budget.total));
        }
        // The SDK's futures are large: kept on the heap, so that the operations' own futures
        // (and the stacks polling them) stay small.
        match tokio::time::timeout(left, Box::pin(request)).await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(err)) => Err(RequestFailure::from_sdk(&err)),
            Err(_) => Err(RequestFailure::timed_out(left)),
        }
    }

    /// One strongly consistent `GetItem` of `key`, creating the table first when it is missing
    /// and may be created (a missing table holds no item).
    pub(super) async fn get_item(
        &self,
        budget: &Budget,
        key: &str,
    ) -> std::result::Result<Option<Item>, RequestFailure> {
        let client = self.client_ref().await;
        let get = client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(key.to_owned()))
            .consistent_read(true);
        match self.send(budget, get.send()).await {
            Ok(output) => Ok(output.item),
            Err(f) if f.is_missing_table() && self.create_table => {
                self.ensure_table(budget).await?;
                Ok(None)
            }
            Err(f) => Err(f),
        }
    }

    /// Reads the lease item (one strongly consistent `GetItem`) and updates the watch.
    pub(super) async fn look(&self, budget: &Budget, operation: Operation) -> Result<Look> {
        match self.get_item(budget, &self.key).await {
            Ok(Some(item)) => {
                let version = version_of(&item);
                let seen = Seen::decode(&item);
                let new =
                    self.state().watch.as_ref().map(|w| &w.version) != Some(&Some(version.clone()));
                if let Seen::Unreadable(reason) = &seen
                    && new
                {
                    tracing::warn!(
                        election = %self.election_name,
                        %reason,
                        "the lease item is not a record of this crate: held by an unknown \
                         holder until it stays unchanged for a lease"
                    );
                }
                Ok(self.observe(Some(version), seen))
            }
            Ok(None) => Ok(self.observe(None, Seen::Missing)),
            Err(f) if f.is_missing_table() => Err(self.no_table(operation)),
            Err(f) => Err(f.into_error(operation, false)),
        }
    }

    /// Records that the item is at `version` holding `seen`, as of a response just received:
    /// the watch restarts when the version is new.
    pub(super) fn observe(&self, version: Option<Version>, seen: Seen) -> Look {
        let now = Instant::now();
        let date = self.wire.latest_date();
        let mut state = self.state();
        let watch = match state.watch.take() {
            Some(watch) if watch.version == version => watch,
            _ => Watch {
                version: version.clone(),
                since: now,
                date,
            },
        };
        state.watch = Some(watch.clone());
        match &seen {
            Seen::Record(record) => {
                state.present_seen = true;
                state.highest_token = state.highest_token.max(record.token);
                if record.holder.is_some() {
                    state.highest_held = state.highest_held.max(record.token);
                }
                state.longest_lease = state.longest_lease.max(record.lease());
            }
            Seen::Unreadable(_) => state.present_seen = true,
            Seen::Missing => {}
        }
        let condition = version.map(|version| {
            if matches!(seen, Seen::Unreadable(_)) && version.0.starts_with('~') {
                Condition::Foreign
            } else {
                Condition::Version(version.0)
            }
        });
        Look {
            condition,
            seen,
            watch,
        }
    }

    /// Writes `record` to the lease item on `condition`; answers its new version.
    pub(super) async fn put(
        &self,
        budget: &Budget,
        condition: &Condition,
        record: &Record,
    ) -> std::result::Result<String, RequestFailure> {
        let version = new_version();
        self.put_item(budget, condition, record.encode(&self.key, &version))
            .await?;
        Ok(version)
    }

    /// Writes `item` (its key and version in it) on `condition`, creating the table first if
    /// it is missing and may be created. Every write of this store, the lease item's, the
    /// candidate record's, the probes' and the election record's, is this one request.
    pub(super) async fn put_item(
        &self,
        budget: &Budget,
        condition: &Condition,
        item: Item,
    ) -> std::result::Result<(), RequestFailure> {
        let client = self.client_ref().await;
        let mut created_table = false;
        loop {
            let put = client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()));
            let put = match condition {
                Condition::Missing => put
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", PK),
                Condition::Version(version) => put
                    .condition_expression("#v = :v")
                    .expression_attribute_names("#v", VERSION)
                    .expression_attribute_values(":v", AttributeValue::S(version.clone())),
                Condition::Foreign => put
                    .condition_expression("attribute_exists(#pk) AND NOT attribute_type(#v, :s)")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#v", VERSION)
                    .expression_attribute_values(":s", AttributeValue::S("S".to_owned())),
            };
            match self.send(budget, put.send()).await {
                Ok(_) => return Ok(()),
                Err(f) if self.create_table && !created_table && f.is_missing_table() => {
                    created_table = true;
                    self.ensure_table(budget).await?;
                }
                Err(f) => return Err(f),
            }
        }
    }

    /// Creates the table (a string partition key `pk`, on-demand billing) unless it exists,
    /// and waits within `budget` until it is `ACTIVE`.
    pub(super) async fn ensure_table(
        &self,
        budget: &Budget,
    ) -> std::result::Result<(), RequestFailure> {
        let client = self.client_ref().await;
        let definition = AttributeDefinition::builder()
            .attribute_name(PK)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| RequestFailure::other(Failure::NotSent, e.to_string()))?;
        let key = KeySchemaElement::builder()
            .attribute_name(PK)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| RequestFailure::other(Failure::NotSent, e.to_string()))?;
        let create = client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(definition)
            .key_schema(key)
            .billing_mode(BillingMode::PayPerRequest);
        match self.send(budget, create.send()).await {
            Ok(_) => tracing::info!(table = %self.table, "created the table"),
            // Created meanwhile by somebody else (or being created).
            Err(f) if f.code.as_deref() == Some("ResourceInUseException") => {}
            Err(f) => return Err(f),
        }
        loop {
            let describe = client.describe_table().table_name(&self.table);
            let status = match self.send(budget, describe.send()).await {
                Ok(output) => output
                    .table
                    .and_then(|t| t.table_status)
                    .unwrap_or(TableStatus::Creating),
                // Not visible yet.
                Err(f) if f.is_missing_table() => TableStatus::Creating,
                Err(f) => return Err(f),
            };
            if status == TableStatus::Active {
                return Ok(());
            }
            if budget.left() < Duration::from_millis(300) {
                return Err(RequestFailure::other(
                    Failure::NotSent,
                    format!(
                        "the table {} is {status} (being created): not active yet",
                        leader_election::backend::quoted(&self.table)
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
