//! A real MariaDB server for one test binary: `mariadb-install-db` into a temporary folder,
//! `mariadbd` on a free port of 127.0.0.1 (as root with `--user=root`), stopped by PID and
//! removed on drop, with the database [`MariaDb::DATABASE`] created. Debian's `mariadb-server`
//! package (installed by the workspace's `scripts/install-mariadb.sh`) brings the programs.
//! What an operator does by hand goes through the `mariadb` command-line client
//! ([`MariaDb::sql`]).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::helpers::{free_port, temp_dir};
use crate::process::ServerProcess;

/// Where a MariaDB program is: `/usr/sbin`, `/usr/bin`, or on `PATH`.
fn program(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|dir| dir.join(name))
                .find(|p| p.exists())
        })
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn missing_programs() -> String {
    "MariaDB's programs (mariadb-install-db, mariadbd, mariadb) were not found: run \
     scripts/install-mariadb.sh, or `apt-get install mariadb-server`"
        .to_owned()
}

/// A running MariaDB server: user `root` without a password from 127.0.0.1, the database
/// [`DATABASE`](Self::DATABASE); stopped (its process group killed by PID) and its folder
/// removed when dropped.
#[derive(Debug)]
pub struct MariaDb {
    port: u16,
    dir: PathBuf,
    server: PathBuf,
    client: PathBuf,
    /// `--user=root` when running as root (mariadbd refuses root otherwise).
    as_root: bool,
    /// Environment for `mariadbd` (a stepped wall clock).
    env: Vec<(&'static str, std::ffi::OsString)>,
    /// Server settings beyond the common ones (TLS).
    settings: Vec<String>,
    process: Mutex<Option<ServerProcess>>,
}

impl MariaDb {
    /// The database the fixture creates, for the tests' tables.
    pub const DATABASE: &'static str = "elections";

    /// Initializes and starts a new server.
    ///
    /// # Panics
    /// When MariaDB's programs are missing (saying how to install them), or the server does
    /// not accept connections within 60 s.
    pub async fn start() -> Self {
        Self::start_with(Vec::new(), |_| Vec::new()).await
    }

    /// Initializes and starts a new server that accepts TCP connections over TLS only
    /// (`require_secure_transport`), with a server certificate for `127.0.0.1` and `localhost`
    /// signed by a fresh CA (feature `tls`; [`TestCertificates`](crate::TestCertificates)).
    /// [`sql`](Self::sql) goes through the Unix socket, which the server trusts.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub async fn start_tls(certs: &crate::TestCertificates) -> Self {
        let certs = certs.clone();
        Self::start_with(Vec::new(), move |dir| {
            let write = |name: &str, pem: &str| {
                let path = dir.join(name);
                std::fs::write(&path, pem).expect("write a certificate");
                path
            };
            vec![
                format!("--ssl-ca={}", write("ca.pem", &certs.ca_pem).display()),
                format!(
                    "--ssl-cert={}",
                    write("server.pem", &certs.server_cert_pem).display()
                ),
                format!(
                    "--ssl-key={}",
                    write("server.key", &certs.server_key_pem).display()
                ),
                "--require-secure-transport=ON".to_owned(),
            ]
        })
        .await
    }

    /// Initializes and starts a new server whose wall clock is `clock` (libfaketime):
    /// `UTC_TIMESTAMP()` follows its steps.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    #[cfg(unix)]
    pub async fn start_with_clock(clock: &crate::faketime::SteppedClock) -> Self {
        Self::start_with(clock.env(), |_| Vec::new()).await
    }

