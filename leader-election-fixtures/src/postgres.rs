//! A real PostgreSQL server for one test: `initdb` into a temporary folder, `postgres` on a
//! free port of 127.0.0.1 (as the `postgres` user when running as root: PostgreSQL refuses
//! root), stopped by PID and removed on drop; or, when PostgreSQL's programs are missing and
//! Docker works (feature `docker`), a `postgres:16-alpine` container on such a port. With
//! feature `tls`, a TLS-only server ([`Postgres::start_tls`]); with feature `postgres`, an admin
//! connection (tokio-postgres) for what an operator does by hand.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[cfg(feature = "tls")]
use crate::TestCertificates;
use crate::{ServerProcess, free_port, temp_dir};

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
pub(crate) fn postgres_user() -> Option<(u32, u32)> {
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

/// A running PostgreSQL server (user `postgres`, trust authentication, database `postgres`):
/// a local one stopped by PID and removed on drop, or (feature `docker`) a container.
#[derive(Debug)]
pub struct Postgres {
    port: u16,
    backend: Backend,
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    tls: Option<Certs>,
}

/// The certificates of a TLS server: there are none without feature `tls`.
#[cfg(feature = "tls")]
type Certs = TestCertificates;
#[cfg(not(feature = "tls"))]
type Certs = std::convert::Infallible;

#[derive(Debug)]
enum Backend {
    Local(Local),
    #[cfg(feature = "docker")]
    Container(Box<testcontainers::ContainerAsync<testcontainers::GenericImage>>),
}

/// A server run from local programs: its programs, folder (data and socket), user and process.
#[derive(Debug)]
struct Local {
    bin: PathBuf,
    dir: PathBuf,
    user: Option<(u32, u32)>,
    /// Server settings beyond the common ones (`-c name=value`), such as TLS.
    settings: Vec<String>,
    /// Environment for `postgres` (a stepped wall clock).
    env: Vec<(&'static str, std::ffi::OsString)>,
    process: Mutex<Option<ServerProcess>>,
}

impl Postgres {
    /// Initializes and starts a new server: from local programs when they are found, else
    /// (feature `docker`, when `docker info` succeeds) in a `postgres:16-alpine` container.
    ///
    /// # Panics
    /// When neither PostgreSQL's server programs nor (with feature `docker`) a Docker daemon
    /// are available (saying what to install), or the server does not start within 30 s
    /// (60 s for a container).
    pub async fn start() -> Self {
        match bindir() {
            Some(bin) => Self::start_local(bin).await,
            None => Self::start_container().await,
        }
    }

    /// Initializes and starts a new local server that accepts TCP connections over TLS only
    /// (feature `tls`): `ssl=on` with a server certificate for `127.0.0.1` and `localhost`
    /// signed by a fresh CA ([`TestCertificates`]), and a `pg_hba.conf` of `hostssl` lines
    /// (trust, except the role named like the client certificate's common name, which must
    /// present it: `cert`) and `hostnossl ... reject`, so a connection without TLS is refused.
    /// [`admin`](Self::admin) connects through the Unix socket.
    ///
    /// # Panics
    /// When PostgreSQL's server programs are missing (no container stands in: its
    /// configuration is local), or the server does not start within 30 s.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub async fn start_tls() -> Self {
        let bin = bindir().unwrap_or_else(|| panic!("{}", missing_programs()));
        let certs = TestCertificates::generate();
        Self::start_local_with(bin, Some(certs), Vec::new()).await
    }

    /// The certificates of a server from [`start_tls`](Self::start_tls): the CA to trust, and
    /// a client certificate.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(&self) -> Option<&TestCertificates> {
        self.tls.as_ref()
    }

    /// The role a client certificate of [`tls`](Self::tls) logs in as (its common name); the
    /// server accepts it only with that certificate.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub const CERT_ROLE: &'static str = "leader-election test client";

    /// The path of a file holding the CA of a [`start_tls`](Self::start_tls) server, for
    /// `sslrootcert`.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn ca_file(&self) -> Option<PathBuf> {
        match &self.backend {
            Backend::Local(local) if self.tls.is_some() => Some(local.dir.join("ca.crt")),
            _ => None,
        }
    }

    async fn start_local(bin: PathBuf) -> Self {
        Self::start_local_with(bin, None, Vec::new()).await
    }

    /// Initializes and starts a new local server whose wall clock is `clock` (libfaketime):
    /// `clock_timestamp()` and `now()` follow its steps, its monotonic clock does not.
    ///
    /// # Panics
    /// When PostgreSQL's server programs are missing (no container stands in), or the server
    /// does not start within 30 s.
    #[cfg(unix)]
    pub async fn start_with_clock(clock: &crate::faketime::SteppedClock) -> Self {
        let bin = bindir().unwrap_or_else(|| panic!("{}", missing_programs()));
        Self::start_local_with(bin, None, clock.env()).await
    }

    async fn start_local_with(
        bin: PathBuf,
        tls: Option<Certs>,
        env: Vec<(&'static str, std::ffi::OsString)>,
    ) -> Self {
        let user = postgres_user();
        let dir = temp_dir("pg");
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).expect("chown the folder");
        }
        #[cfg_attr(not(feature = "tls"), allow(unused_mut))]
        let mut local = Local {
            bin,
            dir,
            user,
            settings: Vec::new(),
            env: Vec::new(),
            process: Mutex::new(None),
        };
        let status = local
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
            .arg(local.data())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run initdb");
        assert!(status.success(), "initdb failed");
        #[cfg(feature = "tls")]
        if let Some(certs) = &tls {
            local.settings = local.tls_files(certs);
        }
        local.env = env;
        let server = Self {
            port: free_port(),
            backend: Backend::Local(local),
            tls,
        };
        server.launch().await;
        server
    }

    #[cfg(not(feature = "docker"))]
    async fn start_container() -> Self {
        panic!("{}", missing_programs())
    }

    /// Starts `postgres:16-alpine` (trust authentication, the local server's settings) with
    /// its port 5432 on a free port of 127.0.0.1. The image's entrypoint logs "database system
    /// is ready to accept connections" twice on a fresh start (its initialization server, then
    /// the real one): wait for the second, then for a startup handshake through the port.
    #[cfg(feature = "docker")]
    async fn start_container() -> Self {
        use testcontainers::core::wait::LogWaitStrategy;
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::AsyncRunner;
        use testcontainers::{GenericImage, ImageExt};
        assert!(crate::docker_available(), "{}", missing_programs());
        let port = free_port();
        let container = GenericImage::new("postgres", "16-alpine")
            .with_exposed_port(5432.tcp())
            .with_wait_for(WaitFor::log(
                LogWaitStrategy::stdout_or_stderr("database system is ready to accept connections")
                    .with_times(2),
            ))
            .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
            .with_mapped_port(port, 5432.tcp())
            .with_cmd(["postgres", "-c", "fsync=off", "-c", "max_connections=200"])
            .with_startup_timeout(Duration::from_secs(60))
            .start()
            .await
            .unwrap_or_else(|e| panic!("cannot start a PostgreSQL container: {e}"));
        let server = Self {
            port,
            backend: Backend::Container(Box::new(container)),
            tls: None,
        };
        server.wait_accepting().await;
        server
    }

    /// Spawns `postgres` on `self.port` and waits until `pg_isready` says yes.
    #[cfg_attr(not(feature = "docker"), allow(irrefutable_let_patterns))]
    async fn launch(&self) {
        let Backend::Local(local) = &self.backend else {
            unreachable!("a local server")
        };
        let mut command = local.command("postgres");
        command
            .arg("-D")
            .arg(local.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", local.dir.display()))
            .args(["-c", "fsync=off", "-c", "max_connections=200"])
            .args(local.settings.iter().flat_map(|s| ["-c", s.as_str()]))
            .envs(local.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process = ServerProcess::spawn(command).expect("start postgres");
        *local.process.lock().unwrap() = Some(process);
        self.wait_ready(local).await;
    }

    async fn wait_ready(&self, local: &Local) {
        let give_up = Instant::now() + Duration::from_secs(30);
        let ready = local.bin.join("pg_isready");
        loop {
            let ok = tokio::process::Command::new(&ready)
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .await
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            if let Some(status) = local
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

    /// Waits (at most 60 s) until the server completes a startup handshake as `postgres` on
    /// 127.0.0.1:`port`: no `pg_isready` without local programs, and Docker's port proxy
    /// accepts connections before the server inside listens.
    #[cfg(feature = "docker")]
    async fn wait_accepting(&self) {
        let give_up = Instant::now() + Duration::from_secs(60);
        while !accepts_startup(self.port).await {
            assert!(
                Instant::now() < give_up,
                "the PostgreSQL container did not accept connections on 127.0.0.1:{} within 60 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
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

    /// The PID of a local postmaster while it runs (`None` for a container).
    pub fn pid(&self) -> Option<u32> {
        match &self.backend {
            Backend::Local(local) => local
                .process
                .lock()
                .unwrap()
                .as_ref()
                .map(ServerProcess::pid),
            #[cfg(feature = "docker")]
            Backend::Container(_) => None,
        }
    }

    /// Stops the server (fast shutdown, SIGINT; for a container the image's stop signal,
    /// SIGINT, with SIGKILL after 30 s), keeping its data.
    pub async fn stop(&self) {
        match &self.backend {
            Backend::Local(local) => {
                let process = local.process.lock().unwrap().take();
                if let Some(process) = process {
                    process.stop_with("INT", Duration::from_secs(30)).await;
                }
            }
            #[cfg(feature = "docker")]
            Backend::Container(container) => {
                // Stopping a stopped container fails harmlessly.
                let _ = container.stop_with_timeout(Some(30)).await;
            }
        }
    }

    /// Starts the server again on the same port and data (stopping it first if it runs).
    ///
    /// # Panics
    /// When it does not start again.
    pub async fn restart(&self) {
        self.stop().await;
        match &self.backend {
            Backend::Local(_) => self.launch().await,
            #[cfg(feature = "docker")]
            Backend::Container(container) => {
                container
                    .start()
                    .await
                    .unwrap_or_else(|e| panic!("cannot restart the PostgreSQL container: {e}"));
                self.wait_accepting().await;
            }
        }
    }

    /// An admin connection (feature `postgres`), for what an operator would do by hand. A
    /// TLS-only server's admin connects through its Unix socket.
    ///
    /// # Panics
    /// When the server does not accept the connection.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn admin(&self) -> tokio_postgres::Client {
        // A TLS server refuses TCP without TLS: its admin uses the Unix socket.
        let url = match (&self.backend, &self.tls) {
            (Backend::Local(local), Some(_)) => format!(
                "host={} port={} user=postgres dbname=postgres",
                local.dir.display(),
                self.port
            ),
            _ => self.url(),
        };
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(connection);
        client
    }
}

impl Local {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Writes the certificates, the key (mode 0600, owned by the server's user, as PostgreSQL
    /// requires) and a TLS-only `pg_hba.conf` into the folder; returns the server settings
    /// that use them.
    #[cfg(feature = "tls")]
    fn tls_files(&self, certs: &TestCertificates) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let hba = format!(
            "local all all trust\n\
             hostssl all \"{role}\" 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 0.0.0.0/0 reject\n",
            role = Postgres::CERT_ROLE
        );
        let files = [
            ("server.crt", certs.server_cert_pem.as_str(), 0o644),
            ("server.key", certs.server_key_pem.as_str(), 0o600),
            ("ca.crt", certs.ca_pem.as_str(), 0o644),
            ("pg_hba.conf", hba.as_str(), 0o644),
        ];
        for (name, text, mode) in files {
            let path = self.dir.join(name);
            std::fs::write(&path, text).expect("write a TLS file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .expect("set a TLS file's mode");
            if let Some((uid, gid)) = self.user {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown a TLS file");
            }
        }
        let path = |name: &str| self.dir.join(name).display().to_string();
        vec![
            "ssl=on".to_owned(),
            format!("ssl_cert_file={}", path("server.crt")),
            format!("ssl_key_file={}", path("server.key")),
            format!("ssl_ca_file={}", path("ca.crt")),
            format!("hba_file={}", path("pg_hba.conf")),
        ]
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command
    }
}

impl Drop for Postgres {
    #[cfg_attr(not(feature = "docker"), allow(irrefutable_let_patterns))]
    fn drop(&mut self) {
        // A container is removed when its handle drops.
        if let Backend::Local(local) = &self.backend {
            drop(ServerProcess::take(&local.process));
            let _ = std::fs::remove_dir_all(&local.dir);
        }
    }
}

/// What to do when PostgreSQL's programs are missing and no container can stand in.
fn missing_programs() -> String {
    let docker = if cfg!(feature = "docker") {
        "start a Docker daemon (the tests then run PostgreSQL in a container)"
    } else {
        "build leader-election-fixtures with its `docker` feature and start a Docker daemon (the tests then \
         run PostgreSQL in a container)"
    };
    format!(
        "PostgreSQL's server programs (initdb, postgres) were not found: install the Debian \
         package `postgresql` (./scripts/test.sh does) or set PG_BINDIR, or {docker}"
    )
}

/// Whether a PostgreSQL server on 127.0.0.1:`port` completes a startup handshake as user
/// `postgres` (trust: AuthenticationOk) within a second. A server still starting answers with
/// an error, and Docker's proxy closes the connection while nothing listens behind it.
#[cfg(feature = "docker")]
async fn accepts_startup(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let mut body = 196_608_i32.to_be_bytes().to_vec(); // protocol 3.0
        body.extend_from_slice(b"user\0postgres\0database\0postgres\0\0");
        let mut startup = i32::try_from(body.len() + 4).ok()?.to_be_bytes().to_vec();
        startup.extend(body);
        stream.write_all(&startup).await.ok()?;
        let mut reply = [0u8; 9];
        stream.read_exact(&mut reply).await.ok()?;
        // 'R', length 8, code 0: AuthenticationOk. Then say goodbye (Terminate).
        let ok = reply == [b'R', 0, 0, 0, 8, 0, 0, 0, 0];
        let _ = stream.write_all(&[b'X', 0, 0, 0, 4]).await;
        ok.then_some(())
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The container path's readiness check, run against whatever server `start` gives (a
    /// local one here): a handshake while it runs, none once it is stopped.
    #[cfg(feature = "docker")]
    #[tokio::test]
    async fn startup_handshake_tells_a_running_server_from_a_stopped_one() {
        let pg = Postgres::start().await;
        assert!(accepts_startup(pg.port()).await);
        pg.stop().await;
        assert!(!accepts_startup(pg.port()).await);
        pg.restart().await;
        assert!(accepts_startup(pg.port()).await);
    }

    #[test]
    fn missing_programs_names_both_ways_out() {
        let message = missing_programs();
        assert!(message.contains("`postgresql`"), "{message}");
        assert!(message.contains("Docker daemon"), "{message}");
    }
}
