//! A real Redis server for one test or run: a local `redis-server` on a free port of 127.0.0.1,
//! or, when no binary is installed but Docker works (feature `docker`), a container.
//!
//! Next to [`RedisServer`], deployments made of such servers, each with its own `start()` and
//! `url()`: [`RedisSentinel`] (a primary, two replicas and three sentinels) and
//! [`RedisCluster`] (a Redis Cluster).
//!
//! Every one speaks to its servers in raw RESP over TCP (or through `redis-cli`): no Redis
//! client library is needed.

use std::io;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::helpers::{free_port, program_available, temp_dir};
use crate::process::ServerProcess;

mod cluster;
mod sentinel;
#[cfg(feature = "tls")]
mod tls;
pub use cluster::{ClusterNode, ClusterOptions, RedisCluster};
pub use sentinel::{
    Failover, PEER_SOURCE as SENTINEL_PEER_SOURCE, Promotion, RedisSentinel,
    SERVICE as SENTINEL_SERVICE,
};

/// How to run a [`RedisServer`].
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    /// A password the server requires (`--requirepass`), if any.
    pub password: Option<String>,
    /// Keep the data across [`RedisServer::restart`]: an append-only file written on every
    /// command. Without it (the default) a restart loses every key, like a server without
    /// persistence.
    pub persistence: bool,
    /// After starting, wait until the server has been up this long (by `INFO server`). The
    /// Redis backend grants no lease on a server younger than a lease.
    pub min_uptime: Duration,
    /// Serve TLS only, with these certificates (local `redis-server` only): `--port 0`, the
    /// server's port is its `--tls-port`, and [`url`](RedisServer::url) is `rediss://`. Make
    /// them with `RedisTls::generate` (feature `tls`). Such a server is ready when its TLS
    /// port accepts connections; [`query`](RedisServer::query) and `min_uptime` need plain
    /// TCP and are refused.
    pub tls: Option<RedisTls>,
    /// Addresses of this machine to listen on besides 127.0.0.1, such as a network lab's
    /// host address (`netns::NetLab::host_ip`, feature `netns`).
    pub bind: Vec<std::net::IpAddr>,
    /// Added to the local server's environment, such as a stepped wall clock's
    /// (`faketime::SteppedClock::shimmed`'s `env()`: libfaketime itself cannot be preloaded
    /// into Debian's redis-server).
    pub env: Vec<(&'static str, std::ffi::OsString)>,
}

/// The certificates of a TLS [`RedisServer`], as PEM text. Its `Debug` never shows a key.
#[derive(Clone)]
pub struct RedisTls {
    /// The CA that signed the server's and the client's certificates.
    pub ca_pem: String,
    /// The server's certificate, for `127.0.0.1` and `localhost`.
    pub server_cert_pem: String,
    /// The server's private key.
    pub server_key_pem: String,
    /// A client certificate signed by the CA, for mutual TLS.
    pub client_cert_pem: String,
    /// The client certificate's private key.
    pub client_key_pem: String,
    /// Whether the server requires a client certificate (`--tls-auth-clients yes`).
    pub auth_clients: bool,
}

impl std::fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTls")
            .field("auth_clients", &self.auth_clients)
            .finish_non_exhaustive()
    }
}

/// A Redis server for one test; stopped (by PID) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    options: RedisOptions,
    dir: PathBuf,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    Local(Mutex<Option<ServerProcess>>),
    #[cfg(feature = "docker")]
    Container(Box<testcontainers::ContainerAsync<testcontainers::GenericImage>>),
}

impl RedisServer {
    /// Starts a fresh server without password or persistence.
    ///
    /// # Panics
    /// When neither `redis-server` nor (with feature `docker`) a Docker daemon is available,
    /// saying what to install.
    pub async fn start() -> Self {
        Self::start_with(RedisOptions::default()).await
    }

