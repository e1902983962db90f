//! What an operator may do to the lease table while an election runs, against a real server.
//!
//! Every test runs three contenders with a 2 s lease, lets one lead, and then acts on the table
//! through a plain `tokio_postgres` connection, as a person with `psql` would. Touching the
//! lease row (deleting it, overwriting it) must never let anyone lead while the old holder may
//! still trust its lease (design rule 9); only the holder's release, or the documented SQL that
//! forces an election, hands over at once. The verdict is always the one shared checker,
//! [`leader_election::testing::assert_safe`], on the terms a [`TermRecorder`] recorded.

mod common;

use leader_election::ElectionBuilder;
use std::time::Duration;

use common::{LEASE, builder, election as contender};
use leader_election::store::{AcquireOutcome, LeaseRequest, WithholdReason};
use leader_election::testing::{TermRecorder, assert_safe};
use leader_election::{LeaseStore, Role};
use leader_election_fixtures::Postgres;
use leader_election_fixtures::faketime::SteppedClock;
use leader_election_postgres::{DEFAULT_TABLE, PostgresLeaseStore};
use leader_election_test_support::operator::{Contenders, assert_record};
use leader_election_test_support::{
    ErrorCount, eventually, eventually_async, unique_name, unique_table,
};
use tokio::time::Instant;

/// What a takeover may take beyond the lease: the follower's wake-up jitter, a statement, the
/// event reaching the recorder, on a loaded two-core machine.
const SLACK: Duration = Duration::from_millis(1500);

/// A connection of the operator's own, as `psql` would open.
async fn operator(pg: &Postgres) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg.url(), tokio_postgres::NoTls)
        .await
        .expect("the operator connects");
    tokio::spawn(connection);
    client
}

/// Waits (at most 10 s) until a statement of the contender `id` (its connection's
/// `application_name`) waits for a lock that another transaction holds.
async fn waits_for_a_lock(watcher: &tokio_postgres::Client, id: &str) {
    eventually_async(
        Duration::from_secs(10),
        "the acquisition to wait for a lock",
        || async {
            !watcher
                .query(
                    "SELECT 1 FROM pg_stat_activity \
                     WHERE application_name = $1 AND wait_event_type = 'Lock'",
                    &[&id],
                )
                .await
                .unwrap()
                .is_empty()
        },
    )
    .await;
}

/// Three contenders on one election (the shared harness), and the election's name and table.
struct Election {
    name: String,
    run: Contenders<PostgresLeaseStore>,
}

impl std::ops::Deref for Election {
    type Target = Contenders<PostgresLeaseStore>;
    fn deref(&self) -> &Self::Target {
        &self.run
    }
}

impl std::ops::DerefMut for Election {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.run
    }
}

impl Election {
    async fn start(pg: &Postgres, prefix: &str) -> Self {
        Self::start_in(pg, prefix, None).await
    }

    /// Three contenders in `table` (the default table when `None`).
    async fn start_in(pg: &Postgres, prefix: &str, table: Option<&str>) -> Self {
        let name = unique_name(prefix);
        let (url, election, table) = (pg.url(), name.clone(), table.map(str::to_owned));
        let run = Contenders::start(
            3,
            Box::new(move |id| {
                let builder = builder(&url, &election, id);
                match &table {
                    None => builder,
                    Some(table) => builder.table(table),
                }
                .build()
                .expect("valid configuration")
            }),
        )
        .await;
        Self { name, run }
    }
}

/// Runs `sql` (with `$1` the election) as an operator while three contenders run: the shared
/// rules of a touched lease (see [`Contenders::touched`]), with a brand-new process that joins
/// right after told, under the guard, that the lease is withheld.
async fn touched(prefix: &str, sql: &str) {
    let pg = Postgres::start().await;
    let mut election = Election::start(&pg, prefix).await;
    let admin = operator(&pg).await;
    let sql = sql.replace("$1", &format!("'{}'", election.name));
    let act = async {
        admin.batch_execute(&sql).await.expect("the operator's SQL");
    };
    let touched = election.touched(prefix, true, LEASE + SLACK, act).await;
    touched.assert_withheld(LEASE);
}

