//! Abuse of the core services with real packets: a tunnel client flooding its relay, and an
//! attacker that sends every kind of unverified request to Stratum 0 and the relays in a
//! victim's name (spoofed source address), to measure the amplification the victim suffers.

mod harness;

use std::{
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use harness::{
    World, install_nft, relay_on, relay_with, spoofing_socket, start_line, stratum0_on, world,
};
use sixcast::{
    ErrorKind,
    crypto::{SigningKey, Token},
    relay::{Relay, RelayConfig},
    wire::control::{self, Control},
};

/// The group the raw tunnel clients join and send to.
const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5c, 0x77);

fn receive(socket: &UdpSocket) -> Option<Vec<u8>> {
    let mut buffer = vec![0; 65_536];
    let len = socket.recv(&mut buffer).ok()?;
    buffer.truncate(len);
    Some(buffer)
}

/// Opens a tunnel to `relay` for `GROUP` the way a node does (HELLO, CHALLENGE, JOIN, and the
/// KEEPALIVE that confirms it), from a socket of the current host.
fn open_tunnel(relay: SocketAddrV6, nonce: u64) -> UdpSocket {
    open_tunnel_from(UdpSocket::bind("[::]:0").unwrap(), relay, nonce)
}

/// [`open_tunnel`] from `socket`.
fn open_tunnel_from(socket: UdpSocket, relay: SocketAddrV6, nonce: u64) -> UdpSocket {
    try_open_tunnel(socket, relay, nonce).expect("the KEEPALIVE that opens the tunnel")
}

/// [`open_tunnel_from`], or None when the relay answers the JOIN with nothing (refused).
fn try_open_tunnel(socket: UdpSocket, relay: SocketAddrV6, nonce: u64) -> Option<UdpSocket> {
    socket.connect(relay).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let hello = Control::Hello(control::Hello { nonce }).to_vec().unwrap();
    // A HELLO or its CHALLENGE may be lost, as any datagram (once, here, while the whole suite
    // loaded both cores): a node asks again, and so does this.
    let challenge = (0..3)
        .find_map(|_| {
            socket.send(&hello).unwrap();
            receive(&socket)
        })
        .expect("a CHALLENGE");
    let Ok(Control::Challenge(control::Challenge { mac, .. })) = control::decode(&challenge) else {
        panic!("not a CHALLENGE: {challenge:02x?}");
    };
    let join = Control::Join(control::Join {
        nonce,
        mac,
        groups: vec![GROUP],
    });
    socket.send(&join.to_vec().unwrap()).unwrap();
    let keepalive = receive(&socket)?;
    assert!(
        matches!(control::decode(&keepalive), Ok(Control::Keepalive(_))),
        "not a KEEPALIVE: {keepalive:02x?}"
    );
    Some(socket)
}

/// A DATA message for `GROUP` whose datagram starts with `tag` and a sequence number.
fn data(tag: u8, seq: u32) -> Vec<u8> {
    let mut datagram = vec![0x36, 0x63, tag];
    datagram.extend_from_slice(&seq.to_be_bytes());
    datagram.resize(200, 0);
    Control::Data(control::Data {
        group: GROUP,
        datagram: &datagram,
    })
    .to_vec()
    .unwrap()
}

