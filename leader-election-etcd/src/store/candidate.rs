//! The candidate record of preferred leaders: `<key>/candidate`, attached to an etcd lease of
//! its own, replaced only by a transaction that compares what was read.

use std::time::Duration;

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use leader_election::{Candidate, Operation, Result};

use super::{ATTEMPTS, EtcdLeaseStore, etcd_ttl};
use crate::error::map_etcd;
use crate::record::{decode_candidate, encode_candidate};

impl EtcdLeaseStore {
    pub(super) async fn announce(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        let op = Operation::AnnounceCandidate;
        let key = self.inner.candidate_key.as_str();
        for _ in 0..ATTEMPTS {
            let response = self
                .get(key)
                .await
                .map_err(|err| map_etcd(op, false, err))?;
            let compare = match response.kvs().first() {
                None => Compare::create_revision(key, CompareOp::Equal, 0),
                Some(kv) => {
                    if decode_candidate(kv.value()).is_some_and(|recorded| {
                        !leader_election::priority::replaces(candidate, &recorded)
                    }) {
                        return Ok(());
                    }
                    Compare::mod_revision(key, CompareOp::Equal, kv.mod_revision())
                }
            };
            let etcd_lease = self
                .grant(etcd_ttl(ttl))
                .await
                .map_err(|err| map_etcd(op, false, err))?
                .id();
            let txn = Txn::new().when([compare]).and_then([TxnOp::put(
                key,
                encode_candidate(candidate),
                Some(PutOptions::new().with_lease(etcd_lease)),
            )]);
            let response = self.txn(txn).await.map_err(|err| map_etcd(op, true, err))?;
            if response.succeeded() {
                return Ok(());
            }
            let _ = self.revoke(etcd_lease).await;
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
