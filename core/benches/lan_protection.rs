//! Delivered messages per second on a bridged LAN of namespaces for a plain, a sealed, and a
//! sealed and signed channel, measured in the same run for 64 B and 1 KiB messages, 1 and 4
//! receivers, at MTU 1500 (the default 1232-byte datagrams) and MTU 9000 (8952-byte datagrams).
//!
//! ```sh
//! cargo bench -p sixcast --bench lan_protection            # needs root or user namespaces
//! SIXCAST_BENCH_SECONDS=3 cargo bench -p sixcast --bench lan_protection
//! ```
//! All traffic stays inside the namespaces this benchmark creates and removes.

use std::{
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use sixcast::{
    Channel, Config, Context, ErrorKind,
    crypto::{ChannelKey, KeyId, SigningKey},
};
use sixcast_netlab::World;

const SIZES: [usize; 2] = [64, 1024];
const RECEIVERS: [usize; 2] = [1, 4];
/// Link MTUs, each with the datagram size that fits it (the IPv6 and UDP headers take 48 bytes):
/// the default 1232 bytes at the common 1500, and jumbo frames.
const MTUS: [(u32, usize); 2] = [(1500, 1232), (9000, 8952)];
/// How long receivers keep listening after the sender stops, for datagrams still queued.
const DRAIN: Duration = Duration::from_millis(300);

#[derive(Clone, Copy)]
enum Protection {
    Plain,
    Sealed,
    SealedSigned,
}

fn main() {
    if let Err(reason) = sixcast_netlab::check_environment(false) {
        eprintln!("lan_protection: cannot build the namespace world: {reason}");
        std::process::exit(1);
    }
    let seconds = std::env::var("SIXCAST_BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1.0);
    let duration = Duration::from_secs_f64(seconds);
    let world = World::lan(1 + RECEIVERS[RECEIVERS.len() - 1]).expect("build the LAN world");
    println!("sender h1, receivers h2.., one bridge, {seconds} s per run; messages/s per receiver");
    for (mtu, datagram) in MTUS {
        world.set_mtu(mtu).expect("setting the MTU");
        // A first run on a fresh world or MTU is slow (neighbour discovery, MLD, cold caches):
        // one that is thrown away keeps it out of the table.
        let warm_up = Cell {
            receivers: RECEIVERS[0],
            size: SIZES[0],
            datagram,
            protection: Protection::Plain,
        };
        run(&world, Duration::from_millis(500), warm_up);
        println!("\nMTU {mtu}, {datagram}-byte datagrams");
        println!(
            "{:>6} {:>9} | {:>12} {:>12} {:>14} | {:>7} {:>7}",
            "size", "receivers", "plain", "sealed", "sealed+signed", "sealed", "+signed"
        );
        for size in SIZES {
            for receivers in RECEIVERS {
                let rates = [
                    Protection::Plain,
                    Protection::Sealed,
                    Protection::SealedSigned,
                ]
                .map(|protection| {
                    let cell = Cell {
                        receivers,
                        size,
                        datagram,
                        protection,
                    };
                    run(&world, duration, cell)
                });
                println!(
                    "{size:>6} {receivers:>9} | {:>12.0} {:>12.0} {:>14.0} | {:>6.2}x {:>6.2}x",
                    rates[0],
                    rates[1],
                    rates[2],
                    rates[1] / rates[0].max(1.0),
                    rates[2] / rates[0].max(1.0)
                );
            }
        }
    }
}

/// One measurement: how many receivers, message and datagram sizes, and the protection.
#[derive(Clone, Copy)]
struct Cell {
    receivers: usize,
    size: usize,
    datagram: usize,
    protection: Protection,
}

/// Messages per second per receiver, one sender on h1 and `receivers` receivers on h2...
fn run(world: &World, duration: Duration, cell: Cell) -> f64 {
    let Cell {
        receivers,
        size,
        datagram,
        protection,
    } = cell;
    let start = Arc::new(Barrier::new(receivers + 1));
    let signer = SigningKey::from_seed([9; 32]);
    let listening: Vec<_> = (0..receivers)
        .map(|i| {
            let start = Arc::clone(&start);
            let public = signer.public_key();
            world.host(&format!("h{}", i + 2)).spawn(move || {
                let context = Context::new(bench_config(datagram)).unwrap();
                let channel = context.channel("bench").unwrap();
                if !matches!(protection, Protection::Plain) {
                    channel.set_key(&key()).unwrap();
                }
                if matches!(protection, Protection::SealedSigned) {
                    channel.trust(public).unwrap();
                }
                channel.join().unwrap();
                start.wait();
                receive(&channel, duration)
            })
        })
        .collect();
    world
        .host("h1")
        .spawn(move || {
            let context = Context::new(bench_config(datagram)).unwrap();
            let channel = context.channel("bench").unwrap();
            if !matches!(protection, Protection::Plain) {
                channel.set_key(&key()).unwrap();
            }
            if matches!(protection, Protection::SealedSigned) {
                channel.sign_with(signer).unwrap();
            }
            start.wait();
            send(&channel, size, duration);
        })
        .join()
        .unwrap();
    let received: u64 = listening
        .into_iter()
        .map(|handle| handle.join().unwrap())
        .sum();
    received as f64 / duration.as_secs_f64() / receivers as f64
}

fn key() -> ChannelKey {
    ChannelKey::from_bytes(KeyId(1), [7; 32])
}

fn bench_config(datagram: usize) -> Config {
    let mut config = Config::default();
    config.hop_limit = 1;
    config.max_datagram_size = datagram;
    config
}

fn send(channel: &Channel, size: usize, duration: Duration) {
    let payload = vec![0x5c; size];
    let began = Instant::now();
    while began.elapsed() < duration {
        for _ in 0..256 {
            channel.send(&payload).unwrap();
        }
    }
    channel.flush().unwrap();
}

fn receive(channel: &Channel, duration: Duration) -> u64 {
    let deadline = Instant::now() + duration + DRAIN;
    let mut received = 0;
    loop {
        match channel.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => received += 1,
            Err(err) if err.kind() == ErrorKind::Timeout => return received,
            Err(err) => panic!("{err}"),
        }
    }
}
