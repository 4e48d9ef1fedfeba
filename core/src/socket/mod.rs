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

#[cfg(not(unix))]
compile_error!(
    "sixcast's socket layer supports Unix systems so far; Windows needs a socket/windows.rs"
);

mod unix;

#[cfg(any(target_os = "linux", target_os = "android"))]
#[path = "linux.rs"]
mod imp;

#[cfg(all(unix, not(any(target_os = "linux", target_os = "android"))))]
#[path = "portable.rs"]
mod imp;

// Linux builds the portable implementation too, so that its tests keep it honest.
#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod portable;

pub(crate) use imp::Waker;

/// Datagrams handled per `recvmmsg`/`sendmmsg` call.
pub(crate) const BATCH: usize = 32;

/// Large enough for any UDP payload, so no sender's datagram size can truncate a receive.
const RECV_BUFFER_LEN: usize = 65_536;

/// Socket settings taken from the context's configuration.
#[derive(Debug, Clone)]
pub(crate) struct SocketOptions {
    /// Local address to bind; unspecified for every address of the host.
    pub(crate) address: Ipv6Addr,
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
    /// One per datagram. A buffer holds several where the kernel coalesced a run of them
    /// (UDP GRO).
    metas: Vec<RecvMeta>,
    /// Where each datagram of `metas` starts: its buffer and the offset in it.
    starts: Vec<(usize, usize)>,
}

impl RecvBatch {
    pub(crate) fn new() -> Self {
        Self {
            buffers: vec![vec![0; RECV_BUFFER_LEN]; BATCH],
            metas: Vec::with_capacity(BATCH),
            starts: Vec::with_capacity(BATCH),
        }
    }

    /// The datagrams of the last receive, with their metadata.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&RecvMeta, &[u8])> {
        self.metas
            .iter()
            .zip(&self.starts)
            .map(|(meta, &(buffer, offset))| {
                (meta, &self.buffers[buffer][offset..offset + meta.len])
            })
    }

    /// Forgets the last receive.
    fn clear(&mut self) {
        self.metas.clear();
        self.starts.clear();
    }

    /// Records what a receive into buffer `buffer` brought: `meta.len` bytes, which are one
    /// datagram, or consecutive datagrams of `segment` bytes each (the last may be shorter)
    /// where the kernel coalesced them.
    fn push(&mut self, buffer: usize, meta: RecvMeta, segment: Option<usize>) {
        let total = meta.len.min(self.buffers[buffer].len());
        let step = segment
            .filter(|&segment| segment > 0 && segment < total)
            .unwrap_or(total);
        let mut offset = 0;
        loop {
            let len = step.min(total - offset);
            self.metas.push(RecvMeta { len, ..meta });
            self.starts.push((buffer, offset));
            offset += len;
            if offset >= total {
                break;
            }
        }
    }

    /// Whether the last receive filled every buffer: more datagrams were likely waiting.
    pub(crate) fn filled(&self) -> bool {
        self.starts
            .last()
            .is_some_and(|&(buffer, _)| buffer + 1 == self.buffers.len())
    }

    /// How many datagrams the last receive brought.
    fn len(&self) -> usize {
        self.metas.len()
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
    /// The interface set as the socket's `IPV6_MULTICAST_IF`: multicast sent through it needs
    /// no per-datagram `IPV6_PKTINFO` (which costs the kernel an allocation and a parse).
    multicast_interface: Option<u32>,
}

