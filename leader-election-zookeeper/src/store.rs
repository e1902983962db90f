//! [`ZooKeeperLeaseStore`]: a queue of ephemeral sequential znodes, leases bound to sessions.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use leader_election::store::{
    AcquireOutcome, Capabilities, Highest, Lease, LeaseRequest, ReleaseNotifier, ReleaseReceiver,
    RenewOutcome, WithholdReason,
};
use leader_election::{Error, FencingToken, LeaderInfo, LeaseStore, Operation, Result};
use tokio::sync::Mutex;
use tokio::time::Instant;
use zookeeper_client::{
    Acls, Client, CreateMode, EventType, MultiReadResult, MultiWriteError, MultiWriteResult,
    OneshotWatcher, Stat,
};

use crate::error::{failed, session_ended};
use crate::node::{
    Contender, GUARD, Guard, RELEASED, contender_prefix, decode_released, encode_released, marker,
    queue, sequence,
};

/// The default election path: `/leader-election/leader-election`.
pub const DEFAULT_PATH: &str = "/leader-election/leader-election";

/// The longest leader metadata a store publishes, in bytes: 64 KiB, in the contender's znode
/// (ZooKeeper's own limit on a znode, `jute.maxbuffer`, is about 1 MiB).
pub const MAX_METADATA_LEN: usize = 64 * 1024;

/// How long a follower's znode may go without a call of its contender before the store takes
/// it out of the queue, in leases: a live follower asks at least once a lease.
const IDLE_FOLLOWER_LEASES: u32 = 3;

/// What a store needs to open sessions: set by the builder.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// The connect string (`host:port,host:port/chroot`).
    pub(crate) connect_string: String,
    /// The election's path.
    pub(crate) path: String,
    /// The session timeout asked of the ensemble.
    pub(crate) session_timeout: Duration,
    /// The shortest negotiated session timeout accepted: the election's lease.
    pub(crate) lease: Duration,
    /// How long the client waits on a silent connection before trying another server.
    pub(crate) connection_timeout: Option<Duration>,
}

/// A [`LeaseStore`] keeping an election in Apache ZooKeeper, with leases bound to the store's
/// ZooKeeper session (Curator's `LeaderLatch` recipe, with a guard for what an operator may do).
///
/// Under the election's path `P`, every contender (every lease id a contender asks with) has an
/// ephemeral sequential znode `P/c-<lease id>-<sequence>`, holding its instance id, lease id and
/// metadata. The contender with the lowest sequence is next in line; it takes the lease with one
/// `multi` that checks its znode's version and records it in the persistent guard `P/guard`.
/// Its token is the czxid of its znode: ZooKeeper's transaction id of the znode's creation,
/// which grows across the whole ensemble. The others answer
/// [`AcquireOutcome::Held`] and set an exists-watch on the znode just ahead of theirs: when it
/// goes, the store fires its [release notice](LeaseStore::release_notifications) and the
/// follower asks at once. A handover costs no polling.
///
/// Each store has its own session, whose timeout is at least the lease: [`connect`]
/// refuses a session the ensemble negotiated shorter. A leader believes in its lease until
/// the time it sent its last confirmed renewal plus the lease, and its ephemeral znode lives
/// until at least the last time the server heard from it plus the session timeout: never
/// less. A crashed leader's znode goes when its session expires, about one lease after its last
/// renewal, and the next contender takes over.
///
/// A renewal is one version-checked `setData` on the leader's znode (carrying the metadata); a
/// release is one `multi` deleting it and writing its czxid to `P/released`. The store also
/// gives up, on its own, a lease nobody renewed for a whole lease (as the lease would expire on
/// any other backend), and takes out of the queue a follower's znode whose contender stopped
/// asking (a stopped election), so that the queue never stalls behind it.
///
/// What an operator does to the znodes (design rule 9): each session keeps an ephemeral marker
/// `P/s-<session id>`. When the next contender finds the guard naming a holder whose znode is
/// gone, without `P/released` naming it, while the holder's session marker is still there,
/// somebody else deleted or overwrote the holder's znode, and its holder may still trust its
/// lease: the contender answers [`AcquireOutcome::Withheld`] with
/// [`WithholdReason::RecordTouched`] for one lease. When the marker is gone too, the holder's
/// session expired, or someone deleted both: the contender right behind the holder watched
/// every renewal of the holder's znode (its exists-watch fires at each `setData`), and waits
/// until a lease after the last renewal it saw, which after an expiry has already passed; any
/// other contender waits a lease. A guard found missing by a store that saw it (or for a
/// contender that saw the lease held) was deleted with the election: one lease, too. A
/// contender whose own znode vanished asks again with a new one, at the back of the queue.
///
/// [`connect`]: LeaseStore::connect
///
/// Cheap to clone: clones share the session.
#[derive(Clone)]
pub struct ZooKeeperLeaseStore {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    state: Mutex<State>,
    notifier: ReleaseNotifier,
    /// The highest token this store has seen (minted, or held by another): a token not above
    /// it is never answered.
    highest_token: Highest<i64>,
    /// The task that gives up idle znodes, once a session is open.
    sweeper: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

/// A store dropped leaves its session to expire (it is opened detached): a lease it holds stays
/// held until the session times out, at least a lease after the server last heard from it, as
/// after a crash (the holder's work may still be running). Its followers' znodes are deleted
/// at once, best effort, so that they hold up nobody.
impl Drop for Inner {
    fn drop(&mut self) {
        let sweeper = self
            .sweeper
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        let state = self.state.get_mut();
        let Some(session) = state.session.take() else {
            return;
        };
        let leave: Vec<String> = state
            .contenders
            .values()
            .filter(|own| !own.acquired)
            .filter_map(|own| own.node.as_ref())
            .map(|node| format!("{}/{}", self.settings.path, node.name))
            .collect();
        if leave.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for path in leave {
                    let _ = session.client.delete(&path, None).await;
                }
            });
        }
    }
}

/// An open session.
#[derive(Clone)]
struct Session {
    client: Client,
    id: i64,
    /// The negotiated session timeout.
    timeout: Duration,
}

