//! What the store writes on the blob for its holder: the instance id, token, lease hash and
//! duration, and the leader metadata, written again on a renewal when the metadata changed.

use super::*;

impl BlobLeaseStore {
    pub(super) fn published_under(&self, lease_id: &str, metadata: Option<String>) {
        *lock(&self.published) = Some((lease_id.to_owned(), metadata));
    }

    /// After a renewal under `lease_id`: writes the blob's metadata again if the request's
    /// leader metadata is not what this store last wrote under that lease id. Under the lease id
    /// alone: only the holder's write succeeds. Answers whether the lease is still held.
    pub(super) async fn publish_on_renewal(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        lease: &Lease,
        lease_id: &str,
    ) -> Result<RenewOutcome> {
        let metadata = request.metadata.as_deref().map(metadata_base64);
        let current = lock(&self.published)
            .as_ref()
            .is_some_and(|(id, written)| id == lease_id && *written == metadata);
        if current {
            return Ok(RenewOutcome::Renewed);
        }
        if !budget.room_for_write() {
            return Err(Error::backend(
                Operation::Renew,
                true,
                BlobError::new(format!(
                    "renewed the lease, but the operation_timeout of {:?} ran out before the \
                     new leader metadata could be written",
                    budget.total()
                )),
            ));
        }
        let seconds = lease_seconds(request.ttl, Operation::Renew)?;
        let written = holder_metadata(
            request,
            lease.token.get(),
            &lease_hash(&request.lease_id),
            seconds,
            metadata.as_deref(),
        );
        let options = BlobClientSetMetadataOptions {
            lease_id: Some(lease_id.to_owned()),
            ..Default::default()
        };
        match self
            .send(budget, self.blob.set_metadata(&written, Some(options)))
            .await
        {
            Ok(_) => {
                self.published_under(lease_id, metadata);
                Ok(RenewOutcome::Renewed)
            }
            Err(f) if matches!(f.status(), Some(404 | 409 | 412)) => {
                tracing::debug!(code = ?f.code, token = %lease.token, "metadata write refused");
                Ok(RenewOutcome::Lost)
            }
            Err(f) => Err(f.into_error(Operation::Renew, true)),
        }
    }
}

/// The blob's metadata while `request` holds the lease with `token`: its instance id, token,
/// lease hash and duration, and its leader metadata (base64) if any. Always written whole.
pub(super) fn holder_metadata(
    request: &LeaseRequest,
    token: u64,
    hash: &str,
    lease_secs: i32,
    metadata: Option<&str>,
) -> HashMap<String, String> {
    let mut written = HashMap::from([
        (
            META_INSTANCE.to_owned(),
            percent_encode(&request.instance_id),
        ),
        (META_TOKEN.to_owned(), token.to_string()),
        (META_LEASE.to_owned(), hash.to_owned()),
        (META_LEASE_SECS.to_owned(), lease_secs.to_string()),
    ]);
    if let Some(metadata) = metadata {
        written.insert(META_METADATA.to_owned(), metadata.to_owned());
    }
    written
}
