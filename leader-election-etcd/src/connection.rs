//! How a store reaches etcd: one client per member endpoint, one of them in use at a time,
//! moving to the next member when the one in use cannot be reached (as etcd's own Go client
//! pins an endpoint); or a client made by the caller.
//!
//! etcd-client balances one channel over all endpoints and keeps sending requests to a member
//! that died (they fail with "tcp connect error"), so the store keeps a channel per member and
//! chooses itself.

use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

/// HTTP/2 keep-alive pings on idle connections, so that a member that vanished without closing
/// the connection is noticed. etcd refuses pings more often than every 5 s by default
/// (`--grpc-keepalive-min-time`), so not more often than that.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Makes the clients, on the first operation that needs them.
#[derive(Clone)]
pub(crate) enum Connector {
    /// Endpoints and options from the builder.
    Endpoints {
        endpoints: Vec<String>,
        options: Box<ConnectOptions>,
        /// Shown by `Debug` instead of the options, which hold the password.
        user: Option<String>,
        tls: bool,
    },
    /// A client configured by the caller.
    Client(Box<Client>),
}

impl fmt::Debug for Connector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Endpoints {
                endpoints,
                user,
                tls,
                ..
            } => f
                .debug_struct("Endpoints")
                .field("endpoints", endpoints)
                .field("user", user)
                .field("tls", tls)
                .finish_non_exhaustive(),
            Self::Client(_) => f.write_str("Client(..)"),
        }
    }
}

impl Connector {
    /// Connection options for an election whose operations time out after `timeout`: every
    /// request is bounded by half of it (so that a member that does not answer is left for
    /// another while the operation can still succeed there), a connection attempt too, dead
    /// connections are found by HTTP/2 pings, and a member that lost its Raft leader refuses
    /// requests at once instead of holding them (`require_leader`).
    pub(crate) fn options(timeout: Duration) -> ConnectOptions {
        let request = (timeout / 2).max(Duration::from_millis(10));
        ConnectOptions::new()
            .with_timeout(request)
            .with_connect_timeout(request)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, timeout)
            .with_keep_alive_while_idle(false)
            .with_require_leader(true)
    }

    fn members(&self) -> usize {
        match self {
            Self::Endpoints { endpoints, .. } => endpoints.len().max(1),
            Self::Client(_) => 1,
        }
    }

    async fn connect(&self, member: usize) -> Result<Client, etcd_client::Error> {
        match self {
            Self::Endpoints {
                endpoints, options, ..
            } => Client::connect([&endpoints[member]], Some(ConnectOptions::clone(options))).await,
            Self::Client(client) => Ok(Client::clone(client)),
        }
    }
}

/// The clients of a store: one per member, made when first used, and the member in use.
pub(crate) struct Pool {
    connector: Connector,
    clients: Vec<Mutex<Option<Client>>>,
    current: AtomicUsize,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("connector", &self.connector)
            .field("current", &self.current.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Whether a request failed before it was sent: the connection could not be made. It did not
/// take effect, so it may be sent to another member at once.
pub(crate) fn unsent(err: &etcd_client::Error) -> bool {
    match err {
        etcd_client::Error::GRpcStatus(status) => {
            status.code() == tonic::Code::Unavailable
                && (status.message().contains("connect error")
                    || status.message().contains("Connection refused"))
        }
        etcd_client::Error::TransportError(_) => true,
        _ => false,
    }
}

/// Whether a request failed in a way that says the member in use should be left: unreachable,
/// too slow, or cut off from its Raft leader (`require_leader`).
fn unreachable(err: &etcd_client::Error) -> bool {
    match err {
        etcd_client::Error::GRpcStatus(status) => matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Cancelled
                | tonic::Code::Unknown
        ),
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        _ => false,
    }
}

/// Whether etcd refused a request for its authentication token (expired or revoked).
fn auth_expired(err: &etcd_client::Error) -> bool {
    matches!(err, etcd_client::Error::GRpcStatus(status)
        if status.code() == tonic::Code::Unauthenticated)
}

fn lock(client: &Mutex<Option<Client>>) -> std::sync::MutexGuard<'_, Option<Client>> {
    client
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pool {
    pub(crate) fn new(connector: Connector) -> Self {
        let members = connector.members();
        Self {
            connector,
            clients: (0..members).map(|_| Mutex::new(None)).collect(),
            // Contenders spread over the members from the start.
            current: AtomicUsize::new(fastrand::usize(..members)),
        }
    }

    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Whether a client was made already.
    pub(crate) fn connected(&self) -> bool {
        self.clients.iter().any(|c| lock(c).is_some())
    }

    /// The member in use and its client.
    async fn client(&self) -> Result<(usize, Client), etcd_client::Error> {
        let member = self.current.load(Ordering::Relaxed) % self.clients.len();
        if let Some(client) = lock(&self.clients[member]).clone() {
            return Ok((member, client));
        }
        // Two requests may connect at once; either client will do.
        let client = self.connector.connect(member).await?;
        *lock(&self.clients[member]) = Some(client.clone());
        Ok((member, client))
    }

    /// Forgets the client of `member`, so that the next request makes a new one (and
    /// authenticates again).
    fn forget(&self, member: usize) {
        *lock(&self.clients[member]) = None;
    }

    /// Leaves `member` for the next one, unless another request did already.
    fn leave(&self, member: usize) {
        let next = (member + 1) % self.clients.len();
        let _ = self
            .current
            .compare_exchange(member, next, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Sends a request with the client of the member in use. A request that could not be sent
    /// goes to the next member at once (at most once to each); after any other failure that
    /// says the member is unreachable, the next request goes to the next member, and the error
    /// is returned (it may have taken effect: the caller decides).
    pub(crate) async fn call<T, F, Fut>(&self, mut request: F) -> Result<T, etcd_client::Error>
    where
        F: FnMut(Client) -> Fut,
        Fut: Future<Output = Result<T, etcd_client::Error>>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let (member, result) = match self.client().await {
                Ok((member, client)) => (member, request(client).await),
                Err(err) => (
                    self.current.load(Ordering::Relaxed) % self.clients.len(),
                    Err(err),
                ),
            };
            match result {
                Ok(value) => return Ok(value),
                Err(err) => {
                    // etcd-client authenticates once, when a client is made; once the token
                    // expires (`--auth-token-ttl`, 5 min unused), etcd refuses every request
                    // with it. Refused, so not executed: authenticate again and resend once.
                    if auth_expired(&err)
                        && matches!(self.connector, Connector::Endpoints { user: Some(_), .. })
                    {
                        self.forget(member);
                        if tries < 2 {
                            continue;
                        }
                    }
                    if unreachable(&err) || unsent(&err) {
                        self.leave(member);
                    }
                    if unsent(&err) && tries < self.clients.len() {
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }
}
