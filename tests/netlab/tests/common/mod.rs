//! What the world tests share: building, skipping, and sockets that send and await datagrams.

#![allow(dead_code)] // each test file uses its own subset

use std::{
    collections::HashSet,
    io,
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use sixcast_netlab::{Host, NetlabError, World, check_environment};
use socket2::{Domain, Protocol, Socket, Type};

/// How long a datagram that should arrive may take.
pub(crate) const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a test waits to be sure a datagram that must not arrive does not.
pub(crate) const ABSENCE_WINDOW: Duration = Duration::from_secs(1);

/// Whether the machine can build worlds; prints the reason when it cannot.
pub(crate) fn environment_ready(routes_multicast: bool) -> bool {
    match check_environment(routes_multicast) {
        Ok(()) => true,
        Err(reason) => {
            // In CI a machine that cannot build worlds is a broken setup, not a reason to pass.
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to build test worlds: {reason}"
            );
            eprintln!("skipped: {reason}");
            false
        }
    }
}

pub(crate) fn build(result: Result<World, NetlabError>) -> World {
    result.unwrap_or_else(|err| panic!("building the world failed: {err}"))
}

/// A UDP socket of `host` bound to `[::]:port`, joined to `group` on the host's interface if
/// given, that receives only groups it joined.
pub(crate) fn receiver(host: &Host, port: u16, group: Option<Ipv6Addr>) -> UdpSocket {
    let ifindex = host.ifindex();
    host.run(|| -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_only_v6(true)?;
        socket.bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into())?;
        if let Some(group) = group {
            socket.join_multicast_v6(&group, ifindex)?;
            socket.set_multicast_all_v6(false)?;
        }
        Ok(socket.into())
    })
    .expect("entering the host")
    .unwrap_or_else(|err| panic!("receiver socket in {}: {err}", host.name()))
}

/// A UDP socket of `host` bound to its unicast address, sending multicast out of its interface
/// with `hops` as hop limit.
pub(crate) fn sender(host: &Host, hops: u32) -> UdpSocket {
    sender_from(host, SocketAddrV6::new(host.addr(), 0, 0, 0), hops)
}

/// Like [`sender`], bound to `source`.
pub(crate) fn sender_from(host: &Host, source: SocketAddrV6, hops: u32) -> UdpSocket {
    let ifindex = host.ifindex();
    host.run(|| -> io::Result<UdpSocket> {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        socket.bind(&source.into())?;
        socket.set_multicast_if_v6(ifindex)?;
        socket.set_multicast_hops_v6(hops)?;
        Ok(socket.into())
    })
    .expect("entering the host")
    .unwrap_or_else(|err| panic!("sender socket in {}: {err}", host.name()))
}

/// Waits up to `timeout` for a datagram carrying exactly `payload` from `from`, ignoring others.
pub(crate) fn arrives(
    socket: &UdpSocket,
    payload: &[u8],
    from: Ipv6Addr,
    timeout: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    let mut buffer = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        socket
            .set_read_timeout(Some(left))
            .expect("setting a read timeout");
        match socket.recv_from(&mut buffer) {
            Ok((len, source)) if &buffer[..len] == payload && source.ip() == from => return true,
            // A stopped-and-continued process sees EINTR from receives with a timeout.
            Ok(_) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(err) => panic!("receiving: {err}"),
        }
    }
}

