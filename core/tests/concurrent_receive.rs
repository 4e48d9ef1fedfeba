//! Several application threads receiving from one context at once, while the socket passes
//! between them and the receive thread (an application thread waiting with nothing queued reads
//! the socket itself): every message must arrive exactly once, in order per channel, whoever
//! reads, and closing must wake every waiting thread.

mod harness;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use harness::{World, config, start_line, world};
use sixcast::{Channel, Context, ErrorKind};

const WAIT: Duration = Duration::from_secs(5);
/// Messages per channel: many datagrams, so that the socket changes hands often.
const COUNT: u32 = 2000;

/// A sender context on the current host (its datagrams come back through multicast loopback)
/// that sends each message in a datagram of its own.
fn unpacked_sender() -> Context {
    let mut config = config();
    config.linger = Duration::ZERO;
    Context::new(config).unwrap()
}

/// Sends `COUNT` numbered messages on each of `channels`, interleaved and paced so that the
/// receiving socket's buffer never overflows.
fn send_numbered(channels: &[Channel]) {
    for number in 0..COUNT {
        for channel in channels {
            channel.send(&number.to_be_bytes()).unwrap();
        }
        if number % 25 == 24 {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

fn number(payload: &[u8]) -> u32 {
    u32::from_be_bytes(payload.try_into().expect("a four-byte message"))
}

fn all_numbers() -> Vec<u32> {
    (0..COUNT).collect()
}

#[test]
fn two_threads_receiving_on_one_channel_get_each_message_exactly_once() {
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("shared").unwrap();
            channel.join().unwrap();
            let taken = Arc::new(AtomicUsize::new(0));
            let start = start_line(3);
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let (channel, taken, start) =
                        (channel.clone(), Arc::clone(&taken), Arc::clone(&start));
                    thread::spawn(move || {
                        start.wait();
                        let mut numbers = Vec::new();
                        while taken.load(Ordering::SeqCst) < COUNT as usize {
                            match channel.recv_timeout(Duration::from_millis(300)) {
                                Ok(message) => {
                                    numbers.push(number(&message.payload));
                                    taken.fetch_add(1, Ordering::SeqCst);
                                }
                                Err(err) if err.kind() == ErrorKind::Timeout => break,
                                Err(err) => panic!("receiving failed: {err}"),
                            }
                        }
                        numbers
                    })
                })
                .collect();
            let sender = unpacked_sender();
            let outbox = sender.channel("shared").unwrap();
            start.wait();
            send_numbered(&[outbox]);
            let mut numbers: Vec<u32> = receivers
                .into_iter()
                .flat_map(|receiver| receiver.join().unwrap())
                .collect();
            numbers.sort_unstable();
            assert_eq!(numbers, all_numbers(), "lost or duplicated messages");
            let stats = channel.stats();
            assert_eq!(stats.messages_received, u64::from(COUNT), "{stats:?}");
            assert_eq!(stats.queue_overflow, 0, "{stats:?}");
        })
        .join()
        .unwrap();
}

#[test]
fn threads_on_different_channels_and_a_polling_thread_lose_nothing() {
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let context = Context::new(config()).unwrap();
            let names = ["blocking", "short-waits", "slices", "polled"];
            let channels: Vec<Channel> = names
                .iter()
                .map(|name| {
                    let channel = context.channel(name).unwrap();
                    channel.join().unwrap();
                    channel
                })
                .collect();
            // A thread that waits long on a channel nothing is sent to: whoever leads, nobody may
            // wait for its deadline to get what was read for them.
            let quiet = context.channel("quiet").unwrap();
            quiet.join().unwrap();
            let long_wait = thread::spawn(move || quiet.recv_timeout(Duration::from_secs(60)));
            let start = start_line(5);
            // Far beyond what the exchange needs (well under a second), far below the long wait.
            let deadline = Instant::now() + Duration::from_secs(4);
            let spawn = |channel: &Channel, take: fn(&Channel) -> Option<Vec<u8>>| {
                let (channel, start) = (channel.clone(), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    let mut numbers = Vec::new();
                    while numbers.len() < COUNT as usize && Instant::now() < deadline {
                        if let Some(payload) = take(&channel) {
                            numbers.push(number(&payload));
                        }
                    }
                    numbers
                })
            };
            let receivers = [
                // One long wait at a time.
                spawn(&channels[0], |channel| {
                    channel
                        .recv_timeout(WAIT)
                        .ok()
                        .map(|message| message.payload)
                }),
                // Waits that often end as a datagram arrives.
                spawn(&channels[1], |channel| {
                    match channel.recv_timeout(Duration::from_millis(1)) {
                        Ok(message) => Some(message.payload),
                        Err(err) if err.kind() == ErrorKind::Timeout => None,
                        Err(err) => panic!("receiving failed: {err}"),
                    }
                }),
                // As the bindings wait: short readiness slices, then take without blocking.
                spawn(&channels[2], |channel| {
                    if channel
                        .wait_readable(Some(Duration::from_millis(1)))
                        .unwrap()
                    {
                        channel.try_recv().unwrap().map(|message| message.payload)
                    } else {
                        None
                    }
                }),
                // Never waits in sixcast: only the receive thread or other threads read for it.
                spawn(&channels[3], |channel| {
                    let taken = channel.try_recv().unwrap().map(|message| message.payload);
                    if taken.is_none() {
                        thread::sleep(Duration::from_millis(1));
                    }
                    taken
                }),
            ];
            let sender = unpacked_sender();
            let outboxes: Vec<Channel> = names
                .iter()
                .map(|name| sender.channel(name).unwrap())
                .collect();
            start.wait();
            send_numbered(&outboxes);
            for ((name, receiver), channel) in names.iter().zip(receivers).zip(&channels) {
                let numbers = receiver.join().unwrap();
                assert_eq!(
                    numbers,
                    all_numbers(),
                    "{name}: lost, repeated or reordered"
                );
                assert_eq!(
                    channel.stats().messages_received,
                    u64::from(COUNT),
                    "{name}"
                );
            }
            context.close();
            let err = long_wait.join().unwrap().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Closed);
        })
        .join()
        .unwrap();
}

#[test]
fn closing_wakes_every_thread_waiting_to_receive() {
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let context = Context::new(config()).unwrap();
            let quiet = context.channel("quiet").unwrap();
            let other = context.channel("other").unwrap();
            quiet.join().unwrap();
            other.join().unwrap();
            let waiters = [
                {
                    let channel = quiet.clone();
                    thread::spawn(move || channel.recv().map(drop))
                },
                {
                    let channel = quiet.clone();
                    thread::spawn(move || channel.recv_timeout(Duration::from_secs(60)).map(drop))
                },
                {
                    let channel = other.clone();
                    thread::spawn(move || channel.wait_readable(None).map(drop))
                },
            ];
            // Long enough for one to lead and the others to follow or ask.
            thread::sleep(Duration::from_millis(100));
            let closing = Instant::now();
            context.close();
            for waiter in waiters {
                let err = waiter.join().unwrap().unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Closed);
            }
            assert!(
                closing.elapsed() < WAIT,
                "closing took {:?}",
                closing.elapsed()
            );
        })
        .join()
        .unwrap();
}
