//! Many contenders racing for many terms on a real PostgreSQL server: never two leaders at once.

use std::time::Duration;

use leader_election::testing::racing_handovers;
use leader_election_test_support::postgres::election;
use leader_election_test_support::{Postgres, unique_table};

const CONTENDERS: usize = 6;
const TERMS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_racing_for_many_terms_never_overlap() {
    let pg = Postgres::start().await;
    let table = unique_table("race");
    let elections: Vec<_> = (0..CONTENDERS)
        .map(|i| election(&pg, &table, &format!("c{i}")))
        .collect();
    // The shared race: leaders hand over again and again while followers grab by hand; the
    // shared checker sees no overlap and increasing tokens after every handover.
    let handovers = racing_handovers(&elections, TERMS).await;
    let p50 = handovers[handovers.len() / 2];
    let max = handovers[handovers.len() - 1];
    eprintln!("{CONTENDERS} contenders; stop() -> next term: p50 {p50:?}, max {max:?}");
    // Graceful handovers go through the release notice (LISTEN/NOTIFY), not the lease expiry.
    assert!(p50 < Duration::from_millis(500), "p50 handover {p50:?}");
}
