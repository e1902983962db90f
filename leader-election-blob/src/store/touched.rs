//! A lease record touched by someone other than its holder (rule 9): broken, deleted, or
//! overwritten. Azure lets an operator break a lease at once (Break Lease with a zero period),
//! and then delete the blob or rewrite its metadata; the holder still trusts its lease until
//! its next renewal fails. So nobody may acquire within one lease of the moment the service
//! last showed the lease held by someone else, unless that holder released it.
//!
//! The blob itself carries that knowledge, so that a follower that wakes up as a new process
//! still honours it: the first contender that sees a touched record writes a [`Marker`] into
//! the blob's metadata (conditionally on the ETag it read): the service time (`Date`) of the
//! response that showed it, and the longest lease known. Every contender withholds the lease
//! until a response's `Date` is past `at + lease + 1` (`Date` is rounded down to the second):
//! service time compared with service time only, never with the local clock. The next
//! acquisition rewrites the metadata and so clears the marker.
//!
//! What counts as touched, for a blob whose lease is not held:
//! - its lease state is `broken` (only Break Lease leads there; this crate never breaks);
//! - it holds no readable token while this store remembers seeing its lease held (the blob was
//!   deleted and created again, or its metadata overwritten, since);
//! - it is missing while this store remembers seeing its lease held: it is created with the
//!   marker at once.
//!
//! A lease that `expired`, or was released (`available` with the holder's token still there),
//! is free at once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use azure_storage_blob::models::BlobClientSetMetadataOptions;
use leader_election::{Operation, Result};

use super::snapshot::Snapshot;
use super::{BlobLeaseStore, MAX_LEASE_SECS, lock, out_of_time};
use crate::clock::Budget;

/// Metadata name of the service time (Unix seconds) at which the touch was first seen.
pub(crate) const META_TOUCHED_AT: &str = "leader_touched_at";
/// Metadata name of the lease (seconds) that may still have been trusted then.
pub(crate) const META_TOUCHED_LEASE: &str = "leader_touched_lease";

/// A touch of the lease record, as recorded in the blob's metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    /// The service's `Date`, in Unix seconds, of the response that first showed the touch.
    pub(crate) at: u64,
    /// The longest lease, in seconds, its holder may have trusted.
    pub(crate) lease: u64,
}

impl Marker {
    /// The marker in `metadata` (keys in lower case). A time that does not parse is no marker
    /// (the record is then touched anew, and marked from now); a lease that does not parse is
    /// the longest Azure grants.
    pub(crate) fn read(metadata: &HashMap<String, String>) -> Option<Self> {
        let at = metadata.get(META_TOUCHED_AT)?.trim().parse().ok()?;
        let lease = metadata
            .get(META_TOUCHED_LEASE)
            .and_then(|raw| raw.trim().parse().ok())
            .unwrap_or(MAX_LEASE_SECS);
        Some(Self { at, lease })
    }

    /// Adds the marker to `metadata`.
    pub(crate) fn write(self, metadata: &mut HashMap<String, String>) {
        metadata.insert(META_TOUCHED_AT.to_owned(), self.at.to_string());
        metadata.insert(META_TOUCHED_LEASE.to_owned(), self.lease.to_string());
    }

    /// The first service second in which a lease may be granted, for a contender whose own
    /// lease lasts `own` seconds: past every lease trusted when the touch was seen.
    pub(crate) fn until(self, own: u64) -> u64 {
        self.at
            .saturating_add(self.lease.max(own))
            .saturating_add(1)
    }
}

/// A blob whose lease is not held, as read.
#[derive(Debug)]
pub(crate) struct Free {
    /// Its lease state is `broken`.
    pub(crate) broken: bool,
    /// It holds a readable token.
    pub(crate) has_token: bool,
    pub(crate) marker: Option<Marker>,
    /// The `Date` of the response, Unix seconds.
    pub(crate) date: Option<u64>,
}

/// What to do over a free blob.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Acquire.
    Proceed,
    /// Touched and not yet marked: mark it, then withhold.
    Mark,
    /// Marked: withhold for this long at most, then read again.
    Wait(Duration),
}

