//! etcd: this project's etcd backend next to etcd's own election recipe, Go's
//! `concurrency.Election` (`Campaign`/`Resign` on a `Session`: what Go services and etcd's
//! v3election service run), ported line for line onto etcd-client, on one three-member cluster,
//! in one run, with the same lease.
//!
//! The port rather than the v3election RPCs: on the etcd this machine installs (3.4, Debian),
//! every `Campaign` RPC returned at once, before its predecessors' keys were gone, so five
//! contenders were all "elected" together.

use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, WatchOptions,
};
use leader_election::ElectionBuilder;
use leader_election_etcd::EtcdLeaderElection;
use leader_election_fixtures::EtcdCluster;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::ours::{self, Handover, Ours};
use crate::side::{Order, Peers, Shared, measure};
use crate::{Row, Settings};

/// Runs every side on one cluster and returns their rows.
pub(crate) async fn run(settings: &Settings) -> Vec<Row> {
    let cluster = EtcdCluster::start(3).await;
    let endpoints = cluster.endpoints();
    println!(
        "etcd: three members on 127.0.0.1, {} contenders, lease {:?}, a handover every {:?}",
        settings.contenders, settings.lease, settings.hold
    );
    let mut rows = Vec::new();
    let mut campaign = campaigners(&endpoints, settings);
    rows.push(
        measure(
            &mut campaign,
            "etcd",
            "Go's `concurrency.Election` (`Campaign`/`Resign`)",
            settings,
        )
        .await,
    );
    for (handover, what) in [
        (
            Handover::Stop,
            "leader-election-etcd, `stop` (then `start`)",
        ),
        (Handover::Resign, "leader-election-etcd, `resign`"),
    ] {
        let key = format!("peers-ours-{}-{handover:?}", std::process::id());
        let stores: Vec<_> = (0..settings.contenders)
            .map(|slot| {
                EtcdLeaderElection::builder()
                    .endpoints(endpoints.iter().cloned())
                    .key(key.as_str())
                    .options(ours::options(settings, slot))
                    .build_store()
                    .unwrap_or_else(|e| panic!("the etcd store: {e}"))
            })
            .collect();
        // A follower's claim is kept alive by its store, outside the calls the side counts.
        let background = stores
            .iter()
            .map(|store| {
                let sent = store.claim_keep_alives();
                Box::new(move || sent.get()) as ours::Background
            })
            .collect();
        let mut side = Ours::start(stores, background, settings, handover).await;
        rows.push(measure(&mut side, "etcd", what, settings).await);
    }
    rows
}

/// Contenders of Go's `concurrency.Election`.
fn campaigners(endpoints: &[String], settings: &Settings) -> Peers {
    let name = format!("peers-campaign-{}", std::process::id());
    let ttl = settings.lease;
    Peers::start(settings.contenders, |slot, shared, orders, elected| {
        let contender = campaigner(
            slot,
            endpoints.to_vec(),
            name.clone(),
            ttl,
            shared,
            orders,
            elected,
        );
        async move {
            if let Err(err) = contender.await {
                eprintln!("Campaign contender c{slot} gave up: {err}");
            }
        }
    })
}

/// One contender of Go's `concurrency.Election`, written the way its users write one: a session
/// (a lease kept alive every third of its TTL, as Go's `concurrency.Session` does), `Campaign`
/// with it, `Resign` with the key it returned.
async fn campaigner(
    slot: usize,
    endpoints: Vec<String>,
    name: String,
    ttl: Duration,
    shared: Arc<Shared>,
    mut orders: mpsc::UnboundedReceiver<Order>,
    elected: mpsc::UnboundedSender<(usize, Instant)>,
) -> Result<(), etcd_client::Error> {
    let count = || shared.count(slot, 1);
    loop {
        let mut client = Client::connect(&endpoints, None).await?;
        count();
        let lease = client
            .lease_grant(i64::try_from(ttl.as_secs()).unwrap_or(2), None)
            .await?
            .id();
        let (mut keeper, mut answers) = client.lease_keep_alive(lease).await?;
        let keep_shared = Arc::clone(&shared);
        let keep_alive = tokio::spawn(async move {
            loop {
                // Answered or not, a keep-alive sent may extend the lease from now.
                keep_shared.sent(slot, Instant::now());
                keep_shared.count(slot, 1);
                if keeper.keep_alive().await.is_err() || answers.message().await.is_err() {
                    return;
                }
                tokio::time::sleep(ttl / 3).await;
            }
        });
        let prefix = format!("{name}/");
        let key = format!("{prefix}{lease:x}");
        loop {
            let rev = campaign(
                &mut client,
                &prefix,
                &key,
                &format!("c{slot}"),
                lease,
                &count,
            )
            .await?;
            let _ = elected.send((slot, Instant::now()));
            match orders.recv().await {
                Some(Order::HandOver) => {
                    // Election.Resign: delete the key if it is still this campaign's.
                    count();
                    client
                        .txn(
                            Txn::new()
                                .when([Compare::create_revision(
                                    key.as_str(),
                                    CompareOp::Equal,
                                    rev,
                                )])
                                .and_then([TxnOp::delete(key.as_str(), None)]),
                        )
                        .await?;
                }
                Some(Order::Crash) => {
                    keep_alive.abort();
                    break;
                }
                None => {
                    keep_alive.abort();
                    return Ok(());
                }
            }
        }
    }
}

/// Go's `Election.Campaign`: create `key` (the prefix and the session's lease) with `value` if
/// it does not exist, then wait until every key of the election created before it is gone.
/// Returns the key's create revision.
async fn campaign(
    client: &mut Client,
    prefix: &str,
    key: &str,
    value: &str,
    lease: i64,
    count: &impl Fn(),
) -> Result<i64, etcd_client::Error> {
    count();
    let response = client
        .txn(
            Txn::new()
                .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key,
                    value,
                    Some(PutOptions::new().with_lease(lease)),
                )])
                .or_else([TxnOp::get(key, None)]),
        )
        .await?;
    let mut rev = response.header().map_or(0, |h| h.revision());
    if !response.succeeded() {
        for op in response.op_responses() {
            if let etcd_client::TxnOpResponse::Get(get) = op
                && let Some(kv) = get.kvs().first()
            {
                rev = kv.create_revision();
            }
        }
    }
    // waitDeletes: the last-created key before ours, until there is none.
    loop {
        count();
        let before = client
            .get(
                prefix,
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_sort(SortTarget::Create, SortOrder::Descend)
                        .with_limit(1)
                        .with_max_create_revision(rev - 1),
                ),
            )
            .await?;
        let Some(last) = before.kvs().first() else {
            return Ok(rev);
        };
        let at = before.header().map_or(0, |h| h.revision());
        // waitDelete: watch that key from the revision read until it is deleted.
        count();
        let (_watcher, mut events) = client
            .watch(
                last.key(),
                Some(WatchOptions::new().with_start_revision(at)),
            )
            .await?;
        'deleted: while let Some(message) = events.message().await? {
            for event in message.events() {
                if event.event_type() == EventType::Delete {
                    break 'deleted;
                }
            }
        }
    }
}