leader_election_test_support::sql_operator_checks!(
    touched,
    DEFAULT_TABLE,
    garbage: "holder = 'garbage', lease_id = NULL, token = -7, expires_at = now() - interval '1 hour'"
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updating_then_deleting_the_lease_row_waits_out_the_lease() {
    touched(
        "update-delete",
        &format!(
            "UPDATE {DEFAULT_TABLE} SET holder = 'someone-else', expires_at = NULL \
             WHERE election = $1; \
             DELETE FROM {DEFAULT_TABLE} WHERE election = $1"
        ),
    )
    .await;
}

/// Forcing an election takes the holder's release, or the documented SQL; a plain `DELETE` of
/// a holder that stopped answering is not one (it may only be paused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_election_takes_the_release_or_the_documented_sql() {
    let pg = Postgres::start().await;
    let mut election = Election::start(&pg, "forced").await;
    let admin = operator(&pg).await;

    // A leader stops answering, and an operator deletes its row: nobody leads before the
    // lease it may still trust runs out.
    let hung = election.drop_the_leader();
    admin
        .execute(
            &format!("DELETE FROM {DEFAULT_TABLE} WHERE election = $1"),
            &[&election.name],
        )
        .await
        .unwrap();
    let deleted = Instant::now();
    election.add("fresh").await;
    let what = "forced: a plain DELETE of a hung leader's row";
    election
        .next_term_since(&hung, deleted, LEASE + SLACK, what)
        .await;
    assert_safe(&election.terms_trusting(&hung));

    // The operator knows this leader is gone for good: the documented SQL elects at once,
    // waking the followers with the release notice.
    election.one_leader(Duration::from_secs(5)).await;
    let force = election.leader().store().force_election_sql();
    let gone = election.drop_the_leader();
    election.add("fresh-2").await;
    eventually(Duration::from_secs(10), "followers to listen", || {
        election.contenders.iter().all(|c| c.store().is_listening())
    })
    .await;
    admin
        .batch_execute(&force)
        .await
        .expect("the documented SQL");
    let forced = Instant::now();
    let what = "forced: the documented SQL";
    let (_, after_force) = election.next_term_since(&gone, forced, LEASE, what).await;
    assert!(
        after_force < LEASE / 2,
        "the forced election took {after_force:?}"
    );

    // Through the API: the holder's release hands over at once.
    let released = election.leader().leadership().expect("a term");
    let stopped = Instant::now();
    election.leader().stop().await.unwrap();
    let what = "forced: a release";
    let (_, after_release) = election
        .next_term_since(&released, stopped, LEASE, what)
        .await;
    assert!(
        after_release < LEASE / 2,
        "the handover took {after_release:?}"
    );

    election.stop_and_check().await;
}

