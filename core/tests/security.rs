//! Sealed and signed channels with real packets: who receives, and what is dropped and why.

mod harness;

use std::{net::SocketAddrV6, sync::Arc, time::Duration};

use harness::{
    World, assert_quiet, collect, config, joined, relay_on, start_line, stratum0_on, world,
};
use sixcast::{
    Context, NodeId,
    crypto::{ChannelKey, DropReason, KeyId, Protection, SigningKey},
    wire,
};
use socket2::{Domain, Protocol, Socket, Type};

const WAIT: Duration = Duration::from_secs(5);
const CHANNEL: &str = "vault";

fn key() -> ChannelKey {
    ChannelKey::from_bytes(KeyId(7), [0x5a; 32])
}

#[test]
fn only_key_holders_that_trust_the_signer_deliver() {
    let Some(world) = world(|| World::lan(4), false) else {
        return;
    };
    let signer = SigningKey::generate().unwrap();
    let start = start_line(4);
    // (host, holds the key, trusts the signer)
    let setups = [
        ("h2", true, true),
        ("h3", false, false),
        ("h4", true, false),
    ];
    let listeners: Vec<_> = setups
        .iter()
        .map(|&(name, with_key, trusting)| {
            let start = Arc::clone(&start);
            let public = signer.public_key();
            world.host(name).spawn(move || {
                let (_context, channel) = joined(config(), CHANNEL);
                if with_key {
                    channel.set_key(&key()).unwrap();
                }
                let stranger = SigningKey::generate().unwrap().public_key();
                channel
                    .trust(if trusting { public } else { stranger })
                    .unwrap();
                start.wait();
                let received = collect(&channel, 21, WAIT);
                assert_quiet(&channel, Duration::from_millis(300));
                (received, channel.stats())
            })
        })
        .collect();
    world
        .host("h1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            channel.set_key(&key()).unwrap();
            channel.sign_with(signer).unwrap();
            start.wait();
            for i in 0..20 {
                channel.send(format!("secret {i}").as_bytes()).unwrap();
            }
            // A large message travels as sealed, signed fragments.
            channel.send(&vec![0xab; 5000]).unwrap();
            channel.flush().unwrap();
        })
        .join()
        .unwrap();
    let results: Vec<_> = listeners.into_iter().map(|l| l.join().unwrap()).collect();
    let (received, stats) = &results[0];
    let payloads: Vec<_> = received.iter().map(|m| m.payload.clone()).collect();
    let mut expected: Vec<_> = (0..20)
        .map(|i| format!("secret {i}").into_bytes())
        .collect();
    expected.push(vec![0xab; 5000]);
    assert!(payloads == expected, "{} messages differ", payloads.len());
    assert_eq!(stats.drops.total(), 0, "{stats:?}");

    let (received, stats) = &results[1];
    assert!(received.is_empty());
    assert_eq!(stats.messages_received, 0);
    // The seal is checked before the signer: a stranger without the key learns nothing more.
    assert_eq!(
        stats.drops.get(DropReason::NoKey),
        stats.datagrams_received,
        "{stats:?}"
    );

    // Datagrams sent together are covered by a signed manifest: the manifest's signer is not
    // trusted, and the datagrams it covers are given up once they waited for another.
    let (received, stats) = &results[2];
    assert!(received.is_empty());
    assert!(
        stats.drops.get(DropReason::UntrustedSigner) >= 1,
        "{stats:?}"
    );
    assert_eq!(
        stats.drops.get(DropReason::UntrustedSigner) + stats.drops.get(DropReason::Unverified),
        stats.datagrams_received,
        "{stats:?}"
    );
    assert!(stats.datagrams_received >= 2, "{stats:?}");
}

