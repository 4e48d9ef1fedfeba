//! What sealing and signing cost per datagram, beside plain datagrams, measured in the same run:
//! sender side (pack + seal/sign) and receiver side (open + decode) for full 1232-byte datagrams
//! of packed 64-byte messages and for 8952-byte datagrams (jumbo frames). Pure CPU, one core;
//! no network.
//!
//! ```sh
//! cargo bench -p sixcast --bench protection
//! SIXCAST_BENCH_SECONDS=3 cargo bench -p sixcast --bench protection
//! ```

use std::{
    hint::black_box,
    net::Ipv6Addr,
    time::{Duration, Instant, SystemTime},
};

use sixcast::{
    NodeId,
    crypto::{ChannelKey, KeyId, Protection, SigningKey},
    wire::{self, Datagram},
};

const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0xc0, 0x1acf, 0x916c, 0x691a, 0xa851, 0x5b62, 0x1339);
const MESSAGE: usize = 64;

fn main() {
    let seconds = std::env::var("SIXCAST_BENCH_SECONDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1.0);
    let duration = Duration::from_secs_f64(seconds);
    let key = ChannelKey::from_bytes(KeyId(1), [7; 32]);
    let signer = SigningKey::from_seed([9; 32]);
    println!(
        "one core, {seconds} s per figure; {MESSAGE}-byte messages packed into each datagram\n"
    );
    println!(
        "{:>9} {:>15} | {:>12} {:>10} | {:>12} {:>10}",
        "datagram", "protection", "seal dgram/s", "msg/s", "open dgram/s", "msg/s"
    );
    for datagram_size in [1232, 8952] {
        for (name, sealed, signed) in [
            ("plain", false, false),
            ("sealed", true, false),
            ("signed", false, true),
            ("sealed+signed", true, true),
        ] {
            let mut sender = Protection::new(GROUP);
            let mut receiver = Protection::new(GROUP);
            if sealed {
                sender.set_key(&key);
                receiver.add_key(&key);
            }
            if signed {
                sender.sign_with(signer.clone());
                receiver.trust(signer.public_key());
            }
            // The packer leaves room for the protection, as a channel's does.
            let room = datagram_size - sender.overhead();
            let per_datagram = (room - wire::HEADER_LEN) / (MESSAGE + 1);
            let messages = vec![vec![0x5a; MESSAGE]; per_datagram];
            let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let plain = wire::pack(NodeId(1), 0, room, &messages).unwrap().remove(0);
            let protected = sender.seal(&plain).unwrap();
            assert!(protected.len() <= datagram_size);

            let seal_rate = rate(duration, || {
                let plain = wire::pack(NodeId(1), 0, room, &messages).unwrap();
                black_box(sender.seal(&plain[0]).unwrap());
            });
            let open_rate = rate(duration, || {
                let opened = receiver.open(black_box(&protected), now()).unwrap();
                match wire::decode(&opened) {
                    Ok(Datagram::Messages(batch)) => black_box(batch.iter().count()),
                    _ => unreachable!("a batch"),
                };
            });
            let per = per_datagram as f64;
            println!(
                "{datagram_size:>9} {name:>15} | {seal_rate:>12.0} {:>10.0} | {open_rate:>12.0} {:>10.0}",
                seal_rate * per,
                open_rate * per
            );
        }
    }
}

fn now() -> SystemTime {
    SystemTime::now()
}

/// Calls per second of `work` over `duration`.
fn rate(duration: Duration, mut work: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut calls = 0u64;
    while started.elapsed() < duration {
        for _ in 0..16 {
            work();
        }
        calls += 16;
    }
    calls as f64 / started.elapsed().as_secs_f64()
}
