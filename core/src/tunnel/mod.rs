//! A node's side of the relay fallback, on its unicast socket: asks Stratum 0 for relays
//! (answering its cookie first), opens a tunnel to the best one that completes the handshake,
//! and sends what the tunnel's protocol queues (see `docs/reachability.md`). The protocol itself, without I/O, is
//! `sixcast_proto::relay_request` and `sixcast_proto::tunnel`.
//!
//! The channel layer decides what to send up the tunnel and dispatches what comes down it.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::AtomicU64,
    time::Instant,
};

use tracing::debug;

use crate::{
    addr::Scope,
    discovery::{self, send_control},
    error::{Error, Result},
    socket::{Interface, McastSocket, RecvBatch, Wait, Waker},
    wire::control::{self, Control},
};

use sixcast_proto::relay_request::RelayRequest;
pub use sixcast_proto::{
    relay_request::RelayOffer,
    tunnel::{Connector, Pinning, Progress, Tunnel},
};

/// Sleeps on `socket` until a datagram, `deadline` or the owner's close (`waker`), and hands
/// what arrived to `feed`.
fn receive_until(
    socket: &McastSocket,
    waker: &Waker,
    batch: &mut RecvBatch,
    deadline: Instant,
    mut feed: impl FnMut(SocketAddrV6, &[u8], Instant),
) -> Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    match socket.recv_batch(batch, waker, Some(left))? {
        Wait::Woken => Err(Error::closed()),
        Wait::TimedOut => Ok(()),
        Wait::Received(_) => {
            let now = Instant::now();
            for (meta, datagram) in batch.iter() {
                feed(meta.source, datagram, now);
            }
            Ok(())
        }
    }
}

/// Asks Stratum 0 for relays (answering its cookie first) and collects the offers, best first.
fn request_relays(
    socket: &McastSocket,
    waker: &Waker,
    stratum0: SocketAddrV6,
) -> Result<Vec<RelayOffer>> {
    let mut request = RelayRequest::new(stratum0, discovery::nonce()?, Instant::now());
    let mut batch = RecvBatch::new();
    loop {
        while let Some(message) = request.poll_transmit() {
            send_control(socket, &message, stratum0)?;
        }
        if let Some(outcome) = request.outcome(Instant::now()) {
            return outcome;
        }
        receive_until(
            socket,
            waker,
            &mut batch,
            request.poll_timeout(),
            |source, datagram, now| {
                request.on_datagram(source, datagram, now);
            },
        )?;
    }
}

/// Moves `connector` on at `now`: joins a repeater's group on `interfaces` before its handshake
/// (the repeater answers by SSM), and sends what it queued. Once it ends: the open tunnel with
/// the offers not tried, or why no relay opened one. Relays that prove no pinned identity are
/// counted in `rejected`.
pub(crate) fn advance(
    connector: &mut Connector,
    socket: &McastSocket,
    (scope, interfaces): (Scope, &[Interface]),
    rejected: &AtomicU64,
    now: Instant,
) -> Option<Result<(Tunnel, Vec<RelayOffer>)>> {
    while let Some(progress) = connector.poll(now, &mut discovery::nonce, rejected) {
        match progress {
            Progress::Trying(offer) if offer.repeater => {
                // Where the join fails, no SSM arrives and the handshake times out.
                if let Err(err) = join_repeater(socket, scope, interfaces, offer.address) {
                    debug!(repeater = %offer.address, "joining the repeater group: {err}");
                }
            }
            Progress::Trying(_) => {}
            Progress::Opened { tunnel, untried } => return Some(Ok((*tunnel, untried))),
            Progress::Failed(err) => return Some(Err(err)),
        }
    }
    while let Some((message, relay)) = connector.poll_transmit() {
        // A message that did not leave is lost like one dropped on the way: the handshake times
        // out and the next relay is tried.
        if let Err(err) = send_control(socket, &message, relay) {
            debug!(%relay, "opening a tunnel: {err}");
        }
    }
    None
}

/// Joins the repeater group of `scope` from `repeater`, source-specifically, on `interfaces`.
fn join_repeater(
    socket: &McastSocket,
    scope: Scope,
    interfaces: &[Interface],
    repeater: SocketAddrV6,
) -> Result<()> {
    for interface in interfaces {
        match socket.join_source(discovery::repeater_group(scope), *repeater.ip(), interface) {
            // Joined before, for an earlier attempt with this repeater.
            Err(err)
                if err.io_error().and_then(std::io::Error::raw_os_error)
                    == Some(libc::EADDRINUSE) => {}
            joined => joined?,
        }
    }
    Ok(())
}

/// Asks Stratum 0 for relays and opens a tunnel to the best one that completes the handshake
/// (and, with keys pinned, proves a pinned identity); returns it with every offer received.
pub(crate) fn establish(
    socket: &McastSocket,
    waker: &Waker,
    stratum0: SocketAddrV6,
    groups: &[Ipv6Addr],
    network: (Scope, &[Interface]),
    (pinning, rejected): (Pinning, &AtomicU64),
) -> Result<(Tunnel, Vec<RelayOffer>)> {
    let offers = request_relays(socket, waker, stratum0)?;
    let mut connector = Connector::new(offers.clone(), groups, network.0, pinning);
    let mut batch = RecvBatch::new();
    loop {
        if let Some(opened) = advance(&mut connector, socket, network, rejected, Instant::now()) {
            return opened.map(|(tunnel, _)| (tunnel, offers));
        }
        let deadline = connector.poll_timeout().unwrap_or_else(Instant::now);
        receive_until(
            socket,
            waker,
            &mut batch,
            deadline,
            |source, datagram, now| {
                connector.on_datagram(source, datagram, now, rejected);
            },
        )?;
    }
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
