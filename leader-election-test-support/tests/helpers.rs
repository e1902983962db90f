//! The small helpers: bounded polling that names what it waited for, and free ports.

use std::time::Duration;

use leader_election_test_support::{eventually, eventually_some, lazy};

#[tokio::test]
async fn eventually_returns_once_the_check_holds() {
    let mut polls = 0;
    eventually(Duration::from_secs(5), "three polls", || {
        polls += 1;
        polls >= 3
    })
    .await;
    assert_eq!(polls, 3);
    let mut n = 0;
    let value = eventually_some(Duration::from_secs(5), "a value", || {
        n += 1;
        let seen = n;
        async move { (seen >= 2).then_some(seen * 10) }
    })
    .await;
    assert_eq!(value, 20);
}

#[tokio::test]
#[should_panic(expected = "waiting for never, state 7")]
async fn eventually_gives_up_after_its_bound_with_a_lazy_description() {
    let state = 7;
    eventually(
        Duration::from_millis(50),
        lazy(|| format!("never, state {state}")),
        || false,
    )
    .await;
}

#[test]
fn free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            let mut p = t.split_whitespace().map(|s| s.parse::<u16>().unwrap());
            Some((p.next()?, p.next()?))
        })
        .unwrap_or((32_768, 60_999));
    let ports: Vec<u16> = (0..200)
        .map(|_| leader_election_test_support::free_port())
        .collect();
    let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
    assert_eq!(distinct.len(), ports.len(), "a port handed out twice");
    for port in ports {
        assert!(
            !(low..=high).contains(&port),
            "{port} is in the ephemeral range {low}-{high}, where client connections take ports"
        );
        std::net::TcpListener::bind(("127.0.0.1", port)).expect("still free");
    }
}
