//! The worlds' multicast router, tested as a router with real packets: whichever router the
//! machine gets (smcroute, or the user-space router on kernels without IPv6 multicast routing),
//! it must lower the hop limit, keep link scope on its link, pass a source-specific route's
//! sources only, never send a copy back where it came from, and carry UDP GSO bursts and
//! datagrams whose checksum was left to the hardware.

use std::{
    io,
    mem::size_of,
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    os::fd::AsRawFd,
    process::Command,
    time::{Duration, Instant},
};

use sixcast_netlab::{ForwardingStats, Host, MulticastRouterKind, World};

mod common;
use common::{
    ABSENCE_WINDOW, ARRIVAL_TIMEOUT, SWITCH_TIMEOUT, arrives, build, delivered, environment_ready,
    group, reaches_none, receiver, send_copies, sender, sender_from, ssm_receiver,
};

/// The user-space router's counters, or zeros with smcroute (which counts nothing for us).
fn stats(world: &World) -> ForwardingStats {
    world.forwarding_stats().unwrap_or_default()
}

fn uses_user_space_router(world: &World) -> bool {
    world.multicast_router_kind() == Some(MulticastRouterKind::UserSpace)
}

/// Sets integer socket option `name` at `level` on `socket`.
fn set_int_option(socket: &UdpSocket, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    // SAFETY: the option value is a live c_int and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "socket option {level}/{name}: {}",
        io::Error::last_os_error()
    );
}

/// Makes `socket` report each datagram's hop limit.
fn report_hop_limits(socket: &UdpSocket) {
    set_int_option(socket, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, 1);
}

/// Waits up to `timeout` for a datagram carrying `payload` and returns the hop limit it arrived
/// with; the socket must report hop limits.
fn hop_limit_of(socket: &UdpSocket, payload: &[u8], timeout: Duration) -> Option<u8> {
    let deadline = Instant::now() + timeout;
    let mut data = [0u8; 2048];
    // Room for one control message of one int, aligned as cmsghdr wants.
    let mut control = [0u64; 8];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        socket.set_read_timeout(Some(left)).expect("read timeout");
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // SAFETY: msghdr is plain old data for which all-zero bytes are a valid value.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = &raw mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = size_of_val(&control);
        // SAFETY: every buffer the message points to is live and its length is given.
        let len = unsafe { libc::recvmsg(socket.as_raw_fd(), &raw mut message, 0) };
        let Ok(len) = usize::try_from(len) else {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return None,
                _ => panic!("receiving: {err}"),
            }
        };
        if &data[..len] != payload {
            continue;
        }
        // SAFETY: walks the control messages recvmsg wrote into `control`, within its length.
        let mut header = unsafe { libc::CMSG_FIRSTHDR(&raw const message) };
        while !header.is_null() {
            // SAFETY: `header` points at a complete control message inside `control`.
            let cmsg = unsafe { &*header };
            if cmsg.cmsg_level == libc::IPPROTO_IPV6 && cmsg.cmsg_type == libc::IPV6_HOPLIMIT {
                // SAFETY: an IPV6_HOPLIMIT message carries one int.
                let hops = unsafe {
                    libc::CMSG_DATA(header)
                        .cast::<libc::c_int>()
                        .read_unaligned()
                };
                return u8::try_from(hops).ok();
            }
            // SAFETY: as above; CMSG_NXTHDR returns null after the last one.
            header = unsafe { libc::CMSG_NXTHDR(&raw const message, header) };
        }
        panic!("a datagram arrived without its hop limit");
    }
}

#[test]
fn the_hop_limit_drops_by_one_per_hop_and_1_is_not_forwarded() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::routed_mcast());
    let (a1, a2, b1) = (world.host("a1"), world.host("a2"), world.host("b1"));
    let channel = group("ff1e::5c:300");
    let destination = SocketAddrV6::new(channel, 7300, 0, 0);
    let (a2_inbox, b1_inbox) = (
        receiver(a2, 7300, Some(channel)),
        receiver(b1, 7300, Some(channel)),
    );
    report_hop_limits(&a2_inbox);
    report_hop_limits(&b1_inbox);
    for hops in [8, 2] {
        let payload = format!("sent with hop limit {hops}");
        send_copies(&sender(a1, hops), payload.as_bytes(), destination);
        let hops = u8::try_from(hops).unwrap();
        assert_eq!(
            hop_limit_of(&a2_inbox, payload.as_bytes(), ARRIVAL_TIMEOUT),
            Some(hops),
            "on the sender's segment"
        );
        assert_eq!(
            hop_limit_of(&b1_inbox, payload.as_bytes(), ARRIVAL_TIMEOUT),
            Some(hops - 1),
            "one router further"
        );
    }
    let before = stats(&world);
    send_copies(&sender(a1, 1), b"hop limit 1", destination);
    assert_eq!(
        hop_limit_of(&a2_inbox, b"hop limit 1", ARRIVAL_TIMEOUT),
        Some(1)
    );
    assert_eq!(
        hop_limit_of(&b1_inbox, b"hop limit 1", ABSENCE_WINDOW),
        None,
        "hop limit 1 crossed the router"
    );
    if uses_user_space_router(&world) {
        let counted = stats(&world).hop_limit_exceeded - before.hop_limit_exceeded;
        assert_eq!(counted, 3, "every copy sent with hop limit 1 is counted");
    }
}

