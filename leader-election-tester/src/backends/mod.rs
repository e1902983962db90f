//! The backends the tester drives, one module each behind one trait, [`Backend`]: how to open a
//! store for a contender, how to reach it through a contender's partition proxies, the
//! deployment the tester can start for it (and that deployment's server faults, through
//! [`Server`]), the operator's hands on its lease record, its timing defaults and its request
//! counters. The rest of the tester knows a backend only as a [`BackendRef`].
//!
//! A new backend is a module here (its [`Backend`] implementation and its settings, a
//! `clap::Args` struct) and its registration: a line in [`BACKENDS`] and a field in
//! [`BackendSpec`].

pub(crate) mod blob;
mod conditional;
pub(crate) mod dynamodb;
pub(crate) mod etcd;
pub(crate) mod memory;
pub(crate) mod mysql;
pub(crate) mod postgres;
pub(crate) mod redis;
pub(crate) mod s3;
mod server;
mod url;
pub(crate) mod zookeeper;

use std::fmt;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use leader_election::{BoxLeaseStore, LeaderElectionOptions};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::faults::FaultKind;

pub(crate) use server::{FailoverDone, Server};
pub(crate) use url::{redact_url, socket_addr, via_url};

/// Every backend the tester knows, in the order of `--help` and of error messages.
pub(crate) const BACKENDS: &[&dyn Backend] = &[
    &memory::MEMORY,
    &redis::Redis,
    &blob::Blob,
    &postgres::Postgres,
    &etcd::Etcd,
    &s3::S3,
    &dynamodb::DYNAMODB,
    &mysql::Mysql,
    &zookeeper::ZooKeeperBackend,
    &memory::BROKEN_MEMORY,
];

/// A boxed future, so that [`Backend`] and [`Server`] can be used as trait objects.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The timing a backend runs with unless the command line says otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Defaults {
    /// Length of the run.
    pub(crate) duration: Duration,
    /// Lease duration.
    pub(crate) lease: Duration,
    /// Renew interval; `None`: a quarter of the lease.
    pub(crate) renew: Option<Duration>,
    /// First retry delay; `None`: an eighth of the lease.
    pub(crate) retry: Option<Duration>,
}

impl Defaults {
    /// 30 s runs on a 2 s lease.
    pub(crate) const STANDARD: Self = Self {
        duration: Duration::from_secs(30),
        lease: Duration::from_secs(2),
        renew: None,
        retry: None,
    };
}

/// One thing an operator does to a backend's lease record, named in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OperatorAction {
    name: &'static str,
    what: &'static str,
    /// What the operator does when the fault is restored.
    then: Option<&'static OperatorAction>,
    /// Whether it removes the elections' records too (scheduled jobs then forget what ran).
    removes_records: bool,
}

impl OperatorAction {
    /// An action reported as `name`, described as `what` in the live output.
    pub(crate) const fn new(name: &'static str, what: &'static str) -> Self {
        Self {
            name,
            what,
            then: None,
            removes_records: false,
        }
    }

    /// The same, removing the elections' records too.
    pub(crate) const fn removing_records(self) -> Self {
        Self {
            removes_records: true,
            ..self
        }
    }

    /// Whether it removes the elections' records too.
    pub(crate) const fn removes_records(&self) -> bool {
        self.removes_records
    }

    /// The same, followed by `next` when the fault is restored.
    pub(crate) const fn then(self, next: &'static OperatorAction) -> Self {
        Self {
            then: Some(next),
            ..self
        }
    }

    /// The lower-case name used in reports.
    pub(crate) fn as_str(self) -> &'static str {
        self.name
    }

    /// What it does, for the live output.
    pub(crate) fn describe(self) -> &'static str {
        self.what
    }
}

impl Serialize for OperatorAction {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name)
    }
}

