//! The linger timer: a partly filled datagram leaves on its own once it has waited
//! `Config::linger`, also when it was opened while the flush thread still held an entry for an
//! earlier datagram of the channel (the flush thread keeps one entry per channel). Complete
//! datagrams of a busy channel wait with it for a batch; with packing off, every message has a
//! datagram of its own.

mod harness;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use harness::{World, config, joined, start_line, world};
use sixcast::{Context, ErrorKind};

const LINGER: Duration = Duration::from_millis(200);

#[test]
fn a_datagram_opened_after_an_explicit_flush_still_leaves_after_the_linger() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let start = start_line(2);
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), "lingering");
            start.wait();
            let mut arrivals = Vec::new();
            while arrivals.len() < 2 {
                match channel.recv_timeout(Duration::from_secs(3)) {
                    Ok(message) => arrivals.push((message.payload, Instant::now())),
                    Err(err) if err.kind() == ErrorKind::Timeout => break,
                    Err(err) => panic!("{err}"),
                }
            }
            arrivals
        })
    };
    let sent_second = world
        .host("h1")
        .spawn(move || {
            let mut lingering = config();
            lingering.linger = LINGER;
            let context = Context::new(lingering).unwrap();
            let channel = context.channel("lingering").unwrap();
            start.wait();
            // The first datagram queues a flush entry; flushing it by hand leaves the entry
            // queued, and the second datagram opens while it is, half a linger later: when the
            // entry falls due, the second datagram has waited only half its time.
            channel.send(b"first").unwrap();
            channel.flush().unwrap();
            std::thread::sleep(LINGER / 2);
            channel.send(b"second").unwrap();
            let sent = Instant::now();
            // Keep the context open (closing would send the datagram) until it surely left.
            std::thread::sleep(LINGER * 10);
            sent
        })
        .join()
        .unwrap();
    let arrivals = listener.join().unwrap();
    let payloads: Vec<&[u8]> = arrivals.iter().map(|(payload, _)| &payload[..]).collect();
    assert_eq!(payloads, [&b"first"[..], b"second"]);
    let waited = arrivals[1].1.duration_since(sent_second);
    assert!(
        waited >= LINGER * 3 / 4 && waited < LINGER * 8,
        "the second datagram left {waited:?} after it was opened, linger {LINGER:?}"
    );
}

#[test]
fn unpacked_messages_leave_in_datagrams_of_their_own_and_in_batches() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    // Fewer than a batch (32 datagrams), which would leave as soon as it were complete.
    const BURST: usize = 20;
    let start = start_line(2);
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), "unpacked");
            start.wait();
            // The first message leaves at once: nothing was sent for a linger before it.
            let first = channel
                .recv_timeout(LINGER / 2)
                .map(|message| message.payload);
            // The rest of the burst waits for its batch, here a whole linger (or the flush that
            // comes after it).
            let early = channel.recv_timeout(LINGER / 4).is_ok();
            let mut rest = Vec::new();
            while rest.len() < BURST - 1 {
                match channel.recv_timeout(LINGER * 10) {
                    Ok(message) => rest.push(message.payload),
                    Err(err) if err.kind() == ErrorKind::Timeout => break,
                    Err(err) => panic!("{err}"),
                }
            }
            (first, early, rest, channel.stats())
        })
    };
    let sent = world
        .host("h1")
        .spawn(move || {
            let mut unpacked = config();
            unpacked.linger = LINGER;
            unpacked.packing = false;
            let context = Context::new(unpacked).unwrap();
            let channel = context.channel("unpacked").unwrap();
            start.wait();
            for i in 0..BURST {
                channel.send(format!("{i:03}").as_bytes()).unwrap();
            }
            std::thread::sleep(LINGER * 3);
            channel.stats()
        })
        .join()
        .unwrap();
    let (first, early, rest, received) = listener.join().unwrap();
    assert_eq!(first.as_deref().ok(), Some(&b"000"[..]), "{first:?}");
    assert!(!early, "the burst did not wait for its batch");
    let expected: Vec<Vec<u8>> = (1..BURST).map(|i| format!("{i:03}").into_bytes()).collect();
    assert_eq!(rest, expected);
    assert_eq!(sent.datagrams_sent, BURST as u64, "{sent:?}");
    assert_eq!(received.datagrams_received, BURST as u64, "{received:?}");
    assert_eq!(received.messages_received, BURST as u64);
}
