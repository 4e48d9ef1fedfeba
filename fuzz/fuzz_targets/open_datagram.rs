//! Opening sealed and signed datagrams must never panic, and nothing but what was sealed with
//! the key opens. The first byte picks the receiver's setup; the rest is the datagram, or (mode
//! 3) messages that are packed, sealed, signed, opened and decoded back.
#![no_main]

use std::{
    net::Ipv6Addr,
    time::{Duration, SystemTime},
};

use libfuzzer_sys::fuzz_target;
use sixcast::{
    NodeId,
    crypto::{ChannelKey, KeyId, Protection, SigningKey},
    wire::{self, Datagram},
};

const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0xc0, 0x1acf, 0x916c, 0x691a, 0xa851, 0x5b62, 0x1339);

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn key() -> ChannelKey {
    ChannelKey::from_bytes(KeyId(2), std::array::from_fn(|i| 0x40 + i as u8))
}

fn signer() -> SigningKey {
    SigningKey::from_seed(std::array::from_fn(|i| 0x60 + i as u8))
}

/// The issuer of the vectors' tokens (carol).
fn issuer() -> SigningKey {
    SigningKey::from_seed(std::array::from_fn(|i| 0xa0_u8.wrapping_add(i as u8)))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut receiver = Protection::new(GROUP);
    match mode % 4 {
        0 => {}
        1 => receiver.add_key(&key()),
        2 => {
            receiver.add_key(&key());
            receiver.trust(signer().public_key());
            receiver.trust_issuer(issuer().public_key());
        }
        _ => return round_trip(rest),
    }
    if let Ok(plain) = receiver.open(rest, now()) {
        let _ = wire::decode(&plain);
    }
});

fn round_trip(data: &[u8]) {
    let messages: Vec<&[u8]> = data.split(|&byte| byte == 0xff).collect();
    let Ok(datagrams) = wire::pack(NodeId(7), 0, 256, &messages) else {
        return;
    };
    let mut sender = Protection::new(GROUP);
    sender.set_key(&key());
    sender.sign_with(signer());
    let mut receiver = Protection::new(GROUP);
    receiver.add_key(&key());
    receiver.trust(signer().public_key());
    for plain in datagrams {
        let sealed = sender.seal(&plain).expect("a packed datagram seals");
        let opened = receiver
            .open(&sealed, now())
            .expect("what was sealed opens");
        assert_eq!(opened.as_ref(), plain.as_slice());
        assert!(matches!(
            wire::decode(&opened),
            Ok(Datagram::Messages(_) | Datagram::Fragment(_))
        ));
    }
}