#[test]
fn link_scope_groups_and_link_local_sources_stay_on_their_segment() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::routed_mcast());
    let (a1, a2, b1) = (world.host("a1"), world.host("a2"), world.host("b1"));
    let before = stats(&world);
    // Link-scope groups, sent with a hop limit that would cross many routers.
    for (index, text) in ["ff12::5c:310", "ff02::5c:311"].into_iter().enumerate() {
        let (channel, port) = (group(text), 7310 + index as u16);
        let (a2_inbox, b1_inbox) = (
            receiver(a2, port, Some(channel)),
            receiver(b1, port, Some(channel)),
        );
        send_copies(
            &sender(a1, 64),
            b"link scope",
            SocketAddrV6::new(channel, port, 0, a1.ifindex()),
        );
        assert!(
            arrives(&a2_inbox, b"link scope", a1.addr(), ARRIVAL_TIMEOUT),
            "a2 got {channel}"
        );
        assert!(
            reaches_none(&[("b1", &b1_inbox)], b"link scope", a1.addr()),
            "{channel} crossed the router"
        );
    }
    // A routed group from a link-local source: the source is only meaningful on its link.
    let channel = group("ff1e::5c:312");
    let (a2_inbox, b1_inbox) = (
        receiver(a2, 7312, Some(channel)),
        receiver(b1, 7312, Some(channel)),
    );
    let link_local = SocketAddrV6::new(a1.link_local(), 0, 0, a1.ifindex());
    send_copies(
        &sender_from(a1, link_local, 64),
        b"from fe80::",
        SocketAddrV6::new(channel, 7312, 0, 0),
    );
    assert!(
        arrives(&a2_inbox, b"from fe80::", a1.link_local(), ARRIVAL_TIMEOUT),
        "a2 got the link-local source's datagram"
    );
    assert!(
        reaches_none(&[("b1", &b1_inbox)], b"from fe80::", a1.link_local()),
        "a link-local source crossed the router"
    );
    if uses_user_space_router(&world) {
        // Three copies of each of the three kinds, and MLD reports (ff02::16) besides.
        let counted = stats(&world).link_scope - before.link_scope;
        assert!(counted >= 9, "only {counted} link-scope packets counted");
    }
}

#[test]
fn a_source_specific_route_passes_only_its_sources() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::routed_ssm());
    let (a1, b1, b2) = (world.host("a1"), world.host("b1"), world.host("b2"));
    // A second address of a1 outside segment a's /64: the route (fd5c:a::/64, ff3e::/32) must
    // not carry what a1 sends from it, though it leaves by the same leg.
    let stranger: Ipv6Addr = "fd5c:99::11".parse().unwrap();
    let status = Command::new("ip")
        .args([
            "-n",
            a1.netns(),
            "addr",
            "add",
            "fd5c:99::11/128",
            "dev",
            "eth0",
            "nodad",
        ])
        .status()
        .expect("running ip");
    assert!(status.success(), "adding {stranger} to a1");
    let channel = group("ff3e::8000:5c32");
    let destination = SocketAddrV6::new(channel, 7320, 0, 0);
    let from_segment = ssm_receiver(b1, 7320, a1.addr(), channel);
    let from_stranger = ssm_receiver(b2, 7320, stranger, channel);
    assert!(
        delivered(
            &sender(a1, 8),
            &from_segment,
            b"from a's own prefix",
            destination,
            a1.addr(),
            SWITCH_TIMEOUT
        ),
        "b1 did not get (a1, {channel})"
    );
    let before = stats(&world);
    send_copies(
        &sender_from(a1, SocketAddrV6::new(stranger, 0, 0, 0), 8),
        b"from outside the route",
        destination,
    );
    assert!(
        reaches_none(
            &[("b2", &from_stranger)],
            b"from outside the route",
            stranger
        ),
        "the router passed a source outside its (S,G) route"
    );
    if uses_user_space_router(&world) {
        assert!(stats(&world).no_route - before.no_route >= 3);
    }
}