/// Sends `payload` to `destination` a few times, so that one lost datagram does not decide a
/// test (receivers accept any copy).
pub(crate) fn send_copies(socket: &UdpSocket, payload: &[u8], destination: SocketAddrV6) {
    for _ in 0..3 {
        socket.send_to(payload, destination).expect("sending");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `payload` from `outbox` to `destination` every 100 ms until `inbox` receives it from
/// `from`, for at most `within`.
pub(crate) fn delivered(
    outbox: &UdpSocket,
    inbox: &UdpSocket,
    payload: &[u8],
    destination: SocketAddrV6,
    from: Ipv6Addr,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        outbox.send_to(payload, destination).expect("sending");
        let wait = deadline
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        if arrives(inbox, payload, from, wait) {
            return true;
        }
    }
    false
}

/// How long a route that was just switched on may take to carry the first datagram.
pub(crate) const SWITCH_TIMEOUT: Duration = Duration::from_secs(3);

pub(crate) fn group(text: &str) -> Ipv6Addr {
    text.parse().expect("a group address")
}

/// Whether no copy of `payload` from `from` reaches any of `inboxes`: the first is given
/// [`ABSENCE_WINDOW`], the others (sent to at the same time) what is left plus a little.
pub(crate) fn reaches_none(inboxes: &[(&str, &UdpSocket)], payload: &[u8], from: Ipv6Addr) -> bool {
    let mut window = ABSENCE_WINDOW;
    for (name, inbox) in inboxes {
        if arrives(inbox, payload, from, window) {
            eprintln!("{name} got {:?}", String::from_utf8_lossy(payload));
            return false;
        }
        window = Duration::from_millis(100);
    }
    true
}

/// Joins `socket` (of the host with interface `ifindex`) to the source-specific channel
/// (`source`, `group`) with MCAST_JOIN_SOURCE_GROUP, and stops it receiving other groups.
pub(crate) fn join_source_group(
    socket: &UdpSocket,
    ifindex: u32,
    source: Ipv6Addr,
    group: Ipv6Addr,
) -> io::Result<()> {
    fn storage(addr: Ipv6Addr) -> libc::sockaddr_storage {
        // SAFETY: sockaddr_storage is plain old data for which all-zero bytes are valid.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: sockaddr_storage is large and aligned enough for any socket address.
        let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
        sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sin6.sin6_addr.s6_addr = addr.octets();
        storage
    }
    let request = libc::group_source_req {
        gsr_interface: ifindex,
        gsr_group: storage(group),
        gsr_source: storage(source),
    };
    // SAFETY: the option value is a live group_source_req and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(socket),
            libc::IPPROTO_IPV6,
            libc::MCAST_JOIN_SOURCE_GROUP,
            std::ptr::from_ref(&request).cast(),
            size_of::<libc::group_source_req>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    socket2::SockRef::from(socket).set_multicast_all_v6(false)
}

/// A UDP socket of `host` bound to `[::]:port` and joined to (`source`, `group`) only.
pub(crate) fn ssm_receiver(host: &Host, port: u16, source: Ipv6Addr, group: Ipv6Addr) -> UdpSocket {
    let socket = receiver(host, port, None);
    join_source_group(&socket, host.ifindex(), source, group)
        .unwrap_or_else(|err| panic!("joining ({source}, {group}) in {}: {err}", host.name()));
    socket
}

/// Whether unicast from `from` reaches `to` within `within`.
pub(crate) fn unicast_within(from: &Host, to: &Host, port: u16, within: Duration) -> bool {
    let inbox = receiver(to, port, None);
    let payload = format!("unicast {} -> {}", from.name(), to.name());
    let destination = SocketAddrV6::new(to.addr(), port, 0, 0);
    delivered(
        &sender(from, 1),
        &inbox,
        payload.as_bytes(),
        destination,
        from.addr(),
        within,
    )
}

pub(crate) fn unicast_works(from: &Host, to: &Host, port: u16) -> bool {
    unicast_within(from, to, port, ARRIVAL_TIMEOUT)
}

/// The namespaces `ip netns list` shows.
pub(crate) fn listed_namespaces() -> HashSet<String> {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("running ip netns list");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

pub(crate) fn assert_all_gone(namespaces: &[String]) {
    let listed = listed_namespaces();
    let left: Vec<&String> = namespaces
        .iter()
        .filter(|name| listed.contains(*name))
        .collect();
    assert!(left.is_empty(), "namespaces left after teardown: {left:?}");
}

/// Whether a process whose command line contains `pattern` runs (`pgrep -f`).
pub(crate) fn process_running(pattern: &str) -> bool {
    let status = Command::new("pgrep")
        .args(["-f", "--", pattern])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("running pgrep");
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("pgrep failed: {other:?}"),
    }
}