#[derive(Default)]
struct State {
    session: Option<Session>,
    /// Every lease id this store asked for, with its znode.
    contenders: HashMap<String, Own>,
    /// What this store knows of the guard.
    guard: GuardSeen,
    /// The holder's znode as this store watched it, to tell when its holder last renewed.
    succession: Option<Succession>,
}

/// What a store knows of the election's guard, from its reads.
#[derive(Default)]
struct GuardSeen {
    /// Whether this store has seen the guard: one found missing since was deleted.
    seen: bool,
    /// Since when the guard's holder has been found gone without a release while its session
    /// lives (or the guard missing, [`NO_GUARD`]): the key, and when this store first saw it.
    withheld: Option<(i64, Instant)>,
}

/// What a contender right behind the holder saw of the holder's znode through its exists-watch,
/// which fires at every renewal (a `setData`): when it first saw the latest version (never
/// before that renewal was sent), and whether the watch saw the znode deleted, so that no
/// renewal went unseen in between.
#[derive(Clone, Debug)]
struct Succession {
    name: String,
    version: i32,
    seen_at: Instant,
    deleted_seen: bool,
}

/// The key of [`GuardSeen::withheld`] for a guard found missing: the same for every such
/// deletion, so a wait under it must end when a guard is seen again.
const NO_GUARD: i64 = i64::MIN;

impl GuardSeen {
    /// What a read of the election tells every later decision: whether a guard exists (one
    /// found missing since was deleted), and that a wait for a missing guard is over once a
    /// guard is there again. A guard deleted later is another deletion, waited out from when
    /// it is found missing, never from when an earlier one was.
    fn saw(&mut self, view: &View) {
        self.seen |= view.guard_exists;
        if view.guard_exists && matches!(self.withheld, Some((NO_GUARD, _))) {
            self.withheld = None;
        }
    }
}

impl State {
    /// The holder's znode `name` seen at `version` at `at` (by a read answered then).
    fn observe(&mut self, name: &str, version: i32, at: Instant) {
        match &mut self.succession {
            Some(s) if s.name == name => {
                if s.version != version {
                    s.version = version;
                    s.seen_at = at;
                }
            }
            _ => {
                self.succession = Some(Succession {
                    name: name.to_owned(),
                    version,
                    seen_at: at,
                    deleted_seen: false,
                });
            }
        }
    }
}

/// One lease id of this store.
struct Own {
    instance_id: String,
    ttl: Duration,
    node: Option<Node>,
    /// When the contender last called with this lease id (before its request was sent).
    last_sent: Instant,
    /// Whether it holds the lease.
    acquired: bool,
    /// The znode watched on its behalf.
    watching: Option<String>,
    /// When the znode ahead of it went (and a release notice was sent).
    woken_at: Option<Instant>,
    /// The session in which a creation of its znode was sent, whose reply may be lost.
    created_in: Option<i64>,
}

impl Own {
    fn new(request: &LeaseRequest, now: Instant) -> Self {
        Self {
            instance_id: request.instance_id.clone(),
            ttl: request.ttl,
            node: None,
            last_sent: now,
            acquired: false,
            watching: None,
            woken_at: None,
            created_in: None,
        }
    }

    fn forget_node(&mut self) {
        self.node = None;
        self.acquired = false;
        self.watching = None;
        self.woken_at = None;
    }
}

/// A contender's znode as this store last saw it.
#[derive(Clone, Debug)]
struct Node {
    name: String,
    czxid: i64,
    version: i32,
}

/// The election as one read saw it.
struct View {
    /// The children of the path; `None` when the path does not exist.
    children: Option<Vec<String>>,
    /// Whether the guard exists, and what it says when it parses.
    guard_exists: bool,
    guard: Option<Guard>,
    /// The guard's mzxid, naming a guard that does not parse.
    guard_mzxid: i64,
    /// The czxid in `P/released`.
    released: Option<i64>,
}

impl View {
    fn has(&self, name: &str) -> bool {
        self.children
            .as_ref()
            .is_some_and(|c| c.iter().any(|n| n == name))
    }
}

impl fmt::Debug for ZooKeeperLeaseStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZooKeeperLeaseStore")
            .field("connect_string", &self.inner.settings.connect_string)
            .field("path", &self.inner.settings.path)
            .field("session_timeout", &self.inner.settings.session_timeout)
            .finish_non_exhaustive()
    }
}

fn persistent() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

fn ephemeral() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Ephemeral.with_acls(Acls::anyone_all())
}

fn token_of(operation: Operation, czxid: i64) -> Result<FencingToken> {
    u64::try_from(czxid)
        .ok()
        .filter(|t| *t > 0)
        .map(FencingToken::new)
        .ok_or_else(|| Error::invalid_data(operation, format!("znode czxid {czxid}")))
}

fn check_ttl(operation: Operation, ttl: Duration, session: &Session) -> Result<()> {
    if ttl > session.timeout {
        return Err(Error::backend(
            operation,
            false,
            format!(
                "a lease of {ttl:?} is longer than the ZooKeeper session timeout of {:?}: a \
                 crashed leader's znode could go before its lease ends",
                session.timeout
            ),
        ));
    }
    Ok(())
}

/// What a release found.
enum Released {
    /// The znode was deleted, and the release marker written where it exists.
    Deleted,
    /// The znode was gone.
    Gone,
    /// The znode is at another version than this store knew.
    Moved,
}

/// The outcome of the guard rule for the contender next in line.
enum Guarded {
    /// Nobody may still trust an earlier lease.
    Free,
    /// Wait this long.
    Withhold(Duration),
}

