//! [`ReleaseHub`]: one pub/sub connection carrying the release notices of many elections.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::{ConnectHandle, Value};
use leader_election::store::ReleaseNotifier;
use leader_election::{Operation, Result};
use tokio::task::JoinHandle;

use crate::error::map_fred;
use crate::store::default_reconnect_policy;

/// A subscriber connection shared by many [`RedisLeaseStore`](crate::RedisLeaseStore)s: each
/// store subscribes its election's release channel on it, and the hub wakes the right store's
/// followers when a notice arrives.
///
/// Every store made with [`RedisLeaseStore::new`](crate::RedisLeaseStore::new) has a hub of its
/// own (one extra connection per store). A process running many elections — per-shard
/// leadership, say — shares one hub among all of them with
/// [`RedisLeaseStore::with_hub`](crate::RedisLeaseStore::with_hub), so that 10,000 elections
/// cost two connections, not 10,001.
///
/// Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct ReleaseHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    /// The client whose configuration the subscriber connection copies.
    client: Client,
    /// The subscriber, once started.
    subscription: tokio::sync::Mutex<Option<Subscription>>,
    /// Who to wake for each channel: every store of that election using this hub.
    channels: Arc<Mutex<Channels>>,
}

type Channels = HashMap<String, Vec<Weak<ReleaseNotifier>>>;

struct Subscription {
    client: SubscriberClient,
    connection: Option<ConnectHandle>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for ReleaseHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the client's config: it holds the password.
        f.debug_struct("ReleaseHub")
            .field("channels", &lock(&self.inner.channels).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The map is only ever inserted into or removed from; a panic cannot leave it half-written.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReleaseHub {
    /// A hub whose subscriber connection copies `client`'s configuration (server, credentials,
    /// TLS, reconnect policy). Connects when the first store subscribes.
    #[must_use]
    pub fn new(client: &Client) -> Self {
        Self {
            inner: Arc::new(HubInner {
                client: client.clone(),
                subscription: tokio::sync::Mutex::new(None),
                channels: Arc::new(Mutex::new(HashMap::new())),
            }),
        }
    }

    /// How many channels are subscribed through this hub.
    #[must_use]
    pub fn channels(&self) -> usize {
        lock(&self.inner.channels).len()
    }

    /// Subscribes `channel`, waking `notifier` on every notice. Idempotent per notifier;
    /// several stores of one election (several notifiers on one channel) are all woken.
    ///
    /// # Cancel safety
    /// Dropped half-way, it leaves no connection task behind and registers nothing; the next
    /// call starts over.
    pub(crate) async fn register(
        &self,
        channel: &str,
        notifier: &Arc<ReleaseNotifier>,
    ) -> Result<()> {
        let mut subscription = self.inner.subscription.lock().await;
        if subscription.is_none() {
            *subscription = Some(self.start().await?);
        }
        let Some(active) = subscription.as_ref() else {
            return Ok(());
        };
        {
            let mut channels = lock(&self.inner.channels);
            if let Some(notifiers) = channels.get_mut(channel) {
                notifiers.retain(|known| known.strong_count() > 0);
                if !notifiers.is_empty() {
                    // Subscribed already, for another store of the same election.
                    if !notifiers.iter().any(|known| is(known, notifier)) {
                        notifiers.push(Arc::downgrade(notifier));
                    }
                    return Ok(());
                }
            }
        }
        // Recorded only once subscribed: dropped before that, the next call subscribes again.
        //
        // Classic SUBSCRIBE also on a cluster, not sharded SSUBSCRIBE: a failover or a slot
        // migration ends sharded subscriptions on the server (an unsolicited `sunsubscribe`),
        // which fred only renews after reconnecting, so followers would silently stop being
        // woken. A classic notice is broadcast to every node, so a subscription on any node,
        // a demoted one too, keeps receiving it; see the README's "Cluster" section under "Deploying".
        active
            .client
            .subscribe(channel.to_owned())
            .await
            .map_err(|e| map_fred(Operation::Connect, e))?;
        // fred answers SUBSCRIBE once it is written, not once the server has it: a release
        // published just after could still miss it. A PING behind it on the same connection
        // (allowed while subscribed) is answered only after the server subscribed.
        active
            .client
            .ping::<Value>(None)
            .await
            .map_err(|e| map_fred(Operation::Connect, e))?;
        lock(&self.inner.channels)
            .entry(channel.to_owned())
            .or_default()
            .push(Arc::downgrade(notifier));
        Ok(())
    }

    /// Removes `notifier` (and any dropped one) from `channel`; answers whether nobody is left
    /// on it.
    fn forget(&self, channel: &str, notifier: &Arc<ReleaseNotifier>) -> bool {
        let mut channels = lock(&self.inner.channels);
        let Some(notifiers) = channels.get_mut(channel) else {
            return false;
        };
        notifiers.retain(|known| known.strong_count() > 0 && !is(known, notifier));
        if notifiers.is_empty() {
            channels.remove(channel);
            return true;
        }
        false
    }

    /// Stops waking `notifier` for `channel`, and unsubscribes the channel once no store
    /// listens on it any more.
    pub(crate) fn unregister(&self, channel: &str, notifier: &Arc<ReleaseNotifier>) {
        if !self.forget(channel, notifier) {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let channel = channel.to_owned();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Under the subscription lock, so a store registering the channel again in the
                // meantime (it subscribes under the same lock) is not unsubscribed.
                let subscription = inner.subscription.lock().await;
                if lock(&inner.channels).contains_key(&channel) {
                    return;
                }
                if let Some(active) = subscription.as_ref() {
                    let _ = active.client.unsubscribe(channel).await;
                }
            });
        }
    }