/// A backend: everything the tester does that depends on where the election is kept. Each
/// method takes the run's [`BackendSpec`] and reads its own settings from it.
pub(crate) trait Backend: Send + Sync + 'static {
    /// The name on the command line and in reports.
    fn name(&self) -> &'static str;

    /// One line for `--help`.
    fn about(&self) -> &'static str;

    /// Whether `--help` leaves it out (the self-test backend).
    fn hidden(&self) -> bool {
        false
    }

    /// The run's timing unless the command line says otherwise.
    fn defaults(&self) -> Defaults {
        Defaults::STANDARD
    }

    /// Whether contenders in different processes share it (`--processes`).
    fn shared(&self) -> bool {
        true
    }

    /// The option that makes the tester start this backend's server (`--spawn-...`), and the
    /// server faults that deployment offers, in the order `mixed` injects them; `None` where
    /// the tester starts no server.
    fn spawn_option(&self) -> Option<(&'static str, &'static [FaultKind])> {
        None
    }

    /// Whether the spec asks for the [`spawn_option`](Self::spawn_option).
    fn spawn_requested(&self, _spec: &BackendSpec) -> bool {
        false
    }

    /// The flag that asks the tester to start this backend's server, if it was given.
    fn spawn_flag(&self, spec: &BackendSpec) -> Option<&'static str> {
        let (flag, _) = self.spawn_option()?;
        self.spawn_requested(spec).then_some(flag)
    }

    /// The server faults of the deployment the spec asks the tester to start (none when it
    /// starts nothing), in the order `mixed` injects them.
    fn server_faults(&self, spec: &BackendSpec) -> &'static [FaultKind] {
        match self.spawn_option() {
            Some((_, faults)) if self.spawn_requested(spec) => faults,
            _ => &[],
        }
    }

    /// The option that makes `kind` possible on this backend, for an error naming it.
    fn offers(&self, kind: FaultKind) -> Option<&'static str> {
        let (flag, faults) = self.spawn_option()?;
        faults.contains(&kind).then_some(flag)
    }

    /// Whether a contender can be cut off the backend (in process, or by its proxies).
    fn partitions(&self, _spec: &BackendSpec) -> bool {
        true
    }

    /// Whether contender processes in network namespaces of their own can reach the backend
    /// (`--network netns`): through their relays where [`partitions`](Self::partitions) says
    /// a proxy can stand in between, or at the address the deployment announces (see
    /// [`BackendSpec::host`]). Default: as `partitions`.
    fn reachable_from_namespaces(&self, spec: &BackendSpec) -> bool {
        self.partitions(spec)
    }

    /// Starts the deployment the spec asks for (called only when
    /// [`spawn_flag`](Self::spawn_flag) says it does), and points the spec at it.
    ///
    /// # Errors
    /// When it cannot be started.
    fn spawn<'a>(
        &'a self,
        _spec: &'a mut BackendSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Server>, String>> {
        let name = self.name();
        Box::pin(async move { Err(format!("the tester starts no {name} server")) })
    }

    /// The URLs through which a contender reaches the server (one, or one per member of a
    /// cluster), for [`upstreams`](Self::upstreams) and [`via`](Self::via) to read and
    /// rewrite; none for a backend in this process.
    fn urls<'s>(&self, _spec: &'s mut BackendSpec) -> Vec<&'s mut String> {
        Vec::new()
    }

    /// The port a URL of [`urls`](Self::urls) means when it names none.
    fn default_port(&self) -> u16 {
        80
    }

    /// The TCP addresses of the server, for a contender's proxies to forward to: one per URL
    /// (a contender cut off from all of them is partitioned); none when a contender is cut
    /// off in process, or when no proxy can stand in front of the nodes the deployment names
    /// (see [`partitions`](Self::partitions)).
    ///
    /// # Errors
    /// When a URL names no `host:port` reachable as an IP address, or a backend reached over
    /// the network has no URL.
    fn upstreams(&self, spec: &BackendSpec) -> Result<Vec<SocketAddr>, String> {
        if !self.partitions(spec) {
            return Ok(Vec::new());
        }
        let mut spec = spec.clone();
        let urls = self.urls(&mut spec);
        if urls.is_empty() && self.shared() {
            return Err(format!("no {} endpoint", self.name()));
        }
        urls.iter()
            .map(|url| socket_addr(url, self.default_port()))
            .collect()
    }

    /// The same spec, for the election `name` on the same server (a scheduled job's, with
    /// `--jobs`). Default: `name` as the key.
    fn for_election(&self, spec: &BackendSpec, name: &str) -> BackendSpec {
        BackendSpec {
            key: name.to_owned(),
            ..spec.clone()
        }
    }

    /// The same spec, reaching the server at `addrs` instead (a contender's proxies, in the
    /// order of [`upstreams`](Self::upstreams)).
    fn via(&self, spec: &BackendSpec, addrs: &[SocketAddr]) -> BackendSpec {
        let mut via = spec.clone();
        for (url, &addr) in self.urls(&mut via).into_iter().zip(addrs) {
            *url = via_url(url, addr);
        }
        via
    }

    /// Opens a store for one contender.
    ///
    /// # Errors
    /// When the backend is not available in this build, or its configuration is refused.
    fn open(
        &self,
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String>;

    /// What the tester checks answers before the run (for the error message), and the hint to
    /// give when nothing answered; `None` for a backend in this process.
    fn reach(&self, spec: &BackendSpec) -> Option<(String, &'static str)>;

    /// The actions an operator can take on the lease record, in the order the schedule takes
    /// them; empty where the tester has no operator's tools for it.
    fn operator_actions(&self) -> &'static [OperatorAction] {
        &[]
    }

    /// Does `action` to the lease record, through a connection of its own.
    ///
    /// # Errors
    /// When the backend cannot be reached or refuses the command.
    fn act<'a>(
        &'a self,
        _spec: &'a BackendSpec,
        action: OperatorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        let name = self.name();
        Box::pin(async move { Err(format!("{name} has no operator action {}", action.as_str())) })
    }

    /// The second half of an action that has one ([`OperatorAction::then`]), done when the
    /// fault is restored.
    ///
    /// # Errors
    /// As for [`act`](Self::act).
    fn follow_up<'a>(
        &'a self,
        spec: &'a BackendSpec,
        action: OperatorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        match action.then {
            Some(&next) => self.act(spec, next),
            None => Box::pin(async { Ok(()) }),
        }
    }

    /// The contenders' `min_replica_acks`, for the report (Redis only).
    fn min_replica_acks(
        &self,
        _spec: &BackendSpec,
        _options: &LeaderElectionOptions,
    ) -> Option<u32> {
        None
    }

    /// What every store of this process has sent so far, when the backend counts its requests
    /// (what a follower costs), for one line after the run.
    fn requests(&self) -> Option<String> {
        None
    }
}

