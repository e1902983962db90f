//! [`S3LeaseStore`]: the engine of [`leader_election::store::conditional`] over S3 objects
//! written only with conditional writes.

use std::fmt;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use leader_election::backend::quoted;
use leader_election::store::conditional::{
    CandidateRecord, Condition, ConditionalObjects, ConditionalStore, Failure, FailureKind,
    LeaseRecord, Read, Terms,
};

use crate::error::failure;
use crate::record;
use crate::wire::{RequestCounts, S3Client, build_client};

pub use leader_election::store::conditional::{MAX_METADATA_LEN, MAX_RECORD_LEN};

/// A [`LeaseStore`](leader_election::LeaseStore) that keeps the election in one S3 object,
/// written only with conditional writes (`If-None-Match: *` to create it, `If-Match: <ETag>`
/// for everything else): the [conditional engine](leader_election::store::conditional) over
/// [`S3Objects`].
///
/// Build it with [`S3LeaderElection::builder`](crate::S3LeaderElection::builder) (its
/// [`build_store`](leader_election::ElectionBuilder::build_store) gives the store alone). One
/// store holds one client that all operations reuse. The README says how the operations map
/// to S3 requests, and what the tokens and the follower's watch guarantee.
///
/// Its [`bucket`](S3Objects::bucket), [`request_counts`](S3Objects::request_counts) and
/// [`client`](S3Objects::client) are [`S3Objects`]'; its
/// [`key`](ConditionalStore::key) and [`record_key`](ConditionalStore::record_key) the
/// engine's.
pub type S3LeaseStore = ConditionalStore<S3Objects>;

/// How the store reaches S3.
pub(crate) type Connection = leader_election::store::conditional::Connection<aws_sdk_s3::Client>;

/// The S3 side of an [`S3LeaseStore`]: the objects of one bucket, read with `HEAD` (whether an
/// object is still at the ETag read last) and `GET`, written with `PUT` on `If-None-Match: *`
/// or `If-Match`.
///
/// Every lease write carries a fresh random nonce: S3's ETag of a simple upload is the MD5 of
/// the body, so a renewal writing the same bytes again would keep the ETag, and followers would
/// count the lease as unrenewed. A version is the ETag and, where the response carried it, the
/// `Last-Modified` time: an operator restoring an exact copy of an older version (a backup)
/// brings its ETag back, but with a new `Last-Modified` time.
pub struct S3Objects {
    sdk: S3Client,
    force_path_style: bool,
    bucket: String,
    create_bucket: bool,
}

impl fmt::Debug for S3Objects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Objects")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.sdk.connection().endpoint())
            .field("create_bucket_if_not_exists", &self.create_bucket)
            .finish_non_exhaustive()
    }
}

const TERMS: Terms = Terms {
    service: "S3",
    object: "object",
    container: "bucket",
    container_missing: "does not exist",
    create_container: "create_bucket_if_not_exists",
    service_at: "the S3 store at",
    conditions: "conditional writes",
    probe_create: "creating the probe object with If-None-Match: *",
    probe_again: "writing the probe object again with If-None-Match: *",
    ignored_missing: "If-None-Match: * on an existing object (it was overwritten)",
    probe_matching: "rewriting the probe object with If-Match on its own ETag",
    probe_stale: "writing the probe object with If-Match on a stale ETag",
    ignored_stale: "If-Match on a stale ETag (the write was accepted)",
};

/// An S3 version: the ETag, and the `Last-Modified` time (whole seconds) where the response
/// carried it (a write's reply does not: the next read restarts the watch once more).
type Version = (String, Option<i64>);

/// An S3 body: its bytes and `Content-Type`.
type Body = (Vec<u8>, &'static str);

impl S3Objects {
    pub(crate) fn new(
        connection: Connection,
        force_path_style: bool,
        bucket: String,
        create_bucket: bool,
    ) -> Self {
        Self {
            sdk: S3Client::new(connection),
            force_path_style,
            bucket,
            create_bucket,
        }
    }

    /// The bucket holding the lease object.
    #[must_use]
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The requests this store has sent so far, by method: what the election costs.
    #[must_use]
    pub fn request_counts(&self) -> RequestCounts {
        self.sdk.wire().tally.counts()
    }

    /// The S3 client of this store (built from the AWS configuration at the first call, which
    /// cannot fail: missing credentials show at the first request), for inspection or operator
    /// actions on the lease object. Its requests count in
    /// [`request_counts`](Self::request_counts).
    pub async fn client(&self) -> aws_sdk_s3::Client {
        self.client_ref().await.clone()
    }

    async fn client_ref(&self) -> &aws_sdk_s3::Client {
        self.sdk
            .get(|connection, wire| build_client(connection, self.force_path_style, wire))
            .await
    }

    async fn create_bucket(&self) -> Result<(), Failure> {
        let client = self.client_ref().await;
        let mut create = client.create_bucket().bucket(&self.bucket);
        let region = client.config().region().map(|r| r.as_ref().to_owned());
        if let Some(region) = region.filter(|r| r != crate::DEFAULT_REGION) {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(region.as_str().into())
                    .build(),
            );
        }
        match Box::pin(create.send()).await.map_err(|e| failure(&e)) {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, "created the bucket");
                Ok(())
            }
            Err(f) if f.kind == FailureKind::ConditionFailed => Ok(()),
            Err(f) => Err(f),
        }
    }
}

fn version_of(
    etag: Option<&str>,
    last_modified: Option<&aws_sdk_s3::primitives::DateTime>,
) -> Option<Version> {
    etag.map(|etag| (etag.to_owned(), last_modified.map(|t| t.secs())))
}

