use std::net::Ipv6Addr;

use super::*;
use crate::wire::{self, Datagram, FLAGS_FIELD, HEADER_LEN, NodeId, pack};

const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x5c);
const OTHER_GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x5d);
const SENDER: NodeId = NodeId(0x0123_4567_89ab_cdef);

fn channel_key(id: u32, byte: u8) -> ChannelKey {
    ChannelKey::from_bytes(KeyId(id), [byte; KEY_LEN])
}

fn signing_key(byte: u8) -> SigningKey {
    SigningKey::from_seed([byte; KEY_LEN])
}

/// One batch datagram and two fragments of a 200-byte message.
fn plain_datagrams() -> Vec<Vec<u8>> {
    let large: Vec<u8> = (0..200u8).collect();
    pack(SENDER, 7, 128, &[b"hello", b"", &large]).unwrap()
}

fn sealing(key: &ChannelKey) -> Protection {
    let mut protection = Protection::new(GROUP);
    protection.set_key(key);
    protection
}

fn signing(key: SigningKey) -> Protection {
    let mut protection = Protection::new(GROUP);
    protection.sign_with(key);
    protection
}

fn trusting(key: &SigningKey) -> Protection {
    let mut protection = Protection::new(GROUP);
    protection.trust(key.public_key());
    protection
}

fn dropped(protection: &Protection, datagram: &[u8]) -> &'static str {
    protection
        .open(datagram)
        .expect_err("must be refused")
        .reason()
}

#[test]
fn sealed_datagrams_open_to_the_plain_ones_and_hide_the_payload() {
    let key = channel_key(1, 0x11);
    let protection = sealing(&key);
    for plain in plain_datagrams() {
        let sealed = protection.seal(&plain).unwrap();
        assert_eq!(sealed.len(), plain.len() + SEAL_OVERHEAD);
        assert_eq!(sealed[FLAGS_FIELD], wire::FLAG_SEALED);
        assert_eq!(wire::decode(&sealed), Err(wire::DecodeError::Protected));
        assert!(!sealed.windows(5).any(|window| window == b"hello"));
        assert_eq!(protection.open(&sealed).unwrap().as_ref(), plain.as_slice());
    }
    assert_eq!(protection.overhead(), SEAL_OVERHEAD);
}

#[test]
fn signed_and_sealed_datagrams_open_for_a_receiver_with_key_and_trust() {
    let key = channel_key(1, 0x11);
    let signer = signing_key(0x22);
    let mut sender = sealing(&key);
    sender.sign_with(signer.clone());
    let mut receiver = sealing(&key);
    receiver.trust(signer.public_key());
    for plain in plain_datagrams() {
        let protected = sender.seal(&plain).unwrap();
        assert_eq!(
            protected.len(),
            plain.len() + SEAL_OVERHEAD + SIGNATURE_OVERHEAD
        );
        assert_eq!(
            receiver.open(&protected).unwrap().as_ref(),
            plain.as_slice()
        );
        // A receiver that holds the key but requires no signature strips it unchecked.
        assert_eq!(
            sealing(&key).open(&protected).unwrap().as_ref(),
            plain.as_slice()
        );
        assert_eq!(dropped(&trusting(&signer), &protected), "no_key");
    }
}

#[test]
fn signed_plain_datagrams_verify_and_strip_the_trailer() {
    let signer = signing_key(0x22);
    let sender = signing(signer.clone());
    let plain = &plain_datagrams()[0];
    let signed = sender.seal(plain).unwrap();
    assert_eq!(signed.len(), plain.len() + SIGNATURE_OVERHEAD);
    assert_eq!(signed[HEADER_LEN..plain.len()], plain[HEADER_LEN..]);
    assert_eq!(
        trusting(&signer).open(&signed).unwrap().as_ref(),
        plain.as_slice()
    );
    assert_eq!(
        Protection::new(GROUP).open(&signed).unwrap().as_ref(),
        plain.as_slice()
    );
    assert_eq!(
        dropped(&trusting(&signing_key(0x33)), &signed),
        "untrusted_signer"
    );
    assert_eq!(dropped(&trusting(&signer), plain), "not_signed");
    let mut other_group = Protection::new(OTHER_GROUP);
    other_group.trust(signer.public_key());
    assert_eq!(dropped(&other_group, &signed), "bad_signature");
}

#[test]
fn every_changed_byte_is_caught() {
    let key = channel_key(1, 0x11);
    let signer = signing_key(0x22);
    let mut sender = sealing(&key);
    sender.sign_with(signer.clone());
    let mut receiver = sealing(&key);
    receiver.trust(signer.public_key());
    let sealed_only = sealing(&key);
    for plain in plain_datagrams() {
        let sealed = sealed_only.seal(&plain).unwrap();
        let protected = sender.seal(&plain).unwrap();
        for (opener, datagram) in [(&sealed_only, &sealed), (&receiver, &protected)] {
            for position in 0..datagram.len() {
                let mut changed = datagram.clone();
                changed[position] ^= 0x40;
                assert!(
                    opener.open(&changed).is_err(),
                    "byte {position} of {datagram:02x?}"
                );
            }
        }
    }
}

