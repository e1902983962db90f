//! A real S3 emulator for one test binary or one test: moto's S3 server from
//! `<tools>/moto` (a Python virtual environment with `moto[server]` installed, as the
//! workspace's `scripts/install-moto.sh` makes it; `<tools>` is [`tools_dir`]),
//! on a free port of 127.0.0.1; or, when moto is missing and Docker works (feature `docker`),
//! the MinIO image.
//!
//! moto's server enforces conditional writes: `If-None-Match: *` on an existing key and a stale
//! `If-Match` both get 412 Precondition Failed (checked by the S3 backend's tests before
//! anything relies on it). Its own server runs each request on a thread of its own and checks a
//! condition apart from the write that follows it, so two racing conditional writes could both
//! pass; the fixture therefore serves moto's application through a small wrapper that reads
//! each request's body first and then runs the application under one lock, one request at a
//! time. That makes every conditional write atomic, as on S3, while a client stalled in the
//! middle of sending a request (a partition in a fault proxy) holds up nobody. The S3 backend's
//! tests race conditional writes to guard this.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::helpers::{free_port, temp_dir, tools_dir};
use crate::process::ServerProcess;

/// The access key the emulator accepts (moto accepts any; the MinIO container is started with
/// it).
pub const ACCESS_KEY: &str = "leaderelection";
/// The secret key going with [`ACCESS_KEY`] (a test value, not a secret).
pub const SECRET_KEY: &str = "leaderelection-secret";
/// The region the emulator is addressed in.
pub const REGION: &str = "us-east-1";

/// moto's WSGI application served one request at a time (see the module documentation). Run
/// by the virtual environment's Python with the port as its argument.
const SERIAL_MOTO: &str = r#"
import io, signal, sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app)

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()

def serial(environ, start_response):
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = environ["wsgi.input"].read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = environ["wsgi.input"].read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    with lock:
        return [b"".join(app(environ, start_response))]

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
run_simple("127.0.0.1", int(sys.argv[1]), serial, threaded=True,
           request_handler=MotoRequestHandler)
"#;

/// A running S3 emulator; stopped (its process group killed by PID) when dropped. moto keeps
/// everything in memory: [`restart`](Self::restart) brings it back empty, buckets included.
#[derive(Debug)]
pub struct S3Emulator {
    port: u16,
    location: PathBuf,
    local: Mutex<Option<ServerProcess>>,
    /// What the local emulator runs with beside this process's environment (its clock).
    env: Vec<(&'static str, std::ffi::OsString)>,
    #[cfg(feature = "docker")]
    container: Option<Box<testcontainers::ContainerAsync<testcontainers::GenericImage>>>,
}

/// The Python of the workspace's moto environment, if installed.
fn moto_python() -> Option<PathBuf> {
    let root = tools_dir().join("moto/bin");
    (root.join("moto_server").exists() && root.join("python").exists()).then(|| root.join("python"))
}

impl S3Emulator {
    /// Starts a fresh, empty emulator.
    ///
    /// # Panics
    /// When neither moto nor (with feature `docker`) a Docker daemon is available, saying what
    /// to install; or when it does not accept connections within 60 s.
    pub async fn start() -> Self {
        Self::start_with_env(Vec::new()).await
    }

    /// Starts a fresh, empty moto whose wall clock is `clock` (libfaketime): the `Date` of its
    /// responses follows the clock's steps, also across [`restart`](Self::restart)s.
    ///
    /// # Panics
    /// When moto is missing (no container stands in: its clock could not be stepped), or it
    /// does not accept connections within 60 s.
    pub async fn start_with_clock(clock: &crate::faketime::SteppedClock) -> Self {
        assert!(
            moto_python().is_some(),
            "an S3 emulator under a stepped clock needs moto in {}: run scripts/install-moto.sh",
            tools_dir().join("moto").display()
        );
        Self::start_with_env(clock.env()).await
    }

