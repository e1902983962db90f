//! Clock faults (`--clock-faults`): every contender process runs under libfaketime (Debian's
//! `libfaketime`), which answers its clock reads.
//!
//! - `step`: each process's wall clock can be stepped, as NTP or a VM restore does, while its
//!   monotonic clock runs on untouched (`DONT_FAKE_MONOTONIC=1`). The `clock_step` fault steps
//!   the leader's wall clock by [`STEP_SECS`], forward and back in turn, through the file
//!   libfaketime reads its offset from, and steps it back after two leases. The library never
//!   reads the wall clock for a deadline: the leader keeps its term and nobody else leads.
//! - `rate`: each process's clocks, monotonic included, run at a rate of its own
//!   ([`rate_of`]: 0.4 % fast, 0.4 % slow, exact, in turn), so that two contenders' clocks
//!   differ by up to 0.8 %, within the library's default `clock_drift_rate` (1 %). Every other
//!   fault runs as asked on top.
//!
//! A process's records are mapped onto the run's clock through the monotonic clock both
//! processes read (see [`ChildClock::rate`] for how a faster clock is mapped back).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use leader_election_fixtures::faketime::SteppedClock;

/// How far a `clock_step` fault steps the leader's wall clock, in seconds.
pub(crate) const STEP_SECS: i64 = 30;

/// The clock rates of `--clock-faults rate`, by slot in turn.
const RATES: [f64; 3] = [1.004, 0.996, 1.0];

/// What `--clock-faults` does to the contenders' clocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ClockMode {
    /// Wall clocks that the `clock-step` fault steps by 30 s, monotonic clocks untouched.
    Step,
    /// Clocks (monotonic included) running 0.4 % fast or slow, or exact, by slot.
    Rate,
}

impl ClockMode {
    /// The lower-case name used in the report.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Step => "step",
            Self::Rate => "rate",
        }
    }
}

/// The rate of slot `slot`'s clocks under `--clock-faults rate`.
pub(crate) fn rate_of(slot: usize) -> f64 {
    RATES[slot % RATES.len()]
}

/// The libfaketime library to preload: `$LIBFAKETIME`, else where Debian installs it.
///
/// # Errors
/// Where it is not found: what to install.
pub(crate) fn libfaketime() -> Result<PathBuf, String> {
    leader_election_fixtures::faketime::library()
        .map_err(|why| format!("--clock-faults cannot run: {why}"))
}

/// How one contender's processes are started under libfaketime.
#[derive(Debug)]
pub(crate) struct ChildClock {
    library: PathBuf,
    /// The wall clock the `clock_step` fault steps (`step`); `None` with `rate`.
    stepped: Option<SteppedClock>,
    rate: f64,
}

impl ChildClock {
    /// The clock of slot `slot` in a run with `mode`, preloading `library`; its offset file
    /// goes in the system's temporary directory.
    ///
    /// # Errors
    /// When the offset file cannot be written.
    pub(crate) fn new(library: &Path, mode: ClockMode, slot: usize) -> Result<Self, String> {
        Ok(Self {
            library: library.to_owned(),
            stepped: match mode {
                ClockMode::Step => Some(SteppedClock::with_library(library)?),
                ClockMode::Rate => None,
            },
            rate: match mode {
                ClockMode::Step => 1.0,
                ClockMode::Rate => rate_of(slot),
            },
        })
    }

    /// The rate of the process's monotonic clock against the real one: a process reporting
    /// `d` ms since its origin means `d / rate` ms of the run.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// The environment that starts a process under libfaketime with this clock.
    pub(crate) fn env(&self) -> Vec<(&'static str, OsString)> {
        match &self.stepped {
            Some(stepped) => stepped.env(),
            None => vec![
                ("LD_PRELOAD", self.library.clone().into_os_string()),
                ("FAKETIME", format!("+0 x{}", self.rate).into()),
            ],
        }
    }

    /// Steps the process's wall clock to `secs` seconds off the real one (`step` only), and
    /// checks that it did: `date`, started with the same environment, must read the new time.
    ///
    /// # Errors
    /// When the clock does not step (`rate`), the offset file cannot be written, or a process
    /// under this clock does not read the offset: nothing can be said to be injected.
    pub(crate) fn set_offset(&self, secs: i64) -> Result<(), String> {
        let Some(stepped) = &self.stepped else {
            return if secs == 0 {
                Ok(())
            } else {
                Err("a clock step needs --clock-faults step".to_owned())
            };
        };
        stepped.step(secs)?;
        let read = self.probe()?;
        if (read - secs).abs() > 2 {
            return Err(format!(
                "libfaketime did not step the clock: a process under it reads {read:+} s off, \
                 not {secs:+} s"
            ));
        }
        Ok(())
    }

    /// How many seconds off the real wall clock a process started with this clock reads it.
    fn probe(&self) -> Result<i64, String> {
        let output = std::process::Command::new("date")
            .arg("+%s")
            .envs(self.env())
            .output()
            .map_err(|e| format!("cannot run date under libfaketime: {e}"))?;
        let faked: i64 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .map_err(|_| "date under libfaketime printed no time".to_owned())?;
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        Ok(faked - real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_read_by_a_process_under_libfaketime() {
        let Ok(library) = libfaketime() else {
            eprintln!("skipped: libfaketime is not installed");
            return;
        };
        let clock = ChildClock::new(&library, ClockMode::Step, 8).unwrap();
        clock.set_offset(STEP_SECS).unwrap();
        assert!((clock.probe().unwrap() - STEP_SECS).abs() <= 2);
        clock.set_offset(0).unwrap();
    }

    #[test]
    fn rates_stay_within_the_default_drift_of_each_other() {
        let rates: Vec<f64> = (0..6).map(rate_of).collect();
        let spread = rates.iter().copied().fold(f64::MIN, f64::max)
            - rates.iter().copied().fold(f64::MAX, f64::min);
        assert!(spread > 0.0 && spread < 0.01, "{rates:?}");
    }

    #[test]
    fn a_stepping_clock_writes_its_offset_and_cleans_up() {
        // Without libfaketime to read it, the step is written and found not to take.
        let clock = ChildClock::new(Path::new("/lib/none.so"), ClockMode::Step, 7).unwrap();
        let file = clock.stepped.as_ref().unwrap().file();
        let err = clock.set_offset(-STEP_SECS).unwrap_err();
        assert!(err.contains("did not step the clock"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "-30\n");
        clock.set_offset(0).unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "+0\n");
        let env = clock.env();
        assert!(env.contains(&("DONT_FAKE_MONOTONIC", "1".into())));
        drop(clock);
        assert!(!file.exists());
        let rate = ChildClock::new(Path::new("/lib/none.so"), ClockMode::Rate, 1).unwrap();
        assert_eq!(rate.rate(), 0.996);
        assert!(rate.set_offset(STEP_SECS).is_err());
        assert!(rate.env().contains(&("FAKETIME", "+0 x0.996".into())));
    }
}
