//! The shapes of worlds and their address plan.

use std::{fmt, net::Ipv6Addr, str::FromStr};

use crate::{NetlabError, Result};

/// The number of hosts of `lan` when no count is given.
pub const DEFAULT_LAN_HOSTS: usize = 3;

/// The largest LAN the harness builds (each host is a namespace and a bridge port).
pub const MAX_LAN_HOSTS: usize = 100;

/// The multicast group ranges the router of [`Topology::RoutedMcast`] forwards, both ways.
pub const ROUTED_GROUP_PREFIXES: [&str; 5] = [
    "ff15::/16",
    "ff18::/16",
    "ff1e::/16",
    "ff3e::/16",
    "ff7e::/16",
];

/// The multicast group ranges the router of [`Topology::Stratum`] and [`Topology::Stratum2`]
/// forwards between all its legs while [`crate::World::set_router_multicast`] has it on.
pub const STRATUM_GROUP_PREFIXES: [&str; 3] = ["ff15::/16", "ff1e::/16", "ff3e::/16"];

/// The source-specific multicast range (RFC 4607) of global scope: the only groups the router of
/// [`Topology::RoutedSsm`] forwards, and only from sources on the segment the datagram came from.
pub const SSM_GROUP_PREFIX: &str = "ff3e::/32";

/// The shape of a [`crate::World`].
///
/// Segments and their prefixes (each a /64 on one Linux bridge):
///
/// | segment    | prefix         | hosts                                          |
/// |------------|----------------|------------------------------------------------|
/// | `lan`      | `fd5c:1::/64`  | `h1`..`hN`                                     |
/// | `a`        | `fd5c:a::/64`  | `a1`, `a2`                                     |
/// | `b`        | `fd5c:b::/64`  | `b1`, `b2`                                     |
/// | `core`     | `fd5c:c::/64`  | `s0` `::10`, `r1` `::21`, `r2` `::22`, `c1` `::31`, `c2` `::32` |
/// | `island`   | `fd5c:1a::/64` | `i1`, `i2` (stratum)                           |
/// | `island-a` | `fd5c:1a::/64` | `i1`, `i2` (stratum2)                          |
/// | `island-b` | `fd5c:1b::/64` | `j1`, `j2` (stratum2)                          |
///
/// Host number *i* of a segment gets the address ending in `1` followed by the digits of *i*
/// (`h1` = `fd5c:1::11`, `a2` = `fd5c:a::12`, `h10` = `fd5c:1::110`, `j2` = `fd5c:1b::12`).
/// The core's hosts are numbered by role instead: `1` for Stratum 0, `2` for relays, `3` for
/// plain core hosts, followed by the host's number (`s0` = `fd5c:c::10`, `r2` = `fd5c:c::22`,
/// `c1` = `fd5c:c::31`). Every host's link-local address has the same ending (`fe80::11`); the
/// router `r` is `::1` and `fe80::1` on each of its segments, and every other host of a routed
/// world has a default route via it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topology {
    /// Hosts `h1`..`hN` on one bridged segment.
    Lan {
        /// How many hosts (1..=[`MAX_LAN_HOSTS`]).
        hosts: usize,
    },
    /// Segment a (`a1`, `a2`) and segment b (`b1`, `b2`) joined by router `r`, which forwards
    /// unicast and multicast in [`ROUTED_GROUP_PREFIXES`].
    RoutedMcast,
    /// The same two segments, with a router that forwards unicast only.
    RoutedNomcast,
    /// The same two segments, with a router that forwards unicast and only source-specific
    /// multicast: groups in [`SSM_GROUP_PREFIX`] sent by a host of segment a
    /// to segment b, and by a host of segment b to segment a. Any-source groups (`ff1e::/16`,
    /// `ff15::/16`, and `ff3e::` groups outside the /32) stay on their segment.
    RoutedSsm,
    /// A core segment (`s0` Stratum 0, relays `r1` and `r2`, core hosts `c1` and `c2`) and an
    /// island segment (`i1`, `i2`) joined by router `r` (`eth0` on the core, `eth1` on the
    /// island), which forwards unicast only until
    /// [`crate::World::set_router_multicast`] turns multicast routing on.
    Stratum,
    /// The core of [`Topology::Stratum`] and two islands, a (`i1`, `i2`) and b (`j1`, `j2`),
    /// behind one router `r` with three legs (`eth0` core, `eth1` island a, `eth2` island b)
    /// that forwards unicast only until [`crate::World::set_router_multicast`] turns multicast
    /// routing on.
    Stratum2,
}

