//! An operator's hands on the lease record, on a real redis-server: whatever is deleted or
//! overwritten by hand, never two leaders (checked by the one shared checker), tokens keep
//! increasing, and leadership comes back. And the election record (`{key}:record`): where it
//! lives, and that it outlives every key of the lease deleted by hand.

mod common;

use std::time::Duration;

use common::{self as support, RedisServerExt, command, election, prime};
use leader_election::testing::TermRecorder;
use leader_election::{LeaderElection, Role};
use leader_election_redis::RedisLeaseStore;
use leader_election_test_support::operator::assert_record;
use leader_election_test_support::{eventually, unique_name};
use tokio::time::Instant;

/// The lease of `support::fast_options`.
const LEASE: Duration = Duration::from_millis(1500);

/// Three contenders of election `key`, started, with a recorder attached before they start.
async fn three(url: &str, key: &str) -> (Vec<LeaderElection<RedisLeaseStore>>, TermRecorder) {
    prime(url, key).await;
    let recorder = TermRecorder::new();
    let elections: Vec<_> = (0..3)
        .map(|i| election(url, key, &format!("c{i}")))
        .collect();
    recorder.start_all(&elections).await.expect("start");
    (elections, recorder)
}

async fn stop_all(elections: &[LeaderElection<RedisLeaseStore>]) {
    for e in elections {
        let _ = e.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_lease_key_never_lets_a_second_leader_in() {
    let server = support::server().await;
    let url = server.url();
    let key = unique_name("operator-del");
    let (elections, recorder) = three(&url, &key).await;
    let client = server.client().await;
    let mut token = 0;
    for round in 0..3 {
        let term = recorder.term_after(token, LEASE * 4).await;
        // Wait for the leader to renew once, so that it trusts its lease for a whole lease
        // from now.
        let leader = elections
            .iter()
            .find(|e| e.instance_id() == term.contender)
            .expect("the leader");
        let first_deadline = leader.leadership().expect("leading").deadline();
        eventually(LEASE, "the leader renews once", || {
            let now = leader.leadership().expect("the leader keeps leading");
            assert_eq!(now.token(), term.token, "the same term");
            now.deadline() > first_deadline
        })
        .await;
        let current = recorder.current().expect("a leader");
        token = current.token.get();
        let deleted_at = Instant::now();
        command(&client, &["DEL", &format!("{{{key}}}:lease")]).await;
        let next = recorder.term_after(token, LEASE * 3).await.start;
        let took = next.saturating_duration_since(deleted_at);
        eprintln!("round {round}: new leader {took:?} after DEL (lease {LEASE:?})");
        assert!(took <= LEASE * 2, "leadership took {took:?} to come back");
    }
    recorder.assert_safe();
    stop_all(&elections).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_lease_key_stops_everyone_until_it_is_deleted() {
    let server = support::server().await;
    let url = server.url();
    let key = unique_name("operator-garbage");
    let (elections, recorder) = three(&url, &key).await;
    let client = server.client().await;
    recorder.term_after(0, LEASE * 4).await;
    let token = recorder.current().expect("a leader").token.get();
    command(&client, &["SET", &format!("{{{key}}}:lease"), "garbage"]).await;
    // Nobody leads while the garbage is there.
    let deadline = Instant::now() + LEASE * 2;
    for e in &elections {
        let mut state = e.watch();
        tokio::time::timeout_at(deadline, state.wait_for(|s| s.role != Role::Leader))
            .await
            .expect("the leader did not step down")
            .expect("state");
    }
    // The garbage stays for a whole lease (the wait is the observation); the recorder, which
    // saw every term, shows none after the one the garbage ended.
    tokio::time::sleep(LEASE).await;
    assert!(
        recorder.current().is_none() && recorder.terms().iter().all(|t| t.token.get() <= token),
        "somebody leads over garbage: {:?}",
        recorder.terms()
    );
    let deleted_at = Instant::now();
    command(&client, &["DEL", &format!("{{{key}}}:lease")]).await;
    let next = recorder.term_after(token, LEASE * 3).await.start;
    eprintln!(
        "new leader {:?} after the garbage was deleted",
        next.saturating_duration_since(deleted_at)
    );
    recorder.assert_safe();
    stop_all(&elections).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_reelection_after_the_leader_is_gone_is_immediate() {
    let server = support::server().await;
    let url = server.url();
    let key = unique_name("operator-force");
    let (mut elections, recorder) = three(&url, &key).await;
    let client = server.client().await;
    recorder.term_after(0, LEASE * 4).await;
    let leader = recorder.current().expect("a leader");
    // The leader's process is gone without a release (its last handle dropped) ...
    let index = elections
        .iter()
        .position(|e| e.instance_id() == leader.contender)
        .expect("leader");
    drop(elections.remove(index));
    // Its loop ends the term when it sees the last handle gone (`ChangeReason::Dropped`).
    eventually(LEASE, "the dropped leader's term did not end", || {
        recorder.current().is_none()
    })
    .await;
    // ... and the operator, knowing it, deletes the lease and its shadow and wakes the
    // followers: the documented way to force a new election at once.
    let forced_at = Instant::now();
    command(
        &client,
        &[
            "DEL",
            &format!("{{{key}}}:lease"),
            &format!("{{{key}}}:held"),
        ],
    )
    .await;
    command(
        &client,
        &["PUBLISH", &format!("{{{key}}}:released"), "forced"],
    )
    .await;
    let next = recorder.term_after(leader.token.get(), LEASE).await.start;
    let took = next.saturating_duration_since(forced_at);
    eprintln!("new leader {took:?} after the forced re-election");
    assert!(took < LEASE / 2, "a forced re-election took {took:?}");
    recorder.assert_safe();
    stop_all(&elections).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_lives_in_its_own_key_and_outlives_an_operator_deleting_the_lease() {
    use leader_election::store::{AcquireOutcome, LeaseRequest};
    use leader_election::{Error, LeaseStore};

    let server = support::server().await;
    let url = server.url();
    let key = unique_name("operator-record");
    let store = support::primed_store(&url, &key).await;
    store.connect().await.expect("connect");
    let record_key = format!("{{{key}}}:record");
    assert_eq!(store.record_key(), record_key, "the documented key");
    let client = server.client().await;

    let v1 = store
        .write_record(None, b"ran 1")
        .await
        .expect("write")
        .expect("no record yet");
    // At the documented place: a hash with the version and the data.
    let field = |name: &'static str| {
        let (client, record_key) = (&client, &record_key);
        async move {
            command(client, &["HGET", record_key, name])
                .await
                .as_string()
                .expect("the field")
        }
    };
    assert_eq!(field("version").await, v1.as_str());
    assert_eq!(field("data").await, "ran 1");
    assert_eq!(
        command(&client, &["PTTL", &record_key]).await.as_i64(),
        Some(-1),
        "the record never expires"
    );

    // A leader, then an operator deleting every key of the lease (the documented forced
    // election and more): the record stays as it was.
    let request = LeaseRequest::new("a", LEASE);
    let AcquireOutcome::Acquired(_) = store.try_acquire(&request).await.expect("acquire") else {
        panic!("the primed election should grant at once");
    };
    let others =
        ["lease", "held", "token", "epoch", "fence", "maxttl"].map(|k| format!("{{{key}}}:{k}"));
    let mut del = vec!["DEL"];
    del.extend(others.iter().map(String::as_str));
    command(&client, &del).await;
    command(
        &client,
        &["PUBLISH", &format!("{{{key}}}:released"), "forced"],
    )
    .await;
    assert_record(&store, &v1, b"ran 1").await;

    // Deleting the record itself forgets it; the next version is a new one, never v1 again.
    command(&client, &["DEL", &record_key]).await;
    assert_eq!(store.read_record().await.expect("read"), None);
    let v2 = store
        .write_record(None, b"ran 1 again")
        .await
        .expect("write")
        .expect("no record after DEL");
    assert_ne!(v2, v1);
    assert!(
        v2.as_str().parse::<u64>().unwrap() > v1.as_str().parse::<u64>().unwrap(),
        "{v2} after {v1}"
    );

    // Something this library did not write is invalid data, and never overwritten.
    for garbage in [
        vec!["SET", record_key.as_str(), "garbage"],
        vec!["HSET", record_key.as_str(), "version", "x", "data", "y"],
        vec![
            "HSET",
            record_key.as_str(),
            "version",
            "12",
            "data",
            "y",
            "extra",
            "z",
        ],
    ] {
        command(&client, &["DEL", &record_key]).await;
        command(&client, &garbage).await;
        let err = store.read_record().await.expect_err("garbage read");
        assert!(matches!(err, Error::InvalidData { .. }), "{err}");
        let err = store
            .write_record(None, b"x")
            .await
            .expect_err("garbage overwritten");
        assert!(matches!(err, Error::InvalidData { .. }), "{err}");
        let err = store
            .write_record(Some(&v2), b"x")
            .await
            .expect_err("garbage overwritten");
        assert!(matches!(err, Error::InvalidData { .. }), "{err}");
    }
    assert_eq!(
        command(&client, &["HGET", &record_key, "extra"])
            .await
            .as_string()
            .as_deref(),
        Some("z"),
        "the garbage was kept"
    );
    // An empty record is a record.
    command(&client, &["DEL", &record_key]).await;
    let empty = store
        .write_record(None, b"")
        .await
        .expect("write")
        .expect("no record after DEL");
    assert_record(&store, &empty, b"").await;
}
