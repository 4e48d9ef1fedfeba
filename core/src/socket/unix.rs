//! Socket code shared by every Unix platform: socket options by number, `IPV6_PKTINFO` control
//! messages, waiting on the socket and a waker, and interface enumeration.

use std::{
    ffi::{CStr, CString},
    io, mem,
    net::{Ipv6Addr, SocketAddrV6},
    os::fd::RawFd,
    ptr,
    time::Duration,
};

use super::{Interface, Wait};

/// Room for the control messages of one datagram (`IPV6_PKTINFO`, and on Linux a UDP GSO
/// segment size or a UDP GRO one), aligned as `cmsghdr` requires.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub(super) struct PktinfoSpace(pub(super) [u8; 96]);

impl PktinfoSpace {
    pub(super) const fn new() -> Self {
        Self([0; 96])
    }
}

/// Sets an integer socket option that socket2 does not wrap.
pub(super) fn set_int_option(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: i32,
) -> io::Result<()> {
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

/// The C form of an IPv6 socket address.
pub(super) fn sockaddr_in6_of(addr: SocketAddrV6) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain data for which all-zero bytes are valid.
    let mut sin6: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sin6.sin6_port = addr.port().to_be();
    sin6.sin6_addr.s6_addr = addr.ip().octets();
    sin6.sin6_scope_id = addr.scope_id();
    sin6.sin6_flowinfo = addr.flowinfo().to_be();
    sin6
}

/// The Rust form of a received source address.
pub(super) fn socket_addr_of(sin6: &libc::sockaddr_in6) -> SocketAddrV6 {
    SocketAddrV6::new(
        Ipv6Addr::from(sin6.sin6_addr.s6_addr),
        u16::from_be(sin6.sin6_port),
        0,
        sin6.sin6_scope_id,
    )
}

/// Fills `space` with an `IPV6_PKTINFO` control message that chooses the outgoing interface,
/// and returns the length of the control data.
pub(super) fn write_pktinfo(space: &mut PktinfoSpace, interface: u32) -> usize {
    let info = libc::in6_pktinfo {
        ipi6_addr: libc::in6_addr { s6_addr: [0; 16] },
        ipi6_ifindex: interface as _,
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
        header.msg_controllen = space_len as _;
        let cmsg = libc::CMSG_FIRSTHDR(&header);
        (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
        (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
        (*cmsg).cmsg_len = data_len as _;
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>(), info);
    }
    space_len
}

/// Sends one datagram with `sendmsg`, naming `interface` (if any) with `IPV6_PKTINFO`: a lone
/// datagram needs none of the vectors a batch does.
pub(super) fn send_one(
    fd: RawFd,
    datagram: &[u8],
    target: SocketAddrV6,
    interface: Option<u32>,
) -> io::Result<()> {
    let mut name = sockaddr_in6_of(target);
    let mut control = PktinfoSpace::new();
    let mut iovec = libc::iovec {
        iov_base: datagram.as_ptr().cast_mut().cast(),
        iov_len: datagram.len(),
    };
    // SAFETY: msghdr is plain data for which all-zero bytes are valid.
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    header.msg_name = ptr::from_mut(&mut name).cast();
    header.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    header.msg_iov = &raw mut iovec;
    header.msg_iovlen = 1;
    if let Some(interface) = interface {
        header.msg_controllen = write_pktinfo(&mut control, interface) as _;
        header.msg_control = control.0.as_mut_ptr().cast();
    }
    loop {
        // SAFETY: the header points at live locals (name, iovec, control) and the datagram.
        if unsafe { libc::sendmsg(fd, &raw const header, 0) } >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => {}
            // The queue of the interface is full: give the kernel a moment to drain it.
            _ if err.raw_os_error() == Some(libc::ENOBUFS) => {
                std::thread::sleep(Duration::from_micros(100));
            }
            _ => return Err(err),
        }
    }
}

/// Finds the `IPV6_PKTINFO` control message of a received datagram: its destination address
/// and arrival interface.
pub(super) fn read_pktinfo(header: &libc::msghdr) -> (Ipv6Addr, u32) {
    // SAFETY: the header's control pointer and length were filled in by the receive call; the
    // CMSG macros stay within msg_controllen and the data is read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::IPPROTO_IPV6 && (*cmsg).cmsg_type == libc::IPV6_PKTINFO {
                let info = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>());
                return (
                    Ipv6Addr::from(info.ipi6_addr.s6_addr),
                    info.ipi6_ifindex as u32,
                );
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    (Ipv6Addr::UNSPECIFIED, 0)
}

/// Waits until `socket` is readable, `waker` is readable or `timeout` passes. `None` means the
/// socket has data.
pub(super) fn wait_readable(
    socket: RawFd,
    waker: RawFd,
    timeout: Option<Duration>,
) -> io::Result<Option<Wait>> {
    wait_any_readable(&[socket], waker, timeout)
}

/// The most sockets [`wait_any_readable`] watches at once.
pub(super) const MAX_WATCHED: usize = 4;

/// Waits until one of `sockets` (at most [`MAX_WATCHED`]) is readable, `waker` is readable or
/// `timeout` passes. `None` means some socket has data.
pub(super) fn wait_any_readable(
    sockets: &[RawFd],
    waker: RawFd,
    timeout: Option<Duration>,
) -> io::Result<Option<Wait>> {
    if sockets.len() > MAX_WATCHED {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("at most {MAX_WATCHED} sockets are watched at once"),
        ));
    }
    let entry = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds = [entry(-1); MAX_WATCHED + 1];
    fds[0] = entry(waker);
    for (slot, socket) in fds[1..].iter_mut().zip(sockets) {
        *slot = entry(*socket);
    }
    let watched = 1 + sockets.len();
    let timeout_ms = timeout.map_or(-1, |timeout| {
        // Round up so that a short timeout never becomes a busy loop of zero-length polls.
        i32::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX)
    });
    // SAFETY: `fds` is a live array of pollfd, of which the first `watched` are passed.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), watched as libc::nfds_t, timeout_ms) };
    if ready < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted {
            Ok(Some(Wait::TimedOut))
        } else {
            Err(err)
        };
    }
    if fds[0].revents != 0 {
        return Ok(Some(Wait::Woken));
    }
    if ready == 0 || fds[1..watched].iter().all(|fd| fd.revents == 0) {
        return Ok(Some(Wait::TimedOut));
    }
    Ok(None)
}

/// An interface as enumerated, with what it can do.
pub(super) struct FoundInterface {
    pub(super) interface: Interface,
    /// Up, with multicast enabled.
    pub(super) multicast: bool,
    pub(super) loopback: bool,
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
        let Ok(c_name) = CString::new(name.clone()) else {
            continue;
        };
        // SAFETY: c_name is a valid NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if index == 0 {
            continue;
        }
        let flags = ifaddr.ifa_flags as libc::c_int;
        found.push(FoundInterface {
            interface: Interface {
                name: name.into(),
                index,
            },
            multicast: flags & libc::IFF_UP != 0 && flags & libc::IFF_MULTICAST != 0,
            loopback: flags & libc::IFF_LOOPBACK != 0,
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