#[test]
fn one_signature_covers_a_batch_and_covered_forgeries_are_given_up() {
    const BURST: usize = 3000;
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    let signer = SigningKey::generate().unwrap();
    let public = signer.public_key();
    let start = start_line(3);
    let second_burst = start_line(2);
    let listener = {
        let (start, second_burst) = (Arc::clone(&start), Arc::clone(&second_burst));
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), CHANNEL);
            channel.set_key(&key()).unwrap();
            channel.trust(public).unwrap();
            start.wait();
            let first = collect(&channel, BURST, WAIT);
            // The forgeries wait a second for a manifest, then are given up; traffic goes on.
            second_burst.wait();
            let second = collect(&channel, BURST, WAIT);
            assert_quiet(&channel, Duration::from_millis(300));
            (first, second, channel.stats())
        })
    };
    // An insider with the channel key but an untrusted signing key sends two covered datagrams
    // and their manifest, before the real sender's first burst.
    let insider = {
        let start = Arc::clone(&start);
        let ifindex = world.host("h3").ifindex();
        world.host("h3").spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            let mut protection = Protection::new(channel.group());
            protection.set_key(&key());
            protection.sign_with(SigningKey::generate().unwrap());
            let sender = NodeId(0xbad);
            let mut forged: Vec<_> = (0..2)
                .map(|seq| {
                    wire::pack(sender, seq, 1232, &[b"forged"])
                        .unwrap()
                        .remove(0)
                })
                .collect();
            let numbers = std::sync::atomic::AtomicU64::new(0);
            protection
                .seal_batch(&mut forged, 1232, 1, &numbers)
                .unwrap();
            assert_eq!(forged.len(), 3, "two covered datagrams and their manifest");
            let socket = raw_sender(ifindex);
            let to = SocketAddrV6::new(channel.group(), context.port(), 0, 0).into();
            start.wait();
            for datagram in &forged {
                socket.send_to(datagram, &to).unwrap();
            }
        })
    };
    world
        .host("h1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            channel.set_key(&key()).unwrap();
            channel.sign_with(signer).unwrap();
            let burst = |tag: &str| {
                for i in 0..BURST {
                    channel.send(format!("{tag} {i}").as_bytes()).unwrap();
                }
                channel.flush().unwrap();
            };
            start.wait();
            std::thread::sleep(Duration::from_millis(50));
            burst("first");
            std::thread::sleep(Duration::from_millis(1200));
            second_burst.wait();
            burst("second");
        })
        .join()
        .unwrap();
    insider.join().unwrap();
    let (first, second, stats) = listener.join().unwrap();
    for (received, tag) in [(&first, "first"), (&second, "second")] {
        let expected: Vec<_> = (0..BURST)
            .map(|i| format!("{tag} {i}").into_bytes())
            .collect();
        let payloads: Vec<_> = received.iter().map(|m| m.payload.clone()).collect();
        assert!(
            payloads == expected,
            "{tag}: {} messages: {stats:?}",
            payloads.len()
        );
    }
    assert_eq!(stats.drops.get(DropReason::Unverified), 2, "{stats:?}");
    assert_eq!(stats.drops.get(DropReason::UntrustedSigner), 1, "{stats:?}");
    assert_eq!(stats.drops.total(), 3, "{stats:?}");
}

