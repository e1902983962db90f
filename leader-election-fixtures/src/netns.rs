//! Real network faults on this machine: network namespaces joined to the root namespace by a
//! bridge, and packets dropped inside them by nftables — silently, with no reset, in one
//! direction or both, or a share of them at random. Linux only; needs root, `ip` (iproute2)
//! and `nft` (nftables).
//!
//! A [`NetLab`] is a bridge in the root namespace with an address of its own,
//! [`host_ip`](NetLab::host_ip), where servers listen (beside 127.0.0.1). Each
//! [`NetNamespace`] of the lab is a network namespace with one veth link into the bridge and
//! an address of the lab's subnet; a contender runs in it as a process
//! ([`command`](NetNamespace::command)) or as a thread of this process
//! ([`spawn`](NetNamespace::spawn)), and a [`PacketFault`] drops its packets to and from the
//! host. The faults live in the namespace's own nftables ruleset, so nothing of them outlives
//! it.
//!
//! Everything is removed when its value is dropped. A process that dies first (a crash, Ctrl-C
//! in a test run) leaves its namespaces and links behind; the next [`NetLab::new`] removes
//! those of processes that are gone, and so does [`NetLab::sweep`].
//!
//! ```no_run
//! use leader_election_fixtures::netns::{NetLab, PacketFault};
//!
//! if let Err(why) = NetLab::check() {
//!     eprintln!("skipped: {why}");
//!     return;
//! }
//! let lab = NetLab::new().unwrap();
//! let contender = lab.namespace().unwrap();
//! // a server listening on lab.host_ip(); a client in `contender`...
//! contender.inject(PacketFault::DropReplies).unwrap();
//! contender.heal().unwrap();
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::nft::{output, run, run_with_input, sweep_tables};

/// Labs made by this process, for their names.
static LABS: AtomicU32 = AtomicU32::new(0);
/// Subnets taken by this process's labs (the third and fourth octets' owner is the lab).
static TAKEN: Mutex<Vec<(u8, u8)>> = Mutex::new(Vec::new());

/// What a [`NetNamespace`] does to the packets between it and the lab's host address. Every
/// dropped packet is dropped silently: no reset, no ICMP error; a connection looks alive until
/// somebody's timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketFault {
    /// Both directions dropped: the namespace is cut off.
    Partition,
    /// Requests reach the host, its replies are dropped on the way back: a leader's renewals
    /// land on the server and it never hears that they did.
    DropReplies,
    /// The namespace's packets to the host are dropped; the host's reach it.
    DropRequests,
    /// This share of the packets in each direction is dropped at random (1 to 100 %).
    Loss {
        /// The percentage dropped.
        percent: u8,
    },
}

/// A bridge in the root namespace with an address of its own, and the [`NetNamespace`]s
/// joined to it. Dropping it removes the bridge; its namespaces remove themselves when
/// dropped (they keep nothing of the lab alive).
pub struct NetLab {
    /// What every name of the lab holds: `le<pid in hex>x<lab in hex>`.
    stem: String,
    bridge: String,
    subnet: (u8, u8),
    next: AtomicU32,
}

impl fmt::Debug for NetLab {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetLab")
            .field("bridge", &self.bridge)
            .field("host_ip", &self.host_ip())
            .finish_non_exhaustive()
    }
}

impl NetLab {
    /// Whether labs can be made here; if not, why, in one sentence (not root, a program
    /// missing, namespaces refused by the kernel or the container).
    ///
    /// # Errors
    /// The reason, for a test to print before it skips.
    pub fn check() -> Result<(), String> {
        static CHECKED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
        CHECKED.get_or_init(Self::probe).clone()
    }

    /// A lab for a test, or `None` where labs cannot be made here, after printing why (the
    /// test then passes without running). With `NETWORK_FAULT_TESTS=required` (the test
    /// command sets it when it runs as root) that is a panic instead: a run that should test
    /// real network faults never passes without them.
    ///
    /// # Panics
    /// When labs cannot be made and they are required, or a lab cannot be made although
    /// [`check`](Self::check) passed.
    #[must_use]
    pub fn for_test() -> Option<Self> {
        match Self::check() {
            Ok(()) => Some(Self::new().expect("a network lab")),
            Err(why) if std::env::var("NETWORK_FAULT_TESTS").as_deref() == Ok("required") => {
                panic!("NETWORK_FAULT_TESTS=required, and network namespaces cannot be used: {why}")
            }
            Err(why) => {
                eprintln!("skipped: network namespaces cannot be used here: {why}");
                None
            }
        }
    }

