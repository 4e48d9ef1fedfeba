//! End-to-end tests of the test worlds: real packets between real namespaces.
//!
//! Each test skips (passes after printing the reason) when `check_environment` says the machine
//! cannot host worlds.

use std::{
    collections::HashSet,
    io::{BufRead, BufReader},
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    panic,
    process::Command,
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use sixcast_netlab::{Host, MulticastRouterKind, NetlabError, ROUTED_GROUP_PREFIXES, World};
use socket2::{Domain, Protocol, Socket, Type};

mod common;
use common::{
    ABSENCE_WINDOW, ARRIVAL_TIMEOUT, SWITCH_TIMEOUT, arrives, build, delivered, environment_ready,
    group, reaches_none, receiver, send_copies, sender, sender_from, ssm_receiver,
};

/// Whether unicast from `from` reaches `to` within `within`.
fn unicast_within(from: &Host, to: &Host, port: u16, within: Duration) -> bool {
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

fn unicast_works(from: &Host, to: &Host, port: u16) -> bool {
    unicast_within(from, to, port, ARRIVAL_TIMEOUT)
}

/// The namespaces `ip netns list` shows.
fn listed_namespaces() -> HashSet<String> {
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

fn assert_all_gone(namespaces: &[String]) {
    let listed = listed_namespaces();
    let left: Vec<&String> = namespaces
        .iter()
        .filter(|name| listed.contains(*name))
        .collect();
    assert!(left.is_empty(), "namespaces left after teardown: {left:?}");
}

#[test]
fn lan_hosts_reach_each_other_by_unicast() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::lan(3));
    assert_eq!(world.topology(), "lan");
    let names = ["h1", "h2", "h3"];
    for (from, to) in [(0, 1), (1, 2), (2, 0)] {
        let (from, to) = (world.host(names[from]), world.host(names[to]));
        assert!(
            unicast_works(from, to, 7000),
            "{} -> {} unicast",
            from.name(),
            to.name()
        );
    }
}

#[test]
fn lan_multicast_with_hop_limit_1_reaches_every_member() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::lan(3));
    let group: Ipv6Addr = "ff1e::5c:1".parse().unwrap();
    let port = 7001;
    // Receivers join before the sender sends.
    let h2_inbox = receiver(world.host("h2"), port, Some(group));
    // h3 receives on a thread living in its namespace, to exercise Host::spawn.
    let (joined_tx, joined_rx) = std::sync::mpsc::channel();
    let (h3_ifindex, h1_addr) = (world.host("h3").ifindex(), world.host("h1").addr());
    let h3_receiver = world.host("h3").spawn(move || {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        socket
            .bind(&SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0).into())
            .unwrap();
        socket.join_multicast_v6(&group, h3_ifindex).unwrap();
        socket.set_multicast_all_v6(false).unwrap();
        joined_tx.send(()).unwrap();
        arrives(&socket.into(), b"lan multicast", h1_addr, ARRIVAL_TIMEOUT)
    });
    joined_rx.recv_timeout(ARRIVAL_TIMEOUT).expect("h3 joined");
    let outbox = sender(world.host("h1"), 1);
    send_copies(
        &outbox,
        b"lan multicast",
        SocketAddrV6::new(group, port, 0, 0),
    );
    assert!(
        arrives(&h2_inbox, b"lan multicast", h1_addr, ARRIVAL_TIMEOUT),
        "h2 got the group"
    );
    assert!(h3_receiver.join().expect("h3 thread"), "h3 got the group");
}

#[test]
fn lan_link_local_multicast_reaches_members() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::lan(2));
    let group: Ipv6Addr = "ff12::5c:2".parse().unwrap();
    let inbox = receiver(world.host("h2"), 7002, Some(group));
    let h1 = world.host("h1");
    let outbox = sender_from(
        h1,
        SocketAddrV6::new(h1.link_local(), 0, 0, h1.ifindex()),
        1,
    );
    send_copies(
        &outbox,
        b"link scope",
        SocketAddrV6::new(group, 7002, 0, h1.ifindex()),
    );
    assert!(arrives(
        &inbox,
        b"link scope",
        h1.link_local(),
        ARRIVAL_TIMEOUT
    ));
}

