//! `leader-service`: a small HTTP service whose periodic job runs on the leader only.
//!
//! - The job writes to a downstream store (a Redis hash here) through a *fenced* write: the write
//!   carries the term's fencing token, and the store refuses any token lower than the highest it
//!   has seen, so a stale leader can never overwrite its successor's work.
//! - `GET /healthz` answers 200 while the election is healthy, 503 otherwise.
//! - `GET /leader` tells who leads (as the backend says), with the token, and whether this
//!   instance leads.
//! - SIGTERM or Ctrl-C: stop serving, cancel leader work, release the lease: another instance
//!   takes over within milliseconds.
//!
//! Configuration from the environment: `REDIS_URL` (default `redis://127.0.0.1:6379`),
//! `ELECTION_KEY` (default `leader-service`), `LISTEN` (default `127.0.0.1:8080`), `JOB_INTERVAL`
//! (default `1s`), and every election option as `LEADER_ELECTION_<FIELD>`
//! (`LEADER_ELECTION_LEASE_DURATION=15s`, ...).

use leader_election::ElectionBuilder;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use fred::interfaces::LuaInterface;
use leader_election::{
    ChangeReason, FencingToken, LeaderElection, LeaderElectionOptions, Leadership,
};
use leader_election_redis::{RedisLeaderElection, RedisLeaseStore};
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

/// Writes `value` only if `token` is not lower than the highest token the store has seen.
const FENCED_WRITE: &str = r"
local seen = tonumber(redis.call('HGET', KEYS[1], 'token') or '0')
local token = tonumber(ARGV[1])
if token < seen then return 0 end
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'writer', ARGV[2], 'value', ARGV[3])
return 1
";

type Election = LeaderElection<RedisLeaseStore>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let redis_url = env_or("REDIS_URL", "redis://127.0.0.1:6379");
    let key = env_or("ELECTION_KEY", "leader-service");
    let listen: SocketAddr = env_or("LISTEN", "127.0.0.1:8080").parse()?;
    let job_interval = humantime_env("JOB_INTERVAL", Duration::from_secs(1))?;
    let options = LeaderElectionOptions::from_env()?;

    let election = RedisLeaderElection::builder()
        .url(redis_url)
        .key(key.clone())
        .options(options)
        .build()?;
    election.start().await?;

    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, instance = election.instance_id(), "serving");
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/leader", get(leader))
        .with_state(election.clone());

    let job = tokio::spawn(leader_job(
        election.clone(),
        format!("{{{key}}}:downstream"),
        job_interval,
    ));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;

    // Cancels leader work, waits for it, releases the lease and wakes the other instances.
    election.stop().await?;
    let last_term = job.await?;
    tracing::info!(?last_term, "stopped; leadership handed over");
    Ok(())
}

/// Leader work for every term this instance wins: every `interval`, a fenced write
/// downstream. It starts when a term begins and is cancelled when the term ends; it returns,
/// once the election has stopped, why the last term ended.
async fn leader_job(
    election: Election,
    downstream_key: String,
    interval: Duration,
) -> Option<ChangeReason> {
    let client = election.store().client().clone();
    let me = election.instance_id().to_owned();
    election
        .run_while_leader(|term: Leadership| {
            let (client, key, me) = (client.clone(), downstream_key.clone(), me.clone());
            async move {
                tracing::info!(token = %term.token(), "leader job started for this term");
                let mut tick = tokio::time::interval(interval);
                for count in 1u64.. {
                    tick.tick().await;
                    match fenced_write(&client, &key, term.token(), &me, count).await {
                        Ok(true) => tracing::debug!(count, "leader job wrote downstream"),
                        Ok(false) => tracing::warn!("downstream refused a stale token"),
                        Err(err) => tracing::warn!(error = %err, "downstream write failed"),
                    }
                }
            }
        })
        .await
}

async fn fenced_write(
    client: &fred::clients::Client,
    key: &str,
    token: FencingToken,
    writer: &str,
    value: u64,
) -> Result<bool, fred::error::Error> {
    let written: i64 = client
        .eval(
            FENCED_WRITE,
            vec![key.to_owned()],
            vec![
                token.get().to_string(),
                writer.to_owned(),
                value.to_string(),
            ],
        )
        .await?;
    Ok(written == 1)
}

async fn healthz(State(election): State<Election>) -> impl IntoResponse {
    let health = election.health();
    let status = if health.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "healthy": health.healthy,
        "problem": health.problem,
        "role": health.role.as_str(),
    });
    (status, Json(body))
}

async fn leader(State(election): State<Election>) -> impl IntoResponse {
    let me = json!({
        "instance_id": election.instance_id(),
        "is_leader": election.is_leader(),
        "token": election.leadership().map(|t| t.token().get()),
    });
    match election.current_leader().await {
        Ok(leader) => {
            let leader = leader.map(|l| {
                json!({ "instance_id": l.instance_id, "token": l.token.map(FencingToken::get) })
            });
            (
                StatusCode::OK,
                Json(json!({ "self": me, "leader": leader })),
            )
        }
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "self": me, "error": err.to_string() })),
        ),
    }
}

async fn shutdown_signal() {
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down");
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn humantime_env(name: &str, default: Duration) -> Result<Duration, String> {
    match std::env::var(name) {
        Ok(value) => humantime::parse_duration(&value).map_err(|e| format!("{name}: {e}")),
        Err(_) => Ok(default),
    }
}
