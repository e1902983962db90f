//! The proxies between one contender and the backend, which can cut that contender off while
//! every other contender keeps its own proxies and connections: the workspace's one fault
//! proxy, [`FaultProxy`], one per backend address the
//! contender reaches (each member of an etcd cluster, else the one server). `set_cut(true)`
//! closes the connections they carry and refuses new ones (accepts and closes them);
//! `set_cut(false)` forwards again. Tested in `leader-election-test-support/tests/proxy.rs`.

use std::net::SocketAddr;

use leader_election_fixtures::FaultProxy;

/// One contender's proxies, one per upstream address, cut and healed together.
#[derive(Debug)]
pub(crate) struct Proxies(Vec<FaultProxy>);

impl Proxies {
    /// A proxy on a free port of 127.0.0.1 for each of `upstreams`, in their order.
    ///
    /// # Errors
    /// When a port cannot be bound.
    pub(crate) async fn start(upstreams: &[SocketAddr]) -> std::io::Result<Self> {
        let mut proxies = Vec::with_capacity(upstreams.len());
        for &upstream in upstreams {
            proxies.push(FaultProxy::start(upstream).await?);
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
