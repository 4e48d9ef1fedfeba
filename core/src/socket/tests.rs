//! Both implementations over loopback unicast (Linux carries no multicast on `lo`).

use std::time::Instant;

use super::*;

fn loopback() -> Interface {
    let index = unix::interfaces()
        .unwrap()
        .into_iter()
        .find(|found| &*found.interface.name == "lo")
        .map(|found| found.interface.index)
        .expect("a loopback interface");
    Interface {
        name: "lo".into(),
        index,
    }
}

fn options(port: u16) -> SocketOptions {
    SocketOptions {
        address: Ipv6Addr::UNSPECIFIED,
        port,
        hop_limit: 1,
        loopback: true,
        recv_buffer: 1 << 20,
    }
}

/// A socket2 socket bound to [::1] with `configure` applied by the implementation under test.
fn bound(configure: fn(&Socket, &SocketOptions) -> Result<()>) -> (Socket, u16) {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    configure(&socket, &options(0)).unwrap();
    socket
        .bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::LOCALHOST,
            0,
            0,
            0,
        )))
        .unwrap();
    let port = socket
        .local_addr()
        .unwrap()
        .as_socket_ipv6()
        .unwrap()
        .port();
    (socket, port)
}

type SendBatch = fn(RawFdOf, &[Vec<u8>], SocketAddrV6, Option<u32>) -> std::io::Result<()>;
type RawFdOf = std::os::fd::RawFd;

/// Sends datagrams from one socket to another and checks that each arrives on its own, in
/// order, with its metadata. Returns how many of them shared a receive buffer with the one
/// before (coalesced by UDP GRO, split again by `RecvBatch`).
fn exchange<W>(
    configure: fn(&Socket, &SocketOptions) -> Result<()>,
    send_batch: SendBatch,
    recv_batch: fn(RawFdOf, &mut RecvBatch, &W, Option<Duration>) -> std::io::Result<Wait>,
    waker: &W,
) -> usize {
    let (receiver, port) = bound(configure);
    let (sender, sender_port) = bound(configure);
    let lo = loopback();
    // Datagrams of growing lengths, then a run of one length and a shorter last one (which
    // Linux sends as one UDP GSO datagram): each arrives on its own, in order.
    let datagrams: Vec<Vec<u8>> = (0..40u8)
        .map(|i| vec![i; usize::from(i) + 1])
        .chain((0..20u8).map(|i| vec![i; 100]))
        .chain([vec![0xaa; 40]])
        .collect();
    let target = SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0);
    // With the interface named in a control message (a batch, then one alone), then (the
    // GSO run) without one.
    send_batch(sender.as_raw_fd(), &datagrams[..39], target, Some(lo.index)).unwrap();
    send_batch(
        sender.as_raw_fd(),
        &datagrams[39..40],
        target,
        Some(lo.index),
    )
    .unwrap();
    send_batch(sender.as_raw_fd(), &datagrams[40..], target, None).unwrap();
    let mut batch = RecvBatch::new();
    let mut received = Vec::new();
    let mut coalesced = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while received.len() < datagrams.len() && Instant::now() < deadline {
        if let Wait::Received(_) = recv_batch(
            receiver.as_raw_fd(),
            &mut batch,
            waker,
            Some(Duration::from_millis(100)),
        )
        .unwrap()
        {
            for (meta, datagram) in batch.iter() {
                assert_eq!(meta.destination, Ipv6Addr::LOCALHOST);
                assert_eq!(meta.interface, lo.index);
                assert_eq!(
                    meta.source,
                    SocketAddrV6::new(Ipv6Addr::LOCALHOST, sender_port, 0, 0)
                );
                received.push(datagram.to_vec());
            }
            coalesced += batch
                .starts
                .iter()
                .filter(|(_, offset)| *offset > 0)
                .count();
        }
    }
    assert_eq!(received, datagrams);
    let quiet = recv_batch(
        receiver.as_raw_fd(),
        &mut batch,
        waker,
        Some(Duration::from_millis(20)),
    );
    assert_eq!(quiet.unwrap(), Wait::TimedOut);
    coalesced
}

