//! Linux (and Android) parts of the socket layer: options socket2 does not wrap, batched I/O
//! with `recvmmsg`/`sendmmsg`, and an eventfd waker.

use std::{
    io, mem,
    net::{Ipv6Addr, SocketAddrV6},
    ops::Range,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    ptr,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use socket2::Socket;

use super::{
    BATCH, RecvBatch, RecvMeta, SocketOptions, Wait,
    unix::{
        PktinfoSpace, read_pktinfo, send_one, set_int_option, sockaddr_in6_of, socket_addr_of,
        wait_readable, write_pktinfo,
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
    // Runs of datagrams a sender passed as one UDP GSO send arrive as one buffer, split again
    // by `RecvBatch`: one wake-up and one copy instead of one per datagram. Kernels without
    // UDP GRO deliver datagram by datagram, which is as correct.
    let _ = set_int_option(socket.as_raw_fd(), libc::SOL_UDP, libc::UDP_GRO, 1);
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

/// Sends `datagrams` to `target` with `sendmmsg`, retrying short sends, naming `interface` (if
/// any) in an `IPV6_PKTINFO` control message. Consecutive datagrams of one length (the
/// fragments of a message, full packed datagrams) go as one UDP GSO send where the kernel
/// allows it, so the path below the socket handles them once.
pub(super) fn send_batch(
    fd: RawFd,
    datagrams: &[Vec<u8>],
    target: SocketAddrV6,
    interface: Option<u32>,
) -> io::Result<()> {
    if let [datagram] = datagrams {
        return send_one(fd, datagram, target, interface);
    }
    let runs = if GSO_REFUSED.load(Ordering::Relaxed) {
        one_by_one(0..datagrams.len())
    } else {
        gso_runs(datagrams.len(), |index| datagrams[index].len(), |_, _| true)
    };
    let mut name = sockaddr_in6_of(target);
    let mut pktinfo = PktinfoSpace::new();
    let pktinfo_len = interface.map_or(0, |interface| write_pktinfo(&mut pktinfo, interface));
    for chunk in runs.chunks(BATCH) {
        let mut iovecs: Vec<libc::iovec> = chunk
            .iter()
            .flat_map(|run| datagrams[run.clone()].iter())
            .map(|datagram| libc::iovec {
                iov_base: datagram.as_ptr().cast_mut().cast(),
                iov_len: datagram.len(),
            })
            .collect();
        // Each message gets its own copy of the control data: the kernel reads it per message.
        let mut controls = vec![pktinfo; chunk.len()];
        let mut messages: Vec<libc::mmsghdr> = Vec::with_capacity(chunk.len());
        let mut first_iovec = 0;
        for (run, control) in chunk.iter().zip(controls.iter_mut()) {
            // SAFETY: mmsghdr is plain data for which all-zero bytes are valid.
            let mut message: libc::mmsghdr = unsafe { mem::zeroed() };
            message.msg_hdr.msg_name = ptr::from_mut(&mut name).cast();
            message.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
            message.msg_hdr.msg_iov = iovecs[first_iovec..].as_mut_ptr();
            message.msg_hdr.msg_iovlen = run.len();
            let control_len = if run.len() > 1 {
                let size = u16::try_from(datagrams[run.start].len()).unwrap_or(u16::MAX);
                write_segment_size(control, pktinfo_len, size)
            } else {
                pktinfo_len
            };
            if control_len > 0 {
                message.msg_hdr.msg_control = control.0.as_mut_ptr().cast();
                message.msg_hdr.msg_controllen = control_len;
            }
            first_iovec += run.len();
            messages.push(message);
        }
        let mut sent = 0;
        while sent < messages.len() {
            let remaining = &mut messages[sent..];
            // SAFETY: every mmsghdr points at live buffers (name, iovecs, control, datagrams)
            // that outlive the call, and the count matches the slice.
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
                    // No GSO here: this run and everything after go datagram by datagram.
                    _ if chunk[sent].len() > 1 && gso_unsupported(&err) => {
                        GSO_REFUSED.store(true, Ordering::Relaxed);
                        return send_batch(fd, &datagrams[chunk[sent].start..], target, interface);
                    }
                    _ => return Err(err),
                }
            }
            sent += rc as usize;
        }
    }
    Ok(())
}

/// The segment size of a buffer in which the kernel coalesced several datagrams (the
/// `UDP_GRO` control message), if it did.
fn read_gro_segment(header: &libc::msghdr) -> Option<usize> {
    // SAFETY: the header's control pointer and length were filled in by the receive call; the
    // CMSG macros stay within msg_controllen and the data is read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(header);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_UDP && (*cmsg).cmsg_type == libc::UDP_GRO {
                let size = ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
                return usize::try_from(size).ok();
            }
            cmsg = libc::CMSG_NXTHDR(header, cmsg);
        }
    }
    None
}

