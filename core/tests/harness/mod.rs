//! Helpers for tests that run sixcast nodes inside network-namespace worlds.

#![allow(dead_code)] // each test file uses its own subset

use std::{
    net::SocketAddrV6,
    sync::{
        Arc, Barrier,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use sixcast::{
    Channel, Config, Context, ErrorKind, Message,
    relay::{Relay, RelayConfig},
    stratum0::{Stratum0, Stratum0Config},
};
pub(crate) use sixcast_netlab::World;

/// Whether this machine can build test worlds; if not, says why (the test then skips).
/// Skipping is allowed only outside CI: there a missing capability is a broken setup, not a
/// reason to pass.
pub(crate) fn worlds_available(routes_multicast: bool) -> bool {
    if let Err(reason) = sixcast_netlab::check_environment(routes_multicast) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to build test worlds: {reason}"
        );
        eprintln!("skipped: {reason}");
        return false;
    }
    true
}

/// Builds a world, or `None` where [`worlds_available`] says this machine cannot.
pub(crate) fn world(
    build: fn() -> sixcast_netlab::Result<World>,
    routes_multicast: bool,
) -> Option<World> {
    worlds_available(routes_multicast).then(|| build().expect("building the test world"))
}

/// A configuration for test worlds: enough hops to cross one router.
pub(crate) fn config() -> Config {
    let mut config = Config::default();
    config.hop_limit = 8;
    config
}

/// Joins `channel` with `config` on the current host and returns both.
pub(crate) fn joined(config: Config, channel: &str) -> (Context, Channel) {
    let context = Context::new(config).expect("context");
    let channel = context.channel(channel).expect("channel");
    channel.join().expect("join");
    (context, channel)
}

/// Receives until `count` messages arrived or `within` passed.
pub(crate) fn collect(channel: &Channel, count: usize, within: Duration) -> Vec<Message> {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    while received.len() < count {
        match channel.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(message) => received.push(message),
            Err(err) if err.kind() == ErrorKind::Timeout => break,
            Err(err) => panic!("receiving failed: {err}"),
        }
    }
    received
}

/// Asserts that nothing more arrives within `quiet`.
pub(crate) fn assert_quiet(channel: &Channel, quiet: Duration) {
    match channel.recv_timeout(quiet) {
        Err(err) if err.kind() == ErrorKind::Timeout => {}
        Ok(message) => panic!("unexpected extra message: {message:?}"),
        Err(err) => panic!("receiving failed: {err}"),
    }
}

/// Threads of this process, from /proc.
pub(crate) fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// The ids of this process's threads named `name` that run in the network namespace of the
/// calling thread's host (each world host is a namespace, which a context's threads inherit):
/// tests running in parallel in other worlds do not count.
pub(crate) fn host_threads(name: &str) -> Vec<u32> {
    let namespace = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| {
            let path = task.ok()?.path();
            let named = std::fs::read_to_string(path.join("comm")).ok()?.trim() == name;
            let here = std::fs::read_link(path.join("ns/net")).ok()? == namespace;
            (named && here).then(|| path.file_name()?.to_str()?.parse().ok())?
        })
        .collect()
}

/// How often the thread `tid` of this process has gone to sleep so far (its voluntary context
/// switches): each wake-up of a sleeping thread counts once, and preemption on a busy machine
/// does not.
pub(crate) fn wakeups(tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

/// The name of the thread `tid` of this process.
pub(crate) fn thread_name(tid: u32) -> String {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A barrier for `parties` threads: listeners wait on it after joining, the sender before
/// sending, so nothing is sent before every listener is in its group.
pub(crate) fn start_line(parties: usize) -> Arc<Barrier> {
    Arc::new(Barrier::new(parties))
}

/// Time for MLD reports to reach a multicast router after a join (bridges need none).
pub(crate) const ROUTER_JOIN_DELAY: Duration = Duration::from_millis(300);

/// A UDP socket of the current host that sends with a source address it does not own.
pub(crate) fn spoofing_socket(spoofed: SocketAddrV6) -> std::net::UdpSocket {
    let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::DGRAM, None).unwrap();
    let on: libc::c_int = 1;
    for option in [libc::IPV6_FREEBIND, libc::IPV6_TRANSPARENT] {
        // SAFETY: the option value is a live c_int and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::IPPROTO_IPV6,
                option,
                std::ptr::from_ref(&on).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "spoofing needs CAP_NET_ADMIN in the namespace");
    }
    socket.bind(&spoofed.into()).unwrap();
    socket.into()
}