#[test]
fn a_coalesced_buffer_splits_into_its_segments() {
    let meta = |len| RecvMeta {
        source: SocketAddrV6::new(Ipv6Addr::LOCALHOST, 1, 0, 0),
        destination: Ipv6Addr::LOCALHOST,
        interface: 1,
        len,
    };
    let mut batch = RecvBatch::new();
    for (index, byte) in batch.buffers[0][..250].iter_mut().enumerate() {
        *byte = u8::try_from(index / 100).unwrap();
    }
    // Segments of 100 bytes, the last one shorter; then a lone datagram; then a segment
    // size the length does not exceed; then an empty datagram.
    batch.push(0, meta(250), Some(100));
    batch.push(1, meta(7), None);
    batch.push(2, meta(30), Some(30));
    batch.push(3, meta(0), Some(100));
    let lengths: Vec<usize> = batch
        .iter()
        .map(|(meta, datagram)| {
            assert_eq!(meta.len, datagram.len());
            datagram.len()
        })
        .collect();
    assert_eq!(lengths, [100, 100, 50, 7, 30, 0]);
    assert_eq!(batch.len(), 6);
    let firsts: Vec<u8> = batch
        .iter()
        .take(3)
        .map(|(_, datagram)| datagram[0])
        .collect();
    assert_eq!(firsts, [0, 1, 2]);
    // A length beyond the buffer (the kernel never reports one) is cut to the buffer.
    batch.clear();
    batch.push(0, meta(RECV_BUFFER_LEN + 5), Some(RECV_BUFFER_LEN));
    assert_eq!(
        batch
            .iter()
            .map(|(_, datagram)| datagram.len())
            .collect::<Vec<_>>(),
        [RECV_BUFFER_LEN]
    );
}

#[test]
fn linux_batches_carry_destination_and_interface() {
    let waker = Waker::new().unwrap();
    let coalesced = exchange(imp::configure, imp::send_batch, imp::recv_batch, &waker);
    // The run of 20 and its shorter last one left as one GSO send and arrived as one.
    assert_eq!(coalesced, 20);
}

#[test]
fn portable_datagrams_carry_destination_and_interface() {
    let waker = portable::Waker::new().unwrap();
    let coalesced = exchange(
        portable::configure,
        portable::send_batch,
        portable::recv_batch,
        &waker,
    );
    assert_eq!(coalesced, 0);
}

type SendEach = fn(RawFdOf, &[(&[u8], SocketAddrV6)], &mut dyn FnMut(usize));

/// Sends more than a batch, spread over two receivers, with one unreachable target among
/// them: every other datagram reaches its own receiver.
/// What `receiver` receives, datagram by datagram, until `count` arrived or 2 s passed.
fn receive_up_to(receiver: &Socket, count: usize, waker: &Waker) -> Vec<Vec<u8>> {
    let mut batch = RecvBatch::new();
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while received.len() < count && Instant::now() < deadline {
        if let Wait::Received(_) = imp::recv_batch(
            receiver.as_raw_fd(),
            &mut batch,
            waker,
            Some(Duration::from_millis(100)),
        )
        .unwrap()
        {
            received.extend(batch.iter().map(|(_, datagram)| datagram.to_vec()));
        }
    }
    received
}

fn send_to_each(send_each: SendEach) {
    let (first, first_port) = bound(imp::configure);
    let (second, second_port) = bound(imp::configure);
    let (sender, _) = bound(imp::configure);
    let to = |port| SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0);
    let datagrams: Vec<Vec<u8>> = (0..2 * BATCH as u8).map(|i| vec![i; 8]).collect();
    let mut sends: Vec<(&[u8], SocketAddrV6)> = datagrams
        .iter()
        .enumerate()
        .map(|(i, datagram)| {
            let port = if i % 2 == 0 { first_port } else { second_port };
            (datagram.as_slice(), to(port))
        })
        .collect();
    // UDP refuses port 0 as a destination.
    sends.insert(3, (&[0xee], to(0)));
    let mut left = Vec::new();
    send_each(sender.as_raw_fd(), &sends, &mut |index| left.push(index));
    let expected: Vec<usize> = (0..sends.len()).filter(|index| *index != 3).collect();
    assert_eq!(left, expected, "all but the refused one");
    let waker = Waker::new().unwrap();
    for (receiver, parity) in [(first, 0), (second, 1)] {
        let received = receive_up_to(&receiver, BATCH, &waker);
        let expected: Vec<Vec<u8>> = datagrams.iter().skip(parity).step_by(2).cloned().collect();
        assert_eq!(received, expected);
    }
    // A run to one target, all of one length but the last (what GSO carries as one), still
    // arrives as separate datagrams, in order.
    let (receiver, port) = bound(imp::configure);
    let run: Vec<Vec<u8>> = (0..10u8)
        .map(|i| vec![i; 100])
        .chain([vec![0xaa; 40]])
        .collect();
    let sends: Vec<(&[u8], SocketAddrV6)> = run
        .iter()
        .map(|datagram| (datagram.as_slice(), to(port)))
        .collect();
    let mut left = Vec::new();
    send_each(sender.as_raw_fd(), &sends, &mut |index| left.push(index));
    assert_eq!(left, (0..run.len()).collect::<Vec<_>>());
    assert_eq!(receive_up_to(&receiver, run.len(), &waker), run);
}

