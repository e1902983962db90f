//! A real PostgreSQL server per test: `initdb` into a temporary directory, `postgres` on a free
//! loopback port, stopped and removed on drop.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leader_election::{ElectionEvent, FencingToken, LeaderElection, LeaseStore};
use tokio::time::Instant;

/// Where PostgreSQL's programs are: `PG_BINDIR`, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin` (Debian), or `PATH`.
fn bindir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if dir.join("initdb").exists() {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// The uid and gid of the `postgres` user, when running as root (PostgreSQL refuses root).
fn postgres_user() -> Option<(u32, u32)> {
    let me = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres"))
            .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
            .flatten()
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A running PostgreSQL server.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    user: Option<(u32, u32)>,
    pub port: u16,
    child: Option<Child>,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    /// Starts a new server; panics with what to install when PostgreSQL is missing.
    pub fn start() -> Self {
        let bin = bindir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server programs (initdb, postgres) were not found: install the \
                 Debian package `postgresql` (./scripts/test.sh does) or set PG_BINDIR"
            )
        });
        let user = postgres_user();
        let dir = std::env::temp_dir().join(format!(
            "le-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the server's directory");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the directory");
        }
        let mut server = Self {
            bin,
            dir,
            user,
            port: free_port(),
            child: None,
        };
        let status = server
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(server.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        server.launch();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn launch(&mut self) {
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let give_up = std::time::Instant::now() + Duration::from_secs(30);
        let ready = self.bin.join("pg_isready");
        loop {
            let ok = Command::new(&ready)
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                std::time::Instant::now() < give_up,
                "postgres did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The connection string for this server.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// The connection string for this server as another role.
    pub fn url_as(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres",
            self.port
        )
    }

    /// Stops the server (fast shutdown), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// An admin connection, for what an operator would do by hand.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(connection);
        client
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A unique name for one test's election or table.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Leadership intervals of one contender, from its events, on one monotonic clock.
#[derive(Clone, Default)]
pub struct Intervals {
    changes: Arc<Mutex<Vec<(Instant, bool, FencingToken)>>>,
    pub errors: Arc<Mutex<usize>>,
}

impl Intervals {
    pub fn attach<S: LeaseStore>(election: &LeaderElection<S>) -> Self {
        let log = Self::default();
        let mut events = election.subscribe();
        let changes = log.changes.clone();
        let errors = log.errors.clone();
        tokio::spawn(async move {
            while let Ok(event) = events.recv().await {
                match event {
                    ElectionEvent::LeadershipChanged {
                        is_leader, token, ..
                    } => changes
                        .lock()
                        .unwrap()
                        .push((Instant::now(), is_leader, token)),
                    ElectionEvent::Error(_) => *errors.lock().unwrap() += 1,
                    _ => {}
                }
            }
        });
        log
    }

    /// `[start, end)` terms; one still going on ends now.
    pub fn terms(&self) -> Vec<(Instant, Instant, FencingToken)> {
        let mut out = Vec::new();
        let mut open = None;
        for (at, is_leader, token) in self.changes.lock().unwrap().iter().copied() {
            if is_leader {
                assert!(open.is_none(), "leader twice without a loss");
                open = Some((at, token));
            } else if let Some((start, t)) = open.take() {
                out.push((start, at, t));
            }
        }
        if let Some((start, t)) = open {
            out.push((start, Instant::now(), t));
        }
        out
    }
}

/// Panics if two contenders' terms overlap or tokens do not grow with time.
pub fn assert_safe(logs: &[Intervals]) -> usize {
    let mut all = Vec::new();
    for (who, log) in logs.iter().enumerate() {
        all.extend(log.terms().into_iter().map(|(s, e, t)| (s, e, t, who)));
    }
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert!(
                a.3 == b.3 || a.1 <= b.0 || b.1 <= a.0,
                "two leaders at once: {a:?} and {b:?}"
            );
        }
    }
    all.sort_by_key(|t| t.0);
    for pair in all.windows(2) {
        assert!(pair[0].2 < pair[1].2, "tokens went backwards: {pair:?}");
    }
    all.len()
}

/// Polls `check` every 10 ms until it holds, for at most `limit`.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let give_up = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
