//! How the commands that open a context (`listen`, `send`, `probe`, `perf`) and `addr` get their
//! settings: flags, then the configuration file's `[node]` table (`--config FILE`, see
//! [`settings`]), then the library's defaults.

use std::{net::SocketAddrV6, path::PathBuf};

use clap::Args;
use sixcast::{Config, Scope, addr};

use crate::{
    choices::{ProfileChoice, ScopeChoice},
    keys, settings,
};

/// How names map to addresses.
#[derive(Args, Clone)]
pub(super) struct Addressing {
    /// Addressing profile [default: sixcast].
    #[arg(long, value_enum)]
    profile: Option<ProfileChoice>,
    /// The rendezvous point of the embedded-rp profile, as ADDRESS/PREFIX-LENGTH.
    #[arg(long)]
    rp: Option<String>,
    /// Multicast scope [default: global].
    #[arg(long, value_enum)]
    scope: Option<ScopeChoice>,
}

impl Addressing {
    /// The profile and scope, from the flags, else `file`'s, else the defaults.
    pub(super) fn resolve(
        &self,
        file: &settings::NodeTable,
    ) -> sixcast::Result<(addr::Profile, Scope)> {
        let profile = settings::profile(self.profile, file.profile.as_deref())?
            .unwrap_or(ProfileChoice::Sixcast);
        let rp = self.rp.as_deref().or(file.rp.as_deref());
        let scope =
            settings::scope(self.scope, file.scope.as_deref())?.unwrap_or(ScopeChoice::Global);
        Ok((addr::parse_profile(profile.name(), rp)?, scope.into()))
    }
}

/// Options of commands that open a context.
#[derive(Args)]
pub(super) struct Network {
    /// A TOML file with the node's settings (its `[node]` table); flags given here win over it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    addressing: Addressing,
    /// Interface to join and send on (repeatable); default: every multicast interface.
    #[arg(long = "iface")]
    interfaces: Vec<String>,
    /// UDP port; default: the profile's port.
    #[arg(long)]
    port: Option<u16>,
    /// Hop limit of sent datagrams [default: 64].
    #[arg(long = "hops")]
    hop_limit: Option<u8>,
    /// The largest UDP payload sent, in bytes [default: 1232, which every IPv6 path carries];
    /// 1452 fills an Ethernet MTU of 1500, 8952 a jumbo MTU of 9000. Every node of a channel
    /// must receive what its senders send: receivers accept up to 65507 whatever this says.
    #[arg(long, value_name = "BYTES")]
    datagram_size: Option<usize>,
    /// Do not loop sent datagrams back to other listeners on this host.
    #[arg(long)]
    no_loopback: bool,
    /// Messages per second this node sends at most (sending waits beyond it); default: no
    /// limit. Receivers that cannot keep up with an unpaced sender lose what overflows.
    #[arg(long = "send-rate", value_name = "MESSAGES_PER_SEC")]
    send_rate_messages: Option<u64>,
    /// Payload bytes per second this node sends at most; default: no limit.
    #[arg(long = "send-byte-rate", value_name = "BYTES_PER_SEC")]
    send_rate_bytes: Option<u64>,
    /// Send reliably: receivers put this node's messages in order and have what they miss
    /// repaired (NACKs and parity); what cannot be repaired in time is reported lost. Every
    /// node receives reliable senders without this flag.
    #[arg(long)]
    reliable: bool,
    /// The core's Stratum 0, ADDRESS:PORT: reach the core through a relay where native
    /// multicast does not.
    #[arg(long)]
    stratum0: Option<SocketAddrV6>,
    /// Find Stratum 0 from the `_sixcast._udp.DOMAIN` SRV records (when --stratum0 is not given).
    #[arg(long)]
    domain: Option<String>,
    /// The DNS server to ask for --domain, ADDRESS or [ADDRESS]:PORT; default: the system's.
    #[arg(long, value_name = "SERVER")]
    dns_server: Option<String>,
    /// Public key file of a relay identity (FILE.pub of the relay's `--identity`): tunnel only
    /// through relays that prove a pinned identity. Repeatable.
    #[arg(long = "relay-key", value_name = "PUBKEY_FILE")]
    relay_keys: Vec<PathBuf>,
    /// Public key file of a relay voucher issuer (`sixcast voucher --issuer`): also tunnel
    /// through relays that present an unexpired voucher of this issuer. Repeatable.
    #[arg(long = "relay-issuer", value_name = "PUBKEY_FILE")]
    relay_issuers: Vec<PathBuf>,
}

impl Network {
    /// The context's configuration: the flags, else the file's `[node]` table, else the
    /// library's defaults.
    pub(super) fn config(&self) -> sixcast::Result<Config> {
        let file = settings::read(self.config.as_deref())?.node;
        let (profile, scope) = self.addressing.resolve(&file)?;
        let mut config = Config::default();
        config.profile = profile;
        config.scope = scope;
        config.interfaces = settings::list(&self.interfaces, file.interfaces);
        config.port = self.port.or(file.port);
        config.loopback = !self.no_loopback && file.loopback.unwrap_or(true);
        if let Some(hop_limit) = self.hop_limit.or(file.hops) {
            config.hop_limit = hop_limit;
        }
        if let Some(size) = self.datagram_size.or(file.datagram_size) {
            config.max_datagram_size = size;
        }
        if let Some(rate) = self.send_rate_messages.or(file.send_rate_messages) {
            config.send_rate_messages = rate;
        }
        if let Some(rate) = self.send_rate_bytes.or(file.send_rate_bytes) {
            config.send_rate_bytes = rate;
        }
        config.reliable = self.reliable || file.reliable.unwrap_or(false);
        config.stratum0 = self.stratum0.or(file.stratum0);
        config.domain = self.domain.clone().or(file.domain);
        config.dns_server = self
            .dns_server
            .as_deref()
            .or(file.dns_server.as_deref())
            .map(sixcast::locate::parse_dns_server)
            .transpose()?;
        config.relay_keys = keys::public_keys(&settings::list(&self.relay_keys, file.relay_keys))?;
        config.relay_issuers =
            keys::public_keys(&settings::list(&self.relay_issuers, file.relay_issuers))?;
        config.validate()?;
        Ok(config)
    }
}
