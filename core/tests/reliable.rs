//! Reliable channels in namespace worlds: random loss from nftables on the receivers' links,
//! and every message still arrives, once, in order, byte-exact.

mod harness;

use std::{sync::Arc, time::Duration};

use harness::{World, collect, config, joined, start_line, world};
use sixcast::{Config, Context, ErrorKind, Stats};

/// Message `index` of a run: its number and a length that varies, so that datagrams differ.
fn message(index: usize) -> Vec<u8> {
    let mut payload = (index as u64).to_be_bytes().to_vec();
    payload.resize(8 + index * 13 % 300, index as u8);
    payload
}

fn reliable() -> Config {
    let mut config = config();
    config.reliable = true;
    config
}

/// Sends `count` messages from h1 (with `sender`) to h2..=h4, which lose `loss` percent of
/// their UDP both ways; returns what each receiver got and its channel's stats.
fn run(
    world: &World,
    channel: &'static str,
    sender: Config,
    count: usize,
    loss: u8,
    within: Duration,
) -> Vec<(Vec<Vec<u8>>, Stats)> {
    let receivers = ["h2", "h3", "h4"];
    for host in receivers {
        world.set_udp_loss(host, loss).unwrap();
    }
    let start = start_line(receivers.len() + 1);
    let listeners: Vec<_> = receivers
        .iter()
        .map(|host| {
            let start = Arc::clone(&start);
            world.host(host).spawn(move || {
                let (_context, channel) = joined(config(), channel);
                start.wait();
                let got = collect(&channel, count, within);
                let payloads = got.into_iter().map(|message| message.payload).collect();
                (payloads, channel.stats())
            })
        })
        .collect();
    world.host("h1").spawn(move || {
        let context = Context::new(sender).unwrap();
        let channel = context.channel(channel).unwrap();
        start.wait();
        for index in 0..count {
            channel.send(&message(index)).unwrap();
        }
        channel.flush().unwrap();
        // Closing waits while receivers still ask for repairs.
        context.close();
    });
    let results = listeners
        .into_iter()
        .map(|listener| listener.join().unwrap())
        .collect();
    for host in receivers {
        world.set_udp_loss(host, 0).unwrap();
    }
    results
}

#[test]
fn every_message_arrives_in_order_at_each_loss_rate() {
    let Some(world) = world(|| World::lan(4), false) else {
        return;
    };
    let expected: Vec<_> = (0..3000).map(message).collect();
    for (loss, channel) in [(1, "reliable-1"), (5, "reliable-5"), (20, "reliable-20")] {
        let within = Duration::from_secs(20);
        let results = run(&world, channel, reliable(), expected.len(), loss, within);
        for (receiver, (got, stats)) in results.iter().enumerate() {
            assert!(
                *got == expected,
                "{loss} % loss: receiver {receiver} got {} of {} messages, or out of order; {stats:?}",
                got.len(),
                expected.len()
            );
            assert_eq!(
                (stats.lost, stats.packets_lost, stats.duplicates),
                (0, 0, 0),
                "{loss} %"
            );
            // At 1 % a receiver may be lucky (about 900 datagrams both ways); at 5 % none is.
            // It need not ask itself: where the others' NACKs ask at least as much of each block
            // as it would, its own are suppressed and their repairs fill its holes.
            if loss > 1 {
                assert!(stats.repairs_received > 0, "{loss} %: {stats:?}");
            }
        }
        let total = |count: fn(&Stats) -> u64| -> u64 {
            results.iter().map(|(_, stats)| count(stats)).sum()
        };
        assert!(
            total(|stats| stats.repairs_received) > 0,
            "{loss} %: no receiver needed a repair?"
        );
        if loss > 1 {
            assert!(
                total(|stats| stats.nacks_sent) > 0,
                "{loss} %: nobody asked"
            );
        }
    }
}

#[test]
fn best_effort_loses_what_reliable_repairs() {
    // The control for the test above: the same loss without repair loses messages.
    let Some(world) = world(|| World::lan(4), false) else {
        return;
    };
    // Nothing repairs what is lost: waiting longer would not bring it.
    let results = run(
        &world,
        "best-effort-5",
        config(),
        3000,
        5,
        Duration::from_secs(3),
    );
    for (got, stats) in &results {
        assert!(got.len() < 3000, "nothing lost at 5 %?");
        assert_eq!(stats.nacks_sent, 0);
    }
}

