//! The requests a store sends to etcd, through its pool of member clients (see
//! `connection`); every reply's header goes to `observe`.

use super::*;

impl EtcdLeaseStore {
    // Every reply's header goes to `observe`: transactions and reads are linearizable.

    pub(super) async fn txn(&self, txn: Txn) -> std::result::Result<TxnResponse, EtcdError> {
        let response = self
            .inner
            .pool
            .call(|mut client| {
                let txn = txn.clone();
                async move { client.txn(txn).await }
            })
            .await?;
        self.observe(response.header(), true);
        Ok(response)
    }

    pub(super) async fn get(&self, key: &str) -> std::result::Result<GetResponse, EtcdError> {
        let response = self
            .inner
            .pool
            .call(|mut client| async move { client.get(key, None).await })
            .await?;
        self.observe(response.header(), true);
        Ok(response)
    }

    /// One keep-alive of etcd lease `id`: etcd-client sends one request on a new stream and
    /// fails with "lease not found" when its TTL is 0.
    pub(super) async fn keep_alive(&self, id: i64) -> std::result::Result<(), EtcdError> {
        self.inner
            .pool
            .call(|mut client| async move { client.lease_keep_alive(id).await.map(drop) })
            .await
    }

    pub(super) async fn grant(
        &self,
        ttl: i64,
    ) -> std::result::Result<LeaseGrantResponse, EtcdError> {
        let response = self
            .inner
            .pool
            .call(|mut client| async move { client.lease_grant(ttl, None).await })
            .await?;
        self.observe(response.header(), false);
        Ok(response)
    }

    pub(super) async fn revoke(&self, id: i64) -> std::result::Result<(), EtcdError> {
        self.inner
            .pool
            .call(|mut client| async move { client.lease_revoke(id).await.map(drop) })
            .await
    }

    pub(super) async fn time_to_live(
        &self,
        id: i64,
    ) -> std::result::Result<LeaseTimeToLiveResponse, EtcdError> {
        let response = self
            .inner
            .pool
            .call(|mut client| async move { client.lease_time_to_live(id, None).await })
            .await?;
        self.observe(response.header(), false);
        Ok(response)
    }

    pub(super) fn leases(&self) -> std::sync::MutexGuard<'_, Leases> {
        self.inner
            .leases
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
