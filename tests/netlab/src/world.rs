//! Building, using and tearing down a test world.

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    Host, Interface, NetlabError, Result, Topology, exec, netns,
    topology::{HostPlan, ROUTED_GROUP_PREFIXES, plan},
};

/// Every namespace and state directory the harness creates starts with this, followed by the
/// creating process's pid: `sxnl-<pid>-<world>-<host>`.
pub const NAME_PREFIX: &str = "sxnl-";

/// How long links may take to come up and addresses to become usable.
const LINK_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long smcroute may take to start and install its routes.
const SMCROUTE_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long processes get to exit when the world is torn down.
const PROCESS_EXIT_TIMEOUT: Duration = Duration::from_secs(2);

/// Makes world names unique within this process (the pid makes them unique across processes).
static NEXT_WORLD: AtomicU32 = AtomicU32::new(0);

/// IPv6 settings for every namespace, written before any veth arrives so that new interfaces
/// inherit them: no duplicate address detection (bind() would fail for ~2 s), nothing that
/// changes addresses mid-test, and no automatic link-local (each host gets a fixed one).
const QUIET_IPV6_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv6.conf.all.accept_dad", "0"),
    ("net.ipv6.conf.default.accept_dad", "0"),
    ("net.ipv6.conf.all.accept_ra", "0"),
    ("net.ipv6.conf.default.accept_ra", "0"),
    ("net.ipv6.conf.all.autoconf", "0"),
    ("net.ipv6.conf.default.autoconf", "0"),
    ("net.ipv6.conf.all.router_solicitations", "0"),
    ("net.ipv6.conf.default.router_solicitations", "0"),
    ("net.ipv6.conf.default.addr_gen_mode", "1"),
];

/// The running smcroute daemon of a routed-mcast world.
#[derive(Debug)]
struct Smcroute {
    child: Child,
    log: PathBuf,
}

/// A disposable set of emulated hosts, each in its own network namespace, cabled to Linux bridges
/// that live in a separate switch namespace.
///
/// Dropping the world (also while unwinding from a panic) kills every process in its namespaces,
/// deletes the namespaces (and with them any nftables tables) and removes its state directory.
/// Several worlds can exist at once, in one process or many.
#[derive(Debug)]
pub struct World {
    topology: Topology,
    id: String,
    hosts: Vec<Host>,
    switch_netns: String,
    /// Every namespace the world created (or tried to), switch first.
    namespaces: Vec<String>,
    state_dir: PathBuf,
    smcroute: Option<Smcroute>,
    ip: PathBuf,
    torn_down: bool,
}

impl World {
    /// Hosts `h1`..`hN` on one bridged segment (`fd5c:1::/64`).
    pub fn lan(hosts: usize) -> Result<Self> {
        Self::build(Topology::Lan { hosts })
    }

    /// Segment a (`a1`, `a2`) and segment b (`b1`, `b2`) joined by router `r`, which forwards
    /// unicast and (with smcroute) the multicast ranges in [`ROUTED_GROUP_PREFIXES`] both ways.
    /// Returns once smcroute's routes are installed. Multicast needs a hop limit of at least 2 to
    /// cross the router.
    pub fn routed_mcast() -> Result<Self> {
        Self::build(Topology::RoutedMcast)
    }

    /// The same two segments as [`World::routed_mcast`], with a router that forwards unicast only.
    pub fn routed_nomcast() -> Result<Self> {
        Self::build(Topology::RoutedNomcast)
    }

