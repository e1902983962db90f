//! Helpers for the Azure Blob backend's tests (feature `blob`): elections, stores and SDK
//! clients on an [`Azurite`].

use std::sync::Arc;
use std::time::Duration;

use azure_storage_blob::{BlobClient, BlobContainerClient};
use leader_election::LeaderElection;
use leader_election_blob::{BlobLeaderElection, BlobLeaderElectionBuilder, BlobLeaseStore};

use crate::Azurite;
use crate::azurite::{ACCOUNT, KEY, connection_string};

impl Azurite {
    /// A builder for an election on this Azurite, with short timings, in `container` (blob
    /// `lock`).
    pub fn builder(&self, container: &str, instance_id: &str) -> BlobLeaderElectionBuilder {
        BlobLeaderElection::builder()
            .connection_string(self.connection_string())
            .container_name(container)
            .blob_name("lock")
            .instance_id(instance_id.to_owned())
            .lease_duration(Duration::from_secs(15))
            .renew_interval(Duration::from_secs(3))
            .retry_interval(Duration::from_millis(500))
            .max_retry_interval(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(2))
    }

    /// [`builder`](Self::builder), but reaching Azurite through a proxy listening on `port`.
    pub fn builder_via(
        &self,
        port: u16,
        container: &str,
        instance_id: &str,
    ) -> BlobLeaderElectionBuilder {
        self.builder(container, instance_id)
            .connection_string(connection_string(port))
    }

    /// An election built by [`builder`](Self::builder).
    ///
    /// # Panics
    /// When the builder rejects the configuration.
    pub fn election(&self, container: &str, instance_id: &str) -> LeaderElection<BlobLeaseStore> {
        self.builder(container, instance_id)
            .build()
            .expect("build the election")
    }

    /// A store built by [`builder`](Self::builder).
    ///
    /// # Panics
    /// When the builder rejects the configuration.
    pub fn store(&self, container: &str) -> BlobLeaseStore {
        self.builder(container, "store")
            .build_store()
            .expect("build the store")
    }

    /// A client of the SDK itself for the lease blob, for operator actions (break lease,
    /// delete).
    pub fn operator(&self, container: &str) -> BlobClient {
        self.store(container).container_client().blob_client("lock")
    }

    /// A container client of the SDK itself, authorized by an [`account_sas`], with `policy`
    /// run on every try of every request (to count or corrupt them) and no SDK retries.
    ///
    /// # Panics
    /// When the SDK rejects the URL.
    pub fn sas_client(
        &self,
        container: &str,
        policy: Arc<dyn azure_core::http::policies::Policy>,
    ) -> BlobContainerClient {
        let url = format!("{}/{container}?{}", self.blob_endpoint(), account_sas());
        BlobContainerClient::new(
            url.parse().expect("container URL"),
            None,
            Some(azure_storage_blob::BlobContainerClientOptions {
                client_options: azure_core::http::ClientOptions {
                    retry: azure_core::http::RetryOptions::none(),
                    per_try_policies: vec![policy],
                    ..Default::default()
                },
                version: leader_election_blob::DEFAULT_API_VERSION.into(),
            }),
        )
        .expect("container client")
    }
}

/// Breaks the blob's lease at once (a break period of 0), as an operator clicking "Break
/// lease" would.
///
/// # Panics
/// When the service refuses.
pub async fn break_lease_now(operator: &BlobClient) {
    operator
        .break_lease(Some(
            azure_storage_blob::models::BlobClientBreakLeaseOptions {
                break_period: Some(0),
                ..Default::default()
            },
        ))
        .await
        .expect("break the lease");
}

/// An account SAS for Azurite's development account, signed as the service expects (service
/// version 2020-12-06+).
pub fn account_sas() -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let version = leader_election_blob::DEFAULT_API_VERSION;
    let (permissions, services, types, expiry, protocol) =
        ("rwdlacup", "b", "sco", "2099-01-01T00:00:00Z", "https,http");
    let to_sign = format!(
        "{ACCOUNT}\n{permissions}\n{services}\n{types}\n\n{expiry}\n\n{protocol}\n{version}\n\n"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .expect("the development key is base64");
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&key)
        .expect("HMAC takes any key length");
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let sig = sig
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D");
    format!(
        "sv={version}&ss={services}&srt={types}&sp={permissions}&se={}&spr={}&sig={sig}",
        expiry.replace(':', "%3A"),
        protocol.replace(',', "%2C")
    )
}
