//! Contenders: in this process (sharing its runtime, [`InProcess`]), or each in its own OS
//! process (the tester re-invoking itself, [`Process`]), behind one interface the fault
//! schedule drives, [`Slot`]; the lease timing and the run's clock they share.

mod in_process;
mod jobs;
mod process;

use std::time::Duration;

use leader_election::testing::FaultyStore;
use leader_election::{BoxLeaseStore, ElectionEvent, LeaderElectionOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::faults::FaultKind;
use crate::instrument::{Instrumented, StoreEvent};
use crate::record::Record;
use crate::report::OpCounts;

pub(crate) use in_process::InProcess;
pub(crate) use jobs::JobsSpec;
pub(crate) use process::{Process, child_main};

/// A record from contender `slot`, incarnation `generation`.
#[derive(Debug)]
pub(crate) struct Event {
    /// The contender slot.
    pub(crate) slot: usize,
    /// Its incarnation.
    pub(crate) generation: u32,
    /// What happened.
    pub(crate) record: Record,
}

/// Where contenders send their records.
pub(crate) type Sink = mpsc::UnboundedSender<Event>;

/// The lease timing every contender uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Timing {
    /// Lease duration.
    pub(crate) lease_ms: u64,
    /// Renew interval.
    pub(crate) renew_ms: u64,
    /// First retry delay.
    pub(crate) retry_ms: u64,
    /// Timeout of each backend call.
    pub(crate) operation_timeout_ms: u64,
    /// This contender's priority for preferred leaders (`--priorities`); `None` takes no part.
    #[serde(default)]
    pub(crate) priority: Option<u32>,
    /// Minimum tenure before a leader hands over to a preferred contender (`--min-tenure`);
    /// `None`: one lease.
    #[serde(default)]
    pub(crate) min_tenure_ms: Option<u64>,
}

impl Timing {
    /// Election options for contender `instance_id` with this timing.
    pub(crate) fn options(&self, instance_id: &str) -> LeaderElectionOptions {
        let lease = Duration::from_millis(self.lease_ms);
        let retry = Duration::from_millis(self.retry_ms);
        let mut options = LeaderElectionOptions::default();
        options.instance_id = instance_id.to_owned();
        options.lease_duration = lease;
        options.renew_interval = Duration::from_millis(self.renew_ms);
        options.retry_interval = retry;
        options.max_retry_interval = retry.max(lease / 2);
        options.operation_timeout = Some(Duration::from_millis(self.operation_timeout_ms));
        options.shutdown_timeout = (lease / 2).max(Duration::from_millis(100));
        options.priority = self.priority;
        options.min_tenure = self.min_tenure_ms.map(Duration::from_millis);
        options
    }

    /// This timing for contender `slot`, with its priority from `priorities` (none when the
    /// list is empty).
    pub(crate) fn for_slot(self, priorities: &[u32], slot: usize) -> Self {
        Self {
            priority: priorities.get(slot).copied(),
            ..self
        }
    }
}

/// Milliseconds since `epoch` on this process's monotonic clock, shifted by `base_ms` (zero
/// in the parent; the child's offset to the parent's epoch in a child process).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    /// This process's instant for `base_ms`.
    pub(crate) origin: Instant,
    /// The run time at `origin`, in ms.
    pub(crate) base_ms: f64,
    /// The rate of this process's monotonic clock against the run's (1 but under
    /// `--clock-faults rate`): `d` ms on it are `d / rate` ms of the run.
    pub(crate) rate: f64,
}

/// Now on a clock every process of this machine reads alike, in ms: on Linux
/// `CLOCK_MONOTONIC`, read through rustix (the kernel's vDSO or the system call, never the C
/// library), so that libfaketime, which answers the C library's clock reads under
/// `--clock-faults`, does not change it (and a wall-clock step never does); the wall clock
/// elsewhere.
pub(crate) fn shared_clock_ms() -> f64 {
    #[cfg(target_os = "linux")]
    {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        now.tv_sec as f64 * 1000.0 + now.tv_nsec as f64 / 1_000_000.0
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    }
}

impl Clock {
    /// Run time of `at`.
    pub(crate) fn ms(&self, at: Instant) -> f64 {
        let delta = if at >= self.origin {
            at.duration_since(self.origin).as_secs_f64()
        } else {
            -self.origin.duration_since(at).as_secs_f64()
        };
        self.base_ms + delta * 1000.0 / self.rate
    }

    /// Run time now.
    pub(crate) fn now_ms(&self) -> f64 {
        self.ms(Instant::now())
    }
}

/// The store stack of one contender: counting, then fault injection, then the backend.
type Stack = Instrumented<FaultyStore<BoxLeaseStore>>;