    fn probe() -> Result<(), String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("network namespaces need root (the test command runs as root)".into());
        }
        for (program, version, package) in [("ip", "-V", "iproute2"), ("nft", "-v", "nftables")] {
            if output(&[program, version]).is_err() {
                return Err(format!(
                    "`{program}` is missing (Debian package {package}; scripts/install-netns.sh installs it)"
                ));
            }
        }
        Self::sweep();
        let probe = format!("le-{}-probe", std::process::id());
        // A probe of an earlier process with this process's id, if one was left behind.
        let _ = run(&["ip", "netns", "del", &probe]);
        run(&["ip", "netns", "add", &probe])
            .map_err(|e| format!("this machine refuses network namespaces: {e}"))?;
        let nft = run(&[
            "ip", "netns", "exec", &probe, "nft", "add", "table", "inet", "probe",
        ]);
        let _ = run(&["ip", "netns", "del", &probe]);
        nft.map_err(|e| format!("nftables does not work in a network namespace here: {e}"))
    }

    /// Makes a lab: removes what labs of processes that are gone left behind, then creates a
    /// bridge on a `/24` of `10.200.0.0`–`10.249.255.0` that no interface of this machine uses.
    ///
    /// # Errors
    /// A command that failed, with its output; see [`check`](Self::check).
    pub fn new() -> io::Result<Self> {
        Self::sweep();
        let pid = std::process::id();
        let lab = LABS.fetch_add(1, Ordering::Relaxed);
        let subnet = free_subnet()?;
        let stem = format!("le{pid:x}x{lab:x}");
        let bridge = format!("{stem}b");
        let this = Self {
            stem,
            bridge: bridge.clone(),
            subnet,
            next: AtomicU32::new(2),
        };
        run(&["ip", "link", "add", &bridge, "type", "bridge"])?;
        let cidr = format!("{}/24", this.host_ip());
        run(&["ip", "addr", "add", &cidr, "dev", &bridge])?;
        run(&["ip", "link", "set", &bridge, "up"])?;
        Ok(this)
    }

    /// The bridge's address: what a server listens on for the lab's namespaces to reach it.
    #[must_use]
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, self.subnet.0, self.subnet.1, 1)
    }

    /// A new namespace joined to the lab, with its loopback up and a route to the host.
    ///
    /// # Errors
    /// A command that failed, with its output; more than 250 namespaces in one lab.
    pub fn namespace(&self) -> io::Result<NetNamespace> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        let host = u8::try_from(k)
            .ok()
            .filter(|&k| k < 255)
            .ok_or_else(|| io::Error::other("a lab holds at most 253 namespaces"))?;
        let name = format!("le-{}-{}-{k:x}", std::process::id(), self.stem);
        let ip = Ipv4Addr::new(10, self.subnet.0, self.subnet.1, host);
        let veth = format!("{}n{k:x}", self.stem);
        run(&["ip", "netns", "add", &name])?;
        // From here on, dropping it deletes the namespace, and with it the veth pair.
        let namespace = NetNamespace {
            name,
            veth: veth.clone(),
            ip,
            host_ip: self.host_ip(),
        };
        let ns = namespace.name.as_str();
        run(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", ns,
        ])?;
        run(&["ip", "link", "set", &veth, "master", &self.bridge])?;
        run(&["ip", "link", "set", &veth, "up"])?;
        let cidr = format!("{ip}/24");
        for args in [
            &["ip", "link", "set", "lo", "up"][..],
            &["ip", "addr", "add", &cidr, "dev", "eth0"],
            &["ip", "link", "set", "eth0", "up"],
        ] {
            let mut all = vec!["ip", "netns", "exec", ns];
            all.extend_from_slice(args);
            run(&all)?;
        }
        Ok(namespace)
    }

    /// Removes the namespaces, bridges and links that labs of processes no longer running left
    /// behind (they crashed, or a test run was interrupted). Those of running processes are
    /// theirs, and stay.
    pub fn sweep() {
        sweep_tables();
        let alive = |pid: &str| std::path::Path::new("/proc").join(pid).exists();
        if let Ok(list) = output(&["ip", "netns", "list"]) {
            for line in list.lines() {
                let name = line.split_whitespace().next().unwrap_or_default();
                if let Some(pid) = name.strip_prefix("le-").and_then(|r| r.split('-').next())
                    && !pid.is_empty()
                    && pid.bytes().all(|b| b.is_ascii_digit())
                    && !alive(pid)
                {
                    let _ = run(&["ip", "netns", "del", name]);
                }
            }
        }
        if let Ok(links) = output(&["ip", "-o", "link", "show"]) {
            for line in links.lines() {
                let Some(name) = line.split(": ").nth(1) else {
                    continue;
                };
                let name = name.split('@').next().unwrap_or_default();
                let Some(rest) = name.strip_prefix("le") else {
                    continue;
                };
                let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
                let Ok(pid) = u32::from_str_radix(&hex, 16) else {
                    continue;
                };
                if rest[hex.len()..].starts_with('x') && !alive(&pid.to_string()) {
                    let _ = run(&["ip", "link", "del", name]);
                }
            }
        }
    }

    /// What the name of everything of this lab holds (its bridge, its namespaces and their
    /// links), for [`leftovers`].
    #[must_use]
    pub fn stem(&self) -> &str {
        &self.stem
    }
}

