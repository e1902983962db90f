//! [`ReleaseWatch`]: one etcd watch per store, on the election key and its holder key, that
//! wakes the followers when either is deleted (a release, an expiry, an operator's deletion)
//! or when a release hands the election key over to a successor, and remembers the etcd lease
//! the election key was attached to when it was deleted, and the key handed over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use etcd_client::{Client, EventType, WatchFilterType, WatchOptions, WatchStream, Watcher};
use leader_election::store::ReleaseNotifier;
use tokio::task::JoinHandle;

use crate::connection::Pool;
use crate::record::Holder;
use crate::store::{Handed, LastHolder, is_handover};

/// The first delay before watching again after the watch broke; it doubles up to
/// [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A running watch; stopped when dropped (with its store).
#[derive(Debug)]
pub(crate) struct ReleaseWatch {
    task: JoinHandle<()>,
}

impl Drop for ReleaseWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The election key's watch: deletions and puts (a handover is a put; renewals that publish
/// metadata are too, and wake nobody), with the key as it was, for the etcd lease of its
/// holder and to tell a handover from a renewal.
fn election_key_options() -> WatchOptions {
    WatchOptions::new().with_prev_key()
}

/// The holder key's watch: deletions only.
fn options() -> WatchOptions {
    WatchOptions::new()
        .with_filters([WatchFilterType::NoPut])
        .with_prev_key()
}

/// Opens one watch stream with a watcher per key, on the member the store uses. Each watches
/// its key alone, not a prefix: the keys beside the election key other than its holder key
/// (the released key, the token base, the candidate record, the election's record) wake
/// nobody.
async fn open(pool: &Pool, keys: &[String]) -> Result<(Watcher, WatchStream), etcd_client::Error> {
    pool.call(|client| open_on(client, keys)).await
}

async fn open_on(
    mut client: Client,
    keys: &[String],
) -> Result<(Watcher, WatchStream), etcd_client::Error> {
    let (first, rest) = keys.split_first().expect("at least one key");
    let (mut watcher, stream) = client
        .watch(first.as_str(), Some(election_key_options()))
        .await?;
    for key in rest {
        watcher.watch(key.as_str(), Some(options())).await?;
    }
    Ok((watcher, stream))
}

impl ReleaseWatch {
    /// Opens the watch, so that a release after this returns is seen, then follows it in a
    /// task that opens it again whenever it breaks (a member down, a compaction, a member that
    /// lost its leader): after reopening, it wakes the followers once, since a release may
    /// have happened while nobody watched.
    ///
    /// `keys[0]` is the election key: when it is deleted, the etcd lease it was attached to is
    /// remembered in `last_holder` before the followers wake; when a release hands it over (a
    /// put naming a new holder, see `store::handover`), the key is offered to `handed` and the
    /// followers wake. `woken` is set whenever a deletion or a reopening wakes them.
    pub(crate) async fn start(
        pool: Arc<Pool>,
        keys: Vec<String>,
        notifier: Arc<ReleaseNotifier>,
        last_holder: Arc<LastHolder>,
        handed: Arc<Handed>,
        woken: Arc<AtomicBool>,
    ) -> Result<Self, etcd_client::Error> {
        let (watcher, stream) = open(&pool, &keys).await?;
        let task = tokio::spawn(async move {
            let mut current = Some((watcher, stream));
            let mut backoff = FIRST_BACKOFF;
            loop {
                if let Some((_watcher, mut stream)) = current.take() {
                    loop {
                        match stream.message().await {
                            Ok(Some(response)) => {
                                let mut deleted = false;
                                let mut handover = false;
                                for event in response.events() {
                                    if event.event_type() != EventType::Delete {
                                        if let Some(kv) = event.kv().filter(|kv| {
                                            kv.key() == keys[0].as_bytes()
                                                && is_handover(kv, event.prev_kv())
                                        }) {
                                            last_holder.saw(kv);
                                            handed.offer(kv);
                                            handover = true;
                                        }
                                        continue;
                                    }
                                    deleted = true;
                                    if let Some(prev) = event.prev_kv().filter(|prev| {
                                        prev.key() == keys[0].as_bytes()
                                            && Holder::decode(prev.value()).is_some()
                                    }) {
                                        last_holder.saw(prev);
                                    }
                                }
                                if deleted {
                                    woken.store(true, Ordering::Release);
                                }
                                if deleted || handover {
                                    notifier.notify();
                                }
                                if response.canceled() {
                                    tracing::debug!(
                                        reason = response.cancel_reason(),
                                        "the etcd watch was cancelled"
                                    );
                                    break;
                                }
                                backoff = FIRST_BACKOFF;
                            }
                            Ok(None) => break,
                            Err(err) => {
                                tracing::debug!(error = %err, "the etcd watch broke");
                                break;
                            }
                        }
                    }
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                match open(&pool, &keys).await {
                    Ok(opened) => {
                        current = Some(opened);
                        woken.store(true, Ordering::Release);
                        notifier.notify();
                    }
                    Err(err) => tracing::debug!(error = %err, "cannot watch the etcd election key"),
                }
            }
        });
        Ok(Self { task })
    }
}
