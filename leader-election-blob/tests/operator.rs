//! What an operator does to a running election with Azure's own tools, against a real Azurite:
//! Break Lease with a zero break period, break and delete the blob, break and overwrite its
//! metadata with garbage, delete it while leased, and the ways to force a new election; and what
//! a Break Lease (default period) or a delete does to a running term. Three contenders run in most (lease 15 s, Azure's shortest); the operator acts through a client
//! of its own ([`BlobLeaderElectionBuilder::build_blob_client`]). Each test asserts with the one
//! safety checker (never two leaders, tokens increasing) and that leadership comes back within
//! about one lease of the action.

use std::collections::HashMap;
use std::time::Duration;

use azure_storage_blob::BlobClient;
use azure_storage_blob::models::BlobClientGetPropertiesResultHeaders;
use leader_election::testing::TermRecorder;
use leader_election::{ChangeReason, ElectionEvent, LeaderElection};
use leader_election_blob::BlobLeaseStore;
use leader_election_test_support::operator::assert_record;
use leader_election_test_support::{
    eventually, lead_then_follow, leader_again_after, stop_and_check,
    unique_container as container_name,
};

use leader_election_test_support::acquire;

mod common;
use common::{Azurite, AzuriteExt, TTL, account_sas, break_lease_now};
use tokio::time::Instant;

/// Beyond one lease after the action: the `Date` header's second, a follower's poll
/// (`retry_interval` 0.5 s plus jitter) and a slow request or two on a shared machine.
const SLACK: Duration = Duration::from_secs(5);

/// Three contenders of one election, every term recorded.
struct Contenders {
    elections: Vec<LeaderElection<BlobLeaseStore>>,
    recorder: TermRecorder,
}

impl Contenders {
    /// Starts three contenders and waits until one leads and the others have seen it lead.
    async fn start(azurite: &Azurite, container: &str) -> Self {
        let recorder = TermRecorder::new();
        let elections: Vec<_> = (0..3)
            .map(|i| azurite.election(container, &format!("c{i}")))
            .collect();
        recorder.start_all(&elections).await.expect("start");
        let contenders = Self {
            elections,
            recorder,
        };
        eventually(Duration::from_secs(20), "one leads, all see it", || {
            contenders.leader().is_some()
                && contenders
                    .elections
                    .iter()
                    .all(|e| e.is_leader() || e.state().leader.is_some())
        })
        .await;
        contenders
    }

    fn leader(&self) -> Option<&LeaderElection<BlobLeaseStore>> {
        self.elections.iter().find(|e| e.is_leader())
    }

    /// Waits for a term that began after `acted`, and answers how long after `acted` it began.
    async fn leader_again_after(&self, acted: Instant, what: &str) -> Duration {
        let waited = format!("{what}: a leader again");
        let back = leader_again_after(&self.recorder, acted, TTL + SLACK, &waited).await;
        println!("[leader-election-blob] {what}: leader again {back:?} after the action");
        back
    }

    /// Stops everybody and asserts with the one safety checker; if `before` is given, a term
    /// after it had a greater token.
    async fn stop_and_check(self, before: Option<leader_election::FencingToken>) {
        // Let an old leader that still believes it leads run to its next renewal, so that an
        // overlap shows its whole length (bounded: the checker reports what it finds).
        let renew = self.elections[0].options().renew_interval
            + self.elections[0].options().operation_timeout();
        let deadline = Instant::now() + renew + Duration::from_secs(1);
        while self.elections.iter().filter(|e| e.is_leader()).count() > 1
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for election in &self.elections {
            election.stop().await.expect("stop");
        }
        let terms = self.recorder.terms();
        println!("[leader-election-blob] terms: {terms:#?}");
        self.recorder.assert_safe();
        if let Some(before) = before {
            let last = terms.iter().map(|t| t.token).max().expect("terms");
            assert!(last > before, "no term after the action outranks {before}");
        }
    }
}

/// The operator's own client for the election's blob.
fn operator(azurite: &Azurite, container: &str) -> BlobClient {
    azurite
        .builder(container, "operator")
        .build_blob_client()
        .expect("operator client")
}

