//! How long a node waits, from joining a channel, for its first message: natively on the core
//! segment, and through a relay from an island. Printed for the record (run with
//! `--nocapture`); the assertions only check that each arrives by the path expected.

mod harness;

use std::{
    net::SocketAddrV6,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use harness::{World, config, relay_on, stratum0_on, world};
use sixcast::{Context, Path};

const WAIT: Duration = Duration::from_secs(10);
/// The heartbeat a core host sends while the others join.
const HEARTBEAT: Duration = Duration::from_millis(5);

/// Joins "heartbeat" on a context reaching the core through `stratum0`, and returns how long
/// the first message took and the path it came by.
fn first_message(stratum0: SocketAddrV6) -> (Duration, Path) {
    let mut config = config();
    config.stratum0 = Some(stratum0);
    let context = Context::new(config).unwrap();
    let channel = context.channel("heartbeat").unwrap();
    let joined_at = Instant::now();
    channel.join().unwrap();
    let message = channel.recv_timeout(WAIT).expect("a heartbeat arrives");
    (joined_at.elapsed(), message.path)
}

#[test]
fn join_to_first_message_natively_and_through_a_relay() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let (_stratum0, s0) = stratum0_on(&world, "s0");
    let _relay = relay_on(&world, "r1");
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        world.host("c1").spawn(move || {
            let context = Context::new(config()).unwrap();
            let channel = context.channel("heartbeat").unwrap();
            let until = Instant::now() + 3 * WAIT;
            while !stop.load(Ordering::Acquire) && Instant::now() < until {
                channel.send(b"beat").unwrap();
                channel.flush().unwrap();
                std::thread::sleep(HEARTBEAT);
            }
        })
    };
    let native = world.host("c2").spawn(move || first_message(s0));
    let relayed = world.host("i1").spawn(move || first_message(s0));
    let (native, relayed) = (native.join().unwrap(), relayed.join().unwrap());
    stop.store(true, Ordering::Release);
    sender.join().unwrap();
    eprintln!(
        "join to first message: native {:?}, through a relay {:?} (heartbeat every {HEARTBEAT:?})",
        native.0, relayed.0
    );
    assert_eq!(native.1, Path::Native);
    assert_eq!(relayed.1, Path::Relay);
}
