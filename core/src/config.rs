//! Configuration of a [`Context`](crate::Context).

use std::{
    net::{SocketAddr, SocketAddrV6},
    time::Duration,
};

pub use crate::addr::DEFAULT_HOP_LIMIT;
use crate::{
    addr::{Profile, Scope},
    crypto::PublicKey,
    error::{Error, ErrorKind, Result},
    locate::{self, Stratum0Source},
    reliable::{RELIABLE_OVERHEAD, RepairConfig},
    wire,
};

/// How long a partly filled datagram may wait for more messages before it is sent.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(1);

/// How many received messages a channel holds for the application before it drops new ones.
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
/// Default [`Config::queue_bytes`]: 64 MiB per channel.
pub const DEFAULT_QUEUE_BYTES: usize = 64 << 20;

/// The kernel receive buffer requested for the context's socket.
pub const DEFAULT_RECV_BUFFER: usize = 8 << 20;

/// Settings of a [`Context`](crate::Context). Start from [`Config::default`] and change fields:
///
/// ```
/// let mut config = sixcast::Config::default();
/// config.scope = sixcast::Scope::Site;
/// config.hop_limit = 8;
/// config.validate()?;
/// # Ok::<(), sixcast::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// How channel names map to groups and whether datagrams carry the sixcast header.
    pub profile: Profile,
    /// The multicast scope of channel groups.
    pub scope: Scope,
    /// The UDP port; `None` means the profile's default port.
    pub port: Option<u16>,
    /// Interfaces (by name) to join and send on; empty means every interface that is up and can
    /// carry multicast, except loopback.
    pub interfaces: Vec<String>,
    /// Hop limit of sent datagrams (1 keeps them on the link).
    pub hop_limit: u8,
    /// Whether other sockets of this host receive what this context sends. A context never
    /// delivers its own messages to itself either way.
    pub loopback: bool,
    /// Largest UDP payload sent, in bytes. The default fits the IPv6 minimum MTU of 1280 bytes.
    pub max_datagram_size: usize,
    /// Largest message accepted by `send` and reassembled on receipt.
    pub max_message_size: usize,
    /// How long sent messages may wait to leave together: small ones packed into shared
    /// datagrams, datagrams handed to the kernel in batches. After a linger without sending, the
    /// next complete datagram leaves at once; zero sends every message at once.
    pub linger: Duration,
    /// Whether small messages share datagrams. Off, every message leaves in datagrams of its own
    /// (still batched within the linger), so that a lost datagram costs one message only; the
    /// receivers then pay per message what they would pay per datagram.
    pub packing: bool,
    /// Received messages held per channel until the application takes them.
    pub queue_capacity: usize,
    /// Payload bytes held per channel until the application takes them; what arrives beyond
    /// either bound is dropped and counted as `queue_overflow`. A message larger than this
    /// still fits an empty queue.
    pub queue_bytes: usize,
    /// Kernel receive buffer size requested for the socket, in bytes.
    pub recv_buffer: usize,
    /// Messages per second the context sends at most, over all its channels; `send` waits for
    /// its turn beyond that (after a burst of 10 ms worth). 0: no limit. Receivers that cannot
    /// keep up with an unpaced sender lose what overflows their buffers.
    pub send_rate_messages: u64,
    /// Payload bytes per second the context sends at most, like `send_rate_messages`. 0: no
    /// limit.
    pub send_rate_bytes: u64,
    /// Whether the context's channels send reliably: receivers put each sender's datagrams in
    /// order, ask for what they miss, and are repaired with parity (see [`crate::reliable`]);
    /// what cannot be repaired in time is reported lost, never skipped in silence. Every
    /// context receives reliable channels whatever this says. Datagrams then carry
    /// [`RELIABLE_OVERHEAD`] bytes less of messages. Needs a profile with the sixcast header.
    pub reliable: bool,
    /// Sizes and timers of reliable channels' repair.
    pub repair: RepairConfig,
    /// How long the pieces of a fragmented message are kept while waiting for the rest.
    pub reassembly_timeout: Duration,
    /// Upper bound on memory held by partly received messages, per channel, in bytes.
    pub reassembly_memory: usize,
    /// The Stratum 0 service of the multicast core. When set, the context probes whether
    /// native multicast reaches the core both ways and, where it does not, carries its channels
    /// through a relay.
    pub stratum0: Option<SocketAddrV6>,
    /// A DNS domain whose `_sixcast._udp.<domain>` SRV records name the core's Stratum 0, used
    /// when `stratum0` is not set (see [`crate::locate`] for the order of the sources). Needs
    /// the `dns` feature; without it, [`validate`](Self::validate) fails with `Unsupported`.
    pub domain: Option<String>,
    /// The DNS server asked for `domain`'s records; `None` means the system's resolvers.
    pub dns_server: Option<SocketAddr>,
    /// How long a probe of native reachability may take.
    pub probe_timeout: Duration,
    /// How often the probe is repeated once a path is settled: a node on a tunnel moves back to
    /// native multicast when it starts working both ways.
    pub probe_interval: Duration,
    /// Pinned relay identity keys (the ones Stratum 0's operator vouches for). When any is set,
    /// the context tunnels only through a relay that signs its challenge with one of them, and
    /// takes no SSM repeater service (a repeater cannot prove who sends); refused relays are
    /// counted in [`Reachability::rejected_relays`](crate::Reachability::rejected_relays).
    /// Empty (and no `relay_issuers`): any relay that answers.
    pub relay_keys: Vec<PublicKey>,
    /// Trusted issuers of relay vouchers (Stratum 0's operator): a relay whose identity key has
    /// an unexpired voucher of one of them for the relay group is accepted as if its key were
    /// in `relay_keys`. Setting any has the effects of pinning.
    pub relay_issuers: Vec<PublicKey>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::default(),
            scope: Scope::default(),
            port: None,
            interfaces: Vec::new(),
            hop_limit: DEFAULT_HOP_LIMIT,
            loopback: true,
            max_datagram_size: wire::DEFAULT_DATAGRAM_SIZE,
            max_message_size: wire::DEFAULT_MAX_MESSAGE_SIZE,
            linger: DEFAULT_LINGER,
            packing: true,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            queue_bytes: DEFAULT_QUEUE_BYTES,
            recv_buffer: DEFAULT_RECV_BUFFER,
            send_rate_messages: 0,
            send_rate_bytes: 0,
            reliable: false,
            repair: RepairConfig::default(),
            reassembly_timeout: Duration::from_secs(5),
            reassembly_memory: 32 << 20,
            stratum0: None,
            domain: None,
            dns_server: None,
            probe_timeout: Duration::from_secs(2),
            probe_interval: Duration::from_secs(30),
            relay_keys: Vec::new(),
            relay_issuers: Vec::new(),
        }
    }
}

