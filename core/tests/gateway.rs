//! Stratum 1 gateways with real packets: in the `stratum` world the island hosts `i1` and `i2`
//! cannot reach the core's multicast; one of them holds a relay tunnel and serves the other
//! through it, and the other takes over when the gateway leaves.

mod harness;

use std::{
    net::SocketAddrV6,
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use harness::{
    World, assert_quiet, collect, config, relay_on, start_line, stratum0_on, world,
    worlds_available,
};
use sixcast::{
    Config, Context, Event, Message, Path, Reachability,
    relay::{Relay, RelayStats},
    stratum0::Stratum0,
};

const WAIT: Duration = Duration::from_secs(10);
/// The documented bound on a takeover after the gateway leaves (docs/reachability.md §6).
const TAKEOVER_BOUND: Duration = Duration::from_secs(5);
/// How soon after a neighbour joins the gateway re-sends to it: the neighbour's next election
/// tick (100 ms) says it listens (docs/reachability.md §6); the rest is margin for a loaded
/// machine.
const LISTENER_BOUND: Duration = Duration::from_millis(500);
/// How long a gateway keeps re-sending after its last listener left: the listener signal's
/// hold (1.5 s), with margin.
const LISTENER_GONE: Duration = Duration::from_millis(2000);

/// Stratum 0 on `s0` and relays on `r1` and `r2`, running until dropped.
struct CoreServices {
    _stratum0: Stratum0,
    relays: Vec<Relay>,
    address: SocketAddrV6,
}

fn core_services(world: &World) -> CoreServices {
    let (stratum0, address) = stratum0_on(world, "s0");
    let relays = ["r1", "r2"]
        .iter()
        .map(|host| relay_on(world, host))
        .collect();
    CoreServices {
        _stratum0: stratum0,
        relays,
        address,
    }
}

impl CoreServices {
    fn stats(&self) -> Vec<RelayStats> {
        self.relays.iter().map(Relay::stats).collect()
    }

    fn tunnels(&self) -> u64 {
        self.stats().iter().map(|stats| stats.tunnels).sum()
    }

    /// Waits (bounded) until the relays hold `count` tunnels in all; returns the count then.
    fn settle_tunnels(&self, count: u64) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.tunnels() != count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.tunnels()
    }
}

fn island_config(stratum0: SocketAddrV6) -> Config {
    let mut config = config();
    config.stratum0 = Some(stratum0);
    config
}

