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
    cell::RefCell,
    collections::{HashMap, HashSet},
    net::{Ipv6Addr, SocketAddrV6},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use tracing::{debug, warn};

use crate::{
    addr::{self, Scope},
    crypto::{SigningKey, Token, relay_identity},
    discovery::{
        self, CONTROL_PORT, RELAY_PORT, Secrets, ThreadBody, send_control, serve, start_threads,
    },
    error::{Error, ErrorKind, Result},
    ratelimit::{ClientLimits, Rates, TokenBucket},
    socket::{self, Interface, McastSocket, SocketOptions, Waker},
    wire::control::{self, Control, MAX_GROUPS_PER_MESSAGE},
};

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
            hop_limit: crate::config::DEFAULT_HOP_LIMIT,
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
    /// Datagrams dropped: malformed, from unknown clients, or for groups the client never joined.
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
    config: RelayConfig,
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

#[derive(Default)]
struct Tunnels {
    clients: HashMap<SocketAddrV6, Client>,
    /// Which clients want each group; a group is joined on the core while it has any.
    members: HashMap<Ipv6Addr, HashSet<SocketAddrV6>>,
    /// A repeater's repeated groups, each with the group it repeats.
    repeated: HashMap<Ipv6Addr, Ipv6Addr>,
}

struct Client {
    /// The nonce and MAC of the client's handshake, accepted in its first JOIN: its tunnel's
    /// credentials, which stay valid after the relay's secret has rotated.
    nonce: u64,
    mac: control::Mac,
    groups: HashSet<Ipv6Addr>,
    last_heard: Instant,
    limits: ClientLimits,
}

