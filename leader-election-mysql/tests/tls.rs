//! TLS against a real MariaDB server that accepts TCP connections over TLS only
//! (`require_secure_transport`): a store that trusts the server's CA elects and hands over; one
//! without TLS is refused with the server's own message; one that trusts another CA never
//! connects.
#![cfg(feature = "tls")]

mod common;

use std::time::Duration;

use leader_election::{ElectionBuilder, LeaseStore, TlsBuilder};
use leader_election_fixtures::{MariaDb, TestCertificates};
use leader_election_test_support::{one_leader, token, unique_name};

/// The server of this binary: TLS only, with its certificates.
async fn server() -> (MariaDb, TestCertificates) {
    let certs = TestCertificates::generate();
    (MariaDb::start_tls(&certs).await, certs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_servers_ca_elects_and_hands_over() {
    let (db, certs) = server().await;
    let name = unique_name("tls");
    let elections: Vec<_> = (0..2)
        .map(|i| {
            common::builder(&db.url(), &name, &format!("c{i}"))
                .tls_ca_pem(certs.ca_pem.clone())
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
    for e in &elections {
        e.stop().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_the_server_refuses_and_says_why() {
    let (db, _) = server().await;
    let store = common::store(&db, &unique_name("plain"));
    let err = store.connect().await.expect_err("a plain connection");
    let message = format!("{err}: {:?}", std::error::Error::source(&err));
    // MariaDB 10.11 refuses the login itself ("Access denied"); MySQL 8 says "insecure
    // transport". Either way the server's own words, and nothing to retry.
    assert!(
        message.contains("insecure transport") || message.contains("Access denied"),
        "{message}"
    );
    assert!(!err.is_retryable(), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_certificate_from_another_ca_is_refused() {
    let (db, _) = server().await;
    let other = TestCertificates::generate();
    let store = common::builder(&db.url(), &unique_name("wrong-ca"), "store")
        .tls_ca_pem(other.ca_pem)
        .build_store()
        .expect("valid configuration");
    let err = store
        .connect()
        .await
        .expect_err("an untrusted server certificate");
    let message = format!("{err}: {:?}", std::error::Error::source(&err));
    assert!(message.to_lowercase().contains("certificate"), "{message}");
}
