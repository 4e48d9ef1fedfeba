//! A multicast router in user space, for kernels built without IPv6 multicast routing.
//!
//! Each router leg gets an AF_PACKET socket that a socket filter limits to IPv6 packets with a
//! multicast destination, and the leg is put in all-multicast mode. One thread waits on all the
//! sockets at once; each frame read is judged by [`Forwarder`] (scope, route, hop limit), and a
//! copy goes out of every leg a route names, addressed to the group's Ethernet address
//! (`33:33` and the group's last four bytes) from that leg's own.
//!
//! Frames are read and sent with a virtio-net header (`PACKET_VNET_HDR`), so that what the kernel
//! knows of a frame crosses with it: a UDP GSO burst crosses as one frame and is split where a
//! plain segment would split it, and a UDP checksum that the sender left to the hardware (veths
//! offload it) is still completed. Without it such frames arrive with a partial checksum and the
//! receiving host drops them. Frames the router's own host sends are not read at all
//! (`PACKET_IGNORE_OUTGOING`), so the router never hears its own copies.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::{Arc, Mutex, PoisonError},
    thread::JoinHandle,
};

use crate::{
    Host, NetlabError, Result,
    mroute::{Forwarder, ForwardingStats, Mroute, Verdict},
    netns,
};

/// The virtio-net header in front of each frame: flags, GSO type, header length, GSO size,
/// checksum start and offset.
const VNET_HEADER_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the only flag meaningful on send (`DATA_VALID` is receive-only).
const NEEDS_CHECKSUM: u8 = 1;
const ETHERNET_HEADER_LEN: usize = 14;
/// Where the IPv6 packet starts, and its destination's first byte, in a received buffer.
const PACKET_START: usize = VNET_HEADER_LEN + ETHERNET_HEADER_LEN;
/// The largest frame: a 64 KiB IPv6 payload (or GSO burst) behind its headers.
const BUFFER_LEN: usize = PACKET_START + 40 + 65_535;
/// How many frames one leg hands over before the others get their turn.
const BURST: usize = 64;
/// Each leg's receive buffer, for bursts that arrive while the thread waits for a core.
const RECEIVE_BUFFER: libc::c_int = 4 << 20;

/// The router's thread and what it shares. Dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct PacketRouter {
    router: Host,
    /// An eventfd the thread waits on beside the legs: written to, it ends the thread.
    stop: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<Mutex<ForwardingStats>>,
}

/// One leg: its socket and Ethernet address.
#[derive(Debug)]
struct Leg {
    socket: OwnedFd,
    mac: [u8; 6],
}