/// Waits until `done` holds for the context's reachability, and returns it.
fn wait_until(context: &Context, done: impl Fn(&Reachability) -> bool) -> Reachability {
    let deadline = Instant::now() + WAIT;
    loop {
        let reach = context.reachability().expect("a Stratum 0 is configured");
        if done(&reach) {
            return reach;
        }
        assert!(Instant::now() < deadline, "did not settle: {reach:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_gateway(reach: &Reachability) -> bool {
    !reach.serving.is_empty() && reach.relay.is_some()
}

fn is_served(reach: &Reachability) -> bool {
    reach.gateway.is_some() && reach.relay.is_none()
}

/// Receives until `count` messages other than the core's heartbeats arrived, or [`WAIT`] passed.
fn collect_except_heartbeats(channel: &sixcast::Channel, count: usize) -> Vec<Message> {
    let mut received = Vec::new();
    let deadline = Instant::now() + WAIT;
    while received.len() < count && Instant::now() < deadline {
        if let Ok(message) = channel.recv_timeout(Duration::from_millis(100))
            && message.payload != b"heartbeat"
        {
            received.push(message);
        }
    }
    received
}

fn payloads(messages: &[Message]) -> Vec<&[u8]> {
    messages
        .iter()
        .map(|message| message.payload.as_slice())
        .collect()
}

#[test]
fn a_second_island_host_receives_through_the_first_as_gateway() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world);
    let s0 = services.address;
    let start = start_line(4);
    let (gateway_tx, gateway_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let gateway = {
        let start = Arc::clone(&start);
        world.host("i1").spawn(move || {
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("alerts").unwrap();
            channel.join().unwrap();
            let reach = wait_until(&context, is_gateway);
            gateway_tx.send(reach).unwrap();
            // The application heard of its election.
            let serving = loop {
                if let Event::GatewayRole { serving } = context.event_timeout(WAIT).unwrap()
                    && !serving.is_empty()
                {
                    break serving;
                }
            };
            assert_eq!(serving, [channel.group()]);
            start.wait();
            let received = collect_except_heartbeats(&channel, 4);
            stop_rx.recv_timeout(WAIT).unwrap();
            (received, channel.stats())
        })
    };
    let gateway_reach = gateway_rx.recv_timeout(WAIT).unwrap();
    // The core sends a heartbeat until the second host has heard one.
    let heartbeat = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let beating = {
        let heartbeat = Arc::clone(&heartbeat);
        world.host("c1").spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("alerts").unwrap();
            while heartbeat.load(std::sync::atomic::Ordering::Acquire) {
                channel.send(b"heartbeat").unwrap();
                channel.flush().unwrap();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let served = {
        let start = Arc::clone(&start);
        let heartbeat = Arc::clone(&heartbeat);
        world.host("i2").spawn(move || {
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("alerts").unwrap();
            let joined_at = Instant::now();
            channel.join().unwrap();
            let first = collect(&channel, 1, WAIT);
            let first_after = joined_at.elapsed();
            // Once its announcement is heard, what the gateway re-sends says so.
            let labelled = loop {
                let message = channel.recv_timeout(WAIT).unwrap();
                if message.path == Path::Gateway {
                    break joined_at.elapsed();
                }
            };
            // Reachability names the gateway once the probe has found native multicast lacking,
            // and the path event says so.
            let reach = wait_until(&context, is_served);
            let via = loop {
                if let Event::PathChanged { path } = context.event_timeout(WAIT).unwrap()
                    && path.name() == "gateway"
                {
                    break path.via();
                }
            };
            assert_eq!(via, reach.gateway);
            let served_after = joined_at.elapsed();
            heartbeat.store(false, std::sync::atomic::Ordering::Release);
            // Let the last heartbeats drain before the counted messages.
            while channel.recv_timeout(Duration::from_millis(300)).is_ok() {}
            start.wait();
            let received = collect(&channel, 3, WAIT);
            assert_quiet(&channel, Duration::from_millis(500));
            channel.send(b"island 2 to core").unwrap();
            channel.flush().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let stats = channel.stats();
            (
                first,
                [first_after, labelled, served_after],
                received,
                reach,
                stats,
            )
        })
    };
    let listener = {
        let start = Arc::clone(&start);
        world.host("c2").spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("alerts").unwrap();
            channel.join().unwrap();
            std::thread::sleep(harness::ROUTER_JOIN_DELAY);
            start.wait();
            (collect_except_heartbeats(&channel, 4), channel.stats())
        })
    };
    beating.join().unwrap();
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
    let (first, [first_after, labelled, served_after], received, served_reach, served_stats) =
        served.join().unwrap();
    let (at_core, core_stats) = listener.join().unwrap();
    stop_tx.send(()).unwrap();
    let (at_gateway, gateway_stats) = gateway.join().unwrap();
    // Nothing arrived twice anywhere: no loops, and the gateway drops the copies of its own
    // re-sends that multicast loopback brings back.
    for stats in [served_stats, core_stats, gateway_stats] {
        assert_eq!(stats.duplicates, 0, "{stats:?}");
    }
    assert!(gateway_stats.own_dropped >= 3, "{gateway_stats:?}");

    eprintln!(
        "through the gateway, from join: first message {first_after:?} (path {:?}), first \
         labelled gateway {labelled:?}, gateway in Reachability {served_after:?}",
        first[0].path
    );
    assert!(first[0].relayed, "{:?}", first[0]);
    assert_eq!(
        payloads(&received),
        [&b"disk full"[..], b"load high", b"all clear"],
        "each core message exactly once: {served_reach:?}"
    );
    assert!(
        received
            .iter()
            .all(|message| message.path == Path::Gateway && message.relayed),
        "{received:?}"
    );
    assert_eq!(served_reach.relay, None, "no tunnel of its own");
    let gateway_address = served_reach.gateway.expect("a gateway");
    assert_eq!(
        *gateway_address.ip(),
        world.host("i1").link_local(),
        "announced on the link"
    );
    assert!(served_reach.serving.is_empty());
    assert_eq!(gateway_reach.serving.len(), 1, "{gateway_reach:?}");
    // The gateway's own messages come down its tunnel; its neighbour's natively.
    let gateway_paths: Vec<(&[u8], Path)> = at_gateway
        .iter()
        .map(|message| (message.payload.as_slice(), message.path))
        .collect();
    assert_eq!(
        gateway_paths,
        [
            (&b"disk full"[..], Path::Relay),
            (b"load high", Path::Relay),
            (b"all clear", Path::Relay),
            (b"island 2 to core", Path::Native),
        ]
    );
    assert_eq!(
        payloads(&at_core),
        [
            &b"disk full"[..],
            b"load high",
            b"all clear",
            b"island 2 to core"
        ],
        "the core hears the second host through the gateway, once"
    );
    assert_eq!(at_core[3].path, Path::Relay);
    assert_eq!(
        services.settle_tunnels(0),
        0,
        "the gateway's tunnel closed with it"
    );
    let stats = services.stats();
    assert_eq!(
        stats.iter().map(|stats| stats.challenges).sum::<u64>(),
        1,
        "one tunnel was ever opened for the island: {stats:?}"
    );
    assert_eq!(
        stats.iter().map(|stats| stats.datagrams_up).sum::<u64>(),
        1,
        "only the second host's message went up: {stats:?}"
    );
}

/// Sends `count` numbered messages (`prefix` and a number) from `channel`, one every `gap`, and
/// returns when each left.
fn send_numbered(
    channel: &sixcast::Channel,
    prefix: &str,
    count: usize,
    gap: Duration,
) -> Vec<Instant> {
    (0..count)
        .map(|number| {
            let at = Instant::now();
            channel
                .send(format!("{prefix}{number}").as_bytes())
                .unwrap();
            channel.flush().unwrap();
            std::thread::sleep(gap);
            at
        })
        .collect()
}

/// The numbers of the messages with `prefix` among `messages`, in arrival order.
fn numbers(messages: &[Message], prefix: &str) -> Vec<usize> {
    messages
        .iter()
        .filter_map(|message| {
            String::from_utf8_lossy(&message.payload)
                .strip_prefix(prefix)?
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn a_served_host_sends_to_a_channel_its_gateway_does_not_serve_through_a_tunnel_of_its_own() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world);
    let s0 = services.address;
    let _gateway = world
        .host("i1")
        .run(|| {
            let (context, channel) = harness::joined(island_config(s0), "alerts");
            wait_until(&context, is_gateway);
            (context, channel)
        })
        .unwrap();
    let (_listener_context, listener) = world
        .host("c2")
        .run(|| harness::joined(config(), "deploys"))
        .unwrap();
    std::thread::sleep(harness::ROUTER_JOIN_DELAY);
    // i2's only joined channel is served by i1, so it holds no tunnel; nobody on the segment
    // joined "deploys", so no gateway uploads what i2 multicasts there.
    let (served_context, _alerts, deploys) = world
        .host("i2")
        .run(|| {
            let (context, alerts) = harness::joined(island_config(s0), "alerts");
            wait_until(&context, is_served);
            let deploys = context.channel("deploys").unwrap();
            (context, alerts, deploys)
        })
        .unwrap();
    assert_eq!(services.settle_tunnels(1), 1, "{:?}", services.stats());
    let sent_at = Instant::now();
    for text in ["release 1", "release 2", "release 3"] {
        deploys.send(text.as_bytes()).unwrap();
        deploys.flush().unwrap();
    }
    let received = collect(&listener, 3, WAIT);
    let arrived_after = sent_at.elapsed();
    assert_eq!(
        payloads(&received),
        [&b"release 1"[..], b"release 2", b"release 3"],
        "{:?}",
        served_context.reachability()
    );
    assert_quiet(&listener, Duration::from_millis(500));
    // The tunnel opened for what i2 sends stays; its joined channel stays with the gateway.
    assert_eq!(services.settle_tunnels(2), 2, "{:?}", services.stats());
    let reach = served_context.reachability().unwrap();
    assert!(
        reach.relay.is_some() && reach.serving.is_empty(),
        "{reach:?}"
    );
    assert_eq!(reach.held_dropped, 0, "{reach:?}");
    eprintln!("sent to an unserved channel: all three at the core {arrived_after:?} after");
}

#[test]
fn an_idle_gateway_and_the_host_it_serves_sleep() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world);
    let s0 = services.address;
    let mut hosts = Vec::new();
    for (host, settled) in [
        ("i1", is_gateway as fn(&Reachability) -> bool),
        ("i2", is_served),
    ] {
        let (context, channel, threads) = world
            .host(host)
            .run(|| {
                let (context, channel) = harness::joined(island_config(s0), "idle");
                wait_until(&context, settled);
                // The context's threads: the relays and Stratum 0 run on other hosts.
                let threads: Vec<u32> = ["sixcast-recv", "sixcast-flush", "sixcast-reach"]
                    .iter()
                    .flat_map(|name| harness::host_threads(name))
                    .collect();
                (context, channel, threads)
            })
            .unwrap();
        assert_eq!(threads.len(), 3, "{host}: {threads:?}");
        hosts.push((host, threads, context, channel));
    }
    let threads: Vec<Vec<u32>> = hosts
        .iter()
        .map(|(_, threads, ..)| threads.clone())
        .collect();
    for ((host, ..), rates) in hosts.iter().zip(idle_wakeups(&threads)) {
        let total: f64 = rates.iter().map(|(_, rate)| rate).sum();
        let each = describe(&rates);
        eprintln!("{host}: {total:.1} idle wake-ups a second ({each})");
        // Announcements (2 a second each way), the tunnel's keepalive and its answer: a few.
        // An election on a 100 ms tick alone would be 10.
        assert!(total < 10.0, "{host}: {total:.1} a second ({each})");
    }
}

