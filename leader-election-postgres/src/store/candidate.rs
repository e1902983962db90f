//! The candidate record of preferred leaders: one more row of the lease table, keyed by the
//! election's name, the unit separator (U+001F) and `candidate`, with the candidate's instance
//! id in `holder`, its priority in `token` and the record's expiry in `expires_at`. No schema
//! change and no privilege beyond the lease rows' (`SELECT`, `INSERT`, `UPDATE`).

use std::time::Duration;

use leader_election::priority::Candidate;
use leader_election::store::table::{self, micros};
use leader_election::{Operation, Result};

use super::{INT8, PostgresLeaseStore, TEXT, failed};

/// The key of an election's candidate row. Election names may not hold control characters, so
/// no election's lease or guard row has this key.
pub(crate) fn candidate_key(election: &str) -> String {
    format!("{election}\u{1f}candidate")
}

impl PostgresLeaseStore {
    /// The key of the election's candidate row of preferred leaders (the election's name, the
    /// unit separator U+001F, `candidate`).
    #[must_use]
    pub fn candidate_key(&self) -> String {
        candidate_key(&self.inner.election)
    }

    pub(super) async fn announce(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        let op = Operation::AnnounceCandidate;
        let client = self.client(op).await?;
        client
            .execute_typed(
                &self.inner.sql.announce_candidate,
                &[
                    (&self.candidate_key(), TEXT),
                    (&candidate.instance_id, TEXT),
                    (&i64::from(candidate.priority), INT8),
                    (&micros(ttl), INT8),
                ],
            )
            .await
            .map_err(|e| failed(op, e))?;
        Ok(())
    }

    pub(super) async fn strongest(&self) -> Result<Option<Candidate>> {
        let op = Operation::StrongestCandidate;
        let client = self.client(op).await?;
        // The lease rows' own read: holder and token of an unexpired row.
        let row = client
            .query_typed_opt(
                &self.inner.sql.statements.current,
                &[(&self.candidate_key(), TEXT)],
            )
            .await
            .map_err(|e| failed(op, e))?;
        let Some(row) = row else { return Ok(None) };
        let holder: String = row.try_get(0).map_err(|e| failed(op, e))?;
        let priority: i64 = row.try_get(1).map_err(|e| failed(op, e))?;
        table::candidate(op, holder, priority).map(Some)
    }
}
