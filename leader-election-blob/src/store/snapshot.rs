//! One read of the lease blob: its lease state and metadata, as Get Blob Properties shows them.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use azure_core::http::Etag;
use azure_storage_blob::models::{
    BlobClientGetPropertiesOptions, BlobClientGetPropertiesResultHeaders, LeaseState,
};
use leader_election::backend::quoted;
use leader_election::{Error, FencingToken, LeaderInfo, Operation};
use tokio::time::Instant;

use super::touched::Marker;
use super::{
    BlobLeaseStore, MAX_LEASE_SECS, META_INSTANCE, META_LEASE, META_LEASE_SECS, META_METADATA,
    META_TOKEN,
};
use crate::clock::{Budget, date_of};
use crate::encoding::{metadata_bytes, percent_decode};
use crate::error::AzureFailure;

/// The blob's lease state and metadata, as read by one Get Blob Properties.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub(super) leased: bool,
    /// The lease state is `broken`: an operator broke it.
    pub(super) broken: bool,
    /// The lease state is `breaking`: broken, and locked until the break period ends.
    pub(super) breaking: bool,
    /// A touch recorded by a contender (see [`super::touched`]).
    pub(super) marker: Option<Marker>,
    /// The lease duration recorded with the token, in seconds.
    pub(super) lease_secs: Option<u64>,
    /// The metadata as read (names in lower case), kept when a touch is recorded.
    pub(super) metadata: HashMap<String, String>,
    pub(super) etag: Option<Etag>,
    pub(super) instance_id: Option<String>,
    /// The stored token; `None` when missing or unreadable (overwritten by hand).
    pub(super) token: Option<u64>,
    pub(super) lease_hash: Option<String>,
    /// The response's `Date`, in Unix seconds.
    pub(super) date: Option<u64>,
    /// When the response arrived, on the local monotonic clock.
    pub(super) at: Instant,
}

impl Snapshot {
    pub(super) fn leader(&self) -> Option<LeaderInfo> {
        if !self.leased {
            return None;
        }
        // Leased but not (yet) described: the holder acquired and has not written its
        // metadata, or crashed in between.
        let instance_id = self.instance_id.clone().unwrap_or_else(|| "unknown".into());
        // Written by hand and unreadable: shown as none, as an unreadable token is.
        let metadata = self
            .metadata
            .get(META_METADATA)
            .and_then(|raw| metadata_bytes(raw));
        Some(
            LeaderInfo::new(instance_id, self.token.map(FencingToken::new)).with_metadata(metadata),
        )
    }
}

impl BlobLeaseStore {
    /// Get Blob Properties, optionally under `lease_id` (which fails unless it holds the lease).
    pub(super) async fn read(
        &self,
        budget: &Budget,
        lease_id: Option<&str>,
        operation: Operation,
    ) -> std::result::Result<Snapshot, ReadError> {
        let options = BlobClientGetPropertiesOptions {
            lease_id: lease_id.map(str::to_owned),
            ..Default::default()
        };
        let response = self
            .send(budget, self.blob.get_properties(Some(options)))
            .await
            .map_err(ReadError::Azure)?;
        let at = Instant::now();
        let malformed = |what: &str| {
            ReadError::Invalid(Error::invalid_data(
                operation,
                format!("unreadable {what} in the lease blob's properties"),
            ))
        };
        let state = response
            .lease_state()
            .map_err(|_| malformed("lease state"))?;
        let etag = response.etag().map_err(|_| malformed("ETag"))?;
        let metadata: HashMap<String, String> = response
            .metadata()
            .map_err(|_| malformed("metadata"))?
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        // Metadata written by hand does not stop the election: an unreadable token counts as
        // none (the next one is minted from the service's clock), an unreadable id as unknown.
        let token = metadata.get(META_TOKEN).and_then(|raw| {
            let token = raw.trim().parse::<u64>().ok();
            if token.is_none() {
                tracing::warn!(
                    election = %self.election_name,
                    value = %quoted(raw),
                    "the lease blob's `{META_TOKEN}` is not a number; ignoring it"
                );
            }
            token
        });
        let instance_id = metadata
            .get(META_INSTANCE)
            .and_then(|raw| percent_decode(raw));
        if let Some(token) = token {
            self.highest_token.fetch_max(token, Ordering::AcqRel);
        }
        let lease_secs = metadata
            .get(META_LEASE_SECS)
            .and_then(|raw| raw.trim().parse::<u64>().ok())
            .map(|secs| secs.min(MAX_LEASE_SECS));
        if let Some(secs) = lease_secs {
            self.longest_seen.fetch_max(secs, Ordering::AcqRel);
        }
        Ok(Snapshot {
            leased: matches!(state, Some(LeaseState::Leased | LeaseState::Breaking)),
            broken: matches!(state, Some(LeaseState::Broken)),
            breaking: matches!(state, Some(LeaseState::Breaking)),
            marker: Marker::read(&metadata),
            lease_secs,
            etag,
            instance_id,
            token,
            lease_hash: metadata.get(META_LEASE).cloned(),
            date: date_of(response.headers()),
            at,
            metadata,
        })
    }
}

/// A failed read: Azure's answer, or properties this crate cannot interpret.
#[derive(Debug)]
pub(super) enum ReadError {
    Azure(AzureFailure),
    Invalid(Error),
}

impl ReadError {
    pub(super) fn into_error(self, azure: impl FnOnce(AzureFailure) -> Error) -> Error {
        match self {
            Self::Azure(f) => azure(f),
            Self::Invalid(err) => err,
        }
    }
}
