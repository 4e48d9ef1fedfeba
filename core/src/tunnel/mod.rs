//! A node's side of the relay fallback on its unicast socket: joins a repeater's group before
//! its handshake, and sends what the tunnel's protocol queues and channel datagrams up the
//! tunnel (see `docs/reachability.md`). The protocol itself, without I/O, is
//! `sixcast_proto::tunnel`, and choosing a relay is a step of `sixcast_proto::reach`, which the
//! reach thread (`channel/reach.rs`) drives.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
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
    tunnel::{Pinning, Tunnel},
};

/// Joins the repeater group of `scope` from `repeater`, source-specifically, on `interfaces`.
pub(crate) fn join_repeater(
    socket: &McastSocket,
    (scope, interfaces): (Scope, &[Interface]),
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
