//! What the MySQL tests share: one MariaDB server per test binary, the contenders' builder and
//! timings.

#![allow(dead_code, unused_imports)] // Each test binary uses a part.

use std::sync::Arc;

use leader_election::{ElectionBuilder, LeaderElection};
use leader_election_fixtures::MariaDb;
use leader_election_mysql::{MysqlLeaderElection, MysqlLeaderElectionBuilder, MysqlLeaseStore};
use leader_election_test_support::Shared;

/// The lease of the tests' contenders: the shared one.
pub(crate) use leader_election_test_support::operator::LEASE;

/// The server of this test binary while any test holds it (see [`Shared`]): the first test
/// starts it, the last stops it (by PID, its folder removed).
pub(crate) async fn server() -> Arc<MariaDb> {
    static SHARED: Shared<MariaDb> = Shared::new();
    SHARED.get(MariaDb::start).await
}

/// The options the tests share, for contender `id`: the shared ones (a 2 s lease renewed
/// every 500 ms, retries from 200 ms up to 500 ms, a 500 ms operation timeout).
pub(crate) use leader_election_test_support::operator::options;

/// A builder for contender `id` of `election` on the server at `url`, with [`options`].
pub(crate) fn builder(url: &str, election: &str, id: &str) -> MysqlLeaderElectionBuilder {
    MysqlLeaderElection::builder()
        .url(url)
        .election(election)
        .options(options(id))
}

/// A store for `election` on `db`, with [`options`].
pub(crate) fn store(db: &MariaDb, election: &str) -> MysqlLeaseStore {
    builder(&db.url(), election, "store")
        .build_store()
        .expect("valid configuration")
}

/// Contender `id` of `election` on `db`, with [`options`].
pub(crate) fn election(db: &MariaDb, election: &str, id: &str) -> LeaderElection<MysqlLeaseStore> {
    builder(&db.url(), election, id)
        .build()
        .expect("valid configuration")
}
