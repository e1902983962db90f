//! What the DynamoDB backend's tests add to the moto fixture of `leader-election-fixtures`
//! ([`S3Emulator`]: moto's whole server, which serves DynamoDB on the same endpoint as S3,
//! every request under one lock): builders, stores and elections on it with short timings, and
//! a client of the SDK itself for operator actions.

// Each test binary uses its own part of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::time::Duration;

use leader_election::{ElectionBuilder, LeaderElection};
use leader_election_dynamodb::aws::aws_sdk_dynamodb;
use leader_election_dynamodb::aws::aws_sdk_dynamodb::types::AttributeValue;
use leader_election_dynamodb::{
    DynamoDbLeaderElection, DynamoDbLeaderElectionBuilder, DynamoDbLeaseStore,
};
pub use leader_election_test_support::S3Emulator;

/// An item as the SDK reads and writes it.
pub type Item = HashMap<String, AttributeValue>;
use leader_election_aws::testing::{Moto, MotoBackend};
use leader_election_test_support::conditional::ObjectOperator;
use leader_election_test_support::s3::{ACCESS_KEY, REGION, SECRET_KEY};

/// The emulator of this test binary, started (and its DynamoDB service loaded) by the first
/// test that needs it.
pub async fn emulator() -> Moto<'static, OnDynamoDb> {
    static EMULATOR: tokio::sync::OnceCell<S3Emulator> = tokio::sync::OnceCell::const_new();
    let emulator = EMULATOR
        .get_or_init(|| async {
            let emulator = S3Emulator::start().await;
            warm_up(&emulator).await;
            emulator
        })
        .await;
    Moto::new(emulator)
}

/// Sends DynamoDB requests until one is answered: moto loads its DynamoDB service at the
/// first DynamoDB request (the fixture warms up S3 only), which can take longer on a busy
/// machine than a test's operation timeout. Creates [`TABLE`] too.
pub async fn warm_up(emulator: &S3Emulator) {
    let emulator = Moto::<OnDynamoDb>::new(emulator);
    let client = emulator.operator().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while client.list_tables().send().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "moto's DynamoDB did not answer within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let store = emulator.store("warm-up");
    leader_election::LeaseStore::connect(&store)
        .await
        .expect("the table created and the conditions proven");
}

/// The table every helper uses; created by the first request that finds it missing.
pub const TABLE: &str = "leader-election-tests";

/// A builder for an election on moto's DynamoDB at `endpoint`, with short timings (lease 4 s,
/// renewals every second, followers polling every 250 ms, 2 s per operation), on `key` of
/// [`TABLE`], creating the table when missing.
pub fn builder_at(endpoint: &str, key: &str, instance_id: &str) -> DynamoDbLeaderElectionBuilder {
    DynamoDbLeaderElection::builder()
        .table(TABLE)
        .key(key)
        .endpoint(endpoint)
        .region(REGION)
        .static_credentials(ACCESS_KEY, SECRET_KEY)
        .create_table_if_not_exists(true)
        .options(leader_election_aws::testing::options(instance_id))
}

/// A string attribute.
pub fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

/// The item of `key` in [`TABLE`] (strongly consistent), `None` when missing.
pub async fn item(
    client: &aws_sdk_dynamodb::Client,
    key: &str,
) -> Option<HashMap<String, AttributeValue>> {
    client
        .get_item()
        .table_name(TABLE)
        .key("pk", s(key))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item
}

/// The version attribute of `key`'s item, `None` when missing.
pub async fn version(client: &aws_sdk_dynamodb::Client, key: &str) -> Option<String> {
    match item(client, key).await?.get("v") {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// Deletes `key`'s item, as an operator would.
pub async fn delete(client: &aws_sdk_dynamodb::Client, key: &str) {
    client
        .delete_item()
        .table_name(TABLE)
        .key("pk", s(key))
        .send()
        .await
        .expect("DeleteItem");
}

/// Writes `item` (its `pk` set to `key`) unconditionally, as an operator would.
pub async fn overwrite(
    client: &aws_sdk_dynamodb::Client,
    key: &str,
    mut item: HashMap<String, AttributeValue>,
) {
    item.insert("pk".to_owned(), s(key));
    client
        .put_item()
        .table_name(TABLE)
        .set_item(Some(item))
        .send()
        .await
        .expect("PutItem");
}

/// The operator of the shared checks of the conditional engine
/// ([`leader_election_test_support::conditional`]): the emulator of this test binary and a
/// client of the SDK itself; an item's content is its attributes.
pub struct DynamoOperator {
    emulator: Moto<'static, OnDynamoDb>,
    client: aws_sdk_dynamodb::Client,
}

/// The [`DynamoOperator`] of this test binary's emulator.
pub async fn operator() -> DynamoOperator {
    let emulator = emulator().await;
    DynamoOperator {
        emulator,
        client: emulator.operator().await,
    }
}

impl ObjectOperator for DynamoOperator {
    type Store = DynamoDbLeaseStore;
    type Content = Item;

    fn name(&self) -> &'static str {
        "dynamodb"
    }

    fn election(&self, key: &str, id: &str) -> LeaderElection<DynamoDbLeaseStore> {
        self.emulator.election(key, id)
    }

    fn store(&self, key: &str) -> DynamoDbLeaseStore {
        self.emulator.store(key)
    }

    async fn delete(&self, name: &str) {
        delete(&self.client, name).await;
    }

    async fn backup(&self, name: &str) -> Option<Item> {
        item(&self.client, name).await
    }

    async fn restore(&self, name: &str, content: Item) {
        overwrite(&self.client, name, content).await;
    }

    fn names_holder(&self, item: &Item) -> bool {
        item.contains_key("holder")
    }

    fn is_placeholder(&self, item: &Item) -> bool {
        item.get("placeholder") == Some(&AttributeValue::Bool(true)) && !item.contains_key("holder")
    }

    /// Without a version attribute (taken over on `attribute_exists(pk) AND NOT
    /// attribute_type(#v, S)`), with one of another type, and with a string version but
    /// attributes this crate does not know (taken over on `#v = :v`).
    fn garbage(&self) -> Vec<(&'static str, Item)> {
        let no_version = Item::from([("not".to_owned(), s("a lease"))]);
        let numeric_version = Item::from([
            ("v".to_owned(), AttributeValue::N("7".to_owned())),
            ("token".to_owned(), AttributeValue::N("1".to_owned())),
        ]);
        let foreign_attribute = Item::from([
            ("v".to_owned(), s("hand-written")),
            ("owner".to_owned(), s("ops")),
        ]);
        vec![
            ("no version", no_version),
            ("a numeric version", numeric_version),
            ("an unknown attribute", foreign_attribute),
        ]
    }
}

/// The DynamoDB backend on the emulator, for the shared fault checks and the generic suite:
/// moto loads its DynamoDB service at the first request, so the emulator is warmed up after
/// every start and restart (the table is created again by the first request that finds it
/// missing).
pub enum OnDynamoDb {}

impl MotoBackend for OnDynamoDb {
    type Builder = DynamoDbLeaderElectionBuilder;
    type Client = aws_sdk_dynamodb::Client;

    fn builder_at(endpoint: &str, key: &str, id: &str) -> DynamoDbLeaderElectionBuilder {
        builder_at(endpoint, key, id)
    }

    async fn client(store: DynamoDbLeaseStore) -> aws_sdk_dynamodb::Client {
        store.client().await
    }

    async fn warm_up(emulator: &S3Emulator) {
        warm_up(emulator).await;
    }
}