impl ConditionalObjects for S3Objects {
    type Version = Version;
    type Body = Body;

    fn container(&self) -> &str {
        &self.bucket
    }

    fn terms(&self) -> &Terms {
        &TERMS
    }

    fn endpoint(&self) -> String {
        self.sdk
            .connection()
            .describe("AWS S3", "bucket", &self.bucket)
    }

    fn service_time(&self) -> u64 {
        self.sdk.wire().clock.latest()
    }

    async fn prepare(&self) {
        self.client_ref().await;
    }

    /// `HEAD` when a version is known (all a follower pays while the object is unchanged),
    /// then `GET`; a 404 is a missing object (or bucket).
    async fn read(
        &self,
        name: &str,
        known: Option<&Version>,
    ) -> Result<Read<Version, Body>, Failure> {
        let client = self.client_ref().await;
        if let Some(known) = known {
            let head = client.head_object().bucket(&self.bucket).key(name);
            match Box::pin(head.send()).await.map_err(|e| failure(&e)) {
                Ok(output) => {
                    if version_of(output.e_tag(), output.last_modified()).as_ref() == Some(known) {
                        return Ok(Read::Unchanged);
                    }
                }
                Err(f) if is_missing(&f) => return Ok(Read::Missing),
                Err(f) => return Err(f),
            }
        }
        let get = client.get_object().bucket(&self.bucket).key(name);
        let output = match Box::pin(get.send()).await.map_err(|e| failure(&e)) {
            Ok(output) => output,
            Err(f) if is_missing(&f) => return Ok(Read::Missing),
            Err(f) => return Err(f),
        };
        let version = version_of(output.e_tag(), output.last_modified())
            .ok_or_else(|| Failure::new(FailureKind::Invalid, "S3 sent no ETag"))?;
        let body = output.body.collect().await.map_err(|err| {
            Failure::new(
                FailureKind::Refused { retryable: true },
                format!("reading the object {} failed: {err}", quoted(name)),
            )
        })?;
        Ok(Read::Found(version, (body.into_bytes().to_vec(), "")))
    }

    /// One `PUT` on `If-None-Match: *` or `If-Match`, creating the bucket first if it is
    /// missing and may be created.
    async fn write(
        &self,
        name: &str,
        condition: Condition<&Version>,
        (bytes, content_type): Body,
    ) -> Result<Version, Failure> {
        let client = self.client_ref().await;
        let mut created_bucket = false;
        loop {
            let put = client
                .put_object()
                .bucket(&self.bucket)
                .key(name)
                .content_type(content_type)
                .body(ByteStream::from(bytes.clone()));
            let put = match condition {
                Condition::Missing => put.if_none_match("*"),
                Condition::Version((etag, _)) => put.if_match(etag),
            };
            match Box::pin(put.send()).await.map_err(|e| failure(&e)) {
                Ok(output) => {
                    return output
                        .e_tag()
                        .filter(|etag| !etag.is_empty())
                        .map(|etag| (etag.to_owned(), None))
                        .ok_or_else(|| {
                            Failure::new(
                                FailureKind::InFlight,
                                "S3 accepted the write but sent no ETag",
                            )
                        });
                }
                Err(f)
                    if self.create_bucket
                        && !created_bucket
                        && f.kind == FailureKind::NoContainer =>
                {
                    created_bucket = true;
                    self.create_bucket().await?;
                }
                Err(f) => return Err(f),
            }
        }
    }

    async fn delete(&self, name: &str) -> Result<(), Failure> {
        let client = self.client_ref().await;
        let delete = client.delete_object().bucket(&self.bucket).key(name);
        Box::pin(delete.send())
            .await
            .map(drop)
            .map_err(|e: SdkError<_, _>| failure(&e))
    }

    fn encode_lease(&self, record: &LeaseRecord) -> Body {
        (record::encode(record), "application/json")
    }

    fn decode_lease(&self, (bytes, _): &Body) -> Result<LeaseRecord, String> {
        record::decode(bytes)
    }

    fn encode_candidate(&self, candidate: &CandidateRecord) -> Body {
        (record::encode_candidate(candidate), "application/json")
    }

    fn decode_candidate(&self, (bytes, _): &Body) -> Option<CandidateRecord> {
        record::decode_candidate(bytes)
    }

    /// The record's bytes as they are. S3's ETag of a simple upload is the MD5 of the body, so
    /// a record written again with the same bytes gets the same ETag back: the
    /// [`RecordVersion`](leader_election::store::RecordVersion) contract is that a version is
    /// never given to *another content* of the record, which an MD5 of the content cannot be.
    /// A write on version `v` succeeds only while the record holds exactly the bytes read at
    /// `v`; an `A → B → A` sequence is not seen.
    fn encode_data(&self, data: &[u8]) -> Body {
        (data.to_vec(), "application/octet-stream")
    }

    fn decode_data(&self, (bytes, _): Body) -> Result<Vec<u8>, String> {
        Ok(bytes)
    }

    fn encode_probe(&self, step: &str) -> Body {
        (
            format!("leader-election-s3 probe: {step}").into_bytes(),
            "application/json",
        )
    }

    fn version_text(&self, (etag, _): &Version) -> String {
        etag.clone()
    }

    fn version_from_text(&self, text: &str) -> Version {
        (text.to_owned(), None)
    }

    fn made_up_version(&self) -> Version {
        ("\"00000000000000000000000000000000\"".to_owned(), None)
    }
}

/// A 404: the object (or its bucket) is missing.
fn is_missing(f: &Failure) -> bool {
    matches!(f.kind, FailureKind::NotFound | FailureKind::NoContainer)
}