    /// Starts a server with `env`, and the settings `settings` makes in its folder.
    async fn start_with(
        env: Vec<(&'static str, std::ffi::OsString)>,
        settings: impl FnOnce(&Path) -> Vec<String>,
    ) -> Self {
        let (Some(install), Some(server), Some(client)) = (
            program("mariadb-install-db"),
            program("mariadbd"),
            program("mariadb"),
        ) else {
            panic!("{}", missing_programs());
        };
        let dir = temp_dir("mariadb");
        let as_root = running_as_root();
        let mut command = Command::new(install);
        command
            .arg("--no-defaults")
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .stdin(Stdio::null());
        if as_root {
            command.arg("--user=root");
        }
        // Two bootstraps at once in one process sometimes fail ("Installation of system tables
        // failed"): one at a time, and once more if it fails anyway.
        static INSTALLING: Mutex<()> = Mutex::new(());
        let out = {
            let _one = INSTALLING
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let first = command.output().expect("run mariadb-install-db");
            if first.status.success() {
                first
            } else {
                let _ = std::fs::remove_dir_all(dir.join("data"));
                command.output().expect("run mariadb-install-db")
            }
        };
        assert!(
            out.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let settings = settings(&dir);
        let db = Self {
            port: free_port(),
            dir,
            server,
            client,
            as_root,
            env,
            settings,
            process: Mutex::new(None),
        };
        db.launch().await;
        db.client(
            &format!("CREATE DATABASE IF NOT EXISTS {}", Self::DATABASE),
            None,
        );
        db
    }

    /// Spawns `mariadbd` on `self.port` and waits until it accepts connections.
    async fn launch(&self) {
        let mut args = vec![
            "--no-defaults".to_owned(),
            format!("--datadir={}", self.dir.join("data").display()),
            format!("--port={}", self.port),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--socket={}", self.dir.join("mysqld.sock").display()),
            format!("--pid-file={}", self.dir.join("mysqld.pid").display()),
            "--skip-log-bin".to_owned(),
            "--skip-name-resolve".to_owned(),
            // Every commit on disk before it is answered (the default, and what a lease needs:
            // an acquisition lost in a crash would hand the lease out twice).
            "--innodb-flush-log-at-trx-commit=1".to_owned(),
            "--innodb-buffer-pool-size=32M".to_owned(),
            "--max-connections=300".to_owned(),
        ];
        if self.as_root {
            args.push("--user=root".to_owned());
        }
        args.extend(self.settings.iter().cloned());
        let log = self.dir.join("mariadbd.log");
        let process = ServerProcess::spawn_guarded_with_env(
            &self.server,
            &args,
            self.env.iter().map(|(k, v)| (k, v)),
            &log,
        )
        .expect("spawn mariadbd");
        *self.process.lock().unwrap() = Some(process);
        ServerProcess::wait_until_listening(&self.process, self.port, &log, "mariadbd").await;
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `root` and [`DATABASE`](Self::DATABASE).
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/{}", self.port, Self::DATABASE)
    }

    /// A URL for `user` with `password` and [`DATABASE`](Self::DATABASE).
    pub fn url_as(&self, user: &str, password: &str) -> String {
        format!(
            "mysql://{user}:{password}@127.0.0.1:{}/{}",
            self.port,
            Self::DATABASE
        )
    }

    /// Runs `sql` (one or more statements) as `root` in [`DATABASE`](Self::DATABASE) with the
    /// `mariadb` client, through the server's Unix socket, and answers its output: one line per row, columns separated by tabs,
    /// no header.
    ///
    /// # Panics
    /// When the client fails (showing the server's message).
    pub fn sql(&self, sql: &str) -> String {
        self.client(sql, Some(Self::DATABASE))
    }

    /// Runs `sql` with the `mariadb` client as `root`, in `database` if given.
    fn client(&self, sql: &str, database: Option<&str>) -> String {
        let mut command = Command::new(&self.client);
        command
            .args(["--no-defaults", "-u", "root", "-N", "-B"])
            .arg(format!(
                "--socket={}",
                self.dir.join("mysqld.sock").display()
            ));
        if let Some(database) = database {
            command.arg(format!("--database={database}"));
        }
        let out = command
            .arg("-e")
            .arg(sql)
            .output()
            .expect("run the mariadb client");
        assert!(
            out.status.success(),
            "`{sql}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The PID of the server while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process
            .lock()
            .unwrap()
            .as_ref()
            .map(ServerProcess::pid)
    }

    /// Stops the server (SIGTERM: a clean shutdown), keeping its data.
    pub async fn stop(&self) {
        ServerProcess::stop_listening(&self.process, self.port).await;
    }

    /// Kills the server (SIGKILL: a crash), keeping its data.
    pub async fn kill(&self) {
        let Some(process) = ServerProcess::take(&self.process) else {
            return;
        };
        // The whole group at once: the guarding shell and the server.
        process.signal_group("KILL");
        drop(process);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while crate::wait_for_port(self.port, Duration::ZERO).await
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts the server again on the same port and data (stopping it first if it runs).
    ///
    /// # Panics
    /// When it does not start again.
    pub async fn restart(&self) {
        self.stop().await;
        self.launch().await;
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        drop(ServerProcess::take(&self.process));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