#[test]
fn keys_rotate_and_wrong_keys_are_told_apart() {
    let old = channel_key(1, 0x11);
    let new = channel_key(2, 0x12);
    let plain = &plain_datagrams()[0];
    let sealed_old = sealing(&old).seal(plain).unwrap();
    let sealed_new = sealing(&new).seal(plain).unwrap();
    let mut rotating = sealing(&new);
    rotating.add_key(&old);
    assert!(rotating.open(&sealed_old).is_ok() && rotating.open(&sealed_new).is_ok());
    assert_eq!(dropped(&sealing(&new), &sealed_old), "no_key");
    assert_eq!(dropped(&Protection::new(GROUP), &sealed_old), "no_key");
    assert_eq!(
        dropped(&sealing(&channel_key(1, 0x99)), &sealed_old),
        "bad_tag"
    );
    let mut elsewhere = Protection::new(OTHER_GROUP);
    elsewhere.set_key(&old);
    assert_eq!(dropped(&elsewhere, &sealed_old), "bad_tag");
    assert_eq!(dropped(&rotating, plain), "not_sealed");
    assert!(rotating.remove_key(KeyId(1)) && !rotating.remove_key(KeyId(1)));
    assert_eq!(dropped(&rotating, &sealed_old), "no_key");
    assert!(rotating.remove_key(KeyId(2)));
    assert!(!rotating.protects_sending() && !rotating.protects_receiving());
}

#[test]
fn equal_plaintexts_under_different_sequence_numbers_seal_differently() {
    let protection = sealing(&channel_key(1, 0x11));
    let first = pack(SENDER, 1, 128, &[b"same"]).unwrap();
    let second = pack(SENDER, 2, 128, &[b"same"]).unwrap();
    let (first, second) = (
        protection.seal(&first[0]).unwrap(),
        protection.seal(&second[0]).unwrap(),
    );
    assert_ne!(
        first[HEADER_LEN + KEY_ID_LEN..],
        second[HEADER_LEN + KEY_ID_LEN..]
    );
}

#[test]
fn short_and_foreign_input_is_malformed_not_a_panic() {
    let key = channel_key(1, 0x11);
    let signer = signing_key(0x22);
    let mut receiver = sealing(&key);
    receiver.trust(signer.public_key());
    let sealed = sealing(&key).seal(&plain_datagrams()[1]).unwrap();
    for len in 0..sealed.len() {
        let result = sealing(&key).open(&sealed[..len]);
        assert!(result.is_err(), "{len}");
        let mut signed_flag = sealed[..len].to_vec();
        if len > FLAGS_FIELD {
            signed_flag[FLAGS_FIELD] |= wire::FLAG_SIGNED;
        }
        assert!(receiver.open(&signed_flag).is_err(), "{len}");
    }
    assert_eq!(dropped(&receiver, &[0x36, 0x63, 1, 1]), "truncated");
    assert!(sealing(&key).seal(&sealed).is_err(), "sealing twice");
    assert!(sealing(&key).seal(b"not sixcast").is_err());
}

#[test]
fn drops_add_up_by_reason() {
    let mut drops = Drops::default();
    drops.add(DropReason::BadTag, 2);
    let mut more = Drops::default();
    more.add(DropReason::Replay, 3);
    more.add(DropReason::BadTag, 1);
    drops += more;
    assert_eq!((drops.get(DropReason::BadTag), drops.total()), (3, 6));
    let names: Vec<_> = drops.iter().map(|(reason, _)| reason.name()).collect();
    assert_eq!(names.len(), DropReason::ALL.len());
    assert!(names.contains(&"untrusted_signer"));
}

proptest::proptest! {
    #[test]
    fn opening_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(0u8.., 0..300)) {
        let key = channel_key(1, 0x11);
        let mut receiver = sealing(&key);
        receiver.trust(signing_key(0x22).public_key());
        let _ = receiver.open(&bytes);
        let _ = sealing(&key).open(&bytes);
        let _ = Protection::new(GROUP).open(&bytes);
    }

    #[test]
    fn seal_then_open_round_trips(
        messages in proptest::collection::vec(proptest::collection::vec(0u8.., 0..300), 1..8),
        first_seq in 0u64..1 << 40,
        sign in proptest::bool::ANY,
    ) {
        let key = channel_key(9, 0x42);
        let signer = signing_key(0x24);
        let mut sender = sealing(&key);
        let mut receiver = sealing(&key);
        if sign {
            sender.sign_with(signer.clone());
            receiver.trust(signer.public_key());
        }
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        for plain in pack(SENDER, first_seq, 256, &refs).unwrap() {
            let sealed = sender.seal(&plain).unwrap();
            let opened = receiver.open(&sealed).unwrap();
            proptest::prop_assert_eq!(opened.as_ref(), plain.as_slice());
            proptest::prop_assert!(matches!(
                wire::decode(&opened),
                Ok(Datagram::Messages(_) | Datagram::Fragment(_))
            ));
        }
    }
}