impl Topology {
    /// The topology's name: `"lan"`, `"routed-mcast"`, `"routed-nomcast"`, `"routed-ssm"`,
    /// `"stratum"` or `"stratum2"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Lan { .. } => "lan",
            Self::RoutedMcast => "routed-mcast",
            Self::RoutedNomcast => "routed-nomcast",
            Self::RoutedSsm => "routed-ssm",
            Self::Stratum => "stratum",
            Self::Stratum2 => "stratum2",
        }
    }

    /// Whether the topology's router routes multicast from the start (routed-mcast and
    /// routed-ssm), so that building it starts a multicast router. (The stratum worlds' routers
    /// start one only when [`crate::World::set_router_multicast`] switches them on.)
    pub fn routes_multicast(&self) -> bool {
        matches!(self, Self::RoutedMcast | Self::RoutedSsm)
    }

    /// Whether [`crate::World::set_router_multicast`] can switch this topology's router.
    pub fn has_switchable_router(&self) -> bool {
        matches!(self, Self::Stratum | Self::Stratum2)
    }

    /// Checks the parameters (the LAN size).
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Lan { hosts } if !(1..=MAX_LAN_HOSTS).contains(hosts) => {
                Err(NetlabError::InvalidArgument(format!(
                    "a LAN needs 1 to {MAX_LAN_HOSTS} hosts, not {hosts}"
                )))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lan { hosts } => write!(f, "lan:{hosts}"),
            other => f.write_str(other.name()),
        }
    }
}

/// The names [`Topology::from_str`] accepts, for messages.
pub(crate) const TOPOLOGY_NAMES: &str =
    "lan, lan:N, routed-mcast, routed-nomcast, routed-ssm, stratum or stratum2";

impl FromStr for Topology {
    type Err = NetlabError;

    /// Parses `lan`, `lan:N`, `routed-mcast`, `routed-nomcast`, `routed-ssm`, `stratum` or
    /// `stratum2`.
    fn from_str(text: &str) -> Result<Self> {
        let topology = match text {
            "lan" => Self::Lan {
                hosts: DEFAULT_LAN_HOSTS,
            },
            "routed-mcast" => Self::RoutedMcast,
            "routed-nomcast" => Self::RoutedNomcast,
            "routed-ssm" => Self::RoutedSsm,
            "stratum" => Self::Stratum,
            "stratum2" => Self::Stratum2,
            _ => match text.strip_prefix("lan:").map(str::parse::<usize>) {
                Some(Ok(hosts)) => Self::Lan { hosts },
                _ => {
                    return Err(NetlabError::InvalidArgument(format!(
                        "unknown topology {text:?}; use {TOPOLOGY_NAMES}"
                    )));
                }
            },
        };
        topology.validate()?;
        Ok(topology)
    }
}

/// One planned interface.
#[derive(Debug, Clone)]
pub(crate) struct InterfacePlan {
    pub(crate) ifname: String,
    pub(crate) segment: &'static str,
    pub(crate) addr: Ipv6Addr,
    pub(crate) link_local: Ipv6Addr,
    /// The bridge (in the switch namespace) the interface is cabled to.
    pub(crate) bridge: &'static str,
    /// The switch-side end of the interface's veth pair.
    pub(crate) port: String,
}