impl Relay {
    /// Binds the relay's sockets, joins the relay group and starts serving.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] for a voucher without an identity, or one that is
    /// not for the identity's key and the relay group.
    pub fn spawn(config: RelayConfig) -> Result<Self> {
        check_voucher(&config)?;
        // First, so that a failing random number generator opens no socket.
        let secrets = Secrets::new()?;
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
        let signing = TokenBucket::new(
            config.signed_challenges_per_sec,
            config.signed_challenges_per_sec,
            Instant::now(),
        );
        let service = Arc::new(RelayService {
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

impl Drop for Relay {
    fn drop(&mut self) {
        self.close();
    }
}

impl RelayService {
    fn tunnel_loop(&self) {
        serve(
            &self.tunnels_socket,
            &self.waker,
            &self.closed,
            |source, _, datagram| self.handle_client(source, datagram),
            || self.expire_silent_clients(),
        );
    }

    /// Sends each client a TEARDOWN of its tunnel, authenticated by the tunnel's nonce and MAC,
    /// which only this relay and the client know.
    fn close_tunnels(&self) {
        let clients: Vec<(SocketAddrV6, u64, control::Mac)> = self
            .state
            .lock()
            .clients
            .iter()
            .map(|(address, client)| (*address, client.nonce, client.mac))
            .collect();
        for (address, nonce, mac) in clients {
            let teardown = Control::Teardown {
                nonce,
                mac,
                old: address,
            };
            self.send(&teardown, address);
        }
    }

    fn send(&self, message: &Control<'_>, to: SocketAddrV6) {
        if let Err(err) = send_control(&self.tunnels_socket, message, to) {
            debug!("sending {} to {to}: {err}", message.name());
        }
    }

    /// A KEEPALIVE to a verified client: unicast from a relay; from a repeater, source-specific
    /// multicast to the repeater group at the client's port, so that the client hears it only
    /// where SSM from this host reaches it.
    fn answer_keepalive(&self, nonce: u64, client: SocketAddrV6) {
        let keepalive = Control::Keepalive { nonce };
        if !self.config.ssm_repeater {
            self.send(&keepalive, client);
            return;
        }
        let Ok(datagram) = keepalive.to_vec() else {
            return;
        };
        let group = SocketAddrV6::new(
            discovery::repeater_group(self.config.scope),
            client.port(),
            0,
            0,
        );
        for interface in &self.interfaces {
            if let Err(err) = self.tunnels_socket.send_via(&datagram, group, interface) {
                debug!("sending a keepalive to {group}: {err}");
            }
        }
    }

    /// Joins or leaves, on the core, the repeated group of `group` from `source`: where a
    /// repeater's client sends its traffic.
    fn client_source(&self, group: Ipv6Addr, source: Ipv6Addr, join: bool) {
        let Ok(repeated) = addr::repeated_addr(group) else {
            return;
        };
        for interface in &self.interfaces {
            let done = if join {
                self.core.join_source(repeated, source, interface)
            } else {
                self.core.leave_source(repeated, source, interface)
            };
            if let Err(err) = done {
                // Another client of the same host may hold this membership already.
                debug!("({source}, {repeated}) on {}: {err}", interface.name);
            }
        }
    }

    fn handle_client(&self, source: SocketAddrV6, datagram: &[u8]) {
        match control::decode(datagram) {
            Ok(Control::Hello { nonce }) => {
                let (mac, refresh_secs, limit) = self.challenge_fields(source, nonce);
                self.send(
                    &Control::Challenge {
                        nonce,
                        mac,
                        refresh_secs,
                        limit,
                    },
                    source,
                );
            }
            // Padded to the answer's length: signing for an unverified address amplifies nothing.
            Ok(Control::SignedHello { nonce }) => {
                let Some(identity) = &self.config.identity else {
                    add(&self.counters.rejected, 1);
                    debug!(%source, "a signed hello, but this relay has no identity key");
                    return;
                };
                if !self.signing.lock().take(1, Instant::now()) {
                    add(&self.counters.throttled_control, 1);
                    return;
                }
                let (mac, refresh_secs, limit) = self.challenge_fields(source, nonce);
                let challenge = relay_identity::sign_challenge(
                    (identity, self.config.voucher.as_ref()),
                    (nonce, mac),
                    refresh_secs,
                    limit,
                    source,
                );
                self.send(&challenge, source);
            }
            Ok(Control::Join { nonce, mac, groups }) => {
                if !self.verify(source, nonce, &mac) {
                    add(&self.counters.refused, 1);
                    return;
                }
                // Charged only once verified, so that nobody else can spend a client's tokens.
                if !self.allow_control(source) {
                    add(&self.counters.throttled_control, 1);
                    return;
                }
                if !self.join(source, (nonce, mac), &groups) {
                    add(&self.counters.refused, 1);
                    return;
                }
                // The first KEEPALIVE tells the client its tunnel is up.
                self.answer_keepalive(nonce, source);
            }
            Ok(Control::Leave { nonce, mac, groups }) if self.verify(source, nonce, &mac) => {
                if self.allow_control(source) {
                    self.leave(source, &groups);
                } else {
                    add(&self.counters.throttled_control, 1);
                }
            }
            // The MAC was issued to the old address, which a client behind a rebinding NAT has lost.
            Ok(Control::Teardown { nonce, mac, old })
                if self.secrets.lock().verify(old, nonce, &mac) =>
            {
                self.drop_client(old);
            }
            Ok(Control::Rebind {
                nonce,
                mac,
                old_nonce,
                old_mac,
            }) => {
                if self.rebind(source, (nonce, &mac), (old_nonce, &old_mac)) {
                    // Sent only now that the new address is proven: the client's sign to switch.
                    self.answer_keepalive(nonce, source);
                } else {
                    add(&self.counters.refused, 1);
                }
            }
            Ok(Control::Keepalive { nonce }) => {
                if !self.touch(source) {
                    add(&self.counters.rejected, 1);
                } else if self.allow_control(source) {
                    self.answer_keepalive(nonce, source);
                } else {
                    // KEEPALIVE carries no MAC: a throttled one still counts as the client
                    // heard, and a client that misses the answers recovers by REBIND.
                    add(&self.counters.throttled_control, 1);
                }
            }
            Ok(Control::Data { group, datagram }) => self.forward_up(source, group, datagram),
            Ok(other) => {
                add(&self.counters.rejected, 1);
                debug!(%source, kind = other.name(), "a relay does not take this message");
            }
            Err(err) => {
                add(&self.counters.rejected, 1);
                debug!(%source, "malformed tunnel datagram: {err}");
            }
        }
    }

    /// The MAC, refresh interval and LIMIT flag of a (signed or plain) challenge to `source`'s
    /// hello with `nonce`; counts the challenge.
    fn challenge_fields(&self, source: SocketAddrV6, nonce: u64) -> (control::Mac, u16, bool) {
        add(&self.counters.challenges, 1);
        let mac = self.secrets.lock().mac(source, nonce);
        let limit = self.state.lock().clients.len() >= self.config.max_tunnels;
        let refresh_secs = u16::try_from(self.config.refresh.as_secs()).unwrap_or(u16::MAX);
        (mac, refresh_secs, limit)
    }

    /// Whether the client at `source` is within its control rate (taking one message from it).
    /// An address that is no client yet is not limited here: its JOIN was verified by its MAC,
    /// and an unverified address is answered with at most what it sent.
    fn allow_control(&self, source: SocketAddrV6) -> bool {
        let now = Instant::now();
        self.state
            .lock()
            .clients
            .get_mut(&source)
            .is_none_or(|client| client.limits.allow_control(now))
    }

    fn rates(&self) -> Rates {
        Rates {
            datagrams: self.config.client_datagrams_per_sec,
            bytes: self.config.client_bytes_per_sec,
            control: self.config.client_control_per_sec,
        }
    }

    /// Whether `mac` proves that `source` received our CHALLENGE to `nonce`: under a current
    /// secret, or as the credentials of the client already at `source`.
    fn verify(&self, source: SocketAddrV6, nonce: u64, mac: &control::Mac) -> bool {
        self.secrets.lock().verify(source, nonce, mac) || self.is_credential(source, nonce, mac)
    }

    /// Whether (`nonce`, `mac`) are the credentials of the client at `address`.
    fn is_credential(&self, address: SocketAddrV6, nonce: u64, mac: &control::Mac) -> bool {
        self.state
            .lock()
            .clients
            .get(&address)
            .is_some_and(|client| client.nonce == nonce && control::mac_matches(&client.mac, mac))
    }

    /// Adds `groups` to the client at `source` (creating it if there is room); false if refused.
    fn join(
        &self,
        source: SocketAddrV6,
        (nonce, mac): (u64, control::Mac),
        groups: &[Ipv6Addr],
    ) -> bool {
        if groups.iter().any(|group| !group.is_multicast()) {
            return false;
        }
        let mut state = self.state.lock();
        let state = &mut *state;
        if !state.clients.contains_key(&source) && state.clients.len() >= self.config.max_tunnels {
            return false;
        }
        let now = Instant::now();
        let client = state.clients.entry(source).or_insert_with(|| Client {
            nonce,
            mac,
            groups: HashSet::new(),
            last_heard: now,
            limits: ClientLimits::new(self.rates(), now),
        });
        client.last_heard = now;
        // A client that shook hands again (same address) is known by its latest handshake.
        (client.nonce, client.mac) = (nonce, mac);
        let new: Vec<Ipv6Addr> = groups
            .iter()
            .copied()
            .filter(|group| !client.groups.contains(group))
            .collect();
        if client.groups.len() + new.len() > self.config.max_groups_per_tunnel {
            return false;
        }
        for group in new {
            client.groups.insert(group);
            let members = state.members.entry(group).or_default();
            if members.is_empty() {
                for interface in &self.interfaces {
                    if let Err(err) = self.core.join(group, interface) {
                        warn!("joining {group} for a tunnel client: {err}");
                    }
                }
                if self.config.ssm_repeater
                    && let Ok(repeated) = addr::repeated_addr(group)
                {
                    state.repeated.insert(repeated, group);
                }
            }
            if self.config.ssm_repeater && !members.iter().any(|m| m.ip() == source.ip()) {
                self.client_source(group, *source.ip(), true);
            }
            members.insert(source);
        }
        true
    }

    fn leave(&self, source: SocketAddrV6, groups: &[Ipv6Addr]) {
        let mut state = self.state.lock();
        let state = &mut *state;
        let Some(client) = state.clients.get_mut(&source) else {
            return;
        };
        let left: Vec<Ipv6Addr> = groups
            .iter()
            .copied()
            .filter(|group| client.groups.remove(group))
            .collect();
        for group in left {
            self.forget_member(state, group, source);
        }
    }

    fn forget_member(&self, state: &mut Tunnels, group: Ipv6Addr, client: SocketAddrV6) {
        let Some(clients) = state.members.get_mut(&group) else {
            return;
        };
        clients.remove(&client);
        if self.config.ssm_repeater && !clients.iter().any(|m| m.ip() == client.ip()) {
            self.client_source(group, *client.ip(), false);
        }
        if clients.is_empty() {
            state.members.remove(&group);
            state.repeated.retain(|_, repeated| *repeated != group);
            for interface in &self.interfaces {
                if let Err(err) = self.core.leave(group, interface) {
                    debug!("leaving {group}: {err}");
                }
            }
        }
    }

    /// Moves a client's tunnel to `source` after a NAT rebinding, keeping its joins. The first
    /// nonce and MAC are of a handshake with `source` (it receives there), the second the
    /// credentials of the tunnel being moved (it is that client). False, and nothing changes,
    /// unless both verify and `source` is not another client already.
    fn rebind(
        &self,
        source: SocketAddrV6,
        (nonce, mac): (u64, &control::Mac),
        (old_nonce, old_mac): (u64, &control::Mac),
    ) -> bool {
        if !self.secrets.lock().verify(source, nonce, mac) {
            return false;
        }
        let mut state = self.state.lock();
        let state = &mut *state;
        // The old credentials prove the sender is that client.
        let old = state.clients.iter().find_map(|(address, client)| {
            (client.nonce == old_nonce && control::mac_matches(&client.mac, old_mac))
                .then_some(*address)
        });
        let Some(old) = old else {
            return false;
        };
        if old != source && state.clients.contains_key(&source) {
            return false;
        }
        let Some(mut client) = state.clients.remove(&old) else {
            return false;
        };
        (client.nonce, client.mac) = (nonce, *mac);
        client.last_heard = Instant::now();
        for group in &client.groups {
            if let Some(members) = state.members.get_mut(group) {
                members.remove(&old);
                let moved_host = old.ip() != source.ip();
                if self.config.ssm_repeater && moved_host {
                    if !members.iter().any(|m| m.ip() == old.ip()) {
                        self.client_source(*group, *old.ip(), false);
                    }
                    if !members.iter().any(|m| m.ip() == source.ip()) {
                        self.client_source(*group, *source.ip(), true);
                    }
                }
                members.insert(source);
            }
        }
        state.clients.insert(source, client);
        if old != source {
            add(&self.counters.rebinds, 1);
            debug!(%old, new = %source, "tunnel moved after a NAT rebinding");
        }
        true
    }

    fn drop_client(&self, address: SocketAddrV6) {
        let mut state = self.state.lock();
        let state = &mut *state;
        if let Some(client) = state.clients.remove(&address) {
            for group in client.groups {
                self.forget_member(state, group, address);
            }
            debug!(%address, "tunnel client dropped");
        }
    }

    /// Notes that a client was heard; false if it is not a client.
    fn touch(&self, source: SocketAddrV6) -> bool {
        match self.state.lock().clients.get_mut(&source) {
            Some(client) => {
                client.last_heard = Instant::now();
                true
            }
            None => false,
        }
    }

    fn expire_silent_clients(&self) {
        let silent = self.config.refresh * 3;
        let expired: Vec<SocketAddrV6> = self
            .state
            .lock()
            .clients
            .iter()
            .filter(|(_, client)| client.last_heard.elapsed() > silent)
            .map(|(address, _)| *address)
            .collect();
        for address in expired {
            self.drop_client(address);
        }
    }

    /// A datagram a client sends up: multicast on the core and passed to the group's other
    /// clients.
    fn forward_up(&self, source: SocketAddrV6, group: Ipv6Addr, datagram: &[u8]) {
        let others: Vec<SocketAddrV6> = {
            let mut state = self.state.lock();
            let Some(client) = state.clients.get_mut(&source) else {
                add(&self.counters.rejected, 1);
                return;
            };
            if !client.groups.contains(&group) {
                add(&self.counters.rejected, 1);
                return;
            }
            let now = Instant::now();
            client.last_heard = now;
            if !client.limits.allow_data(datagram.len(), now) {
                add(&self.counters.throttled, 1);
                return;
            }
            let members = state.members.get(&group);
            members
                .map(|members| {
                    members
                        .iter()
                        .copied()
                        .filter(|member| *member != source)
                        .collect()
                })
                .unwrap_or_default()
        };
        add(&self.counters.datagrams_up, 1);
        add(&self.counters.bytes_up, datagram.len() as u64);
        self.multicast(datagram, group);
        let mut down = Downstream::default();
        self.forward_down(group, datagram, &others, &mut down);
        self.flush_down(&mut down);
    }

    /// Queues `datagram` in `down` for each of `clients` (or, as a repeater, multicasts it once).
    fn forward_down(
        &self,
        group: Ipv6Addr,
        datagram: &[u8],
        clients: &[SocketAddrV6],
        down: &mut Downstream,
    ) {
        if clients.is_empty() {
            return;
        }
        if self.config.ssm_repeater {
            // One copy for every client, as SSM from this host.
            if let Ok(repeated) = addr::repeated_addr(group) {
                self.multicast(datagram, repeated);
                add(&self.counters.datagrams_down, 1);
                add(&self.counters.bytes_down, datagram.len() as u64);
            }
            return;
        }
        let message = match (Control::Data { group, datagram }).to_vec() {
            Ok(message) => message,
            Err(err) => {
                // An empty or oversized datagram: nothing a client could use.
                debug!("not forwarding a datagram for {group}: {err}");
                add(&self.counters.rejected, 1);
                return;
            }
        };
        let index = down.messages.len();
        down.messages.push((message, datagram.len()));
        down.sends
            .extend(clients.iter().map(|client| (index, *client)));
        if down.sends.len() >= Downstream::FLUSH_AT {
            self.flush_down(down);
        }
    }

    /// Sends what `down` holds, in as few system calls as the platform allows, and empties it.
    fn flush_down(&self, down: &mut Downstream) {
        // Each client's datagrams in a row (in order), so that they can leave as one.
        down.sends.sort_by_key(|(_, client)| *client);
        let sends: Vec<(&[u8], SocketAddrV6)> = down
            .sends
            .iter()
            .map(|(index, client)| (down.messages[*index].0.as_slice(), *client))
            .collect();
        let (mut datagrams, mut bytes) = (0, 0);
        self.tunnels_socket.send_each(&sends, &mut |sent| {
            datagrams += 1;
            bytes += down.messages[down.sends[sent].0].1 as u64;
        });
        add(&self.counters.datagrams_down, datagrams);
        add(&self.counters.bytes_down, bytes);
        down.messages.clear();
        down.sends.clear();
    }

    /// Multicasts `datagram` to `group` on every core interface.
    fn multicast(&self, datagram: &[u8], group: Ipv6Addr) {
        let copy = vec![datagram.to_vec()];
        for interface in &self.interfaces {
            if let Err(err) = self.core.send_batch(&copy, group, interface) {
                warn!("multicasting to {group}: {err}");
            }
        }
    }

    /// Channel traffic heard on the core, passed down to the clients of its group; for a
    /// repeater also what its clients send to their repeated groups, passed up.
    fn core_loop(&self) {
        // What one receive batch brings goes down the tunnels together, after the batch.
        let down = RefCell::new(Downstream::default());
        serve(
            &self.core,
            &self.waker,
            &self.closed,
            |source, group, datagram| {
                let (clients, repeats) = {
                    let state = self.state.lock();
                    let clients: Vec<SocketAddrV6> = state
                        .members
                        .get(&group)
                        .map(|members| members.iter().copied().collect())
                        .unwrap_or_default();
                    (clients, state.repeated.get(&group).copied())
                };
                match repeats {
                    Some(original) => self.repeat_up(source, group, original, datagram),
                    None => {
                        self.forward_down(group, datagram, &clients, &mut down.borrow_mut());
                    }
                }
            },
            || self.flush_down(&mut down.borrow_mut()),
        );
    }

    /// A datagram a repeater's client sent to `repeated`: multicast on the core to the group it
    /// repeats, and again from this host to `repeated` for the other clients (the sender drops
    /// its own).
    fn repeat_up(
        &self,
        source: SocketAddrV6,
        repeated: Ipv6Addr,
        original: Ipv6Addr,
        datagram: &[u8],
    ) {
        let from_client = self
            .state
            .lock()
            .members
            .get(&original)
            .is_some_and(|members| members.iter().any(|m| m.ip() == source.ip()));
        if !from_client {
            add(&self.counters.rejected, 1);
            return;
        }
        add(&self.counters.datagrams_up, 1);
        add(&self.counters.bytes_up, datagram.len() as u64);
        self.multicast(datagram, original);
        self.multicast(datagram, repeated);
    }

    /// Answers Stratum 0's solicitations with an offer sent straight to the node.
    fn offer_loop(&self) {
        serve(
            &self.solicitations,
            &self.waker,
            &self.closed,
            |source, _, datagram| match control::decode(datagram) {
                Ok(Control::Solicit { nonce, node }) => {
                    let (clients, limit) = {
                        let state = self.state.lock();
                        (
                            state.clients.len(),
                            state.clients.len() >= self.config.max_tunnels,
                        )
                    };
                    let load = (clients * 1000 / self.config.max_tunnels.max(1)).min(1000) as u16;
                    let relay = SocketAddrV6::new(
                        *self.config.listen.ip(),
                        self.tunnels_socket.port(),
                        0,
                        0,
                    );
                    add(&self.counters.offers, 1);
                    self.send(
                        &Control::Offer {
                            nonce,
                            relay,
                            load,
                            limit,
                            repeater: self.config.ssm_repeater,
                        },
                        node,
                    );
                }
                _ => {
                    add(&self.counters.rejected, 1);
                    debug!(%source, "unexpected datagram on the relay group");
                }
            },
            || {},
        );
    }

    fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
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
