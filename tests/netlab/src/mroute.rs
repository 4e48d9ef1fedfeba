//! The multicast routes of a world's router, and the forwarding rule the user-space router
//! applies to each packet, free of I/O so that it is tested packet by packet.
//!
//! The rule is an IPv6 router's (RFC 8200, RFC 4291, RFC 4007):
//!
//! - only multicast destinations are routed here; unicast is the kernel's;
//! - interface- and link-scope groups (`ff01::/16`, `ff02::/16`, `ff11::/16`, `ff12::/16`, ...)
//!   never leave their link, and neither does a packet from a link-local or unspecified source,
//!   whatever the route table says;
//! - a packet goes out of every leg that a matching route names (any-source routes match the
//!   group, source-specific routes the source too), never back out of the leg it came in on;
//! - the hop limit drops by one, and a packet that arrives with hop limit 1 (or 0) is not
//!   forwarded.

use std::{fmt, net::Ipv6Addr, str::FromStr};

use serde_json::{Value, json};

use crate::{
    Interface, NetlabError, Result, Topology,
    topology::{ROUTED_GROUP_PREFIXES, SSM_GROUP_PREFIX, STRATUM_GROUP_PREFIXES},
};

/// An IPv6 prefix such as `ff1e::/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ipv6Prefix {
    network: Ipv6Addr,
    len: u8,
}

impl Ipv6Prefix {
    fn mask(len: u8) -> u128 {
        u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
    }

    /// The prefix of length `len` that `addr` belongs to.
    pub(crate) fn of(addr: Ipv6Addr, len: u8) -> Self {
        let len = len.min(128);
        Self {
            network: Ipv6Addr::from(u128::from(addr) & Self::mask(len)),
            len,
        }
    }

    pub(crate) fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & Self::mask(self.len) == u128::from(self.network)
    }
}

impl FromStr for Ipv6Prefix {
    type Err = NetlabError;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = || NetlabError::InvalidArgument(format!("{text:?} is not an IPv6 prefix"));
        let (addr, len) = text.split_once('/').ok_or_else(invalid)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| invalid())?;
        let len: u8 = len.parse().map_err(|_| invalid())?;
        if len > 128 || Self::of(addr, len).network != addr {
            return Err(invalid());
        }
        Ok(Self { network: addr, len })
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.len)
    }
}

/// One multicast route of a world's router: packets to a group in `group` (from a source in
/// `source`, or any) arriving on leg `from` go out of every leg in `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mroute {
    pub(crate) from: String,
    pub(crate) source: Option<Ipv6Prefix>,
    pub(crate) group: Ipv6Prefix,
    pub(crate) to: Vec<String>,
}

impl Mroute {
    /// The route as a line of smcroute.conf.
    pub(crate) fn conf_line(&self) -> String {
        let source = self
            .source
            .map(|source| format!(" source {source}"))
            .unwrap_or_default();
        format!(
            "mroute from {}{source} group {} to {}",
            self.from,
            self.group,
            self.to.join(" ")
        )
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "from": self.from,
            "source": self.source.map(|source| source.to_string()),
            "group": self.group.to_string(),
            "to": self.to,
        })
    }
}

/// The routes of the router of `topology`, whose legs are `legs`: for routed-ssm, `ff3e::/32`
/// from sources of the arriving leg's own /64 to the other leg; otherwise every range of the
/// topology from each leg to all the others.
pub(crate) fn routes_for(topology: Topology, legs: &[Interface]) -> Vec<Mroute> {
    let others = |from: &Interface| -> Vec<String> {
        legs.iter()
            .filter(|leg| leg.name != from.name)
            .map(|leg| leg.name.clone())
            .collect()
    };
    let prefix = |text: &str| -> Ipv6Prefix {
        // The topology's ranges are constants that the unit tests parse.
        text.parse().unwrap_or_else(|err| panic!("{err}"))
    };
    let any_source = |groups: &[&str]| -> Vec<Mroute> {
        groups
            .iter()
            .flat_map(|group| {
                legs.iter().map(move |from| Mroute {
                    from: from.name.clone(),
                    source: None,
                    group: prefix(group),
                    to: others(from),
                })
            })
            .collect()
    };
    match topology {
        Topology::RoutedSsm => legs
            .iter()
            .map(|from| Mroute {
                from: from.name.clone(),
                source: Some(Ipv6Prefix::of(from.addr, 64)),
                group: prefix(SSM_GROUP_PREFIX),
                to: others(from),
            })
            .collect(),
        Topology::Stratum | Topology::Stratum2 => any_source(&STRATUM_GROUP_PREFIXES),
        _ => any_source(&ROUTED_GROUP_PREFIXES),
    }
}