/// Whether a failed GSO send means the kernel or the route cannot segment.
fn gso_unsupported(err: &io::Error) -> bool {
    let unsupported = [libc::EIO, libc::EINVAL, libc::ENOPROTOOPT, libc::EOPNOTSUPP];
    err.raw_os_error()
        .is_some_and(|code| unsupported.contains(&code))
}

/// Most segments one UDP GSO send may carry (the kernel's `UDP_MAX_SEGMENTS`).
const GSO_MAX_SEGMENTS: usize = 64;
/// Most payload bytes one UDP GSO send may carry: what one UDP datagram could.
const GSO_MAX_BYTES: usize = 65_000;

/// Set once the kernel refused a UDP GSO send (older kernels, devices without checksum
/// offload): from then on every datagram goes alone.
static GSO_REFUSED: AtomicBool = AtomicBool::new(false);

/// Splits `count` datagrams into runs that one UDP GSO send can carry: consecutive datagrams
/// to the same target (`same_target` of two indices), all as long as the first but the last,
/// which may be shorter.
fn gso_runs(
    count: usize,
    length: impl Fn(usize) -> usize,
    same_target: impl Fn(usize, usize) -> bool,
) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for index in 0..count {
        if let Some(run) = runs.last_mut() {
            let size = length(run.start);
            let joins = same_target(run.start, index)
                && length(run.end - 1) == size
                && length(index) <= size
                && run.len() < GSO_MAX_SEGMENTS
                && (run.len() + 1) * size <= GSO_MAX_BYTES;
            if joins {
                run.end = index + 1;
                continue;
            }
        }
        runs.push(index..index + 1);
    }
    runs
}

/// Writes a `UDP_SEGMENT` control message for segments of `size` bytes into `space`, after the
/// `used` bytes of control messages already there; returns the length of them all.
fn write_segment_size(space: &mut PktinfoSpace, used: usize, size: u16) -> usize {
    // SAFETY: CMSG_SPACE/CMSG_LEN only compute sizes.
    let (space_len, data_len) = unsafe {
        (
            libc::CMSG_SPACE(size_of::<u16>() as u32) as usize,
            libc::CMSG_LEN(size_of::<u16>() as u32) as usize,
        )
    };
    assert!(used + space_len <= space.0.len(), "control space too small");
    // SAFETY: `used` is a sum of CMSG_SPACE values, so the header at that offset of the
    // 8-aligned space is aligned, and it and its data fit as asserted.
    unsafe {
        let cmsg = space.0.as_mut_ptr().add(used).cast::<libc::cmsghdr>();
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = libc::UDP_SEGMENT;
        (*cmsg).cmsg_len = data_len as _;
        ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), size);
    }
    used + space_len
}

/// Sends each datagram to its own unicast target with `sendmmsg`, a batch per call, and calls
/// `sent` with the index of each one that left. Consecutive datagrams of one length to one
/// target go as one UDP GSO send (segmented by the kernel or the device, so the path below
/// handles them once), where the kernel allows it. One the kernel refuses (a client's route
/// gone, say) is skipped, as a lone `sendto` would fail alone.
pub(super) fn send_each(fd: RawFd, sends: &[(&[u8], SocketAddrV6)], sent: &mut dyn FnMut(usize)) {
    let runs = if GSO_REFUSED.load(Ordering::Relaxed) {
        one_by_one(0..sends.len())
    } else {
        gso_runs(
            sends.len(),
            |index| sends[index].0.len(),
            |first, other| sends[first].1 == sends[other].1,
        )
    };
    send_runs(fd, sends, &runs, sent);
}

