//! The Stratum 0 service, and the well-known groups, ports and helpers that Stratum 0, the probe
//! (`probe`) and the relays share (see `docs/reachability.md`).
//!
//! Stratum 0 carries no channel traffic. It answers probes (and echoes each one on the probe
//! group, so the node learns whether the core's multicast reaches it), notes the beacons nodes
//! multicast (so the node learns whether its multicast reaches the core), and passes verified
//! relay requests to the relays on the relay group.

use std::{
    collections::HashMap,
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
    addr::{self, Profile, Scope},
    crypto::random,
    error::{Error, Result},
    socket::{self, Interface, McastSocket, RecvBatch, SocketOptions, Wait, Waker},
    wire::control::{self, Control},
};

/// The UDP port Stratum 0 answers on unless configured otherwise.
pub const STRATUM0_PORT: u16 = 6447;
/// The UDP port relays accept tunnels on unless configured otherwise.
pub const RELAY_PORT: u16 = 6448;
/// The UDP port of the probe and relay groups.
pub const CONTROL_PORT: u16 = 6449;

/// How long Stratum 0 remembers a beacon it heard.
const BEACON_MEMORY: Duration = Duration::from_secs(30);
/// At most this many beacons are remembered, so a flood of them cannot grow memory.
const MAX_BEACONS: usize = 4096;
/// How often the cookie secret changes (the previous one stays valid for one more period).
pub(crate) const SECRET_ROTATION: Duration = Duration::from_secs(60);

/// The group on which Stratum 0 echoes probes and nodes multicast beacons.
pub fn probe_group(scope: Scope) -> Ipv6Addr {
    well_known_group(b"sixcast/probe", scope)
}

/// The group on which Stratum 0 passes relay requests to the relays.
pub fn relay_group(scope: Scope) -> Ipv6Addr {
    well_known_group(b"sixcast/relays", scope)
}

/// The SSM group on which an SSM repeater answers its clients' keepalives (at each client's
/// port), so that a client learns whether SSM from the repeater reaches it.
pub fn repeater_group(scope: Scope) -> Ipv6Addr {
    match addr::group_addr(b"sixcast/repeater", &Profile::Ssm, scope) {
        Ok(group) => group,
        // A short constant name always maps; keep a valid SSM group even if that ever changed.
        Err(_) => Ipv6Addr::new(0xff3e, 0, 0, 0, 0, 0, 0x8000, 0x5c),
    }
}

fn well_known_group(name: &[u8], scope: Scope) -> Ipv6Addr {
    match addr::group_addr(name, &Profile::Sixcast, scope) {
        Ok(group) => group,
        // A short constant name always maps; keep a valid group even if that ever changed.
        Err(_) => Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x5c),
    }
}

/// A random 64-bit nonce.
pub(crate) fn nonce() -> Result<u64> {
    random::u64()
}

/// A fresh cookie secret.
fn secret() -> Result<[u8; 32]> {
    let mut bytes = [0; 32];
    random::fill(&mut bytes)?;
    Ok(bytes)
}

/// The current and previous cookie secrets, rotated every [`SECRET_ROTATION`].
pub(crate) struct Secrets {
    current: [u8; 32],
    previous: [u8; 32],
    rotated_at: Instant,
}

impl Secrets {
    pub(crate) fn new() -> Result<Self> {
        let current = secret()?;
        Ok(Self {
            current,
            previous: current,
            rotated_at: Instant::now(),
        })
    }

    /// The MAC a verified peer must echo.
    pub(crate) fn mac(&mut self, peer: SocketAddrV6, nonce: u64) -> control::Mac {
        self.rotate();
        control::mac(&self.current, peer, nonce)
    }

    /// Whether `mac` proves that `peer` received our answer to `nonce`.
    pub(crate) fn verify(&mut self, peer: SocketAddrV6, nonce: u64, mac: &control::Mac) -> bool {
        self.rotate();
        control::mac_matches(&control::mac(&self.current, peer, nonce), mac)
            || control::mac_matches(&control::mac(&self.previous, peer, nonce), mac)
    }

    fn rotate(&mut self) {
        if self.rotated_at.elapsed() < SECRET_ROTATION {
            return;
        }
        match secret() {
            Ok(next) => {
                self.previous = self.current;
                self.current = next;
                self.rotated_at = Instant::now();
            }
            // The current secret is still a random one; rotation is tried again next time.
            Err(err) => tracing::error!("cannot rotate the cookie secret: {err}"),
        }
    }
}

/// Settings of a [`Stratum0`] service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stratum0Config {
    /// Address and port to answer on.
    pub listen: SocketAddrV6,
    /// Core interfaces to multicast on; empty means every multicast interface.
    pub interfaces: Vec<String>,
    /// Scope of the probe and relay groups.
    pub scope: Scope,
    /// Hop limit of the echoes and solicitations it multicasts.
    pub hop_limit: u8,
}

