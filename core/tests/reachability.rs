//! The relay fallback with real packets: Stratum 0 and relays on the core segment, nodes on
//! islands behind routers that forward unicast only.

mod harness;

use std::{
    net::SocketAddrV6,
    sync::{Arc, Barrier},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use harness::{
    World, assert_quiet, collect, config, joined, relay_on, spoofing_socket, start_line,
    stratum0_on, world,
};
use sixcast::{
    Channel, Config, Context, CorePath, Event,
    relay::{Relay, RelayStats},
    stratum0::Stratum0,
    wire::control::{self, Control},
};

const WAIT: Duration = Duration::from_secs(10);

/// Stratum 0 and relays of a world, running until dropped.
struct CoreServices {
    stratum0: Stratum0,
    relays: Vec<(String, Relay)>,
    address: SocketAddrV6,
}

/// Starts Stratum 0 on `s0_host` and a relay on each of `relay_hosts`.
fn core_services(world: &World, s0_host: &str, relay_hosts: &[&str]) -> CoreServices {
    let (stratum0, address) = stratum0_on(world, s0_host);
    let relays = relay_hosts
        .iter()
        .map(|host| (host.to_string(), relay_on(world, host)))
        .collect();
    CoreServices {
        stratum0,
        relays,
        address,
    }
}

impl CoreServices {
    fn relay_stats(&self) -> Vec<RelayStats> {
        self.relays.iter().map(|(_, relay)| relay.stats()).collect()
    }

    /// The host whose relay listens at `address`.
    fn relay_host(&self, world: &World, address: SocketAddrV6) -> String {
        let found = self.relays.iter().find(|(host, relay)| {
            world.host(host).addr() == *address.ip() && relay.port() == address.port()
        });
        found
            .map(|(host, _)| host.clone())
            .expect("a relay of this world")
    }
}

fn island_config(stratum0: SocketAddrV6) -> Config {
    let mut config = config();
    config.stratum0 = Some(stratum0);
    config
}

/// Waits until the context has a tunnel (its relay) or has settled on native (None).
fn wait_for_path(context: &Context) -> Option<SocketAddrV6> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Some(reach) = context.reachability()
            && (reach.relay.is_some() || reach.probe.as_ref().is_some_and(|probe| probe.native()))
        {
            return reach.relay;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no path settled: {:?}", context.reachability());
}

/// What the tests that count messages at the core send.
const THREE: [&str; 3] = ["first", "second", "third"];

/// Sends the [`THREE`] messages on `channel`, and flushes.
fn send_three(channel: &Channel) {
    for text in THREE {
        channel.send(text.as_bytes()).unwrap();
    }
    channel.flush().unwrap();
}

/// On the core host c2, a listener joined to `name` that collects three messages once `start`
/// opens, then checks that no more follow.
fn three_heard_on_c2(
    world: &World,
    name: &'static str,
    start: &Arc<Barrier>,
) -> JoinHandle<Vec<sixcast::Message>> {
    let start = Arc::clone(start);
    world.host("c2").spawn(move || {
        let (_context, channel) = joined(config(), name);
        start.wait();
        let received = collect(&channel, 3, WAIT);
        assert_quiet(&channel, Duration::from_millis(500));
        received
    })
}

fn payloads(messages: &[sixcast::Message]) -> Vec<&[u8]> {
    messages
        .iter()
        .map(|message| message.payload.as_slice())
        .collect()
}

#[test]
fn an_island_reaches_the_core_through_a_relay_both_ways() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world, "s0", &["r1", "r2"]);
    let s0 = services.address;
    let start = start_line(3);
    let island = {
        let start = Arc::clone(&start);
        world.host("i1").spawn(move || {
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("alerts").unwrap();
            channel.join().unwrap();
            let joined_at = Instant::now();
            let relay = wait_for_path(&context).expect("the island needs a relay");
            let settled = joined_at.elapsed();
            start.wait();
            let received = collect(&channel, 3, WAIT);
            channel.send(b"island to core").unwrap();
            channel.flush().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            (received, relay, settled, context.reachability().unwrap())
        })
    };
    let listener = {
        let start = Arc::clone(&start);
        world.host("c2").spawn(move || {
            let (_context, channel) = joined(config(), "alerts");
            start.wait();
            collect(&channel, 4, WAIT)
        })
    };
    world
        .host("c1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("alerts").unwrap();
            start.wait();
            for text in ["disk full", "load high", "all clear"] {
                channel.send(text.as_bytes()).unwrap();
                channel.flush().unwrap();
            }
        })
        .join()
        .unwrap();
    let (received, used_relay, settled, reach) = island.join().unwrap();
    assert_eq!(
        payloads(&received),
        [&b"disk full"[..], b"load high", b"all clear"],
        "{reach:?}"
    );
    assert!(received.iter().all(|message| message.relayed));
    let probe = reach.probe.unwrap();
    assert!(!probe.native_down && !probe.native_up, "{probe:?}");
    assert_eq!(
        reach.offers.len(),
        2,
        "both relays offered: {:?}",
        reach.offers
    );
    eprintln!("join to relayed path: {settled:?} via {used_relay}");
    let at_core = listener.join().unwrap();
    assert_eq!(
        payloads(&at_core),
        [
            &b"disk full"[..],
            b"load high",
            b"all clear",
            b"island to core"
        ],
        "the core hears everything once"
    );
    let stats = services.relay_stats();
    assert_eq!(
        stats.iter().map(|stats| stats.datagrams_up).sum::<u64>(),
        1,
        "{stats:?}"
    );
    // The island's context has closed: its TEARDOWN removes the tunnel (within a moment).
    let deadline = Instant::now() + Duration::from_secs(2);
    while services.relay_stats().iter().any(|stats| stats.tunnels > 0) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = services.relay_stats();
    assert!(stats.iter().all(|stats| stats.tunnels == 0), "{stats:?}");
}