#[test]
fn routed_mcast_forwards_every_configured_range_both_ways() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::routed_mcast());
    assert_eq!(world.topology(), "routed-mcast");
    let (a1, b1, b2) = (world.host("a1"), world.host("b1"), world.host("b2"));
    assert!(
        unicast_works(a1, b1, 7010),
        "a1 -> b1 unicast through the router"
    );
    for (index, prefix) in ROUTED_GROUP_PREFIXES.iter().enumerate() {
        let group: Ipv6Addr = prefix.replace("::/16", "::5c:10").parse().unwrap();
        let port = 7011 + index as u16;
        let payload = format!("a1 to {group}");
        let (b1_inbox, b2_inbox) = (
            receiver(b1, port, Some(group)),
            receiver(b2, port, Some(group)),
        );
        send_copies(
            &sender(a1, 8),
            payload.as_bytes(),
            SocketAddrV6::new(group, port, 0, 0),
        );
        assert!(
            arrives(&b1_inbox, payload.as_bytes(), a1.addr(), ARRIVAL_TIMEOUT),
            "b1 got {group}"
        );
        assert!(
            arrives(&b2_inbox, payload.as_bytes(), a1.addr(), ARRIVAL_TIMEOUT),
            "b2 got {group}"
        );
    }
    let group: Ipv6Addr = "ff1e::5c:11".parse().unwrap();
    let a1_inbox = receiver(a1, 7020, Some(group));
    send_copies(
        &sender(b1, 8),
        b"b1 to a1",
        SocketAddrV6::new(group, 7020, 0, 0),
    );
    assert!(
        arrives(&a1_inbox, b"b1 to a1", b1.addr(), ARRIVAL_TIMEOUT),
        "a1 got b1's group"
    );
}

#[test]
fn routed_mcast_does_not_forward_hop_limit_1() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::routed_mcast());
    let (a1, a2, b1) = (world.host("a1"), world.host("a2"), world.host("b1"));
    let group: Ipv6Addr = "ff1e::5c:12".parse().unwrap();
    let (a2_inbox, b1_inbox) = (
        receiver(a2, 7021, Some(group)),
        receiver(b1, 7021, Some(group)),
    );
    send_copies(
        &sender(a1, 1),
        b"one hop",
        SocketAddrV6::new(group, 7021, 0, 0),
    );
    assert!(
        arrives(&a2_inbox, b"one hop", a1.addr(), ARRIVAL_TIMEOUT),
        "same segment gets it"
    );
    assert!(
        !arrives(&b1_inbox, b"one hop", a1.addr(), ABSENCE_WINDOW),
        "hop limit 1 was routed"
    );
}

#[test]
fn routed_nomcast_forwards_unicast_but_not_multicast() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::routed_nomcast());
    assert_eq!(world.topology(), "routed-nomcast");
    assert_eq!(world.smcroute_pid(), None);
    let (a1, a2, b1) = (world.host("a1"), world.host("a2"), world.host("b1"));
    assert!(
        unicast_works(a1, b1, 7030),
        "a1 -> b1 unicast through the router"
    );
    assert!(
        unicast_works(b1, a1, 7031),
        "b1 -> a1 unicast through the router"
    );
    let group: Ipv6Addr = "ff1e::5c:30".parse().unwrap();
    let (a2_inbox, b1_inbox) = (
        receiver(a2, 7032, Some(group)),
        receiver(b1, 7032, Some(group)),
    );
    send_copies(
        &sender(a1, 8),
        b"no mcast routing",
        SocketAddrV6::new(group, 7032, 0, 0),
    );
    assert!(
        arrives(&a2_inbox, b"no mcast routing", a1.addr(), ARRIVAL_TIMEOUT),
        "a2 got it"
    );
    assert!(
        !arrives(&b1_inbox, b"no mcast routing", a1.addr(), ABSENCE_WINDOW),
        "multicast crossed a router without multicast routing"
    );
}

#[test]
fn silent_cut_drops_traffic_but_keeps_the_link_up() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::lan(2));
    let (h1, h2) = (world.host("h1"), world.host("h2"));
    world.set_link_silent("h2", true).expect("cutting h2");
    assert!(
        !unicast_within(h1, h2, 7040, ABSENCE_WINDOW),
        "traffic crossed a cut link"
    );
    assert!(
        h2.link_is_up().expect("reading h2's link"),
        "a silent cut must keep carrier"
    );
    world.set_link_silent("h2", false).expect("restoring h2");
    // Neighbour entries that failed during the cut recover only after their probes time out
    // (about 3 s), as on a real network.
    assert!(
        unicast_within(h1, h2, 7041, Duration::from_secs(6)),
        "traffic after restoring"
    );
    assert!(matches!(
        world.set_link_silent("h9", true),
        Err(NetlabError::UnknownHost { .. })
    ));
}

#[test]
fn udp_loss_drops_and_clears() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::lan(2));
    let (h1, h2) = (world.host("h1"), world.host("h2"));
    world.set_udp_loss("h2", 100).expect("setting loss");
    assert!(
        !unicast_within(h1, h2, 7050, ABSENCE_WINDOW),
        "datagrams passed 100% loss"
    );
    world.set_udp_loss("h2", 0).expect("clearing loss");
    assert!(unicast_works(h1, h2, 7051), "datagrams after clearing loss");
    assert!(matches!(
        world.set_udp_loss("h2", 101),
        Err(NetlabError::InvalidArgument(_))
    ));
}

