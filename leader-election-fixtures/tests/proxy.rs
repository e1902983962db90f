//! The fault proxy against a local echo server.

use std::net::SocketAddr;
use std::time::Duration;

use leader_election_fixtures::FaultProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Whether "ping" comes back within `within`.
async fn roundtrip(stream: &mut TcpStream, within: Duration) -> bool {
    if stream.write_all(b"ping").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 4];
    matches!(
        tokio::time::timeout(within, stream.read_exact(&mut buf)).await,
        Ok(Ok(_))
    ) && &buf == b"ping"
}

/// Whether the peer closed `stream` within `within` (reads end or fail).
async fn closed(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

const SHORT: Duration = Duration::from_millis(300);
const LONG: Duration = Duration::from_secs(5);

#[tokio::test]
async fn refuse_closes_live_connections_and_refuses_new_ones_until_healed() {
    let proxy = FaultProxy::start(echo_server().await).await.unwrap();
    let mut before = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(roundtrip(&mut before, LONG).await);

    proxy.set_cut(true);
    assert!(
        closed(&mut before, LONG).await,
        "a cut closes live connections"
    );
    let mut during = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(
        closed(&mut during, LONG).await,
        "a cut refuses new connections"
    );

    proxy.set_cut(false);
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(roundtrip(&mut after, LONG).await, "healed");
}

#[tokio::test]
async fn hang_keeps_connections_open_and_silent_and_heal_closes_them() {
    let proxy = FaultProxy::to_port(echo_server().await.port()).await;
    let mut before = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(roundtrip(&mut before, LONG).await);

    proxy.hang();
    assert!(
        !roundtrip(&mut before, SHORT).await,
        "a hung connection is silent"
    );
    assert!(!closed(&mut before, SHORT).await, "and stays open");
    let mut during = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(
        !roundtrip(&mut during, SHORT).await,
        "a new one is never answered"
    );

    proxy.heal();
    assert!(
        closed(&mut before, LONG).await,
        "healing closes hung connections"
    );
    assert!(closed(&mut during, LONG).await);
    let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(roundtrip(&mut after, LONG).await, "healed");
}

/// With no latency set, a chunk is written as soon as it is read: no timer stands in between,
/// so a handover through the proxy costs what it costs without it. (A timer due "now" fires at
/// the timer's next millisecond tick: each chunk waited about 1 ms, a round trip 2.3 ms instead
/// of 0.08.) In paused time, half-way between two ticks, with the clock's auto-advance held off
/// while the blocking client runs, a chunk that waited for a timer would never arrive (the
/// client's read times out in real time).
#[tokio::test(start_paused = true)]
async fn without_latency_chunks_pass_at_once_with_no_timer() {
    use std::io::{Read, Write};

    let proxy = FaultProxy::to_port(echo_server().await.port()).await;
    let addr = proxy.addr();
    tokio::time::advance(Duration::from_micros(500)).await;
    let before = Instant::now();
    let echoed = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        let mut stream = std::net::TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(LONG))?;
        for _ in 0..50 {
            stream.write_all(b"ping")?;
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf)?;
            assert_eq!(&buf, b"ping");
        }
        Ok(())
    })
    .await
    .unwrap();
    echoed.expect("every ping comes back through the proxy without a timer");
    assert_eq!(Instant::now(), before, "no timer ran");
}

#[tokio::test]
async fn latency_delays_each_direction() {
    let proxy = FaultProxy::to_port(echo_server().await.port()).await;
    proxy.set_latency(Duration::from_millis(100));
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let start = Instant::now();
    assert!(roundtrip(&mut stream, LONG).await);
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn jitter_adds_a_random_delay_on_top_of_the_latency() {
    let proxy = FaultProxy::to_port(echo_server().await.port()).await;
    proxy.set_latency(Duration::from_millis(5));
    proxy.set_jitter(Duration::from_millis(40));
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut round_trips = Vec::new();
    for _ in 0..12 {
        let start = Instant::now();
        assert!(roundtrip(&mut stream, LONG).await);
        round_trips.push(start.elapsed());
    }
    // Never below the latency, each way; and not all alike (twelve draws of up to 40 ms
    // within one millisecond of each other would be a broken random source).
    assert!(
        round_trips
            .iter()
            .all(|rt| *rt >= Duration::from_millis(10)),
        "{round_trips:?}"
    );
    let (min, max) = (
        round_trips.iter().min().unwrap(),
        round_trips.iter().max().unwrap(),
    );
    assert!(*max - *min > Duration::from_millis(1), "{round_trips:?}");
}

#[tokio::test]
async fn switch_and_reset_close_connections() {
    let first = echo_server().await;
    let proxy = FaultProxy::start(first).await.unwrap();
    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(roundtrip(&mut old, LONG).await);
    proxy.reset();
    assert!(
        closed(&mut old, LONG).await,
        "reset closes live connections"
    );

    let mut old = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(
        roundtrip(&mut old, LONG).await,
        "new connections still forward"
    );
    let second = echo_server().await;
    proxy.switch_to_port(second.port());
    assert!(
        closed(&mut old, LONG).await,
        "switch closes live connections"
    );
    let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(roundtrip(&mut new, LONG).await);
}

#[tokio::test]
async fn dropping_the_proxy_closes_its_connections() {
    let proxy = FaultProxy::to_port(echo_server().await.port()).await;
    let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(roundtrip(&mut stream, LONG).await);
    drop(proxy);
    assert!(closed(&mut stream, LONG).await);
}