    /// Builds a world of shape `topology`. Leftovers of dead harness processes are swept first.
    pub fn build(topology: Topology) -> Result<Self> {
        topology.validate()?;
        let ip = exec::require(exec::IP)?;
        let smcroute_tools = if topology.needs_smcroute() {
            Some((
                exec::require(exec::SMCROUTED)?,
                exec::require(exec::SMCROUTECTL)?,
            ))
        } else {
            None
        };
        if let Err(err) = crate::sweep_leftovers() {
            tracing::warn!("sweeping leftover test namespaces failed: {err}");
        }
        let started = Instant::now();
        let id = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            NEXT_WORLD.fetch_add(1, Ordering::Relaxed)
        );
        let state_dir = std::env::temp_dir().join(&id);
        fs::create_dir_all(&state_dir).map_err(|source| {
            NetlabError::io(format!("cannot create {}", state_dir.display()), source)
        })?;
        let plans = plan(topology);
        let switch_netns = format!("{id}-sw");
        let mut namespaces = vec![switch_netns.clone()];
        namespaces.extend(plans.iter().map(|host| format!("{id}-{}", host.name)));
        // From here on, an early return drops the world, which removes whatever was made.
        let mut world = Self {
            topology,
            id,
            hosts: Vec::new(),
            switch_netns,
            namespaces,
            state_dir,
            smcroute: None,
            ip,
            torn_down: false,
        };
        world.create_namespaces(&plans)?;
        world.cable_switch(&plans)?;
        world.configure_hosts(&plans)?;
        world.hosts = world.wait_until_links_ready(&plans)?;
        if let Some((smcrouted, smcroutectl)) = smcroute_tools {
            world.start_smcroute(&smcrouted, &smcroutectl)?;
        }
        tracing::debug!(world = %world.id, %topology, elapsed = ?started.elapsed(), "world up");
        Ok(world)
    }

    /// The topology's name: `"lan"`, `"routed-mcast"` or `"routed-nomcast"`.
    pub fn topology(&self) -> &str {
        self.topology.name()
    }

    /// The world's unique name (`sxnl-<pid>-<n>`), the prefix of all its namespaces.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The host named `name`.
    ///
    /// # Panics
    ///
    /// If the world has no such host (a bug in the test); see [`World::get_host`].
    pub fn host(&self, name: &str) -> &Host {
        match self.get_host(name) {
            Some(host) => host,
            None => panic!("{}", self.unknown_host(name)),
        }
    }

    /// The host named `name`, if the world has one.
    pub fn get_host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|host| host.name == name)
    }

    /// All hosts: `h1`..`hN` for a LAN; `a1`, `a2`, `b1`, `b2`, `r` for the routed worlds.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The namespace that holds the bridges.
    pub fn switch_netns(&self) -> &str {
        &self.switch_netns
    }

    /// Every namespace of the world, the switch's first.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// A directory for the world's files (smcroute's config and log); removed on teardown.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The pid of the router's smcroute daemon (routed-mcast worlds only).
    pub fn smcroute_pid(&self) -> Option<u32> {
        self.smcroute.as_ref().map(|smcroute| smcroute.child.id())
    }

    /// The world as JSON:
    /// `{topology, id, switch_netns, hosts: [{name, netns, ifname, ifindex, addr, link_local,
    /// segment, interfaces: [{ifname, ifindex, addr, link_local, segment}]}]}`.
    pub fn to_json(&self) -> Value {
        json!({
            "topology": self.topology(),
            "id": self.id,
            "switch_netns": self.switch_netns,
            "hosts": self.hosts.iter().map(Host::to_json).collect::<Vec<_>>(),
        })
    }

    /// Cuts (`silent = true`) or restores the cables of `host` at the switch, by setting its bridge
    /// ports to state disabled (0) or forwarding (3). The host keeps carrier and sees no link
    /// event, like a peer that silently died. After a restore, peers whose neighbour entries
    /// failed during the cut reach the host again only once those entries time out (up to
    /// about 3 s), as on a real network.
    pub fn set_link_silent(&self, host: &str, silent: bool) -> Result<()> {
        let host = self.get_host(host).ok_or_else(|| self.unknown_host(host))?;
        let state = if silent { "0" } else { "3" };
        // `bridge link set`, because iproute2 6.1 accepts `ip link set ... type bridge_slave
        // state N` but silently leaves the state unchanged.
        let bridge = exec::require(exec::BRIDGE)?;
        let ports: Vec<String> = plan(self.topology)
            .into_iter()
            .filter(|plan| plan.name == host.name)
            .flat_map(|plan| plan.interfaces)
            .map(|interface| interface.port)
            .collect();
        for port in ports {
            let mut command = exec::ip_command(&bridge, Some(&self.switch_netns));
            command.args(["link", "set", "dev", &port, "state", state]);
            exec::run(command, None, exec::COMMAND_TIMEOUT)?;
        }
        Ok(())
    }

    /// Sets the MTU of every host interface and every switch port, for example 9000 for jumbo
    /// frames. Bridges follow the smallest MTU of their ports by themselves.
    pub fn set_mtu(&self, mtu: u32) -> Result<()> {
        if !(1280..=65_535).contains(&mtu) {
            return Err(NetlabError::InvalidArgument(format!(
                "an IPv6 link MTU must be 1280 to 65535 bytes, not {mtu}"
            )));
        }
        let ip = exec::require(exec::IP)?;
        let ports: Vec<String> = plan(self.topology)
            .into_iter()
            .flat_map(|plan| plan.interfaces)
            .map(|interface| format!("link set dev {} mtu {mtu}", interface.port))
            .collect();
        exec::ip_batch(&ip, Some(&self.switch_netns), &ports)?;
        for host in &self.hosts {
            let links: Vec<String> = host
                .interfaces
                .iter()
                .map(|interface| format!("link set dev {} mtu {mtu}", interface.name))
                .collect();
            exec::ip_batch(&ip, Some(&host.netns), &links)?;
        }
        Ok(())
    }

    /// Drops each UDP datagram that `host` sends or receives with probability `percent`/100
    /// (nftables on the host's interfaces; 0 removes the rule). Other traffic (neighbour
    /// discovery, MLD) is untouched.
    pub fn set_udp_loss(&self, host: &str, percent: u8) -> Result<()> {
        if percent > 100 {
            return Err(NetlabError::InvalidArgument(format!(
                "loss must be 0 to 100 percent, not {percent}"
            )));
        }
        let host = self.get_host(host).ok_or_else(|| self.unknown_host(host))?;
        let nft = exec::require(exec::NFT)?;
        const TABLE: &str = "netdev sixcast_netlab_loss";
        // Creating then deleting makes the script work whether or not the table exists.
        let mut script = format!("table {TABLE}\ndelete table {TABLE}\n");
        if percent > 0 {
            script.push_str(&format!("table {TABLE} {{\n"));
            // nft compares the random number only against 0..=99, so 100% is a plain drop.
            let sample = if percent < 100 {
                format!("numgen random mod 100 < {percent} ")
            } else {
                String::new()
            };
            for interface in &host.interfaces {
                for hook in ["ingress", "egress"] {
                    script.push_str(&format!(
                        "  chain {hook}_{name} {{ type filter hook {hook} device \"{name}\" \
                         priority 0; meta l4proto udp {sample}drop; }}\n",
                        name = interface.name
                    ));
                }
            }
            script.push_str("}\n");
        }
        let mut command = host.command(&nft);
        command.args(["-f", "-"]);
        exec::run(command, Some(&script), exec::COMMAND_TIMEOUT).map(drop)
    }

    /// Tears the world down now and reports problems (dropping does the same, but can only log).
    pub fn teardown(mut self) -> Result<()> {
        self.teardown_inner()
    }

    fn unknown_host(&self, name: &str) -> NetlabError {
        NetlabError::UnknownHost {
            name: name.to_owned(),
            known: self
                .hosts
                .iter()
                .map(|host| host.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn host_netns(&self, plan: &HostPlan) -> String {
        format!("{}-{}", self.id, plan.name)
    }

    /// Creates the namespaces and, before any interface arrives, sets their sysctls.
    fn create_namespaces(&self, plans: &[HostPlan]) -> Result<()> {
        let lines: Vec<String> = self
            .namespaces
            .iter()
            .map(|name| format!("netns add {name}"))
            .collect();
        exec::ip_batch(&self.ip, None, &lines)?;
        let mut settings = vec![(self.switch_netns.clone(), false)];
        settings.extend(
            plans
                .iter()
                .map(|plan| (self.host_netns(plan), plan.is_router)),
        );
        // One helper thread visits every namespace in turn: no process per sysctl.
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    for (name, is_router) in &settings {
                        netns::enter(name)?;
                        configure_namespace(name, *is_router)?;
                    }
                    Ok(())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Builds the bridges in the switch namespace and cables every interface to its bridge. The
    /// veths are created inside the switch namespace with their other end sent straight into the
    /// host's namespace: nothing ever appears in the caller's namespace.
    fn cable_switch(&self, plans: &[HostPlan]) -> Result<()> {
        let mut bridges: Vec<&str> = Vec::new();
        for interface in plans.iter().flat_map(|plan| &plan.interfaces) {
            if !bridges.contains(&interface.bridge) {
                bridges.push(interface.bridge);
            }
        }
        let mut lines = Vec::new();
        for bridge in &bridges {
            lines.push(format!("link add {bridge} type bridge"));
            lines.push(format!("link set {bridge} up"));
        }
        for plan in plans {
            let host_netns = self.host_netns(plan);
            for interface in &plan.interfaces {
                let port = &interface.port;
                lines.push(format!(
                    "link add {port} type veth peer name {} netns {host_netns}",
                    interface.ifname
                ));
                lines.push(format!("link set {port} master {}", interface.bridge));
                lines.push(format!("link set {port} up"));
            }
        }
        exec::ip_batch(&self.ip, Some(&self.switch_netns), &lines)
    }

    /// Brings the hosts' interfaces up with their addresses and routes, all hosts at once.
    fn configure_hosts(&self, plans: &[HostPlan]) -> Result<()> {
        let mut running = Vec::new();
        for plan in plans {
            let mut lines = Vec::new();
            for interface in &plan.interfaces {
                let ifname = &interface.ifname;
                lines.push(format!("link set {ifname} up"));
                lines.push(format!("addr add {}/64 dev {ifname} nodad", interface.addr));
                lines.push(format!(
                    "addr add {}/64 dev {ifname} nodad",
                    interface.link_local
                ));
            }
            if let Some(gateway) = plan.gateway {
                lines.push(format!("route add default via {gateway} dev eth0"));
            }
            let netns = self.host_netns(plan);
            running.push(exec::spawn_ip_batch(&self.ip, Some(&netns), &lines)?);
        }
        running
            .into_iter()
            .map(exec::BoundedChild::finish)
            .collect::<Result<Vec<_>>>()
            .map(drop)
    }

    /// Waits until every interface is operationally up and its addresses can be bound, and
    /// returns the hosts with their interface indexes.
    fn wait_until_links_ready(&self, plans: &[HostPlan]) -> Result<Vec<Host>> {
        let deadline = Instant::now() + LINK_READY_TIMEOUT;
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    plans
                        .iter()
                        .map(|plan| {
                            let netns = self.host_netns(plan);
                            netns::enter(&netns)?;
                            let interfaces = plan
                                .interfaces
                                .iter()
                                .map(|interface| {
                                    let index =
                                        wait_until_interface_ready(&netns, interface, deadline)?;
                                    Ok(Interface {
                                        name: interface.ifname.clone(),
                                        index,
                                        addr: interface.addr,
                                        link_local: interface.link_local,
                                        segment: interface.segment.to_owned(),
                                    })
                                })
                                .collect::<Result<Vec<_>>>()?;
                            Ok(Host {
                                name: plan.name.clone(),
                                netns,
                                segment: plan.segment.to_owned(),
                                interfaces,
                                ip: self.ip.clone(),
                            })
                        })
                        .collect()
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Starts smcroute in the router and waits until it lists all its routes.
    fn start_smcroute(&mut self, smcrouted: &Path, smcroutectl: &Path) -> Result<()> {
        let router = self
            .get_host("r")
            .ok_or_else(|| self.unknown_host("r"))?
            .clone();
        let mut config = String::new();
        for interface in router.interfaces() {
            config.push_str(&format!("phyint {} enable\n", interface.name()));
        }
        let expected_routes = ROUTED_GROUP_PREFIXES.len() * 2;
        for group in ROUTED_GROUP_PREFIXES {
            config.push_str(&format!("mroute from eth0 group {group} to eth1\n"));
            config.push_str(&format!("mroute from eth1 group {group} to eth0\n"));
        }
        let file = |name: &str| self.state_dir.join(name);
        let (config_path, socket, log) = (
            file("smcroute.conf"),
            file("smcroute.sock"),
            file("smcroute.log"),
        );
        fs::write(&config_path, config).map_err(|source| {
            NetlabError::io(format!("cannot write {}", config_path.display()), source)
        })?;
        let log_file = fs::File::create(&log).map_err(|source| {
            NetlabError::io(format!("cannot create {}", log.display()), source)
        })?;
        let log_clone = log_file
            .try_clone()
            .map_err(|source| NetlabError::io("cannot duplicate the smcroute log", source))?;
        // Own socket, pid file and ident per instance, or parallel worlds' daemons collide; -N so
        // only the interfaces named in the config become multicast interfaces.
        let ident = format!("{}-r", self.id);
        let mut command = router.command(smcrouted);
        command
            .args(["-n", "-N", "-l", "notice", "-i", &ident, "-f"])
            .arg(&config_path)
            .arg("-u")
            .arg(&socket)
            .arg("-P")
            .arg(file("smcroute.pid"))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_clone);
        let description = exec::describe(&command);
        let child = command
            .spawn()
            .map_err(|source| NetlabError::io(format!("cannot start `{description}`"), source))?;
        let smcroute = self.smcroute.insert(Smcroute {
            child,
            log: log.clone(),
        });

        let deadline = Instant::now() + SMCROUTE_READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = smcroute.child.try_wait() {
                return Err(NetlabError::NotReady {
                    what: "smcroute in the router".into(),
                    timeout: SMCROUTE_READY_TIMEOUT,
                    detail: format!("it exited ({status}); its log: {}", read_log(&smcroute.log)),
                });
            }
            let mut show = Command::new(smcroutectl);
            show.args(["-p", "-t", "-i", &ident, "-u"])
                .arg(&socket)
                .args(["show", "routes"]);
            // Until the daemon listens, smcroutectl fails; that is the normal start-up state.
            let last_seen = match exec::run(show, None, Duration::from_secs(2)) {
                Ok(listing) => {
                    let installed = listing
                        .lines()
                        .filter(|line| line.starts_with("(*,"))
                        .count();
                    if installed == expected_routes {
                        return Ok(());
                    }
                    format!("{installed} of {expected_routes} routes installed")
                }
                Err(err) => err.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(NetlabError::NotReady {
                    what: "smcroute in the router".into(),
                    timeout: SMCROUTE_READY_TIMEOUT,
                    detail: format!("{last_seen}; its log: {}", read_log(&smcroute.log)),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Removes everything, continuing past failures, and reports the first one.
    fn teardown_inner(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.torn_down, true) {
            return Ok(());
        }
        let started = Instant::now();
        let mut first_error = None;
        let mut note = |result: Result<()>| {
            if let Err(err) = result {
                tracing::warn!("tearing down a test world: {err}");
                first_error.get_or_insert(err);
            }
        };
        if let Some(mut smcroute) = self.smcroute.take() {
            note(
                exec::terminate(&mut smcroute.child, PROCESS_EXIT_TIMEOUT)
                    .map_err(|source| NetlabError::io("cannot stop smcroute", source)),
            );
        }
        let names: Vec<&str> = self.namespaces.iter().map(String::as_str).collect();
        note(netns::kill_processes_in(&names, PROCESS_EXIT_TIMEOUT));
        for name in &names {
            note(netns::delete(name));
        }
        match fs::remove_dir_all(&self.state_dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => note(Err(NetlabError::io(
                format!("cannot remove {}", self.state_dir.display()),
                err,
            ))),
            _ => {}
        }
        tracing::debug!(world = %self.id, elapsed = ?started.elapsed(), "world down");
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Err(err) = self.teardown_inner() {
            // Drop cannot return the error; the next world's sweep removes what is left.
            eprintln!("sixcast-netlab: incomplete teardown of {}: {err}", self.id);
        }
    }
}

/// Sets the IPv6 sysctls of the namespace the calling thread is in, and brings `lo` up.
fn configure_namespace(netns: &str, is_router: bool) -> Result<()> {
    let forwarding = [("net.ipv6.conf.all.forwarding", "1")];
    let extra: &[(&str, &str)] = if is_router { &forwarding } else { &[] };
    for (name, value) in QUIET_IPV6_SYSCTLS.iter().chain(extra) {
        netns::write_sysctl(name, value).map_err(|source| {
            NetlabError::io(format!("cannot set {name}={value} in {netns}"), source)
        })?;
    }
    netns::set_interface_up("lo")
        .map_err(|source| NetlabError::io(format!("cannot bring lo up in {netns}"), source))
}

/// Polls (in the calling thread's namespace) until `interface` is running and both its addresses
/// can be bound; returns its index.
fn wait_until_interface_ready(
    netns: &str,
    interface: &crate::topology::InterfacePlan,
    deadline: Instant,
) -> Result<u32> {
    let ifname = &interface.ifname;
    loop {
        let state = netns::interface_index(ifname).and_then(|index| {
            let flags = netns::interface_flags(ifname)?;
            if flags & libc::IFF_RUNNING == 0 {
                return Err(std::io::Error::other("link is not up yet"));
            }
            netns::address_usable(interface.addr, 0)?;
            netns::address_usable(interface.link_local, index)?;
            Ok(index)
        });
        match state {
            Ok(index) => return Ok(index),
            Err(err) if Instant::now() >= deadline => {
                return Err(NetlabError::NotReady {
                    what: format!("{ifname} in {netns}"),
                    timeout: LINK_READY_TIMEOUT,
                    detail: err.to_string(),
                });
            }
            Err(_) => thread::sleep(Duration::from_millis(2)),
        }
    }
}

fn read_log(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
        Ok(_) => "(empty)".into(),
        Err(err) => format!("(unreadable: {err})"),
    }
}
