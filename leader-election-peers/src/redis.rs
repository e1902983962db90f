//! Redis: this project's Redis backend next to a Redlock lock loop on `rslock` (the `SET NX PX`
//! lock most Rust services use for this), on one redis-server, in one run, with the same
//! lease.

use std::sync::Arc;
use std::time::Duration;

use leader_election::ElectionBuilder;
use leader_election_fixtures::RedisServer;
use leader_election_redis::RedisLeaderElection;
use rslock::LockManager;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ours::{self, Handover, Ours};
use crate::side::{Order, Peers, Shared, measure};
use crate::{Row, Settings};

/// Runs every side on one server and returns their rows.
pub(crate) async fn run(settings: &Settings) -> Vec<Row> {
    let server = RedisServer::start().await;
    let url = server.url();
    println!(
        "Redis: one redis-server on 127.0.0.1, {} contenders, lease {:?}, a handover every {:?}",
        settings.contenders, settings.lease, settings.hold
    );
    let mut rows = Vec::new();
    let mut locks = lockers(&url, settings);
    rows.push(
        measure(
            &mut locks,
            "Redis",
            "rslock (Redlock: `SET NX PX`, retried; extend; unlock)",
            settings,
        )
        .await,
    );
    for (handover, what) in [
        (
            Handover::Stop,
            "leader-election-redis, `stop` (then `start`)",
        ),
        (Handover::Resign, "leader-election-redis, `resign`"),
    ] {
        let key = format!("peers-ours-{}-{handover:?}", std::process::id());
        let stores = (0..settings.contenders)
            .map(|slot| {
                RedisLeaderElection::builder()
                    .url(url.as_str())
                    .key(key.as_str())
                    .options(ours::options(settings, slot))
                    .build_store()
                    .unwrap_or_else(|e| panic!("the Redis store: {e}"))
            })
            .collect();
        let mut side = Ours::start(stores, Vec::new(), settings, handover).await;
        rows.push(measure(&mut side, "Redis", what, settings).await);
    }
    rows
}

/// Contenders of one `rslock` resource.
fn lockers(url: &str, settings: &Settings) -> Peers {
    let resource = format!("peers-rslock-{}", std::process::id());
    Peers::start(settings.contenders, |slot, shared, orders, elected| {
        locker(
            slot,
            LockManager::new(vec![url.to_owned()]),
            resource.clone(),
            settings.lease,
            shared,
            orders,
            elected,
        )
    })
}

/// One leader loop on `rslock`, written the way its users write one: `lock` (three tries, up
/// to 200 ms apart) until it succeeds, then `extend` every third of the TTL while leading,
/// `unlock` to hand over.
async fn locker(
    slot: usize,
    locks: LockManager,
    resource: String,
    ttl: Duration,
    shared: Arc<Shared>,
    mut orders: mpsc::UnboundedReceiver<Order>,
    elected: mpsc::UnboundedSender<(usize, Instant)>,
) {
    let count = |n: u64| shared.count(slot, n);
    loop {
        // `lock` tries three times; each failed try is a SET NX and an unlock.
        let lock = loop {
            let sent = Instant::now();
            match locks.lock(resource.as_bytes(), ttl).await {
                Ok(lock) => {
                    count(1);
                    shared.sent(slot, sent);
                    break lock;
                }
                Err(_) => {
                    count(6);
                }
            }
        };
        let _ = elected.send((slot, Instant::now()));
        let mut lock = lock;
        // `None` when an extension failed: the lock is somebody else's; lock again.
        let order = loop {
            tokio::select! {
                order = orders.recv() => match order {
                    Some(order) => break Some(order),
                    None => return,
                },
                () = tokio::time::sleep(ttl / 3) => {
                    shared.sent(slot, Instant::now());
                    count(1);
                    match locks.extend(&lock, ttl).await {
                        Ok(extended) => lock = extended,
                        Err(_) => break None,
                    }
                }
            }
        };
        match order {
            // Handed over: back as a contender a lease later (a restart), not at once, where
            // it would take the lock again before the others' next try.
            Some(Order::HandOver) => {
                count(1);
                locks.unlock(&lock).await;
                tokio::time::sleep(ttl).await;
            }
            // Silent until the lock expired and somebody else took it; then back as a
            // contender, as the other sides' crashed contenders come back.
            Some(Order::Crash) => tokio::time::sleep(ttl * 2).await,
            None => {}
        }
    }
}