    async fn start_with_env(env: Vec<(&'static str, std::ffi::OsString)>) -> Self {
        let emulator = Self {
            port: free_port(),
            location: temp_dir("moto"),
            local: Mutex::new(None),
            env,
            #[cfg(feature = "docker")]
            container: None,
        };
        match moto_python() {
            Some(python) => {
                emulator.launch_local(&python).await;
                emulator
            }
            None => emulator.start_container().await,
        }
    }

    #[cfg(not(feature = "docker"))]
    async fn start_container(self) -> Self {
        panic!(
            "an S3 emulator is needed for these tests and moto was not found in {}: \
             run scripts/install-moto.sh (needs python3 with venv and pip), or point \
             LEADER_ELECTION_TOOLS at a folder whose moto/ is such a virtual environment",
            tools_dir().join("moto").display()
        )
    }

    /// MinIO in a container (not run on the project's machines, which have no Docker engine).
    #[cfg(feature = "docker")]
    async fn start_container(mut self) -> Self {
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::AsyncRunner;
        use testcontainers::{GenericImage, ImageExt};
        assert!(
            crate::docker_available(),
            "an S3 emulator is needed for these tests and moto was not found in <tools>/moto, \
             and Docker is not available for the MinIO fallback: run scripts/install-moto.sh \
             (needs python3 with venv and pip), or start a Docker daemon"
        );
        let container = GenericImage::new("minio/minio", "RELEASE.2025-09-07T16-13-09Z")
            .with_wait_for(WaitFor::message_on_stdout("API:"))
            .with_env_var("MINIO_ROOT_USER", ACCESS_KEY)
            .with_env_var("MINIO_ROOT_PASSWORD", SECRET_KEY)
            .with_cmd(["server", "/data"])
            .with_mapped_port(self.port, 9000.tcp())
            .start()
            .await
            .expect("start the MinIO container");
        self.container = Some(Box::new(container));
        self.wait_until_ready().await;
        self
    }

    async fn launch_local(&self, python: &std::path::Path) {
        let port = self.port.to_string();
        let args = ["-c", SERIAL_MOTO, &port];
        let process = ServerProcess::spawn_guarded_with_env(
            python,
            args,
            self.env.iter().map(|(k, v)| (k, v)),
            &self.log_path(),
        )
        .expect("spawn moto");
        *self.local.lock().unwrap() = Some(process);
        self.wait_until_ready().await;
    }

    fn log_path(&self) -> PathBuf {
        self.location.join("moto.log")
    }

    async fn wait_until_ready(&self) {
        ServerProcess::wait_until_listening(
            &self.local,
            self.port,
            &self.log_path(),
            "the S3 emulator",
        )
        .await;
        self.warm_up().await;
    }

    /// Sends one S3 request (a bucket listing) and waits for any HTTP answer: moto loads its
    /// S3 service at its first S3 request, which can take seconds on a busy machine, longer
    /// than a test's operation timeout.
    async fn warm_up(&self) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        let request = format!(
            "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
            self.port
        );
        loop {
            let attempt = async {
                let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await?;
                stream.write_all(request.as_bytes()).await?;
                let mut head = [0u8; 8];
                stream.read_exact(&mut head).await?;
                std::io::Result::Ok(head.starts_with(b"HTTP/1."))
            };
            match tokio::time::timeout_at(deadline, attempt).await {
                Ok(Ok(true)) => return,
                Ok(_) => {}
                Err(_) => panic!(
                    "the S3 emulator on 127.0.0.1:{} did not answer an S3 request within 60 s",
                    self.port
                ),
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the S3 emulator on 127.0.0.1:{} did not answer an S3 request within 60 s",
                self.port
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Stops the emulator (SIGTERM, then SIGKILL after 10 s).
    pub async fn stop(&self) {
        ServerProcess::stop_listening(&self.local, self.port).await;
        #[cfg(feature = "docker")]
        if let Some(container) = &self.container {
            let _ = container.stop_with_timeout(Some(5)).await;
        }
    }

    /// Starts the emulator again on the same port. moto keeps nothing: it comes back empty,
    /// without buckets (MinIO in its container keeps its data).
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
                .expect("restart the MinIO container");
            self.wait_until_ready().await;
            return;
        }
        let python = moto_python().expect("moto disappeared");
        self.launch_local(&python).await;
    }

    /// The emulator's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The emulator's endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The emulator's log so far (moto's request log), empty for a container.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
}

impl Drop for S3Emulator {
    fn drop(&mut self) {
        drop(ServerProcess::take(&self.local));
        let _ = std::fs::remove_dir_all(&self.location);
    }
}
