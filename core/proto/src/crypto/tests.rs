use std::{
    net::Ipv6Addr,
    time::{Duration, SystemTime},
};

use super::*;
use crate::wire::{self, Datagram, FLAGS_FIELD, HEADER_LEN, NodeId, pack};

const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x5c);
const OTHER_GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x5d);
const SENDER: NodeId = NodeId(0x0123_4567_89ab_cdef);

/// The receivers' clock: tokens are checked against it.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

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
        .open(datagram, now())
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
        assert_eq!(
            protection.open(&sealed, now()).unwrap().as_ref(),
            plain.as_slice()
        );
    }
    assert_eq!(protection.overhead(), SEAL_OVERHEAD);
}

#[test]
fn opening_into_a_reused_buffer_gives_what_open_gives() {
    let key = channel_key(1, 0x11);
    let signer = signing_key(0x22);
    let mut sender = sealing(&key);
    sender.sign_with(signer.clone());
    let mut receiver = sealing(&key);
    receiver.trust(signer.public_key());
    // Left over from an earlier, longer datagram.
    let mut scratch = vec![0xee; 4096];
    for plain in plain_datagrams() {
        let protected = sender.seal(&plain).unwrap();
        let opened = receiver.open_into(&protected, now(), &mut scratch).unwrap();
        assert_eq!(opened, plain.as_slice());
        // A plain datagram on an open channel is its own plain datagram.
        let unprotected = Protection::new(GROUP);
        let opened = unprotected.open_into(&plain, now(), &mut scratch).unwrap();
        assert!(std::ptr::eq(opened, plain.as_slice()));
        let mut forged = protected.clone();
        forged[HEADER_LEN + KEY_ID_LEN] ^= 1;
        let refused = receiver.open_into(&forged, now(), &mut scratch);
        assert_eq!(refused.map_err(|r| r.reason()), Err("bad_tag"));
    }
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
            receiver.open(&protected, now()).unwrap().as_ref(),
            plain.as_slice()
        );
        // A receiver that holds the key but requires no signature strips it unchecked.
        assert_eq!(
            sealing(&key).open(&protected, now()).unwrap().as_ref(),
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
        trusting(&signer).open(&signed, now()).unwrap().as_ref(),
        plain.as_slice()
    );
    assert_eq!(
        Protection::new(GROUP)
            .open(&signed, now())
            .unwrap()
            .as_ref(),
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
                    opener.open(&changed, now()).is_err(),
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
    assert!(rotating.open(&sealed_old, now()).is_ok() && rotating.open(&sealed_new, now()).is_ok());
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
fn each_sender_seals_under_a_key_of_its_own() {
    // Two senders' datagrams with the same sequence number use the same nonce, so they must
    // not share a key: their ciphertexts differ, and neither opens as the other's.
    let protection = sealing(&channel_key(1, 0x11));
    let other = NodeId(SENDER.0 ^ 1);
    let (mine, theirs) = (
        protection
            .seal(&pack(SENDER, 3, 128, &[b"same"]).unwrap()[0])
            .unwrap(),
        protection
            .seal(&pack(other, 3, 128, &[b"same"]).unwrap()[0])
            .unwrap(),
    );
    assert_ne!(mine[HEADER_LEN..], theirs[HEADER_LEN..]);
    let mut claimed = mine.clone();
    claimed[8..16].copy_from_slice(&other.0.to_be_bytes());
    assert_eq!(dropped(&protection, &claimed), "bad_tag");
    assert!(protection.open(&mine, now()).is_ok());
}

#[test]
fn more_senders_than_the_channel_keeps_keys_for_all_open() {
    // Sealed by one protection, opened by another in the reverse order, twice: keys of senders
    // that fell out of the recent ones are derived again, and the same every time.
    let (sender_side, receiver_side) = (
        sealing(&channel_key(1, 0x11)),
        sealing(&channel_key(1, 0x11)),
    );
    let sealed: Vec<(Vec<u8>, Vec<u8>)> = (0..3 * protection::RECENT_SENDERS as u64)
        .map(|index| {
            let plain = pack(NodeId(index), index, 128, &[b"hello"])
                .unwrap()
                .remove(0);
            (sender_side.seal(&plain).unwrap(), plain)
        })
        .collect();
    for _ in 0..2 {
        for (datagram, plain) in sealed.iter().rev() {
            assert_eq!(
                receiver_side.open(datagram, now()).unwrap().as_ref(),
                &plain[..]
            );
        }
    }
}

#[test]
fn short_and_foreign_input_is_malformed_not_a_panic() {
    let key = channel_key(1, 0x11);
    let signer = signing_key(0x22);
    let mut receiver = sealing(&key);
    receiver.trust(signer.public_key());
    let sealed = sealing(&key).seal(&plain_datagrams()[1]).unwrap();
    for len in 0..sealed.len() {
        let result = sealing(&key).open(&sealed[..len], now());
        assert!(result.is_err(), "{len}");
        let mut signed_flag = sealed[..len].to_vec();
        if len > FLAGS_FIELD {
            signed_flag[FLAGS_FIELD] |= wire::FLAG_SIGNED;
        }
        assert!(receiver.open(&signed_flag, now()).is_err(), "{len}");
    }
    assert_eq!(dropped(&receiver, &[0x36, 0x63, 1, 1]), "truncated");
    assert!(sealing(&key).seal(&sealed).is_err(), "sealing twice");
    assert!(sealing(&key).seal(b"not sixcast").is_err());
}

/// Appends `signer`'s fingerprint and signature to `bytes`, as `Protection::seal` does.
fn signed_by(signer: &SigningKey, mut bytes: Vec<u8>) -> Vec<u8> {
    use ed25519_dalek::Signer;
    bytes.extend_from_slice(&signer.public_key().fingerprint().0);
    let mut message = bytes.clone();
    message.extend_from_slice(&GROUP.octets());
    message.extend_from_slice(SIGNATURE_DOMAIN);
    bytes.extend_from_slice(&signer.dalek().sign(&message).to_bytes());
    bytes
}

fn tokened(signer: &SigningKey, token: Token) -> Protection {
    let mut protection = sealing(&channel_key(1, 0x11));
    protection.sign_with(signer.clone());
    protection.present(token).unwrap();
    protection
}

fn trusting_issuer(issuer: &SigningKey) -> Protection {
    let mut protection = sealing(&channel_key(1, 0x11));
    protection.trust_issuer(issuer.public_key());
    protection
}

#[test]
fn tokens_of_trusted_issuers_admit_signers_until_they_expire() {
    let issuer = signing_key(0x70);
    let member = signing_key(0x71);
    let until = now() + Duration::from_secs(60);
    let token = Token::issue(&issuer, member.public_key(), GROUP, until);
    let sender = tokened(&member, token);
    assert_eq!(
        sender.overhead(),
        SEAL_OVERHEAD + SIGNATURE_OVERHEAD + TOKEN_LEN
    );
    let plain = &plain_datagrams()[0];
    let protected = sender.seal(plain).unwrap();
    assert_eq!(protected[FLAGS_FIELD], 0x07);
    let receiver = trusting_issuer(&issuer);
    assert_eq!(
        receiver.open(&protected, now()).unwrap().as_ref(),
        plain.as_slice()
    );
    assert_eq!(
        receiver.open(&protected, until).unwrap().as_ref(),
        plain.as_slice()
    );
    let later = until + Duration::from_secs(1);
    let expired = receiver.open(&protected, later).unwrap_err();
    assert_eq!(expired.reason(), "expired");
    // Trusting the member directly needs no token, expired or not.
    let mut direct = sealing(&channel_key(1, 0x11));
    direct.trust(member.public_key());
    assert!(direct.open(&protected, later).is_ok());
    assert_eq!(
        dropped(&trusting_issuer(&signing_key(0x72)), &protected),
        "untrusted_signer"
    );
    // Without a token, a signer unknown to the receiver is not admitted.
    let mut bare = sealing(&channel_key(1, 0x11));
    bare.sign_with(member.clone());
    assert_eq!(
        dropped(&receiver, &bare.seal(plain).unwrap()),
        "untrusted_signer"
    );
}

#[test]
fn forged_and_misused_tokens_are_refused() {
    let issuer = signing_key(0x70);
    let member = signing_key(0x71);
    let outsider = signing_key(0x73);
    let until = now() + Duration::from_secs(60);
    let token = Token::issue(&issuer, member.public_key(), GROUP, until);
    let mut sender = sealing(&channel_key(1, 0x11));
    let err = sender.present(token).unwrap_err();
    assert_eq!(
        err.kind(),
        crate::ErrorKind::InvalidConfig,
        "no signing key yet"
    );
    sender.sign_with(outsider.clone());
    assert!(sender.present(token).is_err(), "another key's token");
    let elsewhere = Token::issue(&issuer, outsider.public_key(), OTHER_GROUP, until);
    assert!(
        sender.present(elsewhere).is_err(),
        "another channel's token"
    );

    let receiver = trusting_issuer(&issuer);
    let plain = &plain_datagrams()[0];
    let genuine = tokened(&member, token).seal(plain).unwrap();
    let token_at = genuine.len() - SIGNATURE_OVERHEAD - TOKEN_LEN;
    // A later expiry, written into the token: the issuer's signature no longer holds.
    let mut extended = genuine.clone();
    extended[token_at + 55] ^= 0x01;
    assert_eq!(dropped(&receiver, &extended), "bad_signature");
    // The outsider signs its own datagram and presents the member's token with it.
    let mut stolen = plain.clone();
    stolen[FLAGS_FIELD] = wire::FLAG_SIGNED | wire::FLAG_TOKEN;
    stolen.extend_from_slice(&token.to_bytes());
    let stolen = signed_by(&outsider, stolen);
    let mut plain_receiver = Protection::new(GROUP);
    plain_receiver.trust_issuer(issuer.public_key());
    assert_eq!(dropped(&plain_receiver, &stolen), "bad_signature");
    // The same construction by the member itself is accepted: the test above is not vacuous.
    let mut own = plain.clone();
    own[FLAGS_FIELD] = wire::FLAG_SIGNED | wire::FLAG_TOKEN;
    own.extend_from_slice(&token.to_bytes());
    assert!(plain_receiver.open(&signed_by(&member, own), now()).is_ok());
    // A token flag without a signature is not a valid header.
    let mut unsigned = plain.clone();
    unsigned[FLAGS_FIELD] = wire::FLAG_TOKEN;
    assert_eq!(dropped(&Protection::new(GROUP), &unsigned), "unknown_flags");
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
        let _ = receiver.open(&bytes, now());
        let _ = sealing(&key).open(&bytes, now());
        let _ = Protection::new(GROUP).open(&bytes, now());
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
            let opened = receiver.open(&sealed, now()).unwrap();
            proptest::prop_assert_eq!(opened.as_ref(), plain.as_slice());
            proptest::prop_assert!(matches!(
                wire::decode(&opened),
                Ok(Datagram::Messages(_) | Datagram::Fragment(_))
            ));
        }
    }
}

