//! Small helpers shared by the fixtures: ports, names, folders, programs.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A port of 127.0.0.1 that was free when this was called (bound, then released), for a
/// server the caller starts next.
///
/// It comes from outside the kernel's ephemeral range (`ip_local_port_range`), so that no
/// outgoing connection of this machine can take it before the server binds it (a port the
/// kernel hands out for `bind(0)` is in that range: a parallel test's client connection took
/// one from an etcd member that was about to listen on it). No port is handed out twice by one
/// process.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let (low, high) = ephemeral_range();
    // Below the ephemeral range when there is room (Linux: 32768–60999), else above it.
    let (first, last) = if low > 11_000 {
        (10_000, low - 1)
    } else {
        (high.saturating_add(1).max(10_000), u16::MAX)
    };
    let span = u32::from(last - first) + 1;
    let mut handed = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..span.min(2_000) {
        let offset = seed.wrapping_add(attempt.wrapping_mul(7_919)) % span;
        let port = first + u16::try_from(offset).unwrap_or(0);
        if handed.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed.insert(port);
            return port;
        }
    }
    // Everything tried was taken: let the kernel choose.
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// The kernel's range for ephemeral ports (Linux's default when it cannot be read).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(str::parse::<u16>);
            Some((parts.next()?.ok()?, parts.next()?.ok()?))
        })
        .filter(|(low, high)| low <= high)
        .unwrap_or((32_768, 60_999))
}

/// A port of 127.0.0.1 on which nothing listens (at least right after this call).
pub fn closed_port() -> u16 {
    free_port()
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A name no other test of this run uses: `prefix`, the process id, a counter and a few random
/// bits, joined by `-`. Usable for election keys, Azure containers (lower-case letters, digits
/// and `-`; pass a lower-case prefix without `_`) and, after `.replace('-', "_")`, SQL tables.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{:04x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos & 0xffff
    )
}

/// A temporary folder of its own for one server, created empty.
///
/// # Panics
/// When the folder cannot be created.
pub fn temp_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(&format!("leader-election-{kind}")));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    dir
}

/// The folder of locally installed tools (`moto/`, `s3rver/`: see [`S3Emulator`] and
/// [`S3rver`]): the environment variable `LEADER_ELECTION_TOOLS` when set; else the first
/// `.tools` folder in the current directory or one of its parents; else `.tools` next to the
/// folder of this crate's sources (a workspace the crate was built in).
///
/// [`S3Emulator`]: crate::S3Emulator
/// [`S3rver`]: crate::S3rver
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LEADER_ELECTION_TOOLS") {
        return PathBuf::from(dir);
    }
    let found = std::env::current_dir().ok().and_then(|cwd| {
        cwd.ancestors()
            .map(|dir| dir.join(".tools"))
            .find(|tools| tools.is_dir())
    });
    found.unwrap_or_else(|| {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        manifest.parent().unwrap_or(&manifest).join(".tools")
    })
}

/// Whether `program --version` runs and succeeds.
pub fn program_available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a Docker daemon answers (`docker info` succeeds).
pub fn docker_available() -> bool {
    Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, or `within` passes;
/// whether something does.
pub async fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