#[test]
fn json_describes_every_host() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::routed_nomcast());
    let json = world.to_json();
    assert_eq!(json["topology"], "routed-nomcast");
    let hosts = json["hosts"].as_array().expect("hosts array");
    let names: Vec<&str> = hosts
        .iter()
        .filter_map(|host| host["name"].as_str())
        .collect();
    assert_eq!(names, ["a1", "a2", "b1", "b2", "r"]);
    let a2 = &hosts[1];
    assert_eq!(a2["addr"], "fd5c:a::12");
    assert_eq!(a2["link_local"], "fe80::12");
    assert_eq!(a2["ifname"], "eth0");
    assert_eq!(a2["segment"], "a");
    assert_eq!(a2["ifindex"], world.host("a2").ifindex());
    assert_eq!(a2["netns"], world.host("a2").netns());
    assert_eq!(hosts[4]["segment"], "core");
    assert_eq!(hosts[4]["interfaces"][1]["addr"], "fd5c:b::1");
}

#[test]
fn run_and_command_enter_the_host() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::lan(1));
    let h1 = world.host("h1");
    let own_namespace = || std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let before = own_namespace();
    let inside = h1.run(own_namespace).expect("entering h1");
    assert_ne!(inside, before, "run must switch namespaces");
    assert_eq!(own_namespace(), before, "run must switch back");
    let unwound = panic::catch_unwind(|| h1.run(|| panic!("deliberate panic inside Host::run")));
    assert!(unwound.is_err());
    assert_eq!(
        own_namespace(),
        before,
        "run must switch back after a panic"
    );
    let output = h1
        .command("ip")
        .args(["-6", "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("fd5c:1::11/64"));
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    assert!(matches!(
        World::lan(0),
        Err(NetlabError::InvalidArgument(_))
    ));
    assert!(matches!(
        World::lan(10_000),
        Err(NetlabError::InvalidArgument(_))
    ));
    if !environment_ready(false) {
        return;
    }
    let world = build(World::lan(1));
    assert!(world.get_host("nobody").is_none());
}

#[test]
fn teardown_removes_namespaces_and_the_multicast_router() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::routed_mcast());
    let namespaces = world.namespaces().to_vec();
    let state_dir = world.state_dir().to_owned();
    assert!(world.router_multicast());
    // smcroute is a process that must not survive; the user-space router is a thread whose end
    // teardown waits for.
    let smcroute = world.smcroute_pid();
    assert_eq!(
        smcroute.is_some(),
        world.multicast_router_kind() == Some(MulticastRouterKind::Smcroute)
    );
    let listed = listed_namespaces();
    assert!(
        namespaces.iter().all(|name| listed.contains(name)),
        "namespaces exist while up"
    );
    // A stray process in a host must not survive either. Wait until it runs inside the host
    // (it prints once `ip netns exec` has entered the namespace).
    let mut stray = world
        .host("b2")
        .command("sh")
        .args(["-c", "echo inside; exec sleep 30"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("starting the stray process");
    let mut line = String::new();
    BufReader::new(stray.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reading from the stray process");
    assert_eq!(line.trim(), "inside");
    world.teardown().expect("teardown");
    assert_all_gone(&namespaces);
    assert!(!state_dir.exists(), "state directory left behind");
    // Pids wrap quickly on a busy machine: only a process with this world's smcroute identity
    // counts as a survivor.
    if let Some(smcroute) = smcroute {
        let survivor = std::fs::read(format!("/proc/{smcroute}/cmdline")).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&survivor).contains(&namespaces[0].replace("-sw", "-r")),
            "smcroute still runs"
        );
    }
    assert!(
        stray
            .try_wait()
            .expect("checking the stray process")
            .is_some(),
        "stray process survived"
    );
}

#[test]
fn panic_inside_a_test_still_cleans_up() {
    if !environment_ready(false) {
        return;
    }
    let created = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&created);
    let result = panic::catch_unwind(move || {
        let world = build(World::lan(2));
        seen.lock()
            .unwrap()
            .extend(world.namespaces().iter().cloned());
        panic!("deliberate panic while a world is up (this message is expected)");
    });
    assert!(result.is_err());
    let namespaces = created.lock().unwrap().clone();
    assert_eq!(namespaces.len(), 3);
    assert_all_gone(&namespaces);
}

