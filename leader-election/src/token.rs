//! Fencing tokens.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A number minted with every acquisition of leadership, strictly greater than every token
/// minted before it for the same election.
///
/// Pass it along with every write that the leader makes to a downstream system; the downstream
/// system remembers the highest token it has seen and rejects writes that carry a smaller one.
/// That stops a leader that was paused (GC, swap, a frozen VM) and lost its lease without knowing
/// from overwriting the work of its successor (see Martin Kleppmann, "How to do distributed
/// locking").
///
/// ```
/// use leader_election::FencingToken;
///
/// let older = FencingToken::new(7);
/// let newer = FencingToken::new(8);
/// assert!(newer > older);
/// assert_eq!(newer.to_string(), "8");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FencingToken(u64);

impl FencingToken {
    /// Wraps a raw token value, as read back from a backend or a downstream store.
    #[must_use]
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// The raw value, for storing next to downstream writes.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<FencingToken> for u64 {
    fn from(token: FencingToken) -> Self {
        token.0
    }
}

impl From<u64> for FencingToken {
    fn from(value: u64) -> Self {
        Self(value)
    }
}
