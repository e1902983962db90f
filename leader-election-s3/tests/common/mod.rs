//! What the S3 backend's tests add to the [`S3Emulator`] (moto) and [`S3rver`] fixtures of
//! `leader-election-fixtures` (which know no backend): builders, stores and elections on them
//! with short timings, and a client of the SDK itself for operator actions.

// Each test binary uses its own part of these helpers.
#![allow(dead_code, unreachable_pub)]

use leader_election::{ElectionBuilder, LeaderElection};
use leader_election_aws::testing::{Moto, MotoBackend};
use leader_election_s3::aws::aws_sdk_s3;
use leader_election_s3::aws::aws_sdk_s3::primitives::ByteStream;
use leader_election_s3::{S3LeaderElection, S3LeaderElectionBuilder, S3LeaseStore};
use leader_election_test_support::conditional::ObjectOperator;
use leader_election_test_support::s3::{ACCESS_KEY, REGION, SECRET_KEY};
use leader_election_test_support::s3rver;
pub use leader_election_test_support::{S3Emulator, S3rver};

/// The emulator of this test binary, started by the first test that needs it.
pub async fn emulator() -> Moto<'static, OnS3> {
    static EMULATOR: tokio::sync::OnceCell<S3Emulator> = tokio::sync::OnceCell::const_new();
    Moto::new(EMULATOR.get_or_init(S3Emulator::start).await)
}

/// The bucket every helper uses; created by the first write that finds it missing.
pub const BUCKET: &str = "leader-election-tests";

/// A builder for an election on the S3 emulator at `endpoint`, with short timings (lease 4 s,
/// renewals every second, followers polling every 250 ms, 2 s per operation), on `key` of
/// [`BUCKET`], creating the bucket when missing.
pub fn builder_at(endpoint: &str, key: &str, instance_id: &str) -> S3LeaderElectionBuilder {
    S3LeaderElection::builder()
        .bucket(BUCKET)
        .key(key)
        .endpoint(endpoint)
        .region(REGION)
        .force_path_style(true)
        .static_credentials(ACCESS_KEY, SECRET_KEY)
        .create_bucket_if_not_exists(true)
        .options(leader_election_aws::testing::options(instance_id))
}

/// What the S3 backend's tests add to an [`S3rver`] (a server that ignores conditional
/// writes): a builder with its credentials.
pub trait S3rverExt {
    /// [`builder_at`] this server, with its credentials.
    fn builder(&self, key: &str, instance_id: &str) -> S3LeaderElectionBuilder;
}

impl S3rverExt for S3rver {
    fn builder(&self, key: &str, instance_id: &str) -> S3LeaderElectionBuilder {
        builder_at(&self.endpoint(), key, instance_id)
            .static_credentials(s3rver::ACCESS_KEY, s3rver::SECRET_KEY)
    }
}

/// The operator of the shared checks of the conditional engine
/// ([`leader_election_test_support::conditional`]): the emulator of this test binary and a
/// client of the SDK itself; an object's content is its bytes.
pub struct S3Operator {
    emulator: Moto<'static, OnS3>,
    client: aws_sdk_s3::Client,
}

/// The [`S3Operator`] of this test binary's emulator.
pub async fn operator() -> S3Operator {
    let emulator = emulator().await;
    S3Operator {
        emulator,
        client: emulator.operator().await,
    }
}

impl ObjectOperator for S3Operator {
    type Store = S3LeaseStore;
    type Content = Vec<u8>;

    fn name(&self) -> &'static str {
        "s3"
    }

    fn election(&self, key: &str, id: &str) -> LeaderElection<S3LeaseStore> {
        self.emulator.election(key, id)
    }

    fn store(&self, key: &str) -> S3LeaseStore {
        self.emulator.store(key)
    }

    async fn delete(&self, name: &str) {
        let delete = self.client.delete_object().bucket(BUCKET).key(name);
        delete.send().await.expect("delete");
    }

    async fn backup(&self, name: &str) -> Option<Vec<u8>> {
        let get = self.client.get_object().bucket(BUCKET).key(name);
        let output = get.send().await.ok()?;
        Some(output.body.collect().await.ok()?.into_bytes().to_vec())
    }

    async fn restore(&self, name: &str, body: Vec<u8>) {
        let put = self.client.put_object().bucket(BUCKET).key(name);
        put.body(ByteStream::from(body))
            .send()
            .await
            .expect("overwrite");
    }

    fn names_holder(&self, body: &Vec<u8>) -> bool {
        body.windows(8).any(|w| w == b"\"holder\"")
    }

    fn is_placeholder(&self, body: &Vec<u8>) -> bool {
        let body = String::from_utf8_lossy(body);
        body.contains("\"placeholder\":true") && !body.contains("\"holder\"")
    }

    fn garbage(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![("JSON of another format", b"{\"not\": \"a lease\"}".to_vec())]
    }
}

/// The S3 backend on the emulator, for the shared fault checks and the generic suite.
pub enum OnS3 {}

impl MotoBackend for OnS3 {
    type Builder = S3LeaderElectionBuilder;
    type Client = aws_sdk_s3::Client;

    fn builder_at(endpoint: &str, key: &str, id: &str) -> S3LeaderElectionBuilder {
        builder_at(endpoint, key, id)
    }

    async fn client(store: S3LeaseStore) -> aws_sdk_s3::Client {
        store.client().await
    }
}
