//! Building, using and tearing down a test world.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    ForwardingStats, Host, Interface, MulticastRouterKind, NetlabError, Result, Topology, exec,
    mroute, netns,
    router::{RunningRouter, multicast_router_choice},
    topology::{HostPlan, plan, segments},
};

/// Every namespace and state directory the harness creates starts with this, followed by the
/// creating process's pid: `sxnl-<pid>-<world>-<host>`.
pub const NAME_PREFIX: &str = "sxnl-";

/// How long links may take to come up and addresses to become usable.
const LINK_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long bridges that start to snoop MLD take to learn every membership: two query response
/// intervals and a margin.
const SNOOPING_SETTLE_TIME: Duration = Duration::from_millis(1500);
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
    /// The multicast router this world's router runs when it routes multicast.
    router_kind: Option<MulticastRouterKind>,
    /// The router's multicast router, while one runs.
    multicast_router: Mutex<Option<RunningRouter>>,
    ip: PathBuf,
    torn_down: bool,
}

/// The kernel's default (and largest) count of datagrams one GSO buffer may carry over a veth.
const GSO_MAX_SEGS: u32 = 65_535;

impl World {
    /// Hosts `h1`..`hN` on one bridged segment (`fd5c:1::/64`).
    pub fn lan(hosts: usize) -> Result<Self> {
        Self::build(Topology::Lan { hosts })
    }

    /// Segment a (`a1`, `a2`) and segment b (`b1`, `b2`) joined by router `r`, which forwards
    /// unicast and the multicast ranges in [`crate::ROUTED_GROUP_PREFIXES`] both ways. Returns
    /// once the multicast router forwards. Multicast needs a hop limit of at least 2 to cross the
    /// router.
    pub fn routed_mcast() -> Result<Self> {
        Self::build(Topology::RoutedMcast)
    }

    /// The same two segments as [`World::routed_mcast`], with a router that forwards unicast only.
    pub fn routed_nomcast() -> Result<Self> {
        Self::build(Topology::RoutedNomcast)
    }

    /// The same two segments as [`World::routed_mcast`], with a router that forwards unicast and
    /// only source-specific multicast: groups in [`crate::SSM_GROUP_PREFIX`] (`ff3e::/32`) from
    /// sources on segment a to segment b, and from sources on b to a. Other groups (`ff1e::/16`,
    /// `ff15::/16`, ...) are not forwarded. Returns once the multicast router forwards. Receivers
    /// join (S, G) with `MCAST_JOIN_SOURCE_GROUP`; senders need a hop limit of at least 2.
    pub fn routed_ssm() -> Result<Self> {
        Self::build(Topology::RoutedSsm)
    }

    /// A core segment (`fd5c:c::/64`: Stratum 0 `s0`, relays `r1` and `r2`, core hosts `c1` and
    /// `c2`) and an island segment (`fd5c:1a::/64`: `i1`, `i2`) joined by router `r`, which
    /// forwards unicast only. Multicast reaches the hosts of the same segment and never crosses,
    /// until [`World::set_router_multicast`] turns multicast routing on.
    pub fn stratum() -> Result<Self> {
        Self::build(Topology::Stratum)
    }

    /// The core of [`World::stratum`] and two islands: a (`fd5c:1a::/64`: `i1`, `i2`) and b
    /// (`fd5c:1b::/64`: `j1`, `j2`), all three behind one router `r` with three legs (`eth0` core,
    /// `eth1` island a, `eth2` island b) that forwards unicast only (until
    /// [`World::set_router_multicast`]).
    pub fn stratum2() -> Result<Self> {
        Self::build(Topology::Stratum2)
    }