/// A registered backend, chosen by `--backend` and sent to child processes by name.
#[derive(Clone, Copy)]
pub(crate) struct BackendRef(&'static dyn Backend);

impl BackendRef {
    /// The backend called `name`.
    pub(crate) fn named(name: &str) -> Option<Self> {
        BACKENDS.iter().find(|b| b.name() == name).map(|&b| Self(b))
    }

    /// Every registered backend.
    pub(crate) fn all() -> impl Iterator<Item = Self> {
        BACKENDS.iter().map(|&b| Self(b))
    }

    /// The names of the backends for which `keep` holds, as a list in prose ("a, b or c").
    pub(crate) fn listed(keep: impl Fn(&dyn Backend) -> bool) -> String {
        let names: Vec<&str> = BACKENDS
            .iter()
            .filter(|b| !b.hidden() && keep(**b))
            .map(|b| b.name())
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            Some((last, _)) => (*last).to_owned(),
            None => String::new(),
        }
    }

    /// The parser of `--backend`: the registered names, each with its help line.
    pub(crate) fn parser() -> impl TypedValueParser<Value = Self> {
        PossibleValuesParser::new(BACKENDS.iter().map(|b| {
            PossibleValue::new(b.name())
                .help(b.about())
                .hide(b.hidden())
        }))
        .try_map(|name| Self::named(&name).ok_or_else(|| format!("no backend {name}")))
    }
}

impl std::ops::Deref for BackendRef {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl PartialEq for BackendRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.name() == other.0.name()
    }
}

impl Eq for BackendRef {}

