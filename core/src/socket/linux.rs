//! Linux (and Android) parts of the socket layer: options socket2 does not wrap, batched I/O
//! with `recvmmsg`/`sendmmsg`, and an eventfd waker.

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
        PktinfoSpace, read_pktinfo, set_int_option, sockaddr_in6_of, socket_addr_of, wait_readable,
        write_pktinfo,
    },
};
use crate::error::{Error, Result};

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

/// Sends `datagrams` to `target` through `interface` with `sendmmsg`, retrying short sends.
pub(super) fn send_batch(
    fd: RawFd,
    datagrams: &[Vec<u8>],
    target: SocketAddrV6,
    interface: u32,
) -> io::Result<()> {
    let mut name = sockaddr_in6_of(target);
    let mut control = PktinfoSpace::new();
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
    if let Some(outcome) = wait_readable(fd, waker.fd.as_raw_fd(), timeout)? {
        return Ok(outcome);
    }
    receive_ready(fd, batch)
}

fn receive_ready(fd: RawFd, batch: &mut RecvBatch) -> io::Result<Wait> {
    // SAFETY (all zeroed values below): plain C structs for which zero bytes are valid.
    let mut names: [libc::sockaddr_in6; BATCH] = unsafe { mem::zeroed() };
    let mut controls = [PktinfoSpace::new(); BATCH];
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
            source: socket_addr_of(name),
            destination,
            interface,
            len: message.msg_len as usize,
        });
    }
    Ok(Wait::Received(received))
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

    /// Makes waits block again after a [`wake`](Self::wake); returns whether one had happened.
    pub(crate) fn reset(&self) -> bool {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from a non-blocking eventfd, as eventfd(2)
        // requires; nothing to read (EAGAIN) means no wake-up is pending.
        let read = unsafe { libc::read(self.fd.as_raw_fd(), ptr::from_mut(&mut count).cast(), 8) };
        read == 8
    }
}
