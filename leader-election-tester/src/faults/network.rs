//! The `partition` fault: the leader cut off the backend while every other contender keeps its
//! connection. Each contender reaches the backend through its own proxies, the workspace's one
//! fault proxy, [`FaultProxy`], one per backend address it reaches (each member of an etcd
//! cluster, else the one server): `set_cut(true)` closes the connections they carry and refuses
//! new ones (accepts and closes them); `set_cut(false)` forwards again. Tested in
//! `leader-election-test-support/tests/proxy.rs`. On the memory backend, with no connection to
//! cut, the contender's store itself stops answering.

use std::net::SocketAddr;

use leader_election_fixtures::FaultProxy;

use crate::contender::Slot;

/// What the fault does, for the live output.
pub(super) const DESCRIPTION: &str = "cut the leader off the backend";

/// Cuts (`true`) or heals (`false`) the connection of the contender in `slot`: its proxies, or
/// (without any, on the memory backend) its store.
pub(super) fn cut(slot: &Slot, cut: bool) {
    slot.set_partitioned(cut);
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
}
