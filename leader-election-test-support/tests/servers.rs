//! The real-server fixtures of this crate (Azurite, PostgreSQL): start, restart, and stop on
//! drop; and the name helpers.

use std::time::Duration;

use leader_election_test_support::{
    Azurite, Postgres, eventually_async, free_port, unique_container, unique_name, unique_table,
};

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
    eventually_async(Duration::from_secs(10), "Azurite to go away", || async {
        !listens(port).await
    })
    .await;
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

#[test]
fn names_are_unique_and_valid() {
    assert_ne!(unique_name("a"), unique_name("a"));
    let container = unique_container("Some_Test__name");
    assert!(
        container.len() <= 63 && !container.contains("--"),
        "{container}"
    );
    assert!(
        container
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    );
    assert!(!unique_table("t").contains('-'));
    assert_ne!(free_port(), 0);
}
