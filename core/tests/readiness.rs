//! The readiness descriptor: it polls readable once a message waits and until `try_recv` finds
//! the queue empty, wakes on close, and costs no thread, however many channels have one.

mod harness;

use std::{os::fd::RawFd, time::Duration};

use harness::{World, config, joined, start_line, threads, world};
use sixcast::{Context, ErrorKind};

/// Whether `fd` polls readable within `wait`.
fn readable(fd: RawFd, wait: Duration) -> bool {
    let mut entry = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let millis = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one live pollfd.
    unsafe { libc::poll(&raw mut entry, 1, millis) == 1 }
}

#[test]
fn the_descriptor_signals_waiting_messages_until_the_queue_is_drained() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let start = start_line(2);
    let next_round = start_line(2);
    let listener = {
        let (start, next_round) = (start.clone(), next_round.clone());
        world.host("h2").spawn(move || {
            let (context, channel) = joined(config(), "ready");
            let fd = channel.readiness_fd().unwrap();
            assert_eq!(
                channel.readiness_fd().unwrap(),
                fd,
                "one descriptor per channel"
            );
            assert!(
                readable(fd, Duration::ZERO),
                "a new descriptor is readable, to be checked"
            );
            assert!(channel.try_recv().unwrap().is_none());
            assert!(
                !readable(fd, Duration::from_millis(100)),
                "empty queue, quiet descriptor"
            );
            start.wait();
            for round in 0..2 {
                let mut taken = Vec::new();
                while taken.len() < 3 && readable(fd, Duration::from_secs(5)) {
                    while let Some(message) = channel.try_recv().unwrap() {
                        taken.push(message.payload);
                    }
                }
                assert_eq!(taken, [b"one", b"two", b"six"], "round {round}");
                assert!(
                    !readable(fd, Duration::from_millis(100)),
                    "round {round}: drained"
                );
                next_round.wait();
            }
            let closer = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                context.close();
            });
            assert!(
                readable(fd, Duration::from_secs(5)),
                "closing wakes the descriptor"
            );
            let closed = channel.try_recv().unwrap_err();
            assert_eq!(closed.kind(), ErrorKind::Closed);
            closer.join().unwrap();
        })
    };
    world
        .host("h1")
        .spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("ready").unwrap();
            start.wait();
            for _ in 0..2 {
                for payload in [b"one", b"two", b"six"] {
                    channel.send(payload).unwrap();
                }
                channel.flush().unwrap();
                next_round.wait();
            }
        })
        .join()
        .unwrap();
    listener.join().unwrap();
}

#[test]
fn descriptors_for_many_channels_start_no_threads() {
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let context = Context::new(config()).unwrap();
            let channels: Vec<_> = (0..200)
                .map(|i| context.channel(format!("many-{i}")).unwrap())
                .collect();
            let before = threads();
            for channel in &channels {
                channel.join().unwrap();
                channel.readiness_fd().unwrap();
            }
            assert_eq!(threads(), before, "readiness descriptors started threads");
        })
        .join()
        .unwrap();
}