#[test]
fn chained_manifests_deliver_a_long_stream_whole_and_in_order() {
    // A datagram per message: several chains of manifests, each signed once.
    const COUNT: usize = 3000;
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let reliable = || {
        let mut config = config();
        config.reliable = true;
        config
    };
    let signer = SigningKey::generate().unwrap();
    let public = signer.public_key();
    let start = start_line(2);
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(reliable(), CHANNEL);
            channel.set_key(&key()).unwrap();
            channel.trust(public).unwrap();
            start.wait();
            let received = collect(&channel, COUNT, WAIT);
            (received, channel.stats())
        })
    };
    let message = |i: usize| {
        let mut payload = format!("{i:06} ").into_bytes();
        payload.resize(900, b'x');
        payload
    };
    world
        .host("h1")
        .spawn(move || {
            let context = Context::new(reliable()).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            channel.set_key(&key()).unwrap();
            channel.sign_with(signer).unwrap();
            start.wait();
            std::thread::sleep(Duration::from_millis(50));
            for i in 0..COUNT {
                channel.send(&message(i)).unwrap();
            }
            channel.flush().unwrap();
            // Closing a reliable context waits for the receiver's last repairs.
            context.close();
        })
        .join()
        .unwrap();
    let (received, stats) = listener.join().unwrap();
    let in_order = received
        .iter()
        .enumerate()
        .all(|(i, m)| m.payload == message(i));
    assert!(
        received.len() == COUNT && in_order,
        "{} messages, in order: {in_order}: {stats:?}",
        received.len()
    );
    assert_eq!(stats.drops.total(), 0, "{stats:?}");
}

/// A raw UDP socket sending to a channel's groups on the host's interface: stands for a sender
/// of another implementation, a relay, and an attacker.
fn raw_sender(ifindex: u32) -> Socket {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_multicast_if_v6(ifindex).unwrap();
    socket.set_multicast_hops_v6(8).unwrap();
    socket
}

#[test]
fn replays_forgeries_and_relayed_copies_are_told_apart() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let start = start_line(2);
    let done = start_line(2);
    let listener = {
        let (start, done) = (Arc::clone(&start), Arc::clone(&done));
        world.host("h2").spawn(move || {
            let (context, channel) = joined(config(), CHANNEL);
            channel.set_key(&key()).unwrap();
            start.wait();
            let received = collect(&channel, 4097, WAIT);
            done.wait();
            assert_quiet(&channel, Duration::from_millis(500));
            (received, channel.stats(), context.port(), channel.group())
        })
    };
    let ifindex = world.host("h1").ifindex();
    let sent = world
        .host("h1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            let (group, relayed) = (channel.group(), channel.relayed_group().unwrap());
            let port = context.port();
            let socket = raw_sender(ifindex);
            let to = |group| SocketAddrV6::new(group, port, 0, 0).into();
            let mut protection = Protection::new(group);
            protection.set_key(&key());
            let sender = NodeId(0xfeed);
            let seal = |seq: u64, payload: &[u8]| {
                let plain = wire::pack(sender, seq, 1232, &[payload]).unwrap();
                protection.seal(&plain[0]).unwrap()
            };
            start.wait();
            let first = seal(0, b"first");
            socket.send_to(&first, &to(group)).unwrap();
            // A relay's copy on the twin group: the same bytes, a duplicate.
            socket.send_to(&first, &to(relayed)).unwrap();
            let mut tampered = seal(1, b"tampered");
            *tampered.last_mut().unwrap() ^= 1;
            socket.send_to(&tampered, &to(group)).unwrap();
            let plain = wire::pack(sender, 1, 1232, &[b"plain"]).unwrap();
            socket.send_to(&plain[0], &to(group)).unwrap();
            let mut other_key = Protection::new(group);
            other_key.set_key(&ChannelKey::from_bytes(KeyId(8), [1; 32]));
            socket
                .send_to(&other_key.seal(&plain[0]).unwrap(), &to(group))
                .unwrap();
            // 4096 more messages move the window past seq 0.
            for seq in 1..=4096 {
                socket.send_to(&seal(seq, b"more"), &to(group)).unwrap();
                if seq % 256 == 0 {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            done.wait();
            socket.send_to(&first, &to(group)).unwrap();
            socket.send_to(&first, &to(relayed)).unwrap();
            (group, relayed)
        })
        .join()
        .unwrap();
    let (received, stats, _port, group) = listener.join().unwrap();
    assert_eq!(group, sent.0);
    assert_eq!(received.len(), 4097, "{stats:?}");
    assert_eq!(received[0].payload, b"first");
    assert!(received.iter().all(|m| m.sender == NodeId(0xfeed)));
    let drops = stats.drops;
    let counted = [
        (DropReason::BadTag, 1),
        (DropReason::NotSealed, 1),
        (DropReason::NoKey, 1),
        (DropReason::Replay, 2),
    ];
    for (reason, count) in counted {
        assert_eq!(drops.get(reason), count, "{reason}: {stats:?}");
    }
    assert_eq!(drops.total(), 5, "{stats:?}");
    assert_eq!(stats.duplicates, 1, "the relayed copy: {stats:?}");
    assert_eq!(stats.malformed, 0);
}

