//! An S3-compatible server that **ignores conditional writes**: s3rver (from the npm registry,
//! installed by the workspace's `scripts/install-s3rver.sh` into `<tools>/s3rver`, where
//! `<tools>` is [`tools_dir`]), on a free port of 127.0.0.1 with its data in a temporary
//! folder. s3rver 3.7 accepts `If-None-Match: *` on
//! an existing key and a stale `If-Match` alike, as some older MinIO, Ceph and gateway
//! versions did: the S3 backend's tests check that such a store is refused.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::helpers::{free_port, temp_dir, tools_dir};
use crate::process::ServerProcess;

/// The access key s3rver accepts (its built-in account).
pub const ACCESS_KEY: &str = "S3RVER";
/// The secret key going with [`ACCESS_KEY`] (s3rver's built-in test value).
pub const SECRET_KEY: &str = "S3RVER";

/// A running s3rver; stopped (its process group killed by PID) when dropped.
#[derive(Debug)]
pub struct S3rver {
    port: u16,
    location: PathBuf,
    local: Mutex<Option<ServerProcess>>,
}

/// Where the `s3rver` script is, if installed.
fn s3rver_bin() -> Option<PathBuf> {
    let bin = tools_dir().join("s3rver/node_modules/.bin/s3rver");
    bin.exists().then_some(bin)
}

impl S3rver {
    /// Starts a fresh, empty s3rver.
    ///
    /// # Panics
    /// When s3rver is not installed (saying how to install it), or when it does not accept
    /// connections within 60 s.
    pub async fn start() -> Self {
        let bin = s3rver_bin().unwrap_or_else(|| {
            panic!(
                "s3rver was not found in {}: run scripts/install-s3rver.sh (needs npm)",
                tools_dir().join("s3rver").display()
            )
        });
        let server = Self {
            port: free_port(),
            location: temp_dir("s3rver"),
            local: Mutex::new(None),
        };
        let port = server.port.to_string();
        let data = server.location.join("data");
        std::fs::create_dir_all(&data).expect("create the s3rver data folder");
        let args = [
            "-d".as_ref(),
            data.as_os_str(),
            "-a".as_ref(),
            "127.0.0.1".as_ref(),
            "-p".as_ref(),
            port.as_ref(),
            "--silent".as_ref(),
            "--no-vhost-buckets".as_ref(),
        ];
        let log = server.location.join("s3rver.log");
        let process = ServerProcess::spawn_guarded(&bin, args, &log).expect("spawn s3rver");
        *server.local.lock().unwrap() = Some(process);
        ServerProcess::wait_until_listening(&server.local, server.port, &log, "s3rver").await;
        server
    }

    /// Its endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for S3rver {
    fn drop(&mut self) {
        drop(ServerProcess::take(&self.local));
        let _ = std::fs::remove_dir_all(&self.location);
    }
}
