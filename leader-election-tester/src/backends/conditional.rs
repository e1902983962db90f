//! What the backends on the core's conditional engine (`leader_election::store::conditional`:
//! S3 and DynamoDB) share in the tester, as one [`Backend`], [`Conditional`], over a
//! [`Service`]: one endpoint, which a contender's proxy stands in front of; moto, started by
//! their `--spawn-...` option, serves either, and its empty restart is their server fault;
//! every store a process opens is kept, so that the requests they sent can be summed after the
//! run; and the operator's hands either delete the lease record or overwrite it with garbage.
//! A backend's names and settings are declared by [`names!`](names), its code is a
//! [`Service`].

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use leader_election::store::conditional::{ConditionalObjects, ConditionalStore};
use leader_election::{BoxLeaseStore, LeaderElectionOptions};
use leader_election_fixtures::S3Emulator;

use super::{Backend, BackendSpec, BoxFuture, OperatorAction, Server};
use crate::faults::FaultKind;

/// The access key sent to the emulator (moto accepts any).
pub(crate) const ACCESS_KEY: &str = leader_election_fixtures::s3::ACCESS_KEY;
/// The secret key going with it (a test value).
pub(crate) const SECRET_KEY: &str = leader_election_fixtures::s3::SECRET_KEY;
/// The region the emulator is addressed in by default.
pub(crate) const REGION: &str = leader_election_fixtures::s3::REGION;
/// The endpoint the docker-compose file publishes moto on (it serves S3 and DynamoDB).
pub(crate) const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5000";

