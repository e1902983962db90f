//! How a store reaches etcd: the endpoints and connection options it makes its client from,
//! or a client made by the caller.

use std::fmt;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

/// HTTP/2 keep-alive pings on idle connections, so that a member that vanished without closing
/// the connection is noticed. etcd refuses pings more often than every 5 s by default
/// (`--grpc-keepalive-min-time`), so not more often than that.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Makes the store's client, on the first operation.
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
    /// request and connection attempt is bounded by it, dead connections are found by HTTP/2
    /// pings, and a member that lost its Raft leader refuses requests at once instead of
    /// holding them (`require_leader`).
    pub(crate) fn options(timeout: Duration) -> ConnectOptions {
        ConnectOptions::new()
            .with_timeout(timeout)
            .with_connect_timeout(timeout)
            .with_keep_alive(KEEP_ALIVE_INTERVAL, timeout)
            .with_keep_alive_while_idle(false)
            .with_require_leader(true)
    }

    pub(crate) async fn connect(&self) -> Result<Client, etcd_client::Error> {
        match self {
            Self::Endpoints {
                endpoints, options, ..
            } => Client::connect(endpoints, Some(ConnectOptions::clone(options))).await,
            Self::Client(client) => Ok(Client::clone(client)),
        }
    }
}
