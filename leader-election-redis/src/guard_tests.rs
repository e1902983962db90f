//! The acquire script's guards, run on a real `redis-server` through a test-only script that
//! feeds them INFO text the server would never send: a negative or missing uptime, a missing
//! replication id or run id.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::prelude::Config;
use fred::types::{ClusterHash, CustomCommand, Value};

use crate::scripts::{DECODE, GUARDS};

/// The guard period, ms.
const G: i64 = 5_000;
/// A server time, ms.
const T: i64 = 1_800_000_000_000;

const RUN_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const RUN_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const REPLID: &str = "0123456789abcdef0123456789abcdef01234567";
const REPLID_2: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// A `redis-server` process, killed on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `redis-server` on a free port, with a connected client.
struct Server {
    _process: Process,
    client: Client,
}

fn spawn(port: u16) -> Process {
    Process(
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("these tests need `redis-server` (scripts/install-redis.sh)"),
    )
}

async fn server() -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let process = spawn(port);
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let config = Config::from_url(&format!("redis://127.0.0.1:{port}")).expect("url");
        let client = Client::new(config, None, None, None);
        if client.init().await.is_ok() {
            return Server {
                _process: process,
                client,
            };
        }
        assert!(Instant::now() < until, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Keys {
    fence: String,
    epoch: String,
    longest: String,
}

fn keys(name: &str) -> Keys {
    Keys {
        fence: format!("{{{name}}}:fence"),
        epoch: format!("{{{name}}}:epoch"),
        longest: format!("{{{name}}}:maxttl"),
    }
}

fn server_info(uptime: Option<&str>, run: Option<&str>) -> String {
    let mut info = "# Server\r\nredis_version:7.0.15\r\n".to_owned();
    if let Some(run) = run {
        info += &format!("run_id:{run}\r\n");
    }
    if let Some(uptime) = uptime {
        info += &format!("uptime_in_seconds:{uptime}\r\n");
    }
    info + "hz:10\r\n"
}

fn replication_info(replid: Option<&str>) -> String {
    let mut info = "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n".to_owned();
    if let Some(replid) = replid {
        info += &format!("master_replid:{replid}\r\n");
    }
    info + "master_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\n"
}

/// Runs the guards once: how long they withhold a free lease, why, and the guard period.
async fn guard(
    server: &Server,
    keys: &Keys,
    server_info: &str,
    replication_info: &str,
    now: i64,
    floor: i64,
) -> (i64, String) {
    let body = "local wait, why, guard = check_guards(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], \
                tonumber(ARGV[3]), tonumber(ARGV[4]))\nreturn {wait, why or 'none', guard}";
    let script = format!("{DECODE}{GUARDS}{body}");
    let args: Vec<Value> = vec![
        script.into(),
        3.into(),
        keys.fence.as_str().into(),
        keys.epoch.as_str().into(),
        keys.longest.as_str().into(),
        server_info.into(),
        replication_info.into(),
        now.to_string().into(),
        floor.to_string().into(),
    ];
    let reply: Value = server
        .client
        .custom(
            CustomCommand::new_static("EVAL", ClusterHash::FirstKey, false),
            args,
        )
        .await
        .expect("the guard script runs");
    let Value::Array(items) = reply else {
        panic!("{reply:?}")
    };
    let wait = items[0].as_i64().expect("wait");
    let why = items[1].as_string().expect("why");
    (wait, why)
}

async fn get(server: &Server, key: &str) -> Option<String> {
    let value: Value = server
        .client
        .custom(
            CustomCommand::new_static("GET", ClusterHash::FirstKey, false),
            vec![Value::from(key)],
        )
        .await
        .expect("GET");
    value.as_string()
}

async fn set(server: &Server, key: &str, value: &str) {
    let _: Value = server
        .client
        .custom(
            CustomCommand::new_static("SET", ClusterHash::FirstKey, false),
            vec![Value::from(key), Value::from(value)],
        )
        .await
        .expect("SET");
}

/// An election that has run on this server long enough: its epoch recorded, no fence left.
async fn settled(server: &Server, keys: &Keys) {
    let old = server_info(Some("100000"), Some(RUN_A));
    let repl = replication_info(Some(REPLID));
    guard(server, keys, &old, &repl, T - 2 * G, G).await;
    let (wait, why) = guard(server, keys, &old, &repl, T - G, G).await;
    assert_eq!((wait, why.as_str()), (0, "none"), "not settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_uptime_fences_once_per_server_run() {
    let server = server().await;
    let k = keys("uptime");
    settled(&server, &k).await;
    let repl = replication_info(Some(REPLID));
    // Redis reports a negative uptime when its clock stepped back; a new run of the server.
    let negative = server_info(Some("-5"), Some(RUN_B));
    assert_eq!(
        guard(&server, &k, &negative, &repl, T, G).await,
        (G, "restarted".to_owned()),
        "an unreadable uptime must count as a young server"
    );
    assert_eq!(
        guard(&server, &k, &negative, &repl, T + 1_000, G).await,
        (G - 1_000, "restarted".to_owned())
    );
    // Once per server run, not forever.
    assert_eq!(guard(&server, &k, &negative, &repl, T + G, G).await.0, 0);
    let missing = server_info(None, Some(RUN_B));
    assert_eq!(guard(&server, &k, &missing, &repl, T + G + 1, G).await.0, 0);
    for broken in ["12abc", "", " 7", "99999999999999999999"] {
        let info = server_info(Some(broken), Some(RUN_B));
        assert_eq!(
            guard(&server, &k, &info, &repl, T + G + 2, G).await.0,
            0,
            "{broken:?}"
        );
    }
    // Another run with an unreadable uptime: one more fence.
    let other_run = server_info(None, Some(RUN_A));
    assert_eq!(
        guard(&server, &k, &other_run, &repl, T + 2 * G, G).await,
        (G, "restarted".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_replication_id_falls_back_to_the_server_run() {
    let server = server().await;
    let k = keys("replid");
    settled(&server, &k).await;
    let old = server_info(Some("100000"), Some(RUN_A));
    let none = replication_info(None);
    assert_eq!(
        guard(&server, &k, &old, &none, T, G).await,
        (G, "failover".to_owned()),
        "an unreadable replication id must count as a failover"
    );
    assert_eq!(guard(&server, &k, &old, &none, T + G, G).await.0, 0);
    assert_eq!(guard(&server, &k, &old, &none, T + G + 1, G).await.0, 0);
    // Nothing identifies the server: only a missing epoch key says data was lost.
    let anonymous = server_info(Some("100000"), None);
    assert_eq!(
        guard(&server, &k, &anonymous, &none, T + G + 2, G).await.0,
        0
    );
    let _: Value = server
        .client
        .custom(
            CustomCommand::new_static("DEL", ClusterHash::FirstKey, false),
            vec![Value::from(k.epoch.as_str())],
        )
        .await
        .unwrap();
    assert_eq!(
        guard(&server, &k, &anonymous, &none, T + 2 * G, G).await,
        (G, "failover".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_changed_epoch_fences_one_guard() {
    let server = server().await;
    let k = keys("epoch");
    let old = server_info(Some("100000"), Some(RUN_A));
    let repl = replication_info(Some(REPLID));
    assert_eq!(
        guard(&server, &k, &old, &repl, T, G).await,
        (G, "failover".to_owned()),
        "a missing epoch key must fence"
    );
    assert_eq!(get(&server, &k.epoch).await.as_deref(), Some(REPLID));
    assert_eq!(guard(&server, &k, &old, &repl, T + G, G).await.0, 0);
    let promoted = replication_info(Some(REPLID_2));
    assert_eq!(
        guard(&server, &k, &old, &promoted, T + 2 * G, G).await,
        (G, "failover".to_owned())
    );
    assert_eq!(guard(&server, &k, &old, &promoted, T + 3 * G, G).await.0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_is_the_longest_lease_recorded_and_broken_records_fail_closed() {
    let server = server().await;
    let k = keys("longest");
    settled(&server, &k).await;
    let repl = replication_info(Some(REPLID));
    // A young server withholds the longest lease the election recorded, not the caller's.
    set(&server, &k.longest, "30000").await;
    let young = server_info(Some("2"), Some(RUN_A));
    assert_eq!(
        guard(&server, &k, &young, &repl, T, G).await,
        (28_000, "restarted".to_owned())
    );
    // The fence of the election's start (at T - 2G) lasts the longest lease too.
    let old = server_info(Some("100000"), Some(RUN_A));
    assert_eq!(
        guard(&server, &k, &old, &repl, T, G).await,
        (20_000, "failover".to_owned())
    );
    let u = T + 30_000;
    assert_eq!(guard(&server, &k, &old, &repl, u, G).await.0, 0);
    // An unreadable record of the longest lease: fenced, then repaired.
    set(&server, &k.longest, "abc").await;
    assert_eq!(
        guard(&server, &k, &old, &repl, u, G).await,
        (G, "touched".to_owned())
    );
    assert_eq!(get(&server, &k.longest).await.as_deref(), Some("5000"));
    assert_eq!(guard(&server, &k, &old, &repl, u + G, G).await.0, 0);
    // An unreadable fence: fenced from now.
    set(&server, &k.fence, "xyz").await;
    assert_eq!(
        guard(&server, &k, &old, &repl, u + 2 * G, G).await,
        (G, "failover".to_owned())
    );
    assert_eq!(guard(&server, &k, &old, &repl, u + 3 * G, G).await.0, 0);
    // The server clock stepped back below a fence's start: the wait restarts from now, once.
    set(&server, &k.fence, "xyz").await;
    guard(&server, &k, &old, &repl, u + 4 * G, G).await;
    assert_eq!(
        guard(&server, &k, &old, &repl, u, G).await,
        (G, "failover".to_owned())
    );
    assert_eq!(guard(&server, &k, &old, &repl, u + G, G).await.0, 0);
}