impl PacketRouter {
    /// Opens a socket on each of `router`'s legs and starts forwarding by `routes`. Frames that
    /// arrive once this returns are forwarded.
    pub(crate) fn start(router: &Host, routes: &[Mroute]) -> Result<Self> {
        let names: Vec<&str> = router.interfaces().iter().map(|leg| leg.name()).collect();
        let forwarder = Forwarder::new(routes, &names)?;
        let legs = router.run(|| {
            router
                .interfaces()
                .iter()
                .map(|leg| {
                    open_leg(leg.name(), leg.index()).map_err(|source| {
                        NetlabError::io(
                            format!("cannot open a packet socket on the router's {}", leg.name()),
                            source,
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()
        })??;
        let stop = Arc::new(
            eventfd().map_err(|source| NetlabError::io("cannot make an eventfd", source))?,
        );
        let stats = Arc::new(Mutex::new(ForwardingStats::default()));
        let thread = {
            let (stop, stats) = (Arc::clone(&stop), Arc::clone(&stats));
            std::thread::Builder::new()
                .name(format!("netlab-mrouter-{}", router.name()))
                .spawn(move || forward(&legs, &forwarder, &stop, &stats))
                .map_err(|source| NetlabError::io("cannot start the router thread", source))?
        };
        Ok(Self {
            router: router.clone(),
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// What the router counted so far.
    pub(crate) fn stats(&self) -> ForwardingStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the forwarding thread still runs.
    pub(crate) fn is_running(&self) -> bool {
        self.thread
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }

    /// Stops forwarding: no frame is forwarded once this returns. The legs leave all-multicast
    /// mode.
    pub(crate) fn stop(mut self) -> Result<()> {
        self.stop_thread()?;
        let router = self.router.clone();
        router.run(|| {
            router.interfaces().iter().try_for_each(|leg| {
                netns::set_interface_flag(leg.name(), libc::IFF_ALLMULTI, false).map_err(|source| {
                    NetlabError::io(
                        format!(
                            "cannot end all-multicast mode on the router's {}",
                            leg.name()
                        ),
                        source,
                    )
                })
            })
        })?
    }

    fn stop_thread(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to an eventfd we own.
        let written = unsafe { libc::write(self.stop.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        if written < 0 {
            return Err(NetlabError::io(
                "cannot wake the router thread",
                io::Error::last_os_error(),
            ));
        }
        thread
            .join()
            .map_err(|_| NetlabError::io("the router thread panicked", io::Error::other("panic")))
    }
}

impl Drop for PacketRouter {
    fn drop(&mut self) {
        // `stop` reports failures; this covers teardown and panics, where the namespace goes
        // away with the legs' flags.
        let _ = self.stop_thread();
    }
}

/// The thread: waits on every leg and the stop eventfd, and forwards until stopped.
fn forward(legs: &[Leg], forwarder: &Forwarder, stop: &OwnedFd, stats: &Mutex<ForwardingStats>) {
    let mut waits: Vec<libc::pollfd> = std::iter::once(stop.as_raw_fd())
        .chain(legs.iter().map(|leg| leg.socket.as_raw_fd()))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let mut buffer = vec![0u8; BUFFER_LEN];
    let mut counted = ForwardingStats::default();
    loop {
        // SAFETY: `waits` is a live array of pollfds of the length passed.
        let ready = unsafe { libc::poll(waits.as_mut_ptr(), waits.len() as libc::nfds_t, -1) };
        if ready < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::error!("the user-space multicast router stops: poll failed: {err}");
            return;
        }
        if waits[0].revents != 0 {
            return;
        }
        for (from, wait) in waits[1..].iter().enumerate() {
            if wait.revents != 0 {
                drain(legs, from, forwarder, &mut buffer, &mut counted);
            }
        }
        *stats.lock().unwrap_or_else(PoisonError::into_inner) = counted;
    }
}

/// Forwards up to [`BURST`] frames waiting on leg `from`.
fn drain(
    legs: &[Leg],
    from: usize,
    forwarder: &Forwarder,
    buffer: &mut [u8],
    stats: &mut ForwardingStats,
) {
    for _ in 0..BURST {
        // SAFETY: receives into a live buffer of the length passed; MSG_TRUNC returns the real
        // length of a longer frame, which is then dropped.
        let len = unsafe {
            libc::recv(
                legs[from].socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        let Ok(len) = usize::try_from(len) else {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::WouldBlock && err.kind() != io::ErrorKind::Interrupted {
                tracing::warn!("the user-space multicast router could not read a frame: {err}");
            }
            return;
        };
        let verdict = if len < PACKET_START || len > buffer.len() {
            forwarder.route(from, &mut [])
        } else {
            forwarder.route(from, &mut buffer[PACKET_START..len])
        };
        stats.count(&verdict);
        if let Verdict::Forward(to) = verdict {
            let frame = &mut buffer[..len];
            frame[0] &= NEEDS_CHECKSUM;
            // The group's Ethernet address: 33:33 and the group's last four bytes.
            let group_tail = PACKET_START + 36;
            let ethernet = VNET_HEADER_LEN;
            frame[ethernet..ethernet + 2].copy_from_slice(&[0x33, 0x33]);
            frame.copy_within(group_tail..group_tail + 4, ethernet + 2);
            for out in to.iter() {
                let leg = &legs[out];
                frame[ethernet + 6..ethernet + 12].copy_from_slice(&leg.mac);
                match send(leg.socket.as_raw_fd(), frame) {
                    Ok(()) => stats.forwarded += 1,
                    Err(err) => {
                        stats.send_failed += 1;
                        tracing::debug!("the user-space multicast router dropped a copy: {err}");
                    }
                }
            }
        }
    }
}

fn send(fd: RawFd, frame: &[u8]) -> io::Result<()> {
    // SAFETY: sends from a live buffer of the length passed.
    let sent = unsafe { libc::send(fd, frame.as_ptr().cast(), frame.len(), libc::MSG_DONTWAIT) };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain eventfd(2) call; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &impl Sized,
) -> io::Result<()> {
    // SAFETY: the option value is a live, initialised value and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(value).cast(),
            size_of_val(value) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens leg `ifname` (index `ifindex`) in the calling thread's namespace, in all-multicast mode.
fn open_leg(ifname: &str, ifindex: u32) -> io::Result<Leg> {
    const ETH_P_IPV6: u16 = libc::ETH_P_IPV6 as u16;
    // Protocol 0 until bind: a socket opened for IPv6 would read every interface's frames until
    // it is bound to its own, and before its filter is set.
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor that nothing else owns.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let on: libc::c_int = 1;
    set_option(fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &on)?;
    set_option(fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &on)?;
    // SO_RCVBUFFORCE passes the system's limit with CAP_NET_ADMIN; without it, what the limit allows.
    set_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RECEIVE_BUFFER)
        .or_else(|_| set_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RECEIVE_BUFFER))?;
    let filter = multicast_only_filter();
    let program = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr().cast_mut(),
    };
    set_option(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &program)?;
    // SAFETY: sockaddr_ll is plain old data for which all-zero bytes are a valid value.
    let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    address.sll_family = libc::AF_PACKET as u16;
    address.sll_protocol = ETH_P_IPV6.to_be();
    address.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: binds to a live sockaddr_ll whose size is passed.
    let rc = unsafe {
        libc::bind(
            fd,
            std::ptr::from_ref(&address).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    netns::set_interface_flag(ifname, libc::IFF_ALLMULTI, true)?;
    Ok(Leg {
        socket,
        mac: netns::interface_mac(ifname)?,
    })
}

/// A classic BPF program that accepts a frame whole if the IPv6 destination's first byte is
/// `ff` (multicast) and drops it otherwise, so unicast never reaches user space. The socket is
/// bound to IPv6 frames; offsets count from the Ethernet header.
fn multicast_only_filter() -> [libc::sock_filter; 4] {
    const DESTINATION_FIRST_BYTE: u32 = (ETHERNET_HEADER_LEN + 24) as u32;
    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    [
        statement(
            libc::BPF_LD | libc::BPF_B | libc::BPF_ABS,
            DESTINATION_FIRST_BYTE,
        ),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: 0xff,
        },
        statement(libc::BPF_RET | libc::BPF_K, u32::MAX),
        statement(libc::BPF_RET | libc::BPF_K, 0),
    ]
}