/// The namespaces and links of this machine whose names hold `stem` (a lab's
/// [`stem`](NetLab::stem)): none once the lab and its namespaces are dropped.
///
/// # Errors
/// `ip` failed, with its output.
pub fn leftovers(stem: &str) -> io::Result<Vec<String>> {
    let mut found: Vec<String> = output(&["ip", "netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.contains(stem))
        .map(str::to_owned)
        .collect();
    found.extend(
        output(&["ip", "-o", "link", "show"])?
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or_default())
            .filter(|n| n.contains(stem))
            .map(str::to_owned),
    );
    Ok(found)
}

impl Drop for NetLab {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &self.bridge]);
        lock_taken().retain(|s| *s != self.subnet);
    }
}

/// A network namespace of a [`NetLab`], with packet faults. Dropping it deletes the namespace,
/// its link and its rules; a process started in it with [`command`](Self::command) keeps it
/// alive in the kernel until that process exits, so stop those first.
pub struct NetNamespace {
    name: String,
    /// The link's end in the root namespace.
    veth: String,
    ip: Ipv4Addr,
    host_ip: Ipv4Addr,
}

impl fmt::Debug for NetNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetNamespace")
            .field("name", &self.name)
            .field("ip", &self.ip)
            .finish_non_exhaustive()
    }
}