/// The store's own answer, without an election loop: after a `DELETE`, a brand-new store is
/// told the lease is withheld, for at most the rest of the old lease, and gets a greater token
/// afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brand_new_store_is_told_the_touched_lease_is_withheld() {
    let pg = Postgres::start().await;
    let election = unique_name("withheld");
    let old = contender(&pg, &election, "old");
    let store = old.store();
    store.connect().await.unwrap();
    let holder = LeaseRequest::new("old", LEASE);
    let asked = Instant::now();
    let AcquireOutcome::Acquired(lease) = store.try_acquire(&holder).await.unwrap() else {
        panic!("not acquired");
    };
    operator(&pg)
        .await
        .execute(
            &format!("DELETE FROM {DEFAULT_TABLE} WHERE election = $1"),
            &[&election],
        )
        .await
        .unwrap();
    let fresh = contender(&pg, &election, "fresh");
    let store = fresh.store();
    store.connect().await.unwrap();
    let request = LeaseRequest::new("fresh", LEASE);
    loop {
        match store.try_acquire(&request).await.unwrap() {
            AcquireOutcome::Withheld { wait, reason } => {
                assert_eq!(reason, WithholdReason::RecordTouched);
                assert!(wait <= LEASE, "withheld for {wait:?}");
                assert!(asked.elapsed() < LEASE + SLACK, "withheld past the lease");
                // Retries as a contender would, after the wait the store names (at most a
                // lease, asserted above): what is observed is each answer until the grant.
                tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
            }
            AcquireOutcome::Acquired(next) => {
                // The server kept the old lease for at least LEASE from before it was asked.
                assert!(
                    asked.elapsed() >= LEASE,
                    "acquired {:?} after the old lease was asked for",
                    asked.elapsed()
                );
                assert!(
                    next.token > lease.token,
                    "{} after {}",
                    next.token,
                    lease.token
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// The one race the guard's lock cannot cover: the guard row does not exist when an acquisition
/// starts, and another statement creates it, with a lease that is not the caller's, while the
/// acquisition runs. The acquisition must then fail as a whole, not take the lease row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_created_during_an_acquisition_fails_it_whole() {
    let pg = Postgres::start().await;
    let election = unique_name("race");
    let racer = contender(&pg, &election, "racer");
    let store = racer.store().clone();
    store.connect().await.unwrap();
    let mut admin = operator(&pg).await;
    let other = admin.transaction().await.unwrap();
    other
        .execute(
            &format!(
                "INSERT INTO {DEFAULT_TABLE} (election, holder, lease_id, token, expires_at) \
                 VALUES ($1, 'other', 'other-lease', 1, clock_timestamp() + interval '2 seconds')"
            ),
            &[&store.guard_key()],
        )
        .await
        .unwrap();
    let acquiring = tokio::spawn({
        let store = store.clone();
        async move { store.try_acquire(&LeaseRequest::new("racer", LEASE)).await }
    });
    // The acquisition waits for the uncommitted guard row.
    let watcher = operator(&pg).await;
    waits_for_a_lock(&watcher, "racer").await;
    other.commit().await.unwrap();
    let outcome = acquiring.await.unwrap();
    let err = outcome.expect_err("the acquisition must fail as a whole");
    assert!(!err.is_outcome_unknown(), "{err}");
    assert!(err.is_retryable(), "{err}");
    let rows = watcher
        .query(
            &format!("SELECT 1 FROM {DEFAULT_TABLE} WHERE election = $1"),
            &[&election],
        )
        .await
        .unwrap();
    assert!(
        rows.is_empty(),
        "the failed acquisition wrote the lease row"
    );
    match store
        .try_acquire(&LeaseRequest::new("racer", LEASE))
        .await
        .unwrap()
    {
        AcquireOutcome::Withheld { reason, .. } => {
            assert_eq!(reason, WithholdReason::RecordTouched);
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// An operator's `DELETE` of the election's rows that commits while a follower's acquisition
/// waits for the guard row's lock: the acquisition started while the lease was held, and must
/// still find the rows gone (it saw the lease held, so they vanished under a holder who may
/// trust them), not write a lease into the space the `DELETE` left. A run of the clock-step
/// check found two leaders this way: a follower woke at the lease's expected expiry just as
/// the operator's `DELETE` ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_committed_during_an_acquisition_lets_nobody_in() {
    let pg = Postgres::start().await;
    let election = unique_name("delete-race");
    let old = contender(&pg, &election, "old");
    let racer = contender(&pg, &election, "racer");
    let (holder, store) = (old.store().clone(), racer.store().clone());
    holder.connect().await.unwrap();
    store.connect().await.unwrap();
    let held = holder
        .try_acquire(&LeaseRequest::new("old", LEASE))
        .await
        .unwrap();
    assert!(matches!(held, AcquireOutcome::Acquired(_)), "{held:?}");
    let request = LeaseRequest::new("racer", LEASE);
    let seen = store.try_acquire(&request).await.unwrap();
    assert!(matches!(seen, AcquireOutcome::Held { .. }), "{seen:?}");
    let request = request.expecting_record(true);
    let mut admin = operator(&pg).await;
    let delete = admin.transaction().await.unwrap();
    delete
        .execute(
            &format!("DELETE FROM {DEFAULT_TABLE} WHERE election = $1 OR election = $2"),
            &[&election, &store.guard_key()],
        )
        .await
        .unwrap();
    let acquiring = tokio::spawn({
        let store = store.clone();
        let request = request.clone();
        async move { store.try_acquire(&request).await }
    });
    // The acquisition waits for the rows the uncommitted DELETE holds.
    let watcher = operator(&pg).await;
    waits_for_a_lock(&watcher, "racer").await;
    delete.commit().await.unwrap();
    match acquiring.await.unwrap().expect("an answer") {
        AcquireOutcome::Withheld { reason, .. } => {
            assert_eq!(reason, WithholdReason::RecordVanished);
        }
        other => panic!("the lease deleted under its holder was taken at once: {other:?}"),
    }
    let rows = watcher
        .query(
            &format!("SELECT holder FROM {DEFAULT_TABLE} WHERE election = $1"),
            &[&election],
        )
        .await
        .unwrap();
    assert!(rows.is_empty(), "a lease row was written after the DELETE");
}

/// A live lease row whose guard row is missing (the guard deleted alone, or a row written by
/// hand) is respected until it expires, and the next acquisition writes the guard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_lease_row_without_its_guard_row_is_respected() {
    let pg = Postgres::start().await;
    let election = unique_name("no-guard");
    let next = contender(&pg, &election, "next");
    let store = next.store();
    store.connect().await.unwrap();
    let admin = operator(&pg).await;
    let asked = Instant::now();
    admin
        .execute(
            &format!(
                "INSERT INTO {DEFAULT_TABLE} (election, holder, lease_id, token, expires_at) \
                 VALUES ($1, 'old', 'old-lease', 5, clock_timestamp() + interval '1 second')"
            ),
            &[&election],
        )
        .await
        .unwrap();
    let request = LeaseRequest::new("next", LEASE);
    let lease = loop {
        match store.try_acquire(&request).await.unwrap() {
            AcquireOutcome::Held {
                leader: Some(leader),
                expires_in: Some(wait),
            } => {
                assert_eq!(leader.instance_id, "old");
                assert!(
                    asked.elapsed() < LEASE + SLACK,
                    "held past the row's expiry"
                );
                // Retries as a contender would, after the wait the store names (the row
                // expires a second after it was written): each answer until the grant is
                // what is observed.
                tokio::time::sleep(wait.min(Duration::from_millis(200))).await;
            }
            AcquireOutcome::Acquired(lease) => break lease,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(
        asked.elapsed() >= Duration::from_secs(1),
        "took a live lease"
    );
    assert!(lease.token.get() > 5);
    let guard: String = admin
        .query_one(
            &format!("SELECT holder FROM {DEFAULT_TABLE} WHERE election = $1"),
            &[&store.guard_key()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(guard, "next");
}

/// `DELETE FROM` the whole table, the blanket clean-up an operator actually types, removes the
/// guard row with the lease row. A follower that saw the lease held and asks the moment after
/// must not take it: the holder renewed less than a lease ago and trusts it until its next
/// renewal fails. The holder then takes the lease again, and the election goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_every_row_of_the_table_keeps_followers_out() {
    let pg = Postgres::start().await;
    let table = unique_name("blanket").replace('-', "_");
    let election = Election::start_in(&pg, "blanket", Some(&table)).await;
    let admin = operator(&pg).await;
    let act = || async {
        admin
            .batch_execute(&format!("DELETE FROM {table}"))
            .await
            .expect("the operator's DELETE");
    };
    election
        .cleaned_up(3, LEASE + SLACK, LEASE + SLACK, act)
        .await;
}

/// Tokens come from the server's clock once both rows are gone: a server whose clock is behind
/// the last token (stepped back, restored from a snapshot) would mint a smaller one. Here the
/// last token is a minute ahead of the server's clock, which is what a clock stepped back by a
/// minute looks like to the statement: an operator sets both rows' tokens a minute ahead (the
/// holder loses its lease at its next renewal, and the next term's token is greater), then
/// deletes every row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emptying_the_table_on_a_clock_behind_the_last_token_still_gives_a_greater_token() {
    let pg = Postgres::start().await;
    let table = unique_name("clock_behind").replace('-', "_");
    let election = Election::start_in(&pg, "clock-behind", Some(&table)).await;
    let admin = operator(&pg).await;
    let old = election.leader().leadership().expect("a term");
    let ahead = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros()
        + 60_000_000) as i64;
    admin
        .batch_execute(&format!("UPDATE {table} SET token = {ahead}"))
        .await
        .expect("the operator's UPDATE");
    let ahead_term = election.next_term(&old, 2 * LEASE + SLACK).await;
    assert!(ahead_term.token.get() > ahead as u64, "{ahead_term:?}");
    election.one_leader(LEASE + SLACK).await;
    // Every contender has seen the token a minute ahead.
    election.followers_see_the_leader(LEASE + SLACK).await;
    let held = election.leader().leadership().expect("a term");
    let before = election.recorder.terms().len();
    admin
        .batch_execute(&format!("DELETE FROM {table}"))
        .await
        .expect("the operator's DELETE");
    // Whichever term comes next, its token must be greater.
    let next = election.nth_term(before, 2 * LEASE + SLACK).await;
    assert!(
        next.token > held.token(),
        "token {} after the table was emptied, {} before",
        next.token,
        held.token()
    );
    election.stop_and_check().await;
}

/// The server's wall clock really stepped back a minute (libfaketime; an NTP step, a VM
/// restored from a snapshot) while a holder leads: tokens come from `clock_timestamp()`, yet
/// the next term's token is greater, after a handover and after every row was deleted (the
/// guard row, then the highest token each contender saw, are floors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_clock_stepped_back_never_makes_a_token_go_back() {
    let Some(clock) = SteppedClock::for_test() else {
        return;
    };
    let pg = Postgres::start_with_clock(&clock).await;
    let table = unique_name("clock_step").replace('-', "_");
    let election = Election::start_in(&pg, "clock-step", Some(&table)).await;
    let admin = operator(&pg).await;
    election.followers_see_the_leader(LEASE + SLACK).await;
    let old = election.leader().leadership().expect("a term");
    clock.step(-60).expect("step the server's clock");
    // The server's clock is a minute behind this machine's (its next clock call re-reads it).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let behind: f64 = admin
            .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
            .await
            .expect("the server's clock")
            .get(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        if now - behind > 50.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server's clock was not stepped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A graceful handover on the stepped clock.
    let before = election.recorder.terms().len();
    election.leader().resign(LEASE).await.expect("resign");
    let handed = election.nth_term(before, 2 * LEASE + SLACK).await;
    assert!(
        handed.token > old.token(),
        "token {} after the server's clock stepped back, {} before",
        handed.token,
        old.token()
    );
    // Every row deleted: the server's clock alone would mint a smaller token.
    election.one_leader(LEASE + SLACK).await;
    election.followers_see_the_leader(LEASE + SLACK).await;
    let before = election.recorder.terms().len();
    admin
        .batch_execute(&format!("DELETE FROM {table}"))
        .await
        .expect("the operator's DELETE");
    let next = election.nth_term(before, 2 * LEASE + SLACK).await;
    assert!(
        next.token > handed.token,
        "token {} after the table was emptied on the stepped clock, {} before",
        next.token,
        handed.token
    );
    election.stop_and_check().await;
}

/// The same with the holder gone without a release (crashed or hung): the followers that saw
/// it hold the lease wait one lease from finding the table empty, so nobody leads before the
/// old holder's deadline, and then one of them leads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_every_row_under_a_crashed_holder_elects_after_its_lease() {
    let pg = Postgres::start().await;
    let table = unique_name("blanket_crash").replace('-', "_");
    let mut election = Election::start_in(&pg, "blanket-crash", Some(&table)).await;
    let admin = operator(&pg).await;
    let old = election.drop_the_leader();
    admin
        .batch_execute(&format!("DELETE FROM {table}"))
        .await
        .expect("the operator's DELETE");
    let deleted = Instant::now();
    for c in &election.contenders {
        assert!(
            !c.try_acquire_leadership().await.expect("an answer"),
            "{} took a deleted lease at once",
            c.instance_id()
        );
    }
    let what = "blanket delete under a crashed holder";
    election
        .next_term_since(&old, deleted, 2 * LEASE + SLACK, what)
        .await;
    election.stop_and_check().await;
    assert_safe(&election.terms_trusting(&old));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_deleted_by_an_operator_is_noticed_and_tokens_still_grow() {
    let pg = Postgres::start().await;
    let election = unique_table("deleted");
    let a = contender(&pg, &election, "a");
    let recorder = TermRecorder::new();
    recorder.attach(&a);
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    let first = a.leadership().unwrap();
    let admin = pg.admin().await;
    admin
        .execute(
            &format!(
                "DELETE FROM {} WHERE election = $1",
                leader_election_postgres::DEFAULT_TABLE
            ),
            &[&election],
        )
        .await
        .unwrap();
    // The next renewal finds the row gone: the term ends, and a new one begins.
    eventually(Duration::from_secs(5), "the term to end", || {
        !first.is_current()
    })
    .await;
    eventually(Duration::from_secs(5), "a new term", || a.is_leader()).await;
    assert!(a.leadership().unwrap().token() > first.token());
    a.stop().await.unwrap();
    recorder.assert_safe();
    assert_eq!(recorder.terms().len(), 2);
    assert_eq!(a.state().role, Role::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_row_is_an_error_not_a_panic_and_never_a_lease() {
    let pg = Postgres::start().await;
    let election = unique_table("garbage");
    let a = contender(&pg, &election, "a");
    a.store().connect().await.unwrap();
    let admin = pg.admin().await;
    admin
        .execute(
            &format!(
                "INSERT INTO {} (election, holder, lease_id, token, expires_at) \
                 VALUES ($1, 'someone', NULL, -5, now() + interval '1 hour')",
                leader_election_postgres::DEFAULT_TABLE
            ),
            &[&election],
        )
        .await
        .unwrap();
    let leader = a.current_leader().await;
    assert!(leader.is_err(), "{leader:?}");
    let errors = ErrorCount::attach(&a);
    a.start().await.unwrap();
    // Every attempt reads the row and fails; a never leads meanwhile.
    eventually(Duration::from_secs(5), "two failed attempts", || {
        assert!(!a.is_leader(), "a leads over a garbage row");
        errors.get() >= 2
    })
    .await;
    assert!(!a.is_leader());
    a.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_grow_after_the_row_is_deleted_even_for_a_brand_new_store() {
    let pg = Postgres::start().await;
    let election = unique_table("forgotten");
    let admin = pg.admin().await;
    let mut last = None;
    for round in 0..4 {
        // A brand-new store each round: nothing remembered in the process, its own pool.
        let fresh = contender(&pg, &election, &format!("p{round}"));
        let store = fresh.store();
        store.connect().await.unwrap();
        let request = LeaseRequest::new(format!("p{round}"), LEASE);
        let AcquireOutcome::Acquired(lease) = store.try_acquire(&request).await.unwrap() else {
            panic!("round {round}: not acquired");
        };
        if let Some(last) = last {
            assert!(
                lease.token > last,
                "round {round}: token {} after {last}",
                lease.token
            );
        }
        last = Some(lease.token);
        if round % 2 == 0 {
            // An operator deletes the lease row and its guard: every stored token is gone.
            admin
                .execute(
                    &format!(
                        "DELETE FROM {} WHERE election IN ($1, $2)",
                        leader_election_postgres::DEFAULT_TABLE
                    ),
                    &[&election, &store.guard_key()],
                )
                .await
                .unwrap();
        } else {
            assert!(store.release(&request, &lease).await.unwrap());
        }
    }
}

/// The election record is a row of its own (the name, `chr(31)`, `record`): the documented
/// `DELETE` of the lease row and the forced-election SQL leave it as it was, the lease
/// statements never take it for a lease, and a version is never given again after the row is
/// deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_record_row_outlives_the_operators_sql_on_the_lease() {
    let pg = Postgres::start().await;
    let mut election = Election::start(&pg, "record").await;
    let admin = operator(&pg).await;
    let store = election.leader().store().clone();
    assert_eq!(store.record_key(), format!("{}\u{1f}record", election.name));
    let v1 = store
        .write_record(None, b"ran 1")
        .await
        .expect("write")
        .expect("no record yet");

    // At the documented place, spelled as the README does.
    let record_row = format!(
        "SELECT token, metadata, holder, lease_id, expires_at IS NULL FROM {DEFAULT_TABLE} \
         WHERE election = $1 || chr(31) || 'record'"
    );
    let row = admin
        .query_one(&record_row, &[&election.name])
        .await
        .expect("the record row");
    assert_eq!(row.get::<_, i64>(0).to_string(), v1.as_str());
    assert_eq!(row.get::<_, Vec<u8>>(1), b"ran 1");
    assert_eq!(row.get::<_, Option<String>>(2), None);
    assert_eq!(row.get::<_, Option<String>>(3), None);
    assert!(row.get::<_, bool>(4));

    // The documented operator SQL on the lease: a DELETE of the lease row (leadership comes
    // back after the lease), then the forced election.
    let deleted = election.leader().leadership().expect("a term");
    admin
        .execute(
            &format!("DELETE FROM {DEFAULT_TABLE} WHERE election = $1"),
            &[&election.name],
        )
        .await
        .unwrap();
    election.next_term(&deleted, LEASE * 2 + SLACK).await;
    // The forced election, for a leader known to be gone.
    election.one_leader(Duration::from_secs(5)).await;
    let gone = election.drop_the_leader();
    eventually(LEASE, "the dropped leader's term to end", || {
        election.recorder.current().is_none()
    })
    .await;
    admin
        .batch_execute(&store.force_election_sql())
        .await
        .expect("the documented SQL");
    election.next_term(&gone, LEASE * 2 + SLACK).await;
    assert_record(&store, &v1, b"ran 1").await;
    // The lease row is the lease's, the record row the record's.
    let leader = store.current_leader().await.unwrap().expect("a leader");
    assert_eq!(leader.instance_id, election.leader().instance_id());
    election.stop_and_check().await;

    // Deleting the record row forgets the record; the next version is a new one.
    admin
        .execute(
            &format!("DELETE FROM {DEFAULT_TABLE} WHERE election = $1 || chr(31) || 'record'"),
            &[&election.name],
        )
        .await
        .unwrap();
    assert_eq!(store.read_record().await.expect("read"), None);
    let v2 = store
        .write_record(None, b"ran 1 again")
        .await
        .expect("write")
        .expect("no record after the DELETE");
    assert!(
        v2.as_str().parse::<i64>().unwrap() > v1.as_str().parse::<i64>().unwrap(),
        "{v2} after {v1}"
    );

    // A record row without data was not written by this library: invalid data, and never
    // overwritten.
    admin
        .execute(
            &format!(
                "UPDATE {DEFAULT_TABLE} SET metadata = NULL \
                 WHERE election = $1 || chr(31) || 'record'"
            ),
            &[&election.name],
        )
        .await
        .unwrap();
    let err = store
        .read_record()
        .await
        .expect_err("a record without data");
    assert!(
        matches!(err, leader_election::Error::InvalidData { .. }),
        "{err}"
    );
    assert_eq!(store.write_record(Some(&v2), b"x").await.unwrap(), None);
    assert_eq!(store.write_record(None, b"x").await.unwrap(), None);
    let row = admin
        .query_one(&record_row, &[&election.name])
        .await
        .expect("the record row");
    assert_eq!(row.get::<_, Option<Vec<u8>>>(1), None);
}
