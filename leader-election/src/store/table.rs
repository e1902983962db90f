//! Helpers for stores that keep an election in the rows of a table (PostgreSQL, MySQL): fencing
//! tokens, record versions and candidates' priorities in signed 64-bit columns (`BIGINT`), ttls
//! in microseconds, the election's record data in a nullable bytes column.

use std::time::Duration;

use crate::error::{Error, Operation, Result};
use crate::priority::Candidate;
use crate::token::FencingToken;

/// A ttl in whole microseconds, rounded up (the server never keeps a lease for less than
/// asked), and the largest `i64` for a ttl longer than that.
#[must_use]
pub fn micros(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_nanos().div_ceil(1000)).unwrap_or(i64::MAX)
}

/// A fencing token as a signed 64-bit column stores it: the largest `i64` for a greater token.
#[must_use]
pub fn stored_token(token: FencingToken) -> i64 {
    i64::try_from(token.get()).unwrap_or(i64::MAX)
}

/// The fencing token a signed 64-bit column holds.
///
/// # Errors
/// [`Error::InvalidData`] for a negative number, which no store writes.
pub fn token_from_stored(operation: Operation, raw: i64) -> Result<FencingToken> {
    u64::try_from(raw)
        .map(FencingToken::new)
        .map_err(|_| Error::invalid_data(operation, format!("negative token {raw}")))
}

/// The data of the election's record row, read from its nullable bytes column (`metadata`).
///
/// # Errors
/// [`Error::InvalidData`] for SQL `NULL`: a record this library writes always has data.
pub fn record_data(operation: Operation, data: Option<Vec<u8>>) -> Result<Vec<u8>> {
    data.ok_or_else(|| {
        Error::invalid_data(
            operation,
            "the election's record row has no data (metadata is NULL): not written by this library",
        )
    })
}

/// The candidate of the election's candidate row: its instance id, and its priority as a
/// signed 64-bit column stores it.
///
/// # Errors
/// [`Error::InvalidData`] for a priority that is not a `u32`, which no store writes.
pub fn candidate(operation: Operation, instance_id: String, priority: i64) -> Result<Candidate> {
    let priority = u32::try_from(priority).map_err(|_| {
        Error::invalid_data(
            operation,
            format!("the candidate row holds priority {priority}"),
        )
    })?;
    Ok(Candidate::new(instance_id, priority))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_microseconds() {
        for (ttl, us) in [
            (Duration::from_millis(1500), 1_500_000),
            (Duration::from_nanos(1), 1),
            (Duration::from_nanos(2_000_001), 2001),
            (Duration::MAX, i64::MAX),
        ] {
            assert_eq!(micros(ttl), us, "{ttl:?}");
        }
    }

    #[test]
    fn stored_numbers_round_trip_and_others_are_refused() {
        let token = FencingToken::new(42);
        assert_eq!(
            token_from_stored(Operation::Acquire, stored_token(token)).unwrap(),
            token
        );
        assert_eq!(stored_token(FencingToken::new(u64::MAX)), i64::MAX);
        assert!(token_from_stored(Operation::Acquire, -1).is_err());
        let op = Operation::StrongestCandidate;
        assert_eq!(
            candidate(op, "a".to_owned(), 7).unwrap(),
            Candidate::new("a", 7)
        );
        assert!(candidate(op, "a".to_owned(), -1).is_err());
        assert!(candidate(op, "a".to_owned(), i64::from(u32::MAX) + 1).is_err());
        assert!(record_data(Operation::ReadRecord, None).is_err());
        assert_eq!(
            record_data(Operation::ReadRecord, Some(b"x".to_vec())).unwrap(),
            b"x"
        );
    }
}