#[test]
fn a_flooding_tunnel_client_is_capped_while_another_client_still_gets_through() {
    const RATE: u64 = 100;
    const FAIR: u32 = 40;
    const FLOOD: u32 = 5_000;
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let relay = relay_with(&world, "r1", |config| {
        config.client_datagrams_per_sec = RATE;
        config.client_control_per_sec = 20;
    });
    let relay_address = SocketAddrV6::new(world.host("r1").addr(), relay.port(), 0, 0);
    // What the relay multicasts on the core, counted by tag on c1.
    let c1_ifindex = world.host("c1").ifindex();
    let listener = world
        .host("c1")
        .run(|| {
            let socket = UdpSocket::bind(SocketAddrV6::new(
                Ipv6Addr::UNSPECIFIED,
                sixcast::addr::DEFAULT_PORT,
                0,
                0,
            ))
            .unwrap();
            socket.join_multicast_v6(&GROUP, c1_ifindex).unwrap();
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            socket
        })
        .unwrap();
    let start = start_line(2);
    let flooder = {
        let start = Arc::clone(&start);
        world.host("i1").spawn(move || {
            let tunnel = open_tunnel(relay_address, 1);
            start.wait();
            let began = Instant::now();
            for seq in 0..FLOOD {
                tunnel.send(&data(b'F', seq)).unwrap();
            }
            // Control messages beyond the control rate draw no answer.
            for nonce in 0..100 {
                tunnel
                    .send(
                        &Control::Keepalive(control::Keepalive { nonce })
                            .to_vec()
                            .unwrap(),
                    )
                    .unwrap();
            }
            began.elapsed()
        })
    };
    let fair = {
        let start = Arc::clone(&start);
        world.host("i2").spawn(move || {
            let tunnel = open_tunnel(relay_address, 2);
            start.wait();
            for seq in 0..FAIR {
                tunnel.send(&data(b'N', seq)).unwrap();
                std::thread::sleep(Duration::from_millis(25));
            }
        })
    };
    let flood_time = flooder.join().unwrap();
    fair.join().unwrap();
    let (mut flooded, mut fair_seen) = (0u64, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let Some(datagram) = receive(&listener) else {
            continue;
        };
        match datagram.get(2) {
            Some(b'F') => flooded += 1,
            Some(b'N') => fair_seen.push(u32::from_be_bytes(datagram[3..7].try_into().unwrap())),
            _ => {}
        }
    }
    let stats = relay.stats();
    fair_seen.sort_unstable();
    assert_eq!(
        fair_seen,
        (0..FAIR).collect::<Vec<_>>(),
        "the client within its rate lost datagrams: {stats:?}"
    );
    // One second's burst, plus the rate for as long as the flood lasted and for up to a second
    // more in which the relay may still be working through its queue.
    let allowed = 2 * RATE + (flood_time.as_secs_f64() * RATE as f64).ceil() as u64;
    assert!(
        flooded <= allowed,
        "{flooded} flooded datagrams passed in {flood_time:?}, at most {allowed} may: {stats:?}"
    );
    assert!(flooded > 0, "the flooder's first second passes: {stats:?}");
    assert_eq!(
        stats.throttled + stats.datagrams_up,
        u64::from(FLOOD + FAIR),
        "every datagram up is passed or throttled: {stats:?}"
    );
    // 20 per second: of the 100 keepalives, the burst and what trickles in while they queue pass.
    assert!(stats.throttled_control >= 60, "{stats:?}");
    eprintln!(
        "rate limit {RATE}/s: flooder sent {FLOOD} in {flood_time:?}, {flooded} reached the core, \
         {} throttled; fair client: {}/{FAIR} reached the core; control: {} throttled",
        stats.throttled,
        fair_seen.len(),
        stats.throttled_control
    );
}

