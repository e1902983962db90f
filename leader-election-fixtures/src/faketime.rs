//! A server's wall clock that a test steps: the server runs under libfaketime (Debian's
//! `libfaketime`, which `scripts/install-faketime.sh` installs), which re-reads its offset from
//! a file on every clock call. Its monotonic clock is left alone (`DONT_FAKE_MONOTONIC=1`), as
//! an NTP step or a VM restore leaves it.

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
