//! The S3 backend (`leader-election-s3`): any S3-compatible store at `--s3-endpoint`, or moto's
//! server started by `--spawn-s3`, whose restarts are server faults; the operator's hands
//! delete or overwrite the lease object; and the requests every S3 store of this process has
//! sent (what a follower costs).

use clap::Args;
use leader_election::{ElectionBuilder, LeaderElectionOptions};
use leader_election_s3::aws::aws_sdk_s3::primitives::ByteStream;
use leader_election_s3::{S3LeaderElection, S3LeaseStore, S3Objects};
use serde::{Deserialize, Serialize};

use super::conditional::{
    ACCESS_KEY, DEFAULT_ENDPOINT, REGION, SECRET_KEY, Service, failed, names,
};
use super::{BackendSpec, BoxFuture};

/// The bucket used by default (created when missing).
const DEFAULT_BUCKET: &str = "leader-election-tester";

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

names! {
    S3 = s3: S3Objects, "S3" keeps its "object" in a "bucket";
    about "Amazon S3 or an S3-compatible store, such as moto or MinIO (crate `leader-election-s3`)";
    reach "start the emulator (`docker compose up -d s3`), pass --s3-endpoint / S3_ENDPOINT, or --spawn-s3";
}

impl Service for S3Objects {
    fn store(spec: &BackendSpec, options: &LeaderElectionOptions) -> Result<S3LeaseStore, String> {
        S3LeaderElection::builder()
            .endpoint(spec.s3.endpoint.clone())
            .force_path_style(true)
            .region(REGION)
            .static_credentials(ACCESS_KEY, SECRET_KEY)
            .create_bucket_if_not_exists(true)
            .bucket(spec.s3.bucket.clone())
            .key(spec.key.as_str())
            .options(options.clone())
            .build_store()
            .map_err(|e| format!("s3: {e}"))
    }

    /// Deletes the lease object, or puts a body no contender can read in its place.
    fn operate(spec: &BackendSpec, garbage: bool) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let store = <Self as Service>::store(spec, &LeaderElectionOptions::default())?;
            let client = store.client().await;
            let (bucket, key) = (&spec.s3.bucket, &spec.key);
            if garbage {
                let body = ByteStream::from_static(b"{\"operator\": \"garbage\"}");
                let put = client.put_object().bucket(bucket).key(key).body(body);
                put.send()
                    .await
                    .map(drop)
                    .map_err(|e| failed("s3", "overwrite", &e))
            } else {
                let delete = client.delete_object().bucket(bucket).key(key);
                delete
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| failed("s3", "delete", &e))
            }
        })
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        let c = self.request_counts();
        vec![
            ("HEAD", c.head),
            ("GET", c.get),
            ("PUT", c.put),
            ("other", c.other),
        ]
    }
}
