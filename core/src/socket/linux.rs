//! Linux (and Android) parts of the socket layer: options socket2 does not wrap, batched I/O
//! with `recvmmsg`/`sendmmsg`, `IPV6_PKTINFO` control messages, an eventfd waker and interface
//! enumeration.

use std::{
    ffi::CStr,
    io, mem,
    net::{Ipv6Addr, SocketAddrV6},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    ptr,
    time::Duration,
};

use socket2::Socket;

use super::{BATCH, Interface, RecvBatch, RecvMeta, SocketOptions, Wait};
use crate::error::{Error, Result};

/// Room for one `IPV6_PKTINFO` control message, aligned as `cmsghdr` requires.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct PktinfoSpace([u8; 64]);

/// Applies the options that socket2 does not cover.
pub(super) fn configure(socket: &Socket, options: &SocketOptions) -> Result<()> {
    // Without this a socket bound to [::] would receive every group any socket of the host joined.
    socket
        .set_multicast_all_v6(false)
        .map_err(|err| Error::io("clearing IPV6_MULTICAST_ALL", err))?;
    // The destination of each datagram tells which channel (and whether relayed) it belongs to.
    set_int_option(
        socket.as_raw_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_RECVPKTINFO,
        1,
    )
    .map_err(|err| Error::io("setting IPV6_RECVPKTINFO", err))?;
    // Privileged processes may exceed net.core.rmem_max; others get what the sysctl allows.
    let size = i32::try_from(options.recv_buffer).unwrap_or(i32::MAX);
    if set_int_option(
        socket.as_raw_fd(),
        libc::SOL_SOCKET,
        libc::SO_RCVBUFFORCE,
        size,
    )
    .is_err()
    {
        socket
            .set_recv_buffer_size(options.recv_buffer)
            .map_err(|err| Error::io("setting SO_RCVBUF", err))?;
    }
    Ok(())
}

fn set_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int, value: i32) -> io::Result<()> {
    // SAFETY: the option value is a live c_int and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            ptr::from_ref(&value).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn sockaddr_storage_of(addr: SocketAddrV6) -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain data for which all-zero bytes are valid.
    let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
    let sin6 = sockaddr_in6_of(addr);
    // SAFETY: sockaddr_storage is large and aligned enough for any socket address.
    unsafe {
        ptr::write(
            ptr::from_mut(&mut storage).cast::<libc::sockaddr_in6>(),
            sin6,
        );
    };
    storage
}

fn sockaddr_in6_of(addr: SocketAddrV6) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain data for which all-zero bytes are valid.
    let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sin6.sin6_port = addr.port().to_be();
    sin6.sin6_addr.s6_addr = addr.ip().octets();
    sin6.sin6_scope_id = addr.scope_id();
    sin6.sin6_flowinfo = addr.flowinfo().to_be();
    sin6
}

/// Joins or leaves (`source`, `group`) with `MCAST_{JOIN,LEAVE}_SOURCE_GROUP` (RFC 3678).
pub(super) fn source_membership(
    socket: &Socket,
    group: Ipv6Addr,
    source: Ipv6Addr,
    interface: u32,
    join: bool,
) -> io::Result<()> {
    let request = libc::group_source_req {
        gsr_interface: interface,
        gsr_group: sockaddr_storage_of(SocketAddrV6::new(group, 0, 0, 0)),
        gsr_source: sockaddr_storage_of(SocketAddrV6::new(source, 0, 0, 0)),
    };
    let name = if join {
        libc::MCAST_JOIN_SOURCE_GROUP
    } else {
        libc::MCAST_LEAVE_SOURCE_GROUP
    };
    // SAFETY: `request` is a live group_source_req and its exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IPV6,
            name,
            ptr::from_ref(&request).cast(),
            size_of::<libc::group_source_req>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Fills `space` with an `IPV6_PKTINFO` control message choosing the outgoing interface and
/// returns the length of the control data.
fn write_pktinfo(space: &mut PktinfoSpace, interface: u32) -> usize {
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr { s6_addr: [0; 16] },
        ipi6_ifindex: interface,
    };
    // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
    let (space_len, data_len) = unsafe {
        (
            libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize,
            libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as usize,
        )
    };
    debug_assert!(space_len <= space.0.len());
    // SAFETY: a msghdr whose control buffer is `space` (aligned, large enough as asserted) yields
    // a first header inside that buffer, into which the header and the pktinfo are written.
    unsafe {
        let mut header: libc::msghdr = mem::zeroed();
        header.msg_control = space.0.as_mut_ptr().cast();
        header.msg_controllen = space_len;
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
        (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
        (*cmsg).cmsg_len = data_len;
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>(), info);
    }
    space_len
}