impl Default for Stratum0Config {
    fn default() -> Self {
        Self {
            listen: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, STRATUM0_PORT, 0, 0),
            interfaces: Vec::new(),
            scope: Scope::Global,
            hop_limit: addr::DEFAULT_HOP_LIMIT,
        }
    }
}

/// Counters of a [`Stratum0`] service.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stratum0Stats {
    /// Probes answered.
    pub probes: u64,
    /// Beacons heard on the probe group.
    pub beacons: u64,
    /// Cookies sent to unverified relay requests.
    pub cookies: u64,
    /// Verified relay requests passed to the relays.
    pub solicitations: u64,
    /// Datagrams that were not valid control messages, or not ones Stratum 0 takes.
    pub rejected: u64,
}

#[derive(Default)]
struct Stratum0Counters {
    probes: AtomicU64,
    beacons: AtomicU64,
    cookies: AtomicU64,
    solicitations: AtomicU64,
    rejected: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The Stratum 0 service: answers probes and verified relay requests. Runs on background
/// threads until [`close`](Self::close) or drop.
pub struct Stratum0 {
    service: Arc<Stratum0Service>,
    threads: Vec<JoinHandle<()>>,
}

struct Stratum0Service {
    scope: Scope,
    unicast: McastSocket,
    multicast: McastSocket,
    interfaces: Vec<Interface>,
    beacons: Mutex<HashMap<u64, Instant>>,
    secrets: Mutex<Secrets>,
    counters: Stratum0Counters,
    waker: Waker,
    closed: AtomicBool,
}

impl Stratum0 {
    /// Binds the service's sockets, joins the probe group and starts answering.
    pub fn spawn(config: Stratum0Config) -> Result<Self> {
        // First, so that a failing random number generator opens no socket.
        let secrets = Secrets::new()?;
        let interfaces = socket::select_interfaces(&config.interfaces)?;
        let unicast = McastSocket::bind(&SocketOptions {
            address: *config.listen.ip(),
            port: config.listen.port(),
            hop_limit: config.hop_limit,
            loopback: false,
            recv_buffer: 1 << 20,
        })?;
        // Loopback on: a relay may run on the same host and must hear the solicitations.
        let multicast = McastSocket::bind(&SocketOptions {
            address: Ipv6Addr::UNSPECIFIED,
            port: CONTROL_PORT,
            hop_limit: config.hop_limit,
            loopback: true,
            recv_buffer: 1 << 20,
        })?;
        let probe_group = probe_group(config.scope);
        for interface in &interfaces {
            multicast.join(probe_group, interface)?;
        }
        let service = Arc::new(Stratum0Service {
            scope: config.scope,
            unicast,
            multicast,
            interfaces,
            beacons: Mutex::default(),
            secrets: Mutex::new(secrets),
            counters: Stratum0Counters::default(),
            waker: Waker::new()?,
            closed: AtomicBool::new(false),
        });
        let bodies: [ThreadBody<Stratum0Service>; 2] = [
            ("sixcast-s0", Stratum0Service::answer_loop),
            ("sixcast-s0-beacons", Stratum0Service::beacon_loop),
        ];
        let threads = start_threads(&service, &bodies, Stratum0Service::shutdown)?;
        debug!(listen = %config.listen, "stratum 0 started");
        Ok(Self { service, threads })
    }

    /// The port the service answers on.
    pub fn port(&self) -> u16 {
        self.service.unicast.port()
    }

    /// The service's counters.
    pub fn stats(&self) -> Stratum0Stats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = &self.service.counters;
        Stratum0Stats {
            probes: get(&counters.probes),
            beacons: get(&counters.beacons),
            cookies: get(&counters.cookies),
            solicitations: get(&counters.solicitations),
            rejected: get(&counters.rejected),
        }
    }

    /// Stops the service. Closing twice is harmless.
    pub fn close(&mut self) {
        self.service.shutdown();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Stratum0 {
    fn drop(&mut self) {
        self.close();
    }
}

/// A background thread's name and body.
pub(crate) type ThreadBody<S> = (&'static str, fn(&S));

/// Starts one named thread per body on a shared service. If one cannot start, shuts the
/// service down (`shutdown`), joins the threads already started and returns the error.
pub(crate) fn start_threads<S: Send + Sync + 'static>(
    service: &Arc<S>,
    bodies: &[ThreadBody<S>],
    shutdown: fn(&S),
) -> Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::new();
    for &(name, body) in bodies {
        let shared = Arc::clone(service);
        let started = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&shared));
        match started {
            Ok(thread) => threads.push(thread),
            Err(err) => {
                shutdown(service);
                for thread in threads {
                    let _ = thread.join();
                }
                return Err(Error::io("starting a sixcast thread", err));
            }
        }
    }
    Ok(threads)
}

