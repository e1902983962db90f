//! The DynamoDB backend (`leader-election-dynamodb`): DynamoDB or an emulator at
//! `--dynamodb-endpoint`, or moto's server started by `--spawn-dynamodb`, whose restarts are
//! server faults; the operator's hands delete or overwrite the lease item; and the requests
//! every DynamoDB store of this process has sent (what a follower costs). What it shares with
//! the S3 backend is in [`super::conditional`].

use clap::Args;
use leader_election::{ElectionBuilder, LeaderElectionOptions};
use leader_election_dynamodb::aws::aws_sdk_dynamodb::types::AttributeValue;
use leader_election_dynamodb::{DynamoDbLeaderElection, DynamoDbLeaseStore, DynamoDbObjects};
use serde::{Deserialize, Serialize};

use super::conditional::{
    ACCESS_KEY, DEFAULT_ENDPOINT, REGION, SECRET_KEY, Service, failed, names,
};
use super::{BackendSpec, BoxFuture};

names! {
    DYNAMODB = dynamodb: DynamoDbObjects, "DynamoDB" keeps its "item" in a "table";
    about "Amazon DynamoDB or an emulator, such as moto (crate `leader-election-dynamodb`)";
    reach "start the emulator (`docker compose up -d s3`: moto serves DynamoDB too), pass --dynamodb-endpoint / DYNAMODB_ENDPOINT, or --spawn-dynamodb";
}

/// The table used by default (created when missing).
const DEFAULT_TABLE: &str = "leader-election-tester";

/// Where the DynamoDB election is kept: a service endpoint and region, signed with the
/// emulator's static test credentials, and a table; the item key is the spec's `key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Args)]
#[group(skip)]
pub(crate) struct Settings {
    /// DynamoDB endpoint (`--backend dynamodb`): DynamoDB or an emulator (moto, DynamoDB
    /// Local), with the emulator's test credentials. Default: moto of the docker-compose file.
    #[arg(id = "dynamodb_endpoint",
        value_name = "URL", long = "dynamodb-endpoint", env = "DYNAMODB_ENDPOINT",
        default_value = DEFAULT_ENDPOINT)]
    pub(crate) endpoint: String,
    /// Run moto (`.tools/moto`, see `scripts/install-moto.sh`) for the run, as --spawn-s3
    /// does, in place of --dynamodb-endpoint; `mixed` then restarts it empty, the table
    /// gone, as `server-restart`.
    #[arg(id = "spawn_dynamodb", long = "spawn-dynamodb")]
    #[serde(skip)]
    pub(crate) spawn: bool,
    /// DynamoDB region the requests are signed for (an emulator takes any).
    #[arg(long = "dynamodb-region", env = "LEADER_ELECTION_DYNAMODB_REGION",
        value_name = "REGION", default_value = REGION)]
    pub(crate) region: String,
    /// DynamoDB table of the election, created when missing (partition key `pk`); the item
    /// key is `--key`.
    #[arg(long = "dynamodb-table", env = "LEADER_ELECTION_DYNAMODB_TABLE",
        value_name = "TABLE", default_value = DEFAULT_TABLE)]
    pub(crate) table: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            spawn: false,
            region: REGION.to_owned(),
            table: DEFAULT_TABLE.to_owned(),
        }
    }
}

impl Service for DynamoDbObjects {
    /// The table is created when missing (on-demand billing: an emulator ignores it).
    fn store(
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<DynamoDbLeaseStore, String> {
        let settings = &spec.dynamodb;
        DynamoDbLeaderElection::builder()
            .endpoint(settings.endpoint.clone())
            .region(settings.region.clone())
            .static_credentials(ACCESS_KEY, SECRET_KEY)
            .create_table_if_not_exists(true)
            .table(settings.table.clone())
            .key(spec.key.as_str())
            .options(options.clone())
            .build_store()
            .map_err(|e| format!("dynamodb: {e}"))
    }

    /// Deletes the lease item, or puts an item of attributes no contender can read in its
    /// place (no version `v`: the contenders know it by a fingerprint of its content).
    fn operate(spec: &BackendSpec, garbage: bool) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let client = <Self as Service>::store(spec, &LeaderElectionOptions::default())?
                .client()
                .await;
            let table = &spec.dynamodb.table;
            let pk = AttributeValue::S(spec.key.clone());
            if garbage {
                let put = client
                    .put_item()
                    .table_name(table)
                    .item("pk", pk)
                    .item("operator", AttributeValue::S("garbage".to_owned()));
                let sent = put.send().await;
                sent.map(drop)
                    .map_err(|e| failed("dynamodb", "overwrite", &e))
            } else {
                let sent = client
                    .delete_item()
                    .table_name(table)
                    .key("pk", pk)
                    .send()
                    .await;
                sent.map(drop).map_err(|e| failed("dynamodb", "delete", &e))
            }
        })
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        let c = self.request_counts();
        vec![
            ("GetItem", c.get_item),
            ("PutItem", c.put_item),
            ("other", c.other),
        ]
    }
}
