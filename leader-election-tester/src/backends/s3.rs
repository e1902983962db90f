//! The S3 backend (`leader-election-s3`): any S3-compatible store at `--s3-endpoint`, or moto's
//! server started by `--spawn-s3`, whose restarts are server faults; the operator's hands
//! delete or overwrite the lease object; and the requests every S3 store of this process has
//! sent (what a follower costs).

use std::sync::{Arc, Mutex};

use clap::Args;
use leader_election::{BoxLeaseStore, ElectionBuilder, LeaderElectionOptions};
use leader_election_fixtures::S3Emulator;
use leader_election_s3::aws::aws_sdk_s3::primitives::ByteStream;
use leader_election_s3::{RequestCounts, S3LeaderElection, S3LeaseStore};
use serde::{Deserialize, Serialize};

use super::{Backend, BackendSpec, BoxFuture, OperatorAction, Server};
use crate::faults::FaultKind;

/// The endpoint the docker-compose file publishes its S3 emulator on.
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5000";
/// The bucket used by default (created when missing).
const DEFAULT_BUCKET: &str = "leader-election-tester";
/// The access key sent to the emulator (moto accepts any).
const ACCESS_KEY: &str = "leaderelection";
/// The secret key going with it (a test value).
const SECRET_KEY: &str = "leaderelection-secret";

/// Delete the lease object.
const DELETE: OperatorAction = OperatorAction::new("s3_delete", "delete the S3 lease object");
/// Overwrite the lease object with a body no contender can read.
const OVERWRITE: OperatorAction =
    OperatorAction::new("s3_overwrite", "overwrite the S3 lease object with garbage");

/// Where the S3 election is kept: an S3-compatible endpoint (path-style addressing, static
/// test credentials) and a bucket; the object key is the spec's `key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Args)]
#[group(skip)]
pub(crate) struct Settings {
    /// S3 endpoint (`--backend s3`): any S3-compatible store, addressed path-style with the
    /// emulator's test credentials. Default: the emulator of the docker-compose file.
    #[arg(id = "s3_endpoint",
        value_name = "URL", long = "s3-endpoint", env = "S3_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    pub(crate) endpoint: String,
    /// S3 bucket of the election (created when missing); the object key is `--key`.
    #[arg(id = "s3_bucket",
        value_name = "BUCKET", long = "s3-bucket", default_value = DEFAULT_BUCKET)]
    pub(crate) bucket: String,
    /// Start moto's S3 server from `.tools/moto` (`scripts/install-moto.sh`) on a free port of
    /// 127.0.0.1 for the run, instead of using --s3-endpoint, and add its restart (empty,
    /// without the bucket) to `mixed` as `server-restart`.
    #[arg(id = "spawn_s3", long = "spawn-s3")]
    #[serde(skip)]
    pub(crate) spawn: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            bucket: DEFAULT_BUCKET.to_owned(),
            spawn: false,
        }
    }
}

/// Every S3 store this process opened, for [`S3::requests`].
static STORES: Mutex<Vec<Arc<S3LeaseStore>>> = Mutex::new(Vec::new());

/// An S3 store of the election.
fn store(spec: &BackendSpec, options: &LeaderElectionOptions) -> Result<S3LeaseStore, String> {
    S3LeaderElection::builder()
        .endpoint(spec.s3.endpoint.clone())
        .force_path_style(true)
        .region("us-east-1")
        .static_credentials(ACCESS_KEY, SECRET_KEY)
        .create_bucket_if_not_exists(true)
        .bucket(spec.s3.bucket.clone())
        .key(spec.key.as_str())
        .options(options.clone())
        .build_store()
        .map_err(|e| format!("s3: {e}"))
}

/// The operator's hands: deletes the lease object (`garbage: false`) or overwrites it with a
/// body no contender can read, through a client of its own.
async fn on_object(spec: &BackendSpec, garbage: bool) -> Result<(), String> {
    let store = store(spec, &LeaderElectionOptions::default())?;
    let client = store.client().await;
    let (bucket, key) = (&spec.s3.bucket, &spec.key);
    if garbage {
        client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from_static(b"{\"operator\": \"garbage\"}"))
            .send()
            .await
            .map(drop)
            .map_err(|e| format!("s3: overwrite: {}", aws_error(&e)))
    } else {
        client
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(drop)
            .map_err(|e| format!("s3: delete: {}", aws_error(&e)))
    }
}

