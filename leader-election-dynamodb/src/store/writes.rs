//! The store's conditional writes: taking the item for a lease (with its token), the
//! placeholder over a deleted item, and a renewal or release rewritten over a write whose
//! reply was lost.

use super::*;

impl DynamoDbLeaseStore {
    /// Writes the record of `request` holding the lease with `token` on `condition`: an
    /// acquisition.
    pub(super) async fn take(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        condition: Condition,
        token: FencingToken,
    ) -> Result<AcquireOutcome> {
        let record = Record::held(request, token);
        match self.put(budget, &condition, &record).await {
            Ok(version) => {
                self.wrote(&request.lease_id, version, record);
                tracing::debug!(
                    election = %self.election_name,
                    instance_id = %request.instance_id,
                    token = %token,
                    "acquired the DynamoDB lease"
                );
                Ok(AcquireOutcome::Acquired(Lease::new(token)))
            }
            Err(f) if f.is_missing_table() => Err(self.no_table(Operation::Acquire)),
            // Somebody else wrote first (or deleted the item): not ours.
            Err(f) if f.is_conflict() => {
                tracing::debug!(code = ?f.code, "conditional write lost");
                Ok(AcquireOutcome::Held {
                    leader: None,
                    expires_in: None,
                })
            }
            Err(f) => Err(f.into_error(Operation::Acquire, true)),
        }
    }

    /// The next token over a record holding `previous` (`None`: no readable token).
    pub(super) fn mint(&self, previous: Option<u64>) -> Result<FencingToken> {
        let floor = self.state().highest_token;
        next_token(previous, floor, self.wire.latest_date())
            .map(FencingToken::new)
            .ok_or_else(|| Error::invalid_data(Operation::Acquire, "the fencing token overflowed"))
    }

    /// Writes a placeholder over the missing item (`attribute_not_exists(pk)`), with a token above
    /// every token this store has seen and `longest`, the longest lease it knows of. Answers
    /// whether it was written (`false`: something was written first, read it again).
    pub(super) async fn write_placeholder(
        &self,
        budget: &Budget,
        longest: Duration,
    ) -> Result<bool> {
        let record = Record::placeholder(self.mint(None)?, longest);
        match self.put(budget, &Condition::Missing, &record).await {
            Ok(version) => {
                tracing::info!(
                    election = %self.election_name,
                    "the lease item is missing after it was seen: wrote a placeholder to watch \
                     for a lease"
                );
                self.observe(Some(Version::new(version)), Seen::Record(record));
                Ok(true)
            }
            Err(f) if f.is_conflict() => Ok(false),
            Err(f) if f.is_missing_table() => Err(self.no_table(Operation::Acquire)),
            // The placeholder grants nothing: an unknown outcome is an ordinary failure.
            Err(f) => Err(Error::backend(Operation::Acquire, true, f.error)),
        }
    }

    pub(super) fn no_table(&self, operation: Operation) -> Error {
        Error::backend(
            operation,
            true,
            DynamoError::new(format!(
                "the table {} does not exist or is not active yet (and \
                 create_table_if_not_exists is off)",
                leader_election::backend::quoted(&self.table)
            )),
        )
    }

    /// Whether the service's clock has passed the second in which `watch`'s version was first
    /// seen (so that a token minted now is above every token minted before that version was
    /// read); if not, sleeps until it can have (answering `None`: read
    /// again) or, when the budget is too short, answers how long to wait.
    pub(super) async fn clock_gate(
        &self,
        budget: &Budget,
        watch: &Watch,
    ) -> Option<Option<Duration>> {
        if clock_passed(watch.date, self.wire.latest_date()) {
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

    /// Renews or releases after a refused write: if the item still shows `request`'s lease
    /// with `token` (an earlier write whose reply was lost), writes `record` on that version.
    /// Answers the new version, or `None` when the lease is not this store's any more.
    pub(super) async fn rewrite_if_still_owned(
        &self,
        budget: &Budget,
        request: &LeaseRequest,
        token: FencingToken,
        record: &Record,
        operation: Operation,
    ) -> Result<Option<String>> {
        let look = self.look(budget, operation).await?;
        let owned = matches!(&look.seen, Seen::Record(r) if r.is_owned_by(request) && r.token == token.get());
        let Some(condition) = look.condition.filter(|_| owned) else {
            self.forget(&request.lease_id);
            return Ok(None);
        };
        match self.put(budget, &condition, record).await {
            Ok(version) => Ok(Some(version)),
            Err(f) if f.is_conflict() => {
                self.forget(&request.lease_id);
                Ok(None)
            }
            Err(f) => Err(f.into_error(operation, true)),
        }
    }
}
