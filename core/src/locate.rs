//! Where a node's Stratum 0 is: configured explicitly, published in DNS as SRV records, or the
//! rendezvous point embedded in an embedded-RP group (see `docs/reachability.md`, section 1).
//!
//! The order is fixed: an explicit [`Config::stratum0`] wins; otherwise the SRV records of
//! `_sixcast._udp.<domain>` ([`Config::domain`]); otherwise, for the embedded-RP profile, the RP
//! its groups carry, at [`STRATUM0_PORT`]. DNS answers are ordered as RFC 2782 says: lowest
//! priority first, and within one priority a random order weighted by the records' weights.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6},
    time::Duration,
};

use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig},
    net::{NetError, runtime::TokioRuntimeProvider},
    proto::rr::{Name, RData},
};

use crate::{
    addr::{self, Profile},
    config::Config,
    discovery::{self, STRATUM0_PORT},
    error::{Error, ErrorKind, Result},
};

/// The service label of the SRV records a domain publishes its Stratum 0 under.
pub const SRV_SERVICE: &str = "_sixcast._udp";

/// The DNS port a bare server address means.
pub const DNS_PORT: u16 = 53;

/// Where a node's Stratum 0 comes from, chosen from a [`Config`] by [`Stratum0Source::of`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stratum0Source {
    /// [`Config::stratum0`].
    Configured(SocketAddrV6),
    /// The SRV records of `_sixcast._udp.<domain>`, asked of `server` (the system's resolver
    /// when `None`).
    Dns {
        /// The domain whose SRV records name Stratum 0.
        domain: String,
        /// The DNS server to ask instead of the system's resolver.
        server: Option<SocketAddr>,
    },
    /// The rendezvous point embedded in the context's embedded-RP groups.
    EmbeddedRp(Ipv6Addr),
}

impl Stratum0Source {
    /// The source a context with `config` uses, in the documented order, or `None` when the
    /// configuration names no Stratum 0 at all (the context then stays native only).
    pub fn of(config: &Config) -> Option<Self> {
        if let Some(stratum0) = config.stratum0 {
            return Some(Self::Configured(stratum0));
        }
        if let Some(domain) = &config.domain {
            return Some(Self::Dns {
                domain: domain.clone(),
                server: config.dns_server,
            });
        }
        embedded_rp_of(&config.profile, config.scope).map(Self::EmbeddedRp)
    }

    /// The Stratum 0 candidates of this source, best first, found within `within`.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] when the domain publishes no usable record (no
    /// such name, no SRV records, or targets without an IPv6 address), [`ErrorKind::Timeout`]
    /// when the DNS server does not answer in time, and [`ErrorKind::Io`] when it cannot be
    /// asked at all.
    pub fn candidates(&self, within: Duration) -> Result<Vec<SocketAddrV6>> {
        match self {
            Self::Configured(stratum0) => Ok(vec![*stratum0]),
            Self::Dns { domain, server } => srv_lookup(domain, *server, within),
            Self::EmbeddedRp(rp) => Ok(vec![SocketAddrV6::new(*rp, STRATUM0_PORT, 0, 0)]),
        }
    }
}

impl std::fmt::Display for Stratum0Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Configured(stratum0) => write!(f, "configured {stratum0}"),
            Self::Dns {
                domain,
                server: Some(server),
            } => write!(f, "DNS SRV {SRV_SERVICE}.{domain} asked of {server}"),
            Self::Dns { domain, .. } => write!(f, "DNS SRV {SRV_SERVICE}.{domain}"),
            Self::EmbeddedRp(rp) => write!(f, "embedded RP {rp}"),
        }
    }
}

/// The RP that the groups of an embedded-RP profile carry, read back from one of its groups
/// (every group of the profile embeds the same RP).
fn embedded_rp_of(profile: &Profile, scope: addr::Scope) -> Option<Ipv6Addr> {
    if !matches!(profile, Profile::EmbeddedRp { .. }) {
        return None;
    }
    let group = addr::group_addr(b"sixcast/stratum0", profile, scope).ok()?;
    addr::embedded_rp(group)
}

/// The full SRV name of `domain`, checked.
pub fn srv_name(domain: &str) -> Result<Name> {
    let domain = domain.trim_end_matches('.');
    let invalid = |why: String| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("domain {domain:?} is not a usable DNS name: {why}"),
        )
    };
    if domain.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    let mut name = Name::from_utf8(format!("{SRV_SERVICE}.{domain}."))
        .map_err(|err| invalid(err.to_string()))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Parses a DNS server as `address`, `[address]:port` or `ipv4:port`; a bare address means
/// port 53.
pub fn parse_dns_server(text: &str) -> Result<SocketAddr> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    text.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "dns_server {text:?} is not an address or \"[address]:port\", for example \
                     2001:db8::53 or [2001:db8::53]:5353"
                ),
            )
        })
}

/// One SRV record: where a Stratum 0 runs, and how to rank it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SrvTarget {
    priority: u16,
    weight: u16,
    port: u16,
    target: Name,
}