#[test]
fn a_packers_datagrams_are_sealed_and_signed_in_place_as_seal_makes_them() {
    let signer = signing_key(3);
    let mut protection = sealing(&channel_key(1, 0x11));
    protection.sign_with(signer.clone());
    let issuer = signing_key(4);
    let token = Token::issue(&issuer, signer.public_key(), GROUP, now());
    protection.present(token).unwrap();
    // A packer that leaves room for the overhead, as a channel's does.
    let mut packer = wire::Packer::new(SENDER, 1232, 4096).unwrap();
    let mut datagrams = Vec::new();
    packer
        .set_overhead(protection.overhead(), &mut datagrams)
        .unwrap();
    packer.push(b"hello", &mut datagrams).unwrap();
    packer.push(&[7; 3000], &mut datagrams).unwrap();
    packer.flush(&mut datagrams);
    assert_eq!(datagrams.len(), 5, "a batch and four fragments");
    for mut datagram in datagrams {
        let expected = protection.seal(&datagram).unwrap();
        let before = datagram.as_ptr();
        protection.seal_in_place(&mut datagram).unwrap();
        assert_eq!(datagram, expected);
        assert!(datagram.len() <= 1232);
        assert_eq!(datagram.as_ptr(), before, "the datagram was reallocated");
    }
    // Not a plain datagram: refused, and left as it was.
    let mut sealed = protection.seal(&plain_datagrams()[0]).unwrap();
    let copy = sealed.clone();
    assert!(protection.seal_in_place(&mut sealed).is_err());
    assert_eq!(sealed, copy);
}

