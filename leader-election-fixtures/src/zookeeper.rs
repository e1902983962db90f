//! Real Apache ZooKeeper servers for one test binary: a standalone server or an ensemble of
//! several, each a `java` process (`QuorumPeerMain`) with its own data folder and ports of
//! 127.0.0.1 in 21800–21999, stopped by PID and removed on drop. Debian's `zookeeper` package
//! brings the jars; when they are missing, the fixture runs the workspace's
//! `scripts/install-zookeeper.sh` (which needs root and `apt-get`).
//!
//! The servers tick every 100 ms and accept session timeouts from 200 ms to 60 s, so that
//! tests may use short leases. Their four-letter words are enabled: [`ZooKeeper::mode`] asks a
//! member whether it leads the ensemble (`srvr`).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::helpers::temp_dir;
use crate::process::ServerProcess;

/// The jar of ZooKeeper's server (its manifest names the jars it needs).
const SERVER_JAR: &str = "/usr/share/java/zookeeper.jar";
/// A logging binding for the server's SLF4J, so that its log reaches the member's log file.
const LOG_JAR: &str = "/usr/share/java/slf4j-simple.jar";
/// The ports the fixture may use: other work on the same machine keeps out of them.
const PORTS: std::ops::RangeInclusive<u16> = 21800..=21999;
/// The server's tick, in ms: sessions may be as short as two ticks.
const TICK_MS: u64 = 100;

/// `java`, on `PATH` or in `/usr/bin`.
fn java() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("java"))
        .find(|p| p.exists())
}

/// Installs ZooKeeper with the workspace's script when its jar is missing.
fn install() {
    if Path::new(SERVER_JAR).exists() && java().is_some() {
        return;
    }
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if Path::new(SERVER_JAR).exists() && java().is_some() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join("scripts/install-zookeeper.sh");
    let status = std::process::Command::new("bash").arg(&script).status();
    assert!(
        status.is_ok_and(|s| s.success()) && Path::new(SERVER_JAR).exists() && java().is_some(),
        "ZooKeeper's server ({SERVER_JAR}) or java was not found and {} could not install it: \
         run it as root, or `apt-get install zookeeper`",
        script.display()
    );
}

/// A port of 127.0.0.1 in [`PORTS`] that was free when this was called, never handed out twice
/// by this process.
fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut handed = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let span = u32::from(PORTS.end() - PORTS.start()) + 1;
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..span {
        let offset = seed.wrapping_add(attempt) % span;
        let port = PORTS.start() + u16::try_from(offset).unwrap_or(0);
        if handed.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed.insert(port);
            return port;
        }
    }
    panic!("no free port of 127.0.0.1 in {PORTS:?}");
}

/// One server of the ensemble.
#[derive(Debug)]
struct Member {
    /// Its id (`myid`), from 1.
    id: usize,
    client_port: u16,
    dir: PathBuf,
    process: Mutex<Option<ServerProcess>>,
}

/// Running ZooKeeper servers: one standalone server ([`start`](Self::start)) or an ensemble
/// ([`start_ensemble`](Self::start_ensemble)). Every member is stopped (its process group
/// killed by PID) and the data removed when dropped.
#[derive(Debug)]
pub struct ZooKeeper {
    members: Vec<Member>,
    dir: PathBuf,
    java: PathBuf,
}

impl ZooKeeper {
    /// Starts a standalone server and waits until it serves.
    ///
    /// # Panics
    /// When ZooKeeper cannot be installed, or the server does not serve within 60 s.
    pub async fn start() -> Self {
        Self::start_with(1).await
    }

