//! Real etcd for one test or run: a single member or a cluster of several, each an `etcd`
//! process on free ports of 127.0.0.1 (client and peer), with its data in a temporary folder;
//! members can be killed (SIGKILL) and restarted on their data, cut off their peers (a cluster
//! started with [`EtcdCluster::start_partitionable`], or, with feature `netns`, each member in a
//! network namespace of its own with `EtcdCluster::start_in_lab`), and the cluster administered
//! with `etcdctl`. Every process is stopped by PID when the fixture is dropped.
//!
//! The members keep etcd's default timing (heartbeat 100 ms, election timeout 1 s), so that the
//! tests see what a deployment sees: etcd's shortest lease is then 2 s (`⌈1.5 × election
//! timeout⌉`), and a Raft leader's loss is noticed within about a second.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::helpers::{free_port, program_available, temp_dir, unique_name};
use crate::process::ServerProcess;
use crate::proxy::FaultProxy;

/// The certificates of a TLS cluster: there are none without feature `tls`.
#[cfg(feature = "tls")]
type Certs = crate::TestCertificates;
#[cfg(not(feature = "tls"))]
type Certs = std::convert::Infallible;

/// How long the fixture waits for members to start and the cluster to agree.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// A member's network namespace (`EtcdCluster::start_in_lab`).
#[cfg(all(feature = "netns", target_os = "linux"))]
type Namespace = crate::netns::NetNamespace;

/// No namespaces without feature `netns` on Linux.
#[cfg(not(all(feature = "netns", target_os = "linux")))]
#[derive(Debug)]
enum Namespace {}

#[cfg(not(all(feature = "netns", target_os = "linux")))]
impl Namespace {
    fn ip(&self) -> Ipv4Addr {
        match *self {}
    }

    fn command(&self, _: &str) -> Command {
        match *self {}
    }

    fn cut_from(&self, _: &[Ipv4Addr]) -> std::io::Result<()> {
        match *self {}
    }

    fn heal(&self) -> std::io::Result<()> {
        match *self {}
    }
}

/// How the members reach each other's peer ports.
enum PeerLinks {
    /// Directly, on 127.0.0.1.
    Direct,
    /// Through a [`FaultProxy`] of this process in front of each member.
    Proxied,
    /// Each member in a network namespace of its own (these, in member order).
    #[cfg_attr(not(all(feature = "netns", target_os = "linux")), allow(dead_code))]
    Namespaces(Vec<Namespace>),
}

/// One etcd member: its address and ports, and its process while it runs.
struct Member {
    name: String,
    /// Where it listens: 127.0.0.1, or its namespace's address.
    ip: Ipv4Addr,
    client_port: u16,
    peer_port: u16,
    process: Mutex<Option<ServerProcess>>,
    /// The proxy its peers reach it through, in a partitionable cluster.
    peer_proxy: Option<FaultProxy>,
    /// Its network namespace (after `process`: dropped once the process is gone).
    namespace: Option<Namespace>,
}

impl Member {
    /// The peer URL the others reach this member at: its proxy's, if it has one.
    fn advertised_peer_url(&self) -> String {
        let port = self
            .peer_proxy
            .as_ref()
            .map_or(self.peer_port, FaultProxy::port);
        format!("http://{}:{port}", self.ip)
    }
}

/// A running etcd cluster of local members (one for [`EtcdCluster::single`]); every process is
/// stopped (by PID) and the data removed when dropped.
pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    token: String,
    dir: PathBuf,
    /// Whether clients must use TLS with a client certificate (see `start_tls`): the CA,
    /// server and client files are in `dir`.
    tls: bool,
    /// An address of this machine the members also serve clients on (see `start_on`).
    also_on: Option<std::net::IpAddr>,
}

impl fmt::Debug for EtcdCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdCluster")
            .field("endpoints", &self.endpoints())
            .field("running", &self.running())
            .field("dir", &self.dir)
            .finish()
    }
}

