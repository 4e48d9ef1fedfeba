//! Round trips, layouts, sizes, headers and padding; each message's rules in `rules.rs`,
//! properties over any input in `properties.rs`.

use super::*;
use crate::{
    error::{Error, ErrorKind},
    wire::DecodeError,
};

const NONCE: u64 = 0x0102_0304_0506_0708;
const MAC: Mac = [0xab; MAC_LEN];
const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x42);
const DATAGRAM: &[u8] = b"6c-datagram";

fn node() -> SocketAddrV6 {
    SocketAddrV6::new(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7), 40_000, 0, 0)
}

/// One message of every type (two for those with a LIMIT flag).
fn samples() -> Vec<Control<'static>> {
    vec![
        Control::Probe(Probe {
            nonce: NONCE,
            beacon_nonce: 0,
        }),
        Control::Echo(Echo { nonce: NONCE }),
        Control::Beacon(Beacon { nonce: NONCE }),
        Control::ProbeReply(ProbeReply {
            nonce: NONCE,
            heard_beacon: true,
            observed: node(),
        }),
        Control::RelayRequest(RelayRequest {
            nonce: NONCE,
            cookie: [0; MAC_LEN],
        }),
        Control::Cookie(Cookie {
            nonce: NONCE,
            cookie: MAC,
        }),
        Control::Solicit(Solicit {
            nonce: NONCE,
            node: node(),
        }),
        Control::Offer(Offer {
            nonce: NONCE,
            relay: node(),
            load: 250,
            limit: false,
            repeater: false,
        }),
        Control::Offer(Offer {
            nonce: NONCE,
            relay: node(),
            load: 0,
            limit: false,
            repeater: true,
        }),
        Control::Offer(Offer {
            nonce: NONCE,
            relay: node(),
            load: 1000,
            limit: true,
            repeater: false,
        }),
        Control::Hello(Hello { nonce: NONCE }),
        Control::Challenge(Challenge {
            nonce: NONCE,
            mac: MAC,
            refresh_secs: 60,
            limit: false,
        }),
        Control::Challenge(Challenge {
            nonce: NONCE,
            mac: MAC,
            refresh_secs: 60,
            limit: true,
        }),
        Control::Join(Join {
            nonce: NONCE,
            mac: MAC,
            groups: vec![GROUP, Ipv6Addr::new(0xff1e, 0x8000, 0, 0, 0, 0, 0, 0x42)],
        }),
        Control::Leave(Leave {
            nonce: NONCE,
            mac: MAC,
            groups: vec![GROUP],
        }),
        Control::Data(Data {
            group: GROUP,
            datagram: DATAGRAM,
        }),
        Control::Keepalive(Keepalive { nonce: NONCE }),
        Control::Teardown(Teardown {
            nonce: NONCE,
            mac: MAC,
            old: node(),
        }),
        Control::Gateway(Gateway {
            gateway: NodeId(NONCE),
            hold_ms: 1500,
            groups: vec![GROUP],
        }),
        Control::Rebind(Rebind {
            nonce: NONCE,
            mac: MAC,
            old_nonce: 0x1112_1314_1516_1718,
            old_mac: [0xcd; MAC_LEN],
        }),
        Control::SignedHello(SignedHello { nonce: NONCE }),
        signed_challenge(false),
        signed_challenge(true),
        vouched_challenge(),
    ]
}

fn signed_challenge(limit: bool) -> Control<'static> {
    Control::SignedChallenge(SignedChallenge {
        nonce: NONCE,
        mac: MAC,
        refresh_secs: 60,
        limit,
        observed: node(),
        relay_key: Fingerprint([0x5a; FINGERPRINT_LEN]),
        voucher: None,
        signature: [0xee; SIGNATURE_LEN],
    })
}

fn vouched_challenge() -> Control<'static> {
    let mut challenge = signed_challenge(false);
    if let Control::SignedChallenge(SignedChallenge { voucher, .. }) = &mut challenge {
        *voucher = Some(&[0x7c; TOKEN_LEN]);
    }
    challenge
}

fn encoded(message: &Control<'_>) -> Vec<u8> {
    message.to_vec().expect("a valid message encodes")
}

fn reason(bytes: &[u8]) -> &'static str {
    decode(bytes).expect_err("must be rejected").reason()
}

/// A header of `kind` followed by `body`, written independently of the encoder.
fn raw(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![b'6', b'r', VERSION, kind, 0, 0, 0, 0];
    bytes.extend_from_slice(body);
    bytes
}

fn padded(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.resize(UNVERIFIED_MIN_LEN, 0);
    bytes
}

/// A JOIN (type 11) body with `count` in the count field and `groups` after it.
fn join_body(count: u16, groups: &[Ipv6Addr]) -> Vec<u8> {
    let mut body = NONCE.to_be_bytes().to_vec();
    body.extend_from_slice(&MAC);
    body.extend_from_slice(&count.to_be_bytes());
    for group in groups {
        body.extend_from_slice(&group.octets());
    }
    body
}