#[test]
fn a_one_shot_send_is_repaired_after_its_context_closes() {
    let Some(world) = world(|| World::lan(4), false) else {
        return;
    };
    // Each shot is one message from a context that closes at once: only the sender's lingering
    // on close can answer the receivers' NACKs.
    let shots = 5;
    let results = {
        let receivers = ["h2", "h3", "h4"];
        for host in receivers {
            world.set_udp_loss(host, 10).unwrap();
        }
        let start = start_line(receivers.len() + 1);
        let listeners: Vec<_> = receivers
            .iter()
            .map(|host| {
                let start = Arc::clone(&start);
                world.host(host).spawn(move || {
                    let (_context, channel) = joined(config(), "one-shot");
                    start.wait();
                    collect(&channel, shots, Duration::from_secs(20)).len()
                })
            })
            .collect();
        world.host("h1").spawn(move || {
            start.wait();
            for shot in 0..shots {
                let context = Context::new(reliable()).unwrap();
                let channel = context.channel("one-shot").unwrap();
                channel.send(&message(shot)).unwrap();
            }
        });
        let results: Vec<_> = listeners.into_iter().map(|l| l.join().unwrap()).collect();
        for host in receivers {
            world.set_udp_loss(host, 0).unwrap();
        }
        results
    };
    assert_eq!(results, [shots; 3]);
}

#[test]
fn a_reliable_context_needs_the_header() {
    let mut config = reliable();
    config.profile = sixcast::Profile::Librecast;
    let err = config.validate().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("reliable"), "{err}");
}

/// A reader on h2 with a 500-message queue that takes `count` messages of `channel` (after
/// `start`), pausing 20 ms every 1,000: much slower than an unpaced sender.
fn slow_reader(
    world: &World,
    channel: &'static str,
    count: usize,
    start: &Arc<std::sync::Barrier>,
) -> std::thread::JoinHandle<(Vec<Vec<u8>>, Stats)> {
    let start = Arc::clone(start);
    world.host("h2").spawn(move || {
        let mut small = config();
        small.queue_capacity = 500;
        let (_context, channel) = joined(small, channel);
        start.wait();
        let mut got = Vec::new();
        while got.len() < count {
            match channel.recv_timeout(Duration::from_secs(10)) {
                Ok(message) => got.push(message.payload),
                Err(_) => break,
            }
            if got.len() % 1000 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        (got, channel.stats())
    })
}

#[test]
fn a_slow_reader_gets_everything_because_the_sender_waits_for_it() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let count = 20_000;
    let start = start_line(2);
    let reader = slow_reader(&world, "slow-reader", count, &start);
    world.host("h1").spawn(move || {
        let context = Context::new(reliable()).unwrap();
        let channel = context.channel("slow-reader").unwrap();
        start.wait();
        for index in 0..count {
            channel.send(&message(index)).unwrap();
        }
        channel.flush().unwrap();
        context.close();
    });
    let (got, stats) = reader.join().unwrap();
    let expected: Vec<_> = (0..count).map(message).collect();
    assert!(
        got == expected,
        "{} of {count} arrived in order; {stats:?}",
        got.len()
    );
    assert_eq!(stats.queue_overflow, 0, "{stats:?}");
}

#[test]
fn try_send_refuses_while_the_window_is_closed_and_what_it_took_arrives_once() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let count = 20_000;
    let start = start_line(2);
    let reader = slow_reader(&world, "try-window", count, &start);
    let refused = world
        .host("h1")
        .spawn(move || {
            let context = Context::new(reliable()).unwrap();
            let channel = context.channel("try-window").unwrap();
            start.wait();
            let mut refused = 0;
            // Bounded: each refusal waits a millisecond, and the reader drains in seconds.
            for index in 0..count {
                loop {
                    match channel.try_send(&message(index)) {
                        Ok(()) => break,
                        Err(err) if err.kind() == ErrorKind::Timeout && refused < 100_000 => {
                            refused += 1;
                            std::thread::sleep(Duration::from_millis(1));
                        }
                        Err(err) => panic!("message {index}, {refused} refused: {err}"),
                    }
                }
            }
            channel.flush().unwrap();
            assert_eq!(channel.stats().messages_sent, count as u64);
            context.close();
            refused
        })
        .join()
        .unwrap();
    let (got, _) = reader.join().unwrap();
    assert!(refused > 0, "the window never closed");
    let expected: Vec<_> = (0..count).map(message).collect();
    assert!(
        got == expected,
        "{} of {count} arrived in order ({refused} refusals)",
        got.len()
    );
    eprintln!("{refused} try_send refusals while the reader caught up; all {count} arrived once");
}