impl McastSocket {
    /// Binds `[address]:port` (usually `[::]`) so that several processes of the host can listen
    /// to the same channels.
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
        let local = SocketAddrV6::new(options.address, options.port, 0, 0);
        socket
            .bind(&SockAddr::from(local))
            .map_err(|err| Error::io(format_args!("binding UDP {local}"), err))?;
        let port = socket
            .local_addr()
            .ok()
            .and_then(|addr| addr.as_socket_ipv6())
            .map_or(options.port, |addr| addr.port());
        Ok(Self {
            socket,
            port,
            multicast_interface: None,
        })
    }

    /// Where the owner multicasts on exactly one interface (of `interfaces`), makes it the
    /// socket's multicast interface, so that sends to it carry no control message. With several
    /// each send keeps choosing its interface. Best effort: if the kernel refuses, sends keep
    /// their control message.
    pub(crate) fn send_multicast_on(&mut self, interfaces: &[Interface]) {
        if let [only] = interfaces
            && only.index != 0
            && self.socket.set_multicast_if_v6(only.index).is_ok()
        {
            self.multicast_interface = Some(only.index);
        }
    }

    /// The interface to name in a send's control message: none where the socket's multicast
    /// interface already is the one (the kernel uses it for multicast without one).
    fn control_interface(&self, destination: Ipv6Addr, interface: &Interface) -> Option<u32> {
        if destination.is_multicast() && self.multicast_interface == Some(interface.index) {
            None
        } else {
            Some(interface.index)
        }
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
            if err.kind() == std::io::ErrorKind::Unsupported {
                return Error::new(ErrorKind::Unsupported, err.to_string());
            }
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
        let control = self.control_interface(destination, interface);
        imp::send_batch(self.socket.as_raw_fd(), datagrams, target, control).map_err(|err| {
            Error::io(
                format_args!(
                    "sending to [{destination}]:{} via {}",
                    self.port, interface.name
                ),
                err,
            )
        })
    }

    /// Sends one datagram to `target` (a group and a port other than this socket's) out of
    /// `interface`.
    pub(crate) fn send_via(
        &self,
        datagram: &[u8],
        target: SocketAddrV6,
        interface: &Interface,
    ) -> Result<()> {
        unix::send_one(
            self.socket.as_raw_fd(),
            datagram,
            target,
            self.control_interface(*target.ip(), interface),
        )
        .map_err(|err| {
            Error::io(
                format_args!("sending to {target} via {}", interface.name),
                err,
            )
        })
    }

    /// Sends one datagram to a unicast peer.
    pub(crate) fn send_to(&self, datagram: &[u8], target: SocketAddrV6) -> Result<()> {
        self.socket
            .send_to(datagram, &SockAddr::from(target))
            .map(drop)
            .map_err(|err| Error::io(format_args!("sending to {target}"), err))
    }

    /// Sends each datagram to its own unicast target, with as few system calls as the platform
    /// allows, and calls `sent` with the index of each one that left (one the kernel refuses is
    /// skipped, the others still go).
    pub(crate) fn send_each(&self, sends: &[(&[u8], SocketAddrV6)], sent: &mut dyn FnMut(usize)) {
        imp::send_each(self.socket.as_raw_fd(), sends, sent);
    }

    /// Whether datagrams have arrived that nobody read yet (looks without waiting).
    pub(crate) fn has_unread(&self) -> bool {
        // No waker (-1: poll ignores it) and no wait.
        matches!(
            unix::wait_readable(self.socket.as_raw_fd(), -1, Some(Duration::ZERO)),
            Ok(None)
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

/// Waits, without receiving, until one of `sockets` (at most four) has a datagram, `waker` is
/// woken, or `timeout` passes: `Ok(None)` when some socket is readable (receive from each with
/// a zero timeout), else why the wait ended. A driver of several sockets thus sleeps on all of
/// them at once instead of in turns.
pub(crate) fn wait_any(
    sockets: &[&McastSocket],
    waker: &Waker,
    timeout: Option<Duration>,
) -> Result<Option<Wait>> {
    let fds: Vec<_> = sockets
        .iter()
        .map(|socket| socket.socket.as_raw_fd())
        .collect();
    unix::wait_any_readable(&fds, waker.as_raw_fd(), timeout)
        .map_err(|err| Error::io("waiting for datagrams", err))
}

/// Link-local and interface-local groups need the interface as scope id when sent to.
fn is_link_scoped(group: Ipv6Addr) -> bool {
    matches!(group.octets()[1] & 0x0f, 1 | 2)
}

/// The interfaces named in the configuration, or when none are named every interface that is up
/// with multicast enabled, loopback excepted: only some systems (macOS) carry multicast over
/// loopback, so it is used only when named.
pub(crate) fn select_interfaces(names: &[String]) -> Result<Vec<Interface>> {
    let all = unix::interfaces().map_err(|err| Error::io("listing network interfaces", err))?;
    if names.is_empty() {
        let all: Vec<_> = all
            .into_iter()
            .filter(|found| found.multicast && !found.loopback)
            .map(|found| found.interface)
            .collect();
        if all.is_empty() {
            return Err(Error::new(
                ErrorKind::UnknownInterface,
                "no network interface is up with multicast enabled (loopback cannot carry \
                 multicast on Linux); bring one up or name one in the configuration",
            ));
        }
        return Ok(all);
    }
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
            if !found.multicast {
                return Err(Error::new(
                    ErrorKind::UnknownInterface,
                    format!("interface {name:?} is down or has multicast disabled"),
                ));
            }
            Ok(found.interface.clone())
        })
        .collect()
}

/// The name of interface `index`, if it exists. Index 0 (no interface: what came down a relay
/// tunnel) is answered without asking the kernel, which would cost a socket per datagram.
pub(crate) fn interface_name(index: u32) -> Option<String> {
    if index == 0 {
        return None;
    }
    unix::interface_name(index)
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests;
