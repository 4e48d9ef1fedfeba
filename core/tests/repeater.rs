//! SSM repeaters with real packets: in the `routed-ssm` world the router forwards only
//! source-specific groups (`ff3e::/32`) from sources on the segment they come from, so the
//! sixcast profile's any-source groups never cross it. Nodes beyond it reach the core through a
//! repeater's (S, G) instead of tunnels: one copy of each datagram serves all of them.

mod harness;

use std::{
    net::SocketAddrV6,
    sync::Arc,
    time::{Duration, Instant},
};

use harness::{World, collect, config, relay_on, relay_with, start_line, stratum0_on, world};
use sixcast::{
    Context,
    relay::{Relay, RelayConfig},
    stratum0::{Stratum0, Stratum0Config},
};

const WAIT: Duration = Duration::from_secs(10);

/// Waits until `context` uses a relay or repeater, and returns its address.
fn wait_for_relay(context: &Context) -> SocketAddrV6 {
    let deadline = Instant::now() + WAIT;
    loop {
        let reach = context.reachability().unwrap();
        if let Some(relay) = reach.relay {
            return relay;
        }
        assert!(Instant::now() < deadline, "no path: {reach:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stratum 0 and an SSM repeater on the core host a1; returns them with Stratum 0's address.
fn core_on_a1(world: &World) -> (Stratum0, Relay, SocketAddrV6) {
    let (stratum0, repeater) = world
        .host("a1")
        .run(|| {
            let mut s0 = Stratum0Config::default();
            s0.hop_limit = 8;
            let mut repeater = RelayConfig::default();
            repeater.hop_limit = 8;
            repeater.ssm_repeater = true;
            (
                Stratum0::spawn(s0).unwrap(),
                Relay::spawn(repeater).unwrap(),
            )
        })
        .unwrap();
    let s0 = SocketAddrV6::new(world.host("a1").addr(), stratum0.port(), 0, 0);
    (stratum0, repeater, s0)
}

#[test]
fn nodes_behind_an_ssm_only_router_use_a_repeater_instead_of_tunnels() {
    let Some(world) = world(World::routed_ssm, true) else {
        return;
    };
    let (_stratum0, repeater, s0) = core_on_a1(&world);
    let repeater_address = SocketAddrV6::new(world.host("a1").addr(), repeater.port(), 0, 0);
    // Everyone ready (each island has heard the warm-up through the repeater, the sender has
    // stopped it), then the counters are read, then the measured messages go.
    let (ready, go) = (start_line(4), start_line(4));
    let island = |host: &str, speaks: bool| {
        let (ready, go) = (Arc::clone(&ready), Arc::clone(&go));
        world.host(host).spawn(move || {
            let mut config = config();
            config.stratum0 = Some(s0);
            let context = Context::new(config).unwrap();
            let channel = context.channel("ssm-only").unwrap();
            channel.join().unwrap();
            let relay = wait_for_relay(&context);
            let warm = channel
                .recv_timeout(WAIT)
                .expect("the warm-up came through");
            assert_eq!(warm.payload, b"warm-up");
            ready.wait();
            go.wait();
            let mut received = Vec::new();
            let deadline = Instant::now() + WAIT;
            while !received
                .iter()
                .any(|m: &sixcast::Message| m.payload == b"three")
            {
                let left = deadline.saturating_duration_since(Instant::now());
                match channel.recv_timeout(left) {
                    Ok(message) if message.payload == b"warm-up" => {}
                    Ok(message) => received.push(message),
                    Err(_) => break,
                }
            }
            if speaks {
                channel.send(b"from beyond the router").unwrap();
                channel.flush().unwrap();
                std::thread::sleep(Duration::from_millis(300));
            }
            (received, relay, context.reachability().unwrap())
        })
    };
    let (b1, b2) = (island("b1", true), island("b2", false));
    let core_listener = {
        let (ready, go) = (Arc::clone(&ready), Arc::clone(&go));
        world.host("a2").spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("ssm-only").unwrap();
            channel.join().unwrap();
            let warming = Arc::new(std::sync::atomic::AtomicBool::new(true));
            let warm_up = {
                let (channel, warming) = (channel.clone(), Arc::clone(&warming));
                std::thread::spawn(move || {
                    let deadline = Instant::now() + WAIT;
                    while warming.load(std::sync::atomic::Ordering::Acquire)
                        && Instant::now() < deadline
                    {
                        channel.send(b"warm-up").unwrap();
                        channel.flush().unwrap();
                        std::thread::sleep(Duration::from_millis(100));
                    }
                })
            };
            // Both islands have heard the warm-up once they reach `ready`: stop it then (the
            // main thread lets the last copies settle before it reads the counters).
            ready.wait();
            warming.store(false, std::sync::atomic::Ordering::Release);
            warm_up.join().unwrap();
            go.wait();
            for text in ["one", "two", "three"] {
                channel.send(text.as_bytes()).unwrap();
                channel.flush().unwrap();
            }
            collect(&channel, 1, WAIT)
        })
    };
    ready.wait();
    // The last warm-up datagrams reach the repeater within this.
    std::thread::sleep(Duration::from_millis(300));
    let before = repeater.stats();
    go.wait();
    let at_core = core_listener.join().unwrap();
    for (name, island) in [("b1", b1), ("b2", b2)] {
        let (received, relay, reach) = island.join().unwrap();
        let payloads: Vec<&[u8]> = received.iter().map(|m| m.payload.as_slice()).collect();
        assert_eq!(
            payloads,
            [&b"one"[..], b"two", b"three"],
            "{name}: {reach:?}"
        );
        assert!(received.iter().all(|message| message.relayed), "{name}");
        assert_eq!(relay, repeater_address, "{name}: {reach:?}");
        assert!(reach.offers.iter().all(|offer| offer.repeater), "{name}");
        let probe = reach.probe.unwrap();
        assert!(!probe.native_down && !probe.native_up, "{name}: {probe:?}");
    }
    assert_eq!(at_core.len(), 1, "the core hears the island once");
    assert_eq!(at_core[0].payload, b"from beyond the router");
    assert!(at_core[0].relayed);
    // Both islands have closed their contexts; the repeater handles their TEARDOWNs on its own
    // thread, so give it a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    while repeater.stats().tunnels > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = repeater.stats();
    // One SSM copy per datagram serves both islands (a relay would have sent two).
    let down = stats.datagrams_down - before.datagrams_down;
    assert_eq!(down, 3, "{before:?} then {stats:?}");
    assert_eq!(stats.datagrams_up, 1, "{stats:?}");
    assert_eq!(stats.offers, 2, "{stats:?}");
    // Their TEARDOWNs leave no client behind.
    assert_eq!(stats.tunnels, 0, "{stats:?}");
}

#[test]
fn a_repeater_whose_ssm_does_not_arrive_is_passed_over_for_a_relay() {
    // The stratum world's router forwards unicast only: no SSM crosses it either.
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    let repeater = relay_with(&world, "r1", |config| config.ssm_repeater = true);
    let relay = relay_on(&world, "r2");
    let relay_address = SocketAddrV6::new(world.host("r2").addr(), relay.port(), 0, 0);
    let island = world.host("i1").spawn(move || {
        let mut config = config();
        config.stratum0 = Some(s0);
        let context = Context::new(config).unwrap();
        let channel = context.channel("no-ssm-here").unwrap();
        channel.join().unwrap();
        let opened = Instant::now();
        let deadline = opened + WAIT;
        while context.reachability().unwrap().relay != Some(relay_address) {
            assert!(Instant::now() < deadline, "{:?}", context.reachability());
            std::thread::sleep(Duration::from_millis(20));
        }
        (opened.elapsed(), context.reachability().unwrap())
    });
    let (took, reach) = island.join().unwrap();
    eprintln!("passed over the repeater for a relay after {took:?}");
    assert!(
        reach.offers.iter().any(|offer| offer.repeater),
        "the repeater offered: {reach:?}"
    );
    assert_eq!(repeater.stats().datagrams_down, 0);
}

#[test]
fn a_node_that_joined_nothing_sends_through_its_repeater() {
    let Some(world) = world(World::routed_ssm, true) else {
        return;
    };
    let (_stratum0, repeater, s0) = core_on_a1(&world);
    let start = start_line(2);
    let listener = {
        let start = Arc::clone(&start);
        world.host("a2").spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("ssm-send").unwrap();
            channel.join().unwrap();
            start.wait();
            collect(&channel, 3, WAIT)
        })
    };
    let reach = world
        .host("b1")
        .spawn(move || {
            let mut config = config();
            config.stratum0 = Some(s0);
            let context = Context::new(config).unwrap();
            // Not joined: the repeater was never asked for this channel's (S, G).
            let channel = context.channel("ssm-send").unwrap();
            wait_for_relay(&context);
            start.wait();
            for text in ["one", "two", "three"] {
                channel.send(text.as_bytes()).unwrap();
                channel.flush().unwrap();
            }
            std::thread::sleep(Duration::from_millis(300));
            context.reachability().unwrap()
        })
        .join()
        .unwrap();
    let at_core = listener.join().unwrap();
    let payloads: Vec<&[u8]> = at_core.iter().map(|m| m.payload.as_slice()).collect();
    assert_eq!(payloads, [&b"one"[..], b"two", b"three"], "{reach:?}");
    assert!(reach.offers.iter().all(|offer| offer.repeater), "{reach:?}");
    assert_eq!(repeater.stats().datagrams_up, 3, "{:?}", repeater.stats());
}
