//! Faults against a real Azurite: the service restarted, replies lost after the service acted
//! (recovered by acquiring again; a leader whose replies are lost steps down and never
//! overlaps).

use std::time::Duration;

use leader_election::store::{AcquireOutcome, LeaseRequest};
use leader_election::testing::{FaultControl, FaultyStore, TermRecorder};
use leader_election::{ElectionBuilder, LeaderElection, LeaseStore};
use leader_election_blob::azure::azure_core;
use leader_election_blob::{BlobLeaderElection, BlobLeaseStore};
use leader_election_test_support::{
    ErrorCount, eventually, lead_then_follow, stop_and_check, unique_container,
};
use tokio::time::Instant;

use leader_election_test_support::acquire;

mod common;
use common::{Azurite, AzuriteExt, Election, TTL, follows, log};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_restart_keeps_one_leader() {
    let azurite = Azurite::start().await;
    let container = unique_container("restart");
    let recorder = TermRecorder::new();
    let a = azurite.election(&container, "a");
    let b = azurite.election(&container, "b");
    recorder.attach(&a);
    recorder.attach(&b);
    lead_then_follow(&a, &b, Duration::from_secs(10)).await;

    let errors = ErrorCount::attach(&a);
    azurite.stop().await;
    // The outage itself: the server stays down until the leader's renewal has failed on it
    // (its next renewal, within a renew interval and an operation timeout), never two leaders.
    let renew = a.options().renew_interval + a.options().operation_timeout();
    eventually(
        renew + Duration::from_secs(2),
        "a's renewal fails while Azurite is down",
        || {
            assert!(!(a.is_leader() && b.is_leader()), "two leaders");
            errors.get() > 0
        },
    )
    .await;
    azurite.restart().await;
    let restarted = Instant::now();
    // Whoever leads now, somebody leads within a lease and a few retries of the restart (never
    // both), and then the other follows it.
    eventually(
        TTL + Duration::from_secs(5),
        "a leader after the restart",
        || {
            assert!(!(a.is_leader() && b.is_leader()), "two leaders");
            a.is_leader() || b.is_leader()
        },
    )
    .await;
    log(&format!(
        "leader again {:?} after restart",
        restarted.elapsed()
    ));
    let settled = |leader: &Election, follower: &Election| {
        leader.is_leader() && follows(follower, leader.instance_id())
    };
    eventually(
        Duration::from_secs(10),
        "one leader, followed by the other, after the restart",
        || {
            assert!(!(a.is_leader() && b.is_leader()), "two leaders");
            settled(&a, &b) || settled(&b, &a)
        },
    )
    .await;
    // Then a leader renews its term (its deadline moves on) while the other follows. Azurite
    // may or may not have kept the lease through its restart: either the leader keeps it and
    // renews, or its renewal finds the lease gone, it steps down, and the other takes it and
    // renews; never both at once.
    let until = Instant::now() + TTL + renew + Duration::from_secs(5);
    let mut seen = None;
    loop {
        assert!(!(a.is_leader() && b.is_leader()), "two leaders");
        if let Some(term) = a.leadership().or_else(|| b.leadership()) {
            match seen {
                Some((token, deadline)) if token == term.token() && term.deadline() > deadline => {
                    break;
                }
                Some((token, _)) if token == term.token() => {}
                _ => seen = Some((term.token(), term.deadline())),
            }
        }
        assert!(
            Instant::now() < until,
            "no leader renewed its term after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_and_check(&recorder, &[&a, &b]).await;
}

/// Forwards requests, and loses the reply of the next one that matches: the service acts, the
/// client sees a broken connection.
#[derive(Debug, Default)]
struct LoseReply(std::sync::Mutex<Option<&'static str>>);

impl LoseReply {
    fn next(&self, what: &'static str) {
        *self.0.lock().unwrap() = Some(what);
    }
}

#[async_trait::async_trait]
impl azure_core::http::policies::Policy for LoseReply {
    #[allow(elided_lifetimes_in_paths)]
    async fn send(
        &self,
        ctx: &azure_core::http::Context,
        request: &mut azure_core::http::Request,
        next: &[std::sync::Arc<dyn azure_core::http::policies::Policy>],
    ) -> azure_core::http::policies::PolicyResult {
        let action = request
            .headers()
            .iter()
            .find(|(name, _)| name.as_str() == "x-ms-lease-action")
            .map(|(_, value)| value.as_str().to_owned());
        let query = request.url().query().unwrap_or_default().to_owned();
        let response = next[0].send(ctx, request, &next[1..]).await?;
        let mut armed = self.0.lock().unwrap();
        let hit = match *armed {
            Some("acquire") => action.as_deref() == Some("acquire"),
            Some("metadata") => query.contains("comp=metadata"),
            _ => false,
        };
        if hit && response.status().is_success() {
            *armed = None;
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Io,
                "connection reset after the request was sent",
            ));
        }
        Ok(response)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_replies_are_recovered_by_acquiring_again() {
    let azurite = Azurite::start().await;
    let faults = std::sync::Arc::new(LoseReply::default());
    let container = unique_container("lost");
    let client = azurite.sas_client(&container, faults.clone());
    let store = BlobLeaderElection::builder()
        .container_client(client)
        .blob_name("lock")
        .build_store()
        .unwrap();
    let other = azurite.store(&container);

    for lost in ["acquire", "metadata"] {
        let a = LeaseRequest::new("a", TTL);
        faults.next(lost);
        let err = store.try_acquire(&a).await.unwrap_err();
        assert!(err.is_outcome_unknown(), "{lost}: {err}");
        // The lease is in fact taken: nobody else gets it...
        let b = LeaseRequest::new("b", TTL);
        let outcome = other.try_acquire(&b).await.unwrap();
        assert!(
            matches!(outcome, AcquireOutcome::Held { .. }),
            "{lost}: {outcome:?}"
        );
        // ...and asking again with the same lease id gives it to its owner, with one token.
        let lease = acquire(&store, &a).await;
        let again = acquire(&store, &a).await;
        assert_eq!(lease.token, again.token, "{lost}");
        let leader = other.current_leader().await.unwrap().unwrap();
        assert_eq!(leader.instance_id, "a");
        assert_eq!(leader.token, Some(lease.token));
        assert!(store.release(&a, &lease).await.unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_replies_are_lost_steps_down_and_never_overlaps() {
    let azurite = Azurite::start().await;
    let recorder = TermRecorder::new();
    let container = unique_container("lost-replies");
    let (a, control) = faulty_election(&azurite, &container, "a");
    let b = azurite.election(&container, "b");
    recorder.attach(&a);
    recorder.attach(&b);
    lead_then_follow(&a, &b, Duration::from_secs(10)).await;
    control.set_drop_replies(true);
    let cut = Instant::now();
    // a's requests still take effect: its renewals keep the lease, but unconfirmed, so a
    // steps down at its deadline at the latest. Its retries may keep taking the lease without
    // knowing it (the outcome stays unknown), so b may not lead until the replies come back;
    // either way, never two at once.
    eventually(TTL, "a steps down", || !a.is_leader()).await;
    let quiet_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < quiet_until {
        recorder.assert_safe();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    control.heal();
    eventually(
        TTL + Duration::from_secs(5),
        "a leader after healing",
        || a.is_leader() || b.is_leader(),
    )
    .await;
    log(&format!(
        "lost replies: a leader again {:?} after the cut",
        cut.elapsed()
    ));
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    recorder.assert_safe();
}

/// A contender whose store is wrapped in a [`FaultyStore`], and the wrapper's switches.
fn faulty_election(
    azurite: &Azurite,
    container: &str,
    id: &str,
) -> (LeaderElection<FaultyStore<BlobLeaseStore>>, FaultControl) {
    let options = azurite.election(container, id).options().clone();
    let faulty = FaultyStore::new(azurite.builder(container, id).build_store().unwrap());
    let control = faulty.control();
    (LeaderElection::new(faulty, options).unwrap(), control)
}
