//! TLS end to end, against one PostgreSQL server that accepts TCP connections over TLS only
//! (`ssl=on`, `hostssl` lines in `pg_hba.conf`, `hostnossl ... reject`), with certificates
//! made at start: each `sslmode`, the release listener over TLS, a client certificate, and the
//! errors for a wrong CA or host name.
#![cfg(feature = "tls")]

mod common;

use leader_election::{ElectionBuilder, TlsBuilder};
use std::time::Duration;

use common::{LEASE, builder, graceful_handover, release_heard, renewed_past_a_lease};
use leader_election::LeaseStore;
use leader_election::testing::TermRecorder;
use leader_election_fixtures::Postgres;
use leader_election_postgres::{PostgresLeaderElectionBuilder, PostgresLeaseStore};
use leader_election_test_support::{ErrorCount, TestCertificates, eventually, unique_table};
use tokio::time::Instant;

/// How long a refused connection may take to fail: a few operation timeouts (500 ms).
const FAILS_WITHIN: Duration = Duration::from_secs(3);

/// The error and its sources, joined: what a log line would show.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Connects `builder`'s store and answers the error, which must come within [`FAILS_WITHIN`].
async fn refused(builder: PostgresLeaderElectionBuilder) -> String {
    let store = builder.build_store().expect("valid configuration");
    let started = Instant::now();
    let err = store.connect().await.expect_err("connected");
    let took = started.elapsed();
    assert!(took < FAILS_WITHIN, "failing took {took:?}");
    chain(&err)
}