/// Deterministic filler bytes for hostile datagrams.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    blake3::Hasher::new()
        .update(&seed.to_be_bytes())
        .finalize_xof()
        .fill(&mut bytes);
    bytes
}

/// A plain MESSAGES datagram whose header announces `count` records but carries `body`.
fn lying_batch(sender: u64, count: u16, body: &[u8]) -> Vec<u8> {
    let mut bytes = wire::pack(NodeId(sender), 0, 1232, &[b"x"])
        .unwrap()
        .remove(0);
    bytes[6..8].copy_from_slice(&count.to_be_bytes());
    bytes.truncate(wire::HEADER_LEN);
    bytes.extend_from_slice(body);
    bytes
}

/// Hostile datagrams and what a node holding `key()` must count for each of them.
fn hostile_stream(group: std::net::Ipv6Addr) -> Vec<(Vec<u8>, Outcome)> {
    let mut stream = Vec::new();
    let mut wrong_key = Protection::new(group);
    wrong_key.set_key(&ChannelKey::from_bytes(KeyId(99), [3; 32]));
    let mut wrong_secret = Protection::new(group);
    wrong_secret.set_key(&ChannelKey::from_bytes(key().id(), [4; 32]));
    let mut insider = Protection::new(group);
    insider.set_key(&key());
    for i in 0..100u64 {
        let sender = 0xbad0_0000 + i;
        let plain = wire::pack(NodeId(sender), i, 1232, &[&noise(i, 40)])
            .unwrap()
            .remove(0);
        // Random bytes: not even the magic.
        let mut random = noise(i, 1 + (i as usize * 37) % 1400);
        random[0] = 0;
        stream.push((random, Outcome::Malformed));
        // Cut short: a sealed header without room for key id and tag.
        let sealed = insider.seal(&plain).unwrap();
        stream.push((sealed[..(i as usize) % 44].to_vec(), Outcome::Malformed));
        // Unknown flag bits.
        let mut flagged = sealed.clone();
        flagged[wire::FLAGS_FIELD] |= 0x80;
        stream.push((flagged, Outcome::Malformed));
        // Lying lengths, plain: refused before any decoding because the channel is sealed.
        stream.push((
            lying_batch(sender, 500, &noise(i, 10)),
            Outcome::Dropped(DropReason::NotSealed),
        ));
        // Lying lengths sealed by an insider: opens, then fails to decode.
        let lying = lying_batch(sender, 500, &noise(i, 10));
        stream.push((insider.seal(&lying).unwrap(), Outcome::Malformed));
        // Someone else's key, and a forged key with the right id.
        stream.push((
            wrong_key.seal(&plain).unwrap(),
            Outcome::Dropped(DropReason::NoKey),
        ));
        stream.push((
            wrong_secret.seal(&plain).unwrap(),
            Outcome::Dropped(DropReason::BadTag),
        ));
        // A flipped bit.
        let mut flipped = sealed;
        flipped[30] ^= 0x10;
        stream.push((flipped, Outcome::Dropped(DropReason::BadTag)));
        if i % 20 == 0 {
            // Oversized: near the UDP maximum, with the right key id and random contents.
            let mut oversized = insider.seal(&plain).unwrap()[..28].to_vec();
            oversized.extend(noise(i, 60_000));
            stream.push((oversized, Outcome::Dropped(DropReason::BadTag)));
        }
    }
    stream
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Malformed,
    Dropped(DropReason),
}

