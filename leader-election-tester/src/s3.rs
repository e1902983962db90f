//! The S3 backend in the tester: how to reach the store, stores for contenders, the operator's
//! hands on the lease object, and the requests every S3 store of this process has sent (what a
//! follower costs).

use std::sync::{Arc, Mutex};

use leader_election::{BoxLeaseStore, LeaderElectionOptions};
use leader_election_s3::aws::aws_sdk_s3::primitives::ByteStream;
use leader_election_s3::{RequestCounts, S3LeaderElection, S3LeaseStore};
use serde::{Deserialize, Serialize};

/// The endpoint the docker-compose file publishes its S3 emulator on.
pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5000";
/// The bucket used by default (created when missing).
pub(crate) const DEFAULT_BUCKET: &str = "leader-election-tester";
/// The access key sent to the emulator (moto accepts any).
const ACCESS_KEY: &str = "leaderelection";
/// The secret key going with it (a test value).
const SECRET_KEY: &str = "leaderelection-secret";

/// Where the S3 election is kept: an S3-compatible endpoint (path-style addressing, static
/// test credentials) and a bucket; the object key is the spec's `key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct S3Spec {
    /// The endpoint URL, `http://host:port`.
    pub(crate) endpoint: String,
    /// The bucket, created when missing.
    pub(crate) bucket: String,
}

impl Default for S3Spec {
    fn default() -> Self {
        Self {
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            bucket: DEFAULT_BUCKET.to_owned(),
        }
    }
}

/// Every S3 store this process opened, for [`request_totals`].
static STORES: Mutex<Vec<Arc<S3LeaseStore>>> = Mutex::new(Vec::new());

/// The requests all S3 stores of this process have sent so far.
pub(crate) fn request_totals() -> RequestCounts {
    let stores = STORES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    stores
        .iter()
        .fold(RequestCounts::default(), |mut sum, store| {
            let counts = store.request_counts();
            sum.head += counts.head;
            sum.get += counts.get;
            sum.put += counts.put;
            sum.other += counts.other;
            sum
        })
}

fn store(
    spec: &S3Spec,
    key: &str,
    options: &LeaderElectionOptions,
) -> Result<S3LeaseStore, String> {
    S3LeaderElection::builder()
        .endpoint(spec.endpoint.clone())
        .force_path_style(true)
        .region("us-east-1")
        .static_credentials(ACCESS_KEY, SECRET_KEY)
        .create_bucket_if_not_exists(true)
        .bucket(spec.bucket.clone())
        .key(key)
        .options(options.clone())
        .build_store()
        .map_err(|e| format!("s3: {e}"))
}

/// A store for one contender, counted in [`request_totals`].
pub(crate) fn open(
    spec: &S3Spec,
    key: &str,
    options: &LeaderElectionOptions,
) -> Result<BoxLeaseStore, String> {
    let store = Arc::new(store(spec, key, options)?);
    STORES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(Arc::clone(&store));
    // Shared, so that its request counts stay readable while a contender owns it: `Arc<S>`
    // is a store, forwarding every method.
    Ok(BoxLeaseStore::new(store))
}

/// The operator's hands: deletes the lease object (`garbage: false`) or overwrites it with a
/// body no contender can read, through a client of its own.
pub(crate) async fn operator(spec: &S3Spec, key: &str, garbage: bool) -> Result<(), String> {
    let store = store(spec, key, &LeaderElectionOptions::default())?;
    let client = store.client().await;
    if garbage {
        client
            .put_object()
            .bucket(&spec.bucket)
            .key(key)
            .body(ByteStream::from_static(b"{\"operator\": \"garbage\"}"))
            .send()
            .await
            .map(drop)
            .map_err(|e| format!("s3: overwrite: {}", aws_error(&e)))
    } else {
        client
            .delete_object()
            .bucket(&spec.bucket)
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
