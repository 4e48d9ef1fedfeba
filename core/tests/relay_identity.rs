//! Relay identities with real packets: a node that pinned relay keys tunnels only through a
//! relay that signs its challenge with one of them, even when a rogue relay on the core looks
//! better; with only rogue relays it gets no tunnel and counts the refusals; a node that pinned
//! nothing keeps working with any relay; a pinned tunnel survives a NAT rebinding; and a node
//! that trusts a voucher issuer takes the relays it vouched for, and no expired or foreign
//! voucher.

mod harness;

use std::{
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use harness::{
    World, collect, config, install_nft, keep_sending, nat_rebinding_rules, relay_with, start_line,
    stratum0_on, world,
};
use sixcast::{
    Config, Context, Reachability, Scope,
    crypto::{PublicKey, SigningKey, Token},
    discovery,
    relay::{Relay, RelayConfig},
    wire::control::{self, Control},
};

const WAIT: Duration = Duration::from_secs(10);

fn genuine_key() -> SigningKey {
    SigningKey::from_seed([0x11; 32])
}

fn rogue_key() -> SigningKey {
    SigningKey::from_seed([0x22; 32])
}

fn island_config(stratum0: SocketAddrV6, relay_keys: Vec<PublicKey>) -> Config {
    let mut config = config();
    config.stratum0 = Some(stratum0);
    config.relay_keys = relay_keys;
    config
}

fn relay_at(world: &World, host: &str, relay: &Relay) -> SocketAddrV6 {
    SocketAddrV6::new(world.host(host).addr(), relay.port(), 0, 0)
}

fn with_identity(key: Option<SigningKey>) -> impl FnOnce(&mut RelayConfig) + Send {
    move |relay: &mut RelayConfig| relay.identity = key
}

/// Polls the context's reachability until `done` holds or `within` passes; returns the last.
fn wait_until(
    context: &Context,
    within: Duration,
    done: impl Fn(&Reachability) -> bool,
) -> Reachability {
    let deadline = Instant::now() + within;
    loop {
        let reach = context.reachability().unwrap();
        if done(&reach) || Instant::now() >= deadline {
            return reach;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A client of its own at `relay` (HELLO, CHALLENGE, JOIN from a socket of the current host):
/// raises the relay's load, so that its offers rank below an idle relay's.
fn occupy(relay: SocketAddrV6) -> UdpSocket {
    let socket = UdpSocket::bind("[::]:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let nonce = 0x0123_4567_89ab_cdef;
    socket
        .send_to(
            &Control::Hello(control::Hello { nonce }).to_vec().unwrap(),
            relay,
        )
        .unwrap();
    let mut buffer = [0; 256];
    let len = socket.recv(&mut buffer).unwrap();
    let Ok(Control::Challenge(control::Challenge { mac, .. })) = control::decode(&buffer[..len])
    else {
        panic!("no challenge from {relay}");
    };
    let join = Control::Join(control::Join {
        nonce,
        mac,
        groups: vec![Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5ca, 0xfe)],
    });
    socket.send_to(&join.to_vec().unwrap(), relay).unwrap();
    let len = socket.recv(&mut buffer).unwrap();
    assert!(matches!(
        control::decode(&buffer[..len]),
        Ok(Control::Keepalive(_))
    ));
    socket
}

/// An island node on `host` that joins `channel`, waits for a tunnel, then (after `start`)
/// collects `count` messages; returns them with how long the tunnel took and the reachability.
fn island_node(
    world: &World,
    (host, channel): (&str, &'static str),
    config: Config,
    start: Arc<std::sync::Barrier>,
    count: usize,
) -> JoinHandle<(Vec<Vec<u8>>, Duration, Reachability)> {
    world.host(host).spawn(move || {
        let context = Context::new(config).unwrap();
        let channel = context.channel(channel).unwrap();
        let joined_at = Instant::now();
        channel.join().unwrap();
        let reach = wait_until(&context, WAIT, |reach| reach.relay.is_some());
        let tunnel_after = joined_at.elapsed();
        start.wait();
        let received = collect(&channel, count, WAIT);
        let payloads = received
            .into_iter()
            .map(|message| message.payload)
            .collect();
        assert!(reach.relay.is_some(), "no tunnel: {reach:?}");
        (payloads, tunnel_after, context.reachability().unwrap())
    })
}

#[test]
fn a_pinned_node_tunnels_only_through_the_genuine_relay_even_when_a_rogue_looks_better() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    // The rogue starts first and stays idle; the genuine relay has a client already, so its
    // load ranks it second among offers that arrive within the same millisecond.
    let rogue = relay_with(&world, "r1", with_identity(Some(rogue_key())));
    let genuine = relay_with(&world, "r2", |relay| {
        relay.identity = Some(genuine_key());
        relay.max_tunnels = 3;
    });
    let (rogue_at, genuine_at) = (
        relay_at(&world, "r1", &rogue),
        relay_at(&world, "r2", &genuine),
    );
    let _occupant = world.host("c2").run(|| occupy(genuine_at)).unwrap();
    let start = start_line(3);
    // A channel each, so that neither node is served by the other as the segment's gateway:
    // each must open a tunnel of its own.
    let pinned = island_node(
        &world,
        ("i1", "pinned"),
        island_config(s0, vec![genuine_key().public_key()]),
        Arc::clone(&start),
        3,
    );
    let unpinned = island_node(
        &world,
        ("i2", "unpinned"),
        island_config(s0, Vec::new()),
        Arc::clone(&start),
        3,
    );
    world
        .host("c1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channels = ["pinned", "unpinned"].map(|name| context.channel(name).unwrap());
            start.wait();
            for text in ["one", "two", "three"] {
                for channel in &channels {
                    channel.send(text.as_bytes()).unwrap();
                    channel.flush().unwrap();
                }
            }
        })
        .join()
        .unwrap();
    let expected: Vec<Vec<u8>> = ["one", "two", "three"]
        .map(|t| t.as_bytes().to_vec())
        .into();
    let (received, pinned_after, reach) = pinned.join().unwrap();
    assert_eq!(reach.relay, Some(genuine_at), "{reach:?}");
    assert_eq!(received, expected, "{reach:?}");
    let rogue_first = reach.offers.first().map(|offer| offer.address) == Some(rogue_at);
    // Refused only if tried, and tried only if it ranked first.
    assert_eq!(reach.rejected_relays > 0, rogue_first, "{reach:?}");
    let (unpinned_received, unpinned_after, unpinned_reach) = unpinned.join().unwrap();
    assert_eq!(unpinned_received, expected, "{unpinned_reach:?}");
    assert_eq!(unpinned_reach.rejected_relays, 0);
    eprintln!(
        "join to tunnel: pinned {pinned_after:?} via {:?} (rogue ranked first: {rogue_first}, \
         refused {}), unpinned {unpinned_after:?} via {:?}; offers {:?}",
        reach.relay, reach.rejected_relays, unpinned_reach.relay, reach.offers
    );
    let (rogue_stats, genuine_stats) = (rogue.stats(), genuine.stats());
    assert!(genuine_stats.challenges >= 2, "{genuine_stats:?}");
    assert!(
        rogue_stats.datagrams_down <= 3,
        "only the unpinned node's: {rogue_stats:?}"
    );
}

#[test]
fn with_only_rogue_relays_a_pinned_node_gets_no_tunnel_and_an_unpinned_one_still_does() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    // One rogue has no identity (it ignores SIGNED_HELLO), one signs with an unpinned key.
    let silent = relay_with(&world, "r1", with_identity(None));
    let impostor = relay_with(&world, "r2", with_identity(Some(rogue_key())));
    let pinned = world.host("i1").spawn(move || {
        let context = Context::new(island_config(s0, vec![genuine_key().public_key()])).unwrap();
        let channel = context.channel("rogue-only").unwrap();
        channel.join().unwrap();
        // Long enough for several attempts; the tunnel must never open.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let reach = context.reachability().unwrap();
            assert_eq!(reach.relay, None, "tunnel through a rogue: {reach:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        context.reachability().unwrap()
    });
    let unpinned = world.host("i2").spawn(move || {
        let context = Context::new(island_config(s0, Vec::new())).unwrap();
        let channel = context.channel("rogue-only").unwrap();
        channel.join().unwrap();
        let reach = wait_until(&context, WAIT, |reach| reach.relay.is_some());
        assert!(reach.relay.is_some(), "{reach:?}");
        // Any message from the core proves the tunnel carries traffic.
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if channel.recv_timeout(Duration::from_millis(100)).is_ok() {
                return reach;
            }
        }
        panic!("nothing came through the relay: {reach:?}");
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sender = keep_sending(
        &world,
        "c1",
        "rogue-only",
        Arc::clone(&stop),
        Duration::from_secs(30),
    );
    let reach = pinned.join().unwrap();
    let unpinned_reach = unpinned.join().unwrap();
    stop.store(true, Ordering::Release);
    sender.join().unwrap();
    assert!(reach.rejected_relays >= 1, "{reach:?}");
    let error = reach.last_error.clone().unwrap_or_default();
    assert!(
        error.contains("refused") || error.contains("handshake"),
        "{reach:?}"
    );
    assert_eq!(unpinned_reach.rejected_relays, 0);
    let (silent_stats, impostor_stats) = (silent.stats(), impostor.stats());
    assert!(
        silent_stats.rejected >= 1,
        "the relay without identity dropped the signed hello: {silent_stats:?}"
    );
    assert!(impostor_stats.challenges >= 1, "{impostor_stats:?}");
    assert!(
        silent_stats.offers >= 2 && impostor_stats.offers >= 2,
        "both offered to both"
    );
    eprintln!(
        "rogues only: pinned node refused {} answers in 5 s ({error}); unpinned node via {:?}",
        reach.rejected_relays, unpinned_reach.relay
    );
}

#[test]
fn a_pinned_tunnel_follows_a_nat_rebinding_with_a_signed_handshake() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    let relays = [
        relay_with(&world, "r1", with_identity(Some(genuine_key()))),
        relay_with(&world, "r2", with_identity(Some(rogue_key()))),
    ];
    let genuine_at = relay_at(&world, "r1", &relays[0]);
    let (tunnel_tx, tunnel_rx) = std::sync::mpsc::channel();
    let island = world.host("i1").spawn(move || {
        let context = Context::new(island_config(s0, vec![genuine_key().public_key()])).unwrap();
        let channel = context.channel("pinned-nat").unwrap();
        channel.join().unwrap();
        let reach = wait_until(&context, WAIT, |reach| reach.relay.is_some());
        let observed = reach.probe.as_ref().and_then(|probe| probe.observed);
        tunnel_tx
            .send((reach.relay, observed, reach.rejected_relays))
            .unwrap();
        let mut arrivals = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(8);
        while Instant::now() < deadline {
            if channel.recv_timeout(Duration::from_millis(100)).is_ok() {
                arrivals.push(Instant::now());
            }
        }
        (arrivals, context.reachability().unwrap())
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sender = keep_sending(
        &world,
        "c1",
        "pinned-nat",
        Arc::clone(&stop),
        Duration::from_secs(30),
    );
    let (relay, observed, rejected_before) = tunnel_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(relay, Some(genuine_at));
    std::thread::sleep(Duration::from_secs(1));
    let rules = nat_rebinding_rules(
        "sixcast_pinned_rebinding",
        observed.unwrap(),
        genuine_at.port(),
        40_405,
    );
    install_nft(world.host("r"), &rules);
    let rebound_at = Instant::now();
    let (arrivals, reach) = island.join().unwrap();
    stop.store(true, Ordering::Release);
    sender.join().unwrap();
    let resumed = arrivals
        .iter()
        .find(|at| **at > rebound_at + Duration::from_millis(300))
        .map(|at| at.duration_since(rebound_at))
        .expect("traffic resumed after the rebinding");
    eprintln!("pinned NAT rebinding: traffic resumed {resumed:?} after the port changed");
    assert_eq!(reach.relay, Some(genuine_at), "no failover: {reach:?}");
    assert_eq!(
        reach.rejected_relays, rejected_before,
        "the rebinding challenge was accepted: {reach:?}"
    );
    assert_eq!(relays[0].stats().rebinds, 1, "{:?}", relays[0].stats());
    assert!(resumed < Duration::from_secs(3), "{resumed:?}");
}

fn issuer_key() -> SigningKey {
    SigningKey::from_seed([0x33; 32])
}

fn foreign_issuer_key() -> SigningKey {
    SigningKey::from_seed([0x44; 32])
}

/// A voucher of `issuer` for `relay` on the relay group, valid for `valid` seconds from now
/// (negative: expired that long ago).
fn voucher(issuer: &SigningKey, relay: &SigningKey, valid: i64) -> Token {
    let now = SystemTime::now();
    let not_after = if valid >= 0 {
        now + Duration::from_secs(valid.unsigned_abs())
    } else {
        now - Duration::from_secs(valid.unsigned_abs())
    };
    let group = discovery::relay_group(Scope::Global);
    Token::issue(issuer, relay.public_key(), group, not_after)
}

fn vouched(identity: SigningKey, voucher: Token) -> impl FnOnce(&mut RelayConfig) + Send {
    move |relay: &mut RelayConfig| {
        relay.identity = Some(identity);
        relay.voucher = Some(voucher);
    }
}

fn issuer_config(stratum0: SocketAddrV6) -> Config {
    let mut config = island_config(stratum0, Vec::new());
    config.relay_issuers = vec![issuer_key().public_key()];
    config
}

#[test]
fn a_node_trusting_an_issuer_takes_the_relay_it_vouched_for_over_a_foreign_vouched_rogue() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    // The rogue presents a voucher too, of an issuer the node does not trust; it is idle.
    let rogue_voucher = voucher(&foreign_issuer_key(), &rogue_key(), 3600);
    let rogue = relay_with(&world, "r1", vouched(rogue_key(), rogue_voucher));
    let genuine_voucher = voucher(&issuer_key(), &genuine_key(), 3600);
    let genuine = relay_with(&world, "r2", move |relay| {
        vouched(genuine_key(), genuine_voucher)(relay);
        relay.max_tunnels = 3;
    });
    let (rogue_at, genuine_at) = (
        relay_at(&world, "r1", &rogue),
        relay_at(&world, "r2", &genuine),
    );
    let _occupant = world.host("c2").run(|| occupy(genuine_at)).unwrap();
    let start = start_line(2);
    let node = island_node(
        &world,
        ("i1", "pinned"),
        issuer_config(s0),
        Arc::clone(&start),
        2,
    );
    world
        .host("c1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("pinned").unwrap();
            start.wait();
            for text in ["vouched", "for"] {
                channel.send(text.as_bytes()).unwrap();
                channel.flush().unwrap();
            }
        })
        .join()
        .unwrap();
    let (received, after, reach) = node.join().unwrap();
    assert_eq!(reach.relay, Some(genuine_at), "{reach:?}");
    assert_eq!(
        received,
        [b"vouched".to_vec(), b"for".to_vec()],
        "{reach:?}"
    );
    let rogue_first = reach.offers.first().map(|offer| offer.address) == Some(rogue_at);
    assert_eq!(reach.rejected_relays > 0, rogue_first, "{reach:?}");
    eprintln!(
        "vouched: join to tunnel {after:?} (rogue ranked first: {rogue_first}, refused {})",
        reach.rejected_relays
    );
}

#[test]
fn expired_and_foreign_vouchers_open_no_tunnel() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    let expired = voucher(&issuer_key(), &genuine_key(), -10);
    let expired_relay = relay_with(&world, "r1", vouched(genuine_key(), expired));
    let foreign = voucher(&foreign_issuer_key(), &rogue_key(), 3600);
    let foreign_relay = relay_with(&world, "r2", vouched(rogue_key(), foreign));
    let reach = world
        .host("i1")
        .spawn(move || {
            let context = Context::new(issuer_config(s0)).unwrap();
            let channel = context.channel("vouchers").unwrap();
            channel.join().unwrap();
            let deadline = Instant::now() + Duration::from_secs(4);
            while Instant::now() < deadline {
                let reach = context.reachability().unwrap();
                assert_eq!(
                    reach.relay, None,
                    "tunnel without a valid voucher: {reach:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            context.reachability().unwrap()
        })
        .join()
        .unwrap();
    // Both answered with signed, vouched challenges, and both were refused.
    assert!(reach.rejected_relays >= 2, "{reach:?}");
    assert!(expired_relay.stats().challenges >= 1);
    assert!(foreign_relay.stats().challenges >= 1);
    eprintln!(
        "expired and foreign vouchers: {} refusals in 4 s",
        reach.rejected_relays
    );
}

#[test]
fn signed_hellos_spoofed_in_a_victims_name_are_not_amplified() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    // The largest answer: a vouched relay's SIGNED_CHALLENGE.
    let relay = relay_with(
        &world,
        "r1",
        vouched(genuine_key(), voucher(&issuer_key(), &genuine_key(), 3600)),
    );
    let relay_at = relay_at(&world, "r1", &relay);
    let victim = SocketAddrV6::new(world.host("i2").addr(), 40_001, 0, 0);
    let inbox = world
        .host("i2")
        .run(|| UdpSocket::bind(victim).unwrap())
        .unwrap();
    inbox
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let rounds = 50u64;
    let sent: usize = world
        .host("i1")
        .run(|| {
            let attacker = harness::spoofing_socket(victim);
            let mut sent = 0;
            for nonce in 0..rounds {
                let hello = Control::SignedHello(control::SignedHello { nonce })
                    .to_vec()
                    .unwrap();
                sent += attacker.send_to(&hello, relay_at).unwrap();
                // Padded only as far as a plain HELLO: refused as too short for its answer.
                let short = &hello[..control::UNVERIFIED_MIN_LEN];
                sent += attacker.send_to(short, relay_at).unwrap();
            }
            sent
        })
        .unwrap();
    let (mut received, mut challenges) = (0, 0);
    let mut buffer = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        if let Ok(len) = inbox.recv(&mut buffer) {
            received += len;
            let answer = control::decode(&buffer[..len]);
            assert!(
                matches!(
                    answer,
                    Ok(Control::SignedChallenge(control::SignedChallenge {
                        voucher: Some(_),
                        ..
                    }))
                ),
                "{answer:?}"
            );
            challenges += 1;
        }
    }
    let hello_len = control::SIGNED_HELLO_MIN_LEN;
    assert_eq!(
        challenges, rounds,
        "one answer per full-length SIGNED_HELLO"
    );
    assert_eq!(
        received,
        challenges as usize * control::VOUCHED_CHALLENGE_LEN
    );
    assert!(received <= sent, "amplified: {received} bytes for {sent}");
    assert_eq!(relay.stats().tunnels, 0);
    assert_eq!(relay.stats().rejected, rounds, "the short ones");
    eprintln!(
        "spoofed SIGNED_HELLO: {hello_len} bytes each, answered with {} bytes (factor {:.2}); \
         overall {received} bytes reached the victim for {sent} sent (factor {:.2})",
        control::VOUCHED_CHALLENGE_LEN,
        control::VOUCHED_CHALLENGE_LEN as f64 / hello_len as f64,
        received as f64 / sent as f64
    );
}

#[test]
fn a_relay_signs_at_most_its_signing_budget_and_still_serves_pinned_nodes() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let budget = 20;
    let relay = relay_with(&world, "r1", |relay| {
        relay.identity = Some(genuine_key());
        relay.signed_challenges_per_sec = budget;
    });
    let relay_at = relay_at(&world, "r1", &relay);
    let flood = 500u64;
    let answered = world
        .host("i1")
        .run(|| {
            let attacker =
                UdpSocket::bind(SocketAddrV6::new(world.host("i1").addr(), 0, 0, 0)).unwrap();
            attacker
                .set_read_timeout(Some(Duration::from_millis(300)))
                .unwrap();
            for nonce in 0..flood {
                let hello = Control::SignedHello(control::SignedHello { nonce })
                    .to_vec()
                    .unwrap();
                attacker.send_to(&hello, relay_at).unwrap();
            }
            let mut buffer = [0u8; 2048];
            let mut answered = 0u64;
            while attacker.recv(&mut buffer).is_ok() {
                answered += 1;
            }
            answered
        })
        .unwrap();
    let stats = relay.stats();
    eprintln!(
        "{flood} SIGNED_HELLOs at once against a budget of {budget}/s: {answered} answered, {} throttled",
        stats.throttled_control
    );
    assert!(answered >= budget, "the burst is answered: {answered}");
    assert!(
        answered <= budget + 5,
        "{answered} signatures for a budget of {budget}/s"
    );
    assert_eq!(answered + stats.throttled_control, flood);

    // A second later the budget has refilled, and a pinned node opens its tunnel.
    std::thread::sleep(Duration::from_secs(1));
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    let reach = world
        .host("i2")
        .run(|| {
            let context =
                Context::new(island_config(s0, vec![genuine_key().public_key()])).unwrap();
            let channel = context.channel("pinned").unwrap();
            channel.join().unwrap();
            wait_until(&context, WAIT, |reach| reach.relay.is_some())
        })
        .unwrap();
    assert_eq!(reach.relay, Some(relay_at), "{reach:?}");
}