#[test]
fn what_an_island_sends_before_its_path_is_known_reaches_the_core() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world, "s0", &["r1"]);
    let s0 = services.address;
    let start = start_line(2);
    let listener = three_heard_on_c2(&world, "early", &start);
    let reach = world
        .host("i1")
        .spawn(move || {
            start.wait();
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("early").unwrap();
            channel.join().unwrap();
            // At once: Stratum 0 has not answered the probe yet, and no tunnel is open.
            assert!(context.reachability().unwrap().relay.is_none());
            send_three(&channel);
            wait_for_path(&context).expect("the island needs a relay");
            std::thread::sleep(Duration::from_millis(300));
            context.reachability().unwrap()
        })
        .join()
        .unwrap();
    let at_core = listener.join().unwrap();
    assert_eq!(
        payloads(&at_core),
        THREE.map(str::as_bytes),
        "the core hears each once: {reach:?}"
    );
    assert!(at_core.iter().all(|message| message.relayed));
    assert_eq!(reach.held_dropped, 0);
    let stats = services.relay_stats();
    assert!(
        stats.iter().map(|stats| stats.datagrams_up).sum::<u64>() >= 1,
        "{stats:?}"
    );
}

#[test]
fn an_island_node_that_joined_nothing_sends_through_its_relay() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world, "s0", &["r1"]);
    let s0 = services.address;
    let start = start_line(2);
    let listener = three_heard_on_c2(&world, "announcements", &start);
    let (reach, stats) = world
        .host("i1")
        .spawn(move || {
            start.wait();
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("announcements").unwrap();
            wait_for_path(&context).expect("the island needs a relay");
            send_three(&channel);
            std::thread::sleep(Duration::from_millis(300));
            (context.reachability().unwrap(), channel.stats())
        })
        .join()
        .unwrap();
    assert!(reach.relay.is_some(), "{reach:?}");
    let at_core = listener.join().unwrap();
    let relays = services.relay_stats();
    assert_eq!(
        payloads(&at_core),
        THREE.map(str::as_bytes),
        "the core hears each once: {reach:?} {stats:?} {relays:?}"
    );
    // Not joined, the sender is sent nothing of the channel.
    assert_eq!(stats.messages_received, 0);
    assert_eq!(
        relays.iter().map(|stats| stats.rejected).sum::<u64>(),
        0,
        "{relays:?}"
    );
}

#[test]
fn islands_reach_each_other_through_relays() {
    let Some(world) = world(World::stratum2, false) else {
        return;
    };
    let services = core_services(&world, "s0", &["r1"]);
    let s0 = services.address;
    let start = start_line(2);
    let receiver = {
        let start = Arc::clone(&start);
        world.host("j1").spawn(move || {
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("chat").unwrap();
            channel.join().unwrap();
            wait_for_path(&context).expect("island b needs a relay");
            start.wait();
            let received = collect(&channel, 2, WAIT);
            assert_quiet(&channel, Duration::from_millis(300));
            received
        })
    };
    world
        .host("i1")
        .spawn(move || {
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("chat").unwrap();
            channel.join().unwrap();
            wait_for_path(&context).expect("island a needs a relay");
            start.wait();
            channel.send(b"hello from island a").unwrap();
            channel.send(b"").unwrap();
            channel.flush().unwrap();
            std::thread::sleep(Duration::from_millis(300));
        })
        .join()
        .unwrap();
    let received = receiver.join().unwrap();
    assert_eq!(payloads(&received), [&b"hello from island a"[..], b""]);
}

