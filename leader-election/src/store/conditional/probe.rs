//! The proof, made once by `connect`, that the service enforces the conditional writes every
//! safety argument of the engine rests on (DESIGN.md, rule 12): a service that silently
//! ignored [`Condition::Missing`] or a stale [`Condition::Version`] would let two leaders in,
//! and must never be trusted with an election.

use super::{Budget, Condition, ConditionalObjects, ConditionalStore, Failure, StoreError};
use crate::error::{Error, Operation, Result};

/// A failed step of the proof: the failure, and what the step was for.
type StepFailure = (Failure, &'static str);

impl<B: ConditionalObjects> ConditionalStore<B> {
    /// Writes a probe object next to the lease object (`<key>.p<8 hex digits>`, new for every
    /// proof) and checks that the service refuses [`Condition::Missing`] on it once it exists,
    /// and [`Condition::Version`] on a version it no longer has; then deletes it. Errors that
    /// prevent the proof are retryable; a service that ignored a condition gets an error that
    /// is not, naming the endpoint and every condition it ignored.
    pub(super) async fn prove_conditions(&self) -> Result<()> {
        let budget = Budget::new(self.request_timeout);
        let terms = self.backend.terms();
        let key = format!("{}.p{:08x}", self.key, fastrand::u32(..));
        let result = self.probe_steps(&budget, &key).await;
        if let Err(f) = budget.run(self.backend.delete(&key)).await {
            tracing::warn!(
                election = %self.election_name,
                key = %key,
                error = %f.message,
                "could not delete the probe {} of the conditional-write check",
                terms.object,
            );
        }
        let ignored = match result {
            Ok(ignored) => ignored,
            Err((f, _)) if f.kind == super::FailureKind::NoContainer => {
                return Err(self.no_container(Operation::Connect));
            }
            Err((f, step)) => {
                return Err(Error::backend(
                    Operation::Connect,
                    f.is_retryable(),
                    StoreError(format!(
                        "proving that {} {} enforces {}: {step}: {}",
                        terms.service_at,
                        self.backend.endpoint(),
                        terms.conditions,
                        f.message
                    )),
                ));
            }
        };
        if ignored.is_empty() {
            tracing::debug!(election = %self.election_name, "the service enforces conditional writes");
            return Ok(());
        }
        Err(Error::backend(
            Operation::Connect,
            false,
            StoreError(format!(
                "{} {} ignored {}: it does not enforce {}, so it cannot keep two leaders apart; \
                 refusing to hold an election on it",
                terms.service_at,
                self.backend.endpoint(),
                ignored.join(" and "),
                terms.conditions,
            )),
        ))
    }

    /// Creates the probe object and checks both conditions: the conditions the service
    /// ignored, or the request that failed and what it was for.
    async fn probe_steps(
        &self,
        budget: &Budget,
        key: &str,
    ) -> std::result::Result<Vec<&'static str>, StepFailure> {
        let terms = self.backend.terms();
        let first = self
            .probe_write(budget, key, Condition::Missing, "created")
            .await
            .map_err(|f| (f, terms.probe_create))?;
        let mut ignored = Vec::new();
        let mut latest = first;
        match self
            .probe_write(budget, key, Condition::Missing, "again")
            .await
        {
            Ok(again) => {
                ignored.push(terms.ignored_missing);
                latest = again;
            }
            Err(f) if f.lost() => {}
            Err(f) => return Err((f, terms.probe_again)),
        }
        // A write on the object's own version must succeed: it makes that version stale.
        let current = match self
            .probe_write(budget, key, Condition::Version(&latest), "rewritten")
            .await
        {
            Ok(version) => Some(version),
            // Overwritten by the ignored condition above: its version is not known.
            Err(f) if f.lost() && !ignored.is_empty() => None,
            Err(f) => return Err((f, terms.probe_matching)),
        };
        let stale = match current {
            Some(current) if current != latest => latest,
            // The version did not change (or is unknown): no version is known to be stale but
            // a made-up one.
            _ => self.backend.made_up_version(),
        };
        match self
            .probe_write(budget, key, Condition::Version(&stale), "stale")
            .await
        {
            Ok(_) => ignored.push(terms.ignored_stale),
            Err(f) if f.lost() => {}
            Err(f) => return Err((f, terms.probe_stale)),
        }
        Ok(ignored)
    }

    async fn probe_write(
        &self,
        budget: &Budget,
        key: &str,
        condition: Condition<&B::Version>,
        step: &str,
    ) -> std::result::Result<B::Version, Failure> {
        let body = self.backend.encode_probe(step);
        budget.run(self.backend.write(key, condition, body)).await
    }
}