/// Wake-ups a second of each thread of each group in `threads`, named, over 3 s.
fn idle_wakeups(threads: &[Vec<u32>]) -> Vec<Vec<(String, f64)>> {
    let window = Duration::from_secs(3);
    let at_start: Vec<Vec<u64>> = threads
        .iter()
        .map(|tids| tids.iter().map(|tid| harness::wakeups(*tid)).collect())
        .collect();
    std::thread::sleep(window);
    threads
        .iter()
        .zip(at_start)
        .map(|(tids, at_start)| {
            tids.iter()
                .zip(at_start)
                .map(|(tid, before)| {
                    let woken = harness::wakeups(*tid).saturating_sub(before);
                    let rate = woken as f64 / window.as_secs_f64();
                    (harness::thread_name(*tid), rate)
                })
                .collect()
        })
        .collect()
}

fn describe(rates: &[(String, f64)]) -> String {
    let each: Vec<String> = rates
        .iter()
        .map(|(name, rate)| format!("{name} {rate:.1}"))
        .collect();
    each.join(", ")
}

#[test]
fn a_native_core_host_stays_off_the_gateway_group_and_its_reach_thread_sleeps() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world);
    let s0 = services.address;
    let (_context, _channel, reach) = world
        .host("c1")
        .run(|| {
            let (context, channel) = harness::joined(island_config(s0), "idle");
            wait_until(&context, |reach| {
                reach.probe.as_ref().is_some_and(|probe| probe.native())
            });
            (context, channel, harness::host_threads("sixcast-reach"))
        })
        .unwrap();
    assert_eq!(reach.len(), 1, "{reach:?}");
    let rates = idle_wakeups(&[reach]).remove(0);
    eprintln!("c1: {}", describe(&rates));
    // Native both ways, it needs no gateway: it neither serves nor listens, so it announces
    // nothing (it used to say twice a second that it listens, and hear itself), and nothing is
    // due before its next probe, 30 s away.
    assert!(rates[0].1 < 0.5, "c1: {}", describe(&rates));
}

