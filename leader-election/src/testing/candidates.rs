//! The conformance check of the candidate record behind preferred leaders.

use std::time::Duration;

use tokio::time::Instant;

use crate::priority::Candidate;
use crate::store::LeaseStore;
use crate::testing::conformance::ConformanceOptions;

/// Checks the candidate record of [preferred leaders](crate::priority): nothing is recorded at
/// first; an announcement is recorded; a higher or equal priority replaces it, a lower one does
/// not while it lasts, the same contender may change its own; and the record expires `ttl`
/// after it was last written (not before, allowing only millisecond rounding), after which any
/// announcement is recorded again.
///
/// A store that does not declare
/// [`candidates`](crate::store::Capabilities::candidates) must refuse an announcement with an
/// error that is not retryable, and report no candidate.
pub async fn candidates_are_announced_and_expire<S: LeaseStore>(store: S, o: &ConformanceOptions) {
    let check = "candidates_are_announced_and_expire";
    store.connect().await.expect("connect");
    if !store.capabilities().candidates {
        let refused = store
            .announce_candidate(&Candidate::new("conformance-a", 1), o.ttl)
            .await;
        assert!(
            matches!(&refused, Err(e) if !e.is_retryable()),
            "[{check}] the store declares no candidates but answered {refused:?}"
        );
        assert_eq!(
            store.strongest_candidate().await.ok().flatten(),
            None,
            "[{check}] the store declares no candidates but reports one"
        );
        return;
    }
    let strongest = || async {
        store
            .strongest_candidate()
            .await
            .unwrap_or_else(|e| panic!("[{check}] strongest_candidate: {e}"))
    };
    let announce = |candidate: Candidate| {
        let store = &store;
        async move {
            store
                .announce_candidate(&candidate, o.ttl)
                .await
                .unwrap_or_else(|e| panic!("[{check}] announce_candidate: {e}"));
        }
    };
    assert_eq!(
        strongest().await,
        None,
        "[{check}] a new election has a candidate"
    );
    // Each step: an announcement, then the record expected after it.
    let steps = [
        (
            ("candidate-a", 1),
            ("candidate-a", 1),
            "the first announcement was not recorded",
        ),
        (
            ("candidate-b", 2),
            ("candidate-b", 2),
            "a higher priority did not replace the record",
        ),
        (
            ("candidate-c", 1),
            ("candidate-b", 2),
            "a lower priority replaced an unexpired record",
        ),
        (
            ("candidate-c", 2),
            ("candidate-c", 2),
            "an equal priority did not replace the record",
        ),
        (
            ("candidate-c", 1),
            ("candidate-c", 1),
            "a contender could not lower its own priority",
        ),
    ];
    for ((id, priority), (want_id, want_priority), failure) in steps {
        announce(Candidate::new(id, priority)).await;
        assert_eq!(
            strongest().await,
            Some(Candidate::new(want_id, want_priority)),
            "[{check}] {failure}"
        );
    }

    let sent = Instant::now();
    announce(Candidate::new("candidate-d", 7)).await;
    let give_up = sent + o.ttl + o.slack;
    loop {
        let seen = strongest().await;
        let at = Instant::now();
        match seen {
            Some(candidate) => {
                assert_eq!(
                    candidate,
                    Candidate::new("candidate-d", 7),
                    "[{check}] the record changed by itself"
                );
                assert!(
                    at < give_up,
                    "[{check}] the record did not expire within {:?} of its ttl {:?}",
                    o.slack,
                    o.ttl
                );
            }
            None => {
                assert!(
                    at + Duration::from_millis(1) >= sent + o.ttl,
                    "[{check}] the record expired {:?} after it was written, before its ttl {:?}",
                    at - sent,
                    o.ttl
                );
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    announce(Candidate::new("candidate-e", 0)).await;
    assert_eq!(
        strongest().await,
        Some(Candidate::new("candidate-e", 0)),
        "[{check}] an announcement after expiry was not recorded"
    );
}