impl fmt::Debug for BackendRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name())
    }
}

impl Serialize for BackendRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name())
    }
}

impl<'de> Deserialize<'de> for BackendRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::named(&name).ok_or_else(|| serde::de::Error::custom(format!("no backend {name}")))
    }
}

/// The backend of a run and every backend's settings, from the command line; sent to child
/// processes as JSON. Its `Debug` shows no secret (each backend's settings redact their own).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Args)]
pub(crate) struct BackendSpec {
    /// Where the election is kept.
    #[arg(long = "backend", default_value = "memory", value_parser = BackendRef::parser())]
    pub(crate) backend: BackendRef,
    /// Redis key (and PostgreSQL election name, etcd key, S3 object key, DynamoDB item key) of
    /// the election.
    #[arg(long, default_value = "leader-election-tester")]
    pub(crate) key: String,
    #[command(flatten)]
    pub(crate) redis: redis::Settings,
    #[command(flatten)]
    pub(crate) blob: blob::Settings,
    #[command(flatten)]
    pub(crate) postgres: postgres::Settings,
    #[command(flatten)]
    pub(crate) etcd: etcd::Settings,
    #[command(flatten)]
    pub(crate) s3: s3::Settings,
    #[command(flatten)]
    pub(crate) dynamodb: dynamodb::Settings,
    #[command(flatten)]
    pub(crate) mysql: mysql::Settings,
    #[command(flatten)]
    pub(crate) zookeeper: zookeeper::Settings,
    /// The network lab's host address with `--network netns`, set by the run: a deployment
    /// the tester starts that names its own nodes to its clients (Sentinel) announces them
    /// there, so that contenders in namespaces reach them.
    #[arg(skip)]
    #[serde(skip)]
    pub(crate) host: Option<std::net::Ipv4Addr>,
}

impl BackendSpec {
    /// The default settings on `backend` (as with no option but `--backend`).
    #[cfg(test)]
    pub(crate) fn on(backend: &str) -> Self {
        Self {
            backend: BackendRef::named(backend).expect("a registered backend"),
            key: "k".into(),
            redis: redis::Settings::default(),
            blob: blob::Settings::default(),
            postgres: postgres::Settings::default(),
            etcd: etcd::Settings::default(),
            s3: s3::Settings::default(),
            dynamodb: dynamodb::Settings::default(),
            mysql: mysql::Settings::default(),
            zookeeper: zookeeper::Settings::default(),
            host: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_backend_with_a_record_has_actions_and_names_are_unique() {
        let mut names = Vec::new();
        for backend in [
            "redis",
            "postgres",
            "blob",
            "etcd",
            "s3",
            "dynamodb",
            "mysql",
            "zookeeper",
        ] {
            let actions = BackendRef::named(backend).unwrap().operator_actions();
            assert!(actions.len() >= 2, "{backend}");
            names.extend(actions.iter().map(|a| a.as_str()));
        }
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(
            BackendRef::named("memory")
                .unwrap()
                .operator_actions()
                .is_empty()
        );
        let mut backends: Vec<&str> = BackendRef::all().map(|b| b.name()).collect();
        backends.sort_unstable();
        backends.dedup();
        assert_eq!(backends.len(), BACKENDS.len());
    }

    #[test]
    fn a_backend_goes_to_a_child_by_name() {
        let spec = BackendSpec::on("postgres");
        let json = serde_json::to_string(&spec).unwrap();
        let back: BackendSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, spec);
        assert_eq!(back.backend.name(), "postgres");
        assert!(serde_json::from_str::<BackendRef>("\"nope\"").is_err());
        assert_eq!(
            BackendRef::listed(|b| b.shared()),
            "redis, blob, postgres, etcd, s3, dynamodb, mysql or zookeeper"
        );
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let mut spec = BackendSpec::on("blob");
        spec.redis.url = "redis://:secret@127.0.0.1:6380/0".into();
        spec.postgres.url = "postgres://app:secret@127.0.0.1:5433/app".into();
        let text = format!("{spec:?}");
        assert!(!text.contains("Eby8"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