#[test]
fn hostile_traffic_is_counted_one_by_one_and_legitimate_traffic_flows() {
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    const LEGIT: usize = 2000;
    let start = start_line(3);
    let done = start_line(2);
    let listener = {
        let (start, done) = (Arc::clone(&start), Arc::clone(&done));
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), CHANNEL);
            channel.set_key(&key()).unwrap();
            start.wait();
            let received = collect(&channel, LEGIT, Duration::from_secs(20));
            // Let the attacker finish, and its last datagrams arrive.
            done.wait();
            assert_quiet(&channel, Duration::from_millis(300));
            (received, channel.stats())
        })
    };
    let sender = {
        let start = Arc::clone(&start);
        world.host("h1").spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            channel.set_key(&key()).unwrap();
            start.wait();
            for i in 0..LEGIT {
                channel.send(format!("legit {i:05}").as_bytes()).unwrap();
                if i % 10 == 9 {
                    channel.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            channel.flush().unwrap();
            channel.stats().datagrams_sent
        })
    };
    let attacker_ifindex = world.host("h3").ifindex();
    let attacker = {
        let (start, done) = (Arc::clone(&start), Arc::clone(&done));
        world.host("h3").spawn(move || {
            let config = config();
            let group =
                sixcast::addr::group_addr(CHANNEL.as_bytes(), &config.profile, config.scope)
                    .unwrap();
            let port = config.effective_port();
            let socket = raw_sender(attacker_ifindex);
            // It captures the legitimate traffic to replay it, but not its own.
            socket.set_multicast_loop_v6(false).unwrap();
            socket
                .bind(&SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, port, 0, 0).into())
                .unwrap();
            socket.join_multicast_v6(&group, attacker_ifindex).unwrap();
            let socket: std::net::UdpSocket = socket.into();
            socket.set_nonblocking(true).unwrap();
            let to = SocketAddrV6::new(group, port, 0, 0);
            let stream = hostile_stream(group);
            let mut buffer = vec![0; 65_536];
            let (mut replayed_datagrams, mut replayed_messages) = (0u64, 0u64);
            let mut replay_captured = || {
                while let Ok(len) = socket.recv(&mut buffer) {
                    socket.send_to(&buffer[..len], to).unwrap();
                    replayed_datagrams += 1;
                    replayed_messages += u64::from(u16::from_be_bytes([buffer[6], buffer[7]]));
                }
            };
            start.wait();
            for (n, (datagram, _)) in stream.iter().enumerate() {
                socket.send_to(datagram, to).unwrap();
                if n % 8 == 7 {
                    replay_captured();
                    std::thread::sleep(Duration::from_millis(3));
                }
            }
            // Keep replaying while the legitimate sender may still be sending.
            for _ in 0..100 {
                replay_captured();
                std::thread::sleep(Duration::from_millis(20));
            }
            done.wait();
            (stream, replayed_datagrams, replayed_messages)
        })
    };
    let legit_datagrams = sender.join().unwrap();
    let (stream, replayed_datagrams, replayed_messages) = attacker.join().unwrap();
    let (received, stats) = listener.join().unwrap();

    let payloads: Vec<String> = received
        .iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect();
    let expected: Vec<String> = (0..LEGIT).map(|i| format!("legit {i:05}")).collect();
    assert!(
        payloads == expected,
        "legitimate traffic lost or altered: {stats:?}"
    );
    assert!(
        replayed_datagrams > 0,
        "the attacker captured nothing to replay"
    );

    let hostile = stream.len() as u64;
    assert_eq!(
        stats.datagrams_received,
        legit_datagrams + hostile + replayed_datagrams,
        "every datagram is counted once: {stats:?}"
    );
    let malformed = stream
        .iter()
        .filter(|(_, o)| *o == Outcome::Malformed)
        .count() as u64;
    assert_eq!(stats.malformed, malformed, "{stats:?}");
    for reason in DropReason::ALL {
        let expected = stream
            .iter()
            .filter(|(_, o)| *o == Outcome::Dropped(*reason))
            .count() as u64;
        assert_eq!(stats.drops.get(*reason), expected, "{reason}: {stats:?}");
    }
    assert_eq!(stats.duplicates, replayed_messages, "{stats:?}");
    assert_eq!(stats.messages_received, LEGIT as u64);
    eprintln!(
        "hostile-traffic figures: {hostile} hostile datagrams ({malformed} malformed, {} dropped \
         by key checks), {replayed_datagrams} replayed datagrams ({replayed_messages} messages), \
         {legit_datagrams} legitimate datagrams carrying {LEGIT} messages, all delivered",
        stats.drops.total()
    );
}