/// Decides over a free blob, for a contender whose lease lasts `own` seconds and whose store
/// `remembers_held` (saw the lease held, and not free and untouched since).
pub(crate) fn verdict(free: &Free, own: u64, remembers_held: bool) -> Verdict {
    if let Some(marker) = free.marker {
        let until = marker.until(own);
        return match free.date {
            Some(date) if date >= until => Verdict::Proceed,
            Some(date) => Verdict::Wait(Duration::from_secs(until - date)),
            // No service time to compare with: withhold, and read again.
            None => Verdict::Wait(Duration::from_secs(marker.lease.max(own) + 1)),
        };
    }
    if free.broken || (remembers_held && !free.has_token) {
        Verdict::Mark
    } else {
        Verdict::Proceed
    }
}

/// What an acquisition does over a blob whose lease is not held.
pub(super) enum Touch {
    /// Untouched, or touched more than a lease ago: acquire.
    Proceed,
    /// Touched less than a lease ago: withhold for this long at most.
    Withhold(Duration),
    /// The blob changed while the touch was being recorded.
    ReadAgain,
}

impl BlobLeaseStore {
    /// Notes a read that showed the lease held; if breaking, the first sighting of this break.
    pub(super) fn saw_held(&self, current: &Snapshot) {
        self.held_seen.store(true, Ordering::Release);
        let mut breaking = lock(&self.breaking);
        *breaking = match (current.breaking, &current.etag, current.date) {
            (true, Some(etag), Some(date)) => match breaking.take() {
                Some((seen, first)) if seen == *etag => Some((seen, first)),
                _ => Some((etag.clone(), date)),
            },
            _ => None,
        };
    }

    /// The longest lease known: the caller's, the one recorded on the blob, the longest seen.
    pub(super) fn longest(&self, own: i32, recorded: Option<u64>) -> u64 {
        u64::try_from(own)
            .unwrap_or(MAX_LEASE_SECS)
            .max(recorded.unwrap_or(0))
            .max(self.longest_seen.load(Ordering::Acquire))
    }

    /// The touch to record on a blob found missing: one if this store saw its lease held,
    /// dated by the response that showed it missing (the latest `Date` of this operation).
    pub(super) fn vanished(&self, budget: &Budget, own: i32) -> Option<Marker> {
        if !self.held_seen.load(Ordering::Acquire) {
            return None;
        }
        Some(Marker {
            at: budget.latest_date()?,
            lease: self.longest(own, None),
        })
    }