#[test]
fn a_reload_changes_the_limits_of_a_running_relay_and_its_clients() {
    const BURST: u32 = 400;
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let configure = |config: &mut RelayConfig| {
        config.hop_limit = 8;
        config.client_datagrams_per_sec = 50;
        config.max_tunnels = 1;
    };
    let relay = relay_with(&world, "r1", configure);
    let relay_address = SocketAddrV6::new(world.host("r1").addr(), relay.port(), 0, 0);
    // Sends BURST datagrams up `tunnel` and waits (bounded) until the relay has counted them.
    let burst = |tunnel: &UdpSocket, relay: &Relay| {
        let before = relay.stats();
        for seq in 0..BURST {
            tunnel.send(&data(b'R', seq)).unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let now = relay.stats();
            let counted = now.throttled + now.datagrams_up - before.throttled - before.datagrams_up;
            if counted == u64::from(BURST) || Instant::now() > deadline {
                return (
                    now.datagrams_up - before.datagrams_up,
                    now.throttled - before.throttled,
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let tunnel = world
        .host("i1")
        .run(|| open_tunnel(relay_address, 1))
        .unwrap();
    let (passed, throttled) = burst(&tunnel, &relay);
    assert!(
        passed < 100 && throttled > 300,
        "{passed} passed, {throttled} throttled"
    );
    let second = |nonce| {
        world
            .host("i2")
            .run(move || try_open_tunnel(UdpSocket::bind("[::]:0").unwrap(), relay_address, nonce))
            .unwrap()
    };
    assert!(second(2).is_none(), "a second client beyond max_tunnels 1");

    // A voucher without the identity it vouches for: refused, and nothing changes.
    let mut bad = RelayConfig::default();
    configure(&mut bad);
    let issuer = SigningKey::from_seed([7; 32]);
    let not_after = SystemTime::now() + Duration::from_secs(60);
    bad.voucher = Some(Token::issue(&issuer, issuer.public_key(), GROUP, not_after));
    let err = relay.reload(&bad).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    let (passed, _) = burst(&tunnel, &relay);
    assert!(
        passed < 100,
        "the failed reload lifted the rate limit: {passed} passed"
    );

    let mut lifted = RelayConfig::default();
    configure(&mut lifted);
    lifted.client_datagrams_per_sec = 0;
    lifted.max_tunnels = 2;
    lifted.data_port += 1;
    assert_eq!(relay.reload(&lifted).unwrap(), ["data_port"]);
    // The client already served is no longer limited, and a second one has room.
    assert_eq!(burst(&tunnel, &relay), (u64::from(BURST), 0));
    assert!(
        second(3).is_some(),
        "no room for a second client after the reload"
    );
    assert_eq!(relay.stats().tunnels, 2);
}

/// Counts, with nftables in the current host's namespace, every packet that arrives from the
/// core segment. Returns (packets, bytes of IPv6 packets).
struct CoreCounter<'a> {
    host: &'a sixcast_netlab::Host,
}

impl<'a> CoreCounter<'a> {
    const TABLE: &'static str = "inet sixcast_amplification";

    fn install(host: &'a sixcast_netlab::Host) -> Self {
        let script = format!(
            "table {table} {{\n  chain input {{ type filter hook input priority -300; \
             ip6 saddr fd5c:c::/64 counter; }}\n}}\n",
            table = Self::TABLE
        );
        install_nft(host, &script);
        Self { host }
    }

    fn read(&self) -> (u64, u64) {
        let output = self
            .host
            .command("nft")
            .args(["list", "table"])
            .args(Self::TABLE.split(' '))
            .output()
            .expect("nft");
        let text = String::from_utf8_lossy(&output.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        let after = |name: &str| {
            let at = words.iter().position(|word| *word == name).expect(name);
            words[at + 1].parse::<u64>().unwrap()
        };
        (after("packets"), after("bytes"))
    }
}

/// Every kind of request an attacker can send unverified, with nonces from `nonce`, aimed at
/// Stratum 0 or at a relay.
fn unverified_requests(nonce: u64, victim: SocketAddrV6) -> Vec<(bool, Vec<u8>)> {
    let bad_mac = [0x5c; control::MAC_LEN];
    let to_s0 = [
        Control::Probe(control::Probe {
            nonce,
            beacon_nonce: 0,
        }),
        Control::Probe(control::Probe {
            nonce,
            beacon_nonce: nonce + 1,
        }),
        Control::RelayRequest(control::RelayRequest {
            nonce,
            cookie: [0; control::MAC_LEN],
        }),
        Control::RelayRequest(control::RelayRequest {
            nonce,
            cookie: bad_mac,
        }),
    ];
    let to_relay = [
        Control::Hello(control::Hello { nonce }),
        Control::Join(control::Join {
            nonce,
            mac: bad_mac,
            groups: vec![GROUP],
        }),
        Control::Leave(control::Leave {
            nonce,
            mac: bad_mac,
            groups: vec![GROUP],
        }),
        Control::Data(control::Data {
            group: GROUP,
            datagram: &[0x36, 0x63, 1, 1],
        }),
        Control::Keepalive(control::Keepalive { nonce }),
        Control::Teardown(control::Teardown {
            nonce,
            mac: bad_mac,
            old: victim,
        }),
        Control::Rebind(control::Rebind {
            nonce,
            mac: bad_mac,
            old_nonce: nonce + 1,
            old_mac: bad_mac,
        }),
    ];
    let mut requests: Vec<(bool, Vec<u8>)> = to_s0
        .iter()
        .map(|message| (true, message.to_vec().unwrap()))
        .chain(
            to_relay
                .iter()
                .map(|message| (false, message.to_vec().unwrap())),
        )
        .collect();
    // Hostile shapes: an unpadded HELLO and PROBE, junk, and a large datagram.
    let mut short_hello = Control::Hello(control::Hello { nonce }).to_vec().unwrap();
    short_hello.truncate(16);
    let mut short_probe = to_s0[0].to_vec().unwrap();
    short_probe.truncate(24);
    for (to_s0, datagram) in [
        (false, short_hello),
        (true, short_probe),
        (true, vec![0xa5; 100]),
        (false, vec![0xa5; 1200]),
    ] {
        requests.push((to_s0, datagram));
    }
    requests
}

#[test]
fn spoofed_unverified_requests_are_not_amplified_towards_the_victim() {
    const ROUNDS: u64 = 40;
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (stratum0, s0) = stratum0_on(&world, "s0");
    let relays: Vec<(SocketAddrV6, Relay)> = ["r1", "r2"]
        .iter()
        .map(|host| {
            let relay = relay_on(&world, host);
            let address = SocketAddrV6::new(world.host(host).addr(), relay.port(), 0, 0);
            (address, relay)
        })
        .collect();
    let victim_host = world.host("i2");
    let victim = SocketAddrV6::new(victim_host.addr(), 40_000, 0, 0);
    let counter = CoreCounter::install(victim_host);
    let inbox = victim_host
        .run(|| UdpSocket::bind(victim).unwrap())
        .unwrap();
    inbox
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let relay_addresses: Vec<SocketAddrV6> = relays.iter().map(|(address, _)| *address).collect();
    // The attacker on i1 sends in the victim's name, in bursts.
    let (sent_datagrams, sent_bytes) = world
        .host("i1")
        .run(|| {
            let attacker = spoofing_socket(victim);
            let (mut datagrams, mut bytes) = (0u64, 0u64);
            for round in 0..ROUNDS {
                let requests = unverified_requests(round * 16 + 1, victim);
                for (to_s0, datagram) in &requests {
                    let targets = if *to_s0 {
                        vec![s0]
                    } else {
                        relay_addresses.clone()
                    };
                    for target in targets {
                        bytes += attacker.send_to(datagram, target).unwrap() as u64;
                        datagrams += 1;
                    }
                }
                if round % 10 == 9 {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            (datagrams, bytes)
        })
        .unwrap();
    let (mut received_datagrams, mut received_bytes) = (0u64, 0u64);
    let mut kinds = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        if let Some(datagram) = receive(&inbox) {
            received_datagrams += 1;
            received_bytes += datagram.len() as u64;
            let kind = control::decode(&datagram).map_or("malformed", |m| m.name());
            *kinds.entry(kind).or_insert(0u64) += 1;
        }
    }
    let (packets, packet_bytes) = counter.read();
    // IPv6 and UDP headers: 48 bytes per datagram sent.
    let sent_packet_bytes = sent_bytes + 48 * sent_datagrams;
    let factor = received_bytes as f64 / sent_bytes as f64;
    let packet_factor = packet_bytes as f64 / sent_packet_bytes as f64;
    eprintln!(
        "amplification: attacker sent {sent_datagrams} datagrams, {sent_bytes} bytes of UDP \
         payload ({sent_packet_bytes} bytes of IPv6 packets) in the victim's name; the victim \
         received {received_datagrams} datagrams, {received_bytes} bytes of payload ({kinds:?}); \
         nftables counted {packets} packets, {packet_bytes} bytes from the core. Factor \
         {factor:.3} (payload), {packet_factor:.3} (packets)"
    );
    assert!(
        factor <= 1.0 && packet_factor <= 1.0,
        "the victim received more than was sent in its name"
    );
    assert_eq!(
        packets, received_datagrams,
        "everything that reached the victim came to the spoofed port"
    );
    assert!(
        kinds
            .keys()
            .all(|kind| ["probe_reply", "cookie", "challenge"].contains(kind)),
        "only answers to padded requests may reach an unverified address: {kinds:?}"
    );
    assert!(received_datagrams > 0, "the answers were measured");
    assert_eq!(stratum0.stats().solicitations, 0);
    for (_, relay) in &relays {
        let stats = relay.stats();
        assert_eq!((stats.tunnels, stats.offers), (0, 0), "{stats:?}");
    }
}

#[test]
fn keepalives_spoofed_in_a_clients_name_are_answered_at_most_at_its_control_rate() {
    const CONTROL_RATE: u64 = 20;
    const SPOOFED: u64 = 1_000;
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let relay = relay_with(&world, "r1", |config| {
        config.client_control_per_sec = CONTROL_RATE;
    });
    let relay_address = SocketAddrV6::new(world.host("r1").addr(), relay.port(), 0, 0);
    // The victim is a verified client: the relay answers its KEEPALIVEs, and the attacker
    // sends KEEPALIVEs in its name to have those answers reflected at it.
    let victim = SocketAddrV6::new(world.host("i2").addr(), 40_001, 0, 0);
    let tunnel = world
        .host("i2")
        .run(|| open_tunnel_from(UdpSocket::bind(victim).unwrap(), relay_address, 7))
        .unwrap();
    tunnel
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let flood_time = world
        .host("i1")
        .run(|| {
            let attacker = spoofing_socket(victim);
            let began = Instant::now();
            for nonce in 0..SPOOFED {
                let keepalive = Control::Keepalive(control::Keepalive { nonce })
                    .to_vec()
                    .unwrap();
                attacker.send_to(&keepalive, relay_address).unwrap();
            }
            began.elapsed()
        })
        .unwrap();
    let mut answers = 0u64;
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        if let Some(datagram) = receive(&tunnel) {
            assert!(
                matches!(control::decode(&datagram), Ok(Control::Keepalive(_))),
                "{datagram:02x?}"
            );
            answers += 1;
        }
    }
    let stats = relay.stats();
    // The burst, and the refill while the flood was sent and for up to a second of queue.
    let allowed = 2 * CONTROL_RATE + (flood_time.as_secs_f64() * CONTROL_RATE as f64).ceil() as u64;
    assert!(
        answers <= allowed,
        "{answers} answers to {SPOOFED} spoofed keepalives, at most {allowed}: {stats:?}"
    );
    assert!(
        answers > 0,
        "the victim's bucket let its burst through: {stats:?}"
    );
    assert_eq!(stats.throttled_control + answers, SPOOFED, "{stats:?}");
    assert_eq!(stats.tunnels, 1, "the victim keeps its tunnel: {stats:?}");
    eprintln!(
        "spoofed keepalives: {SPOOFED} sent in {flood_time:?} in a verified client's name, \
         {answers} answered (control rate {CONTROL_RATE}/s), {} throttled",
        stats.throttled_control
    );
}
