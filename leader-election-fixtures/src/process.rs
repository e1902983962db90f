//! A server started from a local binary, in a process group of its own, stopped by PID: the
//! building block of every fixture here, public for fixtures of other servers.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::helpers::wait_for_port;

/// A running server process. Dropping it kills its whole process group (SIGKILL ends a
/// SIGSTOPped process too) and reaps it.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// Spawns `command` as the leader of a new process group.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(mut command: Command) -> std::io::Result<Self> {
        command.process_group(0);
        Ok(Self {
            child: command.spawn()?,
        })
    }

    /// Spawns `program` with `args` behind a small shell in the same process group, which
    /// stops it when this test process goes away without dropping us (the shell's stdin, a
    /// pipe from us, closes) or on SIGTERM; its output goes to the file `log`.
    ///
    /// # Errors
    /// When `log` cannot be created or the shell cannot be started.
    pub fn spawn_guarded<I, A>(program: &Path, args: I, log: &Path) -> std::io::Result<Self>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
    {
        Self::spawn_guarded_with_env(program, args, std::iter::empty::<(&str, &str)>(), log)
    }

    /// [`spawn_guarded`](Self::spawn_guarded) with `env` added to the program's environment
    /// (the guarding shell's too).
    ///
    /// # Errors
    /// When `log` cannot be created or the shell cannot be started.
    pub fn spawn_guarded_with_env<I, A, E, K, V>(
        program: &Path,
        args: I,
        env: E,
        log: &Path,
    ) -> std::io::Result<Self>
    where
        I: IntoIterator<Item = A>,
        A: AsRef<OsStr>,
        E: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let log = std::fs::File::create(log)?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(
                // The shell runs a trap only between commands, and `wait` is one it breaks
                // out of: so the guard reads stdin in the background (from a copy of stdin,
                // since a background command's own stdin is /dev/null) and the shell waits.
                r#"exec 3<&0
                "$0" "$@" & child=$!
                trap 'kill $child 2>/dev/null; exit 0' TERM INT
                cat <&3 >/dev/null & guard=$!
                wait $guard
                kill $child 2>/dev/null
                wait $child"#,
            )
            .arg(program)
            .args(args)
            .envs(env)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log);
        Self::spawn(command)
    }

    /// Waits up to 60 s for the server in `slot` to accept connections on `port` of
    /// 127.0.0.1.
    ///
    /// # Panics
    /// When the process exits first (showing its `log`), or when 60 s pass; `name` names the
    /// server in the message.
    pub async fn wait_until_listening(
        slot: &Mutex<Option<Self>>,
        port: u16,
        log: &Path,
        name: &str,
    ) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !wait_for_port(port, Duration::from_millis(200)).await {
            let status = slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_mut()
                .and_then(Self::exited);
            if let Some(status) = status {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                panic!("{name} exited with {status} before accepting connections:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not accept connections on 127.0.0.1:{port} within 60 s"
            );
        }
    }

    /// Stops the server in `slot`, if any (SIGTERM, then SIGKILL after 10 s), then waits up
    /// to 10 s for `port` to close: a server may outlive the shell in front of it briefly.
    pub async fn stop_listening(slot: &Mutex<Option<Self>>, port: u16) {
        let Some(process) = Self::take(slot) else {
            return;
        };
        process.stop_with("TERM", Duration::from_secs(10)).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while wait_for_port(port, Duration::ZERO).await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Takes the process out of `slot` (also from a poisoned lock, for `Drop`); dropping it
    /// kills it.
    pub fn take(slot: &Mutex<Option<Self>>) -> Option<Self> {
        slot.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The process id (also the id of its process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (such as `STOP`) to the process itself.
    pub fn signal(&self, signal: &str) -> bool {
        send(signal, &self.pid().to_string())
    }

    /// Sends `signal` to the whole process group.
    pub fn signal_group(&self, signal: &str) -> bool {
        send(signal, &format!("-{}", self.pid()))
    }

    /// The exit status, if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` to the process, waits up to `within` for it to end, then kills the group.
    pub async fn stop_with(mut self, signal: &str, within: Duration) {
        self.signal(signal);
        let deadline = Instant::now() + within;
        while self.exited().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Drop kills what is left of the group and reaps the process.
    }
}

fn send(signal: &str, target: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{signal}"), "--", target])
        .status()
        .is_ok_and(|s| s.success())
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.signal_group("KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
