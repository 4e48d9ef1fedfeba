//! A node's probe of native reachability: whether the core's multicast reaches the node (Stratum
//! 0's ECHO arrives on the probe group) and whether the node's multicast reaches the core
//! (Stratum 0 heard its BEACON), see `docs/reachability.md`, section 2.
//!
//! The protocol is `sixcast_proto::probe::Prober`, without I/O, which the reach machine
//! (`sixcast_proto::reach`) runs as one of its steps. This module opens the probe's listener on
//! the probe group, which the reach thread sleeps on beside its unicast socket while a probe is
//! under way.

use std::net::Ipv6Addr;

pub use sixcast_proto::probe::ProbeReport;

use crate::{
    addr::Scope,
    discovery::{CONTROL_PORT, probe_group},
    error::Result,
    socket::{Interface, McastSocket, SocketOptions},
};

/// Binds the probe's listener and joins the probe group of `scope` on every interface. It
/// also sends the probe's beacons, with `hop_limit`.
pub(crate) fn listener(
    scope: Scope,
    hop_limit: u8,
    interfaces: &[Interface],
) -> Result<McastSocket> {
    // Loopback on, so that a Stratum 0 on this very host hears the beacon.
    let listener = McastSocket::bind(&SocketOptions {
        address: Ipv6Addr::UNSPECIFIED,
        port: CONTROL_PORT,
        hop_limit,
        loopback: true,
        recv_buffer: 1 << 20,
    })?;
    for interface in interfaces {
        listener.join(probe_group(scope), interface)?;
    }
    Ok(listener)
}