fn aws_error(err: &(dyn std::error::Error + 'static)) -> String {
    leader_election_s3::aws::aws_sdk_s3::error::DisplayErrorContext(err).to_string()
}

/// `--backend s3`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct S3;

impl Backend for S3 {
    fn name(&self) -> &'static str {
        "s3"
    }

    fn about(&self) -> &'static str {
        "Amazon S3 or an S3-compatible store, such as moto or MinIO (crate `leader-election-s3`)"
    }

    fn spawn_option(&self) -> Option<(&'static str, &'static [FaultKind])> {
        Some(("--spawn-s3", &[FaultKind::ServerRestart]))
    }

    fn spawn_requested(&self, spec: &BackendSpec) -> bool {
        spec.s3.spawn
    }

    fn spawn<'a>(
        &'a self,
        spec: &'a mut BackendSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Server>, String>> {
        Box::pin(async move {
            // The fixture panics when moto is missing or does not start: report that.
            let emulator = tokio::spawn(S3Emulator::start())
                .await
                .map_err(|e| format!("cannot start the S3 emulator: {e}"))?;
            spec.s3.endpoint = emulator.endpoint();
            Ok(Arc::new(SpawnedS3(emulator)) as Arc<dyn Server>)
        })
    }

    /// A store counted in [`requests`](Self::requests); shared, so that its request counts
    /// stay readable while a contender owns it (`Arc<S>` is a store, forwarding every method).
    fn urls<'s>(&self, spec: &'s mut BackendSpec) -> Vec<&'s mut String> {
        vec![&mut spec.s3.endpoint]
    }

    fn open(
        &self,
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        let store = Arc::new(store(spec, options)?);
        STORES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::clone(&store));
        Ok(BoxLeaseStore::new(store))
    }

    fn reach(&self, spec: &BackendSpec) -> Option<(String, &'static str)> {
        Some((
            format!("S3 at {}", spec.s3.endpoint),
            "start the emulator (`docker compose up -d s3`), pass --s3-endpoint / S3_ENDPOINT, \
             or --spawn-s3",
        ))
    }

    fn operator_actions(&self) -> &'static [OperatorAction] {
        &[DELETE, OVERWRITE]
    }

    fn act<'a>(
        &'a self,
        spec: &'a BackendSpec,
        action: OperatorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(on_object(spec, action == OVERWRITE))
    }

    fn requests(&self) -> Option<String> {
        let stores = STORES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sum = stores
            .iter()
            .fold(RequestCounts::default(), |mut sum, store| {
                let counts = store.request_counts();
                sum.head += counts.head;
                sum.get += counts.get;
                sum.put += counts.put;
                sum.other += counts.other;
                sum
            });
        Some(format!(
            "s3 requests of all contenders: {} HEAD, {} GET, {} PUT, {} other",
            sum.head, sum.get, sum.put, sum.other
        ))
    }
}

// === impl SpawnedS3 ===

/// moto's S3 server, started for the run; restarted empty (without the bucket) as a fault.
#[derive(Debug)]
struct SpawnedS3(S3Emulator);

impl Server for SpawnedS3 {
    fn name(&self) -> String {
        "s3-emulator".to_owned()
    }

    fn describe(&self) -> String {
        format!("started the S3 emulator at {}", self.0.endpoint())
    }

    fn fault_text(&self, _kind: FaultKind) -> String {
        "restart the S3 emulator (it comes back empty, without the bucket)".to_owned()
    }

    fn restored_text(&self, _kind: FaultKind) -> String {
        "the S3 emulator is back".to_owned()
    }

    fn restart(self: Arc<Self>) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move {
            // The fixture panics when the emulator does not come back: say so.
            tokio::spawn(async move { self.0.restart().await })
                .await
                .map_err(|e| format!("the S3 emulator did not come back: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_replaces_the_endpoint() {
        let spec = BackendSpec::on("s3");
        assert_eq!(
            S3.upstreams(&spec),
            Ok(vec!["127.0.0.1:5000".parse().unwrap()])
        );
        let via = S3.via(&spec, &["127.0.0.1:4242".parse().unwrap()]);
        assert_eq!(via.s3.endpoint, "http://127.0.0.1:4242");
    }
}
