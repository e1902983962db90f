//! The proof, made once by `connect`, that the service enforces the condition expressions
//! every safety argument of this crate rests on (DESIGN.md, rule 12): a service that silently
//! ignored `attribute_not_exists(pk)` or a stale `#v = :v` would let two leaders in, and must
//! never be trusted with an election.

use aws_sdk_dynamodb::types::AttributeValue;
use leader_election::{Error, Operation, Result};

use super::{Budget, Condition, DynamoDbLeaseStore};
use crate::error::{DynamoError, RequestFailure};
use crate::record::{Item, PK, VERSION, new_version};

/// What a probe write was meant to show, and how it turned out.
enum Probe {
    /// The service refused the write as it should (`ConditionalCheckFailedException`).
    Refused,
    /// The service accepted it: the condition was ignored.
    Ignored,
}

impl DynamoDbLeaseStore {
    /// Writes a probe item next to the lease item (`<key>.p<8 hex digits>`, new for every
    /// proof) and checks that the service refuses `attribute_not_exists(pk)` on it once it
    /// exists, and `#v = :v` on a version it no longer has; then deletes it. Errors that
    /// prevent the proof are retryable; a service that ignored a condition gets an error that
    /// is not, naming the endpoint and every condition it ignored.
    pub(super) async fn prove_conditions(&self) -> Result<()> {
        let budget = Budget::new(self.request_timeout);
        let key = format!("{}.p{:08x}", self.key, fastrand::u32(..));
        let failed = |f: RequestFailure, step: &str| {
            if f.is_missing_table() {
                return self.no_table(Operation::Connect);
            }
            Error::backend(
                Operation::Connect,
                f.is_retryable(),
                DynamoError::new(format!(
                    "proving that DynamoDB at {} enforces condition expressions: {step}: {}",
                    self.endpoint_name(),
                    f.error
                )),
            )
        };
        let first = new_version();
        self.put_item(&budget, &Condition::Missing, probe_item(&key, &first))
            .await
            .map_err(|f| failed(f, "creating the probe item with attribute_not_exists(pk)"))?;
        let result = self.probe_steps(&budget, &key, first).await;
        let delete = self
            .client_ref()
            .await
            .delete_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(key.clone()));
        if let Err(f) = self.send(&budget, delete.send()).await {
            tracing::warn!(
                election = %self.election_name,
                key = %key,
                error = %f.error,
                "could not delete the probe item of the condition check"
            );
        }
        let ignored = result.map_err(|(f, step)| failed(f, step))?;
        if ignored.is_empty() {
            tracing::debug!(election = %self.election_name, "the service enforces conditions");
            return Ok(());
        }
        Err(Error::backend(
            Operation::Connect,
            false,
            DynamoError::new(format!(
                "DynamoDB at {} ignored {}: it does not enforce condition expressions, so it \
                 cannot keep two leaders apart; refusing to hold an election on it",
                self.endpoint_name(),
                ignored.join(" and ")
            )),
        ))
    }

    /// The checks after the probe item was created at version `first`: the conditions the
    /// service ignored, or the request that failed and what it was for.
    async fn probe_steps(
        &self,
        budget: &Budget,
        key: &str,
        first: String,
    ) -> std::result::Result<Vec<&'static str>, (RequestFailure, &'static str)> {
        let mut ignored = Vec::new();
        const EXISTING: &str = "writing the probe item again with attribute_not_exists(pk)";
        let again = new_version();
        if let Probe::Ignored = self
            .probe_write(
                budget,
                &Condition::Missing,
                probe_item(key, &again),
                EXISTING,
            )
            .await?
        {
            ignored.push("attribute_not_exists(pk) on an existing item (it was overwritten)");
        }
        // A matching version must be accepted: it makes the version read first stale.
        const MATCHING: &str = "rewriting the probe item on its own version";
        let current = if ignored.is_empty() { first } else { again };
        match self
            .put_item(
                budget,
                &Condition::Version(current.clone()),
                probe_item(key, &new_version()),
            )
            .await
        {
            Ok(()) => {}
            Err(f) => return Err((f, MATCHING)),
        }
        const STALE: &str = "writing the probe item on a stale version";
        if let Probe::Ignored = self
            .probe_write(
                budget,
                &Condition::Version(current),
                probe_item(key, &new_version()),
                STALE,
            )
            .await?
        {
            ignored.push("a condition on a stale version (the write was accepted)");
        }
        Ok(ignored)
    }

    async fn probe_write(
        &self,
        budget: &Budget,
        condition: &Condition,
        item: Item,
        step: &'static str,
    ) -> std::result::Result<Probe, (RequestFailure, &'static str)> {
        match self.put_item(budget, condition, item).await {
            Ok(()) => Ok(Probe::Ignored),
            Err(f) if f.is_conflict() => Ok(Probe::Refused),
            Err(f) => Err((f, step)),
        }
    }

    /// The service's endpoint, for messages.
    pub(super) fn endpoint_name(&self) -> String {
        let table = leader_election::backend::quoted(&self.table);
        match &self.connection {
            super::Connection::Settings {
                endpoint: Some(endpoint),
                ..
            } => format!("{endpoint} (table {table})"),
            super::Connection::Settings { .. } => format!("AWS (table {table})"),
            super::Connection::Client(_) => {
                format!("the endpoint of the client given (table {table})")
            }
        }
    }
}

/// A probe item at `version`.
fn probe_item(key: &str, version: &str) -> Item {
    let mut item = Item::new();
    item.insert(PK.to_owned(), AttributeValue::S(key.to_owned()));
    item.insert(VERSION.to_owned(), AttributeValue::S(version.to_owned()));
    item.insert(
        "probe".to_owned(),
        AttributeValue::S("leader-election-dynamodb: condition check".to_owned()),
    );
    item
}
