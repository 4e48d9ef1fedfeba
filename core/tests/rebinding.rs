//! NAT rebinding with real packets: a tunnel client whose source port changes is moved to its
//! new address only after it proves it receives there, keeping its joins; before that the relay
//! sends the new address nothing.

mod harness;

use std::{
    net::{SocketAddrV6, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use harness::{
    World, config, install_nft, keep_sending, nat_rebinding_rules, relay_on, stratum0_on, world,
};
use sixcast::{
    Context, Profile, Scope, addr,
    relay::Relay,
    wire::control::{self, Control, Mac},
};

const WAIT: Duration = Duration::from_secs(10);

/// Every control message that arrives on `socket` within `within`, with its size.
fn drain(socket: &UdpSocket, within: Duration) -> Vec<(usize, Vec<u8>)> {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut buffer = [0u8; 2048];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buffer) {
            Ok(len) => received.push((len, buffer[..len].to_vec())),
            Err(_) => break,
        }
    }
    received
}

fn names(received: &[(usize, Vec<u8>)]) -> Vec<&'static str> {
    received
        .iter()
        .map(|(_, bytes)| control::decode(bytes).map_or("malformed", |message| message.name()))
        .collect()
}

/// HELLO from `socket`; the relay's CHALLENGE MAC for its address.
fn challenge(socket: &UdpSocket, relay: SocketAddrV6, nonce: u64) -> Mac {
    let hello = Control::Hello(control::Hello { nonce }).to_vec().unwrap();
    socket.send_to(&hello, relay).unwrap();
    for (_, bytes) in drain(socket, Duration::from_millis(500)) {
        if let Ok(Control::Challenge(control::Challenge {
            nonce: echoed, mac, ..
        })) = control::decode(&bytes)
            && echoed == nonce
        {
            return mac;
        }
    }
    panic!("no CHALLENGE for nonce {nonce:x}");
}

#[test]
fn a_rebound_client_keeps_its_joins_only_after_proving_its_new_address() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let relay_service = relay_on(&world, "r1");
    let relay = SocketAddrV6::new(world.host("r1").addr(), relay_service.port(), 0, 0);
    let group = addr::group_addr(b"rebinding", &Profile::Sixcast, Scope::Global).unwrap();
    // The client's socket before (old) and after (new) its NAT rebinding, and an attacker's.
    let (old, new) = world
        .host("i1")
        .run(|| {
            (
                UdpSocket::bind("[::]:0").unwrap(),
                UdpSocket::bind("[::]:0").unwrap(),
            )
        })
        .unwrap();
    let (nonce, fresh_nonce) = (0x0101_0101_0101_0101, 0x0202_0202_0202_0202);
    let mac = challenge(&old, relay, nonce);
    let join = Control::Join(control::Join {
        nonce,
        mac,
        groups: vec![group],
    });
    old.send_to(&join.to_vec().unwrap(), relay).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = keep_sending(
        &world,
        "c1",
        "rebinding",
        Arc::clone(&stop),
        Duration::from_secs(30),
    );
    let heard = names(&drain(&old, Duration::from_millis(600)));
    assert_eq!(heard.first(), Some(&"keepalive"), "JOIN acknowledged");
    assert!(heard.contains(&"data"), "{heard:?}");

    // The NAT now maps the client to another port: what it sends comes from `new`. Before
    // proving that address, nothing it sends draws anything there but a CHALLENGE.
    let keepalive = Control::Keepalive(control::Keepalive { nonce })
        .to_vec()
        .unwrap();
    new.send_to(&keepalive, relay).unwrap();
    new.send_to(&join.to_vec().unwrap(), relay).unwrap();
    let fresh_mac = challenge(&new, relay, fresh_nonce);
    let forged = [
        // The right new MAC with made-up tunnel credentials (someone else's rebinding).
        (fresh_nonce, fresh_mac, nonce, [0x5c; control::MAC_LEN]),
        // The tunnel's credentials with a new address that was never challenged.
        (fresh_nonce ^ 1, fresh_mac, nonce, mac),
    ];
    for (fresh_nonce, fresh_mac, old_nonce, old_mac) in forged {
        let rebind = Control::Rebind(control::Rebind {
            nonce: fresh_nonce,
            mac: fresh_mac,
            old_nonce,
            old_mac,
        });
        new.send_to(&rebind.to_vec().unwrap(), relay).unwrap();
    }
    let before = drain(&new, Duration::from_millis(500));
    assert!(before.is_empty(), "{:?}", names(&before));
    assert_eq!(relay_service.stats().rebinds, 0);
    assert_eq!(relay_service.stats().tunnels, 1);

    // The real REBIND: the relay moves the tunnel, and the joined group flows to the new port
    // without a new JOIN.
    let rebind = Control::Rebind(control::Rebind {
        nonce: fresh_nonce,
        mac: fresh_mac,
        old_nonce: nonce,
        old_mac: mac,
    });
    new.send_to(&rebind.to_vec().unwrap(), relay).unwrap();
    let after = drain(&new, Duration::from_millis(600));
    let heard = names(&after);
    assert_eq!(heard.first(), Some(&"keepalive"), "{heard:?}");
    assert!(heard.contains(&"data"), "the joins moved along: {heard:?}");
    let _ = drain(&old, Duration::from_millis(100));
    let left_behind = drain(&old, Duration::from_millis(300));
    assert!(left_behind.is_empty(), "{:?}", names(&left_behind));
    stop.store(true, Ordering::Release);
    sender.join().unwrap();
    let stats = relay_service.stats();
    assert_eq!((stats.rebinds, stats.tunnels), (1, 1), "{stats:?}");
    assert!(
        stats.refused >= 3,
        "the JOIN and both forged REBINDs: {stats:?}"
    );
}