#[test]
fn sealed_traffic_crosses_a_relay_and_replays_injected_through_it_are_dropped() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    const MESSAGES: usize = 4200;
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    let _relay = relay_on(&world, "r1");
    let signer = SigningKey::generate().unwrap();
    let public = signer.public_key();
    let start = start_line(3);
    let sent = start_line(2);
    let done = start_line(2);
    let island = {
        let (start, done) = (Arc::clone(&start), Arc::clone(&done));
        world.host("i1").spawn(move || {
            let mut config = config();
            config.stratum0 = Some(s0);
            let context = Context::new(config).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            channel.set_key(&key()).unwrap();
            channel.trust(public).unwrap();
            channel.join().unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while context
                .reachability()
                .and_then(|reach| reach.relay)
                .is_none()
            {
                assert!(std::time::Instant::now() < deadline, "no tunnel");
                std::thread::sleep(Duration::from_millis(20));
            }
            start.wait();
            let received = collect(&channel, MESSAGES, Duration::from_secs(20));
            done.wait();
            assert_quiet(&channel, Duration::from_millis(500));
            (received, channel.stats())
        })
    };
    let c2_ifindex = world.host("c2").ifindex();
    let attacker = {
        let (start, sent, done) = (Arc::clone(&start), Arc::clone(&sent), Arc::clone(&done));
        world.host("c2").spawn(move || {
            let config = config();
            let group =
                sixcast::addr::group_addr(CHANNEL.as_bytes(), &config.profile, config.scope)
                    .unwrap();
            let relayed = sixcast::addr::relayed_addr(group, &config.profile).unwrap();
            let port = config.effective_port();
            let socket = raw_sender(c2_ifindex);
            socket.set_multicast_loop_v6(false).unwrap();
            socket
                .bind(&SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, port, 0, 0).into())
                .unwrap();
            socket.join_multicast_v6(&group, c2_ifindex).unwrap();
            let socket: std::net::UdpSocket = socket.into();
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            // The relay forwards whatever reaches the relayed group down its tunnels.
            let to_relay = SocketAddrV6::new(relayed, port, 0, 0);
            let mut buffer = vec![0; 65_536];
            start.wait();
            let len = socket.recv(&mut buffer).expect("the first datagram");
            let first = buffer[..len].to_vec();
            // At once: a duplicate. Tampered, and sealed with another key: dropped.
            socket.send_to(&first, to_relay).unwrap();
            let mut tampered = first.clone();
            tampered[40] ^= 1;
            socket.send_to(&tampered, to_relay).unwrap();
            let mut stranger = Protection::new(group);
            stranger.set_key(&ChannelKey::from_bytes(KeyId(8), [1; 32]));
            let plain = wire::pack(NodeId(0xbad), 0, 1232, &[b"let me in"]).unwrap();
            socket
                .send_to(&stranger.seal(&plain[0]).unwrap(), to_relay)
                .unwrap();
            // Once the sender is 4096 messages further: too old to tell from a replay.
            sent.wait();
            std::thread::sleep(Duration::from_millis(300));
            socket.send_to(&first, to_relay).unwrap();
            done.wait();
            u64::from(u16::from_be_bytes([first[6], first[7]]))
        })
    };
    world
        .host("c1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            channel.set_key(&key()).unwrap();
            channel.sign_with(signer).unwrap();
            start.wait();
            for i in 0..MESSAGES {
                channel.send(format!("core {i:05}").as_bytes()).unwrap();
                if i % 100 == 99 {
                    channel.flush().unwrap();
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            channel.flush().unwrap();
            sent.wait();
        })
        .join()
        .unwrap();
    let first_count = attacker.join().unwrap();
    let (received, stats) = island.join().unwrap();
    assert_eq!(received.len(), MESSAGES, "{stats:?}");
    assert!(received.iter().all(|message| message.relayed));
    assert!(
        received
            .iter()
            .enumerate()
            .all(|(i, message)| message.payload == format!("core {i:05}").as_bytes()),
        "in order, each once"
    );
    assert_eq!(
        stats.duplicates, first_count,
        "the immediate replay: {stats:?}"
    );
    assert_eq!(
        stats.drops.get(DropReason::Replay),
        first_count,
        "{stats:?}"
    );
    assert_eq!(stats.drops.get(DropReason::BadTag), 1, "{stats:?}");
    // The channel requires signatures, which is checked before the key.
    assert_eq!(stats.drops.get(DropReason::NotSigned), 1, "{stats:?}");
    assert_eq!(stats.drops.total(), first_count + 2, "{stats:?}");
}

