//! Paced sending: `Config::send_rate_messages` and `send_rate_bytes` hold a sender to its rates,
//! and what it sends still all arrives.

mod harness;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use harness::{World, collect, config, joined, start_line, world};
use sixcast::{Context, ErrorKind};

/// Sends `count` messages of `size` bytes from h1 to h2 with `rates` (messages/s, bytes/s);
/// returns how long sending took and how many messages arrived.
fn paced_run(
    world: &World,
    channel: &'static str,
    count: usize,
    size: usize,
    rates: (u64, u64),
) -> (Duration, usize) {
    let start = start_line(2);
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), channel);
            start.wait();
            collect(&channel, count, Duration::from_secs(15)).len()
        })
    };
    let took = world
        .host("h1")
        .spawn(move || {
            let mut paced = config();
            (paced.send_rate_messages, paced.send_rate_bytes) = rates;
            let context = Context::new(paced).unwrap();
            let channel = context.channel(channel).unwrap();
            start.wait();
            let began = Instant::now();
            for index in 0..count {
                let mut payload = vec![0; size];
                payload[..8].copy_from_slice(&(index as u64).to_be_bytes());
                channel.send(&payload).unwrap();
            }
            channel.flush().unwrap();
            began.elapsed()
        })
        .join()
        .unwrap();
    (took, listener.join().unwrap())
}

#[test]
fn a_message_rate_spreads_a_burst_over_its_time() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    // 600 messages at 500/s: 1.2 s less the 10 ms burst.
    let (took, arrived) = paced_run(&world, "paced-messages", 600, 64, (500, 0));
    assert_eq!(arrived, 600);
    assert!(took >= Duration::from_millis(1150), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}

#[test]
fn a_byte_rate_paces_by_payload_size() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    // 100 messages of 4,000 bytes at 200,000 bytes/s: 2 s less the burst.
    let (took, arrived) = paced_run(&world, "paced-bytes", 100, 4000, (0, 200_000));
    assert_eq!(arrived, 100);
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn try_send_refuses_what_the_rate_would_delay_and_queues_nothing_of_it() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let start = start_line(2);
    let listener = {
        let start = Arc::clone(&start);
        world.host("h2").spawn(move || {
            let (_context, channel) = joined(config(), "paced-try");
            start.wait();
            let got = collect(&channel, 10, Duration::from_secs(5));
            got.into_iter()
                .map(|message| message.payload)
                .collect::<Vec<_>>()
        })
    };
    let (refused, waited, stats) = world
        .host("h1")
        .spawn(move || {
            let mut paced = config();
            // One message every 100 ms; the 10 ms burst lets the first go at once.
            paced.send_rate_messages = 10;
            let context = Context::new(paced).unwrap();
            let channel = context.channel("paced-try").unwrap();
            start.wait();
            channel.try_send(b"first").unwrap();
            let refused = channel.try_send(b"refused").unwrap_err().kind();
            let too_short = channel
                .send_timeout(b"also refused", Duration::from_millis(50))
                .unwrap_err()
                .kind();
            let began = Instant::now();
            channel
                .send_timeout(b"second", Duration::from_millis(500))
                .unwrap();
            let waited = began.elapsed();
            channel.flush().unwrap();
            ([refused, too_short], waited, channel.stats())
        })
        .join()
        .unwrap();
    assert_eq!(refused, [ErrorKind::Timeout; 2]);
    // The second waited for its turn (100 ms after the first, less the burst), not longer.
    assert!(
        waited >= Duration::from_millis(80) && waited < Duration::from_millis(400),
        "{waited:?}"
    );
    assert_eq!(stats.messages_sent, 2, "{stats:?}");
    assert_eq!(
        listener.join().unwrap(),
        [b"first".to_vec(), b"second".to_vec()],
        "the refused messages never left"
    );
}
