//! The builder's checks, none of which needs a server.

use std::time::Duration;

use leader_election::ElectionBuilder;

use super::*;

#[test]
fn a_missing_connection_is_an_error() {
    let err = PostgresLeaderElection::builder().build().unwrap_err();
    assert!(
        matches!(
            err,
            BuildError::MissingConnection {
                backend: "PostgreSQL",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_bad_connection_string_does_not_echo_the_password() {
    let err = PostgresLeaderElection::builder()
        .connection_string("postgres://app:hunter2@localhost:notaport/db")
        .build()
        .unwrap_err();
    assert!(
        matches!(err, BuildError::InvalidConnectionString(_)),
        "{err}"
    );
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let builder =
        PostgresLeaderElection::builder().connection_string("host=localhost password=hunter2");
    assert!(!format!("{builder:?}").contains("hunter2"));
}

#[test]
fn bad_names_and_options_are_errors() {
    let base = || PostgresLeaderElection::builder().connection_string("host=localhost");
    assert!(matches!(
        base().table("Bad-Name").build().unwrap_err(),
        BuildError::InvalidName { field: "table", .. }
    ));
    assert!(matches!(
        base().election("").build_store().unwrap_err(),
        BuildError::InvalidName {
            field: "election",
            ..
        }
    ));
    assert!(matches!(
        base().pool_size(0).build().unwrap_err(),
        BuildError::Options(e) if e.field == "pool_size"
    ));
    assert!(matches!(
        base()
            .connection_string("host=db sslmode=verify")
            .build()
            .unwrap_err(),
        BuildError::InvalidConnectionString(_)
    ));
    // The store alone checks the options too: the pool's timeouts come from them.
    assert!(matches!(
        base()
            .renew_interval(Duration::from_secs(60))
            .build_store()
            .unwrap_err(),
        BuildError::Options(e) if e.field == "renew_interval"
    ));
}

#[tokio::test]
async fn build_needs_no_server() {
    let election = PostgresLeaderElection::builder()
        .connection_string("host=127.0.0.1 port=1 user=nobody password=hunter2")
        .election("jobs")
        .build()
        .unwrap();
    assert!(!election.is_leader());
    assert!(!format!("{election:?} {:?}", election.store()).contains("hunter2"));
}

#[test]
fn the_last_of_a_connection_string_and_a_pool_wins() {
    let pool = || {
        let manager =
            deadpool_postgres::Manager::new(tokio_postgres::Config::new(), tokio_postgres::NoTls);
        Pool::builder(manager).build().unwrap()
    };
    let bad = "postgres://app:hunter2@localhost:notaport/db";
    let err = PostgresLeaderElection::builder()
        .pool(pool(), None)
        .connection_string(bad)
        .build_store()
        .unwrap_err();
    assert!(
        matches!(err, BuildError::InvalidConnectionString(_)),
        "{err}"
    );
    PostgresLeaderElection::builder()
        .connection_string(bad)
        .pool(pool(), None)
        .build_store()
        .expect("the pool, not the connection string");
}
