//! The linger timer: a partly filled datagram leaves on its own once it has waited
//! `Config::linger`, also when it was opened while the flush thread still held an entry for an
//! earlier datagram of the channel (the flush thread keeps one entry per channel).

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
