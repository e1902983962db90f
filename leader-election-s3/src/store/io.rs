//! The store's requests: the SDK client (built at the first operation), one request within an
//! operation's budget, reading the object, and conditional writes.

use std::future::Future;
use std::sync::Arc;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use leader_election::{Error, Operation, Result};
use tokio::time::Instant;

use super::{Budget, Condition, Connection, Look, S3LeaseStore};
use crate::builder::DEFAULT_REGION;
use crate::clock::{Version, Watch};
use crate::error::{RequestFailure, S3Error};
use crate::record::{Record, Seen};
use crate::wire::WireInterceptor;

impl S3LeaseStore {
    pub(super) async fn client_ref(&self) -> &aws_sdk_s3::Client {
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
                        force_path_style,
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
                                "leader-election-s3",
                            ));
                        }
                        let shared = Box::pin(loader.load()).await;
                        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
                            .retry_config(RetryConfig::standard().with_max_attempts(1))
                            .force_path_style(*force_path_style)
                            // Checksums only where S3 requires them: S3-compatible stores do
                            // not all accept the SDK's default CRC trailers.
                            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
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
                aws_sdk_s3::Client::from_conf(config)
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

    /// Reads the object: `HEAD`, then `GET` when its version is new to this store (or `GET`
    /// alone when this store has read nothing yet), and updates the watch.
    pub(super) async fn look(&self, budget: &Budget, operation: Operation) -> Result<Look> {
        let client = self.client_ref().await;
        let cached = {
            let state = self.state();
            match (&state.watch, &state.seen) {
                (Some(watch), Some(seen)) => Some((watch.version.clone(), seen.clone())),
                _ => None,
            }
        };
        if let Some((cached_version, cached_seen)) = cached {
            let head = client.head_object().bucket(&self.bucket).key(&self.key);
            match self.send(budget, head.send()).await {
                Ok(output) => {
                    let version = output
                        .e_tag()
                        .map(|etag| Version::new(etag, output.last_modified().map(|t| t.secs())));
                    if version.is_some() && version == cached_version {
                        return Ok(self.observe(version, cached_seen));
                    }
                }
                Err(f) if f.status() == Some(404) => return Ok(self.observe(None, Seen::Missing)),
                Err(f) => return Err(f.into_error(operation, false)),
            }
        }
        let get = client.get_object().bucket(&self.bucket).key(&self.key);
        match self.send(budget, get.send()).await {
            Ok(output) => {
                let version = output
                    .e_tag()
                    .map(|etag| Version::new(etag, output.last_modified().map(|t| t.secs())))
                    .ok_or_else(|| Error::invalid_data(operation, "S3 sent no ETag"))?;
                let body = match tokio::time::timeout(budget.left(), output.body.collect()).await {
                    Ok(Ok(body)) => body.into_bytes(),
                    Ok(Err(err)) => {
                        return Err(Error::backend(
                            operation,
                            true,
                            S3Error::new(format!("reading the lease object failed: {err}")),
                        ));
                    }
                    Err(_) => {
                        return Err(
                            RequestFailure::timed_out(budget.total).into_error(operation, false)
                        );
                    }
                };
                Ok(self.observe(Some(version), Seen::decode(&body)))
            }
            Err(f) if f.status() == Some(404) => Ok(self.observe(None, Seen::Missing)),
            Err(f) => Err(f.into_error(operation, false)),
        }
    }

    /// Records that the object is at `version` holding `seen`, as of a response just
    /// received: the watch restarts when the version is new.
    pub(super) fn observe(&self, version: Option<Version>, seen: Seen) -> Look {
        let now = Instant::now();
        let date = self.wire.latest_date();
        let mut state = self.state();
        let same = state.watch.as_ref().is_some_and(|w| w.version == version);
        if !same {
            state.watch = Some(Watch {
                version: version.clone(),
                since: now,
                date,
            });
        }
        match &seen {
            Seen::Record(record) => {
                state.present_seen = true;
                state.highest_token = state.highest_token.max(record.token);
                if record.holder.is_some() {
                    state.highest_held = state.highest_held.max(record.token);
                }
                state.longest_lease = state.longest_lease.max(record.lease());
            }
            Seen::Unreadable => state.present_seen = true,
            Seen::Missing => {}
        }
        state.seen = Some(seen.clone());
        let watch = state.watch.clone().expect("set above");
        Look {
            etag: version.map(|v| v.etag),
            seen,
            watch,
        }
    }

    /// Writes `record` on `condition`; answers the new ETag.
    pub(super) async fn put(
        &self,
        budget: &Budget,
        condition: &Condition,
        record: &Record,
    ) -> std::result::Result<String, RequestFailure> {
        self.put_body(budget, &self.key, condition, record.encode())
            .await
    }

    /// Writes `body` (JSON) to `key` on `condition`, creating the bucket first if it is
    /// missing and may be created; answers the new ETag.
    pub(super) async fn put_body(
        &self,
        budget: &Budget,
        key: &str,
        condition: &Condition,
        body: Vec<u8>,
    ) -> std::result::Result<String, RequestFailure> {
        self.put_typed(budget, key, condition, body, "application/json")
            .await
    }

    /// [`put_body`](Self::put_body) with another `Content-Type`: every conditional write of
    /// this store, the lease object's, the candidate record's, the probes' and the election
    /// record's, is this one request.
    pub(super) async fn put_typed(
        &self,
        budget: &Budget,
        key: &str,
        condition: &Condition,
        body: Vec<u8>,
        content_type: &str,
    ) -> std::result::Result<String, RequestFailure> {
        let client = self.client_ref().await;
        let mut created_bucket = false;
        loop {
            let put = client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .content_type(content_type)
                .body(ByteStream::from(body.clone()));
            let put = match condition {
                Condition::Missing => put.if_none_match("*"),
                Condition::Version(etag) => put.if_match(etag),
            };
            match self.send(budget, put.send()).await {
                Ok(output) => {
                    return output
                        .e_tag()
                        .map(str::to_owned)
                        .ok_or_else(|| RequestFailure {
                            failure: crate::error::Failure::InFlight,
                            code: None,
                            error: S3Error::new("S3 accepted the write but sent no ETag"),
                        });
                }
                Err(f)
                    if self.create_bucket
                        && !created_bucket
                        && f.status() == Some(404)
                        && f.code.as_deref() == Some("NoSuchBucket") =>
                {
                    created_bucket = true;
                    self.create_bucket(budget).await?;
                }
                Err(f) => return Err(f),
            }
        }
    }

    pub(super) async fn create_bucket(
        &self,
        budget: &Budget,
    ) -> std::result::Result<(), RequestFailure> {
        let client = self.client_ref().await;
        let mut create = client.create_bucket().bucket(&self.bucket);
        let region = client.config().region().map(|r| r.as_ref().to_owned());
        if let Some(region) = region.filter(|r| r != DEFAULT_REGION) {
            create = create.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(region.as_str().into())
                    .build(),
            );
        }
        match self.send(budget, create.send()).await {
            Ok(_) => {
                tracing::info!(bucket = %self.bucket, "created the bucket");
                Ok(())
            }
            Err(f) if f.status() == Some(409) => Ok(()),
            Err(f) => Err(f),
        }
    }
}
