//! Network namespaces and packet faults: each fault drops what it says, silently, and a lab
//! leaves nothing behind. Runs where [`NetLab::check`] passes (root, `ip`, `nft`); says why
//! and passes elsewhere.
#![cfg(all(feature = "netns", target_os = "linux"))]

use std::io;
use std::sync::Arc;
use std::time::Duration;

use leader_election_fixtures::netns::{self, NetLab, NetNamespace, PacketFault};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::time::timeout;

/// How long a packet that passes takes at most here (a bound, not a wait: every use waits for
/// a condition up to it).
const PASSES_WITHIN: Duration = Duration::from_secs(10);
/// How long a read waits to show that nothing came: several round trips on this link, which
/// take well under a millisecond.
const NOTHING_WITHIN: Duration = Duration::from_millis(600);

fn lab() -> Option<NetLab> {
    NetLab::for_test()
}

/// Runs `client` in `ns` and waits for it.
async fn in_namespace<F, Fut, T>(ns: &NetNamespace, client: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let thread = ns.spawn(client);
    tokio::task::spawn_blocking(move || thread.join().expect("the client thread"))
        .await
        .expect("joined")
        .expect("entered the namespace")
}

#[tokio::test]
async fn a_partition_drops_packets_silently_and_healing_lets_them_through() {
    let Some(lab) = lab() else { return };
    let ns = Arc::new(lab.namespace().unwrap());
    let listener = TcpListener::bind((lab.host_ip(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 64];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => socket.write_all(&buf[..n]).await.unwrap(),
            }
        }
    });
    let faults = Arc::clone(&ns);
    let outcome = in_namespace(&ns, move || async move {
        let mut stream = TcpStream::connect(addr).await?;
        let mut byte = [0u8; 1];
        stream.write_all(b"a").await?;
        timeout(PASSES_WITHIN, stream.read_exact(&mut byte)).await??;
        assert_eq!(&byte, b"a");
        faults.inject(PacketFault::Partition)?;
        stream.write_all(b"b").await?;
        // No reset, no end of stream, no error: nothing at all.
        let cut = timeout(NOTHING_WITHIN, stream.read(&mut byte)).await;
        faults.heal()?;
        // TCP sends "b" again; it arrives and comes back on the same connection.
        timeout(PASSES_WITHIN, stream.read_exact(&mut byte)).await??;
        io::Result::Ok((cut.is_err(), byte))
    })
    .await
    .unwrap();
    assert!(
        outcome.0,
        "a read through the partition returned instead of hanging"
    );
    assert_eq!(&outcome.1, b"b");
    server.abort();
}

#[tokio::test]
async fn dropped_replies_let_requests_reach_the_server() {
    let Some(lab) = lab() else { return };
    let ns = Arc::new(lab.namespace().unwrap());
    let listener = TcpListener::bind((lab.host_ip(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (received_tx, received) = oneshot::channel();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4];
        socket.read_exact(&mut buf).await.unwrap();
        let _ = received_tx.send(buf);
        socket.write_all(b"pong").await.unwrap();
        // Keep the connection open while the client waits for the reply.
        let _ = socket.read(&mut buf).await;
    });
    let faults = Arc::clone(&ns);
    let client = in_namespace(&ns, move || async move {
        let mut stream = TcpStream::connect(addr).await?;
        faults.inject(PacketFault::DropReplies)?;
        stream.write_all(b"ping").await?;
        let mut reply = [0u8; 4];
        let heard = timeout(NOTHING_WITHIN, stream.read_exact(&mut reply)).await;
        io::Result::Ok(heard.is_ok())
    });
    let (heard, received) = tokio::join!(client, timeout(PASSES_WITHIN, received));
    assert_eq!(
        &received.expect("the server got the request").unwrap(),
        b"ping"
    );
    assert!(
        !heard.unwrap(),
        "the reply passed a fault that drops replies"
    );
    server.abort();
}