/// Orders SRV records as RFC 2782 says: ascending priority; within one priority, repeatedly
/// pick a record at random with probability proportional to its weight (records of weight 0
/// first, so they are picked only when nothing else is left or by a draw of 0). `random` yields
/// uniformly distributed numbers.
fn order_srv(mut records: Vec<SrvTarget>, random: &mut dyn FnMut() -> u64) -> Vec<SrvTarget> {
    records.sort_by_key(|record| (record.priority, record.weight != 0));
    let mut ordered = Vec::with_capacity(records.len());
    while !records.is_empty() {
        let priority = records[0].priority;
        let same = records
            .iter()
            .take_while(|record| record.priority == priority)
            .count();
        let mut group: Vec<SrvTarget> = records.drain(..same).collect();
        while !group.is_empty() {
            let total: u64 = group.iter().map(|record| u64::from(record.weight)).sum();
            let draw = random() % (total + 1);
            let mut running = 0;
            let chosen = group
                .iter()
                .position(|record| {
                    running += u64::from(record.weight);
                    running >= draw
                })
                .unwrap_or(0);
            ordered.push(group.remove(chosen));
        }
    }
    ordered
}

/// Looks up `_sixcast._udp.<domain>` SRV and the AAAA records of its targets, within `within`,
/// and returns every Stratum 0 address in the RFC 2782 order.
pub fn srv_lookup(
    domain: &str,
    server: Option<SocketAddr>,
    within: Duration,
) -> Result<Vec<SocketAddrV6>> {
    let name = srv_name(domain)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Error::io("starting the DNS resolver", err))?;
    let resolver = runtime.block_on(async { resolver(server, within) })?;
    let looked_up = runtime
        .block_on(async { tokio::time::timeout(within, resolve(&resolver, &name, domain)).await });
    match looked_up {
        Ok(found) => found,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "DNS did not answer for {name} within {within:?}{}",
                server.map_or_else(String::new, |server| format!(" (server {server})"))
            ),
        )),
    }
}

/// A resolver that asks `server`, or the system's resolvers when `None`.
fn resolver(server: Option<SocketAddr>, within: Duration) -> Result<TokioResolver> {
    let mut builder = match server {
        Some(server) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = server.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = server.port();
            let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
                server.ip(),
                true,
                vec![udp, tcp],
            )]);
            TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
        None => TokioResolver::builder_tokio().map_err(|err| {
            Error::new(
                ErrorKind::Io,
                format!("reading the system's DNS configuration: {err}; set dns_server instead"),
            )
        })?,
    };
    let options = builder.options_mut();
    // Several tries fit in the bound; a lost datagram must not use it all up.
    options.timeout = (within / 3).max(Duration::from_millis(100));
    options.attempts = 2;
    builder
        .build()
        .map_err(|err| Error::new(ErrorKind::Io, format!("starting the DNS resolver: {err}")))
}

async fn resolve(resolver: &TokioResolver, name: &Name, domain: &str) -> Result<Vec<SocketAddrV6>> {
    let lookup = resolver
        .srv_lookup(name.clone())
        .await
        .map_err(|err| dns_error(name, &err))?;
    let records: Vec<SrvTarget> = lookup
        .answers()
        .iter()
        .filter_map(|record| match &record.data {
            // A target of "." says the service is decidedly not available there.
            RData::SRV(srv) if !srv.target.is_root() => Some(SrvTarget {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                target: srv.target.clone(),
            }),
            _ => None,
        })
        .collect();
    if records.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("{name} names no Stratum 0 (no SRV record with a target)"),
        ));
    }
    // One draw per record; drawn first so that a failing generator fails the lookup.
    let draws = (0..records.len())
        .map(|_| discovery::nonce())
        .collect::<Result<Vec<u64>>>()?;
    let mut draws = draws.into_iter();
    let mut addresses = Vec::new();
    for record in order_srv(records, &mut || draws.next().unwrap_or_default()) {
        match resolver.ipv6_lookup(record.target.clone()).await {
            Ok(found) => {
                let aaaa = found
                    .answers()
                    .iter()
                    .filter_map(|answer| match &answer.data {
                        RData::AAAA(aaaa) => Some(SocketAddrV6::new(aaaa.0, record.port, 0, 0)),
                        _ => None,
                    });
                addresses.extend(aaaa);
            }
            Err(err) => tracing::debug!("{}", dns_error(&record.target, &err)),
        }
    }
    if addresses.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "the SRV targets of {name} have no IPv6 address (AAAA record); publish one for \
                 the Stratum 0 of {domain}"
            ),
        ));
    }
    Ok(addresses)
}

