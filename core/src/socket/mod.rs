//! All operating-system socket code: one UDP/IPv6 socket per context, group membership, batched
//! send and receive with per-datagram destination and interface, and interface discovery.
//!
//! The portable part lives here on top of socket2; what socket2 lacks (source-specific joins,
//! `IPV6_RECVPKTINFO`, `recvmmsg`/`sendmmsg`, a wake-up handle) lives in a per-platform module.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    os::fd::AsRawFd,
    sync::Arc,
    time::Duration,
};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::error::{Error, ErrorKind, Result};

#[cfg(any(target_os = "linux", target_os = "android"))]
#[path = "linux.rs"]
mod imp;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
compile_error!(
    "sixcast's socket layer supports Linux and Android so far; \
     other platforms need a socket/<platform>.rs beside socket/linux.rs"
);

pub(crate) use imp::Waker;

/// Datagrams handled per `recvmmsg`/`sendmmsg` call.
pub(crate) const BATCH: usize = 32;

/// Large enough for any UDP payload, so no sender's datagram size can truncate a receive.
const RECV_BUFFER_LEN: usize = 65_536;

/// Socket settings taken from the context's configuration.
#[derive(Debug, Clone)]
pub(crate) struct SocketOptions {
    pub(crate) port: u16,
    pub(crate) hop_limit: u8,
    pub(crate) loopback: bool,
    pub(crate) recv_buffer: usize,
}

/// A network interface that can carry multicast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interface {
    pub(crate) name: Arc<str>,
    pub(crate) index: u32,
}

/// What the kernel reported about one received datagram.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecvMeta {
    /// Sender's address and port.
    pub(crate) source: SocketAddrV6,
    /// The group (or unicast address) the datagram was sent to.
    pub(crate) destination: Ipv6Addr,
    /// The interface it arrived on.
    pub(crate) interface: u32,
    /// Payload length.
    pub(crate) len: usize,
}

/// Receive buffers for one batch, allocated once and reused.
pub(crate) struct RecvBatch {
    buffers: Vec<Vec<u8>>,
    metas: Vec<RecvMeta>,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        Self {
            buffers: vec![vec![0; RECV_BUFFER_LEN]; BATCH],
            metas: Vec::with_capacity(BATCH),
        }
    }

    /// The datagrams of the last receive, with their metadata.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&RecvMeta, &[u8])> {
        self.metas
            .iter()
            .zip(&self.buffers)
            .map(|(meta, buffer)| (meta, &buffer[..meta.len]))
    }
}

/// The outcome of waiting for datagrams.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// The batch holds this many datagrams.
    Received(usize),
    /// The timeout passed with nothing received.
    TimedOut,
    /// The waker was triggered: the owner is shutting down.
    Woken,
}

/// The context's UDP socket.
pub(crate) struct McastSocket {
    socket: Socket,
    port: u16,
}