/// What an operator's request (`what`: `delete`, `overwrite`) to the backend `name` failed
/// with, its sources included (both SDKs share the AWS error types).
pub(crate) fn failed(name: &str, what: &str, err: &(dyn std::error::Error + 'static)) -> String {
    let err = leader_election_s3::aws::aws_sdk_s3::error::DisplayErrorContext(err);
    format!("{name}: {what}: {err}")
}

/// What one store sent so far, by request (`("GetItem", 12)`, ...).
type Counter = Box<dyn Fn() -> Vec<(&'static str, u64)> + Send>;

/// Every store this process opened, with the name of its backend, so that their request
/// counts stay readable while contenders own them (`Arc<S>` is a store, forwarding every
/// method).
static COUNTERS: Mutex<Vec<(&'static str, Counter)>> = Mutex::new(Vec::new());

/// What [`names!`](names) declares of a backend: its names, where its settings are in the
/// spec, and the operator's actions.
pub(crate) trait Names {
    /// The name on the command line and in reports, and the field of the spec holding its
    /// settings.
    const NAME: &'static str;
    /// One line for `--help`.
    const ABOUT: &'static str;
    /// The service in prose (`S3`, `DynamoDB`).
    const SERVICE: &'static str;
    /// What holds its data, lost when the emulator restarts empty (`bucket`, `table`).
    const CONTAINER: &'static str;
    /// The option that starts moto for the run (`--spawn-` and the name).
    const SPAWN_FLAG: &'static str;
    /// What to do when nothing answers at the endpoint.
    const REACH_HINT: &'static str;
    /// The operator's actions: delete the lease record, then overwrite it with garbage.
    const ACTIONS: &'static [OperatorAction; 2];

    /// The endpoint in the spec.
    fn endpoint_in(spec: &mut BackendSpec) -> &mut String;

    /// Whether the spec asks for the [`SPAWN_FLAG`](Self::SPAWN_FLAG).
    fn spawn_requested(spec: &BackendSpec) -> bool;
}

/// Declares the backend `$name` over the store half `$objects` as the constant `$backend`,
/// and its [`Names`]: its
/// settings are the spec's field `$name` (with an `endpoint` and `spawn`), `--spawn-$name`
/// starts moto for it, and its operator's actions `${name}_delete` and `${name}_overwrite`
/// delete or overwrite its lease `$record`.
macro_rules! names {
    ($backend:ident = $name:ident: $objects:ty,
     $service:literal keeps its $record:literal in a $container:literal;
     about $about:literal; reach $hint:literal $(;)?) => {
        #[doc = concat!("`--backend ", stringify!($name), "`.")]
        pub(crate) const $backend: $crate::backends::conditional::Conditional<$objects> =
            $crate::backends::conditional::Conditional::BACKEND;

        impl $crate::backends::conditional::Names for $objects {
            const NAME: &'static str = stringify!($name);
            const ABOUT: &'static str = $about;
            const SERVICE: &'static str = $service;
            const CONTAINER: &'static str = $container;
            const SPAWN_FLAG: &'static str = concat!("--spawn-", stringify!($name));
            const REACH_HINT: &'static str = $hint;
            const ACTIONS: &'static [$crate::backends::OperatorAction; 2] = &[
                $crate::backends::OperatorAction::new(
                    concat!(stringify!($name), "_delete"),
                    concat!("delete the ", $service, " lease ", $record),
                ),
                $crate::backends::OperatorAction::new(
                    concat!(stringify!($name), "_overwrite"),
                    concat!(
                        "overwrite the ",
                        $service,
                        " lease ",
                        $record,
                        " with garbage"
                    ),
                ),
            ];

            fn endpoint_in(spec: &mut $crate::backends::BackendSpec) -> &mut String {
                &mut spec.$name.endpoint
            }

            fn spawn_requested(spec: &$crate::backends::BackendSpec) -> bool {
                spec.$name.spawn
            }
        }
    };
}
pub(crate) use names;

/// The code of a backend on the conditional engine, on its store half (whose [`Names`] are
/// declared by [`names!`](names)): how it builds a store, the operator's two hands on its lease
/// record, and its request counters.
pub(crate) trait Service: ConditionalObjects + Names + Sized {
    /// A store of the election, with the emulator's test credentials.
    ///
    /// # Errors
    /// When its configuration is refused.
    fn store(
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<ConditionalStore<Self>, String>;

    /// Deletes the lease record (`garbage: false`) or overwrites it with something no
    /// contender can read, through a client of its own.
    fn operate(spec: &BackendSpec, garbage: bool) -> BoxFuture<'_, Result<(), String>>;

    /// What a store has sent so far, by request, in the order of the line after the run.
    fn counts(&self) -> Vec<(&'static str, u64)>;
}

/// The [`Backend`] of the [`Service`] `S`.
pub(crate) struct Conditional<S>(PhantomData<fn() -> S>);

impl<S> Conditional<S> {
    /// The backend.
    pub(crate) const BACKEND: Self = Self(PhantomData);
}

impl<S: Service> Backend for Conditional<S> {
    fn name(&self) -> &'static str {
        S::NAME
    }

    fn about(&self) -> &'static str {
        S::ABOUT
    }

    fn spawn_option(&self) -> Option<(&'static str, &'static [FaultKind])> {
        Some((S::SPAWN_FLAG, &[FaultKind::ServerRestart]))
    }

    fn spawn_requested(&self, spec: &BackendSpec) -> bool {
        S::spawn_requested(spec)
    }

    fn spawn<'a>(
        &'a self,
        spec: &'a mut BackendSpec,
    ) -> BoxFuture<'a, Result<Arc<dyn Server>, String>> {
        let (service, container) = (S::SERVICE, S::CONTAINER);
        Box::pin(async move {
            // The fixture panics when moto is missing or does not start: report that.
            let emulator = tokio::spawn(S3Emulator::start())
                .await
                .map_err(|e| format!("cannot start the {service} emulator: {e}"))?;
            *S::endpoint_in(spec) = emulator.endpoint();
            let server = Spawned {
                emulator,
                service,
                container,
            };
            Ok(Arc::new(server) as Arc<dyn Server>)
        })
    }

    fn urls<'s>(&self, spec: &'s mut BackendSpec) -> Vec<&'s mut String> {
        vec![S::endpoint_in(spec)]
    }

    fn open(
        &self,
        spec: &BackendSpec,
        options: &LeaderElectionOptions,
    ) -> Result<BoxLeaseStore, String> {
        let store = Arc::new(S::store(spec, options)?);
        let counted = Arc::clone(&store);
        let counter: Counter = Box::new(move || counted.counts());
        COUNTERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((S::NAME, counter));
        Ok(BoxLeaseStore::new(store))
    }

    fn reach(&self, spec: &BackendSpec) -> Option<(String, &'static str)> {
        let mut spec = spec.clone();
        let endpoint = S::endpoint_in(&mut spec);
        Some((format!("{} at {endpoint}", S::SERVICE), S::REACH_HINT))
    }

    fn operator_actions(&self) -> &'static [OperatorAction] {
        S::ACTIONS
    }

    fn act<'a>(
        &'a self,
        spec: &'a BackendSpec,
        action: OperatorAction,
    ) -> BoxFuture<'a, Result<(), String>> {
        S::operate(spec, action == S::ACTIONS[1])
    }

    fn requests(&self) -> Option<String> {
        let mut sum: Vec<(&'static str, u64)> = Vec::new();
        let counters = COUNTERS.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, counter) in counters.iter().filter(|(name, _)| *name == S::NAME) {
            for (request, count) in counter() {
                match sum.iter_mut().find(|(r, _)| *r == request) {
                    Some((_, total)) => *total += count,
                    None => sum.push((request, count)),
                }
            }
        }
        let sum: Vec<String> = sum.iter().map(|(r, n)| format!("{n} {r}")).collect();
        Some(format!(
            "{} requests of all contenders: {}",
            S::NAME,
            sum.join(", ")
        ))
    }
}

