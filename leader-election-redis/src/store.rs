//! [`RedisLeaseStore`]: the [`LeaseStore`] kept in Redis.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::prelude::{Options, ReconnectPolicy};
use fred::types::Value;
use leader_election::priority::Candidate;
use leader_election::store::{
    AcquireOutcome, Capabilities, Highest, Lease, LeaseRequest, Record, RecordVersion,
    ReleaseNotifier, ReleaseReceiver, RenewOutcome,
};
use leader_election::{LeaderInfo, LeaseStore, Operation, Result};

use leader_election::BuildError;

use crate::hub::ReleaseHub;
use crate::scripts::{self, Script};

mod acks;
mod candidate;
mod commands;
mod keys;
mod record;

use commands::{duration_ms, metadata_arg, ttl_ms};
pub(crate) use keys::{Keys, validate_key};

/// The default election key.
pub const DEFAULT_KEY: &str = "leader-election-lock";

/// The longest election key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// The longest leader metadata a store publishes, in bytes: 64 KiB. It is stored in hex inside
/// the lease value, and travels with every acquisition and renewal.
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// The longest [election record](leader_election::store::Record) a store keeps, in bytes:
/// 64 KiB, in the `data` field of `{key}:record`.
pub const MAX_RECORD_LEN: usize = 64 * 1024;

/// Writes of one command on a cluster: the first, and one after each of an `ASK` and a `MOVED`
/// redirection (a slot being migrated, then moved).
const CLUSTER_ATTEMPTS: u32 = 3;

/// The command timeout a store uses until told otherwise.
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(2);

/// The reconnect policy used whenever a client has none: retry forever, quickly at first.
pub(crate) fn default_reconnect_policy() -> ReconnectPolicy {
    let mut policy = ReconnectPolicy::new_exponential(0, 50, 2_000, 2);
    policy.set_jitter(50);
    policy
}

/// A [`LeaseStore`] kept in Redis through a [fred](fred) client.
///
/// One election uses these names, all inside the hash tag `{key}` so that a Redis Cluster keeps
/// them in one slot:
/// - `{key}:lease`: the lease, a string holding the owner, its token and its leader metadata,
///   expiring by `PX`;
/// - `{key}:token`: the last fencing token minted (no expiry);
/// - `{key}:epoch`: the replication history (the primary's replication id) the election last
///   saw, `{key}:fence`: when the last wait for a possibly lost lease began, and why, and
///   `{key}:maxttl`: the longest lease granted, in ms (see the crate docs on guards);
/// - `{key}:held`: a shadow of the lease, expiring with it and deleted only by a release, so
///   that a lease key deleted by someone else is told from one released or expired;
/// - `{key}:record`: the election's [record](leader_election::store::Record), a hash with the
///   fields `version` and `data`, without expiry, untouched by every lease operation (see
///   [`record_key`](Self::record_key));
/// - `{key}:released`: the pub/sub channel on which releases are announced.
///
/// Every operation is one Lua script, loaded once per server and called by its SHA1
/// (`EVALSHA`), reloaded when the server answers `NOSCRIPT` (after a restart or a failover).
/// Fencing tokens are minted as `max(last token + 1, server time in µs)`, so they keep
/// increasing even after a restart that lost every key, as long as the server's clock does not
/// step back by more than the restart took.
///
/// Cheap to clone: clones share the client, the scripts and the subscription.
#[derive(Clone)]
pub struct RedisLeaseStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// Whether this store created the client (and so closes it when dropped).
    owns_client: bool,
    keys: Keys,
    /// The per-command timeout, in milliseconds.
    timeout_ms: AtomicU64,
    /// The configured longest lease of the election, in ms (0: none configured).
    max_lease_ms: AtomicU64,
    /// The longest lease this store has seen the election hold or record, in ms.
    longest_seen_ms: AtomicU64,
    /// The highest token this store has seen (minted or held by another): the floor of the
    /// tokens it mints, so that a server whose clock came back behind it after losing its
    /// counter still mints a greater one.
    highest_token: Highest<u64>,
    /// How many replicas must acknowledge an acquisition or renewal (`WAIT`); 0: none.
    min_replica_acks: AtomicU32,
    /// The SHA1 of each script once loaded, by [`Script::index`].
    shas: Mutex<[Option<String>; Script::COUNT]>,
    /// The highest record version this store has seen (written or read): the floor of the
    /// versions it mints, as `highest_token` is for tokens.
    highest_record_version: Highest<u64>,
    notifier: Arc<ReleaseNotifier>,
    /// Where this store's release channel is subscribed: a hub of its own, or a shared one.
    hub: ReleaseHub,
    connecting: tokio::sync::Mutex<()>,
    /// Tests only: where the next write's `WAIT` stops until told to go on.
    #[cfg(test)]
    before_wait: Mutex<Option<PauseBeforeWait>>,
}

