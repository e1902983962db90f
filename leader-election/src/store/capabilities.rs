//! [`Capabilities`]: what a store can do beyond the required operations, declared by the store
//! and checked by the conformance suite, so that a missing capability is never a silent default.

/// The optional capabilities of a [`LeaseStore`](crate::LeaseStore), returned by
/// [`LeaseStore::capabilities`](crate::LeaseStore::capabilities).
///
/// The core relies on what a store declares: it refuses to build an election with a
/// [`priority`](crate::LeaderElectionOptions::priority) on a store without
/// [`candidates`](Self::candidates), and metadata longer than
/// [`max_metadata_len`](Self::max_metadata_len). The conformance suite in
/// [`testing`](https://docs.rs/leader-election/latest/leader_election/testing/index.html) checks that the store does what it declares, and nothing it
/// does not: a declared release notice must wake a waiting follower, an undeclared one must not
/// be offered.
///
/// ```
/// use leader_election::store::Capabilities;
///
/// let caps = Capabilities::none().with_release_notifications().with_metadata(4096);
/// assert!(caps.release_notifications);
/// assert!(!caps.candidates);
/// assert_eq!(caps.max_metadata_len, 4096);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`LeaseStore::release_notifications`](crate::LeaseStore::release_notifications) returns
    /// a receiver that wakes when a lease of the election is released, so that followers take
    /// over at once instead of at expiry.
    pub release_notifications: bool,
    /// [`LeaseStore::announce_candidate`](crate::LeaseStore::announce_candidate) and
    /// [`strongest_candidate`](crate::LeaseStore::strongest_candidate) record and read
    /// candidates: the store supports [preferred leaders](crate::priority).
    pub candidates: bool,
    /// The longest leader metadata the store publishes with a lease, in bytes; 0 when it
    /// publishes none.
    pub max_metadata_len: usize,
    /// The longest [election record](crate::store::Record) the store keeps, in bytes; 0 when it
    /// keeps none ([`LeaseStore::read_record`](crate::LeaseStore::read_record) and
    /// [`write_record`](crate::LeaseStore::write_record) then fail). Scheduled jobs need it.
    pub max_record_len: usize,
    /// A release may hand the lease straight over to a follower whose acquisition was answered
    /// [`Held`](crate::store::AcquireOutcome::Held) during the term (it claimed the
    /// succession), instead of leaving it free: that follower's next acquisition gets it, with
    /// a greater token, and nobody else until it is released or expires. A follower that
    /// stops asking without its store being dropped may then leave the election without a
    /// leader for up to a lease, as a crashed leader does.
    pub hands_over: bool,
}

impl Capabilities {
    /// No optional capability: no release notices, no candidates, no metadata.
    #[must_use]
    pub const fn none() -> Self {
        Self {
            release_notifications: false,
            candidates: false,
            max_metadata_len: 0,
            max_record_len: 0,
            hands_over: false,
        }
    }

    /// The same, with release notifications.
    #[must_use]
    pub const fn with_release_notifications(mut self) -> Self {
        self.release_notifications = true;
        self
    }

    /// The same, with candidates (preferred leaders).
    #[must_use]
    pub const fn with_candidates(mut self) -> Self {
        self.candidates = true;
        self
    }

    /// The same, publishing metadata up to `max_len` bytes.
    #[must_use]
    pub const fn with_metadata(mut self, max_len: usize) -> Self {
        self.max_metadata_len = max_len;
        self
    }

    /// The same, with releases that may hand the lease over to a follower (see
    /// [`hands_over`](Self::hands_over)).
    #[must_use]
    pub const fn with_handover(mut self) -> Self {
        self.hands_over = true;
        self
    }

    /// The same, keeping election records up to `max_len` bytes.
    #[must_use]
    pub const fn with_records(mut self, max_len: usize) -> Self {
        self.max_record_len = max_len;
        self
    }
}
