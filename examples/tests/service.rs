//! End to end: two instances of `leader-service` against a real redis-server agree on the
//! leader and share the scheduled jobs, and a SIGTERM to the leader hands leadership and its
//! jobs over to the other one.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use leader_election_test_support::{RedisServer, eventually_some, free_port};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_service(redis_port: u16, http_port: u16, id: &str, key: &str) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_leader-service"))
        .env("REDIS_URL", format!("redis://127.0.0.1:{redis_port}"))
        .env("ELECTION_KEY", key)
        .env("LISTEN", format!("127.0.0.1:{http_port}"))
        .env("JOB_INTERVAL", "100ms")
        .env("LEADER_ELECTION_INSTANCE_ID", id)
        .env("LEADER_ELECTION_LEASE_DURATION", "3s")
        .env("LEADER_ELECTION_RENEW_INTERVAL", "1s")
        .env("LEADER_ELECTION_RETRY_INTERVAL", "200ms")
        .env("LEADER_ELECTION_OPERATION_TIMEOUT", "500ms")
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start leader-service");
    Process(child)
}

/// `GET path` on 127.0.0.1:`port`: status and JSON body, or `None` while nothing listens.
async fn get(port: u16, path: &str) -> Option<(u16, Value)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split("\r\n\r\n").nth(1)?;
    Some((status, serde_json::from_str(body).ok()?))
}

/// The downstream write the `sync` job made last: (writer, token), once there is one.
async fn downstream(redis: &RedisServer, key: &str) -> Option<(String, u64)> {
    let hash = format!("{{{key}}}:downstream");
    let writer = redis.query(&["HGET", &hash, "writer"]).await.ok()?;
    let token = redis.query(&["HGET", &hash, "token"]).await.ok()?;
    Some((writer, token.parse().ok()?))
}

fn leader_id(body: &Value) -> Option<String> {
    body["leader"]["instance_id"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn two_instances_agree_on_the_leader_and_hand_over_on_sigterm() {
    let redis = RedisServer::start().await;
    let redis_port = redis.port();
    let ports = [free_port(), free_port()];
    let mut services = [
        start_service(redis_port, ports[0], "service-a", "example-e2e"),
        start_service(redis_port, ports[1], "service-b", "example-e2e"),
    ];

    // Both answer /leader with the same leader, and exactly one of them says it leads.
    let (leader, token) = eventually_some(Duration::from_secs(20), "agreement", || async {
        let (_, a) = get(ports[0], "/leader").await?;
        let (_, b) = get(ports[1], "/leader").await?;
        let leader = leader_id(&a)?;
        (leader_id(&b)? == leader).then_some(())?;
        let leading: Vec<_> = [&a, &b]
            .iter()
            .filter(|body| body["self"]["is_leader"] == Value::Bool(true))
            .map(|body| body["self"]["instance_id"].as_str().map(str::to_owned))
            .collect();
        (leading == [Some(leader.clone())]).then_some(())?;
        Some((leader, a["leader"]["token"].as_u64()?))
    })
    .await;
    // The `sync` job runs on one of the two, and writes downstream with its run's token.
    let (writer, written_token) =
        eventually_some(Duration::from_secs(10), "the sync job's writes", || async {
            downstream(&redis, "example-e2e").await
        })
        .await;
    let runs_sync = |body: &Value| {
        body["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|j| j["job"] == "sync" && j["runs_here"] == Value::Bool(true))
    };
    eventually_some(
        Duration::from_secs(10),
        "one instance runs sync",
        || async {
            let (_, a) = get(ports[0], "/jobs").await?;
            let (_, b) = get(ports[1], "/jobs").await?;
            (runs_sync(&a) != runs_sync(&b)).then_some(())
        },
    )
    .await;
    for port in ports {
        let (status, body) = get(port, "/healthz").await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["healthy"], Value::Bool(true));
    }

    let (stop, survivor) = if leader == "service-a" {
        (0, 1)
    } else {
        (1, 0)
    };
    let pid = services[stop].0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let started = Instant::now();
    let new = eventually_some(Duration::from_secs(10), "handover", || async {
        let (_, body) = get(ports[survivor], "/leader").await?;
        (body["self"]["is_leader"] == Value::Bool(true)).then_some(body)
    })
    .await;
    // A released lease is taken at once; waiting for expiry would take the whole 3 s lease.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "handover took {:?}: it waited for expiry",
        started.elapsed()
    );
    assert!(
        new["self"]["token"].as_u64().unwrap() > token,
        "a new term, a new token"
    );
    // The survivor runs every job now, and the downstream writes are its own, with a token
    // greater than the stopped instance's.
    let survivor_id = new["self"]["instance_id"].as_str().unwrap().to_owned();
    eventually_some(
        Duration::from_secs(10),
        "the survivor's sync runs",
        || async {
            let (now_writer, now_token) = downstream(&redis, "example-e2e").await?;
            let moved = writer != survivor_id;
            (now_writer == survivor_id
                && now_token >= written_token
                && (!moved || now_token > written_token))
                .then_some(())
        },
    )
    .await;
    eventually_some(
        Duration::from_secs(10),
        "the survivor runs every job",
        || async {
            let (_, jobs) = get(ports[survivor], "/jobs").await?;
            jobs["jobs"]
                .as_array()?
                .iter()
                .all(|j| j["runs_here"] == Value::Bool(true))
                .then_some(())
        },
    )
    .await;
    let status = services[stop].0.wait().unwrap();
    assert!(
        status.success(),
        "the stopped instance exits cleanly: {status:?}"
    );
}