/// What the user-space router counted since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ForwardingStats {
    /// Multicast packets read from the legs.
    pub received: u64,
    /// Copies sent out of a leg (a packet forwarded to two legs counts twice).
    pub forwarded: u64,
    /// Packets that a route would carry but that arrived with hop limit 1 or 0.
    pub hop_limit_exceeded: u64,
    /// Packets kept on their link: an interface- or link-scope group, or a link-local or
    /// unspecified source.
    pub link_scope: u64,
    /// Packets that no route carries out of another leg.
    pub no_route: u64,
    /// Frames too short or not IPv6, and packets with a unicast destination.
    pub malformed: u64,
    /// Copies the kernel refused to send (too big for the leg, or no buffer space).
    pub send_failed: u64,
}

impl ForwardingStats {
    /// Counts one packet's verdict.
    pub(crate) fn count(&mut self, verdict: &Verdict) {
        self.received += 1;
        match verdict {
            Verdict::Forward(_) => {}
            Verdict::Drop(DropReason::HopLimit) => self.hop_limit_exceeded += 1,
            Verdict::Drop(DropReason::LinkScope) => self.link_scope += 1,
            Verdict::Drop(DropReason::NoRoute) => self.no_route += 1,
            Verdict::Drop(DropReason::Malformed) => self.malformed += 1,
        }
    }
}

/// A set of router legs, by index (a router has at most 64).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Legs(u64);

impl Legs {
    fn with(self, leg: usize) -> Self {
        Self(self.0 | 1 << leg)
    }

    fn without(self, leg: usize) -> Self {
        Self(self.0 & !(1 << leg))
    }

    /// The legs' indexes, lowest first.
    pub(crate) fn iter(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |leg| self.0 & 1 << leg != 0)
    }
}

/// Why a packet is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    HopLimit,
    LinkScope,
    NoRoute,
    Malformed,
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send it out of these legs (its hop limit is already lowered).
    Forward(Legs),
    Drop(DropReason),
}

/// A route compiled against the router's legs.
#[derive(Debug)]
struct LegRoute {
    from: usize,
    source: Option<Ipv6Prefix>,
    group: Ipv6Prefix,
    to: Legs,
}

/// The forwarding rule over one route table.
#[derive(Debug)]
pub(crate) struct Forwarder {
    routes: Vec<LegRoute>,
}

/// The IPv6 fixed header's length and the offsets of the fields the rule reads.
const HEADER_LEN: usize = 40;
const HOP_LIMIT: usize = 7;
const SOURCE: usize = 8;
const DESTINATION: usize = 24;