fn one_by_one(range: Range<usize>) -> Vec<Range<usize>> {
    range.map(|index| index..index + 1).collect()
}

/// Sends each run of `sends` as one datagram (a GSO one when longer than one).
fn send_runs(
    fd: RawFd,
    sends: &[(&[u8], SocketAddrV6)],
    runs: &[Range<usize>],
    sent: &mut dyn FnMut(usize),
) {
    for chunk in runs.chunks(BATCH) {
        let mut names: Vec<libc::sockaddr_in6> = chunk
            .iter()
            .map(|run| sockaddr_in6_of(sends[run.start].1))
            .collect();
        let mut iovecs: Vec<libc::iovec> = chunk
            .iter()
            .flat_map(|run| sends[run.clone()].iter())
            .map(|(datagram, _)| libc::iovec {
                iov_base: datagram.as_ptr().cast_mut().cast(),
                iov_len: datagram.len(),
            })
            .collect();
        let mut controls = vec![PktinfoSpace::new(); chunk.len()];
        let mut messages: Vec<libc::mmsghdr> = Vec::with_capacity(chunk.len());
        let mut first_iovec = 0;
        for ((run, name), control) in chunk.iter().zip(names.iter_mut()).zip(controls.iter_mut()) {
            // SAFETY: mmsghdr is plain data for which all-zero bytes are valid.
            let mut message: libc::mmsghdr = unsafe { mem::zeroed() };
            message.msg_hdr.msg_name = ptr::from_mut(name).cast();
            message.msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as u32;
            message.msg_hdr.msg_iov = iovecs[first_iovec..].as_mut_ptr();
            message.msg_hdr.msg_iovlen = run.len();
            if run.len() > 1 {
                let size = u16::try_from(sends[run.start].0.len()).unwrap_or(u16::MAX);
                message.msg_hdr.msg_control = control.0.as_mut_ptr().cast();
                message.msg_hdr.msg_controllen = write_segment_size(control, 0, size);
            }
            first_iovec += run.len();
            messages.push(message);
        }
        let mut done = 0;
        while done < messages.len() {
            let remaining = &mut messages[done..];
            // SAFETY: every mmsghdr points at live buffers (name, iovecs, control, datagrams)
            // that outlive the call, and the count matches the slice.
            let rc =
                unsafe { libc::sendmmsg(fd, remaining.as_mut_ptr(), remaining.len() as u32, 0) };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                let run = chunk[done].clone();
                if run.len() > 1 {
                    // Where the kernel or the route has no UDP GSO, every later datagram goes
                    // alone; this run's go alone in any case, so that each fails on its own.
                    let unsupported =
                        [libc::EIO, libc::EINVAL, libc::ENOPROTOOPT, libc::EOPNOTSUPP];
                    if err
                        .raw_os_error()
                        .is_some_and(|code| unsupported.contains(&code))
                    {
                        GSO_REFUSED.store(true, Ordering::Relaxed);
                    }
                    send_runs(fd, sends, &one_by_one(run), sent);
                }
                done += 1;
                continue;
            }
            for run in &chunk[done..done + rc as usize] {
                run.clone().for_each(&mut *sent);
            }
            done += rc as usize;
        }
    }
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
    batch.clear();
    for (index, (message, name)) in messages.iter().zip(&names).take(received).enumerate() {
        let (destination, interface) = read_pktinfo(&message.msg_hdr);
        let meta = RecvMeta {
            source: socket_addr_of(name),
            destination,
            interface,
            len: message.msg_len as usize,
        };
        batch.push(index, meta, read_gro_segment(&message.msg_hdr));
    }
    Ok(Wait::Received(batch.len()))
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

    /// The descriptor that polls readable while a wake-up is pending.
    pub(crate) fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
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
