//! A Redis Sentinel deployment for one test or run: one primary and two replicas
//! (`redis-server`, made replicas with `REPLICAOF`) watched by three sentinels (`redis-sentinel`,
//! or `redis-server <conf> --sentinel`), all local processes on free ports of 127.0.0.1.
//!
//! The sentinels are tuned for tests: an unreachable primary is down after 1 s, a failover
//! may take 2 s. A forced failover ([`RedisSentinel::failover`]) promotes a replica in about a
//! second; the old primary, which is still up, keeps serving the clients connected to it until
//! the sentinels turn it into a replica of the new one, which Sentinel does only about 10 s
//! later (it waits that long before reconfiguring an instance that reports the wrong role, and
//! that delay is not configurable). That is the moment its clients are disconnected and move to
//! the new primary.
//!
//! A deployment made by [`RedisSentinel::start_partitionable`] can cut its primary off its
//! peers while its clients still reach it ([`RedisSentinel::cut_primary_from_peers`]): the
//! replicas and sentinels connect from [`PEER_SOURCE`] (`bind-source-addr`), the clients from
//! 127.0.0.1, and an nftables rule drops what passes between the peers' address and the
//! primary's port (root and `nft` needed).

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{RedisOptions, RedisServer, read_reply, write_command};
use crate::helpers::{free_port, program_available, temp_dir};
use crate::process::ServerProcess;

/// The name under which the sentinels monitor the primary.
pub const SERVICE: &str = "mymaster";

/// How long the fixture waits for the deployment to agree (on start, and after a failover).
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The address the replicas and sentinels of a [partitionable](RedisSentinel::start_partitionable)
/// deployment connect from (`bind-source-addr`); they still announce the address every
/// process listens on (127.0.0.1 unless [started at another](RedisSentinel::start_partitionable_at)).
pub const PEER_SOURCE: &str = "127.0.0.2";

/// One primary, two replicas and three sentinels on 127.0.0.1; every process is stopped (by
/// PID) when dropped.
pub struct RedisSentinel {
    /// The data servers; which one is the primary changes with failovers.
    servers: Vec<RedisServer>,
    sentinels: Vec<SentinelProcess>,
    dir: PathBuf,
    /// The nftables table that cuts the primary off its peers (see
    /// [`RedisSentinel::cut_primary_from_peers`]); `None` unless partitionable.
    cut_table: Option<String>,
    /// The address every process announces (and the sentinels name the primary at).
    announce: Ipv4Addr,
}

struct SentinelProcess {
    port: u16,
    process: Mutex<Option<ServerProcess>>,
}

/// A replica promoted by [`RedisSentinel::promote`]; the old primary has not followed yet.
#[derive(Clone, Debug)]
pub struct Promotion {
    /// The port of the primary before the failover.
    pub old_primary: u16,
    /// The port of the promoted replica.
    pub new_primary: u16,
    /// When `SENTINEL FAILOVER` was sent.
    pub started: Instant,
    /// When every sentinel reported the new primary and it answered as a primary.
    pub promoted: Instant,
}

/// What a [`RedisSentinel::failover`] did, and when.
#[derive(Clone, Debug)]
pub struct Failover {
    /// The port of the primary before the failover.
    pub old_primary: u16,
    /// The port of the promoted replica.
    pub new_primary: u16,
    /// When `SENTINEL FAILOVER` was sent.
    pub started: Instant,
    /// When every sentinel reported the new primary and it answered as a primary.
    pub promoted: Instant,
    /// When the old primary had become a replica of the new one: from then on no client can
    /// write to it, and its clients (disconnected by the sentinels) reconnect to the new
    /// primary. The failover is complete.
    pub completed: Instant,
}