#[test]
fn a_context_behind_a_rebinding_nat_keeps_its_relay() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    let relays = [relay_on(&world, "r1"), relay_on(&world, "r2")];
    let stop = Arc::new(AtomicBool::new(false));
    let (tunnel_tx, tunnel_rx) = std::sync::mpsc::channel();
    let island = world.host("i1").spawn(move || {
        let mut config = config();
        config.stratum0 = Some(s0);
        let context = Context::new(config).unwrap();
        let channel = context.channel("behind-nat").unwrap();
        channel.join().unwrap();
        let deadline = Instant::now() + WAIT;
        let reach = loop {
            let reach = context.reachability().unwrap();
            if reach.relay.is_some() {
                break reach;
            }
            assert!(Instant::now() < deadline, "no relay: {reach:?}");
            std::thread::sleep(Duration::from_millis(20));
        };
        // The link socket as the core sees it: what the NAT will remap.
        let observed = reach
            .probe
            .as_ref()
            .and_then(|probe| probe.observed)
            .unwrap();
        tunnel_tx.send((reach.relay.unwrap(), observed)).unwrap();
        let mut arrivals = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if channel.recv_timeout(Duration::from_millis(100)).is_ok() {
                arrivals.push(Instant::now());
            }
        }
        (arrivals, context.reachability().unwrap())
    });
    let sender = keep_sending(
        &world,
        "c1",
        "behind-nat",
        Arc::clone(&stop),
        Duration::from_secs(30),
    );
    let (relay, observed) = tunnel_rx.recv_timeout(WAIT).unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let rules = nat_rebinding_rules("sixcast_rebinding", observed, relay.port(), 40_404);
    install_nft(world.host("r"), &rules);
    let rebound_at = Instant::now();
    let (arrivals, reach) = island.join().unwrap();
    stop.store(true, Ordering::Release);
    sender.join().unwrap();
    // Datagrams in flight at the moment of the change may still arrive just after it.
    let resumed = arrivals
        .iter()
        .find(|at| **at > rebound_at + Duration::from_millis(300))
        .map(|at| at.duration_since(rebound_at))
        .expect("traffic resumed after the rebinding");
    eprintln!("NAT rebinding: traffic resumed {resumed:?} after the port changed");
    assert_eq!(
        reach.relay,
        Some(relay),
        "same relay, no failover: {reach:?}"
    );
    let rebinds: u64 = relays.iter().map(|relay| relay.stats().rebinds).sum();
    assert_eq!(rebinds, 1, "{:?}", relays.each_ref().map(Relay::stats));
    assert!(
        resumed < Duration::from_secs(3),
        "within the silence limit: {resumed:?}"
    );
}

#[test]
fn a_node_that_only_sends_keeps_its_tunnel_quietly() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    let relays = [relay_on(&world, "r1"), relay_on(&world, "r2")];
    // Nothing comes down this tunnel but keepalive answers, while the node sends all the time.
    let island = world.host("i1").spawn(move || {
        let mut config = config();
        config.stratum0 = Some(s0);
        let context = Context::new(config).unwrap();
        let channel = context.channel("upload-only").unwrap();
        // Joined, so that the relay keeps state for it (and takes its datagrams).
        channel.join().unwrap();
        let deadline = Instant::now() + WAIT;
        while context.reachability().unwrap().relay.is_none() {
            assert!(Instant::now() < deadline, "no relay");
            std::thread::sleep(Duration::from_millis(20));
        }
        let relay = context.reachability().unwrap().relay;
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            channel.send(b"reading").unwrap();
            channel.flush().unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
        (relay, context.reachability().unwrap())
    });
    let (relay, reach) = island.join().unwrap();
    assert_eq!(reach.relay, relay, "no failover: {reach:?}");
    let stats = relays.each_ref().map(Relay::stats);
    let challenges: u64 = stats.iter().map(|stats| stats.challenges).sum();
    assert_eq!(
        challenges, 1,
        "one handshake, no rebinding attempts: {stats:?}"
    );
    let up: u64 = stats.iter().map(|stats| stats.datagrams_up).sum();
    assert!(up >= 50, "{stats:?}");
}
