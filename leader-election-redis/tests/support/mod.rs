//! Test support: real Redis servers, a TCP proxy that can cut one client off, and a recorder
//! of leadership intervals. Shared by the integration tests and the benchmark example.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::future::Future;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use leader_election::{
    ChangeReason, ElectionEvent, FencingToken, LeaderElection, LeaderElectionOptions, LeaseStore,
};
use leader_election_redis::RedisLeaseStore;
use leader_election_redis::fred::clients::Client;
use leader_election_redis::fred::interfaces::ClientLike;
use leader_election_redis::fred::prelude::{Config, ReconnectPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

// === RedisServer ===

/// A Redis server for one test: a local `redis-server` on a free port of 127.0.0.1 without
/// persistence, or, when no binary is installed but Docker works, a container. Stopped on drop.
pub struct RedisServer {
    port: u16,
    password: Option<String>,
    backend: Backend,
}

enum Backend {
    Local {
        child: Mutex<Option<Child>>,
        dir: PathBuf,
    },
    Container(Box<testcontainers::ContainerAsync<testcontainers::GenericImage>>),
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// A port of 127.0.0.1 on which nothing listens (at least right after this call).
pub fn closed_port() -> u16 {
    free_port()
}

fn has_binary(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn docker_works() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn spawn_local(port: u16, dir: &PathBuf, password: Option<&str>) -> std::io::Result<Child> {
    let mut command = Command::new("redis-server");
    if let Some(password) = password {
        command.args(["--requirepass", password]);
    }
    command
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--protected-mode", "no"])
        .args(["--loglevel", "warning"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// Whether a Redis server answers PING on the port (with PONG, or NOAUTH when it wants a
/// password).
async fn pings(port: u16) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 7];
        stream.read_exact(&mut buf).await.ok()?;
        (&buf == b"+PONG\r\n" || &buf == b"-NOAUTH").then_some(())
    };
    tokio::time::timeout(Duration::from_millis(500), attempt)
        .await
        .ok()
        .flatten()
        .is_some()
}

impl RedisServer {
    /// Starts a fresh server. Panics, saying what to install, when neither a `redis-server`
    /// binary nor a working Docker is available.
    pub async fn start() -> Self {
        Self::start_with_password(None).await
    }

    /// Starts a fresh server that requires `password`, if given.
    pub async fn start_with_password(password: Option<&str>) -> Self {
        if has_binary("redis-server") {
            return Self::start_local(password).await;
        }
        if docker_works() {
            return Self::start_container(password).await;
        }
        panic!(
            "these tests need a Redis server: install `redis-server` (run scripts/install-redis.sh, \
             or `apt-get install redis-server`) or start a Docker daemon for testcontainers"
        );
    }

    async fn start_local(password: Option<&str>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "leader-election-redis-{}-{:08x}",
            std::process::id(),
            fastrand_u32()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for _ in 0..5 {
            let port = free_port();
            let server = Self {
                port,
                password: password.map(str::to_owned),
                backend: Backend::Local {
                    child: Mutex::new(Some(
                        spawn_local(port, &dir, password).expect("spawn redis-server"),
                    )),
                    dir: dir.clone(),
                },
            };
            if server.wait_ready().await {
                server.settle().await;
                return server;
            }
        }
        panic!("redis-server did not start on 127.0.0.1");
    }

    async fn start_container(password: Option<&str>) -> Self {
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::AsyncRunner;
        use testcontainers::{GenericImage, ImageExt};
        let port = free_port();
        let mut cmd = vec!["redis-server", "--save", "", "--appendonly", "no"];
        if let Some(password) = password {
            cmd.extend(["--requirepass", password]);
        }
        let container = GenericImage::new("redis", "7-alpine")
            .with_exposed_port(6379.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
            .with_mapped_port(port, 6379.tcp())
            .with_cmd(cmd)
            .start()
            .await
            .expect("start a Redis container");
        let server = Self {
            port,
            password: password.map(str::to_owned),
            backend: Backend::Container(Box::new(container)),
        };
        assert!(
            server.wait_ready().await,
            "the Redis container does not answer"
        );
        server.settle().await;
        server
    }

    async fn wait_ready(&self) -> bool {
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if pings(self.port).await {
                return true;
            }
            if let Backend::Local { child, .. } = &self.backend {
                let mut child = child.lock().unwrap();
                if let Some(c) = child.as_mut()
                    && let Ok(Some(_)) = c.try_wait()
                {
                    *child = None;
                    return false;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Waits until the server has been up for 2 s: a server younger than a lease grants no
    /// new lease (it may have lost one in a restart), and the tests use leases up to 2 s.
    pub async fn settle(&self) {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let client = self.client().await;
            let info = command(&client, &["INFO", "server"]).await;
            let _ = client.quit().await;
            let up = info
                .as_string()
                .and_then(|i| {
                    i.lines()
                        .find_map(|l| l.strip_prefix("uptime_in_seconds:"))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                })
                .expect("uptime_in_seconds");
            if up >= 2 {
                return;
            }
            assert!(Instant::now() < until, "redis-server uptime does not grow");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// The PID of a local server.
    pub fn pid(&self) -> Option<u32> {
        match &self.backend {
            Backend::Local { child, .. } => child.lock().unwrap().as_ref().map(Child::id),
            Backend::Container(_) => None,
        }
    }

    /// Kills the server (no shutdown, no persistence: every key is lost) and starts a new one
    /// on the same port.
    pub async fn restart(&self) {
        match &self.backend {
            Backend::Local { child, dir } => {
                {
                    let mut child = child.lock().unwrap();
                    if let Some(mut c) = child.take() {
                        let _ = c.kill();
                        let _ = c.wait();
                    }
                }
                let until = Instant::now() + Duration::from_secs(10);
                loop {
                    let spawned = spawn_local(self.port, dir, self.password.as_deref())
                        .expect("spawn redis-server");
                    *child.lock().unwrap() = Some(spawned);
                    if self.wait_ready().await {
                        break;
                    }
                    assert!(Instant::now() < until, "redis-server did not restart");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Backend::Container(container) => {
                container.stop().await.expect("stop container");
                container.start().await.expect("start container");
                assert!(
                    self.wait_ready().await,
                    "the Redis container did not restart"
                );
            }
        }
    }

    /// Kills the server without restarting it: nothing listens on its port until
    /// [`restart`](Self::restart).
    pub async fn stop(&self) {
        match &self.backend {
            Backend::Local { child, .. } => {
                let mut child = child.lock().unwrap();
                if let Some(mut c) = child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
            }
            Backend::Container(container) => container.stop().await.expect("stop container"),
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub async fn pause(&self) {
        match &self.backend {
            Backend::Local { .. } => self.signal("-STOP"),
            Backend::Container(c) => c.pause().await.expect("pause container"),
        }
    }

    /// Thaws a paused server (SIGCONT).
    pub async fn resume(&self) {
        match &self.backend {
            Backend::Local { .. } => self.signal("-CONT"),
            Backend::Container(c) => c.unpause().await.expect("unpause container"),
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.pid().expect("a running local redis-server");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// A connected client for operator commands and inspection.
    pub async fn client(&self) -> Client {
        connect_client(&self.url()).await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Backend::Local { child, dir } = &self.backend {
            let mut child = child
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(mut c) = child.take() {
                // SIGKILL ends a SIGSTOPped process too.
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn fastrand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16)
}

/// A connected fred client for `url`, with a reconnect policy and a command timeout.
pub async fn connect_client(url: &str) -> Client {
    let config = Config::from_url(url).expect("url");
    let client = Client::new(
        config,
        None,
        None,
        Some(ReconnectPolicy::new_constant(0, 50)),
    );
    client.init().await.expect("connect to redis");
    client
}

/// A store on `url` for the election `key`, with its own client.
pub async fn store(url: &str, key: &str) -> RedisLeaseStore {
    RedisLeaseStore::new(connect_client(url).await, key)
        .expect("store")
        .with_operation_timeout(Duration::from_millis(500))
}

/// A unique election key for a test.
pub fn unique_key(test: &str) -> String {
    format!("test-{test}-{:08x}", fastrand_u32())
}

/// Fast election timings for tests: 1.5 s lease, renewed every 400 ms, 250 ms timeout.
pub fn fast_options(instance_id: &str) -> LeaderElectionOptions {
    let mut o = LeaderElectionOptions::default();
    o.instance_id = instance_id.to_owned();
    o.lease_duration = Duration::from_millis(1500);
    o.renew_interval = Duration::from_millis(400);
    o.operation_timeout = Some(Duration::from_millis(250));
    o.retry_interval = Duration::from_millis(100);
    o.max_retry_interval = Duration::from_millis(400);
    o.shutdown_timeout = Duration::from_secs(1);
    o
}

/// Polls `condition` every 10 ms until it holds or `within` passes; answers whether it held.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Like [`eventually`] with an async condition.
pub async fn eventually_async<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let until = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// === Proxy ===

/// A TCP proxy in front of a Redis server, for one client: [`cut`](Self::cut) stops all
/// traffic (existing and new connections hang, as in a network partition),
/// [`heal`](Self::heal) closes the hung connections so the client reconnects, and
/// [`switch`](Self::switch) sends new connections to another server after closing the old ones
/// (as a failover behind a virtual IP).
pub struct Proxy {
    port: u16,
    cut: watch::Sender<bool>,
    reset: watch::Sender<u64>,
    upstream: Arc<AtomicU16>,
    task: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let (cut, _) = watch::channel(false);
        let (reset, _) = watch::channel(0);
        let upstream = Arc::new(AtomicU16::new(upstream));
        let (cut_tx, reset_tx, target) = (cut.clone(), reset.clone(), Arc::clone(&upstream));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let cut = cut_tx.subscribe();
                let reset = reset_tx.subscribe();
                let upstream = target.load(Ordering::SeqCst);
                tokio::spawn(forward(client, upstream, cut, reset));
            }
        });
        Self {
            port,
            cut,
            reset,
            upstream,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }

    /// Closes every connection; new ones go to `upstream`.
    pub fn switch(&self, upstream: u16) {
        self.upstream.store(upstream, Ordering::SeqCst);
        self.reset.send_modify(|n| *n += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    mut client: TcpStream,
    upstream: u16,
    mut cut: watch::Receiver<bool>,
    mut reset: watch::Receiver<u64>,
) {
    reset.borrow_and_update();
    let relay = async {
        if !*cut.borrow_and_update() {
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => return,
                _ = cut.wait_for(|cut| *cut) => {}
            }
            // Cut: keep both sockets open but silent until healed.
            let _ = cut.wait_for(|cut| !*cut).await;
            return;
        }
        // Connected during a cut: accept, never answer, close when healed.
        let _ = cut.wait_for(|cut| !*cut).await;
    };
    tokio::select! {
        () = relay => {}
        _ = reset.changed() => {}
    }
}

// === Recorder ===

/// One term as seen by one contender, on the test's monotonic clock.
#[derive(Clone, Debug)]
pub struct Interval {
    pub who: String,
    pub token: FencingToken,
    pub start: Instant,
    pub end: Option<Instant>,
    pub end_reason: Option<ChangeReason>,
}

/// Records every contender's leadership intervals from its events.
#[derive(Clone, Default)]
pub struct Recorder {
    intervals: Arc<Mutex<Vec<Interval>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts recording `election`'s leadership changes.
    pub fn watch<S: LeaseStore>(&self, election: &LeaderElection<S>) {
        let mut events = election.subscribe();
        let who = election.instance_id().to_owned();
        let intervals = Arc::clone(&self.intervals);
        let task = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(ElectionEvent::LeadershipChanged {
                        is_leader,
                        token,
                        reason,
                    }) => {
                        let now = Instant::now();
                        if std::env::var_os("RECORDER_DEBUG").is_some() {
                            eprintln!("{now:?} {who} is_leader={is_leader} {token} {reason:?}");
                        }
                        let mut all = intervals.lock().unwrap();
                        if is_leader {
                            all.push(Interval {
                                who: who.clone(),
                                token,
                                start: now,
                                end: None,
                                end_reason: None,
                            });
                        } else if let Some(open) = all
                            .iter_mut()
                            .rev()
                            .find(|i| i.who == who && i.end.is_none())
                        {
                            open.end = Some(now);
                            open.end_reason = Some(reason);
                        }
                    }
                    Ok(other) => {
                        if std::env::var_os("RECORDER_DEBUG").is_some() {
                            eprintln!("{:?} {who} {other:?}", Instant::now());
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        panic!("recorder for {who} lagged by {n} events")
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        self.tasks.lock().unwrap().push(task);
    }

    pub fn intervals(&self) -> Vec<Interval> {
        self.intervals.lock().unwrap().clone()
    }

    /// How many terms began.
    pub fn terms(&self) -> usize {
        self.intervals.lock().unwrap().len()
    }

    /// The contender leading now, per the record.
    pub fn current(&self) -> Option<Interval> {
        self.intervals
            .lock()
            .unwrap()
            .iter()
            .find(|i| i.end.is_none())
            .cloned()
    }

    /// Panics if two contenders' intervals overlap, or if a later term's token is not greater
    /// than an earlier one's.
    pub fn assert_safe(&self) {
        let now = Instant::now();
        let mut all = self.intervals();
        all.sort_by_key(|i| i.start);
        for (n, a) in all.iter().enumerate() {
            let a_end = a.end.unwrap_or(now);
            for b in &all[n + 1..] {
                if b.who != a.who {
                    assert!(
                        b.start >= a_end,
                        "two leaders at once: {a:?} and {b:?} overlap by {:?}",
                        a_end - b.start
                    );
                }
            }
        }
        for pair in all.windows(2) {
            assert!(
                pair[1].token > pair[0].token
                    || (pair[1].token == pair[0].token && pair[1].who == pair[0].who),
                "tokens did not increase: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if Arc::strong_count(&self.tasks) == 1 {
            for task in self.tasks.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }
}

/// Election for `key` on `url`, built with the crate's builder and [`fast_options`].
pub fn election(url: &str, key: &str, id: &str) -> LeaderElection<RedisLeaseStore> {
    leader_election_redis::RedisLeaderElection::builder()
        .url(url)
        .key(key)
        .options(fast_options(id))
        .build()
        .expect("build election")
}

/// `ConfigInterface` is not needed: raw commands go through `custom`.
pub async fn command(
    client: &Client,
    args: &[&str],
) -> leader_election_redis::fred::prelude::Value {
    use leader_election_redis::fred::types::{ClusterHash, CustomCommand, Value};
    let (name, rest) = args.split_first().expect("a command");
    let cmd = CustomCommand::new(name.to_string(), ClusterHash::FirstKey, false);
    let rest: Vec<Value> = rest.iter().map(|a| Value::from(*a)).collect();
    client.custom(cmd, rest).await.expect("command")
}

/// Makes the election `key` on `url` look like one that has run before: a fresh election (no
/// `{key}:epoch` yet) waits one lease before its first grant, as a promoted replica that never
/// received the election's first acquisition would. Tests that need an immediate grant prime
/// their key first: one acquisition attempt records the epoch, and deleting the fence it set
/// ends the wait at once.
pub async fn prime(url: &str, key: &str) {
    use leader_election::{AcquireOutcome, LeaseRequest};
    let store = store(url, key).await;
    let request = LeaseRequest::new("primer", Duration::from_millis(1));
    match store.try_acquire(&request).await.expect("prime") {
        AcquireOutcome::Acquired(lease) => {
            store.release(&request, &lease).await.expect("release");
        }
        AcquireOutcome::Withheld { .. } => {
            let client = connect_client(url).await;
            command(&client, &["DEL", &format!("{{{key}}}:fence")]).await;
            let _ = client.quit().await;
        }
        other => panic!("priming {key}: {other:?}"),
    }
    let _ = store.client().quit().await;
}

/// A store for `key` on `url`, after [`prime`]: it grants at once.
pub async fn primed_store(url: &str, key: &str) -> RedisLeaseStore {
    prime(url, key).await;
    store(url, key).await
}