impl Config {
    /// Where a context with this configuration finds Stratum 0, in the documented order (see
    /// [`crate::locate`]), or `None` when it names none (the context then stays native only).
    pub fn stratum0_source(&self) -> Option<Stratum0Source> {
        if let Some(stratum0) = self.stratum0 {
            return Some(Stratum0Source::Configured(stratum0));
        }
        if let Some(domain) = &self.domain {
            return Some(Stratum0Source::Dns {
                domain: domain.clone(),
                server: self.dns_server,
            });
        }
        locate::embedded_rp_of(&self.profile, self.scope).map(Stratum0Source::EmbeddedRp)
    }

    /// The UDP port in effect: the configured one or the profile's default.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.profile.default_port())
    }

    /// The size of the datagrams messages are packed into: [`max_datagram_size`], less
    /// [`RELIABLE_OVERHEAD`] on a reliable context.
    ///
    /// [`max_datagram_size`]: Self::max_datagram_size
    pub fn packed_datagram_size(&self) -> usize {
        if self.reliable {
            self.max_datagram_size.saturating_sub(RELIABLE_OVERHEAD)
        } else {
            self.max_datagram_size
        }
    }

    /// Checks every field, returning an [`ErrorKind::InvalidConfig`] error that names the field.
    pub fn validate(&self) -> Result<()> {
        self.profile.validate()?;
        let invalid = |message: String| Err(Error::new(ErrorKind::InvalidConfig, message));
        if self.port == Some(0) {
            return invalid(
                "port 0 is not a usable UDP port; leave it unset for the default".into(),
            );
        }
        if self.hop_limit == 0 {
            return invalid("hop_limit 0 would never leave the host; use 1 or more".into());
        }
        let datagram_range = wire::MIN_DATAGRAM_SIZE..=wire::MAX_DATAGRAM_SIZE;
        if !datagram_range.contains(&self.max_datagram_size) {
            return invalid(format!(
                "max_datagram_size {} is outside {}..={} bytes",
                self.max_datagram_size,
                datagram_range.start(),
                datagram_range.end()
            ));
        }
        if self.max_message_size > wire::MAX_MESSAGE_SIZE_LIMIT {
            return invalid(format!(
                "max_message_size {} exceeds the protocol limit of {} bytes",
                self.max_message_size,
                wire::MAX_MESSAGE_SIZE_LIMIT
            ));
        }
        if self.reliable && !self.profile.has_header() {
            return invalid(format!(
                "reliable channels need the sixcast header, which the {} profile does not carry",
                self.profile.name()
            ));
        }
        // The packer knows which size pairs the fragment format can carry.
        wire::Packer::new(
            wire::NodeId(0),
            self.packed_datagram_size(),
            self.max_message_size,
        )?;
        if self.queue_capacity == 0 {
            return invalid("queue_capacity must be at least 1 message".into());
        }
        if self.queue_bytes == 0 {
            return invalid("queue_bytes must be at least 1 byte".into());
        }
        if self.reassembly_memory < self.max_message_size {
            return invalid(format!(
                "reassembly_memory ({} bytes) must hold at least one message of max_message_size ({} bytes)",
                self.reassembly_memory, self.max_message_size
            ));
        }
        if self.reassembly_timeout.is_zero() {
            return invalid("reassembly_timeout must be longer than zero".into());
        }
        if self.probe_timeout.is_zero() {
            return invalid("probe_timeout must be longer than zero".into());
        }
        if self.probe_interval < self.probe_timeout {
            return invalid(format!(
                "probe_interval ({:?}) must be at least probe_timeout ({:?})",
                self.probe_interval, self.probe_timeout
            ));
        }
        if let Some(stratum0) = self.stratum0
            && (stratum0.port() == 0
                || stratum0.ip().is_unspecified()
                || stratum0.ip().is_multicast())
        {
            return invalid(format!(
                "stratum0 {stratum0} is not a unicast address and port; give the core's Stratum 0"
            ));
        }
        if let Some(domain) = &self.domain {
            locate::check_domain(domain)?;
        }
        if let Some(server) = self.dns_server {
            if self.domain.is_none() {
                return invalid(format!(
                    "dns_server {server} is only asked for a domain's SRV records; set domain too"
                ));
            }
            if server.port() == 0 || server.ip().is_unspecified() || server.ip().is_multicast() {
                return invalid(format!(
                    "dns_server {server} is not a unicast address and port"
                ));
            }
        }
        if let Some(empty) = self.interfaces.iter().find(|name| name.is_empty()) {
            return invalid(format!("interface name {empty:?} is empty"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        Config::default().validate().unwrap();
        assert_eq!(
            Config::default().effective_port(),
            crate::addr::DEFAULT_PORT
        );
    }

    /// A change that makes a configuration invalid, and the field its error must name.
    type BadChange = (fn(&mut Config), &'static str);

    #[test]
    fn bad_values_name_the_field() {
        #[cfg_attr(not(feature = "dns"), allow(unused_mut))]
        let mut cases: Vec<BadChange> = vec![
            (|c| c.port = Some(0), "port"),
            (|c| c.hop_limit = 0, "hop_limit"),
            (|c| c.max_datagram_size = 10, "max_datagram_size"),
            (|c| c.max_datagram_size = 70_000, "max_datagram_size"),
            (|c| c.max_message_size = usize::MAX, "max_message_size"),
            (|c| c.queue_capacity = 0, "queue_capacity"),
            (|c| c.queue_bytes = 0, "queue_bytes"),
            (|c| c.reassembly_memory = 1, "reassembly_memory"),
            (
                |c| c.reassembly_timeout = Duration::ZERO,
                "reassembly_timeout",
            ),
            (|c| c.interfaces = vec![String::new()], "interface"),
            (|c| c.probe_timeout = Duration::ZERO, "probe_timeout"),
            (
                |c| c.probe_interval = Duration::from_millis(10),
                "probe_interval",
            ),
            (
                |c| c.stratum0 = Some("[ff1e::1]:6447".parse().unwrap()),
                "stratum0",
            ),
            (
                |c| c.dns_server = Some("[2001:db8::53]:53".parse().unwrap()),
                "dns_server",
            ),
        ];
        // Domains are checked as DNS names only where DNS is built in (else: Unsupported).
        #[cfg(feature = "dns")]
        cases.extend::<[BadChange; 3]>([
            (|c| c.domain = Some(String::new()), "domain"),
            (|c| c.domain = Some("a..b".into()), "domain"),
            (
                |c| {
                    c.domain = Some("example.org".into());
                    c.dns_server = Some("[::]:53".parse().unwrap());
                },
                "dns_server",
            ),
        ]);
        for (change, field) in cases {
            let mut config = Config::default();
            change(&mut config);
            let err = config.validate().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{field}");
            assert!(err.message().contains(field), "{field}: {}", err.message());
        }
    }
}
