//! The job's record on the backend: the latest occurrence claimed, and how it ended. Every
//! claim is a compare-and-set of this record, which is what makes each occurrence run at most
//! once (see the crate docs).

use serde::{Deserialize, Serialize};

use crate::job::Outcome;
use crate::schedule::Millis;

/// The format this version writes; a record of another format is refused, never overwritten.
pub(crate) const FORMAT: u32 = 1;

/// Whether the occurrence in the record is running or settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum State {
    /// Claimed by the term of `token`, not yet finished.
    Running,
    /// Finished, or given up (missed, interrupted).
    Done,
}

/// A job's record, as JSON in the election's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    /// [`FORMAT`].
    pub(crate) format: u32,
    /// The due time of the latest occurrence claimed or given up: no occurrence due at or
    /// before it is ever claimed again (but by an explicit retry of this very one).
    pub(crate) due: Millis,
    pub(crate) state: State,
    /// How it ended, once `Done`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) outcome: Option<Outcome>,
    /// The fencing token of the term that wrote the record.
    pub(crate) token: u64,
    /// The instance id of the node that wrote it.
    pub(crate) node: String,
    /// 1 for the first run of the occurrence, 2 for its retry.
    pub(crate) attempt: u32,
    /// A random number naming the claim, to recognise one's own write whose reply was lost.
    pub(crate) claim: u64,
    /// When it was written, by the writer's clock.
    pub(crate) at: Millis,
}

impl JobRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The record in `data`, or why it is not one this version can use.
    pub(crate) fn decode(data: &[u8]) -> Result<Self, String> {
        let record: Self = serde_json::from_slice(data).map_err(|e| {
            format!(
                "the job's record is not one this scheduler wrote ({e}): {:?}",
                String::from_utf8_lossy(&data[..data.len().min(200)])
            )
        })?;
        if record.format != FORMAT {
            return Err(format!(
                "the job's record has format {}, this scheduler reads format {FORMAT}",
                record.format
            ));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_foreign_data_is_refused() {
        let record = JobRecord {
            format: FORMAT,
            due: 42,
            state: State::Done,
            outcome: Some(Outcome::Failed {
                error: "boom \"quoted\"".into(),
            }),
            token: 7,
            node: "a".into(),
            attempt: 1,
            claim: 9,
            at: 43,
        };
        assert_eq!(JobRecord::decode(&record.encode()), Ok(record));
        assert!(JobRecord::decode(b"\xff\x00garbage").is_err());
        let other = br#"{"format":2,"due":1,"state":"done","token":1,"node":"a","attempt":1,"claim":1,"at":1}"#;
        let err = JobRecord::decode(other).unwrap_err();
        assert!(err.contains("format 2"), "{err}");
    }
}
