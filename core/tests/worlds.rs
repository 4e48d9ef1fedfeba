//! End-to-end tests: sixcast nodes in network-namespace worlds exchanging real multicast.
//!
//! Each host is a namespace; each node runs on a thread that entered its host's namespace.

mod harness;

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::Arc,
    time::{Duration, Instant},
};

use harness::{World, assert_quiet, collect, config, joined, start_line, world};
use sixcast::{Context, ErrorKind, NodeId, Profile, wire};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn lan_delivers_every_message_to_every_host_once_and_in_order() {
    let Some(world) = world(|| World::lan(4), false) else {
        return;
    };
    let start = start_line(4);
    let listeners: Vec<_> = ["h2", "h3", "h4"]
        .iter()
        .map(|name| {
            let start = Arc::clone(&start);
            world.host(name).spawn(move || {
                let (_context, channel) = joined(config(), "webservers");
                start.wait();
                let received = collect(&channel, 10, WAIT);
                assert_quiet(&channel, Duration::from_millis(200));
                (received, channel.group())
            })
        })
        .collect();
    let sender = world.host("h1");
    let sender_addr = sender.addr();
    let sender_id = sender
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("webservers").unwrap();
            start.wait();
            for i in 0..10 {
                channel.send(format!("message {i}").as_bytes()).unwrap();
            }
            channel.flush().unwrap();
            assert_eq!(channel.stats().messages_sent, 10);
            context.node_id()
        })
        .join()
        .unwrap();
    for (name, listener) in ["h2", "h3", "h4"].iter().zip(listeners) {
        let (received, group) = listener.join().unwrap();
        let payloads: Vec<_> = received
            .iter()
            .map(|m| String::from_utf8(m.payload.clone()).unwrap())
            .collect();
        let expected: Vec<_> = (0..10).map(|i| format!("message {i}")).collect();
        assert_eq!(payloads, expected, "{name}");
        let host = world.host(name);
        for (seq, message) in received.iter().enumerate() {
            assert_eq!(message.seq, seq as u64);
            assert_eq!(message.sender, sender_id);
            assert_eq!(*message.source.ip(), sender_addr);
            assert_eq!(message.group, group);
            assert_eq!(message.interface, host.ifindex());
            assert_eq!(&*message.interface_name, host.ifname());
            assert!(!message.relayed);
        }
    }
}

#[test]
fn messages_lost_on_the_way_are_counted_from_the_senders_sequence() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    // A fifth of the datagrams to h2 are dropped on its link.
    world.set_udp_loss("h2", 20).unwrap();
    let start = start_line(2);
    let receiver = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), "telemetry");
            start.wait();
            let received = collect(&channel, 300, WAIT);
            (received, channel.stats())
        })
    };
    world
        .host("h1")
        .spawn(move || {
            let mut config = config();
            // One message a datagram, so that each loss is one message.
            config.packing = false;
            let context = Context::new(config).unwrap();
            let channel = context.channel("telemetry").unwrap();
            start.wait();
            for i in 0..300u32 {
                channel.send(&i.to_be_bytes()).unwrap();
                channel.flush().unwrap();
            }
        })
        .join()
        .unwrap();
    let (received, stats) = receiver.join().unwrap();
    let seqs: Vec<u64> = received.iter().map(|message| message.seq).collect();
    let (first, highest) = (seqs[0], *seqs.iter().max().unwrap());
    let unheard = highest - first + 1 - seqs.len() as u64;
    assert!(unheard > 0, "20 % loss lost nothing of 300 datagrams");
    assert_eq!(
        stats.lost,
        unheard,
        "{} received of seqs {first}..={highest}",
        seqs.len()
    );
    assert_eq!(stats.messages_received, seqs.len() as u64);
}

#[test]
fn a_receive_queue_holds_at_most_its_bytes_and_counts_the_rest() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let start = start_line(2);
    let done = start_line(2);
    let receiver = {
        let (start, done) = (Arc::clone(&start), Arc::clone(&done));
        world.host("h2").spawn(move || {
            let mut config = config();
            config.queue_bytes = 3_000;
            let (_context, channel) = joined(config, "bulky");
            start.wait();
            // Read nothing until the sender is done and its datagrams had time to arrive.
            done.wait();
            std::thread::sleep(Duration::from_millis(300));
            let received = collect(&channel, 10, Duration::from_millis(300));
            (received.len(), channel.stats())
        })
    };
    world
        .host("h1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("bulky").unwrap();
            start.wait();
            for _ in 0..10 {
                channel.send(&[7; 1000]).unwrap();
            }
            channel.flush().unwrap();
            done.wait();
        })
        .join()
        .unwrap();
    let (received, stats) = receiver.join().unwrap();
    assert_eq!(received, 3, "3000 bytes hold three 1000-byte messages");
    assert_eq!(stats.queue_overflow, 7, "{stats:?}");
    assert_eq!(stats.messages_received, 3, "{stats:?}");
}