/// Whether the connections of the store's pool use TLS (`pg_stat_ssl`).
async fn pool_uses_tls(store: &PostgresLeaseStore) -> bool {
    store
        .pool()
        .get()
        .await
        .expect("a pooled connection")
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_end_to_end() {
    let pg = Postgres::start_tls().await;
    let certs = pg.tls().expect("a TLS server").clone();
    plain_tcp_is_refused(&pg).await;
    verify_full_elects_and_hands_over_by_release_notice(&pg, &certs).await;
    require_encrypts_without_verifying(&pg).await;
    verify_ca_skips_the_host_name_and_verify_full_does_not(&pg, &certs).await;
    a_wrong_ca_is_a_clear_tls_error(&pg).await;
    a_client_certificate_logs_in(&pg, &certs).await;
}

async fn plain_tcp_is_refused(pg: &Postgres) {
    let url = format!("{} sslmode=disable", pg.url());
    let message = refused(builder(&url, "plain", "p")).await;
    assert!(
        message.contains("pg_hba.conf") && message.contains("no encryption"),
        "{message}"
    );
    // The error's own message, as a log line or the tester prints it without its sources,
    // says what the server said and its SQLSTATE, not deadpool's "creating a new object: db
    // error".
    let store = builder(&url, "plain", "p").build_store().expect("valid");
    let message = store.connect().await.expect_err("connected").to_string();
    assert!(
        message.contains("pg_hba.conf")
            && message.contains("no encryption")
            && message.contains("SQLSTATE 28000")
            && !message.contains("db error"),
        "{message}"
    );
}

/// Two contenders with `verify-full`, one trusting the CA from PEM given to the builder, the
/// other from `sslrootcert`: they elect, their listeners listen over TLS, and a graceful stop
/// hands over at once by the release notice.
async fn verify_full_elects_and_hands_over_by_release_notice(
    pg: &Postgres,
    certs: &TestCertificates,
) {
    let election = unique_table("verify_full");
    let url = format!("{} sslmode=verify-full", pg.url());
    let a = builder(&url, &election, "a")
        .tls_ca_pem(certs.ca_pem.as_bytes())
        .build()
        .unwrap();
    let with_file = format!(
        "{url} sslrootcert={}",
        pg.ca_file().expect("a CA file").display()
    );
    let b = builder(&with_file, &election, "b").build().unwrap();
    let (sa, sb) = (a.store().clone(), b.store().clone());
    sa.connect().await.expect("connect with verify-full");
    sb.connect().await.expect("connect with verify-full");
    assert!(pool_uses_tls(&sa).await && pool_uses_tls(&sb).await);
    eventually(Duration::from_secs(10), "both listen over TLS", || {
        sa.is_listening() && sb.is_listening()
    })
    .await;
    let listeners_on_tls: i64 = pg
        .admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.query LIKE 'LISTEN %' AND s.ssl",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(listeners_on_tls >= 2, "{listeners_on_tls} listeners on TLS");
    assert!(
        release_heard(&sa, &sb, Duration::from_secs(5)).await,
        "no release notice over TLS"
    );
    // And through the election: a graceful stop hands over at once.
    let recorder = TermRecorder::new();
    recorder.attach(&a).attach(&b);
    let errors = ErrorCount::attach(&a);
    let handover = graceful_handover(&a, &b).await;
    assert!(
        handover < LEASE / 2,
        "handover took {handover:?}: no release notice"
    );
    assert_eq!(errors.get(), 0, "errors on a");
    recorder.assert_safe();
    assert_eq!(recorder.terms().len(), 2);
}

/// `sslmode=require` without a CA: encrypted, any certificate accepted (the test CA is in no
/// trust store), elected and renewed.
async fn require_encrypts_without_verifying(pg: &Postgres) {
    let url = format!("{} sslmode=require", pg.url());
    let election = unique_table("require");
    let a = builder(&url, &election, "a").build().unwrap();
    let errors = ErrorCount::attach(&a);
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    assert!(pool_uses_tls(a.store()).await);
    // Renewals over TLS keep the same term past a whole lease.
    renewed_past_a_lease(&a).await;
    a.stop().await.unwrap();
    assert_eq!(errors.get(), 0);
}

/// A host name the certificate was not issued for (`host` is the name TLS checks, `hostaddr`
/// where to connect): `verify-ca` accepts it, `verify-full` refuses it naming the cause.
async fn verify_ca_skips_the_host_name_and_verify_full_does_not(
    pg: &Postgres,
    certs: &TestCertificates,
) {
    let other_name = |mode: &str| {
        format!(
            "host=db.invalid hostaddr=127.0.0.1 port={} user=postgres dbname=postgres \
             sslmode={mode}",
            pg.port()
        )
    };
    let election = unique_table("names");
    let store = builder(&other_name("verify-ca"), &election, "a")
        .tls_ca_pem(certs.ca_pem.as_bytes())
        .build_store()
        .unwrap();
    store.connect().await.expect("verify-ca ignores the name");
    assert!(pool_uses_tls(&store).await);
    let message = refused(
        builder(&other_name("verify-full"), &election, "b").tls_ca_pem(certs.ca_pem.as_bytes()),
    )
    .await;
    assert!(
        message.contains("TLS") && message.contains("not valid for name"),
        "{message}"
    );
}

/// A CA that did not sign the server's certificate: a TLS error naming the certificate, fast.
/// (The stranger CA has the test CA's name, so webpki finds it and reports `BadSignature`; a
/// CA of another name gives `UnknownIssuer`.)
async fn a_wrong_ca_is_a_clear_tls_error(pg: &Postgres) {
    let stranger = TestCertificates::generate();
    for mode in ["verify-full", "verify-ca", "require"] {
        let url = format!("{} sslmode={mode}", pg.url());
        let message =
            refused(builder(&url, "wrong-ca", "a").tls_ca_pem(stranger.ca_pem.as_bytes())).await;
        assert!(
            message.contains("TLS handshake") && message.contains("invalid peer certificate"),
            "{mode}: {message}"
        );
    }
}

/// The role the server authenticates by certificate (`cert` in `pg_hba.conf`) logs in with the
/// client certificate, and is refused without it.
async fn a_client_certificate_logs_in(pg: &Postgres, certs: &TestCertificates) {
    pg.admin()
        .await
        .batch_execute(&format!(
            "CREATE ROLE \"{}\" LOGIN SUPERUSER",
            Postgres::CERT_ROLE
        ))
        .await
        .unwrap();
    let url = format!(
        "host=127.0.0.1 port={} user='{}' dbname=postgres sslmode=verify-full",
        pg.port(),
        Postgres::CERT_ROLE
    );
    let election = unique_table("client_cert");
    let message = refused(builder(&url, &election, "a").tls_ca_pem(certs.ca_pem.as_bytes())).await;
    assert!(message.contains("certificate"), "{message}");
    let a = builder(&url, &election, "a")
        .tls_ca_pem(certs.ca_pem.as_bytes())
        .tls_client_cert_pem(
            certs.client_cert_pem.as_bytes(),
            certs.client_key_pem.as_bytes(),
        )
        .build()
        .unwrap();
    a.start().await.unwrap();
    eventually(Duration::from_secs(10), "a leads", || a.is_leader()).await;
    assert!(pool_uses_tls(a.store()).await);
    a.stop().await.unwrap();
}