/// The record of what the store saw.
fn store_record(clock: Clock, event: StoreEvent) -> Record {
    match event {
        StoreEvent::Confirmed {
            sent,
            returned,
            acquired,
        } => Record::Confirmed {
            at_ms: clock.ms(sent),
            returned_ms: clock.ms(returned),
            acquired,
        },
        StoreEvent::Releasing(at) => Record::Releasing {
            at_ms: clock.ms(at),
        },
        StoreEvent::Renewing(at) => Record::Renewing {
            at_ms: clock.ms(at),
        },
    }
}

/// Forwards an election's events as records until the election is gone.
fn forward_events(
    mut events: broadcast::Receiver<ElectionEvent>,
    clock: Clock,
    mut emit: impl FnMut(Record) + Send + 'static,
) {
    tokio::spawn(async move {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break,
            };
            let at_ms = clock.now_ms();
            let record = match event {
                // Terms are stamped by the election, not on reception, so that the terms of
                // several contenders compare exactly.
                ElectionEvent::LeadershipChanged {
                    is_leader: true,
                    token,
                    at,
                    ..
                } => Record::Acquired {
                    at_ms: clock.ms(at),
                    token: token.get(),
                },
                ElectionEvent::LeadershipChanged {
                    is_leader: false,
                    token,
                    reason,
                    at,
                } => Record::Lost {
                    at_ms: clock.ms(at),
                    token: token.get(),
                    reason: reason.as_str().to_owned(),
                },
                ElectionEvent::Error(err) => Record::Error {
                    at_ms,
                    message: err.to_string(),
                },
                _ => continue,
            };
            emit(record);
        }
    });
}

// === impl Slot ===

/// A contender of either kind.
#[derive(Debug)]
pub(crate) enum Slot {
    /// In this process.
    InProcess(Box<InProcess>),
    /// In a process of its own.
    Process(Box<Process>),
}

impl Slot {
    /// Starts the election of the current incarnation.
    pub(crate) async fn start(&mut self) -> Result<(), String> {
        match self {
            Self::InProcess(c) => c.start().await,
            Self::Process(c) => c.start().await,
        }
    }

    /// Stops gracefully (a process gets `grace` to exit).
    pub(crate) async fn stop(&mut self, grace: Duration) {
        match self {
            Self::InProcess(c) => c.stop().await,
            Self::Process(c) => c.stop(grace).await,
        }
    }

    /// Dies without releasing (a process gets SIGKILL).
    pub(crate) async fn crash(&mut self) {
        match self {
            Self::InProcess(c) => c.crash(),
            Self::Process(c) => c.crash().await,
        }
    }

    /// Starts the next incarnation.
    pub(crate) async fn restart(&mut self) -> Result<(), String> {
        match self {
            Self::InProcess(c) => c.restart().await,
            Self::Process(c) => c.restart().await,
        }
    }

    /// Resigns, staying out for `cool_down`.
    pub(crate) async fn resign(&mut self, cool_down: Duration) {
        match self {
            Self::InProcess(c) => c.resign(cool_down).await,
            Self::Process(c) => c.resign(cool_down).await,
        }
    }

    /// Injects a network fault (see [`FaultKind::is_network`]) on the connection to the
    /// backend, or heals it (`None`).
    ///
    /// # Errors
    /// When the fault cannot be injected: nothing was.
    pub(crate) fn set_network_fault(&self, fault: Option<FaultKind>) -> Result<(), String> {
        match self {
            Self::InProcess(c) => c.set_network_fault(fault),
            Self::Process(c) => c.set_network_fault(fault),
        }
    }

    /// Steps the wall clock of the contender's processes to `secs` seconds off the real one
    /// (`--clock-faults step`).
    ///
    /// # Errors
    /// When its clock cannot step: nothing was done.
    pub(crate) fn set_clock_offset(&self, secs: i64) -> Result<(), String> {
        match self {
            Self::InProcess(_) if secs == 0 => Ok(()),
            Self::InProcess(_) => Err("a clock step needs --processes --clock-faults step".into()),
            Self::Process(c) => c.set_clock_offset(secs),
        }
    }

    /// The current incarnation.
    pub(crate) fn generation(&self) -> u32 {
        match self {
            Self::InProcess(c) => c.generation(),
            Self::Process(c) => c.generation(),
        }
    }

    /// Backend calls so far, counted in this process (a process reports its own).
    pub(crate) fn ops(&self) -> Option<OpCounts> {
        match self {
            Self::InProcess(c) => Some(c.ops()),
            Self::Process(_) => None,
        }
    }
}
