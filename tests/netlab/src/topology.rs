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

/// The shape of a [`crate::World`].
///
/// Addresses: segment `lan` is `fd5c:1::/64`, `a` is `fd5c:a::/64`, `b` is `fd5c:b::/64`. Host
/// number *i* of a segment gets the address ending in `1` followed by the digits of *i*
/// (`h1` = `fd5c:1::11`, `a2` = `fd5c:a::12`, `h10` = `fd5c:1::110`) and the link-local address
/// with the same ending (`fe80::11`); the router is `::1` and `fe80::1` on each segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topology {
    /// Hosts `h1`..`hN` on one bridged segment.
    Lan {
        /// How many hosts (1..=[`MAX_LAN_HOSTS`]).
        hosts: usize,
    },
    /// Segment a (`a1`, `a2`) and segment b (`b1`, `b2`) joined by router `r`, which forwards
    /// unicast and, with smcroute, multicast in [`ROUTED_GROUP_PREFIXES`].
    RoutedMcast,
    /// The same two segments, with a router that forwards unicast only.
    RoutedNomcast,
}

impl Topology {
    /// The topology's name: `"lan"`, `"routed-mcast"` or `"routed-nomcast"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Lan { .. } => "lan",
            Self::RoutedMcast => "routed-mcast",
            Self::RoutedNomcast => "routed-nomcast",
        }
    }

    /// Whether building this topology needs smcroute.
    pub fn needs_smcroute(&self) -> bool {
        matches!(self, Self::RoutedMcast)
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

impl FromStr for Topology {
    type Err = NetlabError;

    /// Parses `lan`, `lan:N`, `routed-mcast` or `routed-nomcast`.
    fn from_str(text: &str) -> Result<Self> {
        let topology = match text {
            "lan" => Self::Lan {
                hosts: DEFAULT_LAN_HOSTS,
            },
            "routed-mcast" => Self::RoutedMcast,
            "routed-nomcast" => Self::RoutedNomcast,
            _ => match text.strip_prefix("lan:").map(str::parse::<usize>) {
                Some(Ok(hosts)) => Self::Lan { hosts },
                _ => {
                    return Err(NetlabError::InvalidArgument(format!(
                        "unknown topology {text:?}; use lan, lan:N, routed-mcast or routed-nomcast"
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

const LAN_SEGMENT: (&str, u16) = ("lan", 0x1);
const SEGMENT_A: (&str, u16) = ("a", 0xa);
const SEGMENT_B: (&str, u16) = ("b", 0xb);
const ROUTER_SUFFIX: u16 = 0x1;

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

fn bridge_of(segment: &str) -> &'static str {
    match segment {
        "a" => "br-a",
        "b" => "br-b",
        _ => "br-lan",
    }
}

fn end_host(
    name: String,
    (segment, prefix): (&'static str, u16),
    index: usize,
    routed: bool,
) -> HostPlan {
    let suffix = host_suffix(index);
    HostPlan {
        interfaces: vec![InterfacePlan {
            ifname: "eth0".into(),
            segment,
            addr: ula(prefix, suffix),
            link_local: link_local(suffix),
            bridge: bridge_of(segment),
            port: format!("p-{name}"),
        }],
        name,
        segment,
        gateway: routed.then(|| ula(prefix, ROUTER_SUFFIX)),
        is_router: false,
    }
}

/// The hosts of `topology`, in the order [`crate::World::hosts`] lists them.
pub(crate) fn plan(topology: Topology) -> Vec<HostPlan> {
    match topology {
        Topology::Lan { hosts } => (1..=hosts)
            .map(|index| end_host(format!("h{index}"), LAN_SEGMENT, index, false))
            .collect(),
        Topology::RoutedMcast | Topology::RoutedNomcast => {
            let router_interface =
                |ifname: &str, (segment, prefix): (&'static str, u16)| InterfacePlan {
                    ifname: ifname.into(),
                    segment,
                    addr: ula(prefix, ROUTER_SUFFIX),
                    link_local: link_local(ROUTER_SUFFIX),
                    bridge: bridge_of(segment),
                    port: format!("p-r-{segment}"),
                };
            vec![
                end_host("a1".into(), SEGMENT_A, 1, true),
                end_host("a2".into(), SEGMENT_A, 2, true),
                end_host("b1".into(), SEGMENT_B, 1, true),
                end_host("b2".into(), SEGMENT_B, 2, true),
                HostPlan {
                    name: "r".into(),
                    segment: "core",
                    interfaces: vec![
                        router_interface("eth0", SEGMENT_A),
                        router_interface("eth1", SEGMENT_B),
                    ],
                    gateway: None,
                    is_router: true,
                },
            ]
        }
    }
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
        for bad in ["", "lan:", "lan:0", "lan:101", "lan:x", "wan", "routed"] {
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
}