impl McastSocket {
    /// Binds `[::]:port` so that several processes of the host can listen to the same channels.
    pub(crate) fn bind(options: &SocketOptions) -> Result<Self> {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM.cloexec(), Some(Protocol::UDP))
            .map_err(|err| Error::io("creating a UDP/IPv6 socket", err))?;
        let setup = |what: &str, result: std::io::Result<()>| {
            result.map_err(|err| Error::io(format_args!("setting {what}"), err))
        };
        setup("IPV6_V6ONLY", socket.set_only_v6(true))?;
        // Sharing the port is what lets several listeners on one host hear the same group.
        setup("SO_REUSEADDR", socket.set_reuse_address(true))?;
        setup(
            "IPV6_MULTICAST_HOPS",
            socket.set_multicast_hops_v6(u32::from(options.hop_limit)),
        )?;
        setup(
            "IPV6_MULTICAST_LOOP",
            socket.set_multicast_loop_v6(options.loopback),
        )?;
        imp::configure(&socket, options)?;
        let local = SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, options.port, 0, 0);
        socket.bind(&SockAddr::from(local)).map_err(|err| {
            Error::io(
                format_args!("binding UDP port {} on [::]", options.port),
                err,
            )
        })?;
        let port = socket
            .local_addr()
            .ok()
            .and_then(|addr| addr.as_socket_ipv6())
            .map_or(options.port, |addr| addr.port());
        Ok(Self { socket, port })
    }

    /// The bound UDP port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Joins `group` (any source) on interface `interface`.
    pub(crate) fn join(&self, group: Ipv6Addr, interface: &Interface) -> Result<()> {
        self.socket
            .join_multicast_v6(&group, interface.index)
            .map_err(|err| Error::io(format_args!("joining {group} on {}", interface.name), err))
    }

    /// Leaves an any-source membership.
    pub(crate) fn leave(&self, group: Ipv6Addr, interface: &Interface) -> Result<()> {
        self.socket
            .leave_multicast_v6(&group, interface.index)
            .map_err(|err| Error::io(format_args!("leaving {group} on {}", interface.name), err))
    }

    /// Joins `group` from `source` only (SSM, RFC 4607) on `interface`.
    pub(crate) fn join_source(
        &self,
        group: Ipv6Addr,
        source: Ipv6Addr,
        interface: &Interface,
    ) -> Result<()> {
        imp::source_membership(&self.socket, group, source, interface.index, true).map_err(|err| {
            Error::io(
                format_args!("joining ({source}, {group}) on {}", interface.name),
                err,
            )
        })
    }

    /// Leaves a source-specific membership.
    pub(crate) fn leave_source(
        &self,
        group: Ipv6Addr,
        source: Ipv6Addr,
        interface: &Interface,
    ) -> Result<()> {
        imp::source_membership(&self.socket, group, source, interface.index, false).map_err(|err| {
            Error::io(
                format_args!("leaving ({source}, {group}) on {}", interface.name),
                err,
            )
        })
    }

    /// Sends every datagram in `datagrams` to `destination` out of `interface`, in order, with as
    /// few system calls as the platform allows.
    pub(crate) fn send_batch(
        &self,
        datagrams: &[Vec<u8>],
        destination: Ipv6Addr,
        interface: &Interface,
    ) -> Result<()> {
        let scope_id = if is_link_scoped(destination) {
            interface.index
        } else {
            0
        };
        let target = SocketAddrV6::new(destination, self.port, 0, scope_id);
        imp::send_batch(self.socket.as_raw_fd(), datagrams, target, interface.index).map_err(
            |err| {
                Error::io(
                    format_args!(
                        "sending to [{destination}]:{} via {}",
                        self.port, interface.name
                    ),
                    err,
                )
            },
        )
    }

    /// Waits until datagrams arrive, `waker` fires or `timeout` passes, then receives a batch.
    pub(crate) fn recv_batch(
        &self,
        batch: &mut RecvBatch,
        waker: &Waker,
        timeout: Option<Duration>,
    ) -> Result<Wait> {
        imp::recv_batch(self.socket.as_raw_fd(), batch, waker, timeout)
            .map_err(|err| Error::io("receiving datagrams", err))
    }
}

/// Link-local and interface-local groups need the interface as scope id when sent to.
fn is_link_scoped(group: Ipv6Addr) -> bool {
    matches!(group.octets()[1] & 0x0f, 1 | 2)
}

/// Every interface that is up and can carry multicast, loopback excepted (Linux does not deliver
/// multicast over `lo`).
pub(crate) fn multicast_interfaces() -> Result<Vec<Interface>> {
    imp::interfaces()
        .map_err(|err| Error::io("listing network interfaces", err))
        .map(|all| {
            all.into_iter()
                .filter(|found| found.usable)
                .map(|found| found.interface)
                .collect()
        })
}

/// The interfaces named in the configuration, or all multicast interfaces when none are named.
pub(crate) fn select_interfaces(names: &[String]) -> Result<Vec<Interface>> {
    if names.is_empty() {
        let all = multicast_interfaces()?;
        if all.is_empty() {
            return Err(Error::new(
                ErrorKind::UnknownInterface,
                "no network interface is up with multicast enabled (loopback cannot carry \
                 multicast on Linux); bring one up or name one in the configuration",
            ));
        }
        return Ok(all);
    }
    let all = imp::interfaces().map_err(|err| Error::io("listing network interfaces", err))?;
    names
        .iter()
        .map(|name| {
            let found = all
                .iter()
                .find(|found| *found.interface.name == **name)
                .ok_or_else(|| {
                    let known: Vec<_> = all.iter().map(|found| &*found.interface.name).collect();
                    Error::new(
                        ErrorKind::UnknownInterface,
                        format!(
                            "no interface named {name:?}; this host has {}",
                            known.join(", ")
                        ),
                    )
                })?;
            if !found.usable {
                return Err(Error::new(
                    ErrorKind::UnknownInterface,
                    format!("interface {name:?} is down, is loopback, or has multicast disabled"),
                ));
            }
            Ok(found.interface.clone())
        })
        .collect()
}

/// The name of interface `index`, if it exists.
pub(crate) fn interface_name(index: u32) -> Option<String> {
    imp::interface_name(index)
}
