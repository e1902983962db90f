//! The Azure Blob backend (`leader-election-blob`): an account or Azurite at a connection
//! string; the operator's hands break the blob's lease, then delete the blob or overwrite its
//! metadata, with the official SDK client the blob crate hands out.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use leader_election::{BoxLeaseStore, ElectionBuilder, LeaderElectionOptions};
use leader_election_blob::BlobLeaderElection;
use leader_election_blob::azure::azure_storage_blob::models::BlobClientBreakLeaseOptions;
use serde::{Deserialize, Serialize};

use super::{Backend, BackendSpec, BoxFuture, Defaults, OperatorAction, socket_addr, via_url};

/// The Azurite development account, on the port the docker-compose file publishes.
pub(crate) const AZURITE_CONNECTION_STRING: &str = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;";

/// Break Lease with a break period of 0 ("Break lease" in the portal).
const BREAK: OperatorAction = OperatorAction::new("blob_break", "break the blob lease (period 0)");
/// Break Lease (period 0), then delete the blob.
const BREAK_DELETE: OperatorAction = OperatorAction::new(
    "blob_break_delete",
    "break the blob lease and delete the blob",
);
/// Break Lease (period 0), then overwrite the blob's metadata with garbage.
const BREAK_OVERWRITE: OperatorAction = OperatorAction::new(
    "blob_break_overwrite",
    "break the blob lease and overwrite its metadata",
);

/// How to reach the blob of the election.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Args)]
#[group(skip)]
pub(crate) struct Settings {
    /// Azure Storage connection string (`--backend blob`). Default: the Azurite development
    /// account at 127.0.0.1:10000.
    #[arg(
        long,
        env = "AZURE_STORAGE_CONNECTION_STRING",
        default_value = AZURITE_CONNECTION_STRING,
        hide_env_values = true,
        hide_default_value = true
    )]
    pub(crate) connection_string: String,
    /// Blob container of the election.
    #[arg(long, default_value = "leader-election-tester")]
    pub(crate) container: String,
    /// Blob name of the election.
    #[arg(long, default_value = "leader")]
    pub(crate) blob: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connection_string: AZURITE_CONNECTION_STRING.to_owned(),
            container: "leader-election-tester".to_owned(),
            blob: "leader".to_owned(),
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("blob::Settings")
            .field("connection_string", &"<redacted>")
            .field("container", &self.container)
            .field("blob", &self.blob)
            .finish()
    }
}

/// The `BlobEndpoint=` value of a connection string.
fn blob_endpoint(connection_string: &str) -> Option<String> {
    connection_string.split(';').find_map(|part| {
        let (key, value) = part.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("BlobEndpoint")
            .then(|| value.trim().to_owned())
    })
}

/// Breaks the election blob's lease at once, then deletes the blob or overwrites its
/// metadata.
async fn break_lease(spec: &BackendSpec, delete: bool, overwrite: bool) -> Result<(), String> {
    let client = BlobLeaderElection::builder()
        .connection_string(spec.blob.connection_string.clone())
        .container_name(spec.blob.container.clone())
        .blob_name(spec.blob.blob.clone())
        .build_blob_client()
        .map_err(|e| format!("blob: {e}"))?;
    client
        .break_lease(Some(BlobClientBreakLeaseOptions {
            break_period: Some(0),
            ..Default::default()
        }))
        .await
        .map_err(|e| format!("blob: break lease: {e}"))?;
    if delete {
        client
            .delete(None)
            .await
            .map_err(|e| format!("blob: delete: {e}"))?;
    }
    if overwrite {
        let garbage = HashMap::from([
            ("leader_token".to_owned(), "not-a-number".to_owned()),
            ("leader_instance_id".to_owned(), "%zz".to_owned()),
        ]);
        client
            .set_metadata(&garbage, None)
            .await
            .map_err(|e| format!("blob: set metadata: {e}"))?;
    }
    Ok(())
}

/// `--backend blob`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Blob;

impl Backend for Blob {
    fn name(&self) -> &'static str {
        "blob"
    }

    fn about(&self) -> &'static str {
        "Azure Blob Storage or Azurite (crate `leader-election-blob`)"
    }

    /// Azure leases last 15 to 60 s: 90 s runs on 15 s leases, renewed every 3 s, followers
    /// polling every second.
    fn defaults(&self) -> Defaults {
        Defaults {
            duration: Duration::from_secs(90),
            lease: Duration::from_secs(15),
            renew: Some(Duration::from_secs(3)),
            retry: Some(Duration::from_secs(1)),
        }
    }

    fn upstreams(&self, spec: &BackendSpec) -> Result<Vec<SocketAddr>, String> {
        let endpoint = blob_endpoint(&spec.blob.connection_string)
            .ok_or("the connection string has no BlobEndpoint=http://host:port/...")?;
        Ok(vec![socket_addr(&endpoint, 80)?])
    }

    fn via(&self, spec: &BackendSpec, addrs: &[SocketAddr]) -> BackendSpec {
        let mut via = spec.clone();
        if let (Some(&addr), Some(endpoint)) =
            (addrs.first(), blob_endpoint(&spec.blob.connection_string))
        {
            via.blob.connection_string = spec
                .blob
                .connection_string
                .replace(&endpoint, &via_url(&endpoint, addr));
        }
        via
    }

    fn open(
        &self,
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        BlobLeaderElection::builder()
            .connection_string(spec.blob.connection_string.clone())
            .container_name(spec.blob.container.clone())
            .blob_name(spec.blob.blob.clone())
            .options(options.clone())
            .build_store()
            .map(BoxLeaseStore::new)
            .map_err(|e| format!("blob: {e}"))
    }

    fn for_election(&self, spec: &BackendSpec, name: &str) -> BackendSpec {
        let mut spec = spec.clone();
        spec.blob.blob = name.to_owned();
        spec
    }

    fn reach(&self, _spec: &BackendSpec) -> Option<(String, &'static str)> {
        Some((
            "the blob service of the connection string".to_owned(),
            "start Azurite (`docker compose up -d azurite`) or pass --connection-string / \
             AZURE_STORAGE_CONNECTION_STRING",
        ))
    }

    fn operator_actions(&self) -> &'static [OperatorAction] {
        &[BREAK, BREAK_DELETE, BREAK_OVERWRITE]
    }

    fn act<'a>(
        &'a self,
        spec: &'a BackendSpec,
        action: OperatorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(break_lease(
            spec,
            action == BREAK_DELETE,
            action == BREAK_OVERWRITE,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_replaces_only_the_blob_endpoint() {
        let spec = BackendSpec::on("blob");
        assert_eq!(
            Blob.upstreams(&spec),
            Ok(vec!["127.0.0.1:10000".parse().unwrap()])
        );
        let via = Blob.via(&spec, &["127.0.0.1:4242".parse().unwrap()]);
        let proxied = &via.blob.connection_string;
        assert!(proxied.contains("BlobEndpoint=http://127.0.0.1:4242/devstoreaccount1;"));
        assert!(proxied.contains("AccountKey=Eby8"));
    }
}
