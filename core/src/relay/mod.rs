//! The relay: a process on the multicast core that carries channel traffic to and from nodes
//! whose network does not route multicast, through UDP tunnels (see `docs/reachability.md`).
//!
//! The relay knows nothing of channels, only groups: a tunnel client JOINs the groups it wants
//! (a channel's group and its relayed twin), the relay joins them natively on the core and
//! forwards what arrives there to every client joined to the group. What a client sends up is
//! multicast on the core to the group the client names (its relayed twin) and passed to the
//! relay's other clients of that group, never back to the sender. Before a client has proven
//! it receives at its address (the CHALLENGE's MAC echoed in JOIN) the relay sends it nothing
//! larger than what it received; it caps clients and groups, and rate-limits what each
//! verified client sends (token buckets: [`RelayConfig::client_datagrams_per_sec`] and the
//! fields beside it).

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use sixcast_proto::relay::{TunnelLimits, Tunnels};
use tracing::debug;

use crate::{
    addr::{self, Scope},
    crypto::{SigningKey, Token},
    discovery::{self, CONTROL_PORT, RELAY_PORT, Secrets, ThreadBody, start_threads},
    error::{Error, ErrorKind, Result},
    ratelimit::{ClientLimits, Rates, TokenBucket},
    socket::{self, Interface, McastSocket, SocketOptions, Waker},
    wire::control::MAX_GROUPS_PER_MESSAGE,
};

mod clients;
mod forward;

/// Settings of a [`Relay`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RelayConfig {
    /// Address and port to accept tunnels on.
    pub listen: SocketAddrV6,
    /// Core interfaces to join and multicast on; empty means every multicast interface.
    pub interfaces: Vec<String>,
    /// Scope of the relay group that Stratum 0 solicits on.
    pub scope: Scope,
    /// UDP port of channel traffic on the core.
    pub data_port: u16,
    /// Hop limit of what the relay multicasts on the core.
    pub hop_limit: u8,
    /// Most tunnel clients served at once; more are refused (the LIMIT flag).
    pub max_tunnels: usize,
    /// Most groups one client may join.
    pub max_groups_per_tunnel: usize,
    /// How often clients must refresh their joins; a client silent for three intervals is
    /// dropped.
    pub refresh: Duration,
    /// Serve as an SSM repeater instead of a relay: re-send the groups clients join as
    /// source-specific multicast from this host (to [`addr::repeated_addr`]), take what clients
    /// send to their own repeated groups, and answer them by SSM too (docs/reachability.md,
    /// section 7). For networks that route SSM but not any-source multicast.
    pub ssm_repeater: bool,
    /// Most datagrams per second one verified client may send up its tunnel (DATA); more are
    /// dropped and counted as `throttled`. Bursts of one second's worth pass. 0: no limit.
    pub client_datagrams_per_sec: u64,
    /// Most datagram bytes per second one verified client may send up its tunnel; more are
    /// dropped and counted as `throttled`. Bursts of one second's worth (at least one largest
    /// datagram) pass. 0: no limit.
    pub client_bytes_per_sec: u64,
    /// Most control messages (JOIN, LEAVE, KEEPALIVE) per second from one verified client; more
    /// are dropped unanswered and counted as `throttled_control`. 0: no limit.
    pub client_control_per_sec: u64,
    /// The relay's identity key: with one, the relay answers SIGNED_HELLO with a
    /// SIGNED_CHALLENGE signed by it, so that nodes that pinned its public key accept it. Without
    /// one, SIGNED_HELLOs are dropped (counted as `rejected`).
    pub identity: Option<SigningKey>,
    /// Most SIGNED_CHALLENGEs per second the relay signs, whoever asks: each costs an Ed25519
    /// signature, and SIGNED_HELLOs come from addresses not yet verified, so no per-client limit
    /// can apply. More are dropped unanswered and counted as `throttled_control`; bursts of one
    /// second's worth pass. 0: no limit.
    pub signed_challenges_per_sec: u64,
    /// A voucher for the identity key: a capability token of Stratum 0's operator (the issuer)
    /// whose subject is the identity's public key and whose group is the relay group of
    /// `scope`. Presented in every SIGNED_CHALLENGE, so that nodes trusting the issuer accept
    /// this relay without pinning its key. Needs `identity`.
    pub voucher: Option<Token>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, RELAY_PORT, 0, 0),
            interfaces: Vec::new(),
            scope: Scope::Global,
            data_port: addr::DEFAULT_PORT,
            hop_limit: addr::DEFAULT_HOP_LIMIT,
            max_tunnels: 1024,
            max_groups_per_tunnel: MAX_GROUPS_PER_MESSAGE,
            refresh: Duration::from_secs(10),
            ssm_repeater: false,
            client_datagrams_per_sec: 10_000,
            client_bytes_per_sec: 16 << 20,
            client_control_per_sec: 50,
            signed_challenges_per_sec: 1000,
            identity: None,
            voucher: None,
        }
    }
}

