//! This project's side, on any store: elections whose stores count their requests, remember
//! their last lease-extending request and can be cut off (a crash).

use std::sync::{Arc, Mutex};

use leader_election::store::{Forward, StoreHooks};
use leader_election::testing::{FaultControl, FaultyStore};
use leader_election::{
    ElectionEvent, LeaderElection, LeaderElectionOptions, LeaseStore, Operation,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::Settings;
use crate::side::Contenders;

/// How the leader hands over.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Handover {
    /// `stop`, then `start` again.
    Stop,
    /// `resign`, staying out for a lease.
    Resign,
}

/// When a contender last sent an acquisition or a renewal.
#[derive(Clone, Debug, Default)]
pub(crate) struct LastSent(Arc<Mutex<Option<Instant>>>);

impl StoreHooks for LastSent {
    fn started(&self, operation: Operation) {
        if matches!(operation, Operation::Renew | Operation::Acquire) {
            *self.0.lock().unwrap() = Some(Instant::now());
        }
    }
}

type Store<S> = Forward<FaultyStore<S>, LastSent>;

/// The requests a store sends on its own, outside every `LeaseStore` call (the etcd store's
/// keep-alives of a follower's claim), counted among its contender's.
pub(crate) type Background = Box<dyn Fn() -> u64 + Send + Sync>;

/// This project's contenders.
pub(crate) struct Ours<S: LeaseStore> {
    elections: Vec<LeaderElection<Store<S>>>,
    controls: Vec<FaultControl>,
    sent: Vec<LastSent>,
    background: Vec<Background>,
    elected: mpsc::UnboundedReceiver<(usize, Instant)>,
    handover: Handover,
    lease: std::time::Duration,
}

/// The election options of every side's timing: the lease, renewed every quarter of it, each
/// request bounded by a quarter, retries from 100 ms.
pub(crate) fn options(settings: &Settings, slot: usize) -> LeaderElectionOptions {
    let mut o = LeaderElectionOptions::default();
    o.instance_id = format!("c{slot}");
    o.lease_duration = settings.lease;
    o.renew_interval = settings.lease / 4;
    o.operation_timeout = Some(settings.lease / 4);
    o.retry_interval = std::time::Duration::from_millis(100);
    o.max_retry_interval = settings.lease / 4;
    o
}

impl<S: LeaseStore + 'static> Ours<S> {
    /// Starts one election per store of `stores` (built with [`options`] for its slot), each
    /// with the count of the requests its store sends on its own (`background`, by slot; none
    /// when empty).
    pub(crate) async fn start(
        stores: Vec<S>,
        background: Vec<Background>,
        settings: &Settings,
        handover: Handover,
    ) -> Self {
        let (tx, elected) = mpsc::unbounded_channel();
        let mut ours = Self {
            elections: Vec::new(),
            controls: Vec::new(),
            sent: Vec::new(),
            background,
            elected,
            handover,
            lease: settings.lease,
        };
        for (slot, store) in stores.into_iter().enumerate() {
            let faulty = FaultyStore::new(store);
            ours.controls.push(faulty.control());
            let last = LastSent::default();
            ours.sent.push(last.clone());
            let election =
                LeaderElection::new(Forward::with_hooks(faulty, last), options(settings, slot))
                    .expect("options");
            let mut events = election.subscribe();
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Ok(event) = events.recv().await {
                    if let ElectionEvent::LeadershipChanged {
                        is_leader: true,
                        at,
                        ..
                    } = event
                    {
                        let _ = tx.send((slot, at));
                    }
                }
            });
            election.start().await.expect("start");
            ours.elections.push(election);
        }
        ours
    }
}

impl<S: LeaseStore + 'static> Contenders for Ours<S> {
    fn elected(&mut self) -> &mut mpsc::UnboundedReceiver<(usize, Instant)> {
        &mut self.elected
    }

    async fn hand_over(&mut self, slot: usize) {
        let election = &self.elections[slot];
        match self.handover {
            Handover::Stop => {
                // A stopped instance comes back as a follower a lease later (a restart), not at
                // once, where it could take its own lease again before the others hear it is free.
                election.stop().await.expect("stop");
                let election = election.clone();
                let lease = self.lease;
                tokio::spawn(async move {
                    tokio::time::sleep(lease).await;
                    election.start().await.expect("start again");
                });
            }
            Handover::Resign => {
                election.resign(self.lease).await.expect("resign");
            }
        }
    }

    async fn crash(&mut self, slot: usize) -> Instant {
        self.controls[slot].set_partitioned(true);
        let last = self.sent[slot].0.lock().unwrap().expect("a renewal");
        // Back as a follower two leases later, once somebody else leads.
        let control = self.controls[slot].clone();
        let lease = self.lease;
        tokio::spawn(async move {
            tokio::time::sleep(lease * 2).await;
            control.heal();
        });
        last
    }

    fn requests(&self, slot: usize) -> u64 {
        self.controls[slot].operations() + self.background.get(slot).map_or(0, |count| count())
    }

    async fn stop(&mut self) {
        for control in &self.controls {
            control.heal();
        }
        for election in &self.elections {
            let _ = election.stop().await;
        }
    }
}
