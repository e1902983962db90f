//! What an operator may do to the lease table while an election runs, against a real MariaDB
//! server, through the `mariadb` command-line client as a person would.
//!
//! Every test runs three contenders with a 2 s lease, lets one lead, and acts on the table.
//! Touching the lease row (deleting it, overwriting it, emptying the table) must never let
//! anyone lead while the old holder may still trust its lease (design rule 9); only the
//! holder's release, or the documented SQL that forces an election, hands over early. The
//! verdict is always the one shared checker, [`leader_election::testing::assert_safe`], on the
//! terms a [`TermRecorder`](leader_election::testing::TermRecorder) recorded.

mod common;

use std::time::Duration;

use common::{LEASE, builder};
use leader_election::store::{AcquireOutcome, LeaseRequest, WithholdReason};
use leader_election::{ElectionBuilder, LeaseStore};
use leader_election_fixtures::MariaDb;
use leader_election_mysql::{DEFAULT_TABLE, MysqlLeaseStore};
use leader_election_test_support::operator::{Contenders, assert_record};
use leader_election_test_support::{unique_name, unique_table};
use tokio::time::Instant;

/// What a takeover may take beyond the lease: the follower's wake-up jitter, a batch, the
/// event reaching the recorder, on a loaded two-core machine. Followers hear of nothing here:
/// they wake when the lease they saw could have expired.
const SLACK: Duration = Duration::from_millis(2500);

/// Three contenders of a new election in `table` on `db`; returns them and the election's
/// name.
async fn election(
    db: &MariaDb,
    prefix: &str,
    table: &str,
) -> (Contenders<MysqlLeaseStore>, String) {
    let name = unique_name(prefix);
    let (url, election, table) = (db.url(), name.clone(), table.to_owned());
    let contenders = Contenders::start(
        3,
        Box::new(move |id| {
            builder(&url, &election, id)
                .table(&table)
                .build()
                .expect("valid configuration")
        }),
    )
    .await;
    (contenders, name)
}

/// `name` as an SQL string literal (test names have no quote or backslash).
fn literal(name: &str) -> String {
    format!("'{name}'")
}

/// Runs `sql` (with `$1` the election) as an operator while three contenders run: the shared
/// rules of a touched lease (see [`Contenders::touched`]), with a brand-new process that joins
/// right after told the lease is withheld.
async fn touched(prefix: &str, sql: &str) {
    let db = common::server().await;
    let (mut election, name) = election(&db, prefix, DEFAULT_TABLE).await;
    let act = async {
        db.sql(&sql.replace("$1", &literal(&name)));
    };
    let touched = election.touched(prefix, true, LEASE + SLACK, act).await;
    // The guard records the old holder's own lease, so it alone may take the lease back at
    // once, with a greater token, when its renewal finds the row touched before the new
    // process asks (a loaded machine).
    if touched.withheld.is_empty() {
        assert_eq!(
            touched.next.contender, touched.holder,
            "the new process was never told the lease is withheld, and {} took it",
            touched.next.contender
        );
    } else {
        touched.assert_withheld(LEASE);
    }
}

leader_election_test_support::sql_operator_checks!(
    touched,
    DEFAULT_TABLE,
    garbage: "holder = 'garbage', lease_id = NULL, token = -7, expires_at = 0, metadata = X'00ff'"
);

/// `TRUNCATE`, the blanket clean-up, removes the guard row with the lease row. A follower
/// that saw the lease held and asks the moment after must not take it: the holder renewed
/// less than a lease ago and trusts it until its next renewal fails. The election goes on
/// with a greater token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncating_the_table_keeps_followers_out_and_tokens_grow() {
    let db = common::server().await;
    let table = unique_table("truncate");
    let (election, _) = election(&db, "truncate", &table).await;
    let act = || async {
        db.sql(&format!("TRUNCATE TABLE {table}"));
    };
    election
        .cleaned_up(2, 2 * LEASE + SLACK, LEASE + SLACK, act)
        .await;
}

/// The documented SQL forces an election once the holder is gone: the followers take over at
/// their next attempt, within a lease, with a greater token; without it they wait for the
/// guard to run out too. A holder that only hung is not gone: this SQL is for a dead one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_sql_forces_an_election_and_tokens_grow() {
    let db = common::server().await;
    let (mut election, name) = election(&db, "forced", DEFAULT_TABLE).await;
    let store = common::store(&db, &name);
    let gone = election.drop_the_leader();
    db.sql(&store.force_election_sql());
    // The followers were asleep until the lease they saw could expire: the forced election
    // saves them the guard's wait, not their sleep.
    let forced = Instant::now();
    election
        .next_term_since(&gone, forced, LEASE + SLACK, "forced: the SQL")
        .await;
    election.stop_and_check().await;
}