impl Forwarder {
    /// Compiles `routes` for a router whose legs are named `legs` (in index order).
    pub(crate) fn new(routes: &[Mroute], legs: &[&str]) -> Result<Self> {
        if legs.len() > 64 {
            return Err(NetlabError::InvalidArgument(format!(
                "a router has at most 64 legs, not {}",
                legs.len()
            )));
        }
        let index = |name: &str| {
            legs.iter().position(|leg| *leg == name).ok_or_else(|| {
                NetlabError::InvalidArgument(format!(
                    "a route names leg {name:?}, but the router's legs are {legs:?}"
                ))
            })
        };
        let routes = routes
            .iter()
            .map(|route| {
                let to = route
                    .to
                    .iter()
                    .try_fold(Legs::default(), |set, name| Ok(set.with(index(name)?)))?;
                Ok(LegRoute {
                    from: index(&route.from)?,
                    source: route.source,
                    group: route.group,
                    to,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { routes })
    }

    /// Decides what becomes of `packet` (an IPv6 packet, from its fixed header on) that arrived
    /// on leg `from`; when it is to be forwarded, lowers its hop limit in place.
    pub(crate) fn route(&self, from: usize, packet: &mut [u8]) -> Verdict {
        if packet.len() < HEADER_LEN || packet[0] >> 4 != 6 {
            return Verdict::Drop(DropReason::Malformed);
        }
        let address = |offset: usize| {
            let mut octets = [0; 16];
            octets.copy_from_slice(&packet[offset..offset + 16]);
            Ipv6Addr::from(octets)
        };
        let (source, group) = (address(SOURCE), address(DESTINATION));
        if !group.is_multicast() {
            return Verdict::Drop(DropReason::Malformed);
        }
        // The scope is the low nibble of the group's second byte.
        let scope = group.octets()[1] & 0x0f;
        if scope <= 2 || source.is_unspecified() || source.is_unicast_link_local() {
            return Verdict::Drop(DropReason::LinkScope);
        }
        let to = self
            .routes
            .iter()
            .filter(|route| {
                route.from == from
                    && route.group.contains(group)
                    && route.source.is_none_or(|prefix| prefix.contains(source))
            })
            .fold(Legs::default(), |set, route| Legs(set.0 | route.to.0))
            .without(from);
        if to == Legs::default() {
            return Verdict::Drop(DropReason::NoRoute);
        }
        if packet[HOP_LIMIT] <= 1 {
            return Verdict::Drop(DropReason::HopLimit);
        }
        packet[HOP_LIMIT] -= 1;
        Verdict::Forward(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(text: &str) -> Ipv6Prefix {
        text.parse().unwrap()
    }

    fn route(from: &str, source: Option<&str>, group: &str, to: &[&str]) -> Mroute {
        Mroute {
            from: from.into(),
            source: source.map(prefix),
            group: prefix(group),
            to: to.iter().map(|leg| (*leg).to_owned()).collect(),
        }
    }

    /// An IPv6 packet from `source` to `group` with `hops`, carrying 8 bytes of UDP.
    fn packet(source: &str, group: &str, hops: u8) -> Vec<u8> {
        let mut packet = vec![0u8; HEADER_LEN + 8];
        packet[0] = 0x60;
        packet[4..6].copy_from_slice(&8u16.to_be_bytes());
        packet[6] = 17;
        packet[HOP_LIMIT] = hops;
        let (source, group): (Ipv6Addr, Ipv6Addr) =
            (source.parse().unwrap(), group.parse().unwrap());
        packet[SOURCE..SOURCE + 16].copy_from_slice(&source.octets());
        packet[DESTINATION..DESTINATION + 16].copy_from_slice(&group.octets());
        packet
    }

    fn legs(indexes: &[usize]) -> Legs {
        indexes
            .iter()
            .fold(Legs::default(), |set, leg| set.with(*leg))
    }

    const LEGS: [&str; 3] = ["eth0", "eth1", "eth2"];

    fn three_legged() -> Forwarder {
        let routes = [
            route("eth0", None, "ff1e::/16", &["eth1", "eth2"]),
            route("eth1", None, "ff1e::/16", &["eth0", "eth2"]),
            route("eth2", None, "ff1e::/16", &["eth0", "eth1"]),
            // A route that names link scope, and one that names the incoming leg itself: the
            // rule must win over both.
            route("eth0", None, "ff12::/16", &["eth1"]),
            route("eth0", None, "ff02::/16", &["eth1"]),
            route("eth1", None, "ff15::/16", &["eth1", "eth0"]),
            route("eth0", Some("fd5c:a::/64"), "ff3e::/32", &["eth1"]),
        ];
        Forwarder::new(&routes, &LEGS).unwrap()
    }

    #[test]
    fn prefixes_parse_print_and_match() {
        assert_eq!(prefix("ff1e::/16").to_string(), "ff1e::/16");
        assert_eq!(prefix("fd5c:a::/64").to_string(), "fd5c:a::/64");
        assert!(prefix("ff3e::/32").contains("ff3e::8000:1".parse().unwrap()));
        assert!(!prefix("ff3e::/32").contains("ff3e:30:fd5c:a::1".parse().unwrap()));
        assert!(prefix("::/0").contains("fd5c::1".parse().unwrap()));
        assert_eq!(
            Ipv6Prefix::of("fd5c:1b::12".parse().unwrap(), 64).to_string(),
            "fd5c:1b::/64"
        );
        for bad in [
            "ff1e::",
            "ff1e::/129",
            "ff1e::1/16",
            "nonsense/8",
            "ff1e::/x",
        ] {
            assert!(bad.parse::<Ipv6Prefix>().is_err(), "{bad} parsed");
        }
        for range in ROUTED_GROUP_PREFIXES
            .iter()
            .chain(&STRATUM_GROUP_PREFIXES)
            .chain([&SSM_GROUP_PREFIX])
        {
            assert_eq!(prefix(range).to_string(), *range);
        }
    }

    #[test]
    fn forwards_to_every_other_leg_and_lowers_the_hop_limit() {
        let forwarder = three_legged();
        let mut sent = packet("fd5c:c::31", "ff1e::5c:1", 8);
        assert_eq!(
            forwarder.route(0, &mut sent),
            Verdict::Forward(legs(&[1, 2]))
        );
        assert_eq!(sent[HOP_LIMIT], 7);
        let mut back = packet("fd5c:1a::11", "ff1e::5c:1", 2);
        assert_eq!(
            forwarder.route(1, &mut back),
            Verdict::Forward(legs(&[0, 2]))
        );
        assert_eq!(back[HOP_LIMIT], 1);
    }

    #[test]
    fn hop_limit_1_and_0_stay() {
        let forwarder = three_legged();
        for hops in [0, 1] {
            let mut last_hop = packet("fd5c:c::31", "ff1e::5c:1", hops);
            assert_eq!(
                forwarder.route(0, &mut last_hop),
                Verdict::Drop(DropReason::HopLimit)
            );
            assert_eq!(
                last_hop[HOP_LIMIT], hops,
                "a dropped packet is left as it was"
            );
        }
    }

    #[test]
    fn link_scope_never_crosses_even_with_a_route() {
        let forwarder = three_legged();
        for (source, group) in [
            ("fd5c:c::31", "ff12::5c:1"),
            ("fd5c:c::31", "ff02::1"),
            ("fd5c:c::31", "ff11::1"),
            ("fd5c:c::31", "ff01::1"),
            ("fe80::31", "ff1e::5c:1"),
            ("::", "ff1e::5c:1"),
        ] {
            assert_eq!(
                forwarder.route(0, &mut packet(source, group, 64)),
                Verdict::Drop(DropReason::LinkScope),
                "{source} -> {group}"
            );
        }
    }

    #[test]
    fn never_back_out_of_the_incoming_leg() {
        let forwarder = three_legged();
        assert_eq!(
            forwarder.route(1, &mut packet("fd5c:1a::11", "ff15::1", 8)),
            Verdict::Forward(legs(&[0]))
        );
        let only_back =
            Forwarder::new(&[route("eth0", None, "ff1e::/16", &["eth0"])], &LEGS).unwrap();
        assert_eq!(
            only_back.route(0, &mut packet("fd5c:c::31", "ff1e::1", 8)),
            Verdict::Drop(DropReason::NoRoute)
        );
    }

    #[test]
    fn source_specific_routes_pass_only_their_sources() {
        let forwarder = three_legged();
        assert_eq!(
            forwarder.route(0, &mut packet("fd5c:a::11", "ff3e::8000:1", 8)),
            Verdict::Forward(legs(&[1]))
        );
        for (from, source, group) in [
            (0, "fd5c:b::11", "ff3e::8000:1"),
            (1, "fd5c:a::11", "ff3e::8000:1"),
            (0, "fd5c:a::11", "ff3e:30:fd5c:a::1"),
            (0, "fd5c:a::11", "ff18::1"),
        ] {
            assert_eq!(
                forwarder.route(from, &mut packet(source, group, 8)),
                Verdict::Drop(DropReason::NoRoute),
                "{source} -> {group} on leg {from}"
            );
        }
    }

    #[test]
    fn malformed_packets_are_dropped_not_panicked_on() {
        let forwarder = three_legged();
        let mut unicast = packet("fd5c:c::31", "fd5c:1a::11", 8);
        assert_eq!(
            forwarder.route(0, &mut unicast),
            Verdict::Drop(DropReason::Malformed)
        );
        let mut ipv4 = packet("fd5c:c::31", "ff1e::1", 8);
        ipv4[0] = 0x45;
        for bad in [&mut ipv4[..], &mut [0x60; 39][..], &mut [][..]] {
            assert_eq!(
                forwarder.route(0, bad),
                Verdict::Drop(DropReason::Malformed)
            );
        }
        assert_eq!(
            forwarder.route(7, &mut packet("fd5c:c::31", "ff1e::1", 8)),
            Verdict::Drop(DropReason::NoRoute),
            "an unknown leg has no routes"
        );
    }

    #[test]
    fn stats_count_each_verdict() {
        let mut stats = ForwardingStats::default();
        for verdict in [
            Verdict::Forward(legs(&[1])),
            Verdict::Drop(DropReason::HopLimit),
            Verdict::Drop(DropReason::LinkScope),
            Verdict::Drop(DropReason::NoRoute),
            Verdict::Drop(DropReason::Malformed),
            Verdict::Drop(DropReason::NoRoute),
        ] {
            stats.count(&verdict);
        }
        assert_eq!(
            (stats.received, stats.hop_limit_exceeded, stats.link_scope),
            (6, 1, 1)
        );
        assert_eq!(
            (stats.no_route, stats.malformed, stats.forwarded),
            (2, 1, 0)
        );
    }

    #[test]
    fn routes_name_unknown_legs_as_an_error() {
        let err =
            Forwarder::new(&[route("eth0", None, "ff1e::/16", &["eth9"])], &LEGS).unwrap_err();
        assert!(err.to_string().contains("eth9"), "{err}");
    }

    #[test]
    fn smcroute_lines_and_json_name_the_route() {
        let ssm = route("eth0", Some("fd5c:a::/64"), "ff3e::/32", &["eth1"]);
        assert_eq!(
            ssm.conf_line(),
            "mroute from eth0 source fd5c:a::/64 group ff3e::/32 to eth1"
        );
        assert_eq!(
            route("eth0", None, "ff15::/16", &["eth1", "eth2"]).conf_line(),
            "mroute from eth0 group ff15::/16 to eth1 eth2"
        );
        assert_eq!(
            ssm.to_json(),
            json!({"from": "eth0", "source": "fd5c:a::/64", "group": "ff3e::/32", "to": ["eth1"]})
        );
    }
}