#[test]
fn routed_multicast_crosses_the_router() {
    let Some(world) = world(World::routed_mcast, true) else {
        return;
    };
    let start = start_line(3);
    let listeners: Vec<_> = ["a2", "b1"]
        .iter()
        .map(|name| {
            let start = Arc::clone(&start);
            world.host(name).spawn(move || {
                let (_context, channel) = joined(config(), "telemetry");
                start.wait();
                collect(&channel, 3, WAIT)
            })
        })
        .collect();
    world
        .host("a1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("telemetry").unwrap();
            start.wait();
            std::thread::sleep(harness::ROUTER_JOIN_DELAY);
            for reading in ["17.5", "17.6", "17.8"] {
                channel.send(reading.as_bytes()).unwrap();
                channel.flush().unwrap();
            }
        })
        .join()
        .unwrap();
    for (name, listener) in ["a2", "b1"].iter().zip(listeners) {
        let received = listener.join().unwrap();
        let payloads: Vec<_> = received.iter().map(|m| m.payload.as_slice()).collect();
        assert_eq!(payloads, [&b"17.5"[..], b"17.6", b"17.8"], "{name}");
    }
}

#[test]
fn without_multicast_routing_a_receive_times_out_cleanly() {
    let Some(world) = world(World::routed_nomcast, false) else {
        return;
    };
    let start = start_line(3);
    let spawn_listener = |name: &str| {
        let start = Arc::clone(&start);
        world.host(name).spawn(move || {
            let (_context, channel) = joined(config(), "nagios");
            start.wait();
            let began = Instant::now();
            let outcome = channel.recv_timeout(Duration::from_secs(1));
            (outcome, began.elapsed(), channel.stats())
        })
    };
    let same_segment = spawn_listener("a2");
    let other_segment = spawn_listener("b1");
    world
        .host("a1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("nagios").unwrap();
            start.wait();
            channel.send(b"host down").unwrap();
            channel.flush().unwrap();
        })
        .join()
        .unwrap();
    let (near, _, _) = same_segment.join().unwrap();
    assert_eq!(near.expect("same segment receives").payload, b"host down");
    let (far, waited, stats) = other_segment.join().unwrap();
    let err = far.expect_err("the router does not forward multicast");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains("no message arrived"), "{err}");
    assert!(
        waited < Duration::from_secs(3),
        "timed out late: {waited:?}"
    );
    assert_eq!(stats.datagrams_received, 0);
}

#[test]
fn ssm_delivers_only_the_chosen_source() {
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    let mut ssm = config();
    ssm.profile = Profile::Ssm;
    let chosen = world.host("h2").addr();
    let start = start_line(3);
    let listener = {
        let (ssm, start) = (ssm.clone(), Arc::clone(&start));
        world.host("h1").spawn(move || {
            let context = Context::new(ssm).unwrap();
            let channel = context.channel("prices").unwrap();
            assert_eq!(channel.group().segments()[0] & 0xfff0, 0xff30);
            channel.join_source(chosen).unwrap();
            start.wait();
            let received = collect(&channel, 2, WAIT);
            assert_quiet(&channel, Duration::from_millis(500));
            received
        })
    };
    let senders: Vec<_> = [
        ("h2", "from the chosen source"),
        ("h3", "from another source"),
    ]
    .into_iter()
    .map(|(name, text)| {
        let (ssm, start) = (ssm.clone(), Arc::clone(&start));
        world.host(name).spawn(move || {
            let context = Context::new(ssm).unwrap();
            let channel = context.channel("prices").unwrap();
            start.wait();
            for _ in 0..2 {
                channel.send(text.as_bytes()).unwrap();
                channel.flush().unwrap();
            }
        })
    })
    .collect();
    senders
        .into_iter()
        .for_each(|sender| sender.join().unwrap());
    let received = listener.join().unwrap();
    assert_eq!(received.len(), 2);
    for message in received {
        assert_eq!(*message.source.ip(), chosen);
        assert_eq!(message.payload, b"from the chosen source");
    }
}

