//! A `redis-server` started by the tester (`--spawn-redis`), so that the server itself can be
//! a fault: restarted (losing every key, as a server without persistence does) or paused.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

/// A local Redis server without persistence on 127.0.0.1; killed when dropped.
#[derive(Debug)]
pub(crate) struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    paused: bool,
}

impl RedisServer {
    /// Starts `redis-server` from `PATH` on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// When no `redis-server` can be started or it does not accept connections in time.
    pub(crate) async fn start() -> Result<Self, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let dir = std::env::temp_dir().join(format!(
            "leader-election-tester-redis-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
        let mut server = Self {
            port,
            dir,
            child: None,
            paused: false,
        };
        server.launch().await?;
        Ok(server)
    }

    /// The server's URL.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    async fn launch(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start redis-server from PATH ({e}); scripts/install-redis.sh installs it"
                )
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if Instant::now() >= deadline {
                return Err("redis-server did not accept connections within 10 s".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Kills the server (SIGKILL: every key is lost) and starts a new one on the same port.
    ///
    /// # Errors
    /// When the new server does not start.
    pub(crate) async fn restart(&mut self) -> Result<(), String> {
        self.kill().await;
        self.launch().await
    }

    /// Stops (`true`, SIGSTOP) or resumes (`false`, SIGCONT) the server process: connections
    /// stay open but nothing is answered, as with a frozen VM.
    pub(crate) async fn set_paused(&mut self, paused: bool) {
        let Some(pid) = self.pid() else {
            return;
        };
        let signal = if paused { "-STOP" } else { "-CONT" };
        let _ = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .await;
        self.paused = paused;
    }

    async fn kill(&mut self) {
        if self.paused {
            self.set_paused(false).await;
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Stops the server and removes its folder.
    pub(crate) async fn stop(mut self) {
        self.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