pub(crate) mod dns;

/// Starts Stratum 0 on `host`, with enough hops to cross a router; returns it with its address.
pub(crate) fn stratum0_on(world: &World, host: &str) -> (Stratum0, SocketAddrV6) {
    let stratum0 = world
        .host(host)
        .run(|| {
            let mut s0 = Stratum0Config::default();
            s0.hop_limit = 8;
            Stratum0::spawn(s0).unwrap()
        })
        .unwrap();
    let address = SocketAddrV6::new(world.host(host).addr(), stratum0.port(), 0, 0);
    (stratum0, address)
}

/// Starts a relay on `host`, with enough hops to cross a router.
pub(crate) fn relay_on(world: &World, host: &str) -> Relay {
    relay_with(world, host, |_| {})
}

/// Starts a relay on `host`, with enough hops to cross a router and `configure` applied.
pub(crate) fn relay_with(
    world: &World,
    host: &str,
    configure: impl FnOnce(&mut RelayConfig) + Send,
) -> Relay {
    world
        .host(host)
        .run(|| {
            let mut relay = RelayConfig::default();
            relay.hop_limit = 8;
            configure(&mut relay);
            Relay::spawn(relay).unwrap()
        })
        .unwrap()
}

/// nftables rules (a table named `table`) for the world's router that rewrite, statelessly,
/// `client`'s UDP source port to `port` on its way to the relay at `relay_port`, and back on the
/// way to the client, and drop what the relay still sends to the old port: what a NAT does when
/// it rebinds the client to a new port and forgets the old mapping.
pub(crate) fn nat_rebinding_rules(
    table: &str,
    client: SocketAddrV6,
    relay_port: u16,
    port: u16,
) -> String {
    format!(
        "table ip6 {table} {{
            chain pre {{
                type filter hook prerouting priority -300;
                ip6 saddr {ip} udp sport {old} udp dport {relay_port} udp sport set {port}
                ip6 daddr {ip} udp sport {relay_port} udp dport {old} drop
                ip6 daddr {ip} udp sport {relay_port} udp dport {port} udp dport set {old}
            }}
        }}",
        ip = client.ip(),
        old = client.port(),
    )
}

/// Sends numbered messages on `channel` from `host` every 50 ms until `stop` is set, for at most
/// `within`.
pub(crate) fn keep_sending(
    world: &World,
    host: &str,
    channel: &'static str,
    stop: Arc<AtomicBool>,
    within: Duration,
) -> JoinHandle<()> {
    world.host(host).spawn(move || {
        let context = Context::new(config()).unwrap();
        let channel = context.channel(channel).unwrap();
        let deadline = Instant::now() + within;
        let mut number = 0u32;
        while !stop.load(Ordering::Acquire) && Instant::now() < deadline {
            channel.send(number.to_string().as_bytes()).unwrap();
            channel.flush().unwrap();
            number += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

/// Loads the nftables `rules` on `host` (they go with its namespace when the world ends).
pub(crate) fn install_nft(host: &sixcast_netlab::Host, rules: &str) {
    let mut nft = host
        .command("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("nft");
    std::io::Write::write_all(&mut nft.stdin.take().unwrap(), rules.as_bytes()).unwrap();
    assert!(nft.wait().unwrap().success(), "installing {rules}");
}
