//! Minting the fencing token of a lease just acquired: from the counter on the blob, or from
//! the service's clock over a blob version without one, written under the lease.

use super::publish::holder_metadata;
use super::*;

/// What an acquisition does after reading a blob version without a counter.
pub(super) enum Clock {
    /// Mint now.
    Ready,
    /// Waited for the service's clock: read again.
    Waited,
    /// Not enough time left to wait for the service's clock.
    NoTime,
}

impl BlobLeaseStore {
    /// Over a blob version without a counter: whether a token may be minted from the
    /// service's clock now, or after a wait (then read again), or not within the budget.
    pub(super) async fn clock(&self, budget: &Budget, current: &Snapshot) -> Clock {
        let decision = gate(
            &mut lock(&self.observed),
            current.etag.as_ref(),
            current.date,
            current.at,
        );
        match decision {
            Gate::Open => Clock::Ready,
            Gate::WaitUntil(until) if wait_within(budget, until).await => Clock::Waited,
            Gate::WaitUntil(_) => Clock::NoTime,
            // No Date (or no ETag) to go by: as good as out of time, and said so below.
            Gate::Blind => Clock::NoTime,
        }
    }

    /// Mints the token of a lease just acquired with `lease_id`: the one already recorded for
    /// it, or a new one written under the lease, conditionally on the ETag.
    pub(super) async fn mint(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        lease_id: &str,
        hash: &str,
        lease_secs: i32,
        mut snapshot: Option<Snapshot>,
    ) -> Result<FencingToken> {
        loop {
            let current = match snapshot.take() {
                Some(snapshot) => snapshot,
                None => self
                    .read(budget, Some(lease_id), Operation::Acquire)
                    .await
                    .map_err(|e| e.into_error(after_acquiring))?,
            };
            let metadata = request.metadata.as_deref().map(metadata_base64);
            // Acquired again by its owner (a retry): the token stays; the leader metadata is
            // written again only if it changed.
            let recorded = current
                .token
                .filter(|_| current.lease_hash.as_deref() == Some(hash));
            if let Some(token) = recorded
                && current.metadata.get(META_METADATA) == metadata.as_ref()
            {
                self.published_under(lease_id, metadata);
                return Ok(FencingToken::new(token));
            }
            if recorded.is_none() && current.token.is_none() {
                match self.clock(budget, &current).await {
                    Clock::Ready => {}
                    Clock::Waited => continue,
                    Clock::NoTime => {
                        return Err(Error::outcome_unknown(
                            Operation::Acquire,
                            BlobError::new(format!(
                                "acquired the lease, but the blob holds no token and the \
                                 service's clock (Date) did not pass its second within the \
                                 operation_timeout of {:?}; asking again with the same lease \
                                 id completes the acquisition",
                                budget.total()
                            )),
                        ));
                    }
                }
            }
            let token = match recorded {
                Some(token) => token,
                None => next_token(
                    current.token,
                    self.highest_token.load(Ordering::Acquire),
                    budget.latest_date(),
                )
                .ok_or_else(|| {
                    Error::invalid_data(Operation::Acquire, "the fencing token overflowed")
                })?,
            };
            if !budget.room_for_write() {
                return Err(Error::outcome_unknown(
                    Operation::Acquire,
                    BlobError::new(format!(
                        "acquired the lease, but the operation_timeout of {:?} ran out before \
                         its token could be written; asking again with the same lease id \
                         completes the acquisition",
                        budget.total()
                    )),
                ));
            }
            let written = holder_metadata(request, token, hash, lease_secs, metadata.as_deref());
            let options = BlobClientSetMetadataOptions {
                lease_id: Some(lease_id.to_owned()),
                if_match: current.etag.clone(),
                ..Default::default()
            };
            match self
                .send(budget, self.blob.set_metadata(&written, Some(options)))
                .await
            {
                Ok(_) => {
                    self.highest_token.fetch_max(token, Ordering::AcqRel);
                    self.published_under(lease_id, metadata);
                    return Ok(FencingToken::new(token));
                }
                // The blob changed since it was read (a lease operation, or an earlier try of
                // this same acquisition, or it was deleted): read again and recompute.
                Err(f) if f.is(412, "ConditionNotMet") => {}
                Err(f) => return Err(after_acquiring(f)),
            }
        }
    }
}

/// The error of a request made after the lease was acquired and before its token was written.
/// The service's definite answers are errors with a known outcome (403: not allowed; 404, 409,
/// 412: the blob or the lease is gone, so nothing is held); anything that may have been served
/// leaves the acquisition's outcome unknown.
fn after_acquiring(f: AzureFailure) -> Error {
    match f.status() {
        Some(status) if status < 500 => f.into_error(Operation::Acquire, false),
        _ => Error::outcome_unknown(Operation::Acquire, f.error),
    }
}
