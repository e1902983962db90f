//! The candidate record of preferred leaders: `<key>/candidate`, attached to an etcd lease of
//! its own, replaced only by a transaction that compares what was read.
//!
//! Each candidacy (a candidate's instance id) keeps one etcd lease for its announcements: an
//! announcement keeps it alive (so the record lives `ttl` from the last announcement) and
//! grants a new one only when it expired or was lost, instead of one lease per announcement.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use leader_election::priority::Candidate;
use leader_election::{Operation, Result};

use super::{ATTEMPTS, EtcdLeaseStore, etcd_ttl};
use crate::error::{is_lease_not_found, map_etcd};
use crate::record::{decode_candidate, encode_candidate};

/// How many candidacies' etcd leases a store remembers; others are forgotten (their etcd
/// leases expire on their own).
const MAX_REMEMBERED: usize = 16;

/// The etcd lease of a candidacy's announcements.
#[derive(Clone, Copy, Debug)]
pub(super) struct CandidateLease {
    id: i64,
    /// The etcd ttl it was granted with, in seconds.
    ttl: i64,
    /// When it was last granted or kept alive (a request sent after this instant).
    refreshed: Instant,
}

/// The etcd leases of the candidacies a store announced, by instance id.
#[derive(Debug, Default)]
pub(super) struct CandidateLeases(HashMap<String, CandidateLease>);

impl CandidateLeases {
    fn get(&self, instance_id: &str) -> Option<CandidateLease> {
        self.0.get(instance_id).copied()
    }

    fn insert(&mut self, instance_id: &str, lease: CandidateLease) {
        if self.0.len() >= MAX_REMEMBERED && !self.0.contains_key(instance_id) {
            // The stalest: its lease is the likeliest to have expired already.
            if let Some(stalest) = self
                .0
                .iter()
                .min_by_key(|(_, l)| l.refreshed)
                .map(|(id, _)| id.clone())
            {
                self.0.remove(&stalest);
            }
        }
        self.0.insert(instance_id.to_owned(), lease);
    }

    fn remove(&mut self, instance_id: &str, id: i64) {
        if self.0.get(instance_id).is_some_and(|l| l.id == id) {
            self.0.remove(instance_id);
        }
    }
}

impl EtcdLeaseStore {
    fn candidate_leases(&self) -> std::sync::MutexGuard<'_, CandidateLeases> {
        self.inner
            .candidate_leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The candidacy's etcd lease, kept alive in this call, or a new one. Like a candidacy's
    /// lease for the election key, a remembered one is kept alive only while it certainly
    /// lives (etcd answers a keep-alive of an expired lease only once it revoked it, up to half
    /// a second later).
    async fn candidate_lease(&self, candidate: &Candidate, ttl: Duration) -> Result<i64> {
        let op = Operation::AnnounceCandidate;
        let ttl = etcd_ttl(ttl);
        let remembered = self
            .candidate_leases()
            .get(&candidate.instance_id)
            .filter(|l| {
                l.ttl == ttl && l.refreshed.elapsed() < Duration::from_secs(ttl.unsigned_abs()) / 2
            });
        if let Some(lease) = remembered {
            let sent = Instant::now();
            match self.keep_alive(lease.id).await {
                Ok(()) => {
                    self.candidate_leases().insert(
                        &candidate.instance_id,
                        CandidateLease {
                            refreshed: sent,
                            ..lease
                        },
                    );
                    return Ok(lease.id);
                }
                Err(err) if is_lease_not_found(&err) => {
                    self.candidate_leases()
                        .remove(&candidate.instance_id, lease.id);
                }
                Err(err) => return Err(map_etcd(op, false, err)),
            }
        }
        let sent = Instant::now();
        let id = self
            .grant(ttl)
            .await
            .map_err(|err| map_etcd(op, false, err))?
            .id();
        self.candidate_leases().insert(
            &candidate.instance_id,
            CandidateLease {
                id,
                ttl,
                refreshed: sent,
            },
        );
        Ok(id)
    }

    pub(super) async fn announce(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        let op = Operation::AnnounceCandidate;
        let key = self.inner.candidate_key.as_str();
        for _ in 0..ATTEMPTS {
            let response = self
                .get(key)
                .await
                .map_err(|err| map_etcd(op, false, err))?;
            let recorded = response.kvs().first();
            if let Some(kv) = recorded
                && decode_candidate(kv.value())
                    .is_some_and(|r| !leader_election::priority::replaces(candidate, &r))
            {
                return Ok(());
            }
            let etcd_lease = self.candidate_lease(candidate, ttl).await?;
            let compare = match recorded {
                None => Compare::create_revision(key, CompareOp::Equal, 0),
                // The record is this very announcement, on the lease just kept alive: it
                // lives `ttl` from now, nothing to write.
                Some(kv)
                    if kv.lease() == etcd_lease
                        && decode_candidate(kv.value()).as_ref() == Some(candidate) =>
                {
                    return Ok(());
                }
                Some(kv) => Compare::mod_revision(key, CompareOp::Equal, kv.mod_revision()),
            };
            let txn = Txn::new().when([compare]).and_then([TxnOp::put(
                key,
                encode_candidate(candidate),
                Some(PutOptions::new().with_lease(etcd_lease)),
            )]);
            let response = self.txn(txn).await.map_err(|err| map_etcd(op, true, err))?;
            if response.succeeded() {
                return Ok(());
            }
            // Somebody else wrote the record meanwhile: read it again. The lease stays with
            // the candidacy for its next announcement, or expires unused within its ttl.
        }
        // Others kept announcing at the same moment; one of them is recorded.
        Ok(())
    }

    pub(super) async fn strongest(&self) -> Result<Option<Candidate>> {
        let op = Operation::StrongestCandidate;
        let response = self
            .get(self.inner.candidate_key.as_str())
            .await
            .map_err(|err| map_etcd(op, false, err))?;
        Ok(response
            .kvs()
            .first()
            .and_then(|kv| decode_candidate(kv.value())))
    }
}
