//! Test support: a real Azurite blob service per test, and helpers shared by the tests.
//!
//! Azurite comes from `.tools/azurite` (installed by `scripts/install-azurite.sh`, which the
//! project's `scripts/test.sh` runs) and is started from its `.bin/azurite-blob` script on a free
//! 127.0.0.1 port (telemetry off), in its own process group, and killed with that group on drop. Without it, and
//! with a working Docker daemon, the Azurite image runs through testcontainers. With neither, the
//! tests fail with a message saying what to install: they never skip silently.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_storage_blob::BlobClient;
use leader_election::{ElectionState, FencingToken, LeaderElection, LeaseStore};
use leader_election_blob::{BlobLeaderElection, BlobLeaderElectionBuilder, BlobLeaseStore};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};
use tokio::time::Instant;

/// Azurite's well-known development account and key (public, documented by Microsoft).
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

static NEXT: AtomicU32 = AtomicU32::new(0);

enum Server {
    Local { child: Child },
    Docker(Box<ContainerAsync<GenericImage>>),
    Stopped,
}

/// A running Azurite blob service.
pub struct Azurite {
    server: Server,
    port: u16,
    location: PathBuf,
}

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate folder has a parent")
        .to_path_buf()
}

fn azurite_bin() -> PathBuf {
    workspace_root().join(".tools/azurite/node_modules/.bin/azurite-blob")
}

fn docker_works() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

