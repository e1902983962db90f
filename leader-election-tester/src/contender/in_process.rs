//! A contender sharing the tester's process and runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use leader_election::LeaderElection;
use leader_election::testing::{FaultControl, FaultyStore};

use super::jobs::{Jobs, JobsSpec};
use super::{Clock, Event, Sink, Stack, Timing, forward_events, store_record};
use crate::backends::BackendSpec;
use crate::faults::{FaultKind, Proxies, latency_of};
use crate::instrument::{OnConfirmed, instrumented};
use crate::report::OpCounts;

/// A contender sharing the tester's process and runtime.
#[derive(Debug)]
pub(crate) struct InProcess {
    slot: usize,
    generation: Arc<AtomicU32>,
    timing: Timing,
    store: Stack,
    faults: FaultControl,
    proxy: Option<Proxies>,
    election: Option<LeaderElection<Stack>>,
    /// The scheduled jobs (`--jobs`), if any.
    jobs: Option<Jobs>,
    clock: Clock,
    sink: Sink,
}

impl InProcess {
    /// Opens the contender's store, and its jobs' (through `proxy` if any); nothing runs
    /// until `start`.
    pub(crate) async fn new(
        slot: usize,
        spec: &BackendSpec,
        proxy: Option<Proxies>,
        (timing, jobs): (Timing, Option<JobsSpec>),
        clock: Clock,
        sink: Sink,
    ) -> Result<Self, String> {
        let spec = match &proxy {
            Some(proxy) => spec.backend.via(spec, &proxy.addrs()),
            None => spec.clone(),
        };
        let options = timing.options(&format!("c{slot}"));
        let faulty = FaultyStore::new(spec.backend.open(&spec, &options)?);
        let faults = faulty.control();
        let jobs = match jobs {
            Some(jobs) => Some(Jobs::open(jobs, &spec, &timing)?),
            None => None,
        };
        let generation = Arc::new(AtomicU32::new(0));
        let on_confirmed: OnConfirmed = {
            let generation = Arc::clone(&generation);
            let sink = sink.clone();
            Arc::new(move |event| {
                let _ = sink.send(Event {
                    slot,
                    generation: generation.load(Ordering::Relaxed),
                    record: store_record(clock, event),
                });
            })
        };
        Ok(Self {
            slot,
            generation,
            timing,
            store: instrumented(faulty, on_confirmed),
            faults,
            proxy,
            election: None,
            jobs,
            clock,
            sink,
        })
    }

    /// The current incarnation.
    pub(crate) fn generation(&self) -> u32 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Starts (or restarts, as a new incarnation) the election.
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        if self.election.is_none() {
            let id = format!("c{}-g{}", self.slot, self.generation());
            let election = LeaderElection::new(self.store.clone(), self.timing.options(&id))
                .map_err(|e| format!("invalid options: {e}"))?;
            let (slot, generation, sink) = (self.slot, self.generation(), self.sink.clone());
            forward_events(election.subscribe(), self.clock, move |record| {
                let _ = sink.send(Event {
                    slot,
                    generation,
                    record,
                });
            });
            self.election = Some(election);
        }
        if let Some(election) = &self.election {
            election.start().await.map_err(|e| e.to_string())?;
        }
        let (slot, generation) = (self.slot, self.generation());
        if let Some(jobs) = &mut self.jobs {
            let id = format!("c{slot}-g{generation}");
            let sink = self.sink.clone();
            let emit: super::jobs::Emit = Arc::new(move |record| {
                let _ = sink.send(Event {
                    slot,
                    generation,
                    record,
                });
            });
            jobs.start(&id, &self.timing, self.clock, emit).await?;
        }
        Ok(())
    }

    /// Stops gracefully: cancels, releases the lease, ends the loop.
    pub(crate) async fn stop(&mut self) {
        if let Some(jobs) = &mut self.jobs {
            jobs.stop().await;
        }
        if let Some(election) = &self.election {
            let _ = election.stop().await;
        }
    }

    /// Resigns: hands over at once, and stays out of the election for `cool_down`.
    pub(crate) async fn resign(&self, cool_down: Duration) {
        if let Some(election) = &self.election {
            let _ = election.resign(cool_down).await;
        }
    }

    /// Dies without releasing: drops every handle, so the loop ends and the lease is left to
    /// expire on the backend.
    pub(crate) fn crash(&mut self) {
        self.election = None;
        if let Some(jobs) = &mut self.jobs {
            jobs.crash();
        }
    }

    /// Starts the next incarnation after a graceful stop or a crash.
    pub(crate) async fn restart(&mut self) -> Result<(), String> {
        self.election = None;
        if let Some(jobs) = &mut self.jobs {
            jobs.reset();
        }
        self.generation.fetch_add(1, Ordering::Relaxed);
        self.start().await
    }

    /// Cuts (a `partition`) or heals (`None`) this contender's connection to the backend;
    /// packet faults need a process in a network namespace.
    pub(crate) fn set_network_fault(&self, fault: Option<FaultKind>) -> Result<(), String> {
        let timeout = Duration::from_millis(self.timing.operation_timeout_ms);
        match &self.proxy {
            Some(proxy) => proxy.set_latency(fault, timeout),
            // On the memory backend, the store itself answers late (without jitter).
            None => {
                for control in self.controls() {
                    control.set_latency(latency_of(fault, timeout).0);
                }
            }
        }
        let cut = match fault {
            None | Some(FaultKind::Latency) => false,
            Some(FaultKind::Partition) => true,
            Some(kind) => {
                return Err(format!(
                    "{} needs --processes --network netns",
                    kind.as_str()
                ));
            }
        };
        match &self.proxy {
            Some(proxy) => proxy.set_cut(cut),
            None => {
                for control in self.controls() {
                    control.set_partitioned(cut);
                }
            }
        }
        Ok(())
    }

    /// The fault controls of the contender's store and of its jobs' stores.
    fn controls(&self) -> Vec<FaultControl> {
        let mut controls = vec![self.faults.clone()];
        if let Some(jobs) = &self.jobs {
            controls.extend(jobs.controls());
        }
        controls
    }

    /// Backend calls so far, over every incarnation.
    pub(crate) fn ops(&self) -> OpCounts {
        self.store.hooks().ops()
    }
}