#[test]
fn every_message_round_trips() {
    let mut seen = Vec::new();
    for message in samples() {
        let bytes = encoded(&message);
        assert_eq!(bytes.len(), message.encoded_len(), "{message:?}");
        assert_eq!(&bytes[..2], b"6r");
        assert_eq!((bytes[2], bytes[3]), (VERSION, message.type_code()));
        assert_eq!(decode(&bytes), Ok(message.clone()));
        assert!(is_control(&bytes));
        seen.push(message.type_code());
    }
    seen.dedup();
    assert_eq!(seen, (TYPE_PROBE..=TYPE_LAST).collect::<Vec<_>>());
}

#[test]
fn encoded_layout_matches_the_documentation() {
    let probe = encoded(&Control::Probe(Probe {
        nonce: NONCE,
        beacon_nonce: 0x1112_1314_1516_1718,
    }));
    let mut expected = raw(TYPE_PROBE, &NONCE.to_be_bytes());
    expected.extend_from_slice(&0x1112_1314_1516_1718u64.to_be_bytes());
    assert_eq!(probe, padded(expected));

    let offer = encoded(&Control::Offer(Offer {
        nonce: NONCE,
        relay: node(),
        load: 0x0102,
        limit: true,
        repeater: true,
    }));
    let mut expected = raw(TYPE_OFFER, &NONCE.to_be_bytes());
    expected[4] = FLAG_LIMIT | FLAG_REPEATER;
    expected.extend_from_slice(&node().ip().octets());
    expected.extend_from_slice(&[0x9c, 0x40, 0x01, 0x02]);
    assert_eq!(offer, expected);

    let reply = encoded(&Control::ProbeReply(ProbeReply {
        nonce: NONCE,
        heard_beacon: true,
        observed: node(),
    }));
    assert_eq!(reply[16], 1);
    assert_eq!(&reply[17..33], &node().ip().octets());
}

#[test]
fn encoded_lengths_match_the_size_table() {
    let lengths: Vec<(&str, usize)> = samples()
        .iter()
        .map(|message| (message.name(), encoded(message).len()))
        .collect();
    let expected = [
        ("probe", 64),
        ("echo", 16),
        ("beacon", 16),
        ("probe_reply", 35),
        ("relay_request", 64),
        ("cookie", 32),
        ("solicit", 34),
        ("offer", 36),
        ("offer", 36),
        ("offer", 36),
        ("hello", 64),
        ("challenge", 34),
        ("challenge", 34),
        ("join", 34 + 2 * 16),
        ("leave", 34 + 16),
        ("data", 24 + DATAGRAM.len()),
        ("keepalive", 16),
        ("teardown", 50),
        ("gateway", 20 + 16),
        ("rebind", 56),
        ("signed_hello", 252),
        ("signed_challenge", 124),
        ("signed_challenge", 124),
        ("signed_challenge", 252),
    ];
    assert_eq!(lengths, expected);
    let largest_join = Control::Join(Join {
        nonce: 0,
        mac: MAC,
        groups: vec![GROUP; MAX_GROUPS_PER_MESSAGE],
    });
    assert_eq!(encoded(&largest_join).len(), 1058);
}

/// The amplification promise: every answer to a message from an unverified address is at
/// most as long as the (padded) message it answers, whatever its field values.
#[test]
fn answers_to_unverified_senders_are_never_longer_than_the_request() {
    let requests = [
        Control::Probe(Probe {
            nonce: 0,
            beacon_nonce: 0,
        }),
        Control::RelayRequest(RelayRequest {
            nonce: 0,
            cookie: [0; MAC_LEN],
        }),
        Control::Hello(Hello { nonce: 0 }),
    ];
    for request in &requests {
        assert!(request.is_padded());
        assert_eq!(encoded(request).len(), UNVERIFIED_MIN_LEN, "{request:?}");
    }
    let signed_hello = encoded(&Control::SignedHello(SignedHello { nonce: 0 }));
    let signed_answer = encoded(&Control::SignedChallenge(SignedChallenge {
        nonce: u64::MAX,
        mac: [0xff; MAC_LEN],
        refresh_secs: u16::MAX,
        limit: true,
        observed: SocketAddrV6::new(Ipv6Addr::from(u128::MAX), u16::MAX, 0, 0),
        relay_key: Fingerprint([0xff; FINGERPRINT_LEN]),
        voucher: Some(&[0xff; TOKEN_LEN]),
        signature: [0xff; SIGNATURE_LEN],
    }));
    assert_eq!(signed_answer.len(), VOUCHED_CHALLENGE_LEN);
    assert!(signed_answer.len() <= signed_hello.len());
    assert_eq!(signed_hello.len(), SIGNED_HELLO_MIN_LEN);
    let far = SocketAddrV6::new(Ipv6Addr::from(u128::MAX), u16::MAX, 0, 0);
    // The answers with every field at its largest; only JOIN, LEAVE and DATA vary in length.
    let answers = [
        Control::ProbeReply(ProbeReply {
            nonce: u64::MAX,
            heard_beacon: true,
            observed: far,
        }),
        Control::Echo(Echo { nonce: u64::MAX }),
        Control::Cookie(Cookie {
            nonce: u64::MAX,
            cookie: [0xff; MAC_LEN],
        }),
        Control::Offer(Offer {
            nonce: u64::MAX,
            relay: far,
            load: u16::MAX,
            limit: true,
            repeater: true,
        }),
        Control::Challenge(Challenge {
            nonce: u64::MAX,
            mac: [0xff; MAC_LEN],
            refresh_secs: u16::MAX,
            limit: true,
        }),
    ];
    for answer in &answers {
        assert!(!answer.is_padded());
        let len = encoded(answer).len();
        assert!(
            len <= UNVERIFIED_MIN_LEN,
            "{} is {len} bytes",
            answer.name()
        );
    }
}