/// Reads datagrams from `socket` for `window` and counts those from `from` equal to `payload`.
fn copies_within(socket: &UdpSocket, payload: &[u8], from: Ipv6Addr, window: Duration) -> usize {
    let deadline = Instant::now() + window;
    let mut copies = 0;
    while arrives(
        socket,
        payload,
        from,
        deadline.saturating_duration_since(Instant::now()),
    ) {
        copies += 1;
    }
    copies
}

#[test]
fn each_segment_gets_one_copy_and_none_goes_back() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::stratum2());
    world.set_router_multicast(true).expect("switching on");
    let host = |name| world.host(name);
    let c1: &Host = host("c1");
    let channel = group("ff1e::5c:330");
    let inboxes: Vec<(&str, UdpSocket)> = ["c2", "i1", "j1"]
        .into_iter()
        .map(|name| (name, receiver(host(name), 7330, Some(channel))))
        .collect();
    let outbox = sender(c1, 8);
    let destination = SocketAddrV6::new(channel, 7330, 0, 0);
    for (name, inbox) in &inboxes[1..] {
        assert!(
            delivered(
                &outbox,
                inbox,
                b"warm-up",
                destination,
                c1.addr(),
                SWITCH_TIMEOUT
            ),
            "{name} is not reached"
        );
    }
    // Drain the warm-up's copies before counting.
    for (_, inbox) in &inboxes {
        copies_within(inbox, b"warm-up", c1.addr(), Duration::from_millis(200));
    }
    for round in 0..5 {
        let payload = format!("once each, round {round}");
        outbox
            .send_to(payload.as_bytes(), destination)
            .expect("sending");
        for (name, inbox) in &inboxes {
            assert_eq!(
                copies_within(
                    inbox,
                    payload.as_bytes(),
                    c1.addr(),
                    Duration::from_millis(300)
                ),
                1,
                "{name}'s copies of {payload:?}"
            );
        }
    }
}

#[test]
fn gso_bursts_and_offloaded_checksums_cross_the_router() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::routed_mcast());
    let (a1, a2, b1) = (world.host("a1"), world.host("a2"), world.host("b1"));
    let channel = group("ff1e::5c:340");
    let (a2_inbox, b1_inbox) = (
        receiver(a2, 7340, Some(channel)),
        receiver(b1, 7340, Some(channel)),
    );
    let outbox = sender(a1, 8);
    let destination = SocketAddrV6::new(channel, 7340, 0, 0);
    // A plain datagram first: veths leave its UDP checksum to the "hardware", so a router that
    // re-sent the frame as read would deliver a bad checksum, which the receiver drops.
    assert!(
        delivered(
            &outbox,
            &b1_inbox,
            b"checksum",
            destination,
            a1.addr(),
            SWITCH_TIMEOUT
        ),
        "a plain datagram did not cross"
    );
    // Then one send of five 1000-byte segments, split by the receivers' side as on a segment.
    set_int_option(&outbox, libc::SOL_UDP, libc::UDP_SEGMENT, 1000);
    let burst: Vec<u8> = (0..5_000)
        .map(|index| (index / 1000) as u8 + b'a')
        .collect();
    outbox
        .send_to(&burst, destination)
        .expect("sending a GSO burst");
    for (name, inbox) in [("a2", &a2_inbox), ("b1", &b1_inbox)] {
        for piece in burst.chunks(1000) {
            assert!(
                arrives(inbox, piece, a1.addr(), ARRIVAL_TIMEOUT),
                "{name} lacks segment {:?}",
                char::from(piece[0])
            );
        }
    }
}

#[test]
fn bridges_that_snoop_mld_still_hand_every_group_to_the_router() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::routed_mcast());
    world.snoop_mld().expect("snooping");
    let (a1, b1) = (world.host("a1"), world.host("b1"));
    let channel = group("ff1e::5c:350");
    // The router joins no group: only its pinned ports take it the group from segment a.
    assert!(
        delivered(
            &sender(a1, 8),
            &receiver(b1, 7350, Some(channel)),
            b"through snooping bridges",
            SocketAddrV6::new(channel, 7350, 0, 0),
            a1.addr(),
            SWITCH_TIMEOUT
        ),
        "b1 did not get a1's group through snooping bridges"
    );
}