#[test]
fn sweep_removes_leftovers_of_dead_processes() {
    if !environment_ready(false) {
        return;
    }
    // A pid that surely belongs to no process any more: a child we started and reaped.
    let dead_pid = Command::new("true").spawn().and_then(|mut child| {
        let pid = child.id();
        child.wait().map(|_| pid)
    });
    let dead_pid = dead_pid.expect("running true");
    let leftover = format!("sxnl-{dead_pid}-0-h1");
    let status = Command::new("ip")
        .args(["netns", "add", &leftover])
        .status()
        .unwrap();
    assert!(status.success(), "creating the fake leftover");
    let mut orphan = Command::new("ip")
        .args(["netns", "exec", &leftover, "sleep", "30"])
        .spawn()
        .expect("starting a process in the leftover");
    let live_world = build(World::lan(1));
    // Building a world sweeps; call it again in case another test's sweep raced ours.
    sixcast_netlab::sweep_leftovers().expect("sweeping");
    assert!(
        !listed_namespaces().contains(&leftover),
        "leftover namespace survived the sweep"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while orphan.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "process in the leftover survived the sweep"
        );
        thread::sleep(Duration::from_millis(10));
    }
    // Live worlds, including this process's own, are never swept.
    let listed = listed_namespaces();
    assert!(
        live_world
            .namespaces()
            .iter()
            .all(|name| listed.contains(name))
    );
}

