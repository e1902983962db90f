//! The real-server fixtures: start, restart, pause, kill, and stop on drop.

use std::time::Duration;

use leader_election_fixtures::{Azurite, Postgres, RedisOptions, RedisServer, S3Emulator};

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

async fn listens(port: u16) -> bool {
    tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
}

/// Waits (bounded) until nothing listens on `port` any more.
async fn gone_within(port: u16, bound: Duration, what: &str) {
    let deadline = std::time::Instant::now() + bound;
    while listens(port).await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} still listens {bound:?} after the drop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn redis_restarts_with_and_without_persistence_pauses_and_stops_on_drop() {
    let server = RedisServer::start().await;
    assert_eq!(server.query(&["SET", "k", "v"]).await.unwrap(), "OK");
    server.restart().await;
    assert_eq!(
        server.query(&["GET", "k"]).await.unwrap(),
        "",
        "no persistence: key lost"
    );

    server.pause().await;
    let answered = tokio::time::timeout(Duration::from_millis(300), server.query(&["PING"])).await;
    assert!(answered.is_err(), "a paused server does not answer");
    server.resume().await;
    assert_eq!(server.query(&["PING"]).await.unwrap(), "PONG");

    server.kill().await;
    assert!(!listens(server.port()).await, "killed: nothing listens");
    server.restart().await;
    let (pid, port) = (server.pid().unwrap(), server.port());
    drop(server);
    assert!(!pid_alive(pid), "dropped: the process is gone");
    assert!(!listens(port).await);

    let durable = RedisServer::start_with(RedisOptions {
        persistence: true,
        password: Some("secret".into()),
        min_uptime: Duration::from_secs(1),
        ..RedisOptions::default()
    })
    .await;
    assert!(durable.url().starts_with("redis://:secret@127.0.0.1:"));
    durable.query(&["SET", "k", "v"]).await.unwrap();
    durable.restart().await;
    assert_eq!(
        durable.query(&["GET", "k"]).await.unwrap(),
        "v",
        "persistence keeps keys"
    );
}

#[tokio::test]
async fn the_s3_emulator_stops_on_sigterm_and_restarts_empty_on_the_same_port() {
    let emulator = S3Emulator::start().await;
    let port = emulator.port();
    assert!(listens(port).await);
    let stopping = std::time::Instant::now();
    emulator.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "stop took {:?}: SIGTERM was not acted on",
        stopping.elapsed()
    );
    assert!(!listens(port).await);
    emulator.restart().await;
    assert!(listens(port).await);
    drop(emulator);
    gone_within(port, Duration::from_secs(10), "moto").await;
}

#[cfg(feature = "tls")]
#[tokio::test]
async fn a_tls_redis_serves_tls_only_restarts_and_stops_on_drop() {
    use leader_election_fixtures::RedisTls;
    let tls = RedisTls::generate(true);
    assert!(tls.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(tls.client_key_pem.contains("PRIVATE KEY"));
    let debug = format!("{tls:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    let err = RedisServer::try_start(RedisOptions {
        tls: Some(tls.clone()),
        min_uptime: Duration::from_secs(1),
        ..RedisOptions::default()
    })
    .await
    .unwrap_err();
    assert!(err.contains("min_uptime"), "{err}");

    let server = RedisServer::start_with(RedisOptions {
        tls: Some(tls),
        ..RedisOptions::default()
    })
    .await;
    assert_eq!(
        server.tls_url(),
        format!("rediss://127.0.0.1:{}", server.port())
    );
    assert!(server.tls().unwrap().auth_clients);
    let err = server.query(&["PING"]).await.unwrap_err();
    assert!(err.to_string().contains("TLS only"), "{err}");
    server.restart().await;
    assert!(
        listens(server.port()).await,
        "restarted with its certificates"
    );
    let (pid, port) = (server.pid().unwrap(), server.port());
    drop(server);
    assert!(!pid_alive(pid), "dropped: the process is gone");
    assert!(!listens(port).await);
}

#[tokio::test]
async fn azurite_restarts_on_the_same_port_and_stops_on_drop() {
    let azurite = Azurite::start().await;
    let port = azurite.port();
    assert!(
        azurite
            .connection_string()
            .contains(&format!("127.0.0.1:{port}/devstoreaccount1"))
    );
    // SIGTERM reaches the server through its guard shell at once: no 10 s fallback to SIGKILL.
    let stopping = std::time::Instant::now();
    azurite.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(8),
        "stop took {:?}: SIGTERM was not acted on",
        stopping.elapsed()
    );
    assert!(!listens(port).await);
    azurite.restart().await;
    assert!(listens(port).await);
    drop(azurite);
    gone_within(port, Duration::from_secs(10), "Azurite").await;
}

#[tokio::test]
async fn postgres_restarts_and_stops_on_drop() {
    let pg = Postgres::start().await;
    let port = pg.port();
    assert!(listens(port).await);
    pg.restart().await;
    assert!(listens(port).await);
    let pid = pg.pid().unwrap();
    drop(pg);
    assert!(!pid_alive(pid));
}
