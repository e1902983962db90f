//! The proof, made once by `connect`, that the store enforces the conditional writes every
//! safety argument of this crate rests on (DESIGN.md, rule 12): a store that silently ignores
//! `If-None-Match: *` or a stale `If-Match` would let two leaders in, and must never be trusted
//! with an election.

use leader_election::{Error, Operation, Result};

use super::{Budget, Condition, S3LeaseStore};
use crate::error::{RequestFailure, S3Error};

/// What a probe write was meant to show, and how it turned out.
enum Probe {
    /// The store refused the write as it should (412, or 409 for a conflict).
    Refused,
    /// The store accepted it: the condition was ignored.
    Ignored,
}

impl S3LeaseStore {
    /// Writes a probe object next to the lease object (`<key>.p<8 hex digits>`, new for every
    /// proof) and checks that the store refuses `If-None-Match: *` on it once it exists, and
    /// `If-Match` on an ETag it no longer has; then deletes it. Errors that prevent the proof
    /// are retryable; a store that ignored a condition gets an error that is not, naming the
    /// endpoint and every condition it ignored.
    pub(super) async fn prove_conditions(&self) -> Result<()> {
        let budget = Budget::new(self.request_timeout);
        let key = format!("{}.p{:08x}", self.key, fastrand::u32(..));
        let body = |step: &str| format!("leader-election-s3 probe: {step}").into_bytes();
        let failed = |f: RequestFailure, step: &str| {
            if f.status() == Some(404) && f.code.as_deref() == Some("NoSuchBucket") {
                return self.no_bucket(Operation::Connect);
            }
            Error::backend(
                Operation::Connect,
                f.is_retryable(),
                S3Error::new(format!(
                    "proving that the S3 store at {} enforces conditional writes: {step}: {}",
                    self.endpoint_name(),
                    f.error
                )),
            )
        };
        let first = self
            .put_body(&budget, &key, &Condition::Missing, body("created"))
            .await
            .map_err(|f| failed(f, "creating the probe object with If-None-Match: *"))?;
        let result = self.probe_steps(&budget, &key, first, &body).await;
        let deleted = self
            .send(
                &budget,
                self.client_ref()
                    .await
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .send(),
            )
            .await;
        if let Err(f) = deleted {
            tracing::warn!(
                election = %self.election_name,
                key = %key,
                error = %f.error,
                "could not delete the probe object of the conditional-write check"
            );
        }
        let ignored = result.map_err(|(f, step)| failed(f, step))?;
        if ignored.is_empty() {
            tracing::debug!(election = %self.election_name, "the store enforces conditional writes");
            return Ok(());
        }
        Err(Error::backend(
            Operation::Connect,
            false,
            S3Error::new(format!(
                "the S3 store at {} ignored {}: it does not enforce conditional writes, so it \
                 cannot keep two leaders apart; refusing to hold an election on it",
                self.endpoint_name(),
                ignored.join(" and ")
            )),
        ))
    }

    /// The checks after the probe object was created as version `first`: the conditions the
    /// store ignored, or the request that failed and what it was for.
    async fn probe_steps(
        &self,
        budget: &Budget,
        key: &str,
        first: String,
        body: &impl Fn(&str) -> Vec<u8>,
    ) -> std::result::Result<Vec<&'static str>, (RequestFailure, &'static str)> {
        let mut ignored = Vec::new();
        const EXISTING: &str = "writing the probe object again with If-None-Match: *";
        if let Probe::Ignored = self
            .probe_write(budget, key, &Condition::Missing, body("again"), EXISTING)
            .await?
        {
            ignored.push("If-None-Match: * on an existing object (it was overwritten)");
        }
        // A matching If-Match must succeed: it makes the first version stale.
        const MATCHING: &str = "rewriting the probe object with If-Match on its own ETag";
        let current = match self
            .put_body(
                budget,
                key,
                &Condition::Version(first.clone()),
                body("rewritten"),
            )
            .await
        {
            Ok(etag) => etag,
            Err(f) if f.is_conflict() && !ignored.is_empty() => {
                // Overwritten by the ignored condition above: its ETag changed already.
                first.clone()
            }
            Err(f) => return Err((f, MATCHING)),
        };
        const STALE: &str = "writing the probe object with If-Match on a stale ETag";
        let stale = if current == first {
            // The ETag did not change (or is unknown): no version is known to be stale but a
            // made-up one.
            "\"00000000000000000000000000000000\"".to_owned()
        } else {
            first
        };
        if let Probe::Ignored = self
            .probe_write(
                budget,
                key,
                &Condition::Version(stale),
                body("stale"),
                STALE,
            )
            .await?
        {
            ignored.push("If-Match on a stale ETag (the write was accepted)");
        }
        Ok(ignored)
    }

    async fn probe_write(
        &self,
        budget: &Budget,
        key: &str,
        condition: &Condition,
        body: Vec<u8>,
        step: &'static str,
    ) -> std::result::Result<Probe, (RequestFailure, &'static str)> {
        match self.put_body(budget, key, condition, body).await {
            Ok(_) => Ok(Probe::Ignored),
            Err(f) if f.is_conflict() => Ok(Probe::Refused),
            Err(f) => Err((f, step)),
        }
    }

    /// The store's endpoint, for messages.
    pub(super) fn endpoint_name(&self) -> String {
        match &self.connection {
            super::Connection::Settings {
                endpoint: Some(endpoint),
                ..
            } => format!(
                "{endpoint} (bucket {})",
                leader_election::backend::quoted(&self.bucket)
            ),
            super::Connection::Settings { .. } => {
                format!(
                    "AWS S3 (bucket {})",
                    leader_election::backend::quoted(&self.bucket)
                )
            }
            super::Connection::Client(_) => format!(
                "the endpoint of the client given (bucket {})",
                leader_election::backend::quoted(&self.bucket)
            ),
        }
    }
}