/// Whether `etcdctl version` runs (etcdctl has no `--version`).
fn etcdctl_available() -> bool {
    Command::new("etcdctl")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn missing() -> String {
    "etcd and etcdctl are needed for the etcd tests: run scripts/install-etcd.sh \
     (Debian's etcd-server and etcd-client packages)"
        .to_owned()
}

impl EtcdCluster {
    /// A single member, ready.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn single() -> Self {
        Self::start(1).await
    }

    /// A cluster of `members` members, started together and ready: every member reports
    /// healthy and one is the Raft leader.
    ///
    /// # Panics
    /// When `etcd` or `etcdctl` is missing, or the cluster is not ready within 30 s.
    pub async fn start(members: usize) -> Self {
        Self::start_with(members, None, None, PeerLinks::Direct).await
    }

    /// [`start`](Self::start), each member's peers reaching it through a [`FaultProxy`] of
    /// this process, so that [`cut_from_peers`](Self::cut_from_peers) can cut it off them
    /// while its clients still reach it. The proxies run on the caller's tokio runtime: one
    /// that blocks its threads stalls the cluster.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn start_partitionable(members: usize) -> Self {
        Self::start_with(members, None, None, PeerLinks::Proxied).await
    }

    /// [`start`](Self::start), each member in a network namespace of its own in `lab`,
    /// listening (clients and peers) on the namespace's address, which the root namespace and
    /// the lab's other namespaces reach: [`cut_from_peers`](Self::cut_from_peers) then drops
    /// every packet between the member and the others, both ways, silently, while its clients
    /// still reach it, as a real network partition does. The lab must outlive the cluster.
    ///
    /// # Panics
    /// As [`start`](Self::start); when the namespaces cannot be made.
    #[cfg(all(feature = "netns", target_os = "linux"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "netns", target_os = "linux"))))]
    pub async fn start_in_lab(members: usize, lab: &crate::netns::NetLab) -> Self {
        let namespaces = (0..members)
            .map(|_| {
                lab.namespace()
                    .expect("a network namespace for an etcd member")
            })
            .collect();
        Self::start_with(members, None, None, PeerLinks::Namespaces(namespaces)).await
    }

    /// Cuts member `index` off its peers (`true`), or heals it (`false`); answers whether it
    /// did, which needs a cluster started partitionable.
    ///
    /// - In a lab ([`start_in_lab`](Self::start_in_lab)), every packet between the member and
    ///   the others is dropped both ways, silently; its clients still reach it.
    /// - Through proxies ([`start_partitionable`](Self::start_partitionable)), the
    ///   connections the other members opened to it fall silent (its Raft messages to them,
    ///   theirs sent over those connections) and new ones are never answered, while its
    ///   clients still reach it and the connections it opened to them still carry their
    ///   messages to it; healing closes the silent connections, and the members connect
    ///   again.
    ///
    /// A cut that `nft` refused is printed and answered `false`.
    pub fn cut_from_peers(&self, index: usize, cut: bool) -> bool {
        let member = &self.members[index];
        if let Some(namespace) = &member.namespace {
            let done = if cut {
                let peers: Vec<Ipv4Addr> = (self.members.iter().enumerate())
                    .filter(|&(i, _)| i != index)
                    .map(|(_, m)| m.ip)
                    .collect();
                namespace.cut_from(&peers)
            } else {
                namespace.heal()
            };
            return done
                .inspect_err(|e| eprintln!("etcd member {index}: {e}"))
                .is_ok();
        }
        let Some(proxy) = &member.peer_proxy else {
            return false;
        };
        if cut {
            proxy.hang();
        } else {
            proxy.heal();
        }
        true
    }

    /// [`start`](Self::start), the members serving clients on `ip` too (on the same ports),
    /// such as a network lab's host address (`netns::NetLab::host_ip`, feature `netns`); see
    /// [`endpoints_on`](Self::endpoints_on).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub async fn start_on(members: usize, ip: std::net::IpAddr) -> Self {
        Self::start_with(members, None, Some(ip), PeerLinks::Direct).await
    }

    /// The client URLs of every member on `ip` (a cluster started with
    /// [`start_on`](Self::start_on) that address).
    pub fn endpoints_on(&self, ip: std::net::IpAddr) -> Vec<String> {
        let scheme = if self.tls { "https" } else { "http" };
        self.members
            .iter()
            .map(|m| format!("{scheme}://{ip}:{}", m.client_port))
            .collect()
    }

    /// A cluster of `members` members whose clients must use TLS and present a client
    /// certificate signed by a fresh CA (etcd's `--client-cert-auth`): [`ca_file`],
    /// [`client_cert_file`] and [`client_key_file`] hold what a client needs; the server's
    /// certificate names `127.0.0.1` and `localhost`. Endpoints are `https://` URLs.
    ///
    /// [`ca_file`]: Self::ca_file
    /// [`client_cert_file`]: Self::client_cert_file
    /// [`client_key_file`]: Self::client_key_file
    ///
    /// # Panics
    /// As [`start`](Self::start).
    #[cfg(feature = "tls")]
    pub async fn start_tls(members: usize) -> Self {
        Self::start_with(
            members,
            Some(crate::TestCertificates::generate()),
            None,
            PeerLinks::Direct,
        )
        .await
    }

    /// The CA certificate (PEM file) of a TLS cluster (`start_tls`, feature `tls`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A client certificate (PEM file) the TLS cluster accepts.
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir.join("client.crt")
    }

    /// The private key (PEM file) of [`client_cert_file`](Self::client_cert_file).
    pub fn client_key_file(&self) -> PathBuf {
        self.dir.join("client.key")
    }

    #[cfg(feature = "tls")]
    fn write_certificates(dir: &std::path::Path, certs: &crate::TestCertificates) {
        for (name, pem) in [
            ("ca.crt", &certs.ca_pem),
            ("server.crt", &certs.server_cert_pem),
            ("server.key", &certs.server_key_pem),
            ("client.crt", &certs.client_cert_pem),
            ("client.key", &certs.client_key_pem),
        ] {
            std::fs::write(dir.join(name), pem).expect("write a certificate file");
        }
    }

    async fn start_with(
        members: usize,
        certs: Option<Certs>,
        also_on: Option<std::net::IpAddr>,
        links: PeerLinks,
    ) -> Self {
        assert!(
            program_available("etcd") && etcdctl_available(),
            "{}",
            missing()
        );
        let (proxied, mut namespaces) = match links {
            PeerLinks::Direct => (false, Vec::new()),
            PeerLinks::Proxied => (true, Vec::new()),
            PeerLinks::Namespaces(namespaces) => (false, namespaces),
        };
        namespaces.reverse();
        let mut list = Vec::with_capacity(members);
        for i in 0..members {
            let namespace = namespaces.pop();
            let ip = namespace
                .as_ref()
                .map_or(Ipv4Addr::LOCALHOST, Namespace::ip);
            let peer_port = free_port();
            let peer_proxy = if proxied {
                let to = std::net::SocketAddr::from((ip, peer_port));
                Some(FaultProxy::start(to).await.expect("start a peer proxy"))
            } else {
                None
            };
            list.push(Member {
                name: format!("m{i}"),
                ip,
                client_port: free_port(),
                peer_port,
                process: Mutex::new(None),
                peer_proxy,
                namespace,
            });
        }
        let members = list;
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}={}", m.name, m.advertised_peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        let cluster = Self {
            members,
            initial_cluster,
            token: unique_name("etcd-cluster"),
            dir: temp_dir("etcd"),
            tls: certs.is_some(),
            also_on,
        };
        #[cfg(feature = "tls")]
        if let Some(certs) = &certs {
            Self::write_certificates(&cluster.dir, certs);
        }
        for member in 0..cluster.members.len() {
            cluster.spawn(member);
        }
        cluster.wait_ready().await;
        cluster
    }

    fn spawn(&self, index: usize) {
        let member = &self.members[index];
        let data = self.dir.join(&member.name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", member.name)))
            .expect("open the member's log");
        let client = self.endpoint(index);
        let listen = match self.also_on {
            Some(ip) => format!("{client},{}", self.endpoints_on(ip)[index]),
            None => client.clone(),
        };
        let peer = format!("http://{}:{}", member.ip, member.peer_port);
        let advertised_peer = member.advertised_peer_url();
        let mut command = match &member.namespace {
            Some(namespace) => namespace.command("etcd"),
            None => Command::new("etcd"),
        };
        command
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &listen])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &advertised_peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-token", &self.token])
            .args(["--initial-cluster-state", "new"])
            .args(["--logger", "zap", "--log-outputs", "stderr"]);
        if self.tls {
            command
                .arg("--cert-file")
                .arg(self.dir.join("server.crt"))
                .arg("--key-file")
                .arg(self.dir.join("server.key"))
                .arg("--trusted-ca-file")
                .arg(self.ca_file())
                .arg("--client-cert-auth");
        }
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log handle"))
            .stderr(log);
        let process = ServerProcess::spawn(command).expect("start etcd");
        *member
            .process
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(process);
    }

    /// The client URLs of every member, running or not, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// The client URL of member `index`.
    pub fn endpoint(&self, index: usize) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let member = &self.members[index];
        format!("{scheme}://{}:{}", member.ip, member.client_port)
    }

    /// The client port of member `index`.
    pub fn client_port(&self, index: usize) -> u16 {
        self.members[index].client_port
    }

    /// How many members the cluster has.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no members (never: it is made with at least one).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The indexes of the members whose process runs.
    pub fn running(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|&i| {
                self.members[i]
                    .process
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_some()
            })
            .collect()
    }

    /// The member whose client URL is `endpoint`, if any.
    pub fn member_of(&self, endpoint: &str) -> Option<usize> {
        (0..self.members.len()).find(|&i| self.endpoint(i) == endpoint.trim_end_matches('/'))
    }

    /// Kills member `index` with SIGKILL (a crash: no goodbye to its peers); its data stays
    /// for [`restart`](Self::restart). Returns whether it was running.
    pub fn kill(&self, index: usize) -> bool {
        ServerProcess::take(&self.members[index].process).is_some()
    }

    /// Freezes member `index` (SIGSTOP): its connections stay open but it answers nothing and
    /// applies nothing, as a member stalled on a slow disk; the others go on without it.
    /// [`resume`](Self::resume) lets it catch up. Returns whether it was running.
    pub fn pause(&self, index: usize) -> bool {
        self.signal(index, "STOP")
    }

    /// Lets member `index`, frozen by [`pause`](Self::pause), go on (SIGCONT): it catches up
    /// with the others and delivers what its watches missed. Returns whether it was running.
    pub fn resume(&self, index: usize) -> bool {
        self.signal(index, "CONT")
    }

    fn signal(&self, index: usize, signal: &str) -> bool {
        self.members[index]
            .process
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .is_some_and(|p| p.signal(signal))
    }

    /// Removes the data of member `index`, which must be stopped ([`kill`](Self::kill)): a
    /// [`restart`](Self::restart) then starts it empty, as a disk lost or wiped by an operator
    /// would. For a single member, that is a whole cluster's data lost: revisions start again
    /// near 1.
    ///
    /// # Panics
    /// When the member runs, or its data cannot be removed.
    pub fn wipe(&self, index: usize) {
        assert!(
            !self.running().contains(&index),
            "member {index} must be stopped before its data is wiped"
        );
        let data = self.dir.join(&self.members[index].name);
        if data.exists() {
            std::fs::remove_dir_all(&data).expect("remove the member's data");
        }
    }

    /// Starts member `index` again on its data (after [`kill`](Self::kill)) and waits until
    /// the cluster is ready again with it.
    ///
    /// # Panics
    /// When the cluster is not ready within 30 s.
    pub async fn restart(&self, index: usize) {
        if self.running().contains(&index) {
            return;
        }
        self.spawn(index);
        self.wait_ready().await;
    }

    /// Runs `etcdctl` against the running members with `args`; its standard output, or its
    /// error output when it fails.
    ///
    /// # Errors
    /// When `etcdctl` cannot run or exits unsuccessfully.
    pub async fn etcdctl(&self, args: &[&str]) -> Result<String, String> {
        let endpoints = self
            .running()
            .into_iter()
            .map(|i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",");
        self.etcdctl_at(&endpoints, args).await
    }

    async fn etcdctl_at(&self, endpoints: &str, args: &[&str]) -> Result<String, String> {
        let output = tokio::process::Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoints}"))
            .args(["--dial-timeout=2s", "--command-timeout=5s"])
            .args(self.tls_args())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run etcdctl: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "etcdctl {args:?} failed: {}{}",
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
            ))
        }
    }

    fn tls_args(&self) -> Vec<String> {
        if !self.tls {
            return Vec::new();
        }
        vec![
            format!("--cacert={}", self.ca_file().display()),
            format!("--cert={}", self.client_cert_file().display()),
            format!("--key={}", self.client_key_file().display()),
        ]
    }

    /// Deletes `key` as an operator would: `etcdctl del <key>`. Returns how many keys were
    /// deleted.
    ///
    /// # Errors
    /// When etcdctl fails.
    pub async fn delete(&self, key: &str) -> Result<u64, String> {
        let out = self.etcdctl(&["del", key]).await?;
        out.trim()
            .parse()
            .map_err(|e| format!("etcdctl del printed {out:?}: {e}"))
    }

    /// The value of `key` (`etcdctl get`), if it exists.
    ///
    /// # Errors
    /// When etcdctl fails.
    pub async fn get(&self, key: &str) -> Result<Option<String>, String> {
        let out = self.etcdctl(&["get", key, "--print-value-only"]).await?;
        Ok((!out.is_empty()).then(|| out.trim_end_matches('\n').to_owned()))
    }

    /// The member that is the Raft leader now, as the running members report it.
    pub async fn raft_leader(&self) -> Option<usize> {
        for index in self.running() {
            // `endpoint status` prints: endpoint, id, version, db size, is leader, ...
            let Ok(out) = self
                .etcdctl_at(&self.endpoint(index), &["endpoint", "status"])
                .await
            else {
                continue;
            };
            let fields: Vec<&str> = out.split(',').map(str::trim).collect();
            if fields.get(4) == Some(&"true") {
                return Some(index);
            }
        }
        None
    }

    /// Waits until every running member reports healthy (it answers a linearizable read, so
    /// it has a Raft leader) and one of them is the leader.
    ///
    /// # Panics
    /// When that takes longer than 30 s.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let mut healthy = true;
            for index in self.running() {
                if self
                    .etcdctl_at(&self.endpoint(index), &["endpoint", "health"])
                    .await
                    .is_err()
                {
                    healthy = false;
                    break;
                }
            }
            if healthy && self.raft_leader().await.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the etcd cluster was not ready within {READY_WITHIN:?}; logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in &self.members {
            drop(ServerProcess::take(&member.process));
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