impl Azurite {
    /// Starts a fresh Azurite blob service.
    pub async fn start() -> Self {
        let location = std::env::temp_dir().join(format!(
            "leader-election-blob-azurite-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&location).expect("create Azurite's data folder");
        let port = free_port();
        let mut azurite = Self {
            server: Server::Stopped,
            port,
            location,
        };
        azurite.launch().await;
        azurite
    }

    async fn launch(&mut self) {
        let bin = azurite_bin();
        if bin.exists() {
            self.server = Server::Local {
                child: self.spawn_local(&bin),
            };
        } else if docker_works() {
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
            self.server = Server::Docker(Box::new(container));
        } else {
            panic!(
                "Azurite is needed for these tests and was not found at {}, and Docker is not \
                 available for the testcontainers fallback. Run scripts/install-azurite.sh \
                 (needs Node.js and npm), or start a Docker daemon.",
                bin.display()
            );
        }
        self.wait_until_ready().await;
    }

    fn spawn_local(&self, bin: &std::path::Path) -> Child {
        use std::os::unix::process::CommandExt;
        let log = std::fs::File::create(self.location.join("azurite.log")).expect("create log");
        // A small shell stays in front of Azurite, in the same process group, and stops it when
        // this test process goes away without dropping us (its stdin, a pipe from us, closes).
        Command::new("sh")
            .arg("-c")
            .arg(
                r#""$0" "$@" & child=$!
                trap 'kill $child 2>/dev/null; exit 0' TERM INT
                cat >/dev/null
                kill $child 2>/dev/null
                wait $child"#,
            )
            .arg(bin)
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(self.port.to_string())
            .arg("--location")
            .arg(&self.location)
            .arg("--silent")
            .arg("--disableTelemetry")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("spawn azurite-blob")
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            if let Server::Local { child } = &mut self.server
                && let Ok(Some(status)) = child.try_wait()
            {
                let log =
                    std::fs::read_to_string(self.location.join("azurite.log")).unwrap_or_default();
                panic!("Azurite exited with {status} before accepting connections:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "Azurite did not accept connections on 127.0.0.1:{} within 60 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the service (its data stays for [`Self::restart`]).
    pub async fn stop(&mut self) {
        match std::mem::replace(&mut self.server, Server::Stopped) {
            Server::Local { mut child } => {
                let group = format!("-{}", child.id());
                let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
                let deadline = Instant::now() + Duration::from_secs(10);
                while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
                let _ = child.wait();
                // Azurite's node process may outlive the shell briefly; wait for the port.
                let deadline = Instant::now() + Duration::from_secs(10);
                while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                    .await
                    .is_ok()
                    && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Server::Docker(container) => {
                let _ = container.stop_with_timeout(Some(5)).await;
                self.server = Server::Docker(container);
            }
            Server::Stopped => {}
        }
    }

    /// Starts the service again on the same port with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        match std::mem::replace(&mut self.server, Server::Stopped) {
            Server::Docker(container) => {
                container
                    .start()
                    .await
                    .expect("restart the Azurite container");
                self.server = Server::Docker(container);
                self.wait_until_ready().await;
            }
            _ => self.launch().await,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn blob_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={};",
            self.blob_endpoint()
        )
    }

    /// A builder for an election on this Azurite, with short timings and its own container.
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

    pub fn election(&self, container: &str, instance_id: &str) -> LeaderElection<BlobLeaseStore> {
        self.builder(container, instance_id)
            .build()
            .expect("build the election")
    }

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
}

impl Drop for Azurite {
    fn drop(&mut self) {
        if let Server::Local { child } = &mut self.server {
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.location);
    }
}

/// A container name of its own for one test.
pub fn container_name(test: &str) -> String {
    format!("le-{test}-{:08x}", fastrand_u32()).replace('_', "-")
}

fn fastrand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ (std::process::id() << 8) ^ NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One contender's term of leadership as seen on `watch()`, on the test's monotonic clock.
#[derive(Clone, Debug)]
pub struct Interval {
    pub who: String,
    pub token: Option<FencingToken>,
    pub start: Instant,
    pub end: Option<Instant>,
}

/// Records every contender's leadership intervals.
#[derive(Clone, Default)]
pub struct Recorder {
    intervals: Arc<Mutex<Vec<Interval>>>,
}

impl Recorder {
    /// Follows `election`'s state until its last handle and loop are gone or `stop` fires.
    pub fn follow<S: LeaseStore>(
        &self,
        election: &LeaderElection<S>,
    ) -> tokio::task::JoinHandle<()> {
        let mut state = election.watch();
        let who = election.instance_id().to_owned();
        let intervals = Arc::clone(&self.intervals);
        tokio::spawn(async move {
            let mut open: Option<usize> = None;
            loop {
                let now: ElectionState = state.borrow_and_update().clone();
                let at = Instant::now();
                {
                    let mut intervals = intervals.lock().expect("recorder lock");
                    match (now.is_leader(), open) {
                        (true, None) => {
                            intervals.push(Interval {
                                who: who.clone(),
                                token: now.token,
                                start: at,
                                end: None,
                            });
                            open = Some(intervals.len() - 1);
                        }
                        (false, Some(index)) => {
                            intervals[index].end = Some(at);
                            open = None;
                        }
                        _ => {}
                    }
                }
                if state.changed().await.is_err() {
                    if let Some(index) = open {
                        intervals.lock().expect("recorder lock")[index].end = Some(Instant::now());
                    }
                    return;
                }
            }
        })
    }

    pub fn intervals(&self) -> Vec<Interval> {
        let mut intervals = self.intervals.lock().expect("recorder lock").clone();
        intervals.sort_by_key(|i| i.start);
        intervals
    }

    /// The terms of one contender so far, in order.
    pub fn terms_of(&self, who: &str) -> Vec<Interval> {
        self.intervals()
            .into_iter()
            .filter(|i| i.who == who)
            .collect()
    }

    /// The longest time by which a term outlasted the start of the next one (zero if none did).
    pub fn max_overlap(&self) -> Duration {
        self.intervals()
            .windows(2)
            .map(|pair| {
                let end = pair[0].end.unwrap_or_else(Instant::now);
                end.saturating_duration_since(pair[1].start)
            })
            .max()
            .unwrap_or_default()
    }

    /// Panics if two intervals overlap or tokens do not increase from one term to the next.
    pub fn assert_no_overlap(&self) {
        let intervals = self.intervals();
        for pair in intervals.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let a_end = a.end.unwrap_or_else(|| {
                panic!(
                    "{} still leads while {} took over: {intervals:#?}",
                    a.who, b.who
                )
            });
            assert!(
                a_end <= b.start,
                "overlap: {} led until {:?} after {} started: {intervals:#?}",
                a.who,
                a_end - b.start,
                b.who
            );
            assert!(
                a.token < b.token,
                "tokens did not increase from {} to {}: {intervals:#?}",
                a.who,
                b.who
            );
        }
    }
}

/// Waits until `check` holds, polling, or panics with `what` after `within`.
pub async fn eventually(within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP proxy in front of Azurite that delays every chunk by `one_way` in each direction, so
/// that each request's round trip takes at least twice that. Stops when dropped (the accept
/// loop owns the connections, which end with it).
pub struct SlowProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl SlowProxy {
    pub async fn start(upstream_port: u16, one_way: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(async move {
                    let Ok(server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                    else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        delayed_copy(client_read, server_write, one_way),
                        delayed_copy(server_read, client_write, one_way),
                    );
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Self { port, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read (order kept: a reader task
/// stamps chunks, a writer releases each at its time).
async fn delayed_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

impl Azurite {
    /// [`Self::builder`], but reaching Azurite through a proxy listening on `port`.
    pub fn builder_via(
        &self,
        port: u16,
        container: &str,
        instance_id: &str,
    ) -> BlobLeaderElectionBuilder {
        let connection = format!(
            "DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};\
             BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
        );
        self.builder(container, instance_id)
            .connection_string(connection)
    }
}

/// An account SAS for Azurite, signed as the service expects (service version 2020-12-06+).
pub fn account_sas() -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let version = leader_election_blob::DEFAULT_API_VERSION;
    let (permissions, services, types, expiry, protocol) =
        ("rwdlacup", "b", "sco", "2099-01-01T00:00:00Z", "https,http");
    let to_sign = format!(
        "{}\n{permissions}\n{services}\n{types}\n\n{expiry}\n\n{protocol}\n{version}\n\n",
        ACCOUNT
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(KEY)
        .unwrap();
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&key).unwrap();
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

impl Azurite {
    /// A container client of the SDK itself, authorized by an account SAS, with `policy` run on
    /// every try of every request (to count or corrupt them) and no SDK retries.
    pub fn sas_client(
        &self,
        container: &str,
        policy: Arc<dyn azure_core::http::policies::Policy>,
    ) -> azure_storage_blob::BlobContainerClient {
        let url = format!("{}/{container}?{}", self.blob_endpoint(), account_sas());
        azure_storage_blob::BlobContainerClient::new(
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
