//! Opening sealed and signed datagrams must never panic, and nothing but what was sealed with
//! the key opens. The first byte picks the receiver's setup; the rest is the datagram, or (mode
//! 3) messages that are packed, sealed, signed together (covered by a manifest), opened and
//! decoded back.
#![no_main]

use std::{
    net::Ipv6Addr,
    sync::{LazyLock, atomic::AtomicU64},
    time::{Duration, SystemTime},
};

use libfuzzer_sys::fuzz_target;
use sixcast::{
    NodeId,
    crypto::{self, ChannelKey, KeyId, Protection, SigningKey},
    wire::{self, Datagram, manifest},
};

const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0xc0, 0x1acf, 0x916c, 0x691a, 0xa851, 0x5b62, 0x1339);

/// The keys of the conformance vectors, so that the seeds open: channel key "current", signer
/// "alice", token issuer "carol".
fn key() -> ChannelKey {
    ChannelKey::from_bytes(KeyId(2), std::array::from_fn(|i| 0x40 + i as u8))
}

fn signer() -> SigningKey {
    SigningKey::from_seed(std::array::from_fn(|i| 0x60 + i as u8))
}

fn issuer() -> SigningKey {
    SigningKey::from_seed(std::array::from_fn(|i| 0xa0_u8.wrapping_add(i as u8)))
}

/// Receivers without keys, with the channel key, and with key, trusted signer and issuer; built
/// once, as deriving keys would otherwise dominate every run.
static RECEIVERS: LazyLock<[Protection; 3]> = LazyLock::new(|| {
    let mut keyed = Protection::new(GROUP);
    keyed.add_key(&key());
    let mut trusting = keyed.clone();
    trusting.trust(signer().public_key());
    trusting.trust_issuer(issuer().public_key());
    [Protection::new(GROUP), keyed, trusting]
});

static SENDER: LazyLock<Protection> = LazyLock::new(|| {
    let mut sender = Protection::new(GROUP);
    sender.set_key(&key());
    sender.sign_with(signer());
    sender
});

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match RECEIVERS.get(usize::from(mode % 4)) {
        Some(receiver) => {
            let opened = if receiver.needs_cover(rest) {
                receiver.open_covered(rest, now())
            } else {
                receiver.open(rest, now())
            };
            if let Ok(plain) = opened {
                let _ = wire::decode(&plain);
                let _ = manifest::decode(&plain);
            }
        }
        None => round_trip(rest),
    }
});

fn round_trip(data: &[u8]) {
    let messages: Vec<&[u8]> = data.split(|&byte| byte == 0xff).collect();
    let Ok(datagrams) = wire::pack(NodeId(7), 0, 256, &messages) else {
        return;
    };
    // A few datagrams say as much as many, at a fraction of the signing cost.
    let mut sent: Vec<Vec<u8>> = datagrams.iter().take(4).cloned().collect();
    SENDER
        .seal_batch(&mut sent, 256, 1, &AtomicU64::new(0))
        .expect("packed datagrams seal");
    let receiver = &RECEIVERS[2];
    let (mut opened, mut covered, mut listed) = (Vec::new(), Vec::new(), Vec::new());
    for datagram in &sent {
        if manifest::is_manifest(datagram) {
            let plain = receiver.open(datagram, now()).expect("a manifest opens");
            let decoded = manifest::decode(&plain).expect("a manifest decodes");
            listed.extend(decoded.digests());
        } else if receiver.needs_cover(datagram) {
            covered.push(crypto::digest(GROUP, datagram));
            let plain = receiver.open_covered(datagram, now()).expect("it opens");
            opened.push(plain.into_owned());
        } else {
            let plain = receiver
                .open(datagram, now())
                .expect("what was sealed opens");
            opened.push(plain.into_owned());
        }
    }
    assert!(covered.iter().all(|digest| listed.contains(digest)));
    for (plain, original) in opened.iter().zip(&datagrams) {
        assert_eq!(plain, original);
        assert!(matches!(
            wire::decode(plain),
            Ok(Datagram::Messages(_) | Datagram::Fragment(_))
        ));
    }
    assert_eq!(opened.len(), datagrams.len().min(4));
}