impl ZooKeeperLeaseStore {
    pub(crate) fn new(settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                state: Mutex::new(State::default()),
                notifier: ReleaseNotifier::new(),
                highest_token: Highest::default(),
                sweeper: std::sync::Mutex::new(None),
            }),
        }
    }

    /// The election's path.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.inner.settings.path
    }

    /// The connect string.
    #[must_use]
    pub fn connect_string(&self) -> &str {
        &self.inner.settings.connect_string
    }

    /// The session timeout asked of the ensemble.
    #[must_use]
    pub fn session_timeout(&self) -> Duration {
        self.inner.settings.session_timeout
    }

    /// The session timeout the ensemble granted the current session, once connected.
    pub async fn negotiated_session_timeout(&self) -> Option<Duration> {
        self.inner
            .state
            .lock()
            .await
            .session
            .as_ref()
            .map(|s| s.timeout)
    }

    /// The id of the current session, once connected.
    pub async fn session_id(&self) -> Option<i64> {
        self.inner.state.lock().await.session.as_ref().map(|s| s.id)
    }

    /// The data of `request`'s znode (instance id, lease id, metadata), its metadata checked
    /// first.
    fn contender_data(&self, op: Operation, request: &LeaseRequest) -> Result<Vec<u8>> {
        if let Some(metadata) = &request.metadata {
            self.check_metadata(metadata)?;
        }
        Contender::encode(
            op,
            &request.instance_id,
            &request.lease_id,
            request.metadata.as_deref(),
        )
    }

    fn child(&self, name: &str) -> String {
        format!("{}/{name}", self.inner.settings.path)
    }

    /// The open session, opening a new one when there is none or it ended.
    async fn session(&self, state: &mut State, op: Operation) -> Result<Session> {
        if let Some(session) = &state.session {
            if !session.client.state().is_terminated() {
                return Ok(session.clone());
            }
            tracing::info!(path = %self.path(), session = %format!("{:x}", session.id), "the ZooKeeper session ended; opening a new one");
            state.session = None;
            // Its ephemeral znodes went with it.
            for own in state.contenders.values_mut() {
                own.forget_node();
                own.created_in = None;
            }
        }
        let session = self.open(op).await?;
        state.session = Some(session.clone());
        self.start_sweeper();
        Ok(session)
    }

    /// Opens a session, checks its timeout, and makes the election's path, release marker and
    /// session marker.
    async fn open(&self, op: Operation) -> Result<Session> {
        let settings = &self.inner.settings;
        // Detached: a store dropped does not close its session, which expires instead (see
        // `Drop for Inner`).
        let mut connector = Client::connector()
            .with_session_timeout(settings.session_timeout)
            .with_detached();
        if let Some(timeout) = settings.connection_timeout {
            connector = connector.with_connection_timeout(timeout);
        }
        let client = connector
            .connect(&settings.connect_string)
            .await
            .map_err(|e| failed(op, e, false))?;
        let timeout = client.session_timeout();
        if timeout < settings.lease {
            return Err(Error::backend(
                op,
                false,
                format!(
                    "the ZooKeeper ensemble granted a session timeout of {timeout:?}, shorter than \
                     the election's lease of {:?} (asked for {:?}): a crashed leader's znode \
                     could go before its lease ends; raise the servers' maxSessionTimeout, or \
                     shorten the lease",
                    settings.lease, settings.session_timeout
                ),
            ));
        }
        let session = Session {
            id: client.session_id().0,
            client,
            timeout,
        };
        self.ensure_tree(&session, op).await?;
        tracing::debug!(path = %settings.path, session = %format!("{:x}", session.id), ?timeout, "ZooKeeper session open");
        Ok(session)
    }

    /// Creates what is missing of the election's path (parents included), its release marker,
    /// and the session's marker.
    async fn ensure_tree(&self, session: &Session, op: Operation) -> Result<()> {
        let client = &session.client;
        client
            .mkdir(self.path(), &persistent())
            .await
            .map_err(|e| failed(op, e, false))?;
        match client
            .create(&self.child(RELEASED), &[], &persistent())
            .await
        {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(e) => return Err(failed(op, e, false)),
        }
        self.ensure_marker(session, op).await
    }

    async fn ensure_marker(&self, session: &Session, op: Operation) -> Result<()> {
        match session
            .client
            .create(&self.child(&marker(session.id)), &[], &ephemeral())
            .await
        {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => Ok(()),
            Err(e) => Err(failed(op, e, false)),
        }
    }

    /// Reads the path's children, the guard and the release marker at once.
    async fn read(&self, session: &Session, op: Operation) -> Result<View> {
        let mut reader = session.client.new_multi_reader();
        let added = reader
            .add_get_children(self.path())
            .and_then(|()| reader.add_get_data(&self.child(GUARD)))
            .and_then(|()| reader.add_get_data(&self.child(RELEASED)));
        added.map_err(|e| failed(op, e, false))?;
        let mut results = reader
            .commit()
            .await
            .map_err(|e| failed(op, e, false))?
            .into_iter();
        let mut view = View {
            children: None,
            guard_exists: false,
            guard: None,
            guard_mzxid: 0,
            released: None,
        };
        let unexpected = |what: &str, result: &MultiReadResult| {
            Error::invalid_data(op, format!("ZooKeeper answered {result:?} for {what}"))
        };
        match results.next() {
            Some(MultiReadResult::Children { children }) => view.children = Some(children),
            Some(MultiReadResult::Error {
                err: zookeeper_client::Error::NoNode,
            }) => {}
            Some(MultiReadResult::Error { err }) => return Err(failed(op, err, false)),
            Some(other) => return Err(unexpected("the path's children", &other)),
            None => return Err(Error::invalid_data(op, "ZooKeeper answered no result")),
        }
        match results.next() {
            Some(MultiReadResult::Data { data, stat }) => {
                view.guard_exists = true;
                view.guard = Guard::decode(&data);
                view.guard_mzxid = stat.mzxid;
            }
            Some(MultiReadResult::Error {
                err: zookeeper_client::Error::NoNode,
            }) => {}
            Some(MultiReadResult::Error { err }) => return Err(failed(op, err, false)),
            Some(other) => return Err(unexpected("the guard", &other)),
            None => return Err(Error::invalid_data(op, "ZooKeeper answered no guard")),
        }
        match results.next() {
            Some(MultiReadResult::Data { data, .. }) => view.released = decode_released(&data),
            Some(MultiReadResult::Error {
                err: zookeeper_client::Error::NoNode,
            }) => {}
            Some(MultiReadResult::Error { err }) => return Err(failed(op, err, false)),
            Some(other) => return Err(unexpected("the release marker", &other)),
            None => {
                return Err(Error::invalid_data(
                    op,
                    "ZooKeeper answered no release marker",
                ));
            }
        }
        if let Some(guard) = &view.guard {
            self.saw_token(guard.czxid);
        }
        Ok(view)
    }

    fn saw_token(&self, czxid: i64) {
        self.inner.highest_token.saw(czxid);
    }

    /// The holder the guard names, when its znode is there: its info, read from its znode.
    async fn holder(
        &self,
        session: &Session,
        view: &View,
        op: Operation,
    ) -> Result<Option<(String, LeaderInfo)>> {
        let Some(guard) = view.guard.as_ref().filter(|g| view.has(&g.name)) else {
            return Ok(None);
        };
        match session.client.get_data(&self.child(&guard.name)).await {
            Ok((data, stat)) => {
                if stat.czxid != guard.czxid {
                    // Not the znode the guard recorded (a path recreated by hand).
                    return Ok(None);
                }
                let token = token_of(op, guard.czxid)?;
                let info = match Contender::decode(&data) {
                    Some(c) => {
                        LeaderInfo::new(c.instance_id, Some(token)).with_metadata(c.metadata)
                    }
                    // Overwritten by someone: the holder is still there, its name unknown.
                    None => LeaderInfo::new(String::new(), Some(token)),
                };
                Ok(Some((guard.name.clone(), info)))
            }
            Err(zookeeper_client::Error::NoNode) => Ok(None),
            Err(e) => Err(failed(op, e, false)),
        }
    }

    /// The guard rule for a contender next in line (design rule 9).
    fn guard_rule(state: &mut State, view: &View, request: &LeaseRequest, now: Instant) -> Guarded {
        let ttl = request.ttl;
        let key = match (&view.guard, view.guard_exists) {
            // No guard: a fresh election, or one whose guard was deleted (with the holder's
            // znode: `deleteall`, or the whole ensemble's data lost) if this store ever saw it
            // or its contender saw the lease held (design rules 9 and 14).
            (None, false) if !state.guard.seen && !request.expects_record => {
                return Guarded::Free;
            }
            (None, false) => NO_GUARD,
            // A guard that does not parse (an operator's bytes) proves nothing: withhold.
            (None, true) => -view.guard_mzxid.abs() - 1,
            (Some(guard), _) => {
                if view.released == Some(guard.czxid) {
                    return Guarded::Free;
                }
                if !view.has(&marker(guard.session)) {
                    // The holder's session marker is gone too. Its session expired (its znodes
                    // went with it, a session timeout, at least its lease, after the server
                    // last heard from it), or someone deleted both (`deleteall` in an unlucky
                    // order) while the holder lives. A contender that watched the holder's
                    // znode up to its deletion knows when it last saw it renewed: the holder
                    // trusts its lease a lease after that at most, and after an expiry that is
                    // already past. Without that knowledge, it waits a lease as below.
                    let wait = ttl.max(Duration::from_millis(guard.ttl_ms));
                    if let Some(s) = state
                        .succession
                        .as_ref()
                        .filter(|s| s.name == guard.name && s.deleted_seen)
                    {
                        let until = s.seen_at + wait;
                        return if now >= until {
                            Guarded::Free
                        } else {
                            Guarded::Withhold(until - now)
                        };
                    }
                }
                guard.czxid
            }
        };
        let wait = ttl.max(
            view.guard
                .as_ref()
                .map_or(Duration::ZERO, |g| Duration::from_millis(g.ttl_ms)),
        );
        let since = match state.guard.withheld {
            Some((seen, since)) if seen == key => since,
            _ => {
                state.guard.withheld = Some((key, now));
                now
            }
        };
        let waited = now.saturating_duration_since(since);
        if waited >= wait {
            Guarded::Free
        } else {
            Guarded::Withhold(wait - waited)
        }
    }

    /// Finds a znode of `lease_id` among `children` (one whose creation reply was lost).
    fn find_own(view: &View, lease_id: &str) -> Option<String> {
        let prefix = contender_prefix(lease_id);
        view.children
            .as_ref()?
            .iter()
            .find(|n| n.starts_with(&prefix) && sequence(n).is_some())
            .cloned()
    }

    /// Watches `target` for `lease_id`'s contender: when it goes, a release notice. Every
    /// change of its data (a renewal) is noted and the watch set again.
    fn watch(&self, lease_id: String, target: String, watcher: OneshotWatcher) {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut watcher = watcher;
            loop {
                let event = watcher.changed().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let store = ZooKeeperLeaseStore { inner };
                let mut state = store.inner.state.lock().await;
                let mut deleted = event.event_type == EventType::NodeDeleted;
                if event.event_type == EventType::NodeDataChanged {
                    let Some(session) = state.session.clone() else {
                        return;
                    };
                    match session
                        .client
                        .check_and_watch_stat(&store.child(&target))
                        .await
                    {
                        Ok((Some(stat), next)) => {
                            state.observe(&target, stat.version, Instant::now());
                            watcher = next;
                            continue;
                        }
                        Ok((None, _)) => {
                            // Deleted after a change this store may not have seen: count from
                            // now.
                            state.observe(&target, -1, Instant::now());
                            deleted = true;
                        }
                        Err(_) => {}
                    }
                }
                match &mut state.succession {
                    Some(s) if s.name == target && deleted => s.deleted_seen = true,
                    Some(s) if s.name == target => state.succession = None,
                    _ => {}
                }
                if let Some(own) = state.contenders.get_mut(&lease_id) {
                    own.watching = None;
                    if deleted {
                        own.woken_at = Some(Instant::now());
                    }
                }
                drop(state);
                store.inner.notifier.notify();
                return;
            }
        });
    }

    fn start_sweeper(&self) {
        let mut sweeper = self
            .inner
            .sweeper
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if sweeper.is_some() {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        let tick = (self.inner.settings.lease / 20)
            .clamp(Duration::from_millis(20), Duration::from_millis(500));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                ZooKeeperLeaseStore { inner }.sweep().await;
            }
        });
        *sweeper = Some(task.abort_handle());
    }

    /// Gives up what no contender calls for any more: a lease nobody renewed for a whole
    /// lease (released, as it would expire on another backend), a follower's znode whose
    /// contender stopped asking (a stopped election: it would stall the queue once in front),
    /// and znodes whose creation reply was lost for a lease id nobody asks with any more.
    async fn sweep(&self) {
        let mut state = self.inner.state.lock().await;
        let Some(session) = state.session.clone() else {
            return;
        };
        if session.client.state().is_terminated() {
            return;
        }
        let now = Instant::now();
        let due: Vec<String> = state
            .contenders
            .iter()
            .filter(|(_, own)| {
                let idle = now.saturating_duration_since(own.last_sent);
                if own.acquired {
                    idle >= own.ttl
                } else if let Some(woken) = own.woken_at.filter(|w| *w > own.last_sent) {
                    // Its turn may have come, and its contender did not ask.
                    now.saturating_duration_since(woken) >= own.ttl
                } else {
                    idle >= own.ttl * IDLE_FOLLOWER_LEASES
                }
            })
            .map(|(lease_id, _)| lease_id.clone())
            .collect();
        for lease_id in due {
            let Some(own) = state.contenders.get(&lease_id) else {
                continue;
            };
            let done = match (&own.node, own.acquired) {
                (Some(node), true) => {
                    tracing::info!(path = %self.path(), node = %node.name, "a lease nobody renewed for a lease: released");
                    let (node, instance) = (node.clone(), own.instance_id.clone());
                    self.give_up(&session, &node, (&instance, &lease_id), true)
                        .await
                }
                (Some(node), false) => {
                    tracing::debug!(path = %self.path(), node = %node.name, "a follower that stopped asking: out of the queue");
                    let (node, instance) = (node.clone(), own.instance_id.clone());
                    self.give_up(&session, &node, (&instance, &lease_id), false)
                        .await
                }
                (None, _) if own.created_in == Some(session.id) => {
                    self.remove_orphans(&session, &lease_id).await
                }
                (None, _) => true,
            };
            if done {
                state.contenders.remove(&lease_id);
            }
        }
    }

    /// Deletes `node` (version-checked), writing it to the release marker when `released`.
    /// Whether it is gone.
    async fn give_up(
        &self,
        session: &Session,
        node: &Node,
        owner: (&str, &str),
        released: bool,
    ) -> bool {
        let op = Operation::Release;
        let path = self.child(&node.name);
        let result = if released {
            self.delete_released(session, node, owner.0, owner.1).await
        } else {
            match session.client.delete(&path, Some(node.version)).await {
                // Gone already, or rewritten by someone: out of the queue either way.
                Ok(()) | Err(zookeeper_client::Error::NoNode) => Ok(true),
                Err(zookeeper_client::Error::BadVersion) => session
                    .client
                    .delete(&path, None)
                    .await
                    .or_else(|e| match e {
                        zookeeper_client::Error::NoNode => Ok(()),
                        e => Err(e),
                    })
                    .map(|()| true)
                    .map_err(|e| failed(op, e, true)),
                Err(e) => Err(failed(op, e, true)),
            }
        };
        match result {
            Ok(_) => true,
            Err(err) => {
                tracing::debug!(path = %path, error = %err, "could not give up a znode; trying again");
                false
            }
        }
    }

    /// Deletes the znodes of `lease_id` this session may have created unseen.
    async fn remove_orphans(&self, session: &Session, lease_id: &str) -> bool {
        let prefix = contender_prefix(lease_id);
        let Ok(children) = session.client.list_children(self.path()).await else {
            return false;
        };
        for name in children.iter().filter(|n| n.starts_with(&prefix)) {
            match session.client.delete(&self.child(name), None).await {
                Ok(()) | Err(zookeeper_client::Error::NoNode) => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// The version of our znode `node` when it still holds what this store writes for
    /// (`instance_id`, `lease_id`): a write of ours whose reply was lost (a renewal that timed
    /// out, the connection dropped) moved its version on. `None` when it is gone or someone
    /// else wrote it.
    async fn resync(
        &self,
        session: &Session,
        node: &Node,
        instance_id: &str,
        lease_id: &str,
    ) -> Option<i32> {
        let (data, stat) = session
            .client
            .get_data(&self.child(&node.name))
            .await
            .ok()?;
        let contender = Contender::decode(&data)?;
        (stat.czxid == node.czxid
            && contender.instance_id == instance_id
            && contender.lease_id == lease_id)
            .then_some(stat.version)
    }

    /// [`delete_released_once`](Self::delete_released_once), once more at the znode's actual
    /// version when a write of ours whose reply was lost moved it on.
    async fn delete_released(
        &self,
        session: &Session,
        node: &Node,
        instance_id: &str,
        lease_id: &str,
    ) -> Result<bool> {
        let path = self.child(&node.name);
        match self.delete_released_once(session, &path, node).await? {
            Released::Deleted => Ok(true),
            Released::Gone => Ok(false),
            Released::Moved => match self.resync(session, node, instance_id, lease_id).await {
                Some(version) => {
                    let node = Node {
                        version,
                        ..node.clone()
                    };
                    Ok(matches!(
                        self.delete_released_once(session, &path, &node).await?,
                        Released::Deleted
                    ))
                }
                None => Ok(false),
            },
        }
    }

    /// One `multi`: delete the holder's znode (version-checked) and write its czxid to the
    /// release marker. Without the marker (deleted with the election by an operator, and the
    /// path made again by a contender whose call was cut before it made the marker too, or by
    /// hand), the same `multi` creates it: a plain delete would leave the successor to wait
    /// out a whole lease for a release it cannot tell from an operator's deletion.
    async fn delete_released_once(
        &self,
        session: &Session,
        path: &str,
        node: &Node,
    ) -> Result<Released> {
        let op = Operation::Release;
        let marker = self.child(RELEASED);
        let czxid = encode_released(node.czxid);
        // Set the marker; when it is missing, create it; when created meanwhile, set it.
        let mut create = false;
        for _ in 0..3 {
            let mut writer = session.client.new_multi_writer();
            writer
                .add_delete(path, Some(node.version))
                .and_then(|()| {
                    if create {
                        writer.add_create(&marker, &czxid, &persistent())
                    } else {
                        writer.add_set_data(&marker, &czxid, None)
                    }
                })
                .map_err(|e| failed(op, e, false))?;
            match writer.commit().await {
                Ok(_) => return Ok(Released::Deleted),
                Err(MultiWriteError::OperationFailed {
                    index: 1,
                    source: zookeeper_client::Error::NoNode,
                }) if !create => {
                    tracing::info!(path = %self.path(), "the release marker was missing; making it again");
                    create = true;
                }
                Err(MultiWriteError::OperationFailed {
                    index: 1,
                    source: zookeeper_client::Error::NodeExists,
                }) if create => create = false,
                Err(MultiWriteError::OperationFailed {
                    index: 0,
                    source: zookeeper_client::Error::NoNode,
                }) => return Ok(Released::Gone),
                Err(MultiWriteError::OperationFailed {
                    index: 0,
                    source: zookeeper_client::Error::BadVersion,
                }) => return Ok(Released::Moved),
                Err(MultiWriteError::OperationFailed { source, .. })
                | Err(MultiWriteError::RequestFailed { source }) => {
                    return Err(failed(op, source, true));
                }
            }
        }
        // The marker keeps coming and going (an operator at work): the plain delete.
        match session.client.delete(path, Some(node.version)).await {
            Ok(()) => Ok(Released::Deleted),
            Err(zookeeper_client::Error::NoNode) => Ok(Released::Gone),
            Err(zookeeper_client::Error::BadVersion) => Ok(Released::Moved),
            Err(e) => Err(failed(op, e, true)),
        }
    }

    /// Creates the znode of `request`'s contender.
    async fn create_own(
        &self,
        session: &Session,
        request: &LeaseRequest,
        data: &[u8],
        op: Operation,
    ) -> Result<Node> {
        let prefix = self.child(&contender_prefix(&request.lease_id));
        let options = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
        let mut result = session.client.create(&prefix, data, &options).await;
        if matches!(result, Err(zookeeper_client::Error::NoNode)) {
            // The path went (an operator deleted the tree): make it again.
            self.ensure_tree(session, op).await?;
            result = session.client.create(&prefix, data, &options).await;
        }
        let (stat, seq) = result.map_err(|e| failed(op, e, true))?;
        Ok(Node {
            name: format!("{}{seq}", contender_prefix(&request.lease_id)),
            czxid: stat.czxid,
            version: stat.version,
        })
    }

    /// The acquisition: our znode's data (version-checked) and the guard, in one `multi`;
    /// once more at the znode's actual version when a write of ours whose reply was lost moved
    /// it on.
    async fn take(
        &self,
        session: &Session,
        own: &mut Own,
        view: &View,
        request: &LeaseRequest,
        data: &[u8],
    ) -> Result<AcquireOutcome> {
        let op = Operation::Acquire;
        let Some(node) = own.node.clone() else {
            return Err(Error::invalid_data(op, "no znode to acquire with"));
        };
        match self
            .take_once(session, own, view, data, request.ttl)
            .await?
        {
            Some(outcome) => Ok(outcome),
            None => {
                let Some(version) = self
                    .resync(session, &node, &request.instance_id, &request.lease_id)
                    .await
                else {
                    return Ok(self.touched(session, own, &node).await);
                };
                own.node = Some(Node {
                    version,
                    ..node.clone()
                });
                match self
                    .take_once(session, own, view, data, request.ttl)
                    .await?
                {
                    Some(outcome) => Ok(outcome),
                    None => Ok(self.touched(session, own, &node).await),
                }
            }
        }
    }

    /// Our znode deleted or overwritten by someone else while our session lives: deleted (so
    /// that the queue moves on); the contender asks again at once, with a new znode at the
    /// back of the queue. The guard keeps the lease from anybody while its holder may trust it.
    async fn touched(&self, session: &Session, own: &mut Own, node: &Node) -> AcquireOutcome {
        tracing::warn!(path = %self.path(), node = %node.name, "the contender's znode was touched by someone else");
        // Best effort: left behind, it goes with the session or the sweeper.
        let _ = session.client.delete(&self.child(&node.name), None).await;
        own.forget_node();
        AcquireOutcome::Held {
            leader: None,
            expires_in: Some(Duration::ZERO),
        }
    }

    /// [`take`](Self::take)'s `multi`, at the version this store knows: `None` when the znode
    /// is gone or at another version.
    async fn take_once(
        &self,
        session: &Session,
        own: &mut Own,
        view: &View,
        data: &[u8],
        ttl: Duration,
    ) -> Result<Option<AcquireOutcome>> {
        let op = Operation::Acquire;
        let Some(node) = own.node.clone() else {
            return Err(Error::invalid_data(op, "no znode to acquire with"));
        };
        if !own.acquired && node.czxid <= self.inner.highest_token.get() {
            return Err(Error::backend(
                op,
                true,
                format!(
                    "the contender's znode has czxid {}, not above the highest token this store \
                     has seen ({}): the ensemble's transaction ids went back (was its data lost?)",
                    node.czxid,
                    self.inner.highest_token.get()
                ),
            ));
        }
        let guard = Guard {
            czxid: node.czxid,
            session: session.id,
            name: node.name.clone(),
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        };
        let mut writer = session.client.new_multi_writer();
        let guard_path = self.child(GUARD);
        writer
            .add_set_data(&self.child(&node.name), data, Some(node.version))
            .and_then(|()| {
                if view.guard_exists {
                    writer.add_set_data(&guard_path, &guard.encode(), None)
                } else {
                    writer.add_create(&guard_path, &guard.encode(), &persistent())
                }
            })
            .map_err(|e| failed(op, e, false))?;
        match writer.commit().await {
            Ok(results) => {
                let version = match results.first() {
                    Some(MultiWriteResult::SetData { stat }) => stat.version,
                    other => {
                        return Err(Error::invalid_data(
                            op,
                            format!("ZooKeeper answered {other:?} for the znode's update"),
                        ));
                    }
                };
                own.node = Some(Node {
                    version,
                    ..node.clone()
                });
                own.acquired = true;
                own.watching = None;
                self.saw_token(node.czxid);
                Ok(Some(AcquireOutcome::Acquired(Lease::new(token_of(
                    op, node.czxid,
                )?))))
            }
            Err(MultiWriteError::OperationFailed {
                index: 0,
                source: zookeeper_client::Error::NoNode | zookeeper_client::Error::BadVersion,
            }) => Ok(None),
            Err(MultiWriteError::OperationFailed { source, .. })
            | Err(MultiWriteError::RequestFailed { source }) => Err(failed(op, source, true)),
        }
    }
}

impl ZooKeeperLeaseStore {
    /// A renewal at the znode's actual version, when a write of ours whose reply was lost
    /// moved it on (the znode still holds what this store writes for the request). Whether it
    /// renewed.
    async fn renew_resynced(
        &self,
        session: &Session,
        own: &mut Own,
        node: &Node,
        request: &LeaseRequest,
        data: &[u8],
    ) -> Result<bool> {
        let Some(version) = self
            .resync(session, node, &request.instance_id, &request.lease_id)
            .await
        else {
            return Ok(false);
        };
        let path = self.child(&node.name);
        match session.client.set_data(&path, data, Some(version)).await {
            Ok(stat) => {
                own.node = Some(Node {
                    version: stat.version,
                    ..node.clone()
                });
                Ok(true)
            }
            Err(zookeeper_client::Error::BadVersion | zookeeper_client::Error::NoNode) => Ok(false),
            Err(e) => Err(failed(Operation::Renew, e, true)),
        }
    }
}

impl LeaseStore for ZooKeeperLeaseStore {
    fn election_name(&self) -> &str {
        &self.inner.settings.path
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
            .with_release_notifications()
            .with_metadata(MAX_METADATA_LEN)
    }

    async fn connect(&self) -> Result<()> {
        let mut state = self.inner.state.lock().await;
        self.session(&mut state, Operation::Connect)
            .await
            .map(|_| ())
    }

    async fn try_acquire(&self, request: &LeaseRequest) -> Result<AcquireOutcome> {
        let op = Operation::Acquire;
        let data = self.contender_data(op, request)?;
        let mut guard = self.inner.state.lock().await;
        let state = &mut *guard;
        let session = self.session(state, op).await?;
        check_ttl(op, request.ttl, &session)?;
        let now = Instant::now();
        let own = state
            .contenders
            .entry(request.lease_id.clone())
            .or_insert_with(|| Own::new(request, now));
        own.last_sent = now;
        own.ttl = request.ttl;
        own.instance_id.clone_from(&request.instance_id);
        let mut view = self.read(&session, op).await?;
        state.guard.saw(&view);
        if view.children.is_some() && !view.has(&marker(session.id)) {
            // Our session marker was deleted while the session lives: make it again (others
            // read it to tell whether our session lives).
            tracing::warn!(path = %self.path(), "the session marker was deleted by someone else");
            self.ensure_marker(&session, op).await?;
        }
        let own = state
            .contenders
            .get_mut(&request.lease_id)
            .ok_or_else(|| Error::invalid_data(op, "the contender's entry vanished"))?;
        let found = Self::find_own(&view, &request.lease_id);
        match (&own.node, found) {
            (Some(node), Some(name)) if node.name == name => {}
            (Some(node), _) => {
                // Deleted by someone else while our session lives (perhaps with the whole
                // election): ask again with a new znode, at the back of the queue.
                tracing::warn!(path = %self.path(), node = %node.name, "the contender's znode was deleted by someone else");
                own.forget_node();
                return Ok(AcquireOutcome::Held {
                    leader: None,
                    expires_in: Some(Duration::ZERO),
                });
            }
            (None, Some(name)) => {
                // Created by an earlier call whose reply was lost.
                match session.client.check_stat(&self.child(&name)).await {
                    Ok(Some(Stat { czxid, version, .. })) => {
                        own.node = Some(Node {
                            name,
                            czxid,
                            version,
                        });
                    }
                    Ok(None) => {
                        return Ok(AcquireOutcome::Held {
                            leader: None,
                            expires_in: Some(Duration::ZERO),
                        });
                    }
                    Err(e) => return Err(failed(op, e, false)),
                }
            }
            (None, None) => {
                own.created_in = Some(session.id);
                let node = self.create_own(&session, request, &data, op).await?;
                own.node = Some(node);
                view = self.read(&session, op).await?;
                state.guard.saw(&view);
            }
        }
        let Some(node) = own.node.clone() else {
            return Err(Error::invalid_data(op, "no znode after creating it"));
        };
        let children = view.children.clone().unwrap_or_default();
        let line = queue(&children);
        let Some(position) = line.iter().position(|(_, n)| *n == node.name) else {
            // Gone between the creation and the read: deleted by someone else.
            own.forget_node();
            return Ok(AcquireOutcome::Held {
                leader: None,
                expires_in: Some(Duration::ZERO),
            });
        };
        let holder = self.holder(&session, &view, op).await?;
        let lowest = position == 0;
        match &holder {
            Some((name, _)) if *name == node.name => {
                // Ours already: an acquisition whose reply was lost, or a renewal by acquiring.
                let outcome = self.take(&session, own, &view, request, &data).await?;
                // The guard this store wrote counts as seen: deleted, it was touched.
                state.guard.seen = true;
                return Ok(outcome);
            }
            None if lowest => match Self::guard_rule(state, &view, request, now) {
                Guarded::Free => {
                    state.guard.withheld = None;
                    let own = state
                        .contenders
                        .get_mut(&request.lease_id)
                        .ok_or_else(|| Error::invalid_data(op, "the contender's entry vanished"))?;
                    let outcome = self.take(&session, own, &view, request, &data).await?;
                    // The guard this store wrote counts as seen: deleted, it was touched.
                    state.guard.seen = true;
                    return Ok(outcome);
                }
                Guarded::Withhold(wait) => {
                    return Ok(AcquireOutcome::Withheld {
                        wait,
                        reason: WithholdReason::RecordTouched,
                    });
                }
            },
            _ => {}
        }
        // Somebody else is ahead: watch the znode just ahead of ours (the holder's, when ours
        // is first in line behind a holder out of order).
        let target = if lowest {
            holder.as_ref().map(|(name, _)| name.clone())
        } else {
            Some(line[position - 1].1.to_owned())
        };
        let holder_name = holder.as_ref().map(|(name, _)| name.clone());
        let leader = holder.map(|(_, info)| info);
        if let Some(token) = leader.as_ref().and_then(|l| l.token) {
            self.saw_token(i64::try_from(token.get()).unwrap_or(i64::MAX));
        }
        let own = state
            .contenders
            .get_mut(&request.lease_id)
            .ok_or_else(|| Error::invalid_data(op, "the contender's entry vanished"))?;
        own.acquired = false;
        if let Some(target) = target.filter(|t| own.watching.as_ref() != Some(t)) {
            match session
                .client
                .check_and_watch_stat(&self.child(&target))
                .await
            {
                Ok((Some(stat), watcher)) => {
                    own.watching = Some(target.clone());
                    self.watch(request.lease_id.clone(), target.clone(), watcher);
                    if holder_name.as_deref() == Some(target.as_str()) {
                        state.observe(&target, stat.version, Instant::now());
                    }
                }
                Ok((None, _)) => {
                    // Gone meanwhile: ask again at once.
                    return Ok(AcquireOutcome::Held {
                        leader,
                        expires_in: Some(Duration::ZERO),
                    });
                }
                Err(e) => return Err(failed(op, e, false)),
            }
        }
        Ok(AcquireOutcome::Held {
            leader,
            expires_in: Some(request.ttl),
        })
    }

    async fn renew(&self, request: &LeaseRequest, lease: &Lease) -> Result<RenewOutcome> {
        let op = Operation::Renew;
        let data = self.contender_data(op, request)?;
        let mut state = self.inner.state.lock().await;
        let Some(session) = state.session.clone() else {
            return Ok(RenewOutcome::Lost);
        };
        check_ttl(op, request.ttl, &session)?;
        let Some(own) = state.contenders.get_mut(&request.lease_id) else {
            return Ok(RenewOutcome::Lost);
        };
        let node = match &own.node {
            Some(node)
                if own.acquired
                    && own.instance_id == request.instance_id
                    && u64::try_from(node.czxid).ok() == Some(lease.token.get()) =>
            {
                node.clone()
            }
            _ => return Ok(RenewOutcome::Lost),
        };
        own.last_sent = Instant::now();
        own.ttl = request.ttl;
        let path = self.child(&node.name);
        match session
            .client
            .set_data(&path, &data, Some(node.version))
            .await
        {
            Ok(stat) => {
                own.node = Some(Node {
                    version: stat.version,
                    ..node
                });
                Ok(RenewOutcome::Renewed)
            }
            Err(zookeeper_client::Error::BadVersion)
                if self
                    .renew_resynced(&session, own, &node, request, &data)
                    .await? =>
            {
                Ok(RenewOutcome::Renewed)
            }
            Err(zookeeper_client::Error::BadVersion) => {
                // Overwritten by someone else: give the znode up so that the queue moves on
                // (successors still wait a lease: no release is recorded).
                tracing::warn!(path = %path, "the leader's znode was overwritten by someone else");
                let _ = session.client.delete(&path, None).await;
                state.contenders.remove(&request.lease_id);
                Ok(RenewOutcome::Lost)
            }
            Err(zookeeper_client::Error::NoNode) => {
                state.contenders.remove(&request.lease_id);
                Ok(RenewOutcome::Lost)
            }
            Err(e) if session_ended(&e) => {
                state.contenders.remove(&request.lease_id);
                Ok(RenewOutcome::Lost)
            }
            Err(e) => Err(failed(op, e, true)),
        }
    }

    async fn release(&self, request: &LeaseRequest, lease: &Lease) -> Result<bool> {
        let mut state = self.inner.state.lock().await;
        let Some(session) = state.session.clone() else {
            return Ok(false);
        };
        let Some(own) = state.contenders.get(&request.lease_id) else {
            return Ok(false);
        };
        let node = match &own.node {
            Some(node)
                if own.acquired
                    && own.instance_id == request.instance_id
                    && u64::try_from(node.czxid).ok() == Some(lease.token.get()) =>
            {
                node.clone()
            }
            _ => return Ok(false),
        };
        if session.client.state().is_terminated() {
            // The session ended: its znodes went with it, and nothing is left to release.
            state.contenders.remove(&request.lease_id);
            return Ok(false);
        }
        let released = self
            .delete_released(&session, &node, &request.instance_id, &request.lease_id)
            .await?;
        state.contenders.remove(&request.lease_id);
        if released {
            self.inner.notifier.notify();
        }
        Ok(released)
    }

    async fn current_leader(&self) -> Result<Option<LeaderInfo>> {
        let op = Operation::CurrentLeader;
        let mut state = self.inner.state.lock().await;
        let session = self.session(&mut state, op).await?;
        drop(state);
        let view = self.read(&session, op).await?;
        Ok(self
            .holder(&session, &view, op)
            .await?
            .map(|(_, info)| info))
    }

    fn release_notifications(&self) -> Option<ReleaseReceiver> {
        Some(self.inner.notifier.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_positive_czxids() {
        assert_eq!(token_of(Operation::Acquire, 5).unwrap().get(), 5);
        assert!(token_of(Operation::Acquire, 0).is_err());
        assert!(token_of(Operation::Acquire, -3).is_err());
    }

    #[test]
    fn node_names_are_the_ones_the_queue_reads() {
        let lease = "00112233445566778899aabbccddeeff";
        let name = format!("{}{:010}", contender_prefix(lease), 7);
        assert_eq!(sequence(&name), Some(7));
    }
}
