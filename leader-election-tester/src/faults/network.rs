//! The faults on the leader's network, while every other contender keeps its connection.
//!
//! Without `--network netns`, only `partition`: each contender reaches the backend through its
//! own proxies, the workspace's one fault proxy, [`FaultProxy`], one per backend address it
//! reaches (each member of an etcd cluster, else the one server): `set_cut(true)` closes the
//! connections they carry and refuses new ones (accepts and closes them); `set_cut(false)`
//! forwards again. Tested in `leader-election-test-support/tests/proxy.rs`. On the memory
//! backend, with no connection to cut, the contender's store itself stops answering.
//!
//! With `--network netns`, each contender process runs in a network namespace of its own and
//! nftables rules on its side of the link drop its packets
//! ([`leader_election_fixtures::netns`]): both ways (`partition`), only what comes back
//! (`drop_replies`), only what goes out (`drop_requests`), or [`LOSS_PERCENT`] of them each
//! way at random (`loss`). In both, `latency` delays the leader's traffic through its proxies
//! by 0.75 to 1.25 times its `operation_timeout` each way, at random ([`latency_of`]).

use std::net::SocketAddr;
use std::time::Duration;

use leader_election_fixtures::FaultProxy;

use crate::contender::Slot;
use crate::faults::FaultKind;

/// The share of packets a `loss` fault drops each way, in percent.
pub(crate) const LOSS_PERCENT: u8 = 20;

/// The one-way delay and jitter the `latency` fault adds to the leader's traffic (none for
/// any other fault, or `None`: healed), for an `operation_timeout` of `timeout`: from 0.75 to
/// 1.25 times it each way, so that every round trip takes longer than the timeout.
pub(crate) fn latency_of(fault: Option<FaultKind>, timeout: Duration) -> (Duration, Duration) {
    if fault == Some(FaultKind::Latency) {
        (timeout * 3 / 4, timeout / 2)
    } else {
        (Duration::ZERO, Duration::ZERO)
    }
}

/// What a fault of `kind` does, for the live output.
pub(super) fn describe(kind: FaultKind) -> String {
    match kind {
        FaultKind::DropReplies => "drop the backend's replies to the leader".to_owned(),
        FaultKind::DropRequests => "drop the leader's requests to the backend".to_owned(),
        FaultKind::Loss => format!("drop {LOSS_PERCENT} % of the leader's packets each way"),
        FaultKind::Latency => {
            "delay the leader's traffic past its operation_timeout, with jitter".to_owned()
        }
        _ => "cut the leader off the backend".to_owned(),
    }
}

/// Injects `fault` (a network fault kind) on the contender in `slot`, or heals its network
/// (`None`).
///
/// # Errors
/// When the rules cannot be set, or the fault is one this contender's network cannot take
/// (packet faults need `--network netns`): nothing was injected.
pub(super) fn inject(slot: &Slot, fault: Option<FaultKind>) -> Result<(), String> {
    slot.set_network_fault(fault)
}

/// One contender's proxies, one per upstream address, cut and healed together.
#[derive(Debug)]
pub(crate) struct Proxies(Vec<FaultProxy>);

impl Proxies {
    /// A proxy on a free port of `ip` (127.0.0.1, or the network lab's host address with
    /// `--network netns`) for each of `upstreams`, in their order.
    ///
    /// # Errors
    /// When a port cannot be bound.
    pub(crate) async fn start_on(
        ip: std::net::IpAddr,
        upstreams: &[SocketAddr],
    ) -> std::io::Result<Self> {
        let mut proxies = Vec::with_capacity(upstreams.len());
        for &upstream in upstreams {
            proxies.push(FaultProxy::start_on(ip, upstream).await?);
        }
        Ok(Self(proxies))
    }

    /// Where the contender connects instead of the upstreams, in their order.
    pub(crate) fn addrs(&self) -> Vec<SocketAddr> {
        self.0.iter().map(FaultProxy::addr).collect()
    }

    /// Cuts (`true`) or heals (`false`) every connection of the contender.
    pub(crate) fn set_cut(&self, cut: bool) {
        for proxy in &self.0 {
            proxy.set_cut(cut);
        }
    }

    /// Delays the contender's traffic as `fault` says ([`latency_of`]), or not at all.
    pub(crate) fn set_latency(&self, fault: Option<FaultKind>, timeout: Duration) {
        let (latency, jitter) = latency_of(fault, timeout);
        for proxy in &self.0 {
            proxy.set_latency(latency);
            proxy.set_jitter(jitter);
        }
    }
}
