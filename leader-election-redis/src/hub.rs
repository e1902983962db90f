//! [`ReleaseHub`]: one pub/sub connection carrying the release notices of many elections.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use fred::clients::{Client, SubscriberClient};
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::ConnectHandle;
use leader_election::{Operation, ReleaseNotifier, Result};
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
    /// Who to wake for each channel.
    channels: Arc<Mutex<HashMap<String, Weak<ReleaseNotifier>>>>,
}

struct Subscription {
    client: SubscriberClient,
    connection: ConnectHandle,
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

    /// Subscribes `channel`, waking `notifier` on every notice. Idempotent per channel.
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
            if channels
                .get(channel)
                .is_some_and(|known| known.upgrade().is_some())
            {
                return Ok(());
            }
            channels.insert(channel.to_owned(), Arc::downgrade(notifier));
        }
        if let Err(err) = active.client.subscribe(channel.to_owned()).await {
            lock(&self.inner.channels).remove(channel);
            return Err(map_fred(Operation::Connect, err));
        }
        Ok(())
    }

    /// Stops waking anybody for `channel` and unsubscribes it.
    pub(crate) fn unregister(&self, channel: &str) {
        if lock(&self.inner.channels).remove(channel).is_none() {
            return;
        }
        let inner = Arc::clone(&self.inner);
        let channel = channel.to_owned();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Some(active) = inner.subscription.lock().await.as_ref() {
                    let _ = active.client.unsubscribe(channel).await;
                }
            });
        }
    }

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
        let connection = subscriber
            .init()
            .await
            .map_err(|e| map_fred(Operation::Connect, e))?;
        // Subscribes every tracked channel again after a reconnection.
        let resubscriber = subscriber.manage_subscriptions();
        let channels = Arc::clone(&self.inner.channels);
        let listener = tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            let wake_all = |channels: &Mutex<HashMap<String, Weak<ReleaseNotifier>>>| {
                for notifier in lock(channels).values().filter_map(Weak::upgrade) {
                    notifier.notify();
                }
            };
            loop {
                tokio::select! {
                    message = messages.recv() => match message {
                        Ok(message) => {
                            let notifier = lock(&channels)
                                .get(&*message.channel)
                                .and_then(Weak::upgrade);
                            if let Some(notifier) = notifier {
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
            subscription.connection.abort();
            for task in subscription.tasks {
                task.abort();
            }
        });
    }
}
