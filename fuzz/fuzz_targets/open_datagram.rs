//! Opening sealed and signed datagrams must never panic, and nothing but what was sealed with
//! the key opens. The first byte picks the receiver's setup; the rest is the datagram, or (mode
//! 3) messages that are packed, sealed, signed, opened and decoded back.
#![no_main]

use std::{
    net::Ipv6Addr,
    sync::LazyLock,
    time::{Duration, SystemTime},
};

use libfuzzer_sys::fuzz_target;
use sixcast::{
    NodeId,
    crypto::{ChannelKey, KeyId, Protection, SigningKey},
    wire::{self, Datagram},
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
            if let Ok(plain) = receiver.open(rest, now()) {
                let _ = wire::decode(&plain);
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
    for plain in datagrams.into_iter().take(4) {
        let sealed = SENDER.seal(&plain).expect("a packed datagram seals");
        let opened = RECEIVERS[2]
            .open(&sealed, now())
            .expect("what was sealed opens");
        assert_eq!(opened.as_ref(), plain.as_slice());
        assert!(matches!(
            wire::decode(&opened),
            Ok(Datagram::Messages(_) | Datagram::Fragment(_))
        ));
    }
}
