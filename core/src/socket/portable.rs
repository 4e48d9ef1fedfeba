//! The socket layer for Unix systems other than Linux (macOS, iOS, the BSDs): one `sendmsg`
//! and one `recvmsg` per datagram, and a pipe as waker. It compiles on Linux too, where a test
//! runs it over loopback unicast so that it stays correct between macOS builds.

use std::{
    io, mem,
    net::{Ipv6Addr, SocketAddrV6},
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    ptr,
    time::Duration,
};

use socket2::Socket;

use super::{
    BATCH, RecvBatch, RecvMeta, SocketOptions, Wait,
    unix::{
        PktinfoSpace, read_pktinfo, send_one, set_int_option, sockaddr_in6_of, socket_addr_of,
        wait_readable,
    },
};
use crate::error::{Error, Result};

/// Applies the options that socket2 does not cover.
pub(super) fn configure(socket: &Socket, options: &SocketOptions) -> Result<()> {
    // BSD-derived stacks share a multicast port between sockets only with SO_REUSEPORT. There
    // is no IPV6_MULTICAST_ALL: datagrams of groups no channel joined are counted and dropped.
    socket
        .set_reuse_port(true)
        .map_err(|err| Error::io("setting SO_REUSEPORT", err))?;
    set_int_option(
        socket.as_raw_fd(),
        libc::IPPROTO_IPV6,
        libc::IPV6_RECVPKTINFO,
        1,
    )
    .map_err(|err| Error::io("setting IPV6_RECVPKTINFO", err))?;
    socket
        .set_recv_buffer_size(options.recv_buffer)
        .map_err(|err| Error::io("setting SO_RCVBUF", err))
}

/// Source-specific joins are not dependable outside Linux (macOS accepts the option and does
/// not filter), so they are refused rather than quietly receiving every source.
pub(super) fn source_membership(
    _socket: &Socket,
    _group: Ipv6Addr,
    _source: Ipv6Addr,
    _interface: u32,
    _join: bool,
) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "source-specific multicast joins are supported on Linux and Android only",
    ))
}

/// Sends each datagram to its own unicast target, one `sendto` each, and calls `sent` with the
/// index of each one that left; one the kernel refuses is skipped.
pub(super) fn send_each(fd: RawFd, sends: &[(&[u8], SocketAddrV6)], sent: &mut dyn FnMut(usize)) {
    let left = sends.iter().map(|(datagram, target)| {
        let name = sockaddr_in6_of(*target);
        loop {
            // SAFETY: the datagram and the address are live for the call, with their lengths.
            let rc = unsafe {
                libc::sendto(
                    fd,
                    datagram.as_ptr().cast(),
                    datagram.len(),
                    0,
                    ptr::from_ref(&name).cast(),
                    size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                )
            };
            if rc >= 0 {
                return true;
            }
            if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return false;
            }
        }
    });
    for (index, left) in left.enumerate() {
        if left {
            sent(index);
        }
    }
}

/// Sends each datagram with its own `sendmsg`, naming `interface` (if any) with `IPV6_PKTINFO`.
pub(super) fn send_batch(
    fd: RawFd,
    datagrams: &[Vec<u8>],
    target: SocketAddrV6,
    interface: Option<u32>,
) -> io::Result<()> {
    datagrams
        .iter()
        .try_for_each(|datagram| send_one(fd, datagram, target, interface))
}

/// Waits for the socket or the waker, then receives what is queued, up to a batch.
pub(super) fn recv_batch(
    fd: RawFd,
    batch: &mut RecvBatch,
    waker: &Waker,
    timeout: Option<Duration>,
) -> io::Result<Wait> {
    if let Some(outcome) = wait_readable(fd, waker.read.as_raw_fd(), timeout)? {
        return Ok(outcome);
    }
    batch.clear();
    for index in 0..batch.buffers.len().min(BATCH) {
        match receive_one(fd, &mut batch.buffers[index])? {
            Some(meta) => batch.push(index, meta, None),
            None => break,
        }
    }
    Ok(match batch.len() {
        0 => Wait::TimedOut,
        received => Wait::Received(received),
    })
}

/// Receives one datagram without blocking; `None` when nothing is queued.
fn receive_one(fd: RawFd, buffer: &mut [u8]) -> io::Result<Option<RecvMeta>> {
    // SAFETY (both zeroed values): plain C structs for which zero bytes are valid.
    let mut name: libc::sockaddr_in6 = unsafe { mem::zeroed() };
    let mut header: libc::msghdr = unsafe { mem::zeroed() };
    let mut control = PktinfoSpace::new();
    let mut iovec = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    header.msg_name = ptr::from_mut(&mut name).cast();
    header.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    header.msg_iov = &mut iovec;
    header.msg_iovlen = 1;
    header.msg_control = control.0.as_mut_ptr().cast();
    header.msg_controllen = control.0.len() as _;
    let len = loop {
        // SAFETY: the header points at live buffers owned by this frame or the caller.
        let rc = unsafe { libc::recvmsg(fd, &mut header, libc::MSG_DONTWAIT) };
        if rc >= 0 {
            break rc as usize;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => {}
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(err),
        }
    };
    let (destination, interface) = read_pktinfo(&header);
    Ok(Some(RecvMeta {
        source: socket_addr_of(&name),
        destination,
        interface,
        len,
    }))
}

/// Wakes a thread blocked in [`recv_batch`]: a non-blocking pipe whose read end then polls
/// readable.
pub(crate) struct Waker {
    read: OwnedFd,
    write: OwnedFd,
}

impl Waker {
    pub(crate) fn new() -> Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) returns.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(Error::io("creating a pipe", io::Error::last_os_error()));
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            // SAFETY: fcntl on descriptors owned above.
            unsafe {
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
                libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
            }
        }
        Ok(Self { read, write })
    }

    /// The descriptor that polls readable while a wake-up is pending.
    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Makes every current and future wait on this waker return at once.
    pub(crate) fn wake(&self) {
        // SAFETY: writes one byte from a live buffer; a full pipe already polls readable.
        unsafe { libc::write(self.write.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
    }

    /// Makes waits block again after a [`wake`](Self::wake); returns whether one had happened.
    pub(crate) fn reset(&self) -> bool {
        let mut drained = [0u8; 64];
        let mut woken = false;
        // SAFETY: reads into a live buffer of the given length from a non-blocking pipe, until
        // it is empty.
        while unsafe { libc::read(self.read.as_raw_fd(), drained.as_mut_ptr().cast(), 64) } > 0 {
            woken = true;
        }
        woken
    }
}