#[test]
fn a_gateway_resends_only_while_a_neighbour_listens() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world);
    let s0 = services.address;
    let (_gateway_context, gateway) = world
        .host("i1")
        .run(|| {
            let (context, channel) = harness::joined(island_config(s0), "late");
            wait_until(&context, is_gateway);
            (context, channel)
        })
        .unwrap();
    let (_core_context, sender) = world
        .host("c1")
        .run(|| {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("late").unwrap();
            (context, channel)
        })
        .unwrap();
    let gap = Duration::from_millis(20);

    // Alone on its segment, the gateway receives everything and re-sends nothing: it hears no
    // copy of its own back.
    send_numbered(&sender, "alone ", 20, gap);
    let alone = collect(&gateway, 20, WAIT);
    assert_eq!(numbers(&alone, "alone "), (0..20).collect::<Vec<_>>());
    assert_eq!(gateway.stats().own_dropped, 0, "{:?}", gateway.stats());

    // A neighbour joins while the core sends: everything sent once it has listened for the
    // bound reaches it, once and in order.
    let sending = {
        let sender = sender.clone();
        std::thread::spawn(move || send_numbered(&sender, "late ", 100, gap))
    };
    std::thread::sleep(Duration::from_millis(300));
    let (neighbour_context, neighbour, joined_at) = world
        .host("i2")
        .run(|| {
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("late").unwrap();
            let joined_at = Instant::now();
            channel.join().unwrap();
            (context, channel, joined_at)
        })
        .unwrap();
    let sent_at = sending.join().unwrap();
    let mut messages = Vec::new();
    while let Ok(message) = neighbour.recv_timeout(Duration::from_millis(500)) {
        messages.push(message);
    }
    let got = numbers(&messages, "late ");
    let due: Vec<usize> = (0..sent_at.len())
        .filter(|number| sent_at[*number] >= joined_at + LISTENER_BOUND)
        .collect();
    let first = got.first().expect("the neighbour heard the gateway");
    let offset_ms = |at: Instant| {
        if at >= joined_at {
            at.duration_since(joined_at).as_secs_f64() * 1e3
        } else {
            -joined_at.duration_since(at).as_secs_f64() * 1e3
        }
    };
    eprintln!(
        "the late neighbour hears every message from the one sent {:.0} ms after its join on",
        offset_ms(sent_at[*first])
    );
    assert!(!due.is_empty());
    assert_eq!(
        got[got.len() - due.len()..],
        due[..],
        "everything sent {LISTENER_BOUND:?} after the join: {got:?}"
    );
    assert!(got.windows(2).all(|pair| pair[1] == pair[0] + 1), "{got:?}");
    assert!(messages.iter().all(|message| message.relayed));
    assert_eq!(neighbour.stats().duplicates, 0, "{:?}", neighbour.stats());
    let late = collect(&gateway, 100, WAIT);
    assert_eq!(numbers(&late, "late "), (0..100).collect::<Vec<_>>());
    let resent = gateway.stats().own_dropped;
    assert!(resent >= due.len() as u64, "{:?}", gateway.stats());

    // Once the neighbour has left for the signal's hold, the gateway stops re-sending.
    drop(neighbour);
    drop(neighbour_context);
    std::thread::sleep(LISTENER_GONE);
    let before = gateway.stats().own_dropped;
    send_numbered(&sender, "after ", 20, gap);
    let after = collect(&gateway, 20, WAIT);
    assert_eq!(numbers(&after, "after "), (0..20).collect::<Vec<_>>());
    assert_eq!(gateway.stats().own_dropped, before, "{:?}", gateway.stats());
    assert_eq!(gateway.stats().duplicates, 0, "{:?}", gateway.stats());
}

