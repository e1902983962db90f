//! What the Blob backend's tests add to the [`Azurite`] fixture of `leader-election-fixtures`
//! (which knows no backend): builders, stores and elections on it with short timings, SDK
//! clients for an operator's actions, and an account SAS for its development account.

// Each test binary uses its own part of these helpers.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use leader_election::LeaseStore;
use leader_election::store::{AcquireOutcome, Lease, LeaseRequest};
use leader_election::{ElectionBuilder, LeaderElection};
use leader_election_blob::azure::azure_core;
use leader_election_blob::azure::azure_storage_blob::{self, BlobClient, BlobContainerClient};
use leader_election_blob::{BlobLeaderElection, BlobLeaderElectionBuilder, BlobLeaseStore};
pub use leader_election_test_support::Azurite;
use leader_election_test_support::azurite::{ACCOUNT, KEY, connection_string};
use leader_election_test_support::eventually_some;

/// Azure's shortest lease, the lease of every election these helpers build.
pub const TTL: Duration = Duration::from_secs(15);

/// An election on Azurite.
pub type Election = LeaderElection<BlobLeaseStore>;

/// Whether `follower` sees `leader` (an instance id) lead, and does not lead itself.
pub fn follows(follower: &Election, leader: &str) -> bool {
    !follower.is_leader()
        && follower
            .state()
            .leader
            .is_some_and(|l| l.instance_id == leader)
}

/// The lease of a first acquisition on a fresh blob, which must succeed. A fresh blob carries
/// no token, so the store waits for the service's clock to pass a second before taking it; the
/// first requests to a freshly started Azurite can use up an operation's time before that, and
/// the store then answers with a retryable error that changed nothing. An election tries again;
/// so does this, for at most 20 s.
pub async fn acquire_fresh(store: &BlobLeaseStore, request: &LeaseRequest) -> Lease {
    eventually_some(
        Duration::from_secs(20),
        "a first acquisition on a fresh blob",
        || async {
            match store.try_acquire(request).await {
                Ok(AcquireOutcome::Acquired(lease)) => Some(lease),
                Err(err) if err.is_retryable() => {
                    log(&format!("a first acquisition is tried again after: {err}"));
                    None
                }
                other => panic!("expected to acquire, got {other:?}"),
            }
        },
    )
    .await
}

/// Prints a measurement so that `--nocapture` shows it.
pub fn log(line: &str) {
    println!("[leader-election-blob] {line}");
}

/// What the Blob backend's tests add to an [`Azurite`].
pub trait AzuriteExt {
    /// A builder for an election on this Azurite, with short timings (leases of 15 s, Azure's
    /// shortest), in `container` (blob `lock`).
    fn builder(&self, container: &str, instance_id: &str) -> BlobLeaderElectionBuilder;

    /// [`builder`](Self::builder), but reaching Azurite through a proxy listening on `port`.
    fn builder_via(
        &self,
        port: u16,
        container: &str,
        instance_id: &str,
    ) -> BlobLeaderElectionBuilder {
        self.builder(container, instance_id)
            .connection_string(connection_string(port))
    }

    /// An election built by [`builder`](Self::builder).
    fn election(&self, container: &str, instance_id: &str) -> LeaderElection<BlobLeaseStore> {
        self.builder(container, instance_id)
            .build()
            .expect("build the election")
    }

    /// A store built by [`builder`](Self::builder).
    fn store(&self, container: &str) -> BlobLeaseStore {
        self.builder(container, "store")
            .build_store()
            .expect("build the store")
    }

    /// A client of the SDK itself for the lease blob, for operator actions (break lease,
    /// delete).
    fn operator(&self, container: &str) -> BlobClient {
        self.store(container).container_client().blob_client("lock")
    }

    /// A container client of the SDK itself, authorized by an [`account_sas`], with `policy`
    /// run on every try of every request (to count or corrupt them) and no SDK retries.
    fn sas_client(
        &self,
        container: &str,
        policy: Arc<dyn azure_core::http::policies::Policy>,
    ) -> BlobContainerClient;
}

impl AzuriteExt for Azurite {
    fn builder(&self, container: &str, instance_id: &str) -> BlobLeaderElectionBuilder {
        BlobLeaderElection::builder()
            .connection_string(self.connection_string())
            .container_name(container)
            .blob_name("lock")
            .instance_id(instance_id.to_owned())
            .lease_duration(TTL)
            .renew_interval(Duration::from_secs(3))
            .retry_interval(Duration::from_millis(500))
            .max_retry_interval(Duration::from_secs(2))
            .operation_timeout(Duration::from_secs(2))
    }

    fn sas_client(
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
