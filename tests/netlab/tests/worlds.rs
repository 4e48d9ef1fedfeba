//! End-to-end tests of the test worlds: real packets between real namespaces.
//!
//! Each test skips (passes after printing the reason) when `check_environment` says the machine
//! cannot host worlds.

use std::{
    io::{BufRead, BufReader},
    net::{Ipv6Addr, SocketAddrV6},
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
    ABSENCE_WINDOW, ARRIVAL_TIMEOUT, arrives, assert_all_gone, build, environment_ready,
    listed_namespaces, receiver, send_copies, sender, sender_from, unicast_within, unicast_works,
};

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
    // How many datagrams one GSO buffer may carry over the host's link.
    let gso_segments = |host: &Host| {
        let output = host
            .command("ip")
            .args(["-d", "link", "show", "eth0"])
            .output()
            .expect("running ip link show");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let mut words = text.split_whitespace();
        words.find(|word| *word == "gso_max_segs");
        words.next().map(str::to_owned)
    };
    world.set_udp_loss("h2", 100).expect("setting loss");
    assert!(
        !unicast_within(h1, h2, 7050, ABSENCE_WINDOW),
        "datagrams passed 100% loss"
    );
    // Each datagram is dropped on its own: buffers are cut into packets on a lossy link.
    assert_eq!(gso_segments(h2).as_deref(), Some("1"));
    world.set_udp_loss("h2", 0).expect("clearing loss");
    assert!(unicast_works(h1, h2, 7051), "datagrams after clearing loss");
    assert_eq!(gso_segments(h2).as_deref(), Some("65535"));
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