#[test]
fn two_worlds_at_once_do_not_interfere() {
    if !environment_ready(false) {
        return;
    }
    let (first, second) = thread::scope(|scope| {
        let first = scope.spawn(|| build(World::lan(2)));
        let second = scope.spawn(|| build(World::lan(2)));
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_ne!(first.id(), second.id());
    // Same addresses, group and port in both worlds: only the sender's own world may hear it.
    let group: Ipv6Addr = "ff1e::5c:60".parse().unwrap();
    let first_inbox = receiver(first.host("h2"), 7060, Some(group));
    let second_inbox = receiver(second.host("h2"), 7060, Some(group));
    let h1 = first.host("h1");
    send_copies(
        &sender(h1, 8),
        b"first world only",
        SocketAddrV6::new(group, 7060, 0, 0),
    );
    assert!(arrives(
        &first_inbox,
        b"first world only",
        h1.addr(),
        ARRIVAL_TIMEOUT
    ));
    assert!(!arrives(
        &second_inbox,
        b"first world only",
        h1.addr(),
        ABSENCE_WINDOW
    ));
    assert!(unicast_works(second.host("h1"), second.host("h2"), 7061));
}

/// Sends `len` bytes from `from` to `to` by unicast with fragmentation forbidden; returns
/// whether the kernel accepted the datagram and `to` received it whole.
fn unfragmented_datagram_arrives(from: &Host, to: &Host, len: usize) -> bool {
    let inbox = receiver(to, 7100, None);
    let destination = SocketAddrV6::new(to.addr(), 7100, 0, 0);
    let outbox = sender(from, 1);
    let dontfrag: libc::c_int = 1;
    // SAFETY: the option value is a live c_int and its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&outbox),
            libc::IPPROTO_IPV6,
            libc::IPV6_DONTFRAG,
            std::ptr::from_ref(&dontfrag).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setting IPV6_DONTFRAG");
    let payload = vec![0x5c; len];
    if outbox.send_to(&payload, destination).is_err() {
        return false;
    }
    let mut buffer = vec![0u8; len + 1];
    inbox.set_read_timeout(Some(ARRIVAL_TIMEOUT)).unwrap();
    matches!(inbox.recv_from(&mut buffer), Ok((received, _)) if received == len)
}

#[test]
fn jumbo_mtu_carries_large_datagrams_unfragmented() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::lan(2));
    let (h1, h2) = (world.host("h1"), world.host("h2"));
    assert!(
        !unfragmented_datagram_arrives(h1, h2, 8000),
        "1500-byte links must refuse it"
    );
    world.set_mtu(9000).expect("setting the MTU");
    assert!(unfragmented_datagram_arrives(h1, h2, 8000));
    assert!(matches!(
        world.set_mtu(1000),
        Err(NetlabError::InvalidArgument(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// The reachability worlds: stratum, stratum2 and routed-ssm.

/// Whether a process whose command line contains `pattern` runs (`pgrep -f`).
fn process_running(pattern: &str) -> bool {
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

#[test]
fn stratum_routes_unicast_but_keeps_multicast_on_each_segment() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::stratum());
    assert_eq!(world.topology(), "stratum");
    assert_eq!(world.smcroute_pid(), None);
    assert!(!world.router_multicast());
    let host = |name| world.host(name);
    let (s0, r1, c1, i1, i2) = (host("s0"), host("r1"), host("c1"), host("i1"), host("i2"));
    assert_eq!(s0.addr(), group("fd5c:c::10"));
    assert_eq!(i1.addr(), group("fd5c:1a::11"));
    assert!(unicast_works(i1, s0, 7200), "i1 -> s0 through the router");
    assert!(unicast_works(s0, i1, 7201), "s0 -> i1 through the router");
    assert!(unicast_works(i2, r1, 7202), "i2 -> r1 through the router");
    assert!(unicast_works(c1, host("c2"), 7203), "c1 -> c2 on the core");

    // Multicast from the core reaches every core host and no island host.
    let core_group = group("ff1e::5c:204");
    let core_inboxes: Vec<(&str, UdpSocket)> = ["s0", "r1", "r2", "c2"]
        .into_iter()
        .map(|name| (name, receiver(host(name), 7204, Some(core_group))))
        .collect();
    let island_inboxes = [
        receiver(i1, 7204, Some(core_group)),
        receiver(i2, 7204, Some(core_group)),
    ];
    send_copies(
        &sender(c1, 8),
        b"core multicast",
        SocketAddrV6::new(core_group, 7204, 0, 0),
    );
    for (name, inbox) in &core_inboxes {
        assert!(
            arrives(inbox, b"core multicast", c1.addr(), ARRIVAL_TIMEOUT),
            "{name} got c1's group"
        );
    }
    assert!(
        reaches_none(
            &[("i1", &island_inboxes[0]), ("i2", &island_inboxes[1])],
            b"core multicast",
            c1.addr()
        ),
        "core multicast crossed a unicast-only router"
    );

    // Multicast on the island stays on the island.
    let island_group = group("ff15::5c:205");
    let i2_inbox = receiver(i2, 7205, Some(island_group));
    let c1_inbox = receiver(c1, 7205, Some(island_group));
    let s0_inbox = receiver(s0, 7205, Some(island_group));
    send_copies(
        &sender(i1, 8),
        b"island multicast",
        SocketAddrV6::new(island_group, 7205, 0, 0),
    );
    assert!(
        arrives(&i2_inbox, b"island multicast", i1.addr(), ARRIVAL_TIMEOUT),
        "i2 got i1's group"
    );
    assert!(
        reaches_none(
            &[("c1", &c1_inbox), ("s0", &s0_inbox)],
            b"island multicast",
            i1.addr()
        ),
        "island multicast crossed a unicast-only router"
    );
}

#[test]
fn stratum_router_multicast_switches_on_and_off() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::stratum());
    let (c1, c2, i1) = (world.host("c1"), world.host("c2"), world.host("i1"));
    let core_group = group("ff1e::5c:210");
    let destination = SocketAddrV6::new(core_group, 7210, 0, 0);
    let (i1_inbox, c2_inbox) = (
        receiver(i1, 7210, Some(core_group)),
        receiver(c2, 7210, Some(core_group)),
    );
    let outbox = sender(c1, 8);
    let core_only = |payload: &[u8]| {
        send_copies(&outbox, payload, destination);
        assert!(
            arrives(&c2_inbox, payload, c1.addr(), ARRIVAL_TIMEOUT),
            "c2 got c1's group"
        );
        assert!(
            !arrives(&i1_inbox, payload, c1.addr(), ABSENCE_WINDOW),
            "c1's group reached i1 without multicast routing"
        );
    };
    core_only(b"before");

    let started = Instant::now();
    world.set_router_multicast(true).expect("switching on");
    let switched_on = started.elapsed();
    assert!(world.router_multicast());
    let pid = world.smcroute_pid();
    assert!(
        delivered(
            &outbox,
            &i1_inbox,
            b"while on",
            destination,
            c1.addr(),
            SWITCH_TIMEOUT
        ),
        "c1's group did not reach i1 with multicast routing on"
    );
    let first_delivery = started.elapsed();
    // The other direction, and the other ranges.
    for (index, text) in ["ff15::5c:211", "ff3e::5c:212"].into_iter().enumerate() {
        let island_group = group(text);
        let port = 7211 + index as u16;
        let c1_inbox = receiver(c1, port, Some(island_group));
        assert!(
            delivered(
                &sender(i1, 8),
                &c1_inbox,
                b"island to core",
                SocketAddrV6::new(island_group, port, 0, 0),
                i1.addr(),
                SWITCH_TIMEOUT
            ),
            "i1's {island_group} did not reach c1"
        );
    }
    let counted = world.forwarding_stats();
    world
        .set_router_multicast(true)
        .expect("switching on again");
    // On twice keeps the router that runs: the same daemon, or the same counters.
    assert_eq!(world.smcroute_pid(), pid, "on twice starts one daemon");
    if let (Some(before), Some(after)) = (counted, world.forwarding_stats()) {
        assert!(
            before.forwarded > 0,
            "the user-space router counted nothing"
        );
        assert!(
            after.forwarded >= before.forwarded,
            "on twice restarted the router"
        );
    }

    let started = Instant::now();
    world.set_router_multicast(false).expect("switching off");
    let switched_off = started.elapsed();
    assert!(!world.router_multicast());
    assert_eq!(world.smcroute_pid(), None);
    assert_eq!(world.forwarding_stats(), None);
    core_only(b"after off");
    world
        .set_router_multicast(false)
        .expect("switching off again");

    // And on once more: a restarted daemon routes again.
    let started = Instant::now();
    world
        .set_router_multicast(true)
        .expect("switching on once more");
    assert!(
        delivered(
            &outbox,
            &i1_inbox,
            b"on again",
            destination,
            c1.addr(),
            SWITCH_TIMEOUT
        ),
        "c1's group did not reach i1 after switching on again"
    );
    let second_delivery = started.elapsed();
    eprintln!(
        "router multicast: on in {switched_on:?} (first datagram through after \
         {first_delivery:?}; after a restart {second_delivery:?}), off in {switched_off:?}"
    );

    assert!(matches!(
        build(World::routed_nomcast()).set_router_multicast(true),
        Err(NetlabError::InvalidArgument(_))
    ));
}

#[test]
fn stratum_relay_dies_silently_and_comes_back() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::stratum());
    let (s0, r1, c1, i1) = (
        world.host("s0"),
        world.host("r1"),
        world.host("c1"),
        world.host("i1"),
    );
    world.set_link_silent("r1", true).expect("cutting r1");
    assert!(
        r1.link_is_up().expect("reading r1's link"),
        "a silent cut must keep carrier"
    );
    assert!(
        !unicast_within(i1, r1, 7220, ABSENCE_WINDOW),
        "i1 reached a cut relay"
    );
    let core_group = group("ff1e::5c:221");
    let (r1_inbox, s0_inbox) = (
        receiver(r1, 7221, Some(core_group)),
        receiver(s0, 7221, Some(core_group)),
    );
    send_copies(
        &sender(c1, 8),
        b"to the relays",
        SocketAddrV6::new(core_group, 7221, 0, 0),
    );
    assert!(arrives(
        &s0_inbox,
        b"to the relays",
        c1.addr(),
        ARRIVAL_TIMEOUT
    ));
    assert!(
        !arrives(&r1_inbox, b"to the relays", c1.addr(), ABSENCE_WINDOW),
        "a cut relay got multicast"
    );
    world.set_link_silent("r1", false).expect("restoring r1");
    assert!(
        unicast_within(i1, r1, 7222, Duration::from_secs(6)),
        "i1 -> r1 after restoring"
    );

    // Cutting the router cuts the island off the core.
    world
        .set_link_silent("r", true)
        .expect("cutting the router");
    assert!(
        !unicast_within(i1, s0, 7223, ABSENCE_WINDOW),
        "i1 reached s0 through a cut router"
    );
    world
        .set_link_silent("r", false)
        .expect("restoring the router");
    assert!(
        unicast_within(i1, s0, 7224, Duration::from_secs(6)),
        "i1 -> s0 after restoring the router"
    );
}

