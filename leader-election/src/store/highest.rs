//! [`Highest`]: the greatest number a store has seen, the floor of the numbers it mints.

use std::fmt::Display;
use std::sync::{Mutex, PoisonError};

use super::{Record, RecordVersion};

/// The greatest number a store has seen (minted, or read from the backend): the floor of the
/// fencing tokens or record versions it mints next, so that a record deleted, or a backend whose
/// clock came back, still gives a greater one (design rule 10). One per store, shared by its
/// clones.
#[derive(Debug, Default)]
pub struct Highest<T>(Mutex<T>);

impl<T: Copy + Ord> Highest<T> {
    /// Starts from `start`, as if it had been seen.
    pub const fn new(start: T) -> Self {
        Self(Mutex::new(start))
    }

    /// The greatest number seen so far.
    pub fn get(&self) -> T {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes `value`: the greatest from now on if it is greater than every number seen.
    pub fn saw(&self, value: T) {
        let mut highest = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *highest = (*highest).max(value);
    }
}

impl<T: Copy + Ord + Display> Highest<T> {
    /// Notes a numeric record version read or written, and answers it as a
    /// [`RecordVersion`] (its decimal digits).
    pub fn version(&self, version: T) -> RecordVersion {
        self.saw(version);
        RecordVersion::new(version.to_string())
    }

    /// Notes a numeric record version read with `data`, and answers the [`Record`].
    pub fn record(&self, version: T, data: Vec<u8>) -> Record {
        Record::new(self.version(version), data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_greatest_number_seen() {
        let highest = Highest::<i64>::default();
        assert_eq!(highest.get(), 0);
        highest.saw(7);
        highest.saw(-3);
        highest.saw(5);
        assert_eq!(highest.get(), 7);
        assert_eq!(highest.version(9).as_str(), "9");
        assert_eq!(highest.get(), 9);
        let record = Highest::new(u64::MAX - 1).record(u64::MAX, b"x".to_vec());
        assert_eq!(record.version.as_str(), u64::MAX.to_string());
    }
}
