//! A server's wall clock that a test steps: the server runs under libfaketime (Debian's
//! `libfaketime`, which `scripts/install-faketime.sh` installs), which re-reads its offset from
//! a file on every clock call. Its monotonic clock is left alone (`DONT_FAKE_MONOTONIC=1`), as
//! an NTP step or a VM restore leaves it.
//!
//! Where libfaketime cannot be preloaded (Debian's `redis-server`: its jemalloc reads the clock
//! while it starts, before libfaketime is set up, and the two recurse into each other), a
//! [`SteppedClock::shimmed`] clock preloads the fixtures' own small library instead
//! ([`shim_library`]), which reads the same offset file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::helpers::temp_dir;

/// The libfaketime library to preload: `$LIBFAKETIME`, else where Debian installs it.
///
/// # Errors
/// Where it is not found: what to install.
pub fn library() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("LIBFAKETIME") {
        return Ok(PathBuf::from(path));
    }
    let found = ["/usr/lib", "/usr/local/lib", "/usr/lib64"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("faketime/libfaketime.so.1"))
        .chain([
            PathBuf::from("/usr/lib/faketime/libfaketime.so.1"),
            PathBuf::from("/usr/local/lib/faketime/libfaketime.so.1"),
        ])
        .find(|path| path.is_file());
    found.ok_or_else(|| {
        "libfaketime is missing (on Debian or Ubuntu: apt-get install libfaketime, or \
         scripts/install-faketime.sh; or set LIBFAKETIME to its path)"
            .to_owned()
    })
}

/// The fixtures' own preload library (`shim/clock.rs`): it moves `clock_gettime`'s wall clocks,
/// `gettimeofday` and `time` by the seconds in the offset file, re-read on every call, through
/// raw system calls, allocating nothing; monotonic clocks pass through. Compiled with `rustc`
/// (`$RUSTC`, else `rustc` on the `PATH`) on first use, into the system's temporary folder
/// under a name that hashes its source. Linux on x86-64 or AArch64 only.
///
/// # Errors
/// Another system, or `rustc` missing or failing (with its output).
pub fn shim_library() -> Result<PathBuf, String> {
    use std::hash::{Hash as _, Hasher as _};
    const SOURCE: &str = include_str!("../shim/clock.rs");
    if !cfg!(all(
        target_os = "linux",
        any(target_arch = "x86_64", target_arch = "aarch64")
    )) {
        return Err("the clock shim is for Linux on x86-64 or AArch64".to_owned());
    }
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(path) = built.as_ref().filter(|p| p.is_file()) {
        return Ok(path.clone());
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    SOURCE.hash(&mut hasher);
    let dir = std::env::temp_dir();
    let path = dir.join(format!(
        "leader-election-clock-shim-{:016x}.so",
        hasher.finish()
    ));
    if !path.is_file() {
        let source = dir.join(format!(
            "leader-election-clock-shim-{}.rs",
            std::process::id()
        ));
        let partial = source.with_extension("so");
        std::fs::write(&source, SOURCE)
            .map_err(|e| format!("cannot write {}: {e}", source.display()))?;
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = std::process::Command::new(&rustc)
            .args([
                "--edition",
                "2024",
                "--crate-type",
                "cdylib",
                "-C",
                "panic=abort",
            ])
            .args(["-C", "opt-level=2", "-o"])
            .arg(&partial)
            .arg(&source)
            .output();
        let _ = std::fs::remove_file(&source);
        let out = out.map_err(|e| format!("cannot run {}: {e}", rustc.to_string_lossy()))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&partial);
            return Err(format!(
                "rustc could not compile the clock shim ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // Renamed whole: another process never preloads half a library.
        std::fs::rename(&partial, &path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    *built = Some(path.clone());
    Ok(path)
}

/// A wall clock for a server process, stepped by [`step`](Self::step); its folder is removed
/// when dropped.
#[derive(Debug)]
pub struct SteppedClock {
    library: PathBuf,
    dir: PathBuf,
}

impl SteppedClock {
    /// A clock at the real time (offset 0).
    ///
    /// # Errors
    /// When libfaketime is missing, or the offset file cannot be written.
    pub fn new() -> Result<Self, String> {
        Self::with_library(&library()?)
    }

    /// A clock at the real time (offset 0) through the fixtures' own preload library
    /// ([`shim_library`]), for programs libfaketime cannot be preloaded into.
    ///
    /// # Errors
    /// When the library cannot be compiled, or the offset file cannot be written.
    pub fn shimmed() -> Result<Self, String> {
        Self::with_library(&shim_library()?)
    }

    /// A clock at the real time (offset 0), preloading `library`.
    ///
    /// # Errors
    /// When the offset file cannot be written.
    pub fn with_library(library: &Path) -> Result<Self, String> {
        let clock = Self {
            library: library.to_owned(),
            dir: temp_dir("clock"),
        };
        clock.step(0)?;
        Ok(clock)
    }

    /// A clock for a test, or `None` where libfaketime is missing, after printing why (the
    /// test then passes without running). With `CLOCK_FAULT_TESTS=required` (the test command
    /// sets it as root, having installed libfaketime) that is a panic instead.
    ///
    /// # Panics
    /// When the clock cannot be made and clock faults are required.
    #[must_use]
    pub fn for_test() -> Option<Self> {
        match Self::new() {
            Ok(clock) => Some(clock),
            Err(why) if std::env::var("CLOCK_FAULT_TESTS").as_deref() == Ok("required") => {
                panic!("CLOCK_FAULT_TESTS=required, and no stepped clock can be made: {why}")
            }
            Err(why) => {
                eprintln!("skipped: {why}");
                None
            }
        }
    }

    /// The file libfaketime reads the offset from (removed with the clock).
    #[must_use]
    pub fn file(&self) -> PathBuf {
        self.dir.join("offset")
    }

    /// Sets the clock `seconds` away from the real time (negative: behind). A process under
    /// the clock sees it at its next clock call.
    ///
    /// # Errors
    /// When the offset file cannot be written.
    pub fn step(&self, seconds: i64) -> Result<(), String> {
        let file = self.file();
        // Written whole, then renamed: a reader never sees half a line.
        let next = self.dir.join("offset.next");
        std::fs::write(&next, format!("{seconds:+}\n"))
            .and_then(|()| std::fs::rename(&next, &file))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        // The server may run as another user (PostgreSQL as `postgres`): readable by all.
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755));
        let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644));
        Ok(())
    }

    /// The environment that runs a process under this clock.
    #[must_use]
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("LD_PRELOAD", self.library.clone().into_os_string()),
            ("FAKETIME_TIMESTAMP_FILE", self.file().into_os_string()),
            ("FAKETIME_NO_CACHE", "1".into()),
            ("DONT_FAKE_MONOTONIC", "1".into()),
        ]
    }
}

impl Drop for SteppedClock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