impl fmt::Debug for RedisSentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSentinel")
            .field(
                "servers",
                &self
                    .servers
                    .iter()
                    .map(RedisServer::port)
                    .collect::<Vec<_>>(),
            )
            .field(
                "sentinels",
                &self.sentinels.iter().map(|s| s.port).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl RedisSentinel {
    /// Starts the deployment and waits until it is ready: both replicas in sync with the
    /// primary, and every sentinel agreeing on the primary, knowing both replicas and the two
    /// other sentinels.
    ///
    /// # Panics
    /// When a process cannot be started or the deployment is not ready within 30 s.
    pub async fn start() -> Self {
        Self::try_start().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`start`](Self::start), with an error instead of a panic.
    ///
    /// # Errors
    /// When `redis-server` is missing (the fixture has no container fallback: the sentinels
    /// must reach the servers at the addresses the servers announce), a process does not
    /// start, or the deployment is not ready within 30 s.
    pub async fn try_start() -> Result<Self, String> {
        Self::launch(false, Ipv4Addr::LOCALHOST).await
    }

    /// [`try_start`](Self::try_start), with the replicas and sentinels connecting from
    /// [`PEER_SOURCE`], so that [`cut_primary_from_peers`](Self::cut_primary_from_peers) can cut
    /// the primary off them while its clients (from 127.0.0.1) still reach it.
    ///
    /// # Errors
    /// As [`try_start`](Self::try_start).
    pub async fn start_partitionable() -> Result<Self, String> {
        Self::launch(true, Ipv4Addr::LOCALHOST).await
    }

    /// [`start_partitionable`](Self::start_partitionable), with every process also listening
    /// on `announce` (an address of this machine, for example a network lab's host address)
    /// and announcing it: the sentinels name the primary and its replicas there, so that
    /// clients in other network namespaces reach them. The peers still connect from
    /// [`PEER_SOURCE`].
    ///
    /// # Errors
    /// As [`try_start`](Self::try_start).
    pub async fn start_partitionable_at(announce: Ipv4Addr) -> Result<Self, String> {
        Self::launch(true, announce).await
    }

    /// Whether [`start_partitionable`](Self::start_partitionable) deployments can be cut here:
    /// `nft` runs and may read the ruleset (root). If not, why.
    ///
    /// # Errors
    /// The reason, in one sentence.
    pub fn can_partition() -> Result<(), String> {
        crate::nft::output(&["nft", "list", "tables"])
            .map(drop)
            .map_err(|e| {
                format!("cutting a Sentinel primary off its peers needs root and nftables: {e}")
            })
    }

    async fn launch(partitionable: bool, announce: Ipv4Addr) -> Result<Self, String> {
        if !program_available("redis-server") {
            return Err(
                "the Sentinel fixture needs a local `redis-server` (and `redis-sentinel`): \
                 run scripts/install-redis.sh, or `apt-get install redis-server redis-sentinel`"
                    .into(),
            );
        }
        let mut servers = Vec::with_capacity(3);
        let options = RedisOptions {
            bind: if announce.is_loopback() {
                Vec::new()
            } else {
                vec![announce.into()]
            },
            ..RedisOptions::default()
        };
        for _ in 0..3 {
            servers.push(RedisServer::try_start(options.clone()).await?);
        }
        for server in &servers {
            // Replicas sync at once instead of waiting 5 s for more replicas to join.
            query_ok(server, &["CONFIG", "SET", "repl-diskless-sync-delay", "0"]).await?;
            if partitionable {
                // Every server may become a replica: it connects from the peers' address and
                // announces the one its clients use.
                query_ok(server, &["CONFIG", "SET", "bind-source-addr", PEER_SOURCE]).await?;
                let announced = announce.to_string();
                query_ok(
                    server,
                    &["CONFIG", "SET", "replica-announce-ip", &announced],
                )
                .await?;
            }
        }
        let primary = servers[0].port().to_string();
        for replica in &servers[1..] {
            query_ok(replica, &["REPLICAOF", &announce.to_string(), &primary]).await?;
        }
        let mut deployment = Self {
            servers,
            sentinels: Vec::with_capacity(3),
            dir: temp_dir("sentinel"),
            cut_table: None,
            announce,
        };
        if partitionable {
            crate::nft::sweep_tables();
            deployment.cut_table = Some(crate::nft::table_name("sentinel"));
        }
        for _ in 0..3 {
            let sentinel = deployment.launch_sentinel().await?;
            deployment.sentinels.push(sentinel);
        }
        let primary = deployment.servers[0].port();
        deployment.wait_ready(primary).await?;
        Ok(deployment)
    }

    /// Starts one sentinel monitoring the first server, on a free port (trying a few).
    async fn launch_sentinel(&self) -> Result<SentinelProcess, String> {
        let mut last = String::new();
        for _ in 0..5 {
            let port = free_port();
            let conf = self.dir.join(format!("sentinel-{port}.conf"));
            // Sentinel rewrites its configuration file as it learns the deployment.
            let announce = self.announce;
            let peers = if self.cut_table.is_some() {
                format!("bind-source-addr {PEER_SOURCE}\nsentinel announce-ip {announce}\n")
            } else {
                String::new()
            };
            let bind = if announce.is_loopback() {
                "127.0.0.1".to_owned()
            } else {
                format!("127.0.0.1 {announce}")
            };
            let text = format!(
                "port {port}\nbind {bind}\nprotected-mode no\ndir {dir}\n{peers}\
                 sentinel monitor {SERVICE} {announce} {primary} 2\n\
                 sentinel down-after-milliseconds {SERVICE} 1000\n\
                 sentinel failover-timeout {SERVICE} 2000\n\
                 sentinel parallel-syncs {SERVICE} 2\n",
                dir = self.dir.display(),
                primary = self.servers[0].port(),
            );
            std::fs::write(&conf, text)
                .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
            let mut command = if program_available("redis-sentinel") {
                let mut command = Command::new("redis-sentinel");
                command.arg(&conf);
                command
            } else {
                let mut command = Command::new("redis-server");
                command.arg(&conf).arg("--sentinel");
                command
            };
            command
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let process = ServerProcess::spawn(command)
                .map_err(|e| format!("cannot start redis-sentinel: {e}"))?;
            let sentinel = SentinelProcess {
                port,
                process: Mutex::new(Some(process)),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if query_port(port, &["PING"]).await.is_ok_and(|r| r == "PONG") {
                    return Ok(sentinel);
                }
                let exited = sentinel
                    .process
                    .lock()
                    .unwrap()
                    .as_mut()
                    .and_then(ServerProcess::exited);
                if let Some(status) = exited {
                    last = format!("redis-sentinel exited with {status} on port {port}");
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "redis-sentinel did not answer on 127.0.0.1:{port} within 10 s"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Err(last)
    }

    /// The URL that elects through the sentinels, in the form fred reads: the first sentinel
    /// as the host, the others as `node` parameters, and the service name.
    pub fn url(&self) -> String {
        let host = self.announce;
        let mut url = format!(
            "redis-sentinel://{host}:{}?sentinelServiceName={SERVICE}",
            self.sentinels[0].port
        );
        for sentinel in &self.sentinels[1..] {
            url.push_str(&format!("&node={host}:{}", sentinel.port));
        }
        url
    }

    /// The ports of the three sentinels.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The three data servers (the primary and its replicas, in no particular order).
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// The server listening on `port`, if it is one of this deployment's.
    pub fn server(&self, port: u16) -> Option<&RedisServer> {
        self.servers.iter().find(|s| s.port() == port)
    }

    /// The primary's address as the first sentinel that answers reports it: `(host, port)`.
    ///
    /// # Errors
    /// When no sentinel answers.
    pub async fn primary_addr(&self) -> Result<(String, u16), String> {
        let mut last = String::from("no sentinel");
        for sentinel in &self.sentinels {
            match self.reported_primary(sentinel.port).await {
                Ok(Some(addr)) => return Ok(addr),
                Ok(None) => last = format!("sentinel {} knows no primary", sentinel.port),
                Err(e) => last = format!("sentinel {}: {e}", sentinel.port),
            }
        }
        Err(last)
    }

    /// The primary server, as the sentinels report it.
    ///
    /// # Errors
    /// As [`primary_addr`](Self::primary_addr), or when the reported port is none of ours.
    pub async fn primary(&self) -> Result<&RedisServer, String> {
        let (_, port) = self.primary_addr().await?;
        self.server(port)
            .ok_or_else(|| format!("the sentinels report an unknown primary on port {port}"))
    }

    /// A sentinel's `master0` line of `INFO sentinel`: status, address, replicas and sentinels.
    async fn sentinel_view(&self, port: u16) -> io::Result<SentinelView> {
        let info = query_port(port, &["INFO", "sentinel"]).await?;
        let line = info
            .lines()
            .find_map(|l| l.strip_prefix("master0:"))
            .ok_or_else(|| io::Error::other("no master0 in INFO sentinel"))?;
        let field = |name: &str| {
            line.split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_default()
                .to_owned()
        };
        let address = field("address");
        let primary = address
            .rsplit_once(':')
            .and_then(|(host, port)| Some((host.to_owned(), port.parse().ok()?)));
        Ok(SentinelView {
            ok: field("status") == "ok",
            primary,
            replicas: field("slaves").parse().unwrap_or(0),
            sentinels: field("sentinels").parse().unwrap_or(0),
        })
    }

    async fn reported_primary(&self, port: u16) -> io::Result<Option<(String, u16)>> {
        Ok(self.sentinel_view(port).await?.primary)
    }

    /// Waits until `primary` is the primary by every account: it answers `role:master` with
    /// both replicas online, and every sentinel reports it (status ok) with two replicas and
    /// three sentinels.
    async fn wait_ready(&self, primary: u16) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        let mut state = String::new();
        while Instant::now() < deadline {
            match self.ready(primary).await {
                Ok(()) => return Ok(()),
                Err(e) => state = e,
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!(
            "the Sentinel deployment was not ready within {READY_WITHIN:?}: {state}"
        ))
    }

    async fn ready(&self, primary: u16) -> Result<(), String> {
        let server = self
            .server(primary)
            .ok_or_else(|| format!("no server on port {primary}"))?;
        let replication = server
            .query(&["INFO", "replication"])
            .await
            .map_err(|e| format!("INFO replication on {primary}: {e}"))?;
        let online = replication
            .lines()
            .filter(|l| l.starts_with("slave") && l.contains("state=online"))
            .count();
        if !replication.contains("role:master") || online < 2 {
            return Err(format!(
                "{primary}: role {}, {online} replicas online",
                field(&replication, "role")
            ));
        }
        for sentinel in &self.sentinels {
            let view = self
                .sentinel_view(sentinel.port)
                .await
                .map_err(|e| format!("sentinel {}: {e}", sentinel.port))?;
            if !view.ok
                || view.primary.as_ref().map(|p| p.1) != Some(primary)
                || view.replicas < 2
                || view.sentinels < 3
            {
                return Err(format!("sentinel {}: {view:?}", sentinel.port));
            }
        }
        Ok(())
    }

    /// Forces a failover (`SENTINEL FAILOVER`) and waits until it is complete: a replica
    /// promoted and reported by every sentinel, the old primary turned into a replica of the
    /// new one (about 10 s after the promotion, see the module docs), and the deployment ready
    /// again (so that another failover can follow). Answers what happened and when.
    ///
    /// # Panics
    /// When the failover cannot be started or does not complete within 60 s.
    pub async fn failover(&self) -> Failover {
        self.try_failover().await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`failover`](Self::failover), with an error instead of a panic.
    ///
    /// # Errors
    /// When no sentinel accepts the failover within 30 s or it does not complete in time.
    pub async fn try_failover(&self) -> Result<Failover, String> {
        let promotion = self.promote().await?;
        self.complete(promotion).await
    }

    /// The first half of [`failover`](Self::failover): forces it and returns once a replica
    /// is promoted, while the old primary still serves the clients connected to it. Finish
    /// with [`complete`](Self::complete).
    ///
    /// # Errors
    /// When no sentinel accepts the failover within 30 s or no replica is promoted in time.
    pub async fn promote(&self) -> Result<Promotion, String> {
        let (_, old_primary) = self.primary_addr().await?;
        let started = self.start_failover().await?;
        // Promoted: every sentinel reports another primary, and it says it is one.
        let deadline = started + READY_WITHIN;
        let new_primary = loop {
            if let Some(port) = self.promoted(old_primary).await {
                break port;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no replica of {old_primary} was promoted within {READY_WITHIN:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Ok(Promotion {
            old_primary,
            new_primary,
            started,
            promoted: Instant::now(),
        })
    }

    /// The second half of [`failover`](Self::failover): waits until the old primary follows
    /// the new one and the deployment is ready again.
    ///
    /// # Errors
    /// When the old primary is not turned into a replica, or the replicas do not catch up,
    /// within 30 s.
    pub async fn complete(&self, promotion: Promotion) -> Result<Failover, String> {
        let Promotion {
            old_primary,
            new_primary,
            started,
            promoted,
        } = promotion;
        // Completed: the old primary follows the new one.
        let old = self
            .server(old_primary)
            .ok_or_else(|| format!("no server on port {old_primary}"))?;
        let completed = loop {
            if let Ok(info) = old.query(&["INFO", "replication"]).await
                && field(&info, "role") == "slave"
                && field(&info, "master_port") == new_primary.to_string()
            {
                break Instant::now();
            }
            if Instant::now() >= promoted + READY_WITHIN {
                return Err(format!(
                    "the old primary {old_primary} did not become a replica of \
                     {new_primary} within {READY_WITHIN:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.wait_ready(new_primary).await?;
        Ok(Failover {
            old_primary,
            new_primary,
            started,
            promoted,
            completed,
        })
    }

    /// Sends `SENTINEL FAILOVER` to a sentinel until one accepts it (a sentinel refuses while
    /// a failover is in progress or before it has seen a replica it may promote); answers
    /// when it was accepted.
    async fn start_failover(&self) -> Result<Instant, String> {
        let deadline = Instant::now() + READY_WITHIN;
        let mut last = String::new();
        loop {
            for sentinel in &self.sentinels {
                let sent = Instant::now();
                match query_port(sentinel.port, &["SENTINEL", "FAILOVER", SERVICE]).await {
                    Ok(_) => return Ok(sent),
                    Err(e) => last = format!("sentinel {}: {e}", sentinel.port),
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("SENTINEL FAILOVER was refused: {last}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The new primary's port, once every sentinel reports a primary other than `old` and that
    /// server answers `role:master`.
    async fn promoted(&self, old: u16) -> Option<u16> {
        let mut agreed = None;
        for sentinel in &self.sentinels {
            let (_, port) = self.reported_primary(sentinel.port).await.ok()??;
            if port == old || agreed.is_some_and(|p| p != port) {
                return None;
            }
            agreed = Some(port);
        }
        let port = agreed?;
        let info = self
            .server(port)?
            .query(&["INFO", "replication"])
            .await
            .ok()?;
        let role = field(&info, "role");
        (role == "master").then_some(port)
    }
}

impl RedisSentinel {
    /// Cuts the primary off its replicas and sentinels (packets between [`PEER_SOURCE`] and its
    /// port dropped, no reset) while its clients still reach it; the sentinels then fail over
    /// to a replica after `down-after-milliseconds` (1 s). Answers the cut primary's port.
    /// [`heal_peers`](Self::heal_peers) ends the cut, and so does dropping the deployment.
    ///
    /// # Errors
    /// A deployment not made by [`start_partitionable`](Self::start_partitionable), no primary
    /// known, or `nft` failed (it needs root).
    pub async fn cut_primary_from_peers(&self) -> Result<u16, String> {
        let table = self
            .cut_table
            .as_deref()
            .ok_or("this Sentinel deployment was not started partitionable")?;
        let port = self.primary().await?.port();
        let rules = format!(
            "ip saddr {PEER_SOURCE} tcp dport {port} drop\nip daddr {PEER_SOURCE} tcp sport {port} drop"
        );
        crate::nft::replace_input_table(table, &rules)
            .map_err(|e| format!("cannot cut the primary {port} off its peers: {e}"))?;
        Ok(port)
    }

    /// Ends [`cut_primary_from_peers`](Self::cut_primary_from_peers); nothing when there is no
    /// cut.
    ///
    /// # Errors
    /// `nft` failed.
    pub fn heal_peers(&self) -> Result<(), String> {
        match &self.cut_table {
            Some(table) => crate::nft::delete_table(table).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        let _ = self.heal_peers();
        // Sentinels first, so that none reacts to the servers going away.
        for sentinel in &self.sentinels {
            drop(ServerProcess::take(&sentinel.process));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug)]
struct SentinelView {
    ok: bool,
    primary: Option<(String, u16)>,
    replicas: u32,
    sentinels: u32,
}

/// A `name:value` field of an INFO reply, or `""`.
fn field<'a>(info: &'a str, name: &str) -> &'a str {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map_or("", str::trim)
}

async fn query_ok(server: &RedisServer, args: &[&str]) -> Result<(), String> {
    server
        .query(args)
        .await
        .map(drop)
        .map_err(|e| format!("{} on {}: {e}", args.join(" "), server.port()))
}

/// One command to a server without password on `port`.
async fn query_port(port: u16, args: &[&str]) -> io::Result<String> {
    let attempt = async {
        let mut stream = BufReader::new(TcpStream::connect(("127.0.0.1", port)).await?);
        write_command(&mut stream, args).await?;
        read_reply(&mut stream).await
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .map_err(|_| io::Error::other(format!("no reply from 127.0.0.1:{port} within 2 s")))?
}
