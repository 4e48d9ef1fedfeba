//! End-to-end tests of the reachability worlds (stratum, stratum2, routed-ssm): real packets
//! between real namespaces, routers that route unicast only or source-specific multicast.
//!
//! Each test skips (passes after printing the reason) when `check_environment` says the machine
//! cannot host worlds.

use std::{
    net::{SocketAddrV6, UdpSocket},
    panic,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sixcast_netlab::{NetlabError, World};

mod common;
use common::{
    ABSENCE_WINDOW, ARRIVAL_TIMEOUT, SWITCH_TIMEOUT, arrives, assert_all_gone, build, delivered,
    environment_ready, group, process_running, reaches_none, receiver, send_copies, sender,
    ssm_receiver, unicast_within, unicast_works,
};

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