#[test]
fn keys_are_refused_where_they_cannot_work() {
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let mut librecast = config();
            librecast.profile = sixcast::Profile::Librecast;
            let context = Context::new(librecast).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            let err = channel.set_key(&key()).unwrap_err();
            assert_eq!(err.kind(), sixcast::ErrorKind::Unsupported, "{err}");
            drop(context);

            // 128-byte datagrams leave 36 bytes after the header and fragment fields: enough for
            // a seal, not for a seal and a signature.
            let mut small = config();
            small.max_datagram_size = wire::MIN_DATAGRAM_SIZE;
            small.max_message_size = 1000;
            let context = Context::new(small).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            channel.set_key(&key()).unwrap();
            let err = channel
                .sign_with(SigningKey::generate().unwrap())
                .unwrap_err();
            assert_eq!(err.kind(), sixcast::ErrorKind::InvalidConfig, "{err}");
            // The refused change left the channel as it was: sealed, unsigned, still sending.
            channel.send(&[7; 500]).unwrap();
            channel.flush().unwrap();
            assert!(channel.stats().datagrams_sent >= 5);

            let token_issuer = SigningKey::generate().unwrap();
            let member = SigningKey::generate().unwrap();
            let token = sixcast::crypto::Token::issue(
                &token_issuer,
                member.public_key(),
                channel.group(),
                std::time::SystemTime::now(),
            );
            let err = channel.present(token).unwrap_err();
            assert_eq!(
                err.kind(),
                sixcast::ErrorKind::InvalidConfig,
                "no signing key: {err}"
            );
        })
        .join()
        .unwrap();
}

