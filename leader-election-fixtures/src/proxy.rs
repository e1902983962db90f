//! One TCP fault proxy for every test and for the tester's partitions: it forwards
//! connections from a port of 127.0.0.1 to a target and can, at any moment,
//!
//! - [`hang`](FaultProxy::hang): black-hole every connection (live ones and new ones stay open
//!   and silent, as in a network partition), until [`heal`](FaultProxy::heal), which closes
//!   them so that clients reconnect;
//! - [`refuse`](FaultProxy::refuse): close every live connection and accept-then-close new
//!   ones (a partition the client notices at once), until [`heal`](FaultProxy::heal);
//! - [`reset`](FaultProxy::reset): close every live connection once;
//! - [`set_latency`](FaultProxy::set_latency): delay every chunk by a time in each direction
//!   (order kept), so that each round trip takes at least twice that, and
//!   [`set_jitter`](FaultProxy::set_jitter): up to that much more, at random, for each chunk;
//! - [`switch`](FaultProxy::switch): send new connections to another target after closing the
//!   old ones (a failover behind a virtual IP).
//!
//! Dropping the proxy closes its port and every connection it carries.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// What the proxy does with traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    Hang,
    Refuse,
}

#[derive(Clone, Debug)]
struct State {
    mode: Mode,
    /// Bumped to close every live connection.
    generation: u64,
    latency: Duration,
    jitter: Duration,
    target: SocketAddr,
}

/// A running fault proxy; stops, closing every connection, when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: watch::Sender<State>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free port of 127.0.0.1 and forwards every connection to `target`.
    ///
    /// # Errors
    /// When no local port can be bound.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into(), target).await
    }

    /// [`start`](Self::start), listening on a free port of `ip` (an address of this machine,
    /// such as a network lab's host address) instead of 127.0.0.1.
    ///
    /// # Errors
    /// When no port of `ip` can be bound.
    pub async fn start_on(ip: std::net::IpAddr, target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind((ip, 0)).await?;
        let addr = listener.local_addr()?;
        let (state, _) = watch::channel(State {
            mode: Mode::Forward,
            generation: 0,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            target,
        });
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Self { addr, state, task })
    }

    /// [`start`](Self::start) in front of a port of 127.0.0.1.
    ///
    /// # Panics
    /// When no local port can be bound.
    pub async fn to_port(port: u16) -> Self {
        Self::start(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("bind the proxy")
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A `redis://` URL to the proxy (for a target that is a Redis server without password).
    pub fn redis_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    /// Black hole: live connections stop carrying data but stay open; new ones are accepted
    /// and never answered.
    pub fn hang(&self) {
        self.state.send_modify(|s| s.mode = Mode::Hang);
    }

    /// Closes every live connection and accepts-then-closes new ones.
    pub fn refuse(&self) {
        self.state.send_modify(|s| s.mode = Mode::Refuse);
    }

    /// Forwards again. Connections hung by [`hang`](Self::hang) are closed, so that clients
    /// reconnect rather than receive what was sent during the partition.
    pub fn heal(&self) {
        self.state.send_modify(|s| s.mode = Mode::Forward);
    }

    /// [`refuse`](Self::refuse) when `cut`, else [`heal`](Self::heal).
    pub fn set_cut(&self, cut: bool) {
        if cut { self.refuse() } else { self.heal() }
    }

    /// Closes every live connection once; new ones are forwarded as before.
    pub fn reset(&self) {
        self.state.send_modify(|s| s.generation += 1);
    }

    /// Delays every chunk by `one_way` in each direction from now on (zero: no delay).
    pub fn set_latency(&self, one_way: Duration) {
        self.state.send_modify(|s| s.latency = one_way);
    }

    /// Adds up to `jitter` more to each chunk's delay, at random (uniformly), from now on;
    /// chunks still leave in the order they came (zero: none).
    pub fn set_jitter(&self, jitter: Duration) {
        self.state.send_modify(|s| s.jitter = jitter);
    }

    /// Closes every live connection and forwards new ones to `target`.
    pub fn switch(&self, target: SocketAddr) {
        self.state.send_modify(|s| {
            s.target = target;
            s.generation += 1;
        });
    }

    /// [`switch`](Self::switch) to a port of 127.0.0.1.
    pub fn switch_to_port(&self, port: u16) {
        self.switch(SocketAddr::from(([127, 0, 0, 1], port)));
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: watch::Sender<State>) {
    // The set owns every connection: aborting this task closes them all.
    let mut connections = JoinSet::new();
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        connections.spawn(connection(client, state.subscribe()));
        // Reap finished connections so the set does not grow for ever.
        while connections.try_join_next().is_some() {}
    }
}

async fn connection(client: TcpStream, mut state: watch::Receiver<State>) {
    let at_accept = state.borrow_and_update().clone();
    let generation = at_accept.generation;
    match at_accept.mode {
        Mode::Refuse => return,
        Mode::Hang => {
            // Accepted during a partition: never answered, closed when it ends.
            let _ = state
                .wait_for(|s| s.mode != Mode::Hang || s.generation != generation)
                .await;
            return;
        }
        Mode::Forward => {}
    }
    let Ok(server) = TcpStream::connect(at_accept.target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let relay = async {
        tokio::join!(
            pipe(client_read, server_write, state.clone(), generation),
            pipe(server_read, client_write, state.clone(), generation),
        )
    };
    let mut watch = state.clone();
    let ended = async move {
        let now = watch
            .wait_for(|s| s.mode != Mode::Forward || s.generation != generation)
            .await
            .map(|s| s.clone());
        if let Ok(now) = now
            && now.mode == Mode::Hang
            && now.generation == generation
        {
            // Keep the sockets open and silent until the partition ends.
            let _ = watch
                .wait_for(|s| s.mode != Mode::Hang || s.generation != generation)
                .await;
        }
    };
    tokio::select! {
        _ = relay => {}
        () = ended => {}
    }
}

/// A small random source for jitter (xorshift64*): statistical spread is all it needs.
struct Jitter(u64);

impl Jitter {
    /// Seeded from the clock and a count of pipes, so that pipes differ.
    fn seeded() -> Self {
        static PIPES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let pipe = PIPES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self((u64::from(nanos) ^ pipe.rotate_left(32)) | 1)
    }

    /// A duration from zero up to `max`, uniformly.
    fn up_to(&mut self, max: Duration) -> Duration {
        if max.is_zero() {
            return Duration::ZERO;
        }
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let sample = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // The top 53 bits as a fraction of one.
        max.mul_f64((sample >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// Copies `from` to `to`, each chunk released after the latency in force when it was read, and
/// at once when there is none (no timer: one would hold every chunk to the timer's next tick,
/// about a millisecond); no chunk is written while the proxy does not forward.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    state: watch::Receiver<State>,
    generation: u64,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Option<Instant>, Vec<u8>)>();
    let latency = state.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut random = Jitter::seeded();
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let (delay, jitter) = {
                        let now = latency.borrow();
                        (now.latency, now.jitter)
                    };
                    let delay = delay + random.up_to(jitter);
                    let at = (!delay.is_zero()).then(|| Instant::now() + delay);
                    if tx.send((at, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let mut forwarding = state;
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            if let Some(at) = at {
                tokio::time::sleep_until(at).await;
            }
            let open = {
                let now = forwarding.borrow_and_update();
                now.mode == Mode::Forward && now.generation == generation
            };
            if !open {
                // Hung, refused or reset: what was sent is never delivered; the connection
                // task closes this connection when the fault says so.
                std::future::pending::<()>().await;
            }
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
