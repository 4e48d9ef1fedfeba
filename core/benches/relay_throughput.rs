//! Throughput through a relay: in the `stratum` world a core host sends as fast as it can and an
//! island host, whose router forwards unicast only, receives through the relay's tunnel. Prints
//! messages and datagrams per second at the island beside what a core host receives natively
//! in the same run.
//!
//! ```sh
//! cargo bench -p sixcast --bench relay_throughput    # needs root or user namespaces
//! ```
//! All traffic stays inside the namespaces this benchmark creates and removes.

use std::{
    net::SocketAddrV6,
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use sixcast::{
    Config, Context, ErrorKind,
    relay::{Relay, RelayConfig},
    stratum0::{Stratum0, Stratum0Config},
};
use sixcast_netlab::World;

const SIZES: [usize; 3] = [64, 1024, 8192];
const DURATION: Duration = Duration::from_secs(1);
/// How long receivers keep listening after the sender stops.
const DRAIN: Duration = Duration::from_millis(500);

fn main() {
    if let Err(reason) = sixcast_netlab::check_environment(false) {
        eprintln!("relay_throughput: cannot build the namespace world: {reason}");
        std::process::exit(1);
    }
    let world = World::stratum().expect("build the stratum world");
    let (stratum0, relay) = start_services(&world);
    let s0 = SocketAddrV6::new(world.host("s0").addr(), stratum0.port(), 0, 0);
    println!("core host c1 sends for {DURATION:?}; c2 receives natively, i1 through the relay\n");
    println!(
        "{:>6} | {:>12} {:>12} | {:>12} {:>12} | {:>6}",
        "size", "native msg/s", "dgram/s", "relay msg/s", "dgram/s", "ratio"
    );
    for size in SIZES {
        let start = Arc::new(Barrier::new(3));
        let native = {
            let start = Arc::clone(&start);
            world
                .host("c2")
                .spawn(move || receive(config(None), size, &start))
        };
        let relayed = {
            let start = Arc::clone(&start);
            world
                .host("i1")
                .spawn(move || receive(config(Some(s0)), size, &start))
        };
        world
            .host("c1")
            .spawn(move || send(size, &start))
            .join()
            .unwrap();
        let (native_messages, native_datagrams) = native.join().unwrap();
        let (relay_messages, relay_datagrams) = relayed.join().unwrap();
        let per_second = |count: u64| count as f64 / DURATION.as_secs_f64();
        println!(
            "{:>6} | {:>12.0} {:>12.0} | {:>12.0} {:>12.0} | {:>5.2}x",
            size,
            per_second(native_messages),
            per_second(native_datagrams),
            per_second(relay_messages),
            per_second(relay_datagrams),
            relay_messages as f64 / native_messages.max(1) as f64
        );
    }
    let stats = relay.stats();
    println!(
        "\nrelay totals: {} datagrams ({} bytes) down the tunnel",
        stats.datagrams_down, stats.bytes_down
    );
}

fn config(stratum0: Option<SocketAddrV6>) -> Config {
    let mut config = Config::default();
    config.hop_limit = 8;
    config.stratum0 = stratum0;
    config
}

fn start_services(world: &World) -> (Stratum0, Relay) {
    let stratum0 = world
        .host("s0")
        .run(|| {
            let mut config = Stratum0Config::default();
            config.hop_limit = 8;
            Stratum0::spawn(config).unwrap()
        })
        .unwrap();
    let relay = world
        .host("r1")
        .run(|| {
            let mut config = RelayConfig::default();
            config.hop_limit = 8;
            Relay::spawn(config).unwrap()
        })
        .unwrap();
    (stratum0, relay)
}

/// Joins, waits for the path to settle, then counts messages until the sender is done.
fn receive(config: Config, size: usize, start: &Barrier) -> (u64, u64) {
    let context = Context::new(config).unwrap();
    let channel = context.channel(format!("bench/{size}")).unwrap();
    channel.join().unwrap();
    let settle = Instant::now() + Duration::from_secs(10);
    while let Some(reach) = context.reachability() {
        if reach.relay.is_some() || Instant::now() > settle {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    start.wait();
    let deadline = Instant::now() + DURATION + DRAIN;
    let mut messages = 0;
    loop {
        match channel.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => messages += 1,
            Err(err) if err.kind() == ErrorKind::Timeout => break,
            Err(err) => panic!("{err}"),
        }
    }
    (messages, channel.stats().datagrams_received)
}

fn send(size: usize, start: &Barrier) {
    let context = Context::new(config(None)).unwrap();
    let channel = context.channel(format!("bench/{size}")).unwrap();
    let payload = vec![0x5c; size];
    start.wait();
    let began = Instant::now();
    while began.elapsed() < DURATION {
        for _ in 0..64 {
            channel.send(&payload).unwrap();
        }
    }
    channel.flush().unwrap();
}
