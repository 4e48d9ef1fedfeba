//! A node's side of the relay fallback, on its unicast socket: asks Stratum 0 for relays
//! (answering its cookie first), opens a tunnel to the best one that completes the handshake,
//! and sends what the tunnel's protocol queues (see `docs/reachability.md`). The protocol itself, without I/O, is
//! `sixcast_proto::relay_request` and `sixcast_proto::tunnel`.
//!
//! The channel layer decides what to send up the tunnel and dispatches what comes down it.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    time::Instant,
};

use tracing::debug;

use crate::{
    addr::Scope,
    discovery::{self, send_control},
    error::{Error, ErrorKind, Result},
    socket::{Interface, McastSocket, RecvBatch, Wait, Waker},
    wire::control::{self, Control},
};

use sixcast_proto::relay_request::RelayRequest;
pub use sixcast_proto::{
    relay_request::RelayOffer,
    tunnel::{Handshake, Pinning, Tunnel},
};

/// One exchange of the protocol with a single unicast peer, as a state machine without I/O.
trait Exchange {
    type Outcome;
    fn poll_transmit(&mut self) -> Option<Control<'static>>;
    fn poll_timeout(&self) -> Instant;
    fn on_datagram(&mut self, source: SocketAddrV6, datagram: &[u8], now: Instant);
    fn finish(&mut self, now: Instant) -> Option<Result<Self::Outcome>>;
}

impl Exchange for RelayRequest {
    type Outcome = Vec<RelayOffer>;
    fn poll_transmit(&mut self) -> Option<Control<'static>> {
        Self::poll_transmit(self)
    }
    fn poll_timeout(&self) -> Instant {
        Self::poll_timeout(self)
    }
    fn on_datagram(&mut self, source: SocketAddrV6, datagram: &[u8], now: Instant) {
        Self::on_datagram(self, source, datagram, now);
    }
    fn finish(&mut self, now: Instant) -> Option<Result<Vec<RelayOffer>>> {
        self.outcome(now)
    }
}

impl Exchange for Handshake<'_> {
    type Outcome = Tunnel;
    fn poll_transmit(&mut self) -> Option<Control<'static>> {
        Self::poll_transmit(self)
    }
    fn poll_timeout(&self) -> Instant {
        Self::poll_timeout(self)
    }
    fn on_datagram(&mut self, source: SocketAddrV6, datagram: &[u8], now: Instant) {
        Self::on_datagram(self, source, datagram, now);
    }
    fn finish(&mut self, now: Instant) -> Option<Result<Tunnel>> {
        Self::finish(self, now)
    }
}

/// Drives `machine` on `socket` with `peer` until it ends: sends what it queues, feeds it what
/// arrives, and sleeps until a datagram, its deadline, or the owner's close (`waker`).
fn exchange<E: Exchange>(
    socket: &McastSocket,
    waker: &Waker,
    peer: SocketAddrV6,
    machine: &mut E,
) -> Result<E::Outcome> {
    let mut batch = RecvBatch::new();
    loop {
        while let Some(message) = machine.poll_transmit() {
            send_control(socket, &message, peer)?;
        }
        let now = Instant::now();
        if let Some(outcome) = machine.finish(now) {
            return outcome;
        }
        let left = machine.poll_timeout().saturating_duration_since(now);
        match socket.recv_batch(&mut batch, waker, Some(left))? {
            Wait::Woken => return Err(Error::closed()),
            Wait::TimedOut => {}
            Wait::Received(_) => {
                let now = Instant::now();
                for (meta, datagram) in batch.iter() {
                    machine.on_datagram(meta.source, datagram, now);
                }
            }
        }
    }
}

/// Opens a tunnel to the relay or repeater of `offer` with the return-routability handshake and
/// joins `groups`. A repeater answers by SSM from its address on the repeater group, which
/// `socket` joins on `interfaces` first: the tunnel opens only where that SSM arrives.
pub(crate) fn open(
    socket: &McastSocket,
    waker: &Waker,
    offer: &RelayOffer,
    groups: &[Ipv6Addr],
    (scope, interfaces): (Scope, &[Interface]),
    pinning: Pinning<'_>,
) -> Result<Tunnel> {
    // A repeater's JOIN acknowledgment (by SSM) is the proof that SSM from it arrives: a node
    // with no channel yet joins the repeater group itself to get one.
    let check = [discovery::repeater_group(scope)];
    let groups = if offer.repeater && groups.is_empty() {
        &check[..]
    } else {
        groups
    };
    let mut handshake = Handshake::new(offer, groups, discovery::nonce()?, pinning, Instant::now());
    if let Some(refused) = handshake.finish(Instant::now()) {
        return refused;
    }
    if offer.repeater {
        for interface in interfaces {
            match socket.join_source(
                discovery::repeater_group(scope),
                *offer.address.ip(),
                interface,
            ) {
                // Joined before, for an earlier attempt with this repeater.
                Err(err)
                    if err.io_error().and_then(std::io::Error::raw_os_error)
                        == Some(libc::EADDRINUSE) => {}
                joined => joined?,
            }
        }
    }
    exchange(socket, waker, offer.address, &mut handshake)
}

/// Asks Stratum 0 for relays and opens a tunnel to the best one that completes the handshake
/// (and, with keys pinned, proves a pinned identity); returns it with every offer received.
pub(crate) fn establish(
    socket: &McastSocket,
    waker: &Waker,
    stratum0: SocketAddrV6,
    groups: &[Ipv6Addr],
    network: (Scope, &[Interface]),
    pinning: Pinning<'_>,
) -> Result<(Tunnel, Vec<RelayOffer>)> {
    let mut request = RelayRequest::new(stratum0, discovery::nonce()?, Instant::now());
    let offers = exchange(socket, waker, stratum0, &mut request)?;
    let mut last_error = None;
    for offer in &offers {
        match open(socket, waker, offer, groups, network, pinning) {
            Ok(tunnel) => return Ok((tunnel, offers)),
            Err(err) => {
                debug!(relay = %offer.address, "{err}");
                last_error = Some(err);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| Error::new(ErrorKind::Timeout, "no relay could be reached")))
}

/// Sends what `tunnel`'s protocol queued for its relay.
pub(crate) fn transmit(tunnel: &mut Tunnel, socket: &McastSocket) -> Result<()> {
    while let Some(message) = tunnel.poll_transmit() {
        send_control(socket, &message, tunnel.relay())?;
    }
    Ok(())
}

/// Sends one channel datagram up `tunnel`, for `group` (the channel's relayed twin).
pub(crate) fn send_data(
    tunnel: &mut Tunnel,
    socket: &McastSocket,
    group: Ipv6Addr,
    datagram: &[u8],
) -> Result<()> {
    let data = Control::Data(control::Data { group, datagram });
    send_control(socket, &data, tunnel.relay())?;
    tunnel.data_sent(Instant::now());
    Ok(())
}

/// Ends `tunnel` politely, sending what was queued and a TEARDOWN (best effort: the relay also
/// forgets silent clients). `old` is this node's address as the core sees it.
pub(crate) fn close(tunnel: &mut Tunnel, socket: &McastSocket, old: SocketAddrV6) {
    tunnel.close(old, Instant::now());
    if let Err(err) = transmit(tunnel, socket) {
        debug!("tearing down the tunnel to {}: {err}", tunnel.relay());
    }
}