/// Tests only: a pause between a write and its `WAIT`, to break the connection there. The
/// store says it has arrived on the sender, and goes on when the receiver hears.
#[cfg(test)]
pub(crate) type PauseBeforeWait = (
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::oneshot::Receiver<()>,
);

impl fmt::Debug for RedisLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the client's config: it holds the password.
        f.debug_struct("RedisLeaseStore")
            .field("key", &self.inner.keys.name)
            .field("client_id", &self.inner.client.id())
            .field("state", &self.inner.client.state())
            .field(
                "operation_timeout",
                &Duration::from_millis(self.inner.timeout_ms.load(Ordering::Relaxed)),
            )
            .field("min_replica_acks", &self.min_replica_acks())
            .finish_non_exhaustive()
    }
}

impl RedisLeaseStore {
    /// A store for the election named `key` on `client`, which the caller may share with other
    /// code. If the client was never connected when the store connects, the store connects it;
    /// a client shared by several stores should be connected by the caller first
    /// (`client.init().await`), so that they do not race to connect it. Release notifications
    /// use a second connection, made from the client's configuration; stores made with
    /// [`with_hub`](Self::with_hub) share one instead.
    ///
    /// Configure the client for leader election: a reconnect policy (without one, fred gives up
    /// after the first connection loss) and a `default_command_timeout` or this store's
    /// [`with_operation_timeout`](Self::with_operation_timeout), so a lost reply surfaces as an
    /// unknown outcome quickly. The builder,
    /// [`RedisLeaderElection::builder`](crate::RedisLeaderElection::builder), does all of that.
    ///
    /// # Errors
    /// [`BuildError::InvalidName`] when `key` is empty or blank, longer than 512 bytes, or
    /// contains control characters, `{` or `}`.
    pub fn new(client: Client, key: impl Into<String>) -> std::result::Result<Self, BuildError> {
        let hub = ReleaseHub::new(&client);
        Self::with_ownership(client, &key.into(), false, hub)
    }

    /// Like [`new`](Self::new), with release notices received through `hub`, a subscriber
    /// connection shared with other stores: the way to run thousands of elections on one
    /// client.
    ///
    /// # Errors
    /// As for [`new`](Self::new).
    pub fn with_hub(
        client: Client,
        key: impl Into<String>,
        hub: ReleaseHub,
    ) -> std::result::Result<Self, BuildError> {
        Self::with_ownership(client, &key.into(), false, hub)
    }

