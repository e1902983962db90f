//! A `redis-server` started by the tester (`--spawn-redis`), so that the server itself can be
//! a fault: restarted (losing every key, as a server without persistence does) or paused. The
//! workspace's one Redis fixture,
//! [`RedisServer`](leader_election_test_support::RedisServer), with the tester's error type.

use leader_election_test_support::{RedisOptions, RedisServer as Server};

/// A local Redis server without persistence on 127.0.0.1; killed (by PID) when dropped.
#[derive(Debug)]
pub(crate) struct RedisServer(Server);

impl RedisServer {
    /// Starts `redis-server` from `PATH` on a free port of 127.0.0.1.
    ///
    /// # Errors
    /// When no `redis-server` can be started or it does not accept connections in time.
    pub(crate) async fn start() -> Result<Self, String> {
        Server::try_start(RedisOptions::default()).await.map(Self)
    }

    /// The server's URL.
    pub(crate) fn url(&self) -> String {
        self.0.url()
    }

    /// The server's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.0.pid()
    }

    /// Kills the server (SIGKILL: every key is lost) and starts a new one on the same port.
    ///
    /// # Errors
    /// When the new server does not start.
    pub(crate) async fn restart(&mut self) -> Result<(), String> {
        self.0.try_restart().await
    }

    /// Stops (`true`, SIGSTOP) or resumes (`false`, SIGCONT) the server process: connections
    /// stay open but nothing is answered, as with a frozen VM.
    pub(crate) async fn set_paused(&mut self, paused: bool) {
        if paused {
            self.0.pause().await;
        } else {
            self.0.resume().await;
        }
    }

    /// Stops the server and removes its folder.
    pub(crate) async fn stop(self) {
        self.0.kill().await;
    }
}
