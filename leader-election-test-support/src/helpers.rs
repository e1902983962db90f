//! Small helpers shared by every fixture and test.

use std::collections::BTreeSet;
use std::future::Future;
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

/// What [`eventually`] waited for, in its panic message: a `&str`, a `String`, or a
/// [`lazy`] description computed only on failure (to show the state at that moment).
pub trait Describe {
    /// The description.
    fn describe(&self) -> String;
}

impl Describe for &str {
    fn describe(&self) -> String {
        (*self).to_owned()
    }
}

impl Describe for String {
    fn describe(&self) -> String {
        self.clone()
    }
}

/// A description computed when [`eventually`] gives up; see [`lazy`].
#[derive(Debug)]
pub struct Lazy<F>(F);

impl<F: Fn() -> String> Describe for Lazy<F> {
    fn describe(&self) -> String {
        (self.0)()
    }
}

/// A description for [`eventually`] computed only if it gives up.
pub fn lazy<F: Fn() -> String>(describe: F) -> Lazy<F> {
    Lazy(describe)
}

/// Waits until `check` holds, polling every 10 ms; panics naming `what` after `within`.
///
/// # Panics
/// When `check` still does not hold after `within`.
pub async fn eventually(within: Duration, what: impl Describe, mut check: impl FnMut() -> bool) {
    eventually_async(within, what, || std::future::ready(check())).await;
}

/// [`eventually`] with an async check.
///
/// # Panics
/// When `check` still does not hold after `within`.
pub async fn eventually_async<F, Fut>(within: Duration, what: impl Describe, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some(within, what, || {
        let done = check();
        async move { done.await.then_some(()) }
    })
    .await;
}

/// [`eventually`] with an async check that gives a value once it holds: polls every 10 ms
/// until `check` returns `Some`, and returns its value. The one polling loop of the crate.
///
/// # Panics
/// When `check` still gives `None` after `within`.
pub async fn eventually_some<T, F, Fut>(within: Duration, what: impl Describe, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {}",
            what.describe()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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

/// A name for an Azure blob container of its own: [`unique_name`], lower-case, `_` as `-`, at
/// most 63 characters.
pub fn unique_container(test: &str) -> String {
    let mut name = unique_name(&format!("le-{test}"))
        .to_lowercase()
        .replace('_', "-");
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    if name.len() > 63 {
        name = name.split_off(name.len() - 63);
        name = name.trim_start_matches('-').to_owned();
    }
    name
}

/// A name for an SQL table or election of its own: [`unique_name`] with `_` for `-`.
pub fn unique_table(prefix: &str) -> String {
    unique_name(prefix).replace('-', "_")
}

/// A temporary folder of its own for one server, created empty.
pub(crate) fn temp_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(&format!("leader-election-{kind}")));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary folder");
    dir
}

/// The workspace's root folder (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate folder has a parent")
        .to_path_buf()
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

/// Waits until something accepts TCP connections on 127.0.0.1:`port`, or `within` passes.
pub(crate) async fn wait_for_port(port: u16, within: Duration) -> bool {
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