    /// Starts a fresh server run as `options` say.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn start_with(options: RedisOptions) -> Self {
        Self::try_start(options)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a fresh server; an error says what went wrong and what to install.
    ///
    /// # Errors
    /// When no server can be started or it does not answer in time.
    pub async fn try_start(options: RedisOptions) -> Result<Self, String> {
        if options.tls.is_some() && !options.min_uptime.is_zero() {
            return Err(
                "a TLS server cannot be queried for its uptime: leave min_uptime at 0 \
                        and wait for the election instead"
                    .into(),
            );
        }
        let server = if program_available("redis-server") {
            Self::start_local(options).await?
        } else {
            Self::start_container(options).await?
        };
        server.settle(server.options.min_uptime).await?;
        Ok(server)
    }

    async fn start_local(options: RedisOptions) -> Result<Self, String> {
        let dir = temp_dir("redis");
        if let Some(tls) = &options.tls {
            for (name, pem) in [
                ("ca.crt", &tls.ca_pem),
                ("server.crt", &tls.server_cert_pem),
                ("server.key", &tls.server_key_pem),
            ] {
                std::fs::write(dir.join(name), pem)
                    .map_err(|e| format!("cannot write {name} for redis-server: {e}"))?;
            }
        }
        // A port can be taken between `free_port` and the server's bind: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            let server = Self {
                port: free_port(),
                options: options.clone(),
                dir: dir.clone(),
                backend: Backend::Local(Mutex::new(None)),
            };
            match server.launch_local().await {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn local_command(&self) -> Command {
        let mut command = Command::new("redis-server");
        command.envs(self.options.env.iter().map(|(k, v)| (k, v)));
        if let Some(password) = &self.options.password {
            command.args(["--requirepass", password]);
        }
        if self.options.persistence {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        match &self.options.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(self.dir.join("server.crt"))
                .arg("--tls-key-file")
                .arg(self.dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(self.dir.join("ca.crt"))
                .args([
                    "--tls-auth-clients",
                    if tls.auth_clients { "yes" } else { "no" },
                ]),
        };
        command
            .arg("--bind")
            .arg("127.0.0.1")
            .args(self.options.bind.iter().map(ToString::to_string))
            .args([
                "--save",
                "",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Spawns `redis-server` on `self.port` and waits until it answers PING.
    #[cfg_attr(not(feature = "docker"), allow(irrefutable_let_patterns))]
    async fn launch_local(&self) -> Result<(), String> {
        let Backend::Local(slot) = &self.backend else {
            unreachable!("a local server")
        };
        let process = ServerProcess::spawn(self.local_command()).map_err(|e| {
            format!(
                "cannot start redis-server ({e}): install it (scripts/install-redis.sh, or \
                 `apt-get install redis-server`){}",
                docker_hint()
            )
        })?;
        *slot.lock().unwrap() = Some(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.pings().await {
                return Ok(());
            }
            {
                let mut slot = slot.lock().unwrap();
                if let Some(status) = slot.as_mut().and_then(ServerProcess::exited) {
                    *slot = None;
                    return Err(format!(
                        "redis-server exited with {status} on port {}",
                        self.port
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "redis-server did not answer on 127.0.0.1:{} within 10 s",
                    self.port
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[cfg(not(feature = "docker"))]
    async fn start_container(_: RedisOptions) -> Result<Self, String> {
        Err(format!(
            "these tests need a Redis server: install `redis-server` (scripts/install-redis.sh, \
             or `apt-get install redis-server`){}",
            docker_hint()
        ))
    }

    #[cfg(feature = "docker")]
    async fn start_container(options: RedisOptions) -> Result<Self, String> {
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::AsyncRunner;
        use testcontainers::{GenericImage, ImageExt};
        if options.tls.is_some() {
            return Err(
                "the TLS Redis fixture needs a local `redis-server` built with TLS \
                        (Debian's is): install it"
                    .into(),
            );
        }
        if !crate::docker_available() {
            return Err(format!(
                "these tests need a Redis server: install `redis-server` (scripts/install-redis.sh, \
                 or `apt-get install redis-server`){}",
                docker_hint()
            ));
        }
        let port = free_port();
        let mut cmd = vec!["redis-server".to_owned(), "--save".into(), String::new()];
        if options.persistence {
            cmd.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        } else {
            cmd.extend(["--appendonly", "no"].map(String::from));
        }
        if let Some(password) = &options.password {
            cmd.extend(["--requirepass".to_owned(), password.clone()]);
        }
        let container = GenericImage::new("redis", "7-alpine")
            .with_exposed_port(6379.tcp())
            .with_wait_for(WaitFor::message_on_stdout("Ready to accept connections"))
            .with_mapped_port(port, 6379.tcp())
            .with_cmd(cmd)
            .start()
            .await
            .map_err(|e| format!("cannot start a Redis container: {e}"))?;
        let server = Self {
            port,
            options,
            dir: temp_dir("redis"),
            backend: Backend::Container(Box::new(container)),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    #[cfg_attr(not(feature = "docker"), allow(dead_code))]
    async fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pings().await {
            if Instant::now() >= deadline {
                return Err(format!(
                    "Redis did not answer on 127.0.0.1:{} within 10 s",
                    self.port
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Whether the server answers PING (PONG, or NOAUTH when it wants a password); for a TLS
    /// server, whether its TLS port accepts connections (redis-server listens once its
    /// certificates are loaded).
    async fn pings(&self) -> bool {
        if self.options.tls.is_some() {
            let connect = TcpStream::connect(("127.0.0.1", self.port));
            return matches!(
                tokio::time::timeout(Duration::from_millis(500), connect).await,
                Ok(Ok(_))
            );
        }
        let attempt = async {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await.ok()?;
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

    /// Sends one command (authenticating first when the server has a password) and returns
    /// its reply as text: a status, an integer, a bulk string, or `Err` for an error reply.
    ///
    /// # Errors
    /// On a connection error, an error reply or an unexpected reply.
    pub async fn query(&self, args: &[&str]) -> io::Result<String> {
        if self.options.tls.is_some() {
            return Err(io::Error::other(
                "query speaks plain TCP; this server serves TLS only",
            ));
        }
        let mut stream = BufReader::new(TcpStream::connect(("127.0.0.1", self.port)).await?);
        if let Some(password) = &self.options.password {
            write_command(&mut stream, &["AUTH", password]).await?;
            read_reply(&mut stream).await?;
        }
        write_command(&mut stream, args).await?;
        read_reply(&mut stream).await
    }

    /// Waits until the server has been up for `min_uptime` (at most 10 s more than that).
    ///
    /// # Errors
    /// When the server does not answer `INFO server` or its uptime does not grow.
    pub async fn settle(&self, min_uptime: Duration) -> Result<(), String> {
        if min_uptime.is_zero() {
            return Ok(());
        }
        let deadline = Instant::now() + min_uptime + Duration::from_secs(10);
        loop {
            let info = self
                .query(&["INFO", "server"])
                .await
                .map_err(|e| format!("INFO server: {e}"))?;
            let up = info
                .lines()
                .find_map(|l| l.strip_prefix("uptime_in_seconds:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or("no uptime_in_seconds in INFO server")?;
            if Duration::from_secs(up) >= min_uptime {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err("the Redis server's uptime does not grow".into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's URL, with its password if it has one: `rediss://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.options.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match &self.options.password {
            Some(password) => format!("{scheme}://:{password}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// The `rediss://` URL of a TLS server (see [`RedisOptions::tls`]).
    ///
    /// # Panics
    /// When the server does not serve TLS.
    pub fn tls_url(&self) -> String {
        assert!(self.options.tls.is_some(), "not a TLS server");
        self.url()
    }

    /// The certificates of a TLS server: the CA to trust, and a client certificate.
    pub fn tls(&self) -> Option<&RedisTls> {
        self.options.tls.as_ref()
    }

    /// The options the server runs with.
    pub fn options(&self) -> &RedisOptions {
        &self.options
    }

    /// The PID of a local server while it runs (`None` for a container).
    pub fn pid(&self) -> Option<u32> {
        match &self.backend {
            Backend::Local(slot) => slot.lock().unwrap().as_ref().map(ServerProcess::pid),
            #[cfg(feature = "docker")]
            Backend::Container(_) => None,
        }
    }

    /// Kills the server (SIGKILL: no shutdown) and starts it again on the same port and
    /// folder. Without [`RedisOptions::persistence`] every key is lost.
    ///
    /// # Panics
    /// When the server does not start again.
    pub async fn restart(&self) {
        self.try_restart().await.unwrap_or_else(|e| panic!("{e}"));
    }

    /// [`restart`](Self::restart), with an error instead of a panic.
    ///
    /// # Errors
    /// When the server does not start again within 10 s.
    pub async fn try_restart(&self) -> Result<(), String> {
        self.kill().await;
        match &self.backend {
            Backend::Local(_) => {
                // The old process is reaped; its port may linger a moment.
                let deadline = Instant::now() + Duration::from_secs(10);
                loop {
                    match self.launch_local().await {
                        Ok(()) => return Ok(()),
                        Err(e) if Instant::now() >= deadline => return Err(e),
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
            #[cfg(feature = "docker")]
            Backend::Container(container) => {
                container
                    .start()
                    .await
                    .map_err(|e| format!("cannot restart the Redis container: {e}"))?;
                self.wait_ready().await
            }
        }
    }

    /// Kills the server (SIGKILL) without starting it again: nothing listens on its port until
    /// [`restart`](Self::restart).
    pub async fn kill(&self) {
        match &self.backend {
            Backend::Local(slot) => drop(slot.lock().unwrap().take()),
            #[cfg(feature = "docker")]
            Backend::Container(container) => {
                let _ = container.stop_with_timeout(Some(0)).await;
            }
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub async fn pause(&self) {
        self.freeze(true).await;
    }

    /// Thaws a paused server (SIGCONT).
    pub async fn resume(&self) {
        self.freeze(false).await;
    }

    async fn freeze(&self, frozen: bool) {
        match &self.backend {
            Backend::Local(slot) => {
                if let Some(process) = slot.lock().unwrap().as_ref() {
                    process.signal(if frozen { "STOP" } else { "CONT" });
                }
            }
            #[cfg(feature = "docker")]
            Backend::Container(container) => {
                let done = if frozen {
                    container.pause().await
                } else {
                    container.unpause().await
                };
                done.expect("pause or unpause the Redis container");
            }
        }
    }
}

impl Drop for RedisServer {
    #[cfg_attr(not(feature = "docker"), allow(irrefutable_let_patterns))]
    fn drop(&mut self) {
        if let Backend::Local(slot) = &self.backend {
            drop(ServerProcess::take(slot));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn docker_hint() -> &'static str {
    if cfg!(feature = "docker") {
        ", or start a Docker daemon for the testcontainers fallback"
    } else {
        ""
    }
}

async fn write_command(stream: &mut BufReader<TcpStream>, args: &[&str]) -> io::Result<()> {
    let mut out = format!("*{}\r\n", args.len());
    for arg in args {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.get_mut().write_all(out.as_bytes()).await
}

async fn read_reply(stream: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = String::new();
    stream.read_line(&mut line).await?;
    let line = line.trim_end_matches("\r\n");
    let (kind, rest) = line.split_at(line.len().min(1));
    match kind {
        "+" | ":" => Ok(rest.to_owned()),
        "-" => Err(io::Error::other(rest.to_owned())),
        "$" => {
            let len: i64 = rest
                .parse()
                .map_err(|_| io::Error::other("bad bulk length"))?;
            if len < 0 {
                return Ok(String::new());
            }
            let mut buf = vec![0u8; len as usize + 2];
            stream.read_exact(&mut buf).await?;
            buf.truncate(len as usize);
            String::from_utf8(buf).map_err(io::Error::other)
        }
        _ => Err(io::Error::other(format!("unexpected reply {line:?}"))),
    }
}
