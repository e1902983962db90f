//! [`DynamoDbLeaseStore`]: the engine of [`leader_election::store::conditional`] over DynamoDB
//! items written only with condition expressions.

use std::fmt;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableStatus,
};
use leader_election::store::conditional::{
    CandidateRecord, Condition, ConditionalObjects, ConditionalStore, Failure, FailureKind,
    LeaseRecord, Read, Terms, nonce,
};

use crate::error::failure;
use crate::record::{self, Item, PK, VERSION, Version, keyed, version_of};
use crate::wire::{DynamoDbClient, RequestCounts, build_client};

pub use leader_election::store::conditional::{MAX_METADATA_LEN, MAX_RECORD_LEN};

/// A [`LeaseStore`](leader_election::LeaseStore) that keeps the election in one DynamoDB item,
/// written only with condition expressions (`attribute_not_exists(pk)` to create it,
/// `#v = :expected` on its version attribute for everything else): the
/// [conditional engine](leader_election::store::conditional) over [`DynamoDbObjects`].
///
/// Build it with [`DynamoDbLeaderElection::builder`](crate::DynamoDbLeaderElection::builder)
/// (its [`build_store`](leader_election::ElectionBuilder::build_store) gives the store alone).
/// One store holds one client that all operations reuse. The README says how the operations
/// map to DynamoDB requests, and what the tokens and the follower's watch guarantee.
///
/// Its [`table`](DynamoDbObjects::table),
/// [`request_counts`](DynamoDbObjects::request_counts) and
/// [`client`](DynamoDbObjects::client) are [`DynamoDbObjects`]'; its
/// [`key`](ConditionalStore::key), [`record_key`](ConditionalStore::record_key) and
/// [`candidate_key`](ConditionalStore::candidate_key) the engine's.
pub type DynamoDbLeaseStore = ConditionalStore<DynamoDbObjects>;

/// How the store reaches DynamoDB.
pub(crate) type Connection =
    leader_election::store::conditional::Connection<aws_sdk_dynamodb::Client>;

/// The DynamoDB side of a [`DynamoDbLeaseStore`]: the items of one table (partition key `pk`),
/// read with a strongly consistent `GetItem` and written with `PutItem` on
/// `attribute_not_exists(pk)` or `#v = :v`, every write with a fresh random version `v`.
///
/// An item without a version attribute (written by somebody else) is told apart by a
/// fingerprint of its whole content, and written over only on
/// `attribute_exists(pk) AND NOT attribute_type(#v, :s)`: a write on that condition can follow
/// no write of this crate.
pub struct DynamoDbObjects {
    sdk: DynamoDbClient,
    table: String,
    create_table: bool,
}

impl fmt::Debug for DynamoDbObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoDbObjects")
            .field("table", &self.table)
            .field("endpoint", &self.sdk.connection().endpoint())
            .field("create_table_if_not_exists", &self.create_table)
            .finish_non_exhaustive()
    }
}

const TERMS: Terms = Terms {
    service: "DynamoDB",
    object: "item",
    container: "table",
    container_missing: "does not exist or is not active yet",
    create_container: "create_table_if_not_exists",
    service_at: "DynamoDB at",
    conditions: "condition expressions",
    probe_create: "creating the probe item with attribute_not_exists(pk)",
    probe_again: "writing the probe item again with attribute_not_exists(pk)",
    ignored_missing: "attribute_not_exists(pk) on an existing item (it was overwritten)",
    probe_matching: "rewriting the probe item on its own version",
    probe_stale: "writing the probe item on a stale version",
    ignored_stale: "a condition on a stale version (the write was accepted)",
};

impl DynamoDbObjects {
    pub(crate) fn new(connection: Connection, table: String, create_table: bool) -> Self {
        Self {
            sdk: DynamoDbClient::new(connection),
            table,
            create_table,
        }
    }

    /// The table holding the lease item.
    #[must_use]
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The requests this store has sent so far, by operation: what the election costs.
    #[must_use]
    pub fn request_counts(&self) -> RequestCounts {
        self.sdk.wire().tally.counts()
    }

    /// The DynamoDB client of this store (built from the AWS configuration at the first call,
    /// which cannot fail: missing credentials show at the first request), for inspection or
    /// operator actions on the lease item. Its requests count in
    /// [`request_counts`](Self::request_counts).
    pub async fn client(&self) -> aws_sdk_dynamodb::Client {
        self.client_ref().await.clone()
    }

    async fn client_ref(&self) -> &aws_sdk_dynamodb::Client {
        self.sdk.get(build_client).await
    }

