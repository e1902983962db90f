//! etcd with authentication (`etcdctl auth enable`): a user limited to the election's keys
//! leads, renews, releases and announces candidates; a wrong password is a clear error that is
//! not retried.

mod common;

use leader_election::ElectionBuilder;
use std::time::Duration;

use common::builder;
use leader_election::{LeaseStore, Operation};
use leader_election_test_support::{EtcdCluster, eventually, unique_name};

const ROOT: &str = "root:root-password";

async fn as_root(etcd: &EtcdCluster, args: &[&str]) {
    let mut all = vec!["--user", ROOT];
    all.extend_from_slice(args);
    etcd.etcdctl(&all).await.unwrap();
}

/// Enables authentication with a root user and a user `app` that may read and write `key`
/// and the keys below it.
async fn enable_auth(etcd: &EtcdCluster, key: &str) {
    etcd.etcdctl(&["user", "add", ROOT, "--interactive=false"])
        .await
        .unwrap();
    etcd.etcdctl(&["user", "grant-role", "root", "root"])
        .await
        .unwrap();
    etcd.etcdctl(&["auth", "enable"]).await.unwrap();
    as_root(etcd, &["role", "add", "leader"]).await;
    as_root(
        etcd,
        &[
            "role",
            "grant-permission",
            "leader",
            "readwrite",
            key,
            "--prefix=true",
        ],
    )
    .await;
    as_root(
        etcd,
        &["user", "add", "app:app-password", "--interactive=false"],
    )
    .await;
    as_root(etcd, &["user", "grant-role", "app", "leader"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_limited_to_the_election_keys_leads_and_hands_over() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("auth");
    enable_auth(&etcd, &key).await;
    let elections: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| {
            builder(&etcd.endpoints(), &key, id)
                .user("app", "app-password")
                .build()
                .unwrap()
        })
        .collect();
    for e in &elections {
        e.start().await.unwrap();
    }
    let mut leader = 0;
    eventually(Duration::from_secs(5), "a leader", || {
        leader = elections.iter().position(|e| e.is_leader()).unwrap_or(9);
        leader < 2
    })
    .await;
    let first = elections[leader].leadership().unwrap().token();
    elections[leader].stop().await.unwrap();
    let other = 1 - leader;
    eventually(Duration::from_secs(2), "a handover", || {
        elections[other].is_leader()
    })
    .await;
    assert!(elections[other].leadership().unwrap().token() > first);
    elections[other].stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_and_not_retried() {
    let etcd = EtcdCluster::single().await;
    let key = unique_name("auth-wrong");
    enable_auth(&etcd, &key).await;
    let store = builder(&etcd.endpoints(), &key, "a")
        .user("app", "not-the-password")
        .build_store()
        .unwrap();
    let err = store.connect().await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    assert!(
        matches!(
            err,
            leader_election::Error::Backend {
                operation: Operation::Connect,
                ..
            }
        ),
        "{err}"
    );
}
