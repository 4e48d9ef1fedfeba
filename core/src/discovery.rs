//! What Stratum 0 (`stratum0`), the probe (`probe`) and the relays share: the well-known
//! groups and ports, nonces, the rotating cookie secrets, and helpers to send control messages
//! and run a service's threads (see `docs/reachability.md`).

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use tracing::warn;

use crate::{
    addr::{self, Profile, Scope},
    crypto::random,
    error::{Error, Result},
    socket::{Interface, McastSocket, RecvBatch, Wait, Waker},
    wire::control::{self, Control},
};

/// The UDP port Stratum 0 answers on unless configured otherwise.
pub const STRATUM0_PORT: u16 = 6447;
/// The UDP port relays accept tunnels on unless configured otherwise.
pub const RELAY_PORT: u16 = 6448;
/// The UDP port of the probe and relay groups.
pub const CONTROL_PORT: u16 = 6449;

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

/// The current and previous cookie secrets, rotated every [`SECRET_ROTATION`] (the time is an
/// argument, so that rotation is tested on a fake clock).
pub(crate) struct Secrets {
    current: [u8; 32],
    previous: [u8; 32],
    rotated_at: Instant,
}

impl Secrets {
    pub(crate) fn new(now: Instant) -> Result<Self> {
        let current = secret()?;
        Ok(Self {
            current,
            previous: current,
            rotated_at: now,
        })
    }

    /// The MAC a verified peer must echo.
    pub(crate) fn mac(&mut self, peer: SocketAddrV6, nonce: u64, now: Instant) -> control::Mac {
        self.rotate(now);
        control::mac(&self.current, peer, nonce)
    }

    /// Whether `mac` proves that `peer` received our answer to `nonce`.
    pub(crate) fn verify(
        &mut self,
        peer: SocketAddrV6,
        nonce: u64,
        mac: &control::Mac,
        now: Instant,
    ) -> bool {
        self.rotate(now);
        control::mac_matches(&control::mac(&self.current, peer, nonce), mac)
            || control::mac_matches(&control::mac(&self.previous, peer, nonce), mac)
    }

    fn rotate(&mut self, now: Instant) {
        if now.saturating_duration_since(self.rotated_at) < SECRET_ROTATION {
            return;
        }
        match secret() {
            Ok(next) => {
                self.previous = self.current;
                self.current = next;
                self.rotated_at = now;
            }
            // The current secret is still a random one; rotation is tried again next time.
            Err(err) => tracing::error!("cannot rotate the cookie secret: {err}"),
        }
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

#[cfg(test)]
mod tests {
    use sixcast_proto::crypto::random::failure;

    use crate::ErrorKind;

    /// Every service that needs a secret or an id refuses to start without randomness, and
    /// says why, before it opens a socket.
    #[test]
    fn nothing_opens_without_randomness() {
        let refusals = failure::while_failing(|| {
            [
                crate::Context::new(crate::Config::default()).err(),
                crate::relay::Relay::spawn(crate::relay::RelayConfig::default()).err(),
                crate::stratum0::Stratum0::spawn(crate::stratum0::Stratum0Config::default()).err(),
                crate::crypto::ChannelKey::generate().err(),
                crate::crypto::SigningKey::generate().err(),
            ]
        });
        for refusal in refusals {
            let err = refusal.expect("opened without randomness");
            assert_eq!(err.kind(), ErrorKind::Io, "{err}");
            assert!(err.to_string().contains("injected by a test"), "{err}");
        }
    }
}