/// Sends `datagrams` to `target` through `interface` with `sendmmsg`, retrying short sends.
pub(super) fn send_batch(
    fd: RawFd,
    datagrams: &[Vec<u8>],
    target: SocketAddrV6,
    interface: u32,
) -> io::Result<()> {
    let mut name = sockaddr_in6_of(target);
    let mut control = PktinfoSpace([0; 64]);
    let control_len = write_pktinfo(&mut control, interface);
    for chunk in datagrams.chunks(BATCH) {
        let mut iovecs: Vec<libc::iovec> = chunk
            .iter()
            .map(|datagram| libc::iovec {
                iov_base: datagram.as_ptr().cast_mut().cast(),
                iov_len: datagram.len(),
            })
            .collect();
        // Each message gets its own copy of the control data: the kernel reads it per message.
        let mut controls = vec![control; chunk.len()];
        let mut messages: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .zip(controls.iter_mut())
            .map(|(iovec, control)| {
                // SAFETY: mmsghdr is plain data for which all-zero bytes are valid.
                let mut message: libc::mmsghdr = unsafe { mem::zeroed() };
                message.msg_hdr.msg_name = ptr::from_mut(&mut name).cast();
                message.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
                message.msg_hdr.msg_iov = iovec;
                message.msg_hdr.msg_iovlen = 1;
                message.msg_hdr.msg_control = control.0.as_mut_ptr().cast();
                message.msg_hdr.msg_controllen = control_len;
                message
            })
            .collect();
        let mut sent = 0;
        while sent < messages.len() {
            let remaining = &mut messages[sent..];
            // SAFETY: every mmsghdr points at live buffers (name, iovec, control, datagram) that
            // outlive the call, and the count matches the slice.
            let rc =
                unsafe { libc::sendmmsg(fd, remaining.as_mut_ptr(), remaining.len() as u32, 0) };
            if rc < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::Interrupted => continue,
                    // The queue of the interface is full: give the kernel a moment to drain it.
                    _ if err.raw_os_error() == Some(libc::ENOBUFS) => {
                        std::thread::sleep(Duration::from_micros(100));
                        continue;
                    }
                    _ => return Err(err),
                }
            }
            sent += rc as usize;
        }
    }
    Ok(())
}

/// Waits for the socket or the waker, then receives up to a batch of datagrams.
pub(super) fn recv_batch(
    fd: RawFd,
    batch: &mut RecvBatch,
    waker: &Waker,
    timeout: Option<Duration>,
) -> io::Result<Wait> {
    let mut fds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: waker.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    let timeout_ms = timeout.map_or(-1, |timeout| {
        // Round up so that a short timeout never becomes a busy loop of zero-length polls.
        i32::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    });
    // SAFETY: `fds` is a live array of two pollfd.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    if ready < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(Wait::TimedOut)
        } else {
            Err(err)
        };
    }
    if fds[1].revents != 0 {
        return Ok(Wait::Woken);
    }
    if ready == 0 || fds[0].revents == 0 {
        return Ok(Wait::TimedOut);
    }
    receive_ready(fd, batch)
}

