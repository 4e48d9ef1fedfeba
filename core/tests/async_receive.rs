//! Async receiving: futures and the stream park tasks, not threads, and wake them as soon as a
//! message arrives; a dropped receive takes nothing; the stream ends when the context closes.

mod harness;

use std::{
    future::{Future, poll_fn},
    pin::{Pin, pin},
    task::{Context as TaskContext, Poll, Waker},
    time::{Duration, Instant},
};

use futures_core::Stream;
use harness::{World, config, threads, world};
use sixcast::{Context, ErrorKind};

/// The thread count is the process's: the tests of this file take turns, so that one's
/// threads ending cannot pass for the other's.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

#[test]
fn a_thousand_pending_receives_park_no_threads_and_wake_within_milliseconds() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let (receiver, sender) = (
                Context::new(config()).unwrap(),
                Context::new(config()).unwrap(),
            );
            let channels: Vec<_> = (0..1000)
                .map(|i| receiver.channel(format!("async-{i}")).unwrap())
                .collect();
            let targets = [0, 333, 500, 999, 7];
            for &index in &targets {
                channels[index].join().unwrap();
            }
            let before = threads();
            let latencies = runtime().block_on(async {
                let mut pending: Vec<_> = channels
                    .iter()
                    .map(|channel| Some(tokio::spawn(channel.recv_async())))
                    .collect();
                // Let every task run once and park.
                for _ in 0..3 {
                    tokio::task::yield_now().await;
                }
                assert_eq!(threads(), before, "pending receives started threads");
                let mut latencies = Vec::new();
                for &index in &targets {
                    let outbox = sender.channel(format!("async-{index}")).unwrap();
                    let sent = Instant::now();
                    outbox.send(format!("to {index}").as_bytes()).unwrap();
                    outbox.flush().unwrap();
                    let task = pending[index].take().unwrap();
                    let message = task.await.unwrap().unwrap();
                    latencies.push(sent.elapsed());
                    assert_eq!(message.payload, format!("to {index}").into_bytes());
                }
                let still = pending
                    .iter()
                    .flatten()
                    .filter(|task| !task.is_finished())
                    .count();
                assert_eq!(
                    still,
                    channels.len() - targets.len(),
                    "others woke without a message"
                );
                latencies
            });
            eprintln!("async wake-up latencies: {latencies:?}");
            assert!(
                latencies
                    .iter()
                    .all(|latency| *latency < Duration::from_millis(500))
            );
        })
        .join()
        .unwrap();
}

#[test]
fn a_dropped_receive_takes_no_message_and_the_stream_ends_at_close() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(world) = world(|| World::lan(1), false) else {
        return;
    };
    world
        .host("h1")
        .spawn(|| {
            let receiver = Context::new(config()).unwrap();
            let sender = Context::new(config()).unwrap();
            let channel = receiver.channel("async-drop").unwrap();
            channel.join().unwrap();
            let mut cx = TaskContext::from_waker(Waker::noop());
            {
                let mut abandoned = pin!(channel.recv_async());
                assert!(abandoned.as_mut().poll(&mut cx).is_pending());
                let mut readable = pin!(channel.readable());
                assert!(readable.as_mut().poll(&mut cx).is_pending());
            }
            let outbox = sender.channel("async-drop").unwrap();
            for text in ["kept", "also kept"] {
                outbox.send(text.as_bytes()).unwrap();
            }
            outbox.flush().unwrap();
            runtime().block_on(async {
                channel.readable().await.unwrap();
                let mut messages = channel.messages();
                let first = poll_fn(|cx| Pin::new(&mut messages).poll_next(cx)).await;
                assert_eq!(first.unwrap().payload, b"kept");
                assert_eq!(channel.recv_async().await.unwrap().payload, b"also kept");
                let closer = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    receiver.close();
                });
                let end = poll_fn(|cx| Pin::new(&mut messages).poll_next(cx)).await;
                assert!(end.is_none(), "the stream ends when the context closes");
                let closed = channel.recv_async().await.unwrap_err();
                assert_eq!(closed.kind(), ErrorKind::Closed);
                assert!(matches!(
                    Pin::new(&mut channel.readable())
                        .poll(&mut TaskContext::from_waker(Waker::noop())),
                    Poll::Ready(Err(_))
                ));
                closer.join().unwrap();
            });
        })
        .join()
        .unwrap();
}