#[test]
fn a_channels_cached_digest_key_gives_the_defined_digest() {
    let protection = Protection::new(GROUP);
    let datagram = plain_datagrams().remove(0);
    assert_eq!(protection.digest(&datagram), digest(GROUP, &datagram));
    assert_ne!(
        Protection::new(OTHER_GROUP).digest(&datagram),
        digest(GROUP, &datagram)
    );
}

#[test]
fn nacks_and_reports_carry_a_mac_that_only_the_channels_key_holders_accept() {
    let mut nack = Vec::new();
    wire::repair::encode_nack(&mut nack, SENDER, NodeId(9), 40, &[(3, 2)]);
    let sealed = sealing(&channel_key(1, 0x11));
    let mut tagged = nack.clone();
    sealed.tag_control(&mut tagged);
    assert_eq!(tagged.len(), nack.len() + CONTROL_TAG_LEN);
    assert_eq!(sealed.check_control(&tagged), Ok(nack.as_slice()));
    // Another key, the same key on another channel, a changed byte, no MAC, a runt: refused.
    let mut other_channel = Protection::new(OTHER_GROUP);
    other_channel.set_key(&channel_key(1, 0x11));
    for refuser in [&sealing(&channel_key(1, 0x22)), &other_channel] {
        assert_eq!(refuser.check_control(&tagged), Err(DropReason::BadTag));
    }
    let mut changed = tagged.clone();
    changed[HEADER_LEN] ^= 1;
    assert_eq!(sealed.check_control(&changed), Err(DropReason::BadTag));
    assert_eq!(sealed.check_control(&nack), Err(DropReason::BadTag));
    assert_eq!(
        sealed.check_control(&[0x36; 15]),
        Err(DropReason::NotSealed)
    );
    // A channel without keys neither adds nor wants a MAC.
    let plain = Protection::new(GROUP);
    let mut untagged = nack.clone();
    plain.tag_control(&mut untagged);
    assert_eq!(untagged, nack);
    assert_eq!(plain.check_control(&nack), Ok(nack.as_slice()));
}

#[test]
fn during_a_rotation_either_key_authenticates_and_a_member_that_only_accepts_keys_tags_too() {
    let (old, new) = (channel_key(1, 0x11), channel_key(2, 0x22));
    let mut report = Vec::new();
    let status = wire::repair::Status {
        from: SENDER,
        target: NodeId(9),
        group: GROUP,
        position: 41,
    };
    wire::repair::encode_status(&mut report, &status);
    let mut rotating = sealing(&new);
    rotating.add_key(&old);
    let mut from_old = report.clone();
    sealing(&old).tag_control(&mut from_old);
    assert_eq!(rotating.check_control(&from_old), Ok(report.as_slice()));
    // Keys accepted only (no send key): its reports still carry a key's MAC.
    let mut accepting = Protection::new(GROUP);
    accepting.add_key(&old);
    let mut from_accepting = report.clone();
    accepting.tag_control(&mut from_accepting);
    assert_eq!(from_accepting, from_old);
}