/// Counters of a [`Relay`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayStats {
    /// Tunnel clients now served.
    pub tunnels: u64,
    /// Offers sent in answer to Stratum 0's solicitations.
    pub offers: u64,
    /// Challenges sent to HELLOs and SIGNED_HELLOs.
    pub challenges: u64,
    /// JOINs refused: a MAC that does not match, or no room for another client.
    pub refused: u64,
    /// Datagrams forwarded from the core down tunnels (once per client).
    pub datagrams_down: u64,
    /// Datagrams received up tunnels and passed on.
    pub datagrams_up: u64,
    /// Payload bytes forwarded down tunnels.
    pub bytes_down: u64,
    /// Payload bytes received up tunnels.
    pub bytes_up: u64,
    /// Datagrams dropped: malformed, from unknown clients, or messages a relay does not take.
    pub rejected: u64,
    /// Tunnels moved to a client's new address after a NAT rebinding (proven by REBIND).
    pub rebinds: u64,
    /// Datagrams from verified clients dropped for exceeding their datagram or byte rate.
    pub throttled: u64,
    /// Control messages from verified clients dropped for exceeding their control rate.
    pub throttled_control: u64,
}

/// DATA messages for tunnel clients, gathered over one receive batch of the core and sent with
/// one `sendmmsg` per batch where the platform has it (a client's run of equal-sized datagrams,
/// the fragments of one message, as one UDP GSO datagram).
#[derive(Default)]
struct Downstream {
    /// Each DATA message once, with the length of the datagram it carries.
    messages: Vec<(Vec<u8>, usize)>,
    /// Which message goes to which client.
    sends: Vec<(usize, SocketAddrV6)>,
}

impl Downstream {
    /// Sends queued beyond this go at once, so that many clients keep the queue short.
    const FLUSH_AT: usize = 256;
}

#[derive(Default)]
struct RelayCounters {
    offers: AtomicU64,
    challenges: AtomicU64,
    refused: AtomicU64,
    datagrams_down: AtomicU64,
    datagrams_up: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
    rejected: AtomicU64,
    rebinds: AtomicU64,
    throttled: AtomicU64,
    throttled_control: AtomicU64,
}