#[test]
fn a_sealed_reliable_channel_heeds_only_the_nacks_and_reports_of_key_holders() {
    const COUNT: usize = 2000;
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    // Loss both ways at the receiver: its NACKs and reports, each with the key's MAC, matter.
    world.set_udp_loss("h2", 5).unwrap();
    let reliable = || {
        let mut config = config();
        config.reliable = true;
        config
    };
    // A datagram each: enough of them lost that receivers must ask.
    let message = |i: usize| {
        let mut payload = format!("{i:05} sealed and repaired ").into_bytes();
        payload.resize(1000, b'r');
        payload
    };
    let (start, forged, counted) = (start_line(2), start_line(2), start_line(2));
    let (receiver_tx, receiver_rx) = std::sync::mpsc::channel();
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (context, channel) = joined(reliable(), CHANNEL);
            channel.set_key(&key()).unwrap();
            receiver_tx.send(context.node_id()).unwrap();
            start.wait();
            let received = collect(&channel, COUNT, WAIT * 4);
            (received, channel.stats())
        })
    };
    let receiver = receiver_rx.recv_timeout(WAIT).unwrap();
    let (sender_tx, sender_rx) = std::sync::mpsc::channel();
    let sender = {
        let (forged, counted) = (Arc::clone(&forged), Arc::clone(&counted));
        world.host("h1").spawn(move || {
            let context = Context::new(reliable()).unwrap();
            let channel = context.channel(CHANNEL).unwrap();
            channel.set_key(&key()).unwrap();
            start.wait();
            for i in 0..COUNT {
                channel.send(&message(i)).unwrap();
            }
            channel.flush().unwrap();
            let before = channel.stats();
            sender_tx
                .send((context.node_id(), context.port(), channel.group()))
                .unwrap();
            forged.wait();
            std::thread::sleep(Duration::from_millis(300));
            let after = channel.stats();
            let unread = context.stats().malformed;
            counted.wait();
            context.close();
            (before, after, unread)
        })
    };
    // Someone without the key asks h1 to repair a burst, and says h2 left.
    let (target, port, group) = sender_rx.recv_timeout(WAIT * 4).unwrap();
    let ifindex = world.host("h3").ifindex();
    let h1 = world.host("h1").addr();
    world
        .host("h3")
        .run(|| {
            let socket = raw_sender(ifindex);
            let mut nack = Vec::new();
            wire::repair::encode_nack(&mut nack, receiver, target, 100, &[(0, 100)]);
            let mut left = Vec::new();
            let status = wire::repair::Status {
                from: receiver,
                target,
                group,
                position: wire::repair::LEFT,
            };
            wire::repair::encode_status(&mut left, &status);
            let to_group = SocketAddrV6::new(group, port, 0, ifindex).into();
            socket.send_to(&nack, &to_group).unwrap();
            let mut tagged = nack.clone();
            tagged.extend_from_slice(&[0xa5; 16]);
            socket.send_to(&tagged, &to_group).unwrap();
            let to_sender = SocketAddrV6::new(h1, port, 0, 0).into();
            socket.send_to(&left, &to_sender).unwrap();
        })
        .unwrap();
    forged.wait();
    counted.wait();
    let (before, after, unread) = sender.join().unwrap();
    let (received, receiver_stats) = listener.join().unwrap();
    world.set_udp_loss("h2", 0).unwrap();
    let in_order = received
        .iter()
        .enumerate()
        .all(|(i, m)| m.payload == message(i));
    assert!(
        received.len() == COUNT && in_order,
        "{} of {COUNT} in order: {in_order}; {receiver_stats:?}",
        received.len()
    );
    assert!(
        receiver_stats.nacks_sent > 0,
        "loss was repaired: {receiver_stats:?}"
    );
    let dropped = |stats: &sixcast::Stats, reason| stats.drops.get(reason);
    assert_eq!(
        (
            dropped(&after, DropReason::NotSealed) - dropped(&before, DropReason::NotSealed),
            dropped(&after, DropReason::BadTag) - dropped(&before, DropReason::BadTag)
        ),
        (0, 3),
        "the untagged NACK and report (their last bytes taken for a MAC), and the NACK with a \
         made-up MAC: {after:?}"
    );
    // The key holder's NACKs, each with its MAC, were taken and answered, and its reports to
    // the sender's address were read, not taken for malformed.
    assert!(
        after.nacks_received > 0 && after.repairs_sent > 0,
        "{after:?}"
    );
    assert_eq!(unread, 0);
    assert_eq!(after.drops.total() - before.drops.total(), 3, "{after:?}");
}