/// One planned host.
#[derive(Debug, Clone)]
pub(crate) struct HostPlan {
    pub(crate) name: String,
    pub(crate) segment: &'static str,
    pub(crate) interfaces: Vec<InterfacePlan>,
    pub(crate) gateway: Option<Ipv6Addr>,
    pub(crate) is_router: bool,
}

/// One segment: a /64 on its own bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Segment {
    pub(crate) name: &'static str,
    /// The second group of the segment's prefix `fd5c:PREFIX::/64`.
    pub(crate) prefix: u16,
    pub(crate) bridge: &'static str,
}

impl Segment {
    /// The segment's prefix, `fd5c:PREFIX::/64`.
    pub(crate) fn subnet(&self) -> String {
        format!("{}/64", ula(self.prefix, 0))
    }

    /// The router's address on the segment.
    pub(crate) fn router_addr(&self) -> Ipv6Addr {
        ula(self.prefix, ROUTER_SUFFIX)
    }
}

const fn segment(name: &'static str, prefix: u16, bridge: &'static str) -> Segment {
    Segment {
        name,
        prefix,
        bridge,
    }
}

const LAN_SEGMENT: Segment = segment("lan", 0x1, "br-lan");
const SEGMENT_A: Segment = segment("a", 0xa, "br-a");
const SEGMENT_B: Segment = segment("b", 0xb, "br-b");
const CORE: Segment = segment("core", 0xc, "br-core");
const ISLAND: Segment = segment("island", 0x1a, "br-island");
const ISLAND_A: Segment = segment("island-a", 0x1a, "br-island-a");
const ISLAND_B: Segment = segment("island-b", 0x1b, "br-island-b");
const ROUTER_SUFFIX: u16 = 0x1;

/// The core's hosts of the stratum worlds and their address suffixes (role digit, number).
const CORE_HOSTS: [(&str, u16); 5] = [
    ("s0", 0x10),
    ("r1", 0x21),
    ("r2", 0x22),
    ("c1", 0x31),
    ("c2", 0x32),
];

/// The segments of `topology`, in the order of the router's interfaces (`eth0`, `eth1`, ...).
pub(crate) fn segments(topology: Topology) -> Vec<Segment> {
    match topology {
        Topology::Lan { .. } => vec![LAN_SEGMENT],
        Topology::RoutedMcast | Topology::RoutedNomcast | Topology::RoutedSsm => {
            vec![SEGMENT_A, SEGMENT_B]
        }
        Topology::Stratum => vec![CORE, ISLAND],
        Topology::Stratum2 => vec![CORE, ISLAND_A, ISLAND_B],
    }
}

/// `1` followed by the decimal digits of `index`, read as hex: host 1 is `::11`, host 10 `::110`.
fn host_suffix(index: usize) -> u16 {
    u16::from_str_radix(&format!("1{index}"), 16).unwrap_or(u16::MAX)
}

fn ula(segment: u16, suffix: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfd5c, segment, 0, 0, 0, 0, 0, suffix)
}

fn link_local(suffix: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, suffix)
}

fn end_host(name: &str, segment: Segment, suffix: u16, routed: bool) -> HostPlan {
    HostPlan {
        interfaces: vec![InterfacePlan {
            ifname: "eth0".into(),
            segment: segment.name,
            addr: ula(segment.prefix, suffix),
            link_local: link_local(suffix),
            bridge: segment.bridge,
            port: format!("p-{name}"),
        }],
        name: name.into(),
        segment: segment.name,
        gateway: routed.then(|| segment.router_addr()),
        is_router: false,
    }
}

/// Hosts `<letter>1`, `<letter>2` of a routed segment.
fn pair(letter: char, segment: Segment) -> [HostPlan; 2] {
    [1, 2].map(|index| {
        end_host(
            &format!("{letter}{index}"),
            segment,
            host_suffix(index),
            true,
        )
    })
}

