//! Percentiles of a set of samples, nearest-rank, in milliseconds.

use std::time::Duration;

/// `{count, p50, p99, max}` of samples, in milliseconds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stats {
    pub(crate) count: usize,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Stats {
    /// The statistics of `samples` (all zero when there are none).
    pub(crate) fn of(samples: &[Duration]) -> Self {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            if ms.is_empty() {
                return 0.0;
            }
            let i = ((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[i]
        };
        Self {
            count: ms.len(),
            p50: rank(0.50),
            p99: rank(0.99),
            max: ms.last().copied().unwrap_or(0.0),
        }
    }

    /// `p50 / p99 ms (max …, n=…)`.
    pub(crate) fn cell(&self) -> String {
        if self.count == 0 {
            return "-".to_owned();
        }
        format!(
            "{:.2} / {:.2} ms (max {:.2}, n={})",
            self.p50, self.p99, self.max, self.count
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Stats::of(&samples);
        assert_eq!((s.count, s.p50, s.p99, s.max), (100, 50.0, 99.0, 100.0));
        assert_eq!(Stats::of(&[]).count, 0);
    }
}