fn add(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// A relay service. Runs on background threads until [`close`](Self::close) or drop.
pub struct Relay {
    service: Arc<RelayService>,
    threads: Vec<JoinHandle<()>>,
}

struct RelayService {
    /// The settings at spawn. Those that [`Relay::reload`] changes are read from `policy`.
    config: RelayConfig,
    policy: Mutex<Arc<Policy>>,
    interfaces: Vec<Interface>,
    /// Tunnel control and data, unicast.
    tunnels_socket: McastSocket,
    /// Channel traffic on the core.
    core: McastSocket,
    /// Stratum 0's solicitations on the relay group.
    solicitations: McastSocket,
    state: Mutex<Tunnels>,
    secrets: Mutex<Secrets>,
    /// The budget of SIGNED_CHALLENGEs ([`RelayConfig::signed_challenges_per_sec`]).
    signing: Mutex<TokenBucket>,
    counters: RelayCounters,
    waker: Waker,
    closed: AtomicBool,
}

/// The settings of a running relay that [`Relay::reload`] changes: its limits and its keys.
struct Policy {
    limits: TunnelLimits,
    refresh: Duration,
    identity: Option<SigningKey>,
    voucher: Option<Token>,
}

impl Policy {
    fn of(config: &RelayConfig) -> Self {
        Self {
            limits: TunnelLimits {
                max_tunnels: config.max_tunnels,
                max_groups_per_tunnel: config.max_groups_per_tunnel,
                rates: Rates {
                    datagrams: config.client_datagrams_per_sec,
                    bytes: config.client_bytes_per_sec,
                    control: config.client_control_per_sec,
                },
            },
            refresh: config.refresh,
            identity: config.identity.clone(),
            voucher: config.voucher,
        }
    }
}

impl Relay {
    /// Binds the relay's sockets, joins the relay group and starts serving.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] for a voucher without an identity, or one that is
    /// not for the identity's key and the relay group.
    pub fn spawn(config: RelayConfig) -> Result<Self> {
        check_voucher(&config)?;
        // First, so that a failing random number generator opens no socket.
        let secrets = Secrets::new(Instant::now())?;
        let interfaces = socket::select_interfaces(&config.interfaces)?;
        let options = |address, port, loopback| SocketOptions {
            address,
            port,
            hop_limit: config.hop_limit,
            loopback,
            recv_buffer: 8 << 20,
        };
        let tunnels_socket =
            McastSocket::bind(&options(*config.listen.ip(), config.listen.port(), false))?;
        // The relay must not hear its own injections back, or it would forward them twice.
        let core = McastSocket::bind(&options(Ipv6Addr::UNSPECIFIED, config.data_port, false))?;
        let solicitations =
            McastSocket::bind(&options(Ipv6Addr::UNSPECIFIED, CONTROL_PORT, false))?;
        for interface in &interfaces {
            solicitations.join(discovery::relay_group(config.scope), interface)?;
        }
        let signing = signing_budget(&config, Instant::now());
        let service = Arc::new(RelayService {
            policy: Mutex::new(Arc::new(Policy::of(&config))),
            config,
            interfaces,
            tunnels_socket,
            core,
            solicitations,
            state: Mutex::default(),
            secrets: Mutex::new(secrets),
            signing: Mutex::new(signing),
            counters: RelayCounters::default(),
            waker: Waker::new()?,
            closed: AtomicBool::new(false),
        });
        let bodies: [ThreadBody<RelayService>; 3] = [
            ("sixcast-relay", RelayService::tunnel_loop),
            ("sixcast-relay-core", RelayService::core_loop),
            ("sixcast-relay-offers", RelayService::offer_loop),
        ];
        let threads = start_threads(&service, &bodies, RelayService::shutdown)?;
        debug!(listen = %service.config.listen, "relay started");
        Ok(Self { service, threads })
    }

    /// The port tunnels are accepted on.
    pub fn port(&self) -> u16 {
        self.service.tunnels_socket.port()
    }

    /// The relay's counters.
    pub fn stats(&self) -> RelayStats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = &self.service.counters;
        RelayStats {
            tunnels: self.service.state.lock().clients.len() as u64,
            offers: get(&counters.offers),
            challenges: get(&counters.challenges),
            refused: get(&counters.refused),
            datagrams_down: get(&counters.datagrams_down),
            datagrams_up: get(&counters.datagrams_up),
            bytes_down: get(&counters.bytes_down),
            bytes_up: get(&counters.bytes_up),
            rejected: get(&counters.rejected),
            rebinds: get(&counters.rebinds),
            throttled: get(&counters.throttled),
            throttled_control: get(&counters.throttled_control),
        }
    }

    /// Applies `config`'s limits and keys to the running relay: `max_tunnels`,
    /// `max_groups_per_tunnel`, `refresh`, the per-client rates (for clients already served
    /// too, whose buckets start full), `signed_challenges_per_sec`, `identity` and `voucher`.
    /// Clients beyond a lowered `max_tunnels` stay; new ones are refused until there is room.
    ///
    /// Returns the names of `config`'s settings that differ from the running relay's but take
    /// effect only at a restart (its sockets and role: `listen`, `interfaces`, `scope`,
    /// `data_port`, `hop_limit`, `ssm_repeater`). Fails with [`ErrorKind::InvalidConfig`], and
    /// changes nothing, for a voucher that [`spawn`](Self::spawn) would refuse.
    pub fn reload(&self, config: &RelayConfig) -> Result<Vec<&'static str>> {
        check_voucher(config)?;
        let running = &self.service.config;
        let fixed = [
            ("listen", running.listen != config.listen),
            ("interfaces", running.interfaces != config.interfaces),
            ("scope", running.scope != config.scope),
            ("data_port", running.data_port != config.data_port),
            ("hop_limit", running.hop_limit != config.hop_limit),
            ("ssm_repeater", running.ssm_repeater != config.ssm_repeater),
        ];
        let policy = Policy::of(config);
        let now = Instant::now();
        for client in self.service.state.lock().clients.values_mut() {
            client.limits = ClientLimits::new(policy.limits.rates, now);
        }
        *self.service.signing.lock() = signing_budget(config, now);
        *self.service.policy.lock() = Arc::new(policy);
        debug!("relay reloaded its limits and keys");
        Ok(fixed
            .into_iter()
            .filter_map(|(name, differs)| differs.then_some(name))
            .collect())
    }

    /// Stops the relay: tells every tunnel client that its tunnel is closing (a TEARDOWN with
    /// the tunnel's credentials), so that it fails over to a spare at once instead of after
    /// seconds of silence, and drops every tunnel. Closing twice is harmless.
    pub fn close(&mut self) {
        if !self.service.closed.load(Ordering::Acquire) {
            self.service.close_tunnels();
        }
        self.service.shutdown();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// The budget of SIGNED_CHALLENGEs of `config`: one second's worth, refilled at the rate.
fn signing_budget(config: &RelayConfig, now: Instant) -> TokenBucket {
    let rate = config.signed_challenges_per_sec;
    TokenBucket::new(rate, rate, now)
}

/// A voucher must name the relay's identity key and the relay group it solicits on.
fn check_voucher(config: &RelayConfig) -> Result<()> {
    let Some(voucher) = &config.voucher else {
        return Ok(());
    };
    let invalid = |message: String| Err(Error::new(ErrorKind::InvalidConfig, message));
    let Some(identity) = &config.identity else {
        return invalid("a relay voucher needs the identity key it vouches for".into());
    };
    if voucher.subject() != identity.public_key() {
        return invalid(format!(
            "the voucher is for key {}, not this relay's identity {}",
            voucher.subject().fingerprint(),
            identity.public_key().fingerprint()
        ));
    }
    let group = discovery::relay_group(config.scope);
    if voucher.group() != group {
        return invalid(format!(
            "the voucher is for {}, not the relay group {group} of this relay's scope",
            voucher.group()
        ));
    }
    Ok(())
}

impl RelayService {
    /// The limits and keys in force now.
    fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.lock())
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn config_with(identity: Option<u8>, voucher_for: (u8, Ipv6Addr)) -> RelayConfig {
        let issuer = SigningKey::from_seed([9; 32]);
        let subject = SigningKey::from_seed([voucher_for.0; 32]).public_key();
        let not_after = SystemTime::now() + Duration::from_secs(60);
        RelayConfig {
            identity: identity.map(|seed| SigningKey::from_seed([seed; 32])),
            voucher: Some(Token::issue(&issuer, subject, voucher_for.1, not_after)),
            ..RelayConfig::default()
        }
    }

    #[test]
    fn a_voucher_must_be_for_the_identity_key_and_the_relay_group() {
        let group = discovery::relay_group(Scope::Global);
        check_voucher(&config_with(Some(1), (1, group))).unwrap();
        let cases = [
            (config_with(None, (1, group)), "needs the identity"),
            (
                config_with(Some(2), (1, group)),
                "not this relay's identity",
            ),
            (
                config_with(Some(1), (1, discovery::relay_group(Scope::Site))),
                "not the relay group",
            ),
        ];
        for (config, says) in cases {
            let err = check_voucher(&config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            assert!(err.message().contains(says), "{err}");
            assert!(Relay::spawn(config).is_err());
        }
    }
}
