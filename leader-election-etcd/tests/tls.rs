//! etcd with mutual TLS (`--client-cert-auth`): contenders with the CA and a client
//! certificate lead and hand over; without the client certificate, or without trusting the CA,
//! they are refused.

#![cfg(feature = "tls")]

mod common;

use leader_election::{ElectionBuilder, TlsBuilder};
use std::time::Duration;

use common::builder;
use leader_election::LeaseStore;
use leader_election_test_support::{EtcdCluster, eventually, unique_name};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contenders_with_a_client_certificate_lead_and_hand_over() {
    let etcd = EtcdCluster::start_tls(1).await;
    assert!(etcd.endpoint(0).starts_with("https://"));
    let key = unique_name("tls");
    let elections: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|id| {
            builder(&etcd.endpoints(), &key, id)
                .tls_ca_file(etcd.ca_file())
                .tls_client_cert_file(etcd.client_cert_file())
                .tls_client_key_file(etcd.client_key_file())
                .build()
                .unwrap()
        })
        .collect();
    for e in &elections {
        e.start().await.unwrap();
    }
    let mut leader = 9;
    eventually(Duration::from_secs(5), "a leader over TLS", || {
        leader = elections.iter().position(|e| e.is_leader()).unwrap_or(9);
        leader < 2
    })
    .await;
    let first = elections[leader].leadership().unwrap().token();
    elections[leader].stop().await.unwrap();
    let other = 1 - leader;
    eventually(Duration::from_secs(2), "a handover over TLS", || {
        elections[other].is_leader()
    })
    .await;
    assert!(elections[other].leadership().unwrap().token() > first);
    elections[other].stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_the_certificate_or_the_ca_is_refused() {
    let etcd = EtcdCluster::start_tls(1).await;
    let key = unique_name("tls-refused");
    // Trusts the CA but presents no client certificate.
    let store = builder(&etcd.endpoints(), &key, "a")
        .tls_ca_file(etcd.ca_file())
        .build_store()
        .unwrap();
    assert!(store.connect().await.is_err());
    // Presents the certificate but trusts only the system's roots.
    let store = builder(&etcd.endpoints(), &key, "a")
        .tls_client_cert_file(etcd.client_cert_file())
        .tls_client_key_file(etcd.client_key_file())
        .build_store()
        .unwrap();
    assert!(store.connect().await.is_err());
}
