//! A real PostgreSQL server for one test: `initdb` into a temporary folder, `postgres` on a
//! free port of 127.0.0.1 (as the `postgres` user when running as root: PostgreSQL refuses
//! root), stopped by PID and removed on drop.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::helpers::{free_port, temp_dir};
use crate::process::ServerProcess;

/// Where PostgreSQL's programs are: `PG_BINDIR`, `pg_config --bindir`, the newest
/// `/usr/lib/postgresql/*/bin` (Debian), or the folder of `initdb` on `PATH`.
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
        .map(|dirs| {
            dirs.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().or_else(|| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path).find(|dir| dir.join("initdb").exists())
    })
}

/// The uid and gid of the `postgres` user, when running as root.
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

/// A running PostgreSQL server (user `postgres`, trust authentication, database `postgres`).
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    user: Option<(u32, u32)>,
    port: u16,
    process: Mutex<Option<ServerProcess>>,
}

impl Postgres {
    /// Initializes and starts a new server.
    ///
    /// # Panics
    /// When PostgreSQL's server programs are missing (saying what to install), or the server
    /// does not start within 30 s.
    pub async fn start() -> Self {
        let bin = bindir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server programs (initdb, postgres) were not found: install the \
                 Debian package `postgresql` (./scripts/test.sh does) or set PG_BINDIR"
            )
        });
        let user = postgres_user();
        let dir = temp_dir("pg");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the folder");
        }
        let server = Self {
            bin,
            dir,
            user,
            port: free_port(),
            process: Mutex::new(None),
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
        server.launch().await;
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

    async fn launch(&self) {
        let mut command = self.command("postgres");
        command
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process = ServerProcess::spawn(command).expect("start postgres");
        *self.process.lock().unwrap() = Some(process);
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let give_up = Instant::now() + Duration::from_secs(30);
        let ready = self.bin.join("pg_isready");
        loop {
            let ok = tokio::process::Command::new(&ready)
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .await
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            if let Some(status) = self
                .process
                .lock()
                .unwrap()
                .as_mut()
                .and_then(ServerProcess::exited)
            {
                panic!("postgres exited with {status} before accepting connections");
            }
            assert!(
                Instant::now() < give_up,
                "postgres did not start within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The connection string for this server (key-value form).
    pub fn url(&self) -> String {
        self.url_as("postgres")
    }

    /// The connection string for this server as another role.
    pub fn url_as(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres",
            self.port
        )
    }

    /// The PID of the postmaster while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process
            .lock()
            .unwrap()
            .as_ref()
            .map(ServerProcess::pid)
    }

    /// Stops the server (fast shutdown, SIGINT), keeping its data.
    pub async fn stop(&self) {
        let process = self.process.lock().unwrap().take();
        if let Some(process) = process {
            process.stop_with("INT", Duration::from_secs(30)).await;
        }
    }

    /// Starts the server again on the same port and data (stopping it first if it runs).
    pub async fn restart(&self) {
        self.stop().await;
        self.launch().await;
    }

    /// An admin connection (feature `postgres`), for what an operator would do by hand.
    ///
    /// # Panics
    /// When the server does not accept the connection.
    #[cfg(feature = "postgres")]
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
        drop(ServerProcess::take(&self.process));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The lease of [`election`]'s contenders.
#[cfg(feature = "postgres")]
pub const LEASE: Duration = Duration::from_secs(2);

/// A builder for contender `id` of `election` on the server at `url`, with the timings the
/// PostgreSQL tests share: a 2 s lease ([`LEASE`]) renewed every 500 ms, retries from 200 ms
/// up to 1 s, a 500 ms operation timeout.
#[cfg(feature = "postgres")]
pub fn builder(
    url: &str,
    election: &str,
    id: &str,
) -> leader_election_postgres::PostgresLeaderElectionBuilder {
    leader_election_postgres::PostgresLeaderElection::builder()
        .connection_string(url)
        .election(election)
        .instance_id(id)
        .lease_duration(LEASE)
        .renew_interval(Duration::from_millis(500))
        .retry_interval(Duration::from_millis(200))
        .max_retry_interval(Duration::from_secs(1))
        .operation_timeout(Duration::from_millis(500))
}

/// A contender `id` of `election` on `pg`, from [`builder`].
///
/// # Panics
/// When the builder rejects the configuration.
#[cfg(feature = "postgres")]
pub fn election(
    pg: &Postgres,
    election: &str,
    id: &str,
) -> leader_election::LeaderElection<leader_election_postgres::PostgresLeaseStore> {
    builder(&pg.url(), election, id)
        .build()
        .expect("valid configuration")
}
