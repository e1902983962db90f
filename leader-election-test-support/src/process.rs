//! A server started from a local binary, in a process group of its own, stopped by PID.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A running server process. Dropping it kills its whole process group (SIGKILL ends a
/// SIGSTOPped process too) and reaps it.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    /// Spawns `command` as the leader of a new process group.
    pub(crate) fn spawn(mut command: Command) -> std::io::Result<Self> {
        command.process_group(0);
        Ok(Self {
            child: command.spawn()?,
        })
    }

    /// Takes the process out of `slot` (also from a poisoned lock, for `Drop`); dropping it
    /// kills it.
    pub(crate) fn take(slot: &Mutex<Option<Self>>) -> Option<Self> {
        slot.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The process id (also the id of its process group).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (such as `STOP`) to the process itself.
    pub(crate) fn signal(&self, signal: &str) -> bool {
        send(signal, &self.pid().to_string())
    }

    /// Sends `signal` to the whole process group.
    pub(crate) fn signal_group(&self, signal: &str) -> bool {
        send(signal, &format!("-{}", self.pid()))
    }

    /// The exit status, if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` to the process, waits up to `within` for it to end, then kills the group.
    pub(crate) async fn stop_with(mut self, signal: &str, within: Duration) {
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