impl NetNamespace {
    /// The namespace's name (for `ip netns exec`).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace's address in the lab.
    #[must_use]
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Drops packets between the namespace and the lab's host address as `fault` says,
    /// replacing the fault in place (if any) in one step.
    ///
    /// # Errors
    /// `nft` failed, with its output; a `Loss` of 0 or over 100 %.
    pub fn inject(&self, fault: PacketFault) -> io::Result<()> {
        let host = self.host_ip;
        let (inbound, outbound) = match fault {
            PacketFault::Partition => (
                format!("ip saddr {host} drop"),
                format!("ip daddr {host} drop"),
            ),
            PacketFault::DropReplies => (format!("ip saddr {host} drop"), String::new()),
            PacketFault::DropRequests => (String::new(), format!("ip daddr {host} drop")),
            PacketFault::Loss { percent } => {
                if percent == 0 || percent > 100 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("a loss of {percent} %: give 1 to 100"),
                    ));
                }
                (
                    format!("ip saddr {host} numgen random mod 100 < {percent} drop"),
                    format!("ip daddr {host} numgen random mod 100 < {percent} drop"),
                )
            }
        };
        self.apply(&inbound, &outbound)
    }

    /// Drops every packet between the namespace and the addresses `peers` (other namespaces of
    /// the lab), both ways, silently, replacing the fault in place (if any) in one step; the
    /// host address and every other namespace still reach it. A server cut off the others of
    /// its cluster while its clients still reach it.
    ///
    /// # Errors
    /// `nft` failed, with its output; no `peers`.
    pub fn cut_from(&self, peers: &[Ipv4Addr]) -> io::Result<()> {
        if peers.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no peers to cut the namespace off",
            ));
        }
        let set = peers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        self.apply(
            &format!("ip saddr {{ {set} }} drop"),
            &format!("ip daddr {{ {set} }} drop"),
        )
    }

    /// Replaces the namespace's fault table by one dropping what `inbound` and `outbound` (an
    /// nftables rule each, or empty) match.
    fn apply(&self, inbound: &str, outbound: &str) -> io::Result<()> {
        // On the namespace's end of the link, as a network would: what the namespace sends is
        // dropped after its own stack let it go (a sender sees no error), what it is sent
        // before its stack sees it. Declaring the table first makes the delete succeed when
        // there is none; the whole script is applied atomically.
        let script = format!(
            "table netdev le_fault\ndelete table netdev le_fault\n\
             table netdev le_fault {{\n\
               chain inbound {{\n type filter hook ingress device \"eth0\" priority 0; policy accept;\n {inbound}\n }}\n\
               chain outbound {{\n type filter hook egress device \"eth0\" priority 0; policy accept;\n {outbound}\n }}\n\
             }}\n"
        );
        run_with_input(
            &["ip", "netns", "exec", &self.name, "nft", "-f", "-"],
            &script,
        )
    }

    /// Ends the fault: every packet passes again.
    ///
    /// # Errors
    /// `nft` failed, with its output.
    pub fn heal(&self) -> io::Result<()> {
        run_with_input(
            &["ip", "netns", "exec", &self.name, "nft", "-f", "-"],
            "table netdev le_fault\ndelete table netdev le_fault\n",
        )
    }

    /// `program` to run in the namespace (`ip netns exec <name> <program>`); add its arguments.
    #[must_use]
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Runs `make()`'s future on a new thread of this process that lives in the namespace,
    /// on a current-thread tokio runtime of its own: every socket it opens, and every task it
    /// spawns, is in the namespace. Returns the thread, whose result is the future's output.
    ///
    /// # Errors
    /// The namespace cannot be entered, or the runtime not built (reported by the thread, as
    /// its result's error).
    pub fn spawn<F, Fut>(&self, make: F) -> std::thread::JoinHandle<io::Result<Fut::Output>>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path)?;
            // Changes the namespace of this thread alone.
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            Ok(runtime.block_on(make()))
        })
    }
}

impl Drop for NetNamespace {
    fn drop(&mut self) {
        // The link first: the kernel removes a deleted namespace's links in the background,
        // after `ip netns del` returned.
        let _ = run(&["ip", "link", "del", &self.veth]);
        let _ = run(&["ip", "netns", "del", &self.name]);
    }
}

fn lock_taken() -> std::sync::MutexGuard<'static, Vec<(u8, u8)>> {
    TAKEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A `/24` of `10.200.0.0/16`–`10.249.0.0/16` that no interface of the machine and no lab of
/// this process uses, starting from a place that depends on the process id (two processes
/// starting together seldom try the same one).
fn free_subnet() -> io::Result<(u8, u8)> {
    let used = output(&["ip", "-o", "-4", "addr", "show"])?;
    let mut taken = lock_taken();
    let start = std::process::id() as usize;
    for i in 0..(50 * 256) {
        let n = (start + i) % (50 * 256);
        let subnet = (200 + (n / 256) as u8, (n % 256) as u8);
        let prefix = format!(" 10.{}.{}.", subnet.0, subnet.1);
        if !taken.contains(&subnet) && !used.contains(&prefix) {
            taken.push(subnet);
            return Ok(subnet);
        }
    }
    Err(io::Error::other(
        "no free /24 left in 10.200.0.0-10.249.255.255",
    ))
}