#[test]
fn stratum2_islands_reach_each_other_and_the_core_by_unicast_only() {
    if !environment_ready(false) {
        return;
    }
    let world = build(World::stratum2());
    assert_eq!(world.topology(), "stratum2");
    let host = |name| world.host(name);
    let (s0, c1, i1, i2, j1, j2) = (
        host("s0"),
        host("c1"),
        host("i1"),
        host("i2"),
        host("j1"),
        host("j2"),
    );
    assert_eq!(j1.addr(), group("fd5c:1b::11"));
    assert_eq!(j1.segment(), "island-b");
    let legs: Vec<&str> = host("r")
        .interfaces()
        .iter()
        .map(|leg| leg.segment())
        .collect();
    assert_eq!(legs, ["core", "island-a", "island-b"]);
    assert!(unicast_works(i1, j1, 7230), "i1 -> j1 through the router");
    assert!(unicast_works(j1, i1, 7231), "j1 -> i1 through the router");
    assert!(unicast_works(j2, s0, 7232), "j2 -> s0 through the router");
    assert!(unicast_works(s0, i2, 7233), "s0 -> i2 through the router");

    // Island a's multicast stays on island a.
    let a_group = group("ff1e::5c:234");
    let (i2_inbox, j1_inbox, c1_inbox) = (
        receiver(i2, 7234, Some(a_group)),
        receiver(j1, 7234, Some(a_group)),
        receiver(c1, 7234, Some(a_group)),
    );
    send_copies(
        &sender(i1, 8),
        b"island a",
        SocketAddrV6::new(a_group, 7234, 0, 0),
    );
    assert!(arrives(&i2_inbox, b"island a", i1.addr(), ARRIVAL_TIMEOUT));
    assert!(
        reaches_none(
            &[("j1", &j1_inbox), ("c1", &c1_inbox)],
            b"island a",
            i1.addr()
        ),
        "island a's multicast left the island"
    );

    // The core's multicast reaches neither island.
    let core_group = group("ff15::5c:235");
    let (c2_inbox, i1_inbox, j2_inbox) = (
        receiver(host("c2"), 7235, Some(core_group)),
        receiver(i1, 7235, Some(core_group)),
        receiver(j2, 7235, Some(core_group)),
    );
    send_copies(
        &sender(c1, 8),
        b"core",
        SocketAddrV6::new(core_group, 7235, 0, 0),
    );
    assert!(arrives(&c2_inbox, b"core", c1.addr(), ARRIVAL_TIMEOUT));
    assert!(
        reaches_none(&[("i1", &i1_inbox), ("j2", &j2_inbox)], b"core", c1.addr()),
        "the core's multicast reached an island"
    );

    // Island b's multicast stays on island b.
    let b_group = group("ff3e::5c:236");
    let (j2_inbox, i1_inbox, s0_inbox) = (
        receiver(j2, 7236, Some(b_group)),
        receiver(i1, 7236, Some(b_group)),
        receiver(s0, 7236, Some(b_group)),
    );
    send_copies(
        &sender(j1, 8),
        b"island b",
        SocketAddrV6::new(b_group, 7236, 0, 0),
    );
    assert!(arrives(&j2_inbox, b"island b", j1.addr(), ARRIVAL_TIMEOUT));
    assert!(
        reaches_none(
            &[("i1", &i1_inbox), ("s0", &s0_inbox)],
            b"island b",
            j1.addr()
        ),
        "island b's multicast left the island"
    );
}