    /// Builds a world of shape `topology`. Leftovers of dead harness processes are swept first.
    /// A router that routes multicast, now or once switched on, runs the multicast router that
    /// [`crate::multicast_router_choice`] picks.
    pub fn build(topology: Topology) -> Result<Self> {
        topology.validate()?;
        let ip = exec::require(exec::IP)?;
        let router_kind = if topology.routes_multicast() || topology.has_switchable_router() {
            Some(multicast_router_choice()?.kind)
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
            router_kind,
            multicast_router: Mutex::new(None),
            ip,
            torn_down: false,
        };
        world.create_namespaces(&plans)?;
        world.cable_switch(&plans)?;
        world.configure_hosts(&plans)?;
        world.hosts = world.wait_until_links_ready(&plans)?;
        if topology.routes_multicast() {
            let running = world.start_multicast_router()?;
            *world
                .multicast_router
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner) = Some(running);
        }
        tracing::debug!(
            world = %world.id, %topology, router = ?world.router_kind, elapsed = ?started.elapsed(),
            "world up"
        );
        Ok(world)
    }

    /// The topology's name: `"lan"`, `"routed-mcast"`, `"routed-nomcast"`, `"routed-ssm"`,
    /// `"stratum"` or `"stratum2"`.
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

    /// All hosts: `h1`..`hN` for a LAN; `a1`, `a2`, `b1`, `b2`, `r` for the routed worlds;
    /// `s0`, `r1`, `r2`, `c1`, `c2`, `i1`, `i2`, (`j1`, `j2`,) `r` for the stratum worlds. The
    /// router is always last.
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

    /// The multicast router this world's router runs while it routes multicast (`None` for worlds
    /// whose router never does, and for LANs): smcroute, or the harness's user-space router on
    /// kernels without IPv6 multicast routing; see [`crate::multicast_router_choice`].
    pub fn multicast_router_kind(&self) -> Option<MulticastRouterKind> {
        self.router_kind
    }

    /// The pid of the router's smcroute daemon while one runs (routed-mcast and routed-ssm
    /// worlds, and stratum worlds while [`World::set_router_multicast`] has it on, when the
    /// world uses smcroute).
    pub fn smcroute_pid(&self) -> Option<u32> {
        self.router_slot()
            .as_ref()
            .and_then(RunningRouter::smcroute_pid)
    }

    /// What the router's user-space multicast router has counted since it started, while one
    /// runs (`None` while the router routes no multicast, and with smcroute).
    pub fn forwarding_stats(&self) -> Option<ForwardingStats> {
        self.router_slot().as_ref().and_then(RunningRouter::stats)
    }

    /// Whether the router currently routes multicast.
    pub fn router_multicast(&self) -> bool {
        self.router_slot().is_some()
    }

    /// The world as JSON:
    /// `{topology, id, switch_netns, segments: [{name, prefix, bridge, router}], multicast_router,
    /// multicast_routes: [{from, source, group, to}], hosts: [{name, netns, ifname, ifindex,
    /// addr, link_local, segment, interfaces: [{ifname, ifindex, addr, link_local, segment}]}]}`.
    ///
    /// `segments[].router` is the router's address on the segment (null on a LAN);
    /// `multicast_router` is `"smcroute"` or `"user-space"` while the router forwards multicast,
    /// null otherwise; `multicast_routes` lists its routes at the time of the call (`source` is
    /// null for any-source routes; `from` and `to` are the router's interface names), empty while
    /// the router forwards no multicast.
    pub fn to_json(&self) -> Value {
        let routed = self.hosts.iter().any(|host| host.name == "r");
        let segments: Vec<Value> = segments(self.topology)
            .iter()
            .map(|segment| {
                json!({
                    "name": segment.name,
                    "prefix": segment.subnet(),
                    "bridge": segment.bridge,
                    "router": routed.then(|| segment.router_addr().to_string()),
                })
            })
            .collect();
        let running = self.router_slot();
        let routes: Vec<Value> = running
            .as_ref()
            .map(|running| running.routes.iter().map(mroute::Mroute::to_json).collect())
            .unwrap_or_default();
        json!({
            "topology": self.topology(),
            "id": self.id,
            "switch_netns": self.switch_netns,
            "segments": segments,
            "multicast_router": running.as_ref().map(|running| running.kind().name()),
            "multicast_routes": routes,
            "hosts": self.hosts.iter().map(Host::to_json).collect::<Vec<_>>(),
        })
    }

    /// Turns multicast routing in the router of a stratum or stratum2 world on or off at run
    /// time: on starts the world's multicast router ([`World::multicast_router_kind`]) with
    /// routes for [`crate::STRATUM_GROUP_PREFIXES`] (`ff15::/16`, `ff1e::/16`, `ff3e::/16`) from
    /// every router leg to all the others (core to island and back), and returns once they
    /// forward; off stops it, and nothing is forwarded once it returns. Doing what is already
    /// done is a no-op. Unicast forwarding is never affected. Multicast needs a hop limit of at
    /// least 2 to cross the router.
    ///
    /// Other topologies give [`NetlabError::InvalidArgument`].
    pub fn set_router_multicast(&self, on: bool) -> Result<()> {
        if !self.topology.has_switchable_router() {
            return Err(NetlabError::InvalidArgument(format!(
                "the router of a {} world cannot be switched; only stratum and stratum2 routers can",
                self.topology.name()
            )));
        }
        let mut slot = self.router_slot();
        if !on {
            if let Some(running) = slot.take() {
                running.stop(self.router()?)?;
                self.pin_router_ports(false)?;
            }
            return Ok(());
        }
        if let Some(running) = slot.as_mut() {
            if running.is_running() {
                return Ok(());
            }
            // It died (smcroute can): start a new one.
            *slot = None;
        }
        *slot = Some(self.start_multicast_router()?);
        Ok(())
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

    /// Makes every bridge snoop MLD as a switch does: each becomes its segment's MLDv2 querier and
    /// from then on sends a group only to the ports that joined it and to multicast router ports
    /// (a router's ports are pinned as such while it routes multicast). A Linux bridge without a
    /// querier floods every group to every port, so one receiver costs a sender as much as many.
    /// Returns once the queriers have asked and the hosts' answers have had time to arrive.
    pub fn snoop_mld(&self) -> Result<()> {
        let bridges: Vec<&str> = segments(self.topology)
            .iter()
            .map(|segment| segment.bridge)
            .collect();
        // The querier needs a link-local source address, which the bridges lack. Timers are in
        // centiseconds: a 0.5 s response interval instead of 10 s. The querier is switched on
        // in a request of its own after the timers, the order in which bridges were seen to
        // honour it.
        let settings: Vec<String> = bridges
            .iter()
            .flat_map(|bridge| {
                [
                    format!("addr add fe80::5c/64 dev {bridge} nodad"),
                    format!(
                        "link set dev {bridge} type bridge mcast_mld_version 2 \
                         mcast_query_response_interval 50"
                    ),
                ]
            })
            .collect();
        exec::ip_batch(&self.ip, Some(&self.switch_netns), &settings)?;
        let queriers: Vec<String> = bridges
            .iter()
            .map(|bridge| format!("link set dev {bridge} type bridge mcast_querier 1"))
            .collect();
        exec::ip_batch(&self.ip, Some(&self.switch_netns), &queriers)?;
        // The querier takes over after one response interval and the hosts answer within the
        // next; nothing observable says when every answer is in.
        thread::sleep(SNOOPING_SETTLE_TIME);
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
        self.hosts
            .iter()
            .try_for_each(|host| self.set_link(host, &format!("mtu {mtu}")))
    }

    /// Drops each UDP datagram that `host` sends or receives with probability `percent`/100
    /// (nftables on the host's interfaces; 0 removes the rule). Other traffic (neighbour
    /// discovery, MLD) is untouched.
    ///
    /// Each datagram is dropped on its own, as on a wire. A UDP GSO send crosses veths and the
    /// bridge as one buffer of up to 64 datagrams, which a rule would drop whole; so a lossy
    /// host's links cut such buffers into packets first, as a network card does before the
    /// wire (`gso_max_segs 1` on both ends of its veths; 0 % restores the default).
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
        exec::run(command, Some(&script), exec::COMMAND_TIMEOUT)?;
        self.set_gso_segments(host, if percent > 0 { 1 } else { GSO_MAX_SEGS })
    }

    /// Sets how many datagrams one buffer may carry over `host`'s links, at both ends.
    fn set_gso_segments(&self, host: &Host, segments: u32) -> Result<()> {
        self.set_link(host, &format!("gso_max_segs {segments}"))
    }

    /// Applies `setting` (`ip link set dev X <setting>`) to both ends of `host`'s links: its
    /// interfaces and their ports on the switch.
    fn set_link(&self, host: &Host, setting: &str) -> Result<()> {
        let ip = exec::require(exec::IP)?;
        let ports: Vec<String> = plan(self.topology)
            .into_iter()
            .filter(|plan| plan.name == host.name)
            .flat_map(|plan| plan.interfaces)
            .map(|interface| format!("link set dev {} {setting}", interface.port))
            .collect();
        exec::ip_batch(&ip, Some(&self.switch_netns), &ports)?;
        let links: Vec<String> = host
            .interfaces
            .iter()
            .map(|interface| format!("link set dev {} {setting}", interface.name))
            .collect();
        exec::ip_batch(&ip, Some(&host.netns), &links)
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

    fn router_slot(&self) -> std::sync::MutexGuard<'_, Option<RunningRouter>> {
        self.multicast_router
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn router(&self) -> Result<&Host> {
        self.get_host("r").ok_or_else(|| self.unknown_host("r"))
    }

    /// Starts the world's multicast router with the topology's routes, once the router's
    /// bridge ports are pinned to get every group.
    fn start_multicast_router(&self) -> Result<RunningRouter> {
        let kind = self.router_kind.ok_or_else(|| {
            NetlabError::InvalidArgument(format!(
                "the router of a {} world does not route multicast",
                self.topology.name()
            ))
        })?;
        let router = self.router()?;
        self.pin_router_ports(true)?;
        let routes = mroute::routes_for(self.topology, router.interfaces());
        let ident = format!("{}-r", self.id);
        RunningRouter::start(kind, router, routes, &self.state_dir, &ident)
    }

    /// Makes the bridges send every multicast group to the router's ports (`on`), as switches
    /// that snoop MLD do for a multicast router's ports, or lets them learn again (`off`).
    fn pin_router_ports(&self, on: bool) -> Result<()> {
        let bridge = exec::require(exec::BRIDGE)?;
        // 2: always a multicast router port; 1: learnt from queries (the default).
        let mode = if on { "2" } else { "1" };
        let ports = plan(self.topology)
            .into_iter()
            .filter(|host| host.is_router)
            .flat_map(|host| host.interfaces)
            .map(|interface| interface.port);
        for port in ports {
            let mut command = exec::ip_command(&bridge, Some(&self.switch_netns));
            command.args(["link", "set", "dev", &port, "mcast_router", mode]);
            exec::run(command, None, exec::COMMAND_TIMEOUT)?;
        }
        Ok(())
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
        let running = self
            .multicast_router
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Dropped, not stopped: the namespaces go, and the router's interface settings with them.
        drop(running);
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