/// Rows an operator wrote by hand, with nonsense in every column, are an error or a held lease,
/// never a panic and never a lease for two: the store answers, and a contender leads once the
/// row is fixed by a release or expires.
/// An operator's `DELETE` of the election's rows that commits while a follower's acquisition
/// waits for the guard row's lock: the acquisition began while the lease was held, and must
/// still find the rows gone (the follower saw the lease held), not write a lease into the
/// space the `DELETE` left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_committed_during_an_acquisition_lets_nobody_in() {
    use leader_election_mysql::mysql_async::{self, prelude::Queryable};
    let db = common::server().await;
    let name = unique_name("delete-race");
    let (holder, racer) = (common::store(&db, &name), common::store(&db, &name));
    holder.connect().await.expect("connect");
    racer.connect().await.expect("connect");
    let held = holder
        .try_acquire(&LeaseRequest::new("old", LEASE))
        .await
        .expect("an answer");
    assert!(matches!(held, AcquireOutcome::Acquired(_)), "{held:?}");
    let request = LeaseRequest::new("racer", LEASE);
    let seen = racer.try_acquire(&request).await.expect("an answer");
    assert!(matches!(seen, AcquireOutcome::Held { .. }), "{seen:?}");
    let request = request.expecting_record(true);
    let opts = mysql_async::Opts::from_url(&db.url()).expect("the server's URL");
    let mut operator = mysql_async::Conn::new(opts.clone()).await.expect("connect");
    let mut watcher = mysql_async::Conn::new(opts).await.expect("connect");
    operator
        .query_drop(format!(
            "START TRANSACTION; DELETE FROM {DEFAULT_TABLE} WHERE election LIKE '{name}%'"
        ))
        .await
        .expect("the operator's DELETE");
    let acquiring = tokio::spawn(async move { racer.try_acquire(&request).await });
    // The acquisition waits for the rows the uncommitted DELETE holds: its first statement,
    // the guard row's lock, stays in the server's process list.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let waiting: Option<u64> = watcher
            .query_first(format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE 'INSERT INTO `{DEFAULT_TABLE}` (election, token)%'"
            ))
            .await
            .expect("the process list");
        if waiting.unwrap_or(0) > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline && !acquiring.is_finished(),
            "the acquisition never waited for the DELETE's locks: {:?}",
            if acquiring.is_finished() {
                Some(acquiring.await)
            } else {
                None
            }
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    operator.query_drop("COMMIT").await.expect("COMMIT");
    match acquiring.await.expect("the task").expect("an answer") {
        AcquireOutcome::Withheld { reason, .. } => {
            assert_eq!(reason, WithholdReason::RecordVanished);
        }
        other => panic!("the lease deleted under its holder was taken at once: {other:?}"),
    }
    let rows: Option<u64> = watcher
        .query_first(format!(
            "SELECT COUNT(*) FROM {DEFAULT_TABLE} WHERE election = '{name}'"
        ))
        .await
        .expect("the lease row");
    assert_eq!(rows, Some(0), "a lease row was written after the DELETE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hand_written_rows_are_answered_never_a_panic() {
    let db = common::server().await;
    let name = unique_name("hand-written");
    let store = common::store(&db, &name);
    store.connect().await.expect("connect");
    let request = LeaseRequest::new("a", LEASE);
    for (row, free) in [
        // Held by somebody unknown until far in the future: never taken.
        ("'someone', 'x', 5, 9223372036854775000, NULL", false),
        // A holder with no expiry (free, as a released row), and a negative token.
        ("'someone', NULL, -5, NULL, X'ff'", true),
        // Invalid UTF-8 as the holder, expired.
        ("X'ff00fe', 'x', 7, 1, NULL", true),
    ] {
        db.sql(&format!(
            "REPLACE INTO {DEFAULT_TABLE} (election, holder, lease_id, token, expires_at, metadata) \
             VALUES ({}, {row})",
            literal(&name)
        ));
        match store.try_acquire(&request).await {
            Ok(AcquireOutcome::Acquired(lease)) => {
                assert!(free, "{row}: taken from its holder");
                assert!(lease.token.get() > 7, "{row}: token {}", lease.token.get());
                assert!(store.release(&request, &lease).await.expect("release"));
            }
            other => assert!(!free, "{row}: a free row not taken: {other:?}"),
        }
        let _ = store.current_leader().await;
    }
}

