//! Sealed and signed channels with real packets: who receives, and what is dropped and why.

mod harness;

use std::{net::SocketAddrV6, sync::Arc, time::Duration};

use harness::{World, assert_quiet, collect, config, joined, start_line, world};
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

    let (received, stats) = &results[2];
    assert!(received.is_empty());
    assert_eq!(
        stats.drops.get(DropReason::UntrustedSigner),
        stats.datagrams_received,
        "{stats:?}"
    );
    assert!(stats.datagrams_received >= 2, "{stats:?}");
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
