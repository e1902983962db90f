//! DESIGN.md, rule 12: a service that ignores condition expressions is refused at `connect`
//! with an error that is not retryable, naming what it ignored, and nobody elects on it. The
//! service here is moto's DynamoDB behind a small HTTP proxy that removes every
//! `ConditionExpression` from the requests it forwards (moto does not check signatures), so
//! every conditional write succeeds.

use std::time::Duration;

use leader_election::{ElectionBuilder, LeaseStore};
use leader_election_test_support::{throughout, unique_name};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

mod common;
use common::emulator;

/// Forwards one HTTP/1.1 request at a time to `upstream`, without its condition, and closes
/// each connection after the response (`Connection: close`).
async fn condition_stripper(upstream: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = forward(client, upstream).await;
            });
        }
    });
    port
}

async fn forward(client: TcpStream, upstream: u16) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut head = Vec::new();
    let mut length = 0;
    loop {
        let mut line = String::new();
        if client.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
            continue;
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.push(line);
    }
    let mut body = vec![0; length];
    client.read_exact(&mut body).await?;
    let body = strip_condition(&body);
    let mut request = head.concat();
    request.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut server = TcpStream::connect(("127.0.0.1", upstream)).await?;
    server.write_all(request.as_bytes()).await?;
    server.write_all(&body).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    // The client must not reuse this connection.
    let text = String::from_utf8_lossy(&response);
    let response = match text.find("\r\n") {
        Some(end) if !text.to_ascii_lowercase().contains("\r\nconnection: close") => {
            let mut with_close = response[..end + 2].to_vec();
            with_close.extend_from_slice(b"Connection: close\r\n");
            with_close.extend_from_slice(&response[end + 2..]);
            with_close
        }
        _ => response,
    };
    let mut client = client.into_inner();
    client.write_all(&response).await?;
    client.shutdown().await
}

/// The JSON request `body` without its `ConditionExpression` (and the names and values it
/// used, which DynamoDB refuses when unused).
fn strip_condition(body: &[u8]) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut request)) = serde_json::from_slice(body) else {
        return body.to_vec();
    };
    if request.remove("ConditionExpression").is_some() {
        request.remove("ExpressionAttributeNames");
        request.remove("ExpressionAttributeValues");
    }
    serde_json::to_vec(&request).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_ignores_conditions_is_refused_at_connect() {
    let emulator = emulator().await;
    let port = condition_stripper(emulator.port()).await;
    let key = unique_name("ignored");
    let store = emulator.builder_via(port, &key, "a").build_store().unwrap();
    let err = store.connect().await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("ignored attribute_not_exists(pk) on an existing item")
            && message.contains("a condition on a stale version")
            && message.contains(&format!("127.0.0.1:{port}")),
        "{message}"
    );
    // An election on it never leads: every run of its loop ends at `connect`, and the lease
    // item is never written.
    let election = emulator.builder_via(port, &key, "b").build().unwrap();
    election.start().await.unwrap();
    throughout(
        Duration::from_secs(2),
        "the refused contender never leads",
        || !election.is_leader(),
    )
    .await;
    let honest = emulator.store(&key);
    assert_eq!(honest.current_leader().await.unwrap(), None);
    election.stop().await.unwrap();
}
