//! PgBouncer in transaction mode in front of a [`Postgres`] fixture: the
//! pooler many deployments put between applications and PostgreSQL.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use crate::postgres::{Postgres, postgres_user};
use crate::{ServerProcess, free_port, temp_dir, wait_for_port};

/// Where PgBouncer is: `PGBOUNCER` (a path), Debian's `/usr/sbin/pgbouncer`, or `PATH`.
fn program() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PGBOUNCER") {
        return Some(PathBuf::from(path));
    }
    let debian = PathBuf::from("/usr/sbin/pgbouncer");
    if debian.exists() {
        return Some(debian);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("pgbouncer"))
        .find(|p| p.exists())
}

/// A PgBouncer on a free port of 127.0.0.1 with `pool_mode = transaction`, in front of a
/// [`Postgres`] fixture's database `postgres`: `auth_type = trust` for the roles `postgres`
/// and `app`, at most 4 server connections per role (so that clients share them),
/// `ignore_startup_parameters = options` (PgBouncer refuses the startup parameter `options`
/// otherwise). Runs as the `postgres` user when running as root (PgBouncer refuses root);
/// stopped by PID and its folder removed on drop.
#[derive(Debug)]
pub struct PgBouncer {
    port: u16,
    dir: PathBuf,
    process: Mutex<Option<ServerProcess>>,
}

impl PgBouncer {
    /// Starts PgBouncer in front of `pg` and waits until it accepts connections.
    ///
    /// # Panics
    /// When PgBouncer is missing (saying what to install) or does not listen within 10 s.
    pub async fn start(pg: &Postgres) -> Self {
        let program = program().unwrap_or_else(|| {
            panic!(
                "PgBouncer was not found: install the Debian package `pgbouncer` \
                 (./scripts/install-pgbouncer.sh does) or set PGBOUNCER to its path"
            )
        });
        let user = postgres_user();
        let dir = temp_dir("pgbouncer");
        let port = free_port();
        let ini = format!(
            "[databases]\n\
             postgres = host=127.0.0.1 port={server} dbname=postgres\n\
             [pgbouncer]\n\
             listen_addr = 127.0.0.1\n\
             listen_port = {port}\n\
             unix_socket_dir =\n\
             auth_type = trust\n\
             auth_file = {dir}/userlist.txt\n\
             pool_mode = transaction\n\
             default_pool_size = 4\n\
             max_client_conn = 200\n\
             ignore_startup_parameters = options\n\
             logfile = {dir}/pgbouncer.log\n",
            server = pg.port(),
            dir = dir.display(),
        );
        std::fs::write(dir.join("pgbouncer.ini"), ini).expect("write pgbouncer.ini");
        std::fs::write(
            dir.join("userlist.txt"),
            "\"postgres\" \"\"\n\"app\" \"\"\n",
        )
        .expect("write userlist.txt");
        let mut command = Command::new(program);
        command
            .arg(dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = user {
            for path in [
                dir.clone(),
                dir.join("pgbouncer.ini"),
                dir.join("userlist.txt"),
            ] {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
            }
            command.uid(uid).gid(gid);
        }
        let process = ServerProcess::spawn(command).expect("start pgbouncer");
        let bouncer = Self {
            port,
            dir,
            process: Mutex::new(Some(process)),
        };
        assert!(
            wait_for_port(port, Duration::from_secs(10)).await,
            "pgbouncer did not listen on 127.0.0.1:{port} within 10 s; its log: {}",
            std::fs::read_to_string(bouncer.dir.join("pgbouncer.log")).unwrap_or_default()
        );
        bouncer
    }

    /// The pooler's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection string to the database `postgres` through the pooler, as `user`.
    pub fn url_as(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres",
            self.port
        )
    }

    /// [`url_as`](Self::url_as) the role `postgres`.
    pub fn url(&self) -> String {
        self.url_as("postgres")
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        drop(ServerProcess::take(&self.process));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