    /// Creates the table (a string partition key `pk`, on-demand billing) unless it exists,
    /// and waits until it is `ACTIVE` (within the operation's time).
    async fn ensure_table(&self) -> Result<(), Failure> {
        let client = self.client_ref().await;
        let not_sent = |e: aws_sdk_dynamodb::error::BuildError| {
            Failure::new(FailureKind::NotSent, e.to_string())
        };
        let definition = AttributeDefinition::builder()
            .attribute_name(PK)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(not_sent)?;
        let key = KeySchemaElement::builder()
            .attribute_name(PK)
            .key_type(KeyType::Hash)
            .build()
            .map_err(not_sent)?;
        let create = client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(definition)
            .key_schema(key)
            .billing_mode(BillingMode::PayPerRequest);
        match Box::pin(create.send()).await {
            Ok(_) => tracing::info!(table = %self.table, "created the table"),
            // Created meanwhile by somebody else (or being created).
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_resource_in_use_exception())
                    == Some(true) => {}
            Err(e) => return Err(failure(&e)),
        }
        loop {
            let describe = client.describe_table().table_name(&self.table);
            let status = match Box::pin(describe.send()).await.map_err(|e| failure(&e)) {
                Ok(output) => output
                    .table
                    .and_then(|t| t.table_status)
                    .unwrap_or(TableStatus::Creating),
                // Not visible yet.
                Err(f) if f.kind == FailureKind::NoContainer => TableStatus::Creating,
                Err(f) => return Err(f),
            };
            if status == TableStatus::Active {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl ConditionalObjects for DynamoDbObjects {
    type Version = Version;
    type Body = Item;

    fn container(&self) -> &str {
        &self.table
    }

    fn terms(&self) -> &Terms {
        &TERMS
    }

    fn endpoint(&self) -> String {
        self.sdk.connection().describe("AWS", "table", &self.table)
    }

    fn service_time(&self) -> u64 {
        self.sdk.wire().clock.latest()
    }

    async fn prepare(&self) {
        self.client_ref().await;
    }

    /// One strongly consistent `GetItem`, creating the table first when it is missing and may
    /// be created (a missing table holds no item).
    async fn read(
        &self,
        name: &str,
        _known: Option<&Version>,
    ) -> Result<Read<Version, Item>, Failure> {
        let client = self.client_ref().await;
        let get = client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(name.to_owned()))
            .consistent_read(true);
        match Box::pin(get.send()).await.map_err(|e| failure(&e)) {
            Ok(output) => Ok(match output.item {
                Some(item) => Read::Found(version_of(&item), item),
                None => Read::Missing,
            }),
            Err(f) if f.kind == FailureKind::NoContainer && self.create_table => {
                self.ensure_table().await?;
                Ok(Read::Missing)
            }
            Err(f) => Err(f),
        }
    }

    /// One `PutItem` of `item` as `name` at a fresh version, on the condition, creating the
    /// table first if it is missing and may be created.
    async fn write(
        &self,
        name: &str,
        condition: Condition<&Version>,
        item: Item,
    ) -> Result<Version, Failure> {
        let client = self.client_ref().await;
        let version = nonce();
        let item = keyed(item, name, &version);
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
                Condition::Version((version, false)) => put
                    .condition_expression("#v = :v")
                    .expression_attribute_names("#v", VERSION)
                    .expression_attribute_values(":v", AttributeValue::S(version.clone())),
                Condition::Version((_, true)) => put
                    .condition_expression("attribute_exists(#pk) AND NOT attribute_type(#v, :s)")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#v", VERSION)
                    .expression_attribute_values(":s", AttributeValue::S("S".to_owned())),
            };
            match Box::pin(put.send()).await.map_err(|e| failure(&e)) {
                Ok(_) => return Ok((version, false)),
                Err(f)
                    if self.create_table
                        && !created_table
                        && f.kind == FailureKind::NoContainer =>
                {
                    created_table = true;
                    self.ensure_table().await?;
                }
                Err(f) => return Err(f),
            }
        }
    }

    async fn delete(&self, name: &str) -> Result<(), Failure> {
        let client = self.client_ref().await;
        let delete = client
            .delete_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(name.to_owned()));
        Box::pin(delete.send())
            .await
            .map(drop)
            .map_err(|e| failure(&e))
    }

    fn encode_lease(&self, lease: &LeaseRecord) -> Item {
        record::encode(lease)
    }

    fn decode_lease(&self, item: &Item) -> Result<LeaseRecord, String> {
        record::decode(item)
    }

    fn encode_candidate(&self, candidate: &CandidateRecord) -> Item {
        record::encode_candidate(candidate)
    }

    fn decode_candidate(&self, item: &Item) -> Option<CandidateRecord> {
        record::decode_candidate(item)
    }

    fn encode_data(&self, data: &[u8]) -> Item {
        record::encode_data(data)
    }

    fn decode_data(&self, item: Item) -> Result<Vec<u8>, String> {
        record::decode_data(&item)
    }

    fn encode_probe(&self, step: &str) -> Item {
        let mut item = Item::new();
        item.insert(
            "probe".to_owned(),
            AttributeValue::S(format!(
                "leader-election-dynamodb: condition check ({step})"
            )),
        );
        item
    }

    fn version_text(&self, (version, _): &Version) -> String {
        version.clone()
    }

    fn version_from_text(&self, text: &str) -> Version {
        (text.to_owned(), false)
    }

    fn made_up_version(&self) -> Version {
        (nonce(), false)
    }
}