#[test]
fn stratum2_router_multicast_joins_all_three_segments() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::stratum2());
    let (c1, i1, j1) = (world.host("c1"), world.host("i1"), world.host("j1"));
    world.set_router_multicast(true).expect("switching on");
    for (from, to, port) in [
        (c1, i1, 7240),
        (c1, j1, 7241),
        (i1, j1, 7242),
        (j1, c1, 7243),
    ] {
        let channel = group("ff1e::5c:240");
        let inbox = receiver(to, port, Some(channel));
        assert!(
            delivered(
                &sender(from, 8),
                &inbox,
                b"all legs",
                SocketAddrV6::new(channel, port, 0, 0),
                from.addr(),
                SWITCH_TIMEOUT
            ),
            "{} -> {} with multicast routing on",
            from.name(),
            to.name()
        );
    }
}

#[test]
fn routed_ssm_forwards_source_specific_groups_only() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::routed_ssm());
    assert_eq!(world.topology(), "routed-ssm");
    assert!(world.router_multicast());
    let (a1, a2, b1, b2) = (
        world.host("a1"),
        world.host("a2"),
        world.host("b1"),
        world.host("b2"),
    );
    assert!(unicast_works(a1, b1, 7250), "a1 -> b1 through the router");

    // b1 joins (a1, ff3e::8000:1234) and gets a1's datagrams.
    let ssm_group = group("ff3e::8000:1234");
    let b1_ssm = ssm_receiver(b1, 7251, a1.addr(), ssm_group);
    let outbox = sender(a1, 8);
    assert!(
        delivered(
            &outbox,
            &b1_ssm,
            b"ssm from a1",
            SocketAddrV6::new(ssm_group, 7251, 0, 0),
            a1.addr(),
            SWITCH_TIMEOUT
        ),
        "b1 did not get (a1, {ssm_group})"
    );

    // Any-source groups stay on segment a, joined or not.
    for (index, text) in ["ff1e::1234", "ff15::1234", "ff3e:30:fd5c:a::1234"]
        .into_iter()
        .enumerate()
    {
        let asm_group = group(text);
        let port = 7252 + index as u16;
        let (a2_inbox, b1_inbox, b2_inbox) = (
            receiver(a2, port, Some(asm_group)),
            receiver(b1, port, Some(asm_group)),
            receiver(b2, port, Some(asm_group)),
        );
        send_copies(
            &outbox,
            b"asm from a1",
            SocketAddrV6::new(asm_group, port, 0, 0),
        );
        assert!(
            arrives(&a2_inbox, b"asm from a1", a1.addr(), ARRIVAL_TIMEOUT),
            "a2 got {asm_group}"
        );
        assert!(
            reaches_none(
                &[("b1", &b1_inbox), ("b2", &b2_inbox)],
                b"asm from a1",
                a1.addr()
            ),
            "the router forwarded the any-source group {asm_group}"
        );
    }

    // And back: a1 joins (b2, ff3e::8000:1235) and gets b2's datagrams.
    let back_group = group("ff3e::8000:1235");
    let a1_ssm = ssm_receiver(a1, 7255, b2.addr(), back_group);
    assert!(
        delivered(
            &sender(b2, 8),
            &a1_ssm,
            b"ssm from b2",
            SocketAddrV6::new(back_group, 7255, 0, 0),
            b2.addr(),
            SWITCH_TIMEOUT
        ),
        "a1 did not get (b2, {back_group})"
    );
}

