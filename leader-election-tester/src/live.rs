//! Live output on stderr: one line per event and per fault, and a progress indicator (a status
//! line redrawn in place on a terminal, a progress line every few seconds otherwise).

use std::io::{IsTerminal, Write};

/// Writes live output.
#[derive(Debug)]
pub(crate) struct Live {
    quiet: bool,
    tty: bool,
    status_shown: bool,
    last_progress_ms: f64,
}

/// How often a progress line is printed when stderr is not a terminal.
const PROGRESS_EVERY_MS: f64 = 5000.0;

impl Live {
    /// Live output, silenced by `quiet`.
    pub(crate) fn new(quiet: bool) -> Self {
        Self {
            quiet,
            tty: std::io::stderr().is_terminal(),
            status_shown: false,
            last_progress_ms: 0.0,
        }
    }

    /// Prints one event line stamped with its run time.
    pub(crate) fn line(&mut self, at_ms: f64, text: &str) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.status_shown {
            let _ = write!(err, "\r\x1b[2K");
            self.status_shown = false;
        }
        let _ = writeln!(err, "[{:>8.3}s] {text}", at_ms / 1000.0);
    }

    /// Updates the progress indicator.
    pub(crate) fn progress(&mut self, at_ms: f64, total_ms: f64, summary: &str) {
        if self.quiet {
            return;
        }
        let done = (at_ms / total_ms).clamp(0.0, 1.0);
        if self.tty {
            let width = 20;
            let filled = (done * f64::from(width)).round() as usize;
            let bar: String = "#".repeat(filled) + &"-".repeat(width as usize - filled);
            let mut err = std::io::stderr().lock();
            let _ = write!(
                err,
                "\r\x1b[2K[{bar}] {:>5.1}s / {:.0}s  {summary}",
                at_ms / 1000.0,
                total_ms / 1000.0
            );
            let _ = err.flush();
            self.status_shown = true;
        } else if at_ms - self.last_progress_ms >= PROGRESS_EVERY_MS {
            self.last_progress_ms = at_ms;
            self.line(
                at_ms,
                &format!("progress {:>3.0}%  {summary}", done * 100.0),
            );
        }
    }

    /// Clears the status line before the final output.
    pub(crate) fn finish(&mut self) {
        if self.status_shown {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
            self.status_shown = false;
        }
    }
}