/// Router `r` with interface `eth<n>` on the n-th of `legs`. Its segment is called `"core"`.
fn router(legs: &[Segment]) -> HostPlan {
    HostPlan {
        name: "r".into(),
        segment: "core",
        interfaces: legs
            .iter()
            .enumerate()
            .map(|(index, leg)| InterfacePlan {
                ifname: format!("eth{index}"),
                segment: leg.name,
                addr: leg.router_addr(),
                link_local: link_local(ROUTER_SUFFIX),
                bridge: leg.bridge,
                port: format!("p-r-{}", leg.name),
            })
            .collect(),
        gateway: None,
        is_router: true,
    }
}

/// The hosts of `topology`, in the order [`crate::World::hosts`] lists them (the router last).
pub(crate) fn plan(topology: Topology) -> Vec<HostPlan> {
    let legs = segments(topology);
    let mut hosts = Vec::new();
    match topology {
        Topology::Lan { hosts: count } => {
            return (1..=count)
                .map(|index| end_host(&format!("h{index}"), LAN_SEGMENT, host_suffix(index), false))
                .collect();
        }
        Topology::RoutedMcast | Topology::RoutedNomcast | Topology::RoutedSsm => {
            hosts.extend(pair('a', SEGMENT_A));
            hosts.extend(pair('b', SEGMENT_B));
        }
        Topology::Stratum | Topology::Stratum2 => {
            hosts.extend(
                CORE_HOSTS
                    .iter()
                    .map(|(name, suffix)| end_host(name, CORE, *suffix, true)),
            );
            hosts.extend(pair('i', legs[1]));
            if let Some(island_b) = legs.get(2) {
                hosts.extend(pair('j', *island_b));
            }
        }
    }
    hosts.push(router(&legs));
    hosts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_topology_names() {
        assert_eq!(
            "lan".parse::<Topology>().ok(),
            Some(Topology::Lan { hosts: 3 })
        );
        assert_eq!(
            "lan:7".parse::<Topology>().ok(),
            Some(Topology::Lan { hosts: 7 })
        );
        assert_eq!(
            "routed-mcast".parse::<Topology>().ok(),
            Some(Topology::RoutedMcast)
        );
        assert_eq!(
            "routed-nomcast".parse::<Topology>().ok(),
            Some(Topology::RoutedNomcast)
        );
        for (name, topology) in [
            ("routed-ssm", Topology::RoutedSsm),
            ("stratum", Topology::Stratum),
            ("stratum2", Topology::Stratum2),
        ] {
            assert_eq!(name.parse::<Topology>().ok(), Some(topology));
            assert_eq!(topology.to_string(), name);
        }
        for bad in [
            "", "lan:", "lan:0", "lan:101", "lan:x", "wan", "routed", "stratum3", "ssm",
        ] {
            assert!(
                bad.parse::<Topology>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn addresses_follow_the_documented_plan() {
        let lan = plan(Topology::Lan { hosts: 10 });
        assert_eq!(
            lan[0].interfaces[0].addr,
            "fd5c:1::11".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            lan[9].interfaces[0].addr,
            "fd5c:1::110".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            lan[0].interfaces[0].link_local,
            "fe80::11".parse::<Ipv6Addr>().unwrap()
        );
        let routed = plan(Topology::RoutedMcast);
        assert_eq!(
            routed[1].interfaces[0].addr,
            "fd5c:a::12".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            routed[2].gateway,
            Some("fd5c:b::1".parse::<Ipv6Addr>().unwrap())
        );
        let router = &routed[4];
        assert_eq!(router.segment, "core");
        assert_eq!(
            router.interfaces[1].addr,
            "fd5c:b::1".parse::<Ipv6Addr>().unwrap()
        );
        // Every interface name must fit IFNAMSIZ.
        for host in plan(Topology::Lan {
            hosts: MAX_LAN_HOSTS,
        })
        .iter()
        .chain(&routed)
        {
            for interface in &host.interfaces {
                assert!(interface.port.len() < 16 && interface.ifname.len() < 16);
            }
        }
    }

    fn addr_of(hosts: &[HostPlan], name: &str) -> Ipv6Addr {
        hosts
            .iter()
            .find(|host| host.name == name)
            .map(|host| host.interfaces[0].addr)
            .unwrap_or_else(|| panic!("no host {name}"))
    }

    #[test]
    fn stratum_worlds_follow_the_documented_plan() {
        let stratum = plan(Topology::Stratum);
        let names: Vec<&str> = stratum.iter().map(|host| host.name.as_str()).collect();
        assert_eq!(names, ["s0", "r1", "r2", "c1", "c2", "i1", "i2", "r"]);
        for (name, addr) in [
            ("s0", "fd5c:c::10"),
            ("r1", "fd5c:c::21"),
            ("r2", "fd5c:c::22"),
            ("c1", "fd5c:c::31"),
            ("c2", "fd5c:c::32"),
            ("i1", "fd5c:1a::11"),
            ("i2", "fd5c:1a::12"),
            ("r", "fd5c:c::1"),
        ] {
            assert_eq!(addr_of(&stratum, name), addr.parse::<Ipv6Addr>().unwrap());
        }
        let router = &stratum[7];
        assert!(router.is_router && router.gateway.is_none());
        assert_eq!(
            router.interfaces[1].addr,
            "fd5c:1a::1".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(router.interfaces[1].segment, "island");
        assert_eq!(stratum[0].gateway, Some("fd5c:c::1".parse().unwrap()));
        assert_eq!(stratum[5].gateway, Some("fd5c:1a::1".parse().unwrap()));

        let stratum2 = plan(Topology::Stratum2);
        let names: Vec<&str> = stratum2.iter().map(|host| host.name.as_str()).collect();
        assert_eq!(
            names,
            ["s0", "r1", "r2", "c1", "c2", "i1", "i2", "j1", "j2", "r"]
        );
        assert_eq!(
            addr_of(&stratum2, "j2"),
            "fd5c:1b::12".parse::<Ipv6Addr>().unwrap()
        );
        let legs: Vec<(&str, &str)> = stratum2[9]
            .interfaces
            .iter()
            .map(|leg| (leg.ifname.as_str(), leg.segment))
            .collect();
        assert_eq!(
            legs,
            [("eth0", "core"), ("eth1", "island-a"), ("eth2", "island-b")]
        );

        let ssm = plan(Topology::RoutedSsm);
        assert_eq!(
            addr_of(&ssm, "b1"),
            "fd5c:b::11".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(segments(Topology::Stratum2)[2].subnet(), "fd5c:1b::/64");
    }

    #[test]
    fn every_world_has_unique_addresses_ports_and_short_names() {
        for topology in [
            Topology::Lan {
                hosts: MAX_LAN_HOSTS,
            },
            Topology::RoutedMcast,
            Topology::RoutedNomcast,
            Topology::RoutedSsm,
            Topology::Stratum,
            Topology::Stratum2,
        ] {
            let hosts = plan(topology);
            let interfaces: Vec<&InterfacePlan> =
                hosts.iter().flat_map(|host| &host.interfaces).collect();
            let mut ports: Vec<&str> = interfaces.iter().map(|i| i.port.as_str()).collect();
            ports.sort_unstable();
            ports.dedup();
            assert_eq!(ports.len(), interfaces.len(), "{topology}: duplicate ports");
            let mut addrs: Vec<Ipv6Addr> = interfaces.iter().map(|i| i.addr).collect();
            addrs.sort_unstable();
            addrs.dedup();
            assert_eq!(
                addrs.len(),
                interfaces.len(),
                "{topology}: duplicate addresses"
            );
            for interface in interfaces {
                assert!(interface.port.len() < 16 && interface.ifname.len() < 16);
                assert!(interface.bridge.len() < 16);
                assert_eq!(interface.bridge, format!("br-{}", interface.segment));
            }
        }
    }
}