    /// Over a blob whose lease is not held: go on, or withhold it because its record was
    /// touched by someone other than its holder, recording the touch on the blob first if
    /// nobody has (see [the module](self)).
    pub(super) async fn touched(
        &self,
        budget: &Budget,
        current: &Snapshot,
        own: i32,
    ) -> Result<Touch> {
        let own_secs = u64::try_from(own).unwrap_or(MAX_LEASE_SECS);
        let free = Free {
            broken: current.broken,
            has_token: current.token.is_some(),
            marker: current.marker,
            date: current.date,
        };
        match verdict(&free, own_secs, self.held_seen.load(Ordering::Acquire)) {
            Verdict::Proceed => {
                self.held_seen.store(false, Ordering::Release);
                *lock(&self.breaking) = None;
                Ok(Touch::Proceed)
            }
            Verdict::Wait(wait) => Ok(Touch::Withhold(wait)),
            Verdict::Mark => {
                // Remembered, so that a deletion before the mark is written counts too.
                self.held_seen.store(true, Ordering::Release);
                let Some(now) = current.date else {
                    return Ok(Touch::Withhold(Duration::from_secs(own_secs + 1)));
                };
                // Broken after a break period this store saw begin: the holder could not renew
                // since then, so its lease ends within a lease of that first sighting. Same
                // blob version only: anybody who acquired and led since wrote the metadata.
                let at = match lock(&self.breaking).as_ref() {
                    Some((etag, first)) if current.etag.as_ref() == Some(etag) => now.min(*first),
                    _ => now,
                };
                let marker = Marker {
                    at,
                    lease: self.longest(own, current.lease_secs),
                };
                if !budget.room_for_write() {
                    return Err(out_of_time(budget, "the touched lease could be marked"));
                }
                let mut metadata = current.metadata.clone();
                marker.write(&mut metadata);
                let options = BlobClientSetMetadataOptions {
                    if_match: current.etag.clone(),
                    ..Default::default()
                };
                match self
                    .send(budget, self.blob.set_metadata(&metadata, Some(options)))
                    .await
                {
                    Ok(_) => {
                        let wait = Duration::from_secs(marker.until(own_secs).saturating_sub(now));
                        tracing::warn!(
                            election = %self.election_name,
                            broken = current.broken,
                            "the lease was broken, or its blob deleted or overwritten, by \
                             someone other than its holder; nobody is granted it for {wait:?}"
                        );
                        Ok(Touch::Withhold(wait))
                    }
                    // Changed meanwhile (marked, acquired or deleted by another): read again.
                    Err(f) if matches!(f.status(), Some(404 | 409 | 412)) => Ok(Touch::ReadAgain),
                    Err(f) => Err(f.into_error(Operation::Acquire, false)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(broken: bool, has_token: bool, marker: Option<Marker>, date: u64) -> Free {
        Free {
            broken,
            has_token,
            marker,
            date: Some(date),
        }
    }

    #[test]
    fn released_or_expired_leases_are_free_at_once() {
        assert_eq!(
            verdict(&free(false, true, None, 100), 15, true),
            Verdict::Proceed
        );
        // A brand-new blob, seen by a store that never saw it held (a new election).
        assert_eq!(
            verdict(&free(false, false, None, 100), 15, false),
            Verdict::Proceed
        );
    }

    #[test]
    fn broken_or_emptied_records_are_marked() {
        // Broken: whoever looks, even a brand-new process.
        assert_eq!(
            verdict(&free(true, true, None, 100), 15, false),
            Verdict::Mark
        );
        assert_eq!(
            verdict(&free(true, false, None, 100), 15, false),
            Verdict::Mark
        );
        // No token where this store saw the lease held: deleted and created again, or emptied.
        assert_eq!(
            verdict(&free(false, false, None, 100), 15, true),
            Verdict::Mark
        );
    }

    #[test]
    fn marked_records_are_withheld_for_the_longest_lease_on_the_service_clock() {
        let marker = Some(Marker { at: 100, lease: 15 });
        // Until Date shows at + lease + 1, whatever the state.
        assert_eq!(
            verdict(&free(true, false, marker, 100), 15, false),
            Verdict::Wait(Duration::from_secs(16))
        );
        assert_eq!(
            verdict(&free(false, true, marker, 115), 15, false),
            Verdict::Wait(Duration::from_secs(1))
        );
        assert_eq!(
            verdict(&free(true, false, marker, 116), 15, true),
            Verdict::Proceed
        );
        // A contender on a longer lease waits for its own.
        assert_eq!(
            verdict(&free(true, false, marker, 116), 30, false),
            Verdict::Wait(Duration::from_secs(15))
        );
        // No Date: withhold.
        let blind = Free {
            date: None,
            ..free(true, false, marker, 0)
        };
        assert_eq!(
            verdict(&blind, 15, false),
            Verdict::Wait(Duration::from_secs(16))
        );
    }

    #[test]
    fn markers_round_trip_and_garbage_fails_closed() {
        let mut metadata = HashMap::new();
        assert_eq!(Marker::read(&metadata), None);
        Marker { at: 7, lease: 20 }.write(&mut metadata);
        assert_eq!(Marker::read(&metadata), Some(Marker { at: 7, lease: 20 }));
        metadata.insert(META_TOUCHED_LEASE.to_owned(), "junk".to_owned());
        assert_eq!(
            Marker::read(&metadata),
            Some(Marker {
                at: 7,
                lease: MAX_LEASE_SECS
            })
        );
        metadata.insert(META_TOUCHED_AT.to_owned(), "junk".to_owned());
        assert_eq!(Marker::read(&metadata), None);
        assert_eq!(
            Marker {
                at: u64::MAX,
                lease: 15
            }
            .until(15),
            u64::MAX
        );
    }
}