/// How the gateway host leaves in a takeover run.
#[derive(Debug, Clone, Copy)]
enum Leaving {
    /// Its context closes: it withdraws its announcement and tears its tunnel down.
    Closes,
    /// Its link goes silent: its announcements stop.
    CutOff,
}

/// One takeover run: `i1` serves, `i2` listens to a heartbeat from `c1`, the gateway leaves;
/// returns how long after that the heartbeat resumed at `i2`.
fn takeover(leaving: Leaving) -> Duration {
    let world = World::stratum().expect("building the test world");
    let services = core_services(&world);
    let s0 = services.address;
    let (gateway_up, gateway_ready) = mpsc::channel();
    let (leave_tx, leave_rx) = mpsc::channel::<()>();
    let gateway = world.host("i1").spawn(move || {
        let context = Context::new(island_config(s0)).unwrap();
        let channel = context.channel("heartbeat").unwrap();
        channel.join().unwrap();
        wait_until(&context, is_gateway);
        gateway_up.send(()).unwrap();
        leave_rx.recv_timeout(Duration::from_secs(30)).unwrap();
        context.close();
    });
    gateway_ready.recv_timeout(WAIT).unwrap();
    let (served_tx, served_rx) = mpsc::channel();
    let (collected_tx, collected_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let island = world.host("i2").spawn(move || {
        let context = Context::new(island_config(s0)).unwrap();
        let channel = context.channel("heartbeat").unwrap();
        channel.join().unwrap();
        wait_until(&context, is_served);
        served_tx.send(()).unwrap();
        let mut arrivals = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(message) = channel.recv_timeout(Duration::from_millis(100)) {
                let number: usize = String::from_utf8_lossy(&message.payload).parse().unwrap();
                arrivals.push((number, Instant::now(), message.path));
            }
        }
        collected_tx
            .send((arrivals, context.reachability().unwrap()))
            .unwrap();
        // The context stays open (with its tunnel) until the relays have been counted.
        release_rx.recv_timeout(WAIT).unwrap();
    });
    served_rx.recv_timeout(WAIT).unwrap();
    let sent_at = Arc::new(Mutex::new(Vec::new()));
    let sender = {
        let sent_at = Arc::clone(&sent_at);
        world.host("c1").spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("heartbeat").unwrap();
            for number in 0..90usize {
                sent_at.lock().unwrap().push(Instant::now());
                channel.send(number.to_string().as_bytes()).unwrap();
                channel.flush().unwrap();
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let left_at = Instant::now();
    match leaving {
        Leaving::Closes => leave_tx.send(()).unwrap(),
        Leaving::CutOff => world.set_link_silent("i1", true).unwrap(),
    }
    let (arrivals, reach) = collected_rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let tunnels = services.settle_tunnels(1);
    release_tx.send(()).unwrap();
    island.join().unwrap();
    sender.join().unwrap();
    if let Leaving::CutOff = leaving {
        leave_tx.send(()).unwrap();
    }
    gateway.join().unwrap();
    let sent_at = sent_at.lock().unwrap().clone();
    let numbers: Vec<usize> = arrivals.iter().map(|(number, _, _)| *number).collect();
    let mut unique = numbers.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        numbers.len(),
        "no heartbeat twice: {numbers:?}"
    );
    assert!(
        arrivals
            .iter()
            .filter(|(number, _, _)| sent_at[*number] < left_at)
            .all(|(_, _, path)| *path == Path::Gateway),
        "through the gateway before it left: {arrivals:?}"
    );
    let resumed = arrivals
        .iter()
        .find(|(number, _, _)| sent_at[*number] > left_at)
        .map(|(_, at, _)| at.duration_since(left_at))
        .expect("the heartbeat resumed after the gateway left");
    eprintln!("{leaving:?}: the heartbeat resumed {resumed:?} after the gateway left");
    let after: Vec<usize> = arrivals
        .iter()
        .filter(|(number, _, _)| sent_at[*number] > left_at + resumed)
        .map(|(number, _, _)| *number)
        .collect();
    assert!(
        after.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "nothing lost once resumed: {after:?}"
    );
    assert!(
        reach.relay.is_some() && !reach.serving.is_empty(),
        "the second host took over: {reach:?}"
    );
    if let Leaving::Closes = leaving {
        assert_eq!(
            tunnels,
            1,
            "one tunnel for the island: {:?}",
            services.stats()
        );
    }
    assert!(resumed <= TAKEOVER_BOUND, "{leaving:?} took {resumed:?}");
    resumed
}

#[test]
fn the_second_host_takes_over_when_the_gateway_closes_or_goes_silent() {
    if !worlds_available(false) {
        return;
    }
    let runs: usize = std::env::var("SIXCAST_TAKEOVER_RUNS")
        .ok()
        .and_then(|runs| runs.parse().ok())
        .unwrap_or(1);
    for leaving in [Leaving::Closes, Leaving::CutOff] {
        let times: Vec<Duration> = (0..runs).map(|_| takeover(leaving)).collect();
        eprintln!("{leaving:?}: takeover times {times:?}");
    }
}

#[test]
fn one_gateway_per_segment_when_both_start_at_once() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let services = core_services(&world);
    let s0 = services.address;
    let together = start_line(2);
    let send_line = start_line(3);
    let counted = start_line(3);
    let island_host = |host: &str| {
        let together = Arc::clone(&together);
        let send_line = Arc::clone(&send_line);
        let counted = Arc::clone(&counted);
        world.host(host).spawn(move || {
            together.wait();
            let context = Context::new(island_config(s0)).unwrap();
            let channel = context.channel("elect").unwrap();
            channel.join().unwrap();
            let reach = wait_until(&context, |reach| is_gateway(reach) || is_served(reach));
            // Whoever lost the election has stood down by now; give its teardown a moment.
            std::thread::sleep(gateway_settle());
            let reach_after = context.reachability().unwrap();
            send_line.wait();
            let received = collect(&channel, 1, WAIT);
            assert_quiet(&channel, Duration::from_millis(500));
            // The context stays open (with any tunnel) until the relays have been counted.
            counted.wait();
            counted.wait();
            (context.node_id(), reach, reach_after, received)
        })
    };
    let first = island_host("i1");
    let second = island_host("i2");
    world
        .host("c1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("elect").unwrap();
            send_line.wait();
            channel.send(b"to both").unwrap();
            channel.flush().unwrap();
        })
        .join()
        .unwrap();
    counted.wait();
    let tunnels = services.settle_tunnels(1);
    let opened: u64 = services.stats().iter().map(|stats| stats.challenges).sum();
    counted.wait();
    let hosts = [first.join().unwrap(), second.join().unwrap()];
    let gateways: Vec<_> = hosts
        .iter()
        .filter(|(_, _, after, _)| is_gateway(after))
        .collect();
    assert_eq!(gateways.len(), 1, "exactly one gateway: {hosts:?}");
    let lowest = hosts.iter().map(|(node, ..)| *node).min().unwrap();
    assert_eq!(gateways[0].0, lowest, "the lowest node id wins");
    for (_, first_path, after, received) in &hosts {
        assert!(
            is_gateway(after) || is_served(after),
            "{first_path:?} then {after:?}"
        );
        assert_eq!(payloads(received), [&b"to both"[..]]);
    }
    assert_eq!(
        tunnels,
        1,
        "one tunnel for the island: {:?}",
        services.stats()
    );
    eprintln!(
        "started together: {opened} tunnel(s) opened, one left; {}",
        hosts
            .iter()
            .map(|(node, first, after, _)| format!("{node}: {} then {}", role(first), role(after)))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// "gateway" or "served", for the measurements printed.
fn role(reach: &Reachability) -> &'static str {
    if is_gateway(reach) {
        "gateway"
    } else {
        "served"
    }
}

/// Long enough for a losing gateway to hear the winner's announcement and stand down.
fn gateway_settle() -> Duration {
    sixcast::gateway::ANNOUNCE_INTERVAL * 3
}