#[test]
fn reachability_worlds_describe_themselves_in_json() {
    if !environment_ready(true) {
        return;
    }
    let world = build(World::stratum2());
    let json = world.to_json();
    assert_eq!(json["topology"], "stratum2");
    let names: Vec<&str> = json["hosts"]
        .as_array()
        .expect("hosts array")
        .iter()
        .filter_map(|host| host["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["s0", "r1", "r2", "c1", "c2", "i1", "i2", "j1", "j2", "r"]
    );
    assert_eq!(json["hosts"][0]["addr"], "fd5c:c::10");
    assert_eq!(json["hosts"][8]["addr"], "fd5c:1b::12");
    assert_eq!(json["hosts"][9]["interfaces"][2]["addr"], "fd5c:1b::1");
    assert_eq!(json["segments"][1]["name"], "island-a");
    assert_eq!(json["segments"][1]["prefix"], "fd5c:1a::/64");
    assert_eq!(json["segments"][2]["router"], "fd5c:1b::1");
    assert_eq!(json["multicast_routes"].as_array().map(Vec::len), Some(0));
    assert!(json["multicast_router"].is_null());
    world.set_router_multicast(true).expect("switching on");
    let kind = world
        .multicast_router_kind()
        .expect("a router that can route multicast");
    assert_eq!(world.to_json()["multicast_router"], kind.name());
    let routes = world.to_json()["multicast_routes"].clone();
    // Three ranges, from each of three legs to the two others.
    assert_eq!(routes.as_array().map(Vec::len), Some(9));
    assert_eq!(routes[0]["from"], "eth0");
    assert_eq!(routes[0]["to"], serde_json::json!(["eth1", "eth2"]));
    assert!(routes[0]["source"].is_null());

    let ssm = build(World::routed_ssm());
    let routes = ssm.to_json()["multicast_routes"].clone();
    assert_eq!(
        routes,
        serde_json::json!([
            {"from": "eth0", "source": "fd5c:a::/64", "group": "ff3e::/32", "to": ["eth1"]},
            {"from": "eth1", "source": "fd5c:b::/64", "group": "ff3e::/32", "to": ["eth0"]},
        ])
    );
    assert_eq!(
        build(World::lan(1)).to_json()["segments"][0]["router"],
        serde_json::Value::Null
    );
}

#[test]
fn reachability_worlds_leave_nothing_behind() {
    if !environment_ready(true) {
        return;
    }
    let stratum = build(World::stratum());
    stratum.set_router_multicast(true).expect("switching on");
    let ssm = build(World::routed_ssm());
    for world in [stratum, ssm] {
        let namespaces = world.namespaces().to_vec();
        let ident = format!("{}-r", world.id());
        let uses_smcroute = world.smcroute_pid().is_some();
        assert!(world.router_multicast());
        assert_eq!(
            process_running(&ident),
            uses_smcroute,
            "smcroute of {ident} runs while up"
        );
        world.teardown().expect("teardown");
        assert_all_gone(&namespaces);
        assert!(!process_running(&ident), "smcroute of {ident} survived");
    }

    // A panic while the router routes multicast cleans up too.
    let made = Arc::new(Mutex::new((Vec::new(), String::new())));
    let seen = Arc::clone(&made);
    let result = panic::catch_unwind(move || {
        let world = build(World::stratum2());
        world.set_router_multicast(true).expect("switching on");
        *seen.lock().unwrap() = (world.namespaces().to_vec(), format!("{}-r", world.id()));
        panic!("deliberate panic while a stratum2 world is up (this message is expected)");
    });
    assert!(result.is_err());
    let (namespaces, ident) = made.lock().unwrap().clone();
    assert_eq!(namespaces.len(), 11, "switch, ten hosts");
    assert_all_gone(&namespaces);
    assert!(
        !process_running(&ident),
        "smcroute of {ident} survived a panic"
    );
}
