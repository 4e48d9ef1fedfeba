//! The open cases of `security.json`: datagrams, sealed, signed, both or neither, and
//! changed in one place or another, with what a receiver holding the given keys makes of each.

use super::*;

/// A receiver's setup and a datagram it receives.
pub(super) struct OpenCase {
    pub(super) name: &'static str,
    pub(super) why: &'static str,
    pub(super) group: Ipv6Addr,
    pub(super) keys: Vec<ChannelKey>,
    pub(super) trusted: Vec<PublicKey>,
    pub(super) issuers: Vec<PublicKey>,
    pub(super) datagram: Vec<u8>,
}

fn changed(mut bytes: Vec<u8>, position: usize, change: impl FnOnce(&mut u8)) -> Vec<u8> {
    change(&mut bytes[position]);
    bytes
}

pub(super) fn open_cases(keys: &Keys) -> Vec<OpenCase> {
    let seal = |key: Option<&ChannelKey>, signer: Option<&SigningKey>, plain: &[u8]| {
        protection(GROUP, key.as_slice(), signer, &[])
            .seal(plain)
            .unwrap()
    };
    let sealed = seal(Some(&keys.current), None, &batch());
    let sealed_by_previous = seal(Some(&keys.previous), None, &batch());
    let sealed_fragment = seal(Some(&keys.current), None, &fragment());
    let signed = seal(None, Some(&keys.alice), &batch());
    let both = seal(Some(&keys.current), Some(&keys.alice), &fragment());
    let foreign_group = protection(OTHER_GROUP, &[&keys.current], Some(&keys.alice), &[])
        .seal(&batch())
        .unwrap();
    let wrong_secret = ChannelKey::from_bytes(keys.current.id(), [0x99; 32]);
    let last = |bytes: &[u8]| bytes.len() - 1;
    let fingerprint_at = |bytes: &[u8]| bytes.len() - SIGNATURE_OVERHEAD;
    let stripped = {
        let mut bytes = both[..both.len() - SIGNATURE_OVERHEAD].to_vec();
        bytes[FLAGS_FIELD] = FLAG_SEALED;
        bytes
    };
    let mallory_fingerprint = keys.mallory.public_key().fingerprint().0;
    // Two datagrams sent together by alice: covered, and vouched for by a signed manifest
    // (manifest.json has the manifests themselves).
    let covered_run = {
        let mut run = vec![batch(), batch()];
        run[1][16..24].copy_from_slice(&7u64.to_be_bytes());
        protection(GROUP, &[&keys.current], Some(&keys.alice), &[])
            .seal_batch(&mut run, 1232, 1, &std::sync::atomic::AtomicU64::new(0))
            .unwrap();
        run
    };
    let with_token = |token: &Token| {
        let mut sender = protection(GROUP, &[&keys.current], Some(&keys.dave), &[]);
        sender.present(*token).unwrap();
        sender.seal(&batch()).unwrap()
    };
    vec![
        OpenCase {
            name: "sealed_batch",
            why: "sealed with the current key",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: sealed.clone(),
        },
        OpenCase {
            name: "rotated_key",
            why: "sealed with the previous key, still held during a rotation",
            group: GROUP,
            keys: vec![keys.current.clone(), keys.previous.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: sealed_by_previous.clone(),
        },
        OpenCase {
            name: "sealed_signed_fragment",
            why: "a fragment sealed with the current key and signed by a trusted key",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![keys.alice.public_key(), keys.mallory.public_key()],
            issuers: vec![],
            datagram: both.clone(),
        },
        OpenCase {
            name: "signature_ignored",
            why: "a receiver that trusts no key strips a signature unchecked",
            group: GROUP,
            keys: vec![],
            trusted: vec![],
            issuers: vec![],
            datagram: signed.clone(),
        },
        OpenCase {
            name: "plain_without_keys",
            why: "a channel without keys takes plain datagrams as they are",
            group: GROUP,
            keys: vec![],
            trusted: vec![],
            issuers: vec![],
            datagram: batch(),
        },
        OpenCase {
            name: "no_key_held",
            why: "a receiver without any channel key",
            group: GROUP,
            keys: vec![],
            trusted: vec![],
            issuers: vec![],
            datagram: sealed.clone(),
        },
        OpenCase {
            name: "unknown_key_id",
            why: "sealed with the previous key, which the receiver no longer holds",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: sealed_by_previous,
        },
        OpenCase {
            name: "wrong_secret",
            why: "the key id matches but the secret differs",
            group: GROUP,
            keys: vec![wrong_secret.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: sealed.clone(),
        },
        OpenCase {
            name: "other_group",
            why: "sealed for another channel's group with the same key",
            group: OTHER_GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: sealed.clone(),
        },
        OpenCase {
            name: "ciphertext_changed",
            why: "the last byte (of the tag) is flipped",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: changed(sealed.clone(), last(&sealed), |byte| *byte ^= 1),
        },
        OpenCase {
            name: "seq_changed",
            why: "the header's sequence number is part of the nonce and associated data",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: changed(sealed.clone(), HEADER_LEN - 1, |byte| *byte ^= 1),
        },
        OpenCase {
            name: "fragment_offset_changed",
            why: "the clear fragment fields are associated data",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: changed(
                sealed_fragment.clone(),
                HEADER_LEN + KEY_ID_LEN + 7,
                |byte| *byte ^= 1,
            ),
        },
        OpenCase {
            name: "plain_on_sealed_channel",
            why: "a channel with a key refuses plain datagrams",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: batch(),
        },
        OpenCase {
            name: "unsigned_on_signed_channel",
            why: "a channel that trusts keys refuses unsigned datagrams",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![keys.alice.public_key()],
            issuers: vec![],
            datagram: sealed.clone(),
        },
        OpenCase {
            name: "signature_stripped",
            why: "the trailer is cut off and the SIGNED flag cleared",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![keys.alice.public_key()],
            issuers: vec![],
            datagram: stripped.clone(),
        },
        OpenCase {
            name: "signature_stripped_unchecked",
            why: "even a receiver that requires no signature notices: the flags are sealed",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: stripped,
        },
        OpenCase {
            name: "untrusted_signer",
            why: "signed by a key the receiver does not trust",
            group: GROUP,
            keys: vec![],
            trusted: vec![keys.mallory.public_key()],
            issuers: vec![],
            datagram: signed.clone(),
        },
        OpenCase {
            name: "signature_changed",
            why: "the last byte of the signature is flipped",
            group: GROUP,
            keys: vec![],
            trusted: vec![keys.alice.public_key()],
            issuers: vec![],
            datagram: changed(signed.clone(), last(&signed), |byte| *byte ^= 1),
        },
        OpenCase {
            name: "payload_changed_under_signature",
            why: "a payload byte of a signed plain datagram is flipped",
            group: GROUP,
            keys: vec![],
            trusted: vec![keys.alice.public_key()],
            issuers: vec![],
            datagram: changed(signed.clone(), HEADER_LEN + 1, |byte| *byte ^= 1),
        },
        OpenCase {
            name: "fingerprint_of_another_trusted_key",
            why: "alice's signature under mallory's fingerprint",
            group: GROUP,
            keys: vec![],
            trusted: vec![keys.alice.public_key(), keys.mallory.public_key()],
            issuers: vec![],
            datagram: {
                let mut bytes = signed.clone();
                let at = fingerprint_at(&bytes);
                bytes[at..at + FINGERPRINT_LEN].copy_from_slice(&mallory_fingerprint);
                bytes
            },
        },
        OpenCase {
            name: "signed_for_other_group",
            why: "sealed and signed for another group: the seal fails first",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![keys.alice.public_key()],
            issuers: vec![],
            datagram: foreign_group,
        },
        OpenCase {
            name: "sealed_too_short",
            why: "a sealed header and key id but no room for the tag",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: sealed[..HEADER_LEN + KEY_ID_LEN + TAG_LEN - 1].to_vec(),
        },
        OpenCase {
            name: "signed_too_short",
            why: "the SIGNED flag on a datagram shorter than header and trailer",
            group: GROUP,
            keys: vec![],
            trusted: vec![keys.alice.public_key()],
            issuers: vec![],
            datagram: changed(batch(), FLAGS_FIELD, |flags| {
                *flags = FLAG_SIGNED;
            }),
        },
        OpenCase {
            name: "unknown_flag",
            why: "flag 0x08 is not defined",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: changed(sealed, FLAGS_FIELD, |flags| *flags |= 0x08),
        },
        OpenCase {
            name: "token_admits",
            why: "signed by dave, trusted by nobody, presenting carol's token; carol is trusted",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![keys.carol.public_key()],
            datagram: with_token(&keys.token),
        },
        OpenCase {
            name: "token_expired",
            why: "the same with a token that expired a second before now",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![keys.carol.public_key()],
            datagram: with_token(&keys.expired_token),
        },
        OpenCase {
            name: "token_untrusted_issuer",
            why: "the receiver trusts another issuer",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![keys.mallory.public_key()],
            datagram: with_token(&keys.token),
        },
        OpenCase {
            name: "token_changed",
            why: "the token's expiry was raised after carol signed it",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![keys.carol.public_key()],
            datagram: {
                let mut bytes = with_token(&keys.token);
                let expiry = bytes.len() - SIGNATURE_OVERHEAD - TOKEN_LEN + 55;
                bytes[expiry] ^= 0x01;
                bytes
            },
        },
        OpenCase {
            name: "covered_needs_its_manifest",
            why: "flagged COVERED: alone it carries no signature; a receiver holds it until a \
                  verified manifest lists its digest (manifest.json)",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![keys.alice.public_key()],
            issuers: vec![],
            datagram: covered_run[0].clone(),
        },
        OpenCase {
            name: "covered_unchecked",
            why: "a receiver that trusts no key takes a COVERED datagram as it takes a signed one",
            group: GROUP,
            keys: vec![keys.current.clone()],
            trusted: vec![],
            issuers: vec![],
            datagram: covered_run[1].clone(),
        },
        OpenCase {
            name: "token_without_signature",
            why: "the TOKEN flag is only valid with SIGNED",
            group: GROUP,
            keys: vec![],
            trusted: vec![],
            issuers: vec![keys.carol.public_key()],
            datagram: changed(batch(), FLAGS_FIELD, |flags| *flags = FLAG_TOKEN),
        },
    ]
}
