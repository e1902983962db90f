//! Least privilege on a real MariaDB server: an account with `SELECT`, `INSERT` and `UPDATE` on
//! a table its owner made (the README's setup SQL) runs elections, hand-overs and records; an
//! account missing one of them, or a table missing where the account may not create it, fails
//! at `connect` with the server's own message and changes nothing.

mod common;

use std::time::Duration;

use leader_election::{ElectionBuilder, LeaseStore};
use leader_election_fixtures::MariaDb;
use leader_election_mysql::MysqlLeaseStore;
use leader_election_test_support::{one_leader, token, unique_name, unique_table};

/// A new account `user` (password `pw`) on `db`, with `grants` (SQL after `GRANT`, naming the
/// account as `{account}`).
fn account(db: &MariaDb, user: &str, grants: &[String]) -> String {
    let account = format!("'{user}'@'127.0.0.1'");
    db.sql(&format!("CREATE USER {account} IDENTIFIED BY 'pw'"));
    for grant in grants {
        db.sql(&format!("GRANT {}", grant.replace("{account}", &account)));
    }
    db.url_as(user, "pw")
}

fn store_as(url: &str, table: &str, election: &str) -> MysqlLeaseStore {
    common::builder(url, election, "store")
        .table(table)
        .build_store()
        .expect("valid configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_setup_sql_is_all_an_account_needs() {
    let db = common::server().await;
    let table = unique_table("least");
    let name = unique_name("least");
    let user = unique_table("app");
    // The owner runs the setup SQL the store gives for this table and account.
    let setup = store_as(&db.url(), &table, &name).setup_sql(&format!("'{user}'@'127.0.0.1'"));
    db.sql(&format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'pw'; {setup}"
    ));
    let url = db.url_as(&user, "pw");
    let elections: Vec<_> = (0..2)
        .map(|i| {
            common::builder(&url, &name, &format!("c{i}"))
                .table(&table)
                .build()
                .expect("valid configuration")
        })
        .collect();
    for e in &elections {
        e.start().await.expect("start");
    }
    let refs: Vec<_> = elections.iter().collect();
    let leader = one_leader(&refs, Duration::from_secs(5)).await;
    let first = token(&elections[leader]);
    elections[leader].stop().await.expect("stop");
    let next = one_leader(&refs, common::LEASE * 2).await;
    assert!(token(&elections[next]) > first);
    let store = elections[next].store();
    let v = store
        .write_record(None, b"r")
        .await
        .expect("write")
        .expect("written");
    assert!(
        store
            .write_record(Some(&v), b"s")
            .await
            .expect("write")
            .is_some()
    );
    for e in &elections {
        e.stop().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_privilege_fails_connect_with_the_servers_message() {
    let db = common::server().await;
    let table = unique_table("no_update");
    let name = unique_name("no-update");
    store_as(&db.url(), &table, &name)
        .connect()
        .await
        .expect("the owner creates the table");
    let user = unique_table("ro");
    let url = account(
        &db,
        &user,
        &[format!(
            "SELECT, INSERT ON {}.{table} TO {{account}}",
            MariaDb::DATABASE
        )],
    );
    let err = store_as(&url, &table, &name)
        .connect()
        .await
        .expect_err("an account without UPDATE");
    let message = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(!err.is_retryable(), "{message}");
    assert!(message.contains("UPDATE command denied"), "{message}");
    // Nothing was left behind: no guard row.
    let rows = db.sql(&format!("SELECT COUNT(*) FROM {table}"));
    assert_eq!(rows.trim(), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_table_without_create_fails_connect_with_the_servers_message() {
    let db = common::server().await;
    let table = unique_table("missing");
    let user = unique_table("nocreate");
    let url = account(
        &db,
        &user,
        &[format!(
            "SELECT, INSERT, UPDATE ON {}.* TO {{account}}",
            MariaDb::DATABASE
        )],
    );
    let err = store_as(&url, &table, &unique_name("missing"))
        .connect()
        .await
        .expect_err("no table and no CREATE");
    let message = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(!err.is_retryable(), "{message}");
    assert!(message.contains("CREATE command denied"), "{message}");
}
