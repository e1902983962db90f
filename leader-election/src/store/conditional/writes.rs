//! The store's conditional writes: taking the object for a lease (with its token), the
//! placeholder over a deleted object, and a renewal or release rewritten over a write whose
//! reply was lost.

use std::time::Duration;

use tokio::time::Instant;

use super::clock::{DATE_WAIT, clock_passed, next_token};
use super::{
    Budget, Condition, ConditionalObjects, ConditionalStore, FailureKind, LeaseRecord, Seen, Watch,
};
use crate::error::{Error, Operation, Result};
use crate::store::{AcquireOutcome, Lease, LeaseRequest};
use crate::token::FencingToken;

impl<B: ConditionalObjects> ConditionalStore<B> {
    /// Writes the record of `request` holding the lease with `token` on `condition`: an
    /// acquisition.
    pub(super) async fn take(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        condition: Condition<B::Version>,
        token: FencingToken,
    ) -> Result<AcquireOutcome> {
        let record = LeaseRecord::held(request, token);
        let condition = match &condition {
            Condition::Missing => Condition::Missing,
            Condition::Version(version) => Condition::Version(version),
        };
        match self.put(budget, condition, &record).await {
            Ok(version) => {
                self.wrote(&request.lease_id, version, record);
                tracing::debug!(
                    election = %self.election_name,
                    instance_id = %request.instance_id,
                    token = %token,
                    "acquired the {} lease",
                    self.backend.terms().service,
                );
                Ok(AcquireOutcome::Acquired(Lease::new(token)))
            }
            // Somebody else wrote first (or deleted the object): not ours.
            Err(f) if f.lost() => {
                tracing::debug!(error = %f.message, "conditional write lost");
                Ok(AcquireOutcome::Held {
                    leader: None,
                    expires_in: None,
                })
            }
            Err(f) => Err(self.fail(f, Operation::Acquire, true)),
        }
    }

    /// The next token over a record holding `previous` (`None`: no readable token).
    pub(super) fn mint(&self, previous: Option<u64>) -> Result<FencingToken> {
        let floor = self.state().highest_token;
        next_token(previous, floor, self.backend.service_time())
            .map(FencingToken::new)
            .ok_or_else(|| Error::invalid_data(Operation::Acquire, "the fencing token overflowed"))
    }

    /// Writes a placeholder over the missing object ([`Condition::Missing`]), with a token
    /// above every token this store has seen and `longest`, the longest lease it knows of.
    /// Answers whether it was written (`false`: something was written first, read it again).
    pub(super) async fn write_placeholder(
        &self,
        budget: &Budget,
        longest: Duration,
    ) -> Result<bool> {
        let record = LeaseRecord::placeholder(self.mint(None)?, longest);
        match self.put(budget, Condition::Missing, &record).await {
            Ok(version) => {
                tracing::info!(
                    election = %self.election_name,
                    "the lease {} is missing after it was seen: wrote a placeholder to watch \
                     for a lease",
                    self.backend.terms().object,
                );
                self.observe(Some(version), Seen::Record(record));
                Ok(true)
            }
            Err(f) if f.kind == FailureKind::ConditionFailed => Ok(false),
            Err(f) if f.kind == FailureKind::NoContainer => {
                Err(self.no_container(Operation::Acquire))
            }
            // The placeholder grants nothing: an unknown outcome is an ordinary failure.
            Err(f) => Err(Error::backend(
                Operation::Acquire,
                true,
                super::StoreError(f.message),
            )),
        }
    }

    /// Whether the service's clock has passed the second in which `watch`'s version was first
    /// seen (so that a token minted now is above every token minted before that version was
    /// read); if not, sleeps until it can have (answering `None`: read again) or, when the
    /// budget is too short, answers how long to wait.
    pub(super) async fn clock_gate(
        &self,
        budget: &Budget,
        watch: &Watch<B::Version>,
    ) -> Option<Option<Duration>> {
        if clock_passed(watch.date, self.backend.service_time()) {
            return Some(None);
        }
        let until = watch.since + DATE_WAIT;
        let now = Instant::now();
        // Room for the read and the write after the sleep.
        let room = (budget.total / 2).min(Duration::from_millis(500));
        if until + room <= budget.end() {
            tokio::time::sleep_until(until.max(now)).await;
            None
        } else {
            Some(Some(
                until
                    .saturating_duration_since(now)
                    .max(Duration::from_millis(10)),
            ))
        }
    }

    /// Renews or releases after a refused write: if the object still shows `request`'s lease
    /// with `token` (an earlier write whose reply was lost), writes `record` on that version.
    /// Answers the new version, or `None` when the lease is not this store's any more.
    pub(super) async fn rewrite_if_still_owned(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        token: FencingToken,
        record: &LeaseRecord,
        operation: Operation,
    ) -> Result<Option<B::Version>> {
        let look = self.look(budget, operation).await?;
        let owned = matches!(&look.seen, Seen::Record(r) if r.is_owned_by(request) && r.token == token.get());
        let Some(version) = look.version.filter(|_| owned) else {
            self.forget(&request.lease_id);
            return Ok(None);
        };
        match self.put(budget, Condition::Version(&version), record).await {
            Ok(version) => Ok(Some(version)),
            Err(f) if f.lost() => {
                self.forget(&request.lease_id);
                Ok(None)
            }
            Err(f) => Err(self.fail(f, operation, true)),
        }
    }
}
