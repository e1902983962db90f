//! Release notices: how a store wakes waiting followers when a lease is released.

use tokio::sync::watch;

/// The sending side of release notifications, kept by a store.
///
/// It counts releases; receivers wake when the count changes, so a notification sent while a
/// follower was busy is not lost.
#[derive(Debug)]
pub struct ReleaseNotifier {
    sender: watch::Sender<u64>,
}

impl Default for ReleaseNotifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ReleaseNotifier {
    /// A notifier with no release seen yet.
    #[must_use]
    pub fn new() -> Self {
        Self {
            sender: watch::Sender::new(0),
        }
    }

    /// Records a release and wakes every receiver.
    pub fn notify(&self) {
        self.sender
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A new receiver; releases before this call are considered seen.
    #[must_use]
    pub fn subscribe(&self) -> ReleaseReceiver {
        ReleaseReceiver {
            receiver: self.sender.subscribe(),
        }
    }
}

/// The receiving side of release notifications, handed to the core by
/// [`LeaseStore::release_notifications`](super::LeaseStore::release_notifications).
#[derive(Clone, Debug)]
pub struct ReleaseReceiver {
    receiver: watch::Receiver<u64>,
}

impl ReleaseReceiver {
    /// Marks every release so far as seen. The core calls it before each acquisition attempt,
    /// so that only releases after the attempt wake it.
    pub fn mark_seen(&mut self) {
        self.receiver.borrow_and_update();
    }

    /// Waits for a release not yet marked seen. Never completes once the notifier is gone.
    pub async fn released(&mut self) {
        if self.receiver.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