/// The election's record row outlives what an operator does to the lease: deleting the lease
/// row, forcing an election, truncating nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_row_outlives_the_operators_sql_on_the_lease() {
    let db = common::server().await;
    let name = unique_name("record");
    let store = common::store(&db, &name);
    store.connect().await.expect("connect");
    let v1 = store
        .write_record(None, b"first")
        .await
        .expect("write")
        .expect("written");
    db.sql(&format!(
        "DELETE FROM {DEFAULT_TABLE} WHERE election = {}",
        literal(&name)
    ));
    db.sql(&store.force_election_sql());
    assert_record(&store, &v1, b"first").await;
    // A stale version writes nothing; the current one writes, with a greater version.
    let v2 = store
        .write_record(Some(&v1), b"second")
        .await
        .expect("write")
        .expect("written");
    assert!(
        store
            .write_record(Some(&v1), b"stale")
            .await
            .expect("write")
            .is_none()
    );
    assert!(v2.as_str().parse::<i64>().unwrap() > v1.as_str().parse::<i64>().unwrap());
    // Deleted by hand, it is written again with a greater version still.
    db.sql(&format!(
        "DELETE FROM {DEFAULT_TABLE} WHERE election = {}",
        literal(&store.record_key())
    ));
    assert!(store.read_record().await.expect("read").is_none());
    let v3 = store
        .write_record(None, b"third")
        .await
        .expect("write")
        .expect("written");
    assert!(v3.as_str().parse::<i64>().unwrap() > v2.as_str().parse::<i64>().unwrap());
}

/// The server killed (a crash, not a clean stop) and started again on its data: the leader
/// steps down if it cannot renew in time, and the election elects again with a greater token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_crash_and_restart_keeps_one_leader_and_tokens_grow() {
    // A server of its own: the others' tests must not see it go.
    let db = MariaDb::start().await;
    let (election, _) = election(&db, "crash", DEFAULT_TABLE).await;
    let before = election.leader().leadership().expect("a term");
    db.kill().await;
    db.restart().await;
    election.one_leader(3 * LEASE + SLACK).await;
    let now = election.leader().leadership().expect("a term");
    assert!(now.token() >= before.token());
    // A graceful handover after the restart still gives a greater token.
    election.leader().stop().await.expect("stop");
    election.next_term(&now, LEASE + SLACK).await;
    election.stop_and_check().await;
}

/// The operator's `WHERE election = …` in the README finds the lease row: the key is the
/// election's name, byte for byte, so a plain string literal matches it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_row_is_found_by_its_plain_name() {
    let db = common::server().await;
    let (election, name) = election(&db, "plain-name", DEFAULT_TABLE).await;
    let leader = election.leader().instance_id().to_owned();
    let row = db.sql(&format!(
        "SELECT holder FROM {DEFAULT_TABLE} WHERE election = {}",
        literal(&name)
    ));
    assert_eq!(row.trim(), leader);
    let store: &MysqlLeaseStore = election.leader().store();
    assert_eq!(store.guard_key(), format!("{name}\u{1f}guard"));
    election.stop().await;
}

/// The server killed and not started again: the leader stops believing it leads within its
/// lease, however its requests fail (refused, reset, or waiting on a dead pooled connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_server_died_steps_down_within_its_lease() {
    let db = MariaDb::start().await;
    let (election, _) = election(&db, "server-died", DEFAULT_TABLE).await;
    let leader = election.leader();
    let term = leader.leadership().expect("a term");
    db.kill().await;
    let killed = Instant::now();
    leader_election_test_support::eventually(LEASE + SLACK, "the leader to step down", || {
        !leader.is_leader()
    })
    .await;
    eprintln!(
        "stepped down {:?} after the kill, {:?} before its deadline",
        killed.elapsed(),
        term.deadline().saturating_duration_since(Instant::now())
    );
    assert!(!term.is_current());
    election.stop().await;
}

/// The server's clock stepped back a minute (libfaketime under `mariadbd`), then the table
/// emptied: the server's clock alone would mint a smaller token; the floor each contender
/// carries (the highest token it saw, plus one) keeps the next one greater.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncating_the_table_on_a_clock_stepped_back_still_gives_a_greater_token() {
    let Some(clock) = leader_election_fixtures::faketime::SteppedClock::for_test() else {
        return;
    };
    let db = MariaDb::start_with_clock(&clock).await;
    let table = unique_table("clock_step");
    let (election, _) = election(&db, "clock-step", &table).await;
    let old = election.leader().leadership().expect("a term");
    clock.step(-60).expect("step the server's clock");
    // The server's clock is a minute behind this machine's (it re-reads the offset).
    leader_election_test_support::eventually_async(
        Duration::from_secs(10),
        "the server's clock to be a minute behind",
        || async {
            let server: f64 = db
                .sql("SELECT TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP())")
                .trim()
                .parse()
                .unwrap_or(f64::MAX);
            let here = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            here - server > 50.0
        },
    )
    .await;
    db.sql(&format!("TRUNCATE TABLE {table}"));
    let next = election.next_term(&old, 2 * LEASE + SLACK).await;
    assert!(
        next.token > old.token(),
        "token {} after the table was emptied on a clock stepped back, {} before",
        next.token,
        old.token()
    );
    election.stop_and_check().await;
}
