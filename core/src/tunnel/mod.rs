//! A node's side of the relay fallback on its unicast socket: handshakes with the offered relays
//! (joining a repeater's group first), and sends what the tunnel's protocol queues and channel
//! datagrams up the tunnel (see `docs/reachability.md`). The protocol itself, without I/O, is
//! `sixcast_proto::relay_request` and `sixcast_proto::tunnel`; the reach thread
//! (`channel/reach.rs`) drives it beside its other steps.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::AtomicU64,
    time::Instant,
};

use tracing::debug;

use crate::{
    addr::Scope,
    discovery::{self, send_control},
    error::Result,
    socket::{Interface, McastSocket},
    wire::control::{self, Control},
};

pub use sixcast_proto::{
    relay_request::RelayOffer,
    tunnel::{Connector, Pinning, Progress, Tunnel},
};

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
