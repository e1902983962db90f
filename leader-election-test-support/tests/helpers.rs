//! The polling helpers: bounded, and naming what they waited for.

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