#[test]
fn small_messages_are_packed_into_few_datagrams_and_keep_their_order() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    const COUNT: usize = 2_000;
    let start = start_line(2);
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), "metrics");
            start.wait();
            let received = collect(&channel, COUNT, WAIT);
            (received, channel.stats())
        })
    };
    let sent = world
        .host("h1")
        .spawn(move || {
            let mut packed = config();
            packed.linger = Duration::from_secs(1);
            let context = Context::new(packed).unwrap();
            let channel = context.channel("metrics").unwrap();
            start.wait();
            for i in 0..COUNT {
                let mut payload = format!("{i:08}").into_bytes();
                payload.resize(64, b'.');
                channel.send(&payload).unwrap();
            }
            channel.flush().unwrap();
            channel.stats()
        })
        .join()
        .unwrap();
    let (received, received_stats) = listener.join().unwrap();
    assert_eq!(received.len(), COUNT);
    for (i, message) in received.iter().enumerate() {
        assert_eq!(&message.payload[..8], format!("{i:08}").as_bytes());
    }
    // 64-byte messages with a 1-byte length each: 18 fit one 1232-byte datagram.
    let expected_datagrams = COUNT.div_ceil(18) as u64;
    assert_eq!(sent.datagrams_sent, expected_datagrams, "{sent:?}");
    assert_eq!(received_stats.datagrams_received, expected_datagrams);
    assert_eq!(received_stats.messages_received, COUNT as u64);
}

#[test]
fn a_one_mebibyte_message_arrives_whole() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let payload: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let expected = payload.clone();
    let start = start_line(2);
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), "files");
            start.wait();
            let received = collect(&channel, 2, WAIT);
            (received, channel.stats())
        })
    };
    world
        .host("h1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("files").unwrap();
            start.wait();
            channel.send(&payload).unwrap();
            channel.send(b"after the big one").unwrap();
            channel.flush().unwrap();
            let sent = channel.stats();
            assert!(
                sent.datagrams_sent > 850,
                "1 MiB needs many fragments: {sent:?}"
            );
        })
        .join()
        .unwrap();
    let (received, stats) = listener.join().unwrap();
    assert_eq!(received.len(), 2, "{stats:?}");
    assert!(received[0].payload == expected, "the 1 MiB payload differs");
    assert_eq!(received[1].payload, b"after the big one");
    assert_eq!(stats.reassembly_dropped, 0);
}

/// Sends raw datagrams (crafted by the test) to a channel's group from the current host.
fn send_raw(group: Ipv6Addr, ifindex: u32, datagrams: &[Vec<u8>]) {
    let socket = std::net::UdpSocket::bind("[::]:0").unwrap();
    let socket = socket2::Socket::from(socket);
    socket.set_multicast_if_v6(ifindex).unwrap();
    socket.set_multicast_hops_v6(1).unwrap();
    let target = SocketAddrV6::new(group, sixcast::addr::DEFAULT_PORT, 0, 0);
    for datagram in datagrams {
        socket.send_to(datagram, &target.into()).unwrap();
    }
}

