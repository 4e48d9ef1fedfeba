//! Where a node's Stratum 0 is: configured explicitly, published in DNS as SRV records, or the
//! rendezvous point embedded in an embedded-RP group (see `docs/reachability.md`, section 1).
//!
//! The order is fixed: an explicit [`Config::stratum0`](crate::Config::stratum0) wins;
//! otherwise the SRV records of `_sixcast._udp.<domain>`
//! ([`Config::domain`](crate::Config::domain)); otherwise, for the embedded-RP profile, the RP
//! its groups carry, at [`STRATUM0_PORT`]. DNS answers are ordered as RFC 2782 says: lowest
//! priority first, and within one priority a random order weighted by the records' weights.
//!
//! DNS lookups need the `dns` feature (hickory-resolver on a Tokio runtime of its own, built
//! only for the lookup); without it, a configured domain fails with
//! [`ErrorKind::Unsupported`], and the library pulls in no async runtime.

use std::{
    net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6},
    time::Duration,
};

use crate::{
    addr::{self, Profile},
    discovery::STRATUM0_PORT,
    error::{Error, ErrorKind, Result},
};

#[cfg(feature = "dns")]
mod dns;

#[cfg(feature = "dns")]
pub use dns::{srv_lookup, srv_name};

/// The service label of the SRV records a domain publishes its Stratum 0 under.
pub const SRV_SERVICE: &str = "_sixcast._udp";

/// The DNS port a bare server address means.
pub const DNS_PORT: u16 = 53;

/// Where a node's Stratum 0 comes from, chosen from a [`Config`](crate::Config) by
/// [`Config::stratum0_source`](crate::Config::stratum0_source).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stratum0Source {
    /// [`Config::stratum0`](crate::Config::stratum0).
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
pub(crate) fn embedded_rp_of(profile: &Profile, scope: addr::Scope) -> Option<Ipv6Addr> {
    if !matches!(profile, Profile::EmbeddedRp { .. }) {
        return None;
    }
    let group = addr::group_addr(b"sixcast/stratum0", profile, scope).ok()?;
    addr::embedded_rp(group)
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

/// Checks a domain the way a DNS lookup will use it.
pub(crate) fn check_domain(domain: &str) -> Result<()> {
    #[cfg(feature = "dns")]
    return srv_name(domain).map(drop);
    #[cfg(not(feature = "dns"))]
    return Err(without_dns(domain));
}

/// Without the `dns` feature, a domain cannot be looked up.
#[cfg(not(feature = "dns"))]
fn srv_lookup(
    domain: &str,
    _server: Option<SocketAddr>,
    _within: Duration,
) -> Result<Vec<SocketAddrV6>> {
    Err(without_dns(domain))
}

#[cfg(not(feature = "dns"))]
fn without_dns(domain: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!(
            "domain {domain:?}: this build of sixcast finds no Stratum 0 in DNS (the `dns` feature \
             is off); set stratum0 instead"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

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
        assert_eq!(config.stratum0_source(), None, "nothing configured");
        config.profile = Profile::EmbeddedRp { rp, prefix_len: 64 };
        assert_eq!(
            config.stratum0_source(),
            Some(Stratum0Source::EmbeddedRp(rp))
        );
        config.domain = Some("example.org".into());
        assert!(matches!(
            config.stratum0_source(),
            Some(Stratum0Source::Dns { domain, server: None }) if domain == "example.org"
        ));
        config.stratum0 = Some(stratum0);
        assert_eq!(
            config.stratum0_source(),
            Some(Stratum0Source::Configured(stratum0))
        );
        let found = Stratum0Source::EmbeddedRp(rp)
            .candidates(Duration::from_millis(1))
            .unwrap();
        assert_eq!(found, [SocketAddrV6::new(rp, STRATUM0_PORT, 0, 0)]);
    }

    #[cfg(not(feature = "dns"))]
    #[test]
    fn without_dns_a_domain_is_unsupported_with_a_way_out() {
        let err = check_domain("example.org").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.message().contains("stratum0"), "{}", err.message());
        let source = Stratum0Source::Dns {
            domain: "example.org".into(),
            server: None,
        };
        let err = source.candidates(Duration::from_millis(1)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
    }
}