#[test]
fn header_errors() {
    let valid = encoded(&Control::Keepalive(Keepalive { nonce: 1 }));
    assert_eq!(reason(&[]), "truncated");
    assert_eq!(reason(&valid[..HEADER_LEN - 1]), "truncated");
    let with = |position: usize, byte: u8| {
        let mut bytes = valid.clone();
        bytes[position] = byte;
        bytes
    };
    assert_eq!(decode(&with(1, b'c')), Err(DecodeError::BadMagic));
    assert_eq!(decode(&with(2, 2)), Err(DecodeError::UnsupportedVersion(2)));
    assert_eq!(decode(&with(3, 0)), Err(DecodeError::UnknownType(0)));
    assert_eq!(decode(&with(3, 20)), Err(DecodeError::UnknownType(20)));
    assert_eq!(reason(&raw(99, &[0; 100])), "unknown_type");
    // A data datagram is not a control datagram.
    let data = super::super::pack(NodeId(1), 0, 128, &[b"x"]).unwrap();
    assert!(!is_control(&data[0]));
    assert_eq!(reason(&data[0]), "bad_magic");
    assert!(!is_control(b"6"));
    assert!(is_control(b"6r"));
}

#[test]
fn flags_and_reserved_bytes_are_ignored_except_limit_and_repeater() {
    for message in samples() {
        let mut bytes = encoded(&message);
        let meaningful = match message {
            Control::Offer(_) => FLAG_LIMIT | FLAG_REPEATER,
            Control::SignedChallenge(_) => FLAG_LIMIT | FLAG_VOUCHER,
            _ => FLAG_LIMIT,
        };
        bytes[4] |= !meaningful;
        bytes[5..8].copy_from_slice(&[0xff; 3]);
        assert_eq!(decode(&bytes), Ok(message.clone()), "{message:?}");
    }
    let mut limited = encoded(&Control::Hello(Hello { nonce: 3 }));
    limited[4] = 0xff;
    assert_eq!(decode(&limited), Ok(Control::Hello(Hello { nonce: 3 })));
}

#[test]
fn padding_rules() {
    for message in samples().iter().filter(|message| message.is_padded()) {
        let bytes = encoded(message);
        let len = message.padded_len();
        assert_eq!(bytes.len(), len);
        assert_eq!(reason(&bytes[..len - 1]), "short_unverified");
        assert_eq!(reason(&bytes[..HEADER_LEN]), "short_unverified");
        let mut dirty = bytes.clone();
        dirty[len - 1] = 1;
        assert_eq!(reason(&dirty), "bad_padding");
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0; 100]);
        assert_eq!(decode(&longer), Ok(message.clone()));
        longer.push(7);
        assert_eq!(reason(&longer), "bad_padding");
    }
    // The first padding byte right after the fields counts too.
    let mut hello = encoded(&Control::Hello(Hello { nonce: 5 }));
    hello[HEADER_LEN + NONCE_LEN] = 0x80;
    assert_eq!(reason(&hello), "bad_padding");
    let mut signed = encoded(&Control::SignedHello(SignedHello { nonce: 5 }));
    signed[HEADER_LEN + NONCE_LEN] = 0x80;
    assert_eq!(reason(&signed), "bad_padding");
    // A SIGNED_HELLO padded only as far as a HELLO could draw an amplified answer.
    let short = padded(raw(TYPE_SIGNED_HELLO, &NONCE.to_be_bytes()));
    assert_eq!(reason(&short), "short_unverified");
    let mut long_enough = short;
    long_enough.resize(SIGNED_HELLO_MIN_LEN, 0);
    assert_eq!(
        decode(&long_enough),
        Ok(Control::SignedHello(SignedHello { nonce: NONCE }))
    );
}

#[test]
fn fixed_length_messages_must_have_exactly_their_length() {
    for message in samples() {
        if message.is_padded() || matches!(message, Control::Data(_)) {
            continue;
        }
        let bytes = encoded(&message);
        assert_eq!(
            reason(&bytes[..bytes.len() - 1]),
            "truncated",
            "{message:?}"
        );
        assert_eq!(reason(&bytes[..HEADER_LEN]), "truncated", "{message:?}");
        let mut longer = bytes;
        longer.push(0);
        assert_eq!(reason(&longer), "trailing_bytes", "{message:?}");
    }
}

mod properties;
mod rules;