fn receive_ready(fd: RawFd, batch: &mut RecvBatch) -> io::Result<Wait> {
    // SAFETY (all zeroed values below): plain C structs for which zero bytes are valid.
    let mut names: [libc::sockaddr_in6; BATCH] = unsafe { mem::zeroed() };
    let mut controls = [PktinfoSpace([0; 64]); BATCH];
    let mut iovecs: Vec<libc::iovec> = batch
        .buffers
        .iter_mut()
        .map(|buffer| libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        })
        .collect();
    let mut messages: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for (((message, name), control), iovec) in messages
        .iter_mut()
        .zip(&mut names)
        .zip(&mut controls)
        .zip(&mut iovecs)
    {
        message.msg_hdr.msg_name = ptr::from_mut(name).cast();
        message.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
        message.msg_hdr.msg_iov = iovec;
        message.msg_hdr.msg_iovlen = 1;
        message.msg_hdr.msg_control = control.0.as_mut_ptr().cast();
        message.msg_hdr.msg_controllen = control.0.len();
    }
    let received = loop {
        // SAFETY: every header points at live, correctly sized buffers owned by this frame or
        // by `batch`; MSG_DONTWAIT because poll already said data is waiting.
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                messages.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                ptr::null_mut(),
            )
        };
        if rc >= 0 {
            break rc as usize;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => return Ok(Wait::TimedOut),
            _ => return Err(err),
        }
    };
    batch.metas.clear();
    for (message, name) in messages.iter().zip(&names).take(received) {
        let (destination, interface) = read_pktinfo(&message.msg_hdr);
        batch.metas.push(RecvMeta {
            source: SocketAddrV6::new(
                Ipv6Addr::from(name.sin6_addr.s6_addr),
                u16::from_be(name.sin6_port),
                0,
                name.sin6_scope_id,
            ),
            destination,
            interface,
            len: message.msg_len as usize,
        });
    }
    Ok(Wait::Received(received))
}

/// Finds the `IPV6_PKTINFO` control message of a received datagram.
fn read_pktinfo(header: &libc::msghdr) -> (Ipv6Addr, u32) {
    // SAFETY: the header's control pointer and length were filled in by recvmmsg; the CMSG
    // macros stay within msg_controllen and the data is read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_IPV6 && (*cmsg).cmsg_type == libc::IPV6_PKTINFO {
                let info = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>());
                return (Ipv6Addr::from(info.ipi6_addr.s6_addr), info.ipi6_ifindex);
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    (Ipv6Addr::UNSPECIFIED, 0)
}

/// Wakes a thread blocked in [`recv_batch`], for shutdown.
pub(crate) struct Waker {
    fd: OwnedFd,
}

impl Waker {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: eventfd has no memory arguments; a valid descriptor is owned by OwnedFd.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::io("creating an eventfd", io::Error::last_os_error()));
        }
        // SAFETY: `fd` was just returned by eventfd and is owned by nobody else.
        Ok(Self {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Makes every current and future wait on this waker return at once.
    pub(crate) fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd, as eventfd(2) requires. A full
        // counter (EAGAIN) still leaves the descriptor readable, which is all that matters.
        unsafe { libc::write(self.fd.as_raw_fd(), ptr::from_ref(&one).cast(), 8) };
    }
}

/// An interface as enumerated, with whether it can carry multicast.
pub(super) struct FoundInterface {
    pub(super) interface: Interface,
    pub(super) usable: bool,
}

/// Lists the host's interfaces (once each) with `getifaddrs`.
pub(super) fn interfaces() -> io::Result<Vec<FoundInterface>> {
    let mut list: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: getifaddrs fills `list`, which is freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut found: Vec<FoundInterface> = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned and is not yet freed.
        let ifaddr = unsafe { &*entry };
        entry = ifaddr.ifa_next;
        if ifaddr.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(ifaddr.ifa_name) }
            .to_string_lossy()
            .into_owned();
        if found.iter().any(|known| *known.interface.name == name) {
            continue;
        }
        let Ok(c_name) = std::ffi::CString::new(name.clone()) else {
            continue;
        };
        // SAFETY: c_name is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if index == 0 {
            continue;
        }
        let flags = ifaddr.ifa_flags;
        let usable = flags & libc::IFF_UP as u32 != 0
            && flags & libc::IFF_MULTICAST as u32 != 0
            && flags & libc::IFF_LOOPBACK as u32 == 0;
        found.push(FoundInterface {
            interface: Interface {
                name: name.into(),
                index,
            },
            usable,
        });
    }
    // SAFETY: `list` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(list) };
    found.sort_by_key(|found| found.interface.index);
    Ok(found)
}

/// The name of interface `index`.
pub(super) fn interface_name(index: u32) -> Option<String> {
    let mut buffer = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: the buffer has the IF_NAMESIZE bytes if_indextoname requires.
    let name = unsafe { libc::if_indextoname(index, buffer.as_mut_ptr()) };
    if name.is_null() {
        return None;
    }
    // SAFETY: on success the buffer holds a NUL-terminated name.
    Some(
        unsafe { CStr::from_ptr(buffer.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}
