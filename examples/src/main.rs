//! `leader-service`: a small HTTP service with a leader, and two scheduled jobs that run once
//! per occurrence across its instances (`leader-election-jobs`).
//!
//! - `sync`, every `JOB_INTERVAL`, writes to a downstream store (a Redis hash here) through a
//!   *fenced* write: the write carries the run's fencing token, and the store refuses any token
//!   lower than the highest it has seen, so a stale run can never overwrite its successor's.
//! - `report`, on the cron expression `REPORT_CRON` (UTC), counts its runs in another hash.
//! - The jobs are spread over the instances (each takes its share); each occurrence runs on one
//!   of them, once, and one due while an instance went away runs late on another.
//! - `GET /healthz` answers 200 while the election is healthy, 503 otherwise.
//! - `GET /leader` tells who leads (as the backend says), with the token, and whether this
//!   instance leads.
//! - `GET /jobs` tells which jobs this instance runs, and when each is next due.
//! - SIGTERM or Ctrl-C: stop serving, let running jobs finish, release every lease: other
//!   instances take over within milliseconds.
//!
//! Configuration from the environment: `REDIS_URL` (default `redis://127.0.0.1:6379`),
//! `ELECTION_KEY` (default `leader-service`), `LISTEN` (default `127.0.0.1:8080`), `JOB_INTERVAL`
//! (default `1s`), `REPORT_CRON` (default `*/10 * * * * *`, every 10 s), and every election
//! option as `LEADER_ELECTION_<FIELD>` (`LEADER_ELECTION_LEASE_DURATION=15s`, ...).

use leader_election::ElectionBuilder;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use fred::interfaces::LuaInterface;
use leader_election::{FencingToken, LeaderElection, LeaderElectionOptions};
use leader_election_jobs::{Job, Schedule, Scheduler};
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

/// What the handlers see: the service's election and its jobs.
#[derive(Clone)]
struct App {
    election: Election,
    scheduler: Scheduler<RedisLeaseStore>,
}

/// The names of the service's jobs.
const JOBS: [&str; 2] = ["sync", "report"];

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
    let report_cron = env_or("REPORT_CRON", "*/10 * * * * *");
    let options = LeaderElectionOptions::from_env()?;

    let election = RedisLeaderElection::builder()
        .url(redis_url.clone())
        .key(key.clone())
        .options(options.clone())
        .build()?;
    election.start().await?;
    let scheduler = jobs(
        &election,
        &redis_url,
        &key,
        &options,
        job_interval,
        &report_cron,
    )?;
    scheduler.start().await?;

    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, instance = election.instance_id(), "serving");
    let app = App {
        election: election.clone(),
        scheduler: scheduler.clone(),
    };
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/leader", get(leader))
        .route("/jobs", get(jobs_status))
        .with_state(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;

    // Lets running jobs finish, then releases every lease and wakes the other instances.
    scheduler.stop().await?;
    election.stop().await?;
    tracing::info!("stopped; leadership and jobs handed over");
    Ok(())
}

/// The service's scheduled jobs, each on an election of its own beside the service's
/// (`<key>-job-<name>`), spread over the instances.
fn jobs(
    election: &Election,
    redis_url: &str,
    key: &str,
    options: &LeaderElectionOptions,
    interval: Duration,
    report_cron: &str,
) -> Result<Scheduler<RedisLeaseStore>, Box<dyn std::error::Error>> {
    let mut stores = HashMap::new();
    for job in JOBS {
        let store = RedisLeaderElection::builder()
            .url(redis_url)
            .key(format!("{key}-job-{job}"))
            .options(options.clone())
            .build_store()?;
        stores.insert(job.to_owned(), store);
    }
    let stores = Mutex::new(stores);
    let client = election.store().client().clone();
    let me = election.instance_id().to_owned();
    let downstream = format!("{{{key}}}:downstream");
    let sync = {
        let (client, me) = (client.clone(), me.clone());
        Job::new("sync", Schedule::every(interval), move |run| {
            let (client, key, me) = (client.clone(), downstream.clone(), me.clone());
            async move {
                let due = leader_election_jobs::millis(run.due);
                if !fenced_write(&client, &key, run.token(), &me, due).await? {
                    tracing::warn!("downstream refused a stale token");
                }
                Ok::<(), fred::error::Error>(())
            }
        })
        .lock_at_most_for(interval)
    };
    let reports = format!("{{{key}}}:reports");
    let report = Job::new("report", Schedule::cron(report_cron, "UTC")?, move |run| {
        let (client, key, me) = (client.clone(), reports.clone(), me.clone());
        async move {
            let due = leader_election_jobs::millis(run.due);
            fenced_write(&client, &key, run.token(), &me, due).await?;
            tracing::info!(due, token = %run.token(), "report written");
            Ok::<(), fred::error::Error>(())
        }
    });
    Ok(Scheduler::builder(move |job: &str| {
        stores
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(job)
            .expect("a store per job")
    })
    .options(options.clone())
    .spread()
    .job(sync)
    .job(report)
    .build()?)
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

async fn healthz(State(App { election, .. }): State<App>) -> impl IntoResponse {
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

async fn jobs_status(State(App { scheduler, .. }): State<App>) -> impl IntoResponse {
    let jobs: Vec<_> = scheduler
        .jobs()
        .map(|job| {
            let leads = scheduler
                .election(job)
                .is_some_and(LeaderElection::is_leader);
            let next_due = scheduler.next_due(job).map(leader_election_jobs::millis);
            json!({ "job": job, "runs_here": leads, "next_due_ms": next_due })
        })
        .collect();
    Json(json!({ "jobs": jobs }))
}

async fn leader(State(App { election, .. }): State<App>) -> impl IntoResponse {
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