    pub(crate) fn with_ownership(
        client: Client,
        key: &str,
        owns_client: bool,
        hub: ReleaseHub,
    ) -> std::result::Result<Self, BuildError> {
        let keys = Keys::new(key)?;
        if !client.has_reconnect_policy() {
            tracing::warn!(
                key,
                "the Redis client has no reconnect policy: it will not reconnect after losing its connection"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                owns_client,
                keys,
                timeout_ms: AtomicU64::new(DEFAULT_OPERATION_TIMEOUT.as_millis() as u64),
                max_lease_ms: AtomicU64::new(0),
                longest_seen_ms: AtomicU64::new(0),
                highest_token: Highest::default(),
                min_replica_acks: AtomicU32::new(0),
                shas: Mutex::new(Default::default()),
                highest_record_version: Highest::default(),
                notifier: Arc::new(ReleaseNotifier::new()),
                hub,
                connecting: tokio::sync::Mutex::new(()),
                #[cfg(test)]
                before_wait: Mutex::new(None),
            }),
        })
    }

    /// The same store with every Redis command bounded by `timeout` (default 2 s; the builder
    /// uses `operation_timeout`). A command that times out has an unknown outcome. Applies to
    /// every clone of this store.
    #[must_use]
    pub fn with_operation_timeout(self, timeout: Duration) -> Self {
        let ms = u64::try_from(timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.inner.timeout_ms.store(ms, Ordering::Relaxed);
        self
    }

    /// The same store, guarding against lost leases as long as `max_lease_duration`: the
    /// longest lease any contender of this election may hold (on any version of its
    /// configuration). Default: the longest of this contender's own lease and every lease this
    /// store has seen the election hold. Applies to every clone of this store.
    ///
    /// After a restart, a failover, or anything else that may have lost a lease, the acquire
    /// script grants nothing for this long (or for the longest lease recorded in Redis, if
    /// longer), because the lost lease's holder may still trust it. Set it to the longest
    /// `lease_duration` in use during a rolling change of that setting; see the crate docs.
    #[must_use]
    pub fn with_max_lease_duration(self, max_lease_duration: Duration) -> Self {
        self.inner
            .max_lease_ms
            .store(duration_ms(max_lease_duration), Ordering::Relaxed);
        self
    }

    /// The same store, believing an acquisition or a renewal only once at least `replicas`
    /// replicas acknowledged it (Redis `WAIT`); 0, the default, waits for none. Applies to
    /// every clone of this store.
    ///
    /// After the script that acquired or renewed, the store sends `WAIT replicas timeout`,
    /// with half the operation timeout as `timeout`. `WAIT` counts only the writes of the
    /// connection it runs on, and the client reconnects whenever a connection breaks, so the
    /// store reads the connection's identity (`CLIENT INFO`) before the script and after
    /// `WAIT`: a reconnect in between (to the same server or, behind a moved address, to
    /// another) makes the count meaningless. When fewer replicas acknowledge in time, or the
    /// connection changed, the acquisition or renewal is reported as an error with an unknown
    /// outcome ([`Error::is_outcome_unknown`](leader_election::Error::is_outcome_unknown)):
    /// the write reached the primary, but a failover could lose it, so it is not believed.
    /// `connect` fails when the server does not answer `CLIENT INFO` (before Redis 6.2, or
    /// denied by the user's ACL). The election then asks again with the same lease id (which
    /// acquires or renews again and waits again), a leader steps down at its deadline
    /// if no renewal is acknowledged, and after one lease of such answers a candidacy is given
    /// up (DESIGN.md rules 3, 4 and 8). Asking for more replicas than the primary has fails
    /// closed: nobody leads.
    ///
    /// What it buys: a lease its holder trusts was on `replicas` replicas, so a failover that
    /// promotes one of them keeps it; and a primary cut off from its replicas (a failover
    /// promoted one and moved the others away) can no longer confirm a renewal, so its leader
    /// steps down within one lease instead of leading on beside the new primary's. What it
    /// costs: a round trip to the replicas and two `CLIENT INFO` round trips on every
    /// acquisition and renewal, and commands of other elections sharing the client wait behind
    /// a `WAIT`.
    #[must_use]
    pub fn with_min_replica_acks(self, replicas: u32) -> Self {
        self.inner
            .min_replica_acks
            .store(replicas, Ordering::Relaxed);
        self
    }

    /// How many replicas must acknowledge an acquisition or renewal: see
    /// [`with_min_replica_acks`](Self::with_min_replica_acks).
    #[must_use]
    pub fn min_replica_acks(&self) -> u32 {
        self.inner.min_replica_acks.load(Ordering::Relaxed)
    }

    /// The longest lease this store guards against: the configured
    /// [`max_lease_duration`](Self::with_max_lease_duration) or the longest lease seen for this
    /// election, whichever is longer (zero before either is known). Only grows.
    #[must_use]
    pub fn guard_duration(&self) -> Duration {
        Duration::from_millis(self.guard_ms())
    }

    fn guard_ms(&self) -> u64 {
        self.inner
            .max_lease_ms
            .load(Ordering::Relaxed)
            .max(self.inner.longest_seen_ms.load(Ordering::Relaxed))
    }

    /// The per-command options: the timeout, and no second write of a command whose connection
    /// broke (its outcome is unknown; the core re-checks ownership itself).
    ///
    /// On a cluster, fred counts the write after a `MOVED` or `ASK` redirection (a failover, a
    /// slot migration) as another attempt: one attempt would turn every redirection into an
    /// unknown outcome (a `stop()` whose release fails, followers waiting a lease). A
    /// redirected command was not run, so it gets [`CLUSTER_ATTEMPTS`] writes, still within the
    /// one timeout. A write re-sent after a broken connection is harmless too: every script is
    /// idempotent for one lease id (acquiring again refreshes the same lease, renewing again
    /// extends it from later, which the holder's deadline never counts on, and releasing again
    /// finds nothing of its own).
    fn command_options(&self) -> Options {
        let attempts = if self.inner.client.is_clustered() {
            CLUSTER_ATTEMPTS
        } else {
            1
        };
        Options {
            timeout: Some(Duration::from_millis(
                self.inner.timeout_ms.load(Ordering::Relaxed),
            )),
            max_attempts: Some(attempts),
            ..Options::default()
        }
    }

    /// The election key, as given.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.inner.keys.name
    }

    /// The Redis key holding the lease: `{key}:lease`.
    #[must_use]
    pub fn lease_key(&self) -> &str {
        &self.inner.keys.lease
    }

    /// The Redis key holding the last fencing token: `{key}:token`.
    #[must_use]
    pub fn token_key(&self) -> &str {
        &self.inner.keys.counter
    }

    /// The pub/sub channel on which releases are announced: `{key}:released`.
    #[must_use]
    pub fn release_channel(&self) -> &str {
        &self.inner.keys.channel
    }

    /// The fred client this store sends its commands through.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.inner.client
    }
}