fn first_token(contenders: &Contenders) -> leader_election::FencingToken {
    contenders
        .leader()
        .and_then(|l| l.leadership())
        .expect("a leader")
        .token()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_with_zero_period_lets_nobody_in_for_a_lease() {
    let azurite = Azurite::start().await;
    let container = container_name("op-break");
    let contenders = Contenders::start(&azurite, &container).await;
    let before = first_token(&contenders);
    let operator = operator(&azurite, &container);
    break_lease_now(&operator).await;
    let acted = Instant::now();
    let back = contenders.leader_again_after(acted, "break 0").await;
    contenders.stop_and_check(Some(before)).await;
    assert!(
        back >= TTL - Duration::from_secs(1),
        "leader again after {back:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_and_delete_lets_nobody_in_for_a_lease() {
    let azurite = Azurite::start().await;
    let container = container_name("op-delete");
    let contenders = Contenders::start(&azurite, &container).await;
    let before = first_token(&contenders);
    let operator = operator(&azurite, &container);
    break_lease_now(&operator).await;
    operator.delete(None).await.expect("delete the blob");
    let acted = Instant::now();
    let back = contenders.leader_again_after(acted, "break + delete").await;
    contenders.stop_and_check(Some(before)).await;
    assert!(
        back >= TTL - Duration::from_secs(1),
        "leader again after {back:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_and_garbage_metadata_lets_nobody_in_for_a_lease() {
    let azurite = Azurite::start().await;
    let container = container_name("op-garbage");
    let contenders = Contenders::start(&azurite, &container).await;
    let before = first_token(&contenders);
    let operator = operator(&azurite, &container);
    break_lease_now(&operator).await;
    let garbage = HashMap::from([
        ("leader_token".to_owned(), "not-a-number".to_owned()),
        ("leader_instance_id".to_owned(), "%zz".to_owned()),
        ("leader_lease_hash".to_owned(), "junk".to_owned()),
    ]);
    operator
        .set_metadata(&garbage, None)
        .await
        .expect("overwrite the metadata");
    let acted = Instant::now();
    let back = contenders
        .leader_again_after(acted, "break + garbage")
        .await;
    contenders.stop_and_check(Some(before)).await;
    assert!(
        back >= TTL - Duration::from_secs(1),
        "leader again after {back:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_while_leased_is_refused_and_changes_nothing() {
    let azurite = Azurite::start().await;
    let container = container_name("op-leased");
    let contenders = Contenders::start(&azurite, &container).await;
    let before = first_token(&contenders);
    let operator = operator(&azurite, &container);
    // Azure refuses to delete (or write) a leased blob without its lease id: an operator must
    // break the lease first.
    let err = operator
        .delete(None)
        .await
        .expect_err("deleting a leased blob");
    assert_eq!(
        err.http_status().map(u16::from),
        Some(412),
        "expected 412 (LeaseIdMissing): {err}"
    );
    let err = operator
        .set_metadata(&HashMap::new(), None)
        .await
        .expect_err("writing a leased blob");
    assert_eq!(err.http_status().map(u16::from), Some(412), "{err}");
    // The leader renews as if nothing happened.
    let acted = std::time::SystemTime::now();
    let leader = contenders.leader().expect("a leader");
    let renew = leader.options().renew_interval + leader.options().operation_timeout();
    eventually(renew * 2, "the leader renews after the attempt", || {
        leader
            .last_leadership_renewal()
            .is_some_and(|at| at > acted)
    })
    .await;
    assert!(leader.is_leader());
    assert_eq!(contenders.recorder.terms().len(), 1, "one term throughout");
    assert_eq!(first_token(&contenders), before);
    contenders.stop_and_check(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_reelection_by_release_hands_over_at_once() {
    let azurite = Azurite::start().await;
    let container = container_name("op-release");
    let contenders = Contenders::start(&azurite, &container).await;
    let before = first_token(&contenders);
    // The legitimate way to force a new election: the leader releases (stop(), or ending its
    // process gracefully); it may contend again afterwards.
    let leader = contenders.leader().expect("a leader");
    leader.stop().await.expect("stop the leader");
    let acted = Instant::now();
    let back = contenders.leader_again_after(acted, "release").await;
    leader.start().await.expect("contend again");
    contenders.stop_and_check(Some(before)).await;
    assert!(back <= Duration::from_secs(3), "{back:?} after a release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_break_with_default_period_hands_over_safely() {
    let azurite = Azurite::start().await;
    let container = container_name("op-default");
    let contenders = Contenders::start(&azurite, &container).await;
    let before = first_token(&contenders);
    // The operator's way to force a new election without the leader's help: Break Lease with
    // its default period. The leader steps down at its next renewal; a new leader follows about
    // one lease after the break (the contenders saw the break begin).
    operator(&azurite, &container)
        .break_lease(None)
        .await
        .expect("break the lease");
    let acted = Instant::now();
    eventually(TTL + SLACK, "the old leader steps down", || {
        contenders.leader().is_none()
    })
    .await;
    let back = contenders.leader_again_after(acted, "default break").await;
    contenders.stop_and_check(Some(before)).await;
    assert!(back <= TTL + SLACK, "leader again after {back:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_blob_client_is_authorized_as_the_store() {
    let azurite = Azurite::start().await;
    let container = container_name("op-client");
    let election = azurite.election(&container, "c0");
    election.start().await.expect("start");
    eventually(Duration::from_secs(20), "c0 leads", || election.is_leader()).await;
    // SharedKey (the account key of a connection string) and SAS connection strings.
    let sas = format!(
        "BlobEndpoint={}/;SharedAccessSignature={}",
        azurite.blob_endpoint(),
        account_sas()
    );
    for builder in [
        azurite.builder(&container, "op"),
        azurite.builder(&container, "op").connection_string(sas),
    ] {
        let client = builder.build_blob_client().expect("client");
        let properties = client.get_properties(None).await.expect("read the blob");
        let metadata = properties.metadata().expect("metadata");
        assert_eq!(
            metadata.get("leader_instance_id").map(String::as_str),
            Some("c0")
        );
        assert!(client.url().path().ends_with(&format!("/{container}/lock")));
    }
    election.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_processes_honour_a_touch_recorded_on_the_blob() {
    use leader_election::LeaseStore;
    use leader_election::store::{AcquireOutcome, LeaseRequest, WithholdReason};
    let withheld = |outcome: AcquireOutcome, who: &str| match outcome {
        AcquireOutcome::Withheld { wait, reason } => {
            assert_eq!(reason, WithholdReason::RecordTouched, "{who}");
            assert!(wait <= TTL + Duration::from_secs(2), "{who}: {wait:?}");
            wait
        }
        other => panic!("{who}: expected Withheld, got {other:?}"),
    };
    let azurite = Azurite::start().await;
    let container = container_name("op-fresh");
    let holder = azurite.store(&container);
    let follower = azurite.store(&container);
    let a = LeaseRequest::new("a", TTL);
    let b = LeaseRequest::new("b", TTL);
    assert!(matches!(
        holder.try_acquire(&a).await.unwrap(),
        AcquireOutcome::Acquired(_)
    ));
    assert!(matches!(
        follower.try_acquire(&b).await.unwrap(),
        AcquireOutcome::Held { .. }
    ));
    let operator = operator(&azurite, &container);
    break_lease_now(&operator).await;
    // A process that never saw the lease held finds it broken: withheld, and the touch is
    // recorded on the blob for everybody.
    let fresh = azurite.store(&container);
    let wait = withheld(
        fresh
            .try_acquire(&LeaseRequest::new("c", TTL))
            .await
            .unwrap(),
        "a new process after the break",
    );
    assert!(wait >= TTL - Duration::from_secs(1), "{wait:?}");
    let properties = operator.get_properties(None).await.unwrap();
    assert!(
        properties
            .metadata()
            .unwrap()
            .contains_key("leader_touched_at")
    );
    // Deleted as well: the follower that saw the lease held creates the blob again with the
    // touch, and a process started after that honours it too.
    operator.delete(None).await.unwrap();
    withheld(
        follower.try_acquire(&b).await.unwrap(),
        "the follower after the delete",
    );
    withheld(
        azurite
            .store(&container)
            .try_acquire(&LeaseRequest::new("d", TTL))
            .await
            .unwrap(),
        "a new process after the delete",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_broken_by_an_operator_ends_the_term() {
    let azurite = Azurite::start().await;
    let container = container_name("broken");
    let recorder = TermRecorder::new();
    let a = azurite.election(&container, "a");
    let b = azurite.election(&container, "b");
    let mut events = a.subscribe();
    recorder.attach(&a);
    recorder.attach(&b);
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    b.start().await.unwrap();
    let first = a.leadership().unwrap().token();

    // Break Lease with the default break period: the lease ends when its current period does,
    // and nobody can acquire it meanwhile.
    azurite
        .operator(&container)
        .break_lease(None)
        .await
        .unwrap();
    let broken_at = Instant::now();
    // The next renewal (every 3 s) finds the lease breaking.
    let renew = a.options().renew_interval + a.options().operation_timeout();
    eventually(renew + Duration::from_secs(1), "a steps down", || {
        recorder
            .terms_of("a")
            .first()
            .is_some_and(|t| t.end_reason.is_some())
    })
    .await;
    assert!(broken_at.elapsed() <= renew + Duration::from_secs(1));
    let reason = loop {
        match events.recv().await.unwrap() {
            ElectionEvent::LeadershipChanged {
                is_leader: false,
                reason,
                ..
            } => break reason,
            _ => continue,
        }
    };
    assert_eq!(reason, ChangeReason::LeaseLost);
    // Once the break period is over, somebody leads again, in a new term.
    eventually(TTL + Duration::from_secs(2), "a new leader", || {
        a.is_leader() || b.is_leader()
    })
    .await;
    let leader = if a.is_leader() { &a } else { &b };
    assert!(leader.leadership().unwrap().token() > first);
    stop_and_check(&recorder, &[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_blob_ends_the_term_and_tokens_keep_increasing() {
    let azurite = Azurite::start().await;
    let container = container_name("deleted");
    let recorder = TermRecorder::new();
    let a = azurite.election(&container, "a");
    let b = azurite.election(&container, "b");
    recorder.attach(&a);
    recorder.attach(&b);
    lead_then_follow(&a, &b, Duration::from_secs(10)).await;
    let first = a.leadership().unwrap().token();

    // An operator forces the lease off at once and deletes the blob. a leads until its next
    // renewal; b, which saw the lease held, withholds it for a lease (rule 9), and the new
    // term's token is greater.
    let operator = azurite.operator(&container);
    break_lease_now(&operator).await;
    operator.delete(None).await.unwrap();
    let renew = a.options().renew_interval + a.options().operation_timeout();
    eventually(renew + Duration::from_secs(1), "a steps down", || {
        recorder
            .terms_of("a")
            .first()
            .is_some_and(|t| t.end_reason.is_some())
    })
    .await;
    eventually(TTL + Duration::from_secs(5), "a new leader", || {
        a.is_leader() || b.is_leader()
    })
    .await;
    let leader = if a.is_leader() { &a } else { &b };
    let token = leader.leadership().unwrap().token();
    assert!(
        token > first,
        "token {token} after {first}: the history must not restart"
    );
    // Touching the record is not releasing it: no overlap at all, one checker.
    stop_and_check(&recorder, &[&a, &b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_election_record_is_its_own_blob_and_outlives_deletion_and_release() {
    // The election record lives in `<blob>.record`, beside the lease blob: a release, an
    // operator breaking and deleting the lease blob, and the touch recorded after it leave it
    // alone.
    use leader_election::LeaseStore;
    use leader_election::store::{AcquireOutcome, LeaseRequest};
    let azurite = Azurite::start().await;
    let container = container_name("op-record");
    let store = azurite.store(&container);
    assert_eq!(store.record_blob_name(), "lock.record");
    let data = b"ran: 2024-01-01T00:00".to_vec();
    let v1 = store
        .write_record(None, &data)
        .await
        .expect("write (creating the container)")
        .expect("a new election has no record");
    // An operator finds it at the documented name: its bytes as written, its ETag the version.
    let record_blob = store.container_client().blob_client("lock.record");
    let download = record_blob.download(None).await.expect("the record blob");
    assert_eq!(
        download.properties.etag.as_ref().map(ToString::to_string),
        Some(v1.to_string())
    );
    assert_eq!(download.body.collect().await.unwrap().to_vec(), data);

    let a = LeaseRequest::new("a", TTL);
    let lease = common::acquire_fresh(&store, &a).await;
    assert!(store.release(&a, &lease).await.unwrap());
    let b = LeaseRequest::new("b", TTL);
    acquire(&store, &b).await;
    let operator = operator(&azurite, &container);
    break_lease_now(&operator).await;
    operator.delete(None).await.expect("delete the lease blob");
    // The lease logic sees the deletion (withheld for a lease) ...
    assert!(matches!(
        store.try_acquire(&a).await.unwrap(),
        AcquireOutcome::Withheld { .. }
    ));
    // ... and the record, read by this store and by a brand-new one, is untouched.
    for reader in [&store, &azurite.store(&container)] {
        assert_record(reader, &v1, &data).await;
    }

    // Azure gives every write a new ETag, the same bytes too.
    let v2 = store
        .write_record(Some(&v1), &data)
        .await
        .unwrap()
        .expect("written at the current version");
    assert_ne!(v2, v1);
    assert_eq!(store.write_record(Some(&v1), b"stale").await.unwrap(), None);
    assert_eq!(store.write_record(None, b"again").await.unwrap(), None);

    // A lease on the record blob (this crate never takes one) is an error, not a lost race.
    record_blob
        .acquire_lease(-1, None)
        .await
        .expect("an operator leases the record blob");
    let err = store
        .write_record(Some(&v2), b"leased")
        .await
        .expect_err("a leased record blob");
    assert!(err.to_string().contains("412 Lease"), "{err}");
    break_lease_now(&record_blob).await;

    // An operator deleting the record blob: no record, a write expecting the old version is
    // refused (nothing written), and a write expecting none creates it again.
    record_blob
        .delete(None)
        .await
        .expect("delete the record blob");
    assert_eq!(store.read_record().await.unwrap(), None);
    assert_eq!(store.write_record(Some(&v2), b"late").await.unwrap(), None);
    assert_eq!(store.read_record().await.unwrap(), None);
    assert!(store.write_record(None, b"anew").await.unwrap().is_some());
    // Oversized: refused before anything is sent.
    let err = store
        .write_record(None, &vec![0; leader_election_blob::MAX_RECORD_LEN + 1])
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}