#[tokio::test]
async fn dropped_requests_still_let_the_server_reach_the_client() {
    let Some(lab) = lab() else { return };
    let ns = Arc::new(lab.namespace().unwrap());
    let listener = TcpListener::bind((lab.host_ip(), 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (fault_tx, fault_on) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        fault_on.await.unwrap();
        socket.write_all(b"push").await.unwrap();
        let mut buf = [0u8; 4];
        timeout(NOTHING_WITHIN, socket.read_exact(&mut buf))
            .await
            .is_ok()
    });
    let faults = Arc::clone(&ns);
    let heard = in_namespace(&ns, move || async move {
        let mut stream = TcpStream::connect(addr).await?;
        faults.inject(PacketFault::DropRequests)?;
        fault_tx.send(()).unwrap();
        stream.write_all(b"ping").await?;
        let mut pushed = [0u8; 4];
        timeout(PASSES_WITHIN, stream.read_exact(&mut pushed)).await??;
        io::Result::Ok(pushed)
    })
    .await
    .unwrap();
    assert_eq!(&heard, b"push");
    assert!(
        !server.await.unwrap(),
        "the request passed a fault that drops requests"
    );
}

#[tokio::test]
async fn loss_drops_about_its_share_of_packets() {
    let Some(lab) = lab() else { return };
    let ns = Arc::new(lab.namespace().unwrap());
    let socket = UdpSocket::bind((lab.host_ip(), 0)).await.unwrap();
    let addr = socket.local_addr().unwrap();
    ns.inject(PacketFault::Loss { percent: 30 }).unwrap();
    // Fewer than the receive buffer holds unread (about 256 small datagrams by default).
    const SENT: usize = 200;
    in_namespace(&ns, move || async move {
        let socket = UdpSocket::bind("0.0.0.0:0").await?;
        for i in 0..SENT {
            socket.send_to(&(i as u32).to_be_bytes(), addr).await?;
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        io::Result::Ok(())
    })
    .await
    .unwrap();
    let mut received = 0;
    let mut buf = [0u8; 4];
    while timeout(NOTHING_WITHIN, socket.recv(&mut buf)).await.is_ok() {
        received += 1;
    }
    // 30 % of 200 dropped: 140 expected, a standard deviation of 6.5; and none lost otherwise.
    assert!(
        (100..=180).contains(&received),
        "{received} of {SENT} datagrams arrived through a 30 % loss"
    );
}

#[test]
fn a_lab_leaves_nothing_behind() {
    let Some(lab) = lab() else { return };
    let stem = lab.stem().to_owned();
    let a = lab.namespace().unwrap();
    let b = lab.namespace().unwrap();
    a.inject(PacketFault::Partition).unwrap();
    b.inject(PacketFault::Loss { percent: 10 }).unwrap();
    let present = netns::leftovers(&stem).unwrap();
    // The bridge, two namespaces and their two host-side links.
    assert_eq!(present.len(), 5, "{present:?}");
    drop((a, b, lab));
    assert_eq!(netns::leftovers(&stem).unwrap(), Vec::<String>::new());
}

#[test]
fn a_loss_of_nothing_or_more_than_everything_is_refused() {
    let Some(lab) = lab() else { return };
    let ns = lab.namespace().unwrap();
    for percent in [0, 101] {
        let err = ns.inject(PacketFault::Loss { percent }).unwrap_err();
        assert!(err.to_string().contains("1 to 100"), "{err}");
    }
}

#[test]
fn a_new_lab_removes_what_a_process_that_is_gone_left_behind() {
    if lab().is_none() {
        return;
    }
    // No process has this id: ids stay below the kernel's pid_max (at most 2^22).
    let pid = 1u32 << 22;
    let stem = format!("le{pid:x}x0");
    let ns = format!("le-{pid}-{stem}-2");
    let run = |args: &[&str]| {
        let status = std::process::Command::new(args[0])
            .args(&args[1..])
            .status()
            .unwrap();
        assert!(status.success(), "{args:?}");
    };
    run(&["ip", "netns", "add", &ns]);
    run(&["ip", "link", "add", &format!("{stem}b"), "type", "bridge"]);
    // (Another test of this binary making a lab now may sweep them first: either way they go.)
    let _lab = NetLab::new().unwrap();
    assert_eq!(netns::leftovers(&stem).unwrap(), Vec::<String>::new());
}
