//! The release listener: one connection that `LISTEN`s for releases and wakes followers.
//!
//! Listening only speeds handover up: without it, followers take over when the lease can expire.
//! So the store never waits for it: the listener connects in the background, retries with
//! capped exponential backoff and jitter while it cannot, and ends with the store.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use leader_election::store::{ReleaseNotifier, ReleaseReceiver};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_postgres::AsyncMessage;

use crate::names::quote_identifier;
use crate::tls::Connector;

/// The first retry after the listener fails to connect or loses its connection.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// The longest wait between two attempts to listen.
const MAX_RETRY: Duration = Duration::from_secs(10);

/// How long an attempt to connect may take when the config sets no `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The listener of one store: its config, and the background task once started.
pub(crate) struct Listener {
    config: tokio_postgres::Config,
    connector: Connector,
    channel: String,
    election: String,
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// What the task shares with the store. The task holds it weakly, so it ends with the store.
struct Shared {
    notifier: ReleaseNotifier,
    /// True while `LISTEN` is active.
    listening: watch::Sender<bool>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            task.abort();
        }
    }
}

impl Listener {
    /// A listener for releases of `election` on `channel`, connecting with `config` through
    /// `connector` (TLS as the pool's); it does nothing until [`start`](Self::start).
    pub(crate) fn new(
        config: tokio_postgres::Config,
        connector: Connector,
        channel: String,
        election: String,
    ) -> Self {
        Self {
            config,
            connector,
            channel,
            election,
            shared: Arc::new(Shared {
                notifier: ReleaseNotifier::new(),
                listening: watch::Sender::new(false),
            }),
            task: Mutex::new(None),
        }
    }

    /// Starts the background task, unless it runs already. Never waits for it to listen.
    pub(crate) fn start(&self) {
        let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        *task = Some(tokio::spawn(run(
            self.config.clone(),
            self.connector.clone(),
            self.channel.clone(),
            self.election.clone(),
            Arc::downgrade(&self.shared),
        )));
    }

    /// Whether `LISTEN` is active now.
    pub(crate) fn is_listening(&self) -> bool {
        *self.shared.listening.borrow()
    }

    /// A receiver of release notices.
    pub(crate) fn subscribe(&self) -> ReleaseReceiver {
        self.shared.notifier.subscribe()
    }
}

/// Listens, and listens again after every failure, until the store is gone.
async fn run(
    config: tokio_postgres::Config,
    connector: Connector,
    channel: String,
    election: String,
    shared: Weak<Shared>,
) {
    let mut delay = FIRST_RETRY;
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let result = listen(&config, &connector, &channel, &election, &shared, failures).await;
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let was_listening = strong.listening.send_replace(false);
        if was_listening {
            // Releases may have come while the connection was down: wake followers to look.
            strong.notifier.notify();
            failures = 0;
            // Start again from the first retry, unless the connection keeps dropping at once.
            if started.elapsed() >= MAX_RETRY {
                delay = FIRST_RETRY;
            }
        }
        drop(strong);
        let error = match &result {
            Ok(()) => "the server closed the connection".to_owned(),
            // The server's own message, not tokio-postgres's "db error".
            Err(err) => crate::error::describe(&**err),
        };
        if was_listening {
            tracing::warn!(%error, election, "release listener lost its connection; reconnecting");
        } else if failures == 0 {
            tracing::warn!(
                %error,
                election,
                "cannot listen for releases: until it can, followers take over when the lease \
                 can expire instead of at once; retrying in the background"
            );
        } else {
            tracing::debug!(%error, election, failures, "release listener still cannot listen");
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(jittered(delay)).await;
        delay = (delay * 2).min(MAX_RETRY);
    }
}

/// Listens for release notices until the connection ends.
async fn listen(
    config: &tokio_postgres::Config,
    connector: &Connector,
    channel: &str,
    election: &str,
    shared: &Weak<Shared>,
    failures: u32,
) -> Result<(), BoxError> {
    let timeout = config
        .get_connect_timeout()
        .copied()
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let (client, mut connection) = tokio::time::timeout(timeout, config.connect(connector.clone()))
        .await
        .map_err(|_| format!("connecting took more than {timeout:?}"))??;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notice)) => {
                    if tx.send(notice).is_err() {
                        return Ok(());
                    }
                }
                Ok(_) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    });
    client
        .batch_execute(&format!("LISTEN {}", quote_identifier(channel)))
        .await?;
    match shared.upgrade() {
        Some(shared) => {
            shared.listening.send_replace(true);
            // A release may have come before LISTEN took effect: wake followers to look.
            shared.notifier.notify();
        }
        None => return Ok(()),
    }
    if failures > 0 {
        tracing::info!(election, failures, "listening for releases again");
    }
    while let Some(notice) = rx.recv().await {
        if notice.payload() == election {
            let Some(shared) = shared.upgrade() else {
                break;
            };
            shared.notifier.notify();
        }
    }
    drop(client);
    match driver.await {
        Ok(result) => Ok(result?),
        Err(_) => Ok(()),
    }
}

/// `delay` scaled by a random factor in [0.5, 1), so that many stores that lost the server at
/// once do not all come back at once.
fn jittered(delay: Duration) -> Duration {
    let random = RandomState::new().build_hasher().finish();
    #[allow(clippy::cast_precision_loss)] // 53 bits: exact in an f64
    let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
    delay.mul_f64(0.5 + 0.5 * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_half_and_whole() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(1));
            assert!(
                d >= Duration::from_millis(500) && d < Duration::from_secs(1),
                "{d:?}"
            );
        }
    }
}