#[test]
fn duplicates_and_own_loopback_are_suppressed() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let start = start_line(2);
    let group =
        sixcast::addr::group_addr(b"dups", &Profile::Sixcast, sixcast::Scope::Global).unwrap();
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), "dups");
            start.wait();
            let received = collect(&channel, 3, WAIT);
            assert_quiet(&channel, Duration::from_millis(300));
            (received, channel.stats())
        })
    };
    let h1 = world.host("h1");
    let ifindex = h1.ifindex();
    let own = h1
        .spawn(move || {
            // A node joined to its own channel, with loopback on, must not hear itself...
            let (context, channel) = joined(config(), "dups");
            // ...while a second node on the same host hears it through loopback.
            let (_neighbour_context, neighbour) = joined(config(), "dups");
            start.wait();
            channel.send(b"from h1").unwrap();
            channel.flush().unwrap();
            // The same datagrams twice, as if a copy also came another way.
            let mut packer = wire::Packer::new(NodeId(0xfeed), 1232, 1 << 20).unwrap();
            let mut datagrams = Vec::new();
            packer.push(b"once", &mut datagrams).unwrap();
            packer.push(b"only once", &mut datagrams).unwrap();
            packer.flush(&mut datagrams);
            let twice: Vec<_> = datagrams.iter().chain(&datagrams).cloned().collect();
            send_raw(group, ifindex, &twice);
            let heard = collect(&neighbour, 3, WAIT);
            let own_heard = collect(&channel, 2, WAIT);
            assert_quiet(&channel, Duration::from_millis(300));
            assert!(
                own_heard
                    .iter()
                    .all(|message| message.sender == NodeId(0xfeed))
            );
            (heard, channel.stats(), context.stats())
        })
        .join()
        .unwrap();
    let (heard, own_stats, own_context) = own;
    assert_eq!(
        heard.len(),
        3,
        "the neighbour hears h1's node and the crafted sender"
    );
    assert_eq!(
        own_stats.messages_received, 2,
        "only the crafted sender's two messages"
    );
    assert!(own_stats.own_dropped >= 1, "{own_stats:?}");
    // The second copy of the crafted datagram carried two messages already delivered.
    assert_eq!(own_context.duplicates, 2, "{own_context:?}");
    let (received, stats) = listener.join().unwrap();
    let payloads: Vec<_> = received.iter().map(|m| m.payload.as_slice()).collect();
    assert_eq!(payloads, [&b"from h1"[..], b"once", b"only once"]);
    assert_eq!(stats.duplicates, 2, "{stats:?}");
    assert_eq!(stats.messages_received, 3);
}

#[test]
fn malformed_datagrams_are_counted_and_survived() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let start = start_line(2);
    let group =
        sixcast::addr::group_addr(b"hostile", &Profile::Sixcast, sixcast::Scope::Global).unwrap();
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), "hostile");
            start.wait();
            let received = collect(&channel, 1, WAIT);
            (received, channel.stats())
        })
    };
    let h1 = world.host("h1");
    let ifindex = h1.ifindex();
    h1.spawn(move || {
        let mut packer = wire::Packer::new(NodeId(7), 1232, 1 << 20).unwrap();
        let mut valid = Vec::new();
        packer.push(b"still alive", &mut valid).unwrap();
        packer.flush(&mut valid);
        let good = valid.pop().unwrap();
        let mut lying_count = good.clone();
        lying_count[7] = 200;
        let mut wrong_version = good.clone();
        wrong_version[2] = 9;
        let mut random = vec![0u8; 700];
        for (i, byte) in random.iter_mut().enumerate() {
            *byte = (i as u32).wrapping_mul(2_246_822_519).rotate_left(13) as u8;
        }
        let hostile = vec![
            Vec::new(),
            vec![0x36],
            good[..good.len() - 3].to_vec(),
            lying_count,
            wrong_version,
            random,
            vec![0xff; 1232],
        ];
        start.wait();
        send_raw(group, ifindex, &hostile);
        send_raw(group, ifindex, &[good]);
    })
    .join()
    .unwrap();
    let (received, stats) = listener.join().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].payload, b"still alive");
    assert_eq!(stats.malformed, 7, "{stats:?}");
    assert_eq!(stats.datagrams_received, 8);
}

#[test]
fn closing_wakes_a_blocked_receiver() {
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let (context, channel) = joined(config(), "quiet");
            let waiter = std::thread::spawn(move || channel.recv());
            std::thread::sleep(Duration::from_millis(100));
            context.close();
            let err = waiter.join().unwrap().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Closed);
            let again = context.channel("quiet").unwrap_err();
            assert_eq!(again.kind(), ErrorKind::Closed);
        })
        .join()
        .unwrap();
}

#[test]
fn waiting_for_a_message_does_not_take_it() {
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let (context, inbox) = joined(config(), "readiness");
            assert!(
                !inbox
                    .wait_readable(Some(Duration::from_millis(100)))
                    .unwrap()
            );
            // A second context of the same host hears the first through multicast loopback.
            let sender = Context::new(config()).unwrap();
            let outbox = sender.channel("readiness").unwrap();
            outbox.send(b"ready?").unwrap();
            outbox.flush().unwrap();
            assert!(inbox.wait_readable(Some(WAIT)).unwrap());
            assert!(
                inbox.wait_readable(Some(Duration::ZERO)).unwrap(),
                "still there"
            );
            assert_eq!(inbox.try_recv().unwrap().unwrap().payload, b"ready?");
            assert!(!inbox.wait_readable(Some(Duration::ZERO)).unwrap());
            context.close();
            let err = inbox.wait_readable(None).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Closed);
        })
        .join()
        .unwrap();
}