impl LeaseStore for RedisLeaseStore {
    fn election_name(&self) -> &str {
        &self.inner.keys.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_release_notifications()
            .with_candidates()
            .with_metadata(MAX_METADATA_LEN)
            .with_records(MAX_RECORD_LEN)
    }

    async fn connect(&self) -> Result<()> {
        let _serial = self.inner.connecting.lock().await;
        self.ensure_connected().await?;
        let missing: Vec<Script> = {
            let shas = self.shas();
            Script::ALL
                .into_iter()
                .filter(|s| shas[s.index()].is_none())
                .collect()
        };
        for script in missing {
            self.load(script).await?;
        }
        self.check_acks_provable().await?;
        self.ensure_subscribed().await
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        let metadata = metadata_arg(self, request)?;
        let acks = self.before_write(Operation::Acquire).await?;
        let keys = &self.inner.keys;
        let reply = self
            .run(
                Script::Acquire,
                &[
                    &keys.lease,
                    &keys.counter,
                    &keys.fence,
                    &keys.epoch,
                    &keys.longest,
                    &keys.shadow,
                ],
                vec![
                    Value::from(request.instance_id.as_str()),
                    Value::from(request.lease_id.as_str()),
                    ttl_ms(request.ttl),
                    Value::Integer(i64::try_from(self.guard_ms()).unwrap_or(i64::MAX)),
                    metadata,
                    Value::from(self.inner.highest_token.get().to_string()),
                ],
            )
            .await?;
        let (outcome, longest) = scripts::acquire_reply(reply)?;
        let seen = match &outcome {
            AcquireOutcome::Acquired(lease) => Some(lease.token),
            AcquireOutcome::Held {
                leader: Some(leader),
                ..
            } => leader.token,
            _ => None,
        };
        if let Some(token) = seen {
            // Passed to every later acquisition as a floor for the token it mints.
            self.inner.highest_token.saw(token.get());
        }
        if let Some(ms) = longest {
            // Remembered across a restart that loses `{key}:maxttl`: a follower that watched a
            // long lease keeps guarding that long even on a shorter lease of its own.
            self.inner.longest_seen_ms.fetch_max(ms, Ordering::Relaxed);
        }
        if matches!(outcome, AcquireOutcome::Acquired(_)) {
            self.await_replicas(Operation::Acquire, acks).await?;
        }
        Ok(outcome)
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        let metadata = metadata_arg(self, request)?;
        let acks = self.before_write(Operation::Renew).await?;
        let keys = &self.inner.keys;
        let reply = self
            .run(
                Script::Renew,
                &[&keys.lease, &keys.longest, &keys.shadow],
                vec![
                    Value::from(request.instance_id.as_str()),
                    Value::from(request.lease_id.as_str()),
                    Value::from(lease.token.to_string()),
                    ttl_ms(request.ttl),
                    metadata,
                ],
            )
            .await?;
        if !scripts::flag_reply(Operation::Renew, &reply)? {
            return Ok(RenewOutcome::Lost);
        }
        self.await_replicas(Operation::Renew, acks).await?;
        Ok(RenewOutcome::Renewed)
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let keys = &self.inner.keys;
        let reply = self
            .run(
                Script::Release,
                &[&keys.lease, &keys.shadow],
                vec![
                    Value::from(request.instance_id.as_str()),
                    Value::from(request.lease_id.as_str()),
                    Value::from(lease.token.to_string()),
                    Value::from(keys.channel.as_str()),
                ],
            )
            .await?;
        scripts::flag_reply(Operation::Release, &reply)
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        let reply = self
            .run(Script::Current, &[&self.inner.keys.lease], Vec::new())
            .await?;
        scripts::current_reply(reply)
    }

    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        Some(self.inner.notifier.subscribe())
    }

    async fn announce_candidate(&self, candidate: &Candidate, ttl: Duration) -> Result<()> {
        self.announce(candidate, ttl).await
    }

    async fn strongest_candidate(&self) -> Result<Option<Candidate>> {
        self.strongest().await
    }

    async fn read_record(&self) -> Result<Option<Record>> {
        self.read_election_record().await
    }

    async fn write_record(
        &self,
        expected: Option<&RecordVersion>,
        data: &[u8],
    ) -> Result<Option<RecordVersion>> {
        self.write_election_record(expected, data).await
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.hub.unregister(&self.keys.channel, &self.notifier);
        if !self.owns_client {
            return;
        }
        // Closing needs the runtime; without one (dropped after shutdown) the connection closes
        // with the process.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let client = self.client.clone();
        runtime.spawn(async move {
            let _ = client.quit().await;
        });
    }
}