#[test]
fn a_silent_relay_is_replaced_by_a_spare_within_five_seconds() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world, "s0", &["r1", "r2"]);
    let s0 = services.address;
    let (relay_tx, relay_rx) = std::sync::mpsc::channel();
    let island = world.host("i1").spawn(move || {
        let context = Context::new(island_config(s0)).unwrap();
        let channel = context.channel("heartbeat").unwrap();
        channel.join().unwrap();
        relay_tx
            .send(wait_for_path(&context).expect("a relay"))
            .unwrap();
        // Arrival time of each heartbeat, by its number.
        let mut arrivals = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(12);
        while Instant::now() < deadline {
            if let Ok(message) = channel.recv_timeout(Duration::from_millis(100)) {
                let number: u32 = String::from_utf8_lossy(&message.payload).parse().unwrap();
                arrivals.push((number, Instant::now()));
            }
        }
        let mut events = Vec::new();
        while let Some(event) = context.try_event().unwrap() {
            events.push(event);
        }
        (arrivals, context.reachability().unwrap(), events)
    });
    let first_relay = relay_rx.recv_timeout(WAIT).unwrap();
    let first_host = services.relay_host(&world, first_relay);
    let sender = world.host("c1").spawn(|| {
        let context = Context::new(config()).unwrap();
        let channel = context.channel("heartbeat").unwrap();
        for number in 0..100u32 {
            channel.send(number.to_string().as_bytes()).unwrap();
            channel.flush().unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_secs(2));
    world.set_link_silent(&first_host, true).unwrap();
    let cut_at = Instant::now();
    let (arrivals, reach, events) = island.join().unwrap();
    sender.join().unwrap();
    let resumed = arrivals
        .iter()
        .find(|(_, at)| *at > cut_at + Duration::from_millis(300))
        .map(|(_, at)| at.duration_since(cut_at))
        .expect("traffic resumed after the cut");
    eprintln!("failover: traffic resumed {resumed:?} after the relay went silent");
    assert!(resumed <= Duration::from_secs(5), "took {resumed:?}");
    assert_ne!(
        reach.relay,
        Some(first_relay),
        "moved to the spare: {reach:?}"
    );
    // The application heard of it: the failover, then the new path.
    let failover = events
        .iter()
        .position(|event| {
            *event
                == Event::RelayFailover {
                    from: first_relay,
                    to: reach.relay,
                }
        })
        .unwrap_or_else(|| panic!("no failover event: {events:?}"));
    assert!(
        events[failover..].contains(&Event::PathChanged {
            path: CorePath::Relay(reach.relay.unwrap())
        }),
        "{events:?}"
    );
    let numbers: Vec<u32> = arrivals.iter().map(|(number, _)| *number).collect();
    let mut unique = numbers.clone();
    unique.dedup();
    assert_eq!(numbers, unique, "no heartbeat twice");
}

#[test]
fn where_multicast_is_native_no_relay_carries_anything() {
    for build in [(|| World::lan(3)) as fn() -> _, World::routed_mcast] {
        let Some(world) = world(build, true) else {
            return;
        };
        // Stratum 0 and the relay on one host, a sender beside it, a listener further away.
        let (core, near, far) = if world.get_host("h1").is_some() {
            ("h1", "h2", "h3")
        } else {
            ("a1", "a2", "b1")
        };
        let services = core_services(&world, core, &[core]);
        let s0 = services.address;
        let listener = world.host(far).spawn(move || {
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("metrics").unwrap();
            channel.join().unwrap();
            assert_eq!(wait_for_path(&context), None, "native: no tunnel");
            std::thread::sleep(Duration::from_millis(300));
            collect(&channel, 2, WAIT)
        });
        world
            .host(near)
            .spawn(move || {
                let context = Context::new(island_config(s0)).unwrap();
                let channel = context.channel("metrics").unwrap();
                assert_eq!(wait_for_path(&context), None);
                std::thread::sleep(Duration::from_millis(600));
                channel.send(b"cpu 3%").unwrap();
                channel.send(b"cpu 4%").unwrap();
                channel.flush().unwrap();
            })
            .join()
            .unwrap();
        let received = listener.join().unwrap();
        assert_eq!(
            payloads(&received),
            [&b"cpu 3%"[..], b"cpu 4%"],
            "{}",
            world.topology()
        );
        assert!(received.iter().all(|message| !message.relayed));
        let stats = services.relay_stats();
        assert!(
            stats
                .iter()
                .all(|s| (s.tunnels, s.datagrams_down, s.datagrams_up) == (0, 0, 0)),
            "{}: {stats:?}",
            world.topology()
        );
        assert!(services.stratum0.stats().probes >= 2);
    }
}

#[test]
fn a_spoofed_relay_request_draws_no_traffic_to_the_spoofed_address() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world, "s0", &["r1", "r2"]);
    let s0 = services.address;
    let victim = SocketAddrV6::new(world.host("i2").addr(), 40_000, 0, 0);
    let inbox = world
        .host("i2")
        .run(|| std::net::UdpSocket::bind(victim).unwrap())
        .unwrap();
    inbox
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // The attacker on i1 claims to be the victim, with and without a made-up cookie.
    let sent: usize = world
        .host("i1")
        .run(|| {
            let attacker = spoofing_socket(victim);
            let mut sent = 0;
            for (nonce, cookie) in [(1u64, [0u8; 16]), (2, [0x5c; 16]), (3, [0; 16])] {
                let request = Control::RelayRequest(control::RelayRequest { nonce, cookie })
                    .to_vec()
                    .unwrap();
                sent += attacker.send_to(&request, s0).unwrap();
            }
            sent
        })
        .unwrap();
    let mut received = 0;
    let mut datagrams = Vec::new();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut buffer = [0u8; 2048];
    while Instant::now() < deadline {
        if let Ok((len, from)) = inbox.recv_from(&mut buffer) {
            received += len;
            datagrams.push((from, control::decode(&buffer[..len]).map(|m| m.name())));
        }
    }
    assert!(
        received <= sent,
        "amplified: {received} bytes back for {sent} sent: {datagrams:?}"
    );
    assert!(
        datagrams.iter().all(|(_, kind)| *kind == Ok("cookie")),
        "only cookies may reach an unverified address: {datagrams:?}"
    );
    assert_eq!(services.stratum0.stats().solicitations, 0);
    let offers: u64 = services
        .relay_stats()
        .iter()
        .map(|stats| stats.offers)
        .sum();
    assert_eq!(offers, 0, "no relay was asked to offer to the victim");
    eprintln!("spoofed requests: {sent} bytes sent, {received} bytes reached the victim");
}