/// moto, started for the run; restarted empty (without the container) as a fault.
#[derive(Debug)]
struct Spawned {
    emulator: S3Emulator,
    service: &'static str,
    container: &'static str,
}

impl Server for Spawned {
    fn name(&self) -> String {
        format!("{}-emulator", self.service.to_lowercase())
    }

    fn describe(&self) -> String {
        format!(
            "started the {} emulator at {}",
            self.service,
            self.emulator.endpoint()
        )
    }

    fn fault_text(&self, _kind: FaultKind) -> String {
        format!(
            "restart the {} emulator (it comes back empty, without the {})",
            self.service, self.container
        )
    }

    fn restored_text(&self, _kind: FaultKind) -> String {
        format!("the {} emulator is back", self.service)
    }

    fn restart(self: Arc<Self>) -> BoxFuture<'static, Result<(), String>> {
        Box::pin(async move {
            let service = self.service;
            // The fixture panics when the emulator does not come back: say so.
            tokio::spawn(async move { self.emulator.restart().await })
                .await
                .map_err(|e| format!("the {service} emulator did not come back: {e}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_proxy_replaces_the_endpoint_and_spawning_offers_the_restart() {
        for name in ["s3", "dynamodb"] {
            let backend = super::super::BackendRef::named(name).unwrap();
            let mut spec = BackendSpec::on(name);
            assert_eq!(
                backend.upstreams(&spec),
                Ok(vec!["127.0.0.1:5000".parse().unwrap()])
            );
            let mut via = backend.via(&spec, &["127.0.0.1:4242".parse().unwrap()]);
            assert_eq!(*backend.urls(&mut via)[0], "http://127.0.0.1:4242");
            assert!(backend.server_faults(&spec).is_empty());
            spec.s3.spawn = true;
            spec.dynamodb.spawn = true;
            assert_eq!(
                backend.spawn_flag(&spec),
                Some(format!("--spawn-{name}").as_str())
            );
            assert_eq!(backend.server_faults(&spec), &[FaultKind::ServerRestart]);
        }
    }
}