    /// Starts the subscriber connection.
    ///
    /// # Cancel safety
    /// Dropped half-way (a caller's timeout while the server does not answer), or failing, it
    /// stops the connection task it started: that task would otherwise reconnect forever.
    async fn start(&self) -> Result<Subscription> {
        let client = &self.inner.client;
        let subscriber = SubscriberClient::new(
            client.client_config(),
            Some(client.perf_config()),
            Some(client.connection_config().clone()),
            Some(
                client
                    .client_reconnect_policy()
                    .unwrap_or_else(default_reconnect_policy),
            ),
        );
        let mut messages = subscriber.message_rx();
        let mut reconnects = subscriber.reconnect_rx();
        // `init()` would connect and wait in one future, leaving the connection task running
        // (and reconnecting forever) when that future is dropped. Listen for the first
        // attempt's result before starting it, as `init()` does: polled once, the wait
        // subscribes to the connection notices.
        let mut connection = {
            let waiting = subscriber.wait_for_connect();
            let mut waiting = std::pin::pin!(waiting);
            let first = waiting
                .as_mut()
                .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
            let connection = AbortOnDrop(Some(subscriber.connect()));
            match first {
                std::task::Poll::Ready(result) => result,
                std::task::Poll::Pending => waiting.await,
            }
            .map_err(|e| map_fred(Operation::Connect, e))?;
            connection
        };
        let connection = connection.defuse();
        // Subscribes every tracked channel again after a reconnection.
        let resubscriber = subscriber.manage_subscriptions();
        let channels = Arc::clone(&self.inner.channels);
        let listener = tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            let wake_all = |channels: &Mutex<Channels>| {
                for notifier in lock(channels).values().flatten().filter_map(Weak::upgrade) {
                    notifier.notify();
                }
            };
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(message) => {
                            let notifiers: Vec<Arc<ReleaseNotifier>> = lock(&channels)
                                .get(&*message.channel)
                                .into_iter()
                                .flatten()
                                .filter_map(Weak::upgrade)
                                .collect();
                            for notifier in notifiers {
                                notifier.notify();
                            }
                        }
                        // Missed messages may have been releases: wake every follower.
                        Err(RecvError::Lagged(_)) => wake_all(&channels),
                        Err(RecvError::Closed) => break,
                    },
                    reconnect = reconnects.recv() => match reconnect {
                        // Releases may have been announced while the subscription was down.
                        Ok(_) | Err(RecvError::Lagged(_)) => wake_all(&channels),
                        Err(RecvError::Closed) => break,
                    },
                }
            }
        });
        Ok(Subscription {
            client: subscriber,
            connection,
            tasks: vec![listener, resubscriber],
        })
    }
}

/// Whether `known` refers to `notifier`.
fn is(known: &Weak<ReleaseNotifier>, notifier: &Arc<ReleaseNotifier>) -> bool {
    std::ptr::eq(known.as_ptr(), Arc::as_ptr(notifier))
}

/// Aborts a connection task unless defused: a subscriber whose first connection is abandoned
/// must not keep reconnecting in the background.
struct AbortOnDrop(Option<ConnectHandle>);

impl AbortOnDrop {
    fn defuse(&mut self) -> Option<ConnectHandle> {
        self.0.take()
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

impl Drop for HubInner {
    fn drop(&mut self) {
        let Some(subscription) = self.subscription.get_mut().take() else {
            return;
        };
        // Closing needs the runtime; without one (dropped after shutdown) the connection closes
        // with the process.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let _ = subscription.client.quit().await;
            if let Some(connection) = subscription.connection {
                connection.abort();
            }
            for task in subscription.tasks {
                task.abort();
            }
        });
    }
}