    /// Starts an ensemble of `size` servers (3 for a quorum that survives one loss) and waits
    /// until every member serves.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn start_ensemble(size: usize) -> Self {
        assert!(size >= 2, "an ensemble has at least two members");
        Self::start_with(size).await
    }

    async fn start_with(size: usize) -> Self {
        install();
        let java = java().expect("java");
        let dir = temp_dir("zookeeper");
        let ports: Vec<(u16, u16, u16)> = (0..size)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let mut members = Vec::new();
        for (i, (client_port, _, _)) in ports.iter().enumerate() {
            let id = i + 1;
            let member_dir = dir.join(format!("server{id}"));
            let data = member_dir.join("data");
            std::fs::create_dir_all(&data).expect("create a data folder");
            let mut config = format!(
                "tickTime={TICK_MS}\n\
                 initLimit=50\n\
                 syncLimit=20\n\
                 dataDir={}\n\
                 clientPort={client_port}\n\
                 clientPortAddress=127.0.0.1\n\
                 minSessionTimeout={}\n\
                 maxSessionTimeout=60000\n\
                 admin.enableServer=false\n\
                 4lw.commands.whitelist=*\n\
                 autopurge.purgeInterval=0\n",
                data.display(),
                2 * TICK_MS,
            );
            if size > 1 {
                std::fs::write(data.join("myid"), format!("{id}\n")).expect("write myid");
                for (j, (_, peer, election)) in ports.iter().enumerate() {
                    config.push_str(&format!("server.{}=127.0.0.1:{peer}:{election}\n", j + 1));
                }
            }
            std::fs::write(member_dir.join("zoo.cfg"), config).expect("write zoo.cfg");
            members.push(Member {
                id,
                client_port: *client_port,
                dir: member_dir,
                process: Mutex::new(None),
            });
        }
        let zk = Self { members, dir, java };
        for i in 0..size {
            zk.launch(i);
        }
        for i in 0..size {
            zk.wait_serving(i).await;
        }
        zk
    }

    /// Spawns member `i`.
    fn launch(&self, i: usize) {
        let member = &self.members[i];
        let classpath = format!("{SERVER_JAR}:{LOG_JAR}");
        let args = [
            "-Xmx256m".to_owned(),
            "-XX:+UseSerialGC".to_owned(),
            "-XX:TieredStopAtLevel=1".to_owned(),
            "-Dzookeeper.jmx.log4j.disable=true".to_owned(),
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn".to_owned(),
            "-cp".to_owned(),
            classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain".to_owned(),
            member.dir.join("zoo.cfg").display().to_string(),
        ];
        let log = member.dir.join("zookeeper.log");
        let process = ServerProcess::spawn_guarded(&self.java, &args, &log).expect("spawn java");
        *member
            .process
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(process);
    }

    /// Waits (at most 60 s) until member `i` serves clients: its `srvr` answer names its mode.
    async fn wait_serving(&self, i: usize) {
        let member = &self.members[i];
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.mode(i).await.is_some() {
                return;
            }
            let exited = member
                .process
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_mut()
                .and_then(ServerProcess::exited);
            if let Some(status) = exited {
                let log =
                    std::fs::read_to_string(member.dir.join("zookeeper.log")).unwrap_or_default();
                panic!(
                    "ZooKeeper server {} exited with {status}:\n{log}",
                    member.id
                );
            }
            assert!(
                Instant::now() < deadline,
                "ZooKeeper server {} did not serve on 127.0.0.1:{} within 60 s",
                member.id,
                member.client_port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends the four-letter word `word` to member `i` and answers its reply, if it answers.
    pub async fn four_letter_word(&self, i: usize, word: &str) -> Option<String> {
        let port = self.members[i].client_port;
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()?;
            stream.write_all(word.as_bytes()).await.ok()?;
            let mut reply = String::new();
            stream.read_to_string(&mut reply).await.ok()?;
            Some(reply)
        };
        tokio::time::timeout(Duration::from_secs(2), exchange)
            .await
            .ok()
            .flatten()
    }

    /// Member `i`'s mode while it serves clients: `standalone`, `leader` or `follower`.
    pub async fn mode(&self, i: usize) -> Option<String> {
        let reply = self.four_letter_word(i, "srvr").await?;
        reply
            .lines()
            .find_map(|line| line.strip_prefix("Mode: "))
            .map(|mode| mode.trim().to_owned())
    }

    /// The index of the member leading the ensemble, waiting (at most 30 s) for one.
    ///
    /// # Panics
    /// When no member leads within 30 s.
    pub async fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for i in 0..self.members.len() {
                if matches!(self.mode(i).await.as_deref(), Some("leader" | "standalone")) {
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no ZooKeeper member leads");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many members there are.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Member `i`'s client port on 127.0.0.1.
    pub fn port(&self, i: usize) -> u16 {
        self.members[i].client_port
    }

    /// The connect string of every member: `127.0.0.1:<port>,…`.
    pub fn connect_string(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The PID of member `i` while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i]
            .process
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(ServerProcess::pid)
    }

    /// Kills member `i` (SIGKILL: a crash), keeping its data, and waits (at most 10 s) until
    /// its port closes.
    pub async fn kill(&self, i: usize) {
        let Some(process) = ServerProcess::take(&self.members[i].process) else {
            return;
        };
        process.signal_group("KILL");
        drop(process);
        let deadline = Instant::now() + Duration::from_secs(10);
        while crate::wait_for_port(self.members[i].client_port, Duration::ZERO).await
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts member `i` again on its data (killing it first if it runs), and waits until it
    /// serves.
    ///
    /// # Panics
    /// When it does not serve within 60 s.
    pub async fn restart(&self, i: usize) {
        self.kill(i).await;
        self.launch(i);
        self.wait_serving(i).await;
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        for member in &self.members {
            drop(ServerProcess::take(&member.process));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Deletes `path` and everything under it, as an operator's `zkCli.sh deleteall` does: every
/// znode listed depth first, children first; a znode already gone is fine. Contenders create
/// znodes under it meanwhile (their queue znodes, the guard), which makes a deletion fail: it
/// starts over, ten times at most.
///
/// # Errors
/// When ZooKeeper refuses a listing or a deletion, or the tree kept filling up.
#[cfg(feature = "zookeeper")]
#[cfg_attr(docsrs, doc(cfg(feature = "zookeeper")))]
pub async fn delete_all(client: &zookeeper_client::Client, path: &str) -> Result<(), String> {
    use zookeeper_client::Error;
    let mut last = String::new();
    for _ in 0..10 {
        let mut stack = vec![path.to_owned()];
        let mut order = Vec::new();
        while let Some(node) = stack.pop() {
            match client.list_children(&node).await {
                Ok(children) => stack.extend(children.into_iter().map(|c| format!("{node}/{c}"))),
                Err(Error::NoNode) => continue,
                Err(e) => return Err(format!("zookeeper: list {node}: {e}")),
            }
            order.push(node);
        }
        let mut again = false;
        for node in order.iter().rev() {
            match client.delete(node, None).await {
                Ok(()) | Err(Error::NoNode) => {}
                Err(Error::NotEmpty) => {
                    last = format!("{node} got new children while it was deleted");
                    again = true;
                    break;
                }
                Err(e) => return Err(format!("zookeeper: delete {node}: {e}")),
            }
        }
        if !again {
            return Ok(());
        }
    }
    Err(format!(
        "zookeeper: deleteall {path}: {last}, ten times over"
    ))
}
