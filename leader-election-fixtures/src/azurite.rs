//! A real Azurite blob service (from the npm registry): `azurite-blob` from
//! `<tools>/azurite/node_modules/.bin/` (installed by the workspace's
//! `scripts/install-azurite.sh`; `<tools>` is [`tools_dir`]) or `PATH`, on a free port of
//! 127.0.0.1 with telemetry off; or, when it is missing and Docker works (feature `docker`),
//! the Azurite image. With the development account's public name and key.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::helpers::{free_port, temp_dir, tools_dir};
use crate::process::ServerProcess;

/// Azurite's well-known development account (public, documented by Microsoft).
pub const ACCOUNT: &str = "devstoreaccount1";
/// The development account's key (public, documented by Microsoft).
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A connection string for the development account with its blob service at
/// `http://127.0.0.1:{port}/devstoreaccount1` (Azurite's port, or a proxy's in front of it).
pub fn connection_string(port: u16) -> String {
    format!(
        "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};\
         BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )
}

/// A running Azurite blob service; stopped (its process group killed by PID) when dropped.
#[derive(Debug)]
pub struct Azurite {
    port: u16,
    location: PathBuf,
    local: Mutex<Option<ServerProcess>>,
    #[cfg(feature = "docker")]
    container: Option<Box<testcontainers::ContainerAsync<testcontainers::GenericImage>>>,
}

/// Where `azurite-blob` is: [`tools_dir`], or `PATH`.
fn azurite_bin() -> Option<PathBuf> {
    let tools = tools_dir().join("azurite/node_modules/.bin/azurite-blob");
    if tools.exists() {
        return Some(tools);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("azurite-blob"))
            .find(|p| p.exists())
    })
}

impl Azurite {
    /// Starts a fresh, empty blob service.
    ///
    /// # Panics
    /// When neither Azurite nor (with feature `docker`) a Docker daemon is available, saying
    /// what to install; or when it does not accept connections within 60 s.
    pub async fn start() -> Self {
        let azurite = Self {
            port: free_port(),
            location: temp_dir("azurite"),
            local: Mutex::new(None),
            #[cfg(feature = "docker")]
            container: None,
        };
        match azurite_bin() {
            Some(bin) => {
                azurite.launch_local(&bin).await;
                azurite
            }
            None => azurite.start_container().await,
        }
    }

    #[cfg(not(feature = "docker"))]
    async fn start_container(self) -> Self {
        panic!(
            "Azurite is needed for these tests and was not found in .tools/azurite or on PATH: \
             run scripts/install-azurite.sh (needs Node.js and npm)"
        )
    }

    #[cfg(feature = "docker")]
    async fn start_container(mut self) -> Self {
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::AsyncRunner;
        use testcontainers::{GenericImage, ImageExt};
        assert!(
            crate::helpers::docker_available(),
            "Azurite is needed for these tests and was not found in .tools/azurite or on PATH, \
             and Docker is not available for the testcontainers fallback: run \
             scripts/install-azurite.sh (needs Node.js and npm), or start a Docker daemon"
        );
        let container = GenericImage::new("mcr.microsoft.com/azure-storage/azurite", "3.35.0")
            .with_wait_for(WaitFor::message_on_stdout("successfully listens on"))
            .with_cmd([
                "azurite-blob",
                "--blobHost",
                "0.0.0.0",
                "--blobPort",
                "10000",
            ])
            .with_mapped_port(self.port, 10000.tcp())
            .start()
            .await
            .expect("start the Azurite container");
        self.container = Some(Box::new(container));
        self.wait_until_ready().await;
        self
    }

    async fn launch_local(&self, bin: &std::path::Path) {
        let port = self.port.to_string();
        let location = self.location.display().to_string();
        let args = [
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port,
            "--location",
            &location,
            "--silent",
            "--disableTelemetry",
        ];
        let process =
            ServerProcess::spawn_guarded(bin, args, &self.log_path()).expect("spawn azurite-blob");
        *self.local.lock().unwrap() = Some(process);
        self.wait_until_ready().await;
    }

    fn log_path(&self) -> PathBuf {
        self.location.join("azurite.log")
    }

    async fn wait_until_ready(&self) {
        ServerProcess::wait_until_listening(&self.local, self.port, &self.log_path(), "Azurite")
            .await;
    }

    /// Stops the service (SIGTERM, then SIGKILL after 10 s); its data stays for
    /// [`restart`](Self::restart).
    pub async fn stop(&self) {
        ServerProcess::stop_listening(&self.local, self.port).await;
        #[cfg(feature = "docker")]
        if let Some(container) = &self.container {
            let _ = container.stop_with_timeout(Some(5)).await;
        }
    }

    /// Starts the service again on the same port with the same data.
    ///
    /// # Panics
    /// When it does not start again.
    pub async fn restart(&self) {
        self.stop().await;
        #[cfg(feature = "docker")]
        if let Some(container) = &self.container {
            container
                .start()
                .await
                .expect("restart the Azurite container");
            self.wait_until_ready().await;
            return;
        }
        let bin = azurite_bin().expect("azurite-blob disappeared");
        self.launch_local(&bin).await;
    }

    /// The blob service's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The blob endpoint of the development account.
    pub fn blob_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// A connection string for the development account on this service.
    pub fn connection_string(&self) -> String {
        connection_string(self.port)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        drop(ServerProcess::take(&self.local));
        let _ = std::fs::remove_dir_all(&self.location);
    }
}