/// Waits for datagrams on `socket` for at most `timeout`: `Ok(true)` when the batch holds some,
/// `Ok(false)` when none came, and [`ErrorKind::Closed`] when the owner is shutting down, so
/// that a probe or handshake in progress ends at once.
pub(crate) fn receive(
    socket: &McastSocket,
    batch: &mut RecvBatch,
    waker: &Waker,
    timeout: Duration,
) -> Result<bool> {
    match socket.recv_batch(batch, waker, Some(timeout))? {
        Wait::Received(_) => Ok(true),
        Wait::TimedOut => Ok(false),
        Wait::Woken => Err(Error::closed()),
    }
}

/// Encodes `message` and sends it to a unicast peer.
pub(crate) fn send_control(
    socket: &McastSocket,
    message: &Control<'_>,
    to: SocketAddrV6,
) -> Result<()> {
    socket.send_to(&message.to_vec()?, to)
}

/// Encodes `message` and multicasts it to `group` on every interface.
pub(crate) fn multicast_control(
    socket: &McastSocket,
    interfaces: &[Interface],
    message: &Control<'_>,
    group: Ipv6Addr,
) -> Result<()> {
    let datagram = vec![message.to_vec()?];
    interfaces
        .iter()
        .try_for_each(|interface| socket.send_batch(&datagram, group, interface))
}

/// Receives on `socket` until `closed` is set, handing each datagram with its source to
/// `handle`; `tick` runs at least once a second for housekeeping.
pub(crate) fn serve(
    socket: &McastSocket,
    waker: &Waker,
    closed: &AtomicBool,
    mut handle: impl FnMut(SocketAddrV6, Ipv6Addr, &[u8]),
    mut tick: impl FnMut(),
) {
    let mut batch = RecvBatch::new();
    while !closed.load(Ordering::Acquire) {
        match socket.recv_batch(&mut batch, waker, Some(Duration::from_secs(1))) {
            Ok(Wait::Woken) => return,
            Ok(Wait::Received(_)) => {
                for (meta, datagram) in batch.iter() {
                    handle(meta.source, meta.destination, datagram);
                }
            }
            Ok(Wait::TimedOut) => {}
            Err(err) => {
                warn!("{err}");
                // A persistent error must not become a hot loop.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        tick();
    }
}

impl Stratum0Service {
    fn answer_loop(&self) {
        serve(
            &self.unicast,
            &self.waker,
            &self.closed,
            |source, _, datagram| self.answer(source, datagram),
            || {},
        );
    }

    fn answer(&self, source: SocketAddrV6, datagram: &[u8]) {
        let reply = match control::decode(datagram) {
            Ok(Control::Probe {
                nonce,
                beacon_nonce,
            }) => {
                bump(&self.counters.probes);
                self.multicast_control(&Control::Echo { nonce }, probe_group(self.scope));
                let heard_beacon =
                    beacon_nonce != 0 && self.beacons.lock().contains_key(&beacon_nonce);
                Control::ProbeReply {
                    nonce,
                    heard_beacon,
                    observed: source,
                }
            }
            Ok(Control::RelayRequest { nonce, cookie }) => {
                let verified = self.secrets.lock().verify(source, nonce, &cookie);
                if !verified {
                    bump(&self.counters.cookies);
                    let cookie = self.secrets.lock().mac(source, nonce);
                    Control::Cookie { nonce, cookie }
                } else {
                    bump(&self.counters.solicitations);
                    self.multicast_control(
                        &Control::Solicit {
                            nonce,
                            node: source,
                        },
                        relay_group(self.scope),
                    );
                    return;
                }
            }
            Ok(other) => {
                bump(&self.counters.rejected);
                debug!(%source, kind = other.name(), "stratum 0 does not take this message");
                return;
            }
            Err(err) => {
                bump(&self.counters.rejected);
                debug!(%source, "malformed control datagram: {err}");
                return;
            }
        };
        if let Err(err) = send_control(&self.unicast, &reply, source) {
            debug!("answering {source}: {err}");
        }
    }

    fn multicast_control(&self, message: &Control<'_>, group: Ipv6Addr) {
        if let Err(err) = multicast_control(&self.multicast, &self.interfaces, message, group) {
            warn!("multicasting {}: {err}", message.name());
        }
    }

    fn beacon_loop(&self) {
        serve(
            &self.multicast,
            &self.waker,
            &self.closed,
            |source, _, datagram| match control::decode(datagram) {
                Ok(Control::Beacon { nonce }) => {
                    bump(&self.counters.beacons);
                    let mut beacons = self.beacons.lock();
                    if beacons.len() >= MAX_BEACONS {
                        let now = Instant::now();
                        beacons.retain(|_, heard| now.duration_since(*heard) < BEACON_MEMORY);
                    }
                    if beacons.len() < MAX_BEACONS {
                        beacons.insert(nonce, Instant::now());
                    }
                }
                // Our own echoes, heard through loopback.
                Ok(Control::Echo { .. }) => {}
                _ => {
                    bump(&self.counters.rejected);
                    debug!(%source, "unexpected datagram on the probe group");
                }
            },
            || {
                let now = Instant::now();
                self.beacons
                    .lock()
                    .retain(|_, heard| now.duration_since(*heard) < BEACON_MEMORY);
            },
        );
    }

    fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}