#[test]
fn linux_sends_to_each_target_in_batches() {
    send_to_each(imp::send_each);
}

#[test]
fn portable_sends_to_each_target() {
    send_to_each(portable::send_each);
}

#[test]
fn a_woken_wait_returns_at_once_on_every_implementation() {
    let (socket, _) = bound(imp::configure);
    let mut batch = RecvBatch::new();
    let waker = Waker::new().unwrap();
    waker.wake();
    let outcome = imp::recv_batch(socket.as_raw_fd(), &mut batch, &waker, None).unwrap();
    assert_eq!(outcome, Wait::Woken);
    let waker = portable::Waker::new().unwrap();
    waker.wake();
    let outcome = portable::recv_batch(socket.as_raw_fd(), &mut batch, &waker, None).unwrap();
    assert_eq!(outcome, Wait::Woken);
}

#[test]
fn a_reset_waker_lets_waits_block_again_on_every_implementation() {
    let (socket, _) = bound(imp::configure);
    let mut batch = RecvBatch::new();
    let quiet = Some(Duration::from_millis(10));
    let waker = Waker::new().unwrap();
    assert!(!waker.reset(), "a fresh waker reported a wake-up");
    waker.wake();
    waker.wake();
    assert!(waker.reset());
    let outcome = imp::recv_batch(socket.as_raw_fd(), &mut batch, &waker, quiet).unwrap();
    assert_eq!(outcome, Wait::TimedOut);
    let waker = portable::Waker::new().unwrap();
    waker.wake();
    waker.wake();
    assert!(waker.reset());
    assert!(!waker.reset());
    let outcome = portable::recv_batch(socket.as_raw_fd(), &mut batch, &waker, quiet).unwrap();
    assert_eq!(outcome, Wait::TimedOut);
}

/// Whether `fd` polls readable right now.
fn polls_readable(fd: std::os::fd::RawFd) -> bool {
    let mut entry = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd, no wait.
    unsafe { libc::poll(&raw mut entry, 1, 0) == 1 }
}

#[test]
fn a_wakers_descriptor_polls_readable_exactly_while_a_wake_up_is_pending() {
    let linux = Waker::new().unwrap();
    let portable = portable::Waker::new().unwrap();
    for (wake, reset, fd) in [
        (
            &(|| linux.wake()) as &dyn Fn(),
            &(|| linux.reset()) as &dyn Fn() -> bool,
            linux.as_raw_fd(),
        ),
        (
            &|| portable.wake(),
            &|| portable.reset(),
            portable.as_raw_fd(),
        ),
    ] {
        assert!(!polls_readable(fd));
        wake();
        wake();
        assert!(polls_readable(fd));
        assert!(reset());
        assert!(!polls_readable(fd));
    }
}

#[test]
fn only_sends_on_the_one_multicast_interface_skip_the_control_message() {
    let lo = loopback();
    let group: Ipv6Addr = "ff12::be:1".parse().unwrap();
    let other = Interface {
        name: "other".into(),
        index: lo.index + 1,
    };
    let mut socket = McastSocket::bind(&options(0)).unwrap();
    socket.send_multicast_on(&[lo.clone(), other.clone()]);
    assert_eq!(socket.control_interface(group, &lo), Some(lo.index));
    socket.send_multicast_on(std::slice::from_ref(&lo));
    assert_eq!(socket.control_interface(group, &lo), None);
    assert_eq!(socket.control_interface(group, &other), Some(other.index));
    // Unicast ignores IPV6_MULTICAST_IF: it keeps naming the interface.
    let unicast = Ipv6Addr::LOCALHOST;
    assert_eq!(socket.control_interface(unicast, &lo), Some(lo.index));
}

#[test]
fn source_specific_joins_are_refused_where_unsupported() {
    let (socket, _) = bound(portable::configure);
    let err = portable::source_membership(
        &socket,
        "ff3e::8000:1".parse().unwrap(),
        Ipv6Addr::LOCALHOST,
        1,
        true,
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}

#[test]
fn unread_datagrams_are_seen_without_waiting() {
    let socket = McastSocket::bind(&options(0)).unwrap();
    assert!(!socket.has_unread());
    let target = SocketAddrV6::new(Ipv6Addr::LOCALHOST, socket.port(), 0, 0);
    // Loopback queues the datagram at the receiving socket before `send_to` returns.
    socket.send_to(b"unread", target).unwrap();
    assert!(socket.has_unread());
    let waker = Waker::new().unwrap();
    let mut batch = RecvBatch::new();
    let wait = socket.recv_batch(&mut batch, &waker, Some(Duration::from_secs(1)));
    assert_eq!(wait.unwrap(), Wait::Received(1));
    assert!(!socket.has_unread());
}