#[test]
fn a_tunnelled_node_returns_to_native_multicast_when_it_starts_working() {
    let Some(world) = world(World::stratum, true) else {
        return;
    };
    let services = core_services(&world, "s0", &["r1"]);
    let s0 = services.address;
    let (phase_tx, phase_rx) = std::sync::mpsc::channel::<&str>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let island = world.host("i1").spawn(move || {
        let mut config = island_config(s0);
        config.probe_interval = Duration::from_secs(3);
        let context = Context::new(config).unwrap();
        let channel = context.channel("ops").unwrap();
        channel.join().unwrap();
        assert!(wait_for_path(&context).is_some(), "starts on a tunnel");
        phase_tx.send("tunnelled").unwrap();
        let through_relay = collect(&channel, 1, WAIT);
        phase_tx.send("received").unwrap();
        // Wait for the re-probe to find native multicast and close the tunnel.
        let deadline = Instant::now() + Duration::from_secs(15);
        while context.reachability().unwrap().relay.is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let reach = context.reachability().unwrap();
        phase_tx.send("native").unwrap();
        let natively = collect(&channel, 1, WAIT);
        done_tx.send(()).unwrap();
        (through_relay, natively, reach)
    });
    let send = |text: &'static str| {
        world
            .host("c1")
            .spawn(move || {
                let context = Context::new(config()).unwrap();
                let channel = context.channel("ops").unwrap();
                channel.send(text.as_bytes()).unwrap();
                channel.flush().unwrap();
            })
            .join()
            .unwrap();
    };
    assert_eq!(phase_rx.recv_timeout(WAIT).unwrap(), "tunnelled");
    send("via the relay");
    assert_eq!(phase_rx.recv_timeout(WAIT).unwrap(), "received");
    world.set_router_multicast(true).unwrap();
    let switched_on = Instant::now();
    assert_eq!(
        phase_rx.recv_timeout(Duration::from_secs(20)).unwrap(),
        "native"
    );
    let moved_back = switched_on.elapsed();
    // Keep sending until the island confirms (its native join may take a moment to be routed).
    for _ in 0..20 {
        send("natively again");
        if done_rx.recv_timeout(Duration::from_millis(250)).is_ok() {
            break;
        }
    }
    let (through_relay, natively, reach) = island.join().unwrap();
    assert_eq!(payloads(&through_relay), [&b"via the relay"[..]]);
    assert!(through_relay[0].relayed);
    assert_eq!(reach.relay, None, "{reach:?}");
    assert!(
        reach.probe.as_ref().is_some_and(|probe| probe.native()),
        "{reach:?}"
    );
    assert_eq!(payloads(&natively), [&b"natively again"[..]]);
    assert!(!natively[0].relayed, "{:?}", natively[0]);
    eprintln!("moved back to native multicast {moved_back:?} after it started working");
    assert!(moved_back <= Duration::from_secs(10), "{moved_back:?}");
}
