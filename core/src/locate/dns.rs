//! The DNS lookup of Stratum 0's SRV records (feature `dns`): hickory-resolver on a
//! current-thread Tokio runtime built for the lookup and dropped after it.

use std::{
    net::{SocketAddr, SocketAddrV6},
    time::Duration,
};

use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig},
    net::{NetError, runtime::TokioRuntimeProvider},
    proto::rr::{Name, RData},
};

use super::SRV_SERVICE;
use crate::{
    discovery,
    error::{Error, ErrorKind, Result},
};

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
}