fn dns_error(name: &Name, err: &NetError) -> Error {
    if err.is_no_records_found() || err.is_nx_domain() {
        Error::new(
            ErrorKind::InvalidConfig,
            format!("DNS has no records for {name}: {err}"),
        )
    } else if matches!(err, NetError::Timeout) {
        Error::new(ErrorKind::Timeout, format!("DNS lookup of {name}: {err}"))
    } else {
        Error::new(ErrorKind::Io, format!("DNS lookup of {name}: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv(priority: u16, weight: u16, target: &str) -> SrvTarget {
        SrvTarget {
            priority,
            weight,
            port: 6447,
            target: Name::from_ascii(target).unwrap(),
        }
    }

    fn targets(records: &[SrvTarget]) -> Vec<String> {
        records
            .iter()
            .map(|record| record.target.to_ascii())
            .collect()
    }

    /// A deterministic stand-in for the random source, cycling through `draws`.
    fn draws(draws: &[u64]) -> impl FnMut() -> u64 + '_ {
        let mut next = 0;
        move || {
            let draw = draws[next % draws.len()];
            next += 1;
            draw
        }
    }

    #[test]
    fn lower_priority_always_comes_first() {
        let records = vec![srv(20, 100, "b."), srv(10, 1, "a."), srv(30, 0, "c.")];
        for seed in 0..50 {
            let ordered = order_srv(records.clone(), &mut draws(&[seed, seed * 7 + 3]));
            assert_eq!(targets(&ordered), ["a.", "b.", "c."]);
        }
    }

    #[test]
    fn within_a_priority_the_draw_picks_by_running_weight() {
        // Weights 10 and 30: the running sums are 10 and 40, draws are taken modulo 41.
        let records = vec![srv(5, 10, "light."), srv(5, 30, "heavy.")];
        let first = |draw| targets(&order_srv(records.clone(), &mut draws(&[draw, 0])))[0].clone();
        assert_eq!(first(0), "light.");
        assert_eq!(first(10), "light.");
        assert_eq!(first(11), "heavy.");
        assert_eq!(first(40), "heavy.");
        assert_eq!(first(41), "light.", "41 mod 41 is 0");
    }

    #[test]
    fn weights_set_the_share_of_first_places() {
        let records = vec![srv(1, 1, "one."), srv(1, 3, "three."), srv(1, 0, "zero.")];
        let mut random = || discovery::nonce().expect("randomness");
        let mut firsts = std::collections::HashMap::<String, u32>::new();
        for _ in 0..4000 {
            let ordered = order_srv(records.clone(), &mut random);
            assert_eq!(ordered.len(), 3, "every record appears once");
            *firsts.entry(targets(&ordered)[0].clone()).or_default() += 1;
        }
        let share = |name: &str| f64::from(firsts.get(name).copied().unwrap_or(0)) / 4000.0;
        // Draws 0..=4: 0 picks the weight-0 record, 1 the weight-1 one, 2 to 4 the weight-3 one.
        assert!((share("three.") - 0.6).abs() < 0.05, "{firsts:?}");
        assert!((share("one.") - 0.2).abs() < 0.05, "{firsts:?}");
        assert!((share("zero.") - 0.2).abs() < 0.05, "{firsts:?}");
    }

    #[test]
    fn all_zero_weights_keep_every_record() {
        let records = vec![srv(1, 0, "a."), srv(1, 0, "b.")];
        let ordered = order_srv(records, &mut draws(&[12345]));
        assert_eq!(targets(&ordered), ["a.", "b."]);
    }

    #[test]
    fn srv_names_are_built_and_checked() {
        assert_eq!(
            srv_name("example.org").unwrap().to_ascii(),
            "_sixcast._udp.example.org."
        );
        assert_eq!(
            srv_name("example.org.").unwrap().to_ascii(),
            "_sixcast._udp.example.org."
        );
        for bad in ["", ".", "a..b", &"x".repeat(64)] {
            let err = srv_name(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad:?}");
            assert!(err.message().contains("domain"), "{}", err.message());
        }
    }

    #[test]
    fn dns_servers_parse_with_and_without_a_port() {
        assert_eq!(
            parse_dns_server("2001:db8::53").unwrap(),
            "[2001:db8::53]:53".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("[2001:db8::53]:5353").unwrap(),
            "[2001:db8::53]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_dns_server("127.0.0.53").unwrap(),
            "127.0.0.53:53".parse().unwrap()
        );
        let err = parse_dns_server("resolver.example").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }

    #[test]
    fn the_source_follows_the_documented_order() {
        let stratum0: SocketAddrV6 = "[2001:db8::1]:6447".parse().unwrap();
        let rp: Ipv6Addr = "2001:db8:5c::5".parse().unwrap();
        let mut config = Config::default();
        assert_eq!(Stratum0Source::of(&config), None, "nothing configured");
        config.profile = Profile::EmbeddedRp { rp, prefix_len: 64 };
        assert_eq!(
            Stratum0Source::of(&config),
            Some(Stratum0Source::EmbeddedRp(rp))
        );
        config.domain = Some("example.org".into());
        assert!(matches!(
            Stratum0Source::of(&config),
            Some(Stratum0Source::Dns { domain, server: None }) if domain == "example.org"
        ));
        config.stratum0 = Some(stratum0);
        assert_eq!(
            Stratum0Source::of(&config),
            Some(Stratum0Source::Configured(stratum0))
        );
        let found = Stratum0Source::EmbeddedRp(rp)
            .candidates(Duration::from_millis(1))
            .unwrap();
        assert_eq!(found, [SocketAddrV6::new(rp, STRATUM0_PORT, 0, 0)]);
    }
}
