//! Round trips, the rules of each message, and malformed input.

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
        Control::Probe {
            nonce: NONCE,
            beacon_nonce: 0,
        },
        Control::Echo { nonce: NONCE },
        Control::Beacon { nonce: NONCE },
        Control::ProbeReply {
            nonce: NONCE,
            heard_beacon: true,
            observed: node(),
        },
        Control::RelayRequest {
            nonce: NONCE,
            cookie: [0; MAC_LEN],
        },
        Control::Cookie {
            nonce: NONCE,
            cookie: MAC,
        },
        Control::Solicit {
            nonce: NONCE,
            node: node(),
        },
        Control::Offer {
            nonce: NONCE,
            relay: node(),
            load: 250,
            limit: false,
            repeater: false,
        },
        Control::Offer {
            nonce: NONCE,
            relay: node(),
            load: 0,
            limit: false,
            repeater: true,
        },
        Control::Offer {
            nonce: NONCE,
            relay: node(),
            load: 1000,
            limit: true,
            repeater: false,
        },
        Control::Hello { nonce: NONCE },
        Control::Challenge {
            nonce: NONCE,
            mac: MAC,
            refresh_secs: 60,
            limit: false,
        },
        Control::Challenge {
            nonce: NONCE,
            mac: MAC,
            refresh_secs: 60,
            limit: true,
        },
        Control::Join {
            nonce: NONCE,
            mac: MAC,
            groups: vec![GROUP, Ipv6Addr::new(0xff1e, 0x8000, 0, 0, 0, 0, 0, 0x42)],
        },
        Control::Leave {
            nonce: NONCE,
            mac: MAC,
            groups: vec![GROUP],
        },
        Control::Data {
            group: GROUP,
            datagram: DATAGRAM,
        },
        Control::Keepalive { nonce: NONCE },
        Control::Teardown {
            nonce: NONCE,
            mac: MAC,
            old: node(),
        },
        Control::Gateway {
            gateway: NodeId(NONCE),
            hold_ms: 1500,
            groups: vec![GROUP],
        },
        Control::Rebind {
            nonce: NONCE,
            mac: MAC,
            old_nonce: 0x1112_1314_1516_1718,
            old_mac: [0xcd; MAC_LEN],
        },
        Control::SignedHello { nonce: NONCE },
        signed_challenge(false),
        signed_challenge(true),
        vouched_challenge(),
    ]
}

fn signed_challenge(limit: bool) -> Control<'static> {
    Control::SignedChallenge {
        nonce: NONCE,
        mac: MAC,
        refresh_secs: 60,
        limit,
        observed: node(),
        relay_key: Fingerprint([0x5a; FINGERPRINT_LEN]),
        voucher: None,
        signature: [0xee; SIGNATURE_LEN],
    }
}

fn vouched_challenge() -> Control<'static> {
    let Control::SignedChallenge {
        nonce,
        mac,
        refresh_secs,
        limit,
        observed,
        relay_key,
        signature,
        ..
    } = signed_challenge(false)
    else {
        unreachable!()
    };
    Control::SignedChallenge {
        nonce,
        mac,
        refresh_secs,
        limit,
        observed,
        relay_key,
        voucher: Some(&[0x7c; TOKEN_LEN]),
        signature,
    }
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
    let probe = encoded(&Control::Probe {
        nonce: NONCE,
        beacon_nonce: 0x1112_1314_1516_1718,
    });
    let mut expected = raw(TYPE_PROBE, &NONCE.to_be_bytes());
    expected.extend_from_slice(&0x1112_1314_1516_1718u64.to_be_bytes());
    assert_eq!(probe, padded(expected));

    let offer = encoded(&Control::Offer {
        nonce: NONCE,
        relay: node(),
        load: 0x0102,
        limit: true,
        repeater: true,
    });
    let mut expected = raw(TYPE_OFFER, &NONCE.to_be_bytes());
    expected[4] = FLAG_LIMIT | FLAG_REPEATER;
    expected.extend_from_slice(&node().ip().octets());
    expected.extend_from_slice(&[0x9c, 0x40, 0x01, 0x02]);
    assert_eq!(offer, expected);

    let reply = encoded(&Control::ProbeReply {
        nonce: NONCE,
        heard_beacon: true,
        observed: node(),
    });
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
    let largest_join = Control::Join {
        nonce: 0,
        mac: MAC,
        groups: vec![GROUP; MAX_GROUPS_PER_MESSAGE],
    };
    assert_eq!(encoded(&largest_join).len(), 1058);
}

/// The amplification promise: every answer to a message from an unverified address is at
/// most as long as the (padded) message it answers, whatever its field values.
#[test]
fn answers_to_unverified_senders_are_never_longer_than_the_request() {
    let requests = [
        Control::Probe {
            nonce: 0,
            beacon_nonce: 0,
        },
        Control::RelayRequest {
            nonce: 0,
            cookie: [0; MAC_LEN],
        },
        Control::Hello { nonce: 0 },
    ];
    for request in &requests {
        assert!(request.is_padded());
        assert_eq!(encoded(request).len(), UNVERIFIED_MIN_LEN, "{request:?}");
    }
    let signed_hello = encoded(&Control::SignedHello { nonce: 0 });
    let signed_answer = encoded(&Control::SignedChallenge {
        nonce: u64::MAX,
        mac: [0xff; MAC_LEN],
        refresh_secs: u16::MAX,
        limit: true,
        observed: SocketAddrV6::new(Ipv6Addr::from(u128::MAX), u16::MAX, 0, 0),
        relay_key: Fingerprint([0xff; FINGERPRINT_LEN]),
        voucher: Some(&[0xff; TOKEN_LEN]),
        signature: [0xff; SIGNATURE_LEN],
    });
    assert_eq!(signed_answer.len(), VOUCHED_CHALLENGE_LEN);
    assert!(signed_answer.len() <= signed_hello.len());
    assert_eq!(signed_hello.len(), SIGNED_HELLO_MIN_LEN);
    let far = SocketAddrV6::new(Ipv6Addr::from(u128::MAX), u16::MAX, 0, 0);
    // The answers with every field at its largest; only JOIN, LEAVE and DATA vary in length.
    let answers = [
        Control::ProbeReply {
            nonce: u64::MAX,
            heard_beacon: true,
            observed: far,
        },
        Control::Echo { nonce: u64::MAX },
        Control::Cookie {
            nonce: u64::MAX,
            cookie: [0xff; MAC_LEN],
        },
        Control::Offer {
            nonce: u64::MAX,
            relay: far,
            load: u16::MAX,
            limit: true,
            repeater: true,
        },
        Control::Challenge {
            nonce: u64::MAX,
            mac: [0xff; MAC_LEN],
            refresh_secs: u16::MAX,
            limit: true,
        },
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
    let valid = encoded(&Control::Keepalive { nonce: 1 });
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
            Control::Offer { .. } => FLAG_LIMIT | FLAG_REPEATER,
            Control::SignedChallenge { .. } => FLAG_LIMIT | FLAG_VOUCHER,
            _ => FLAG_LIMIT,
        };
        bytes[4] |= !meaningful;
        bytes[5..8].copy_from_slice(&[0xff; 3]);
        assert_eq!(decode(&bytes), Ok(message.clone()), "{message:?}");
    }
    let mut limited = encoded(&Control::Hello { nonce: 3 });
    limited[4] = 0xff;
    assert_eq!(decode(&limited), Ok(Control::Hello { nonce: 3 }));
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
    let mut hello = encoded(&Control::Hello { nonce: 5 });
    hello[HEADER_LEN + NONCE_LEN] = 0x80;
    assert_eq!(reason(&hello), "bad_padding");
    let mut signed = encoded(&Control::SignedHello { nonce: 5 });
    signed[HEADER_LEN + NONCE_LEN] = 0x80;
    assert_eq!(reason(&signed), "bad_padding");
    // A SIGNED_HELLO padded only as far as a HELLO could draw an amplified answer.
    let short = padded(raw(TYPE_SIGNED_HELLO, &NONCE.to_be_bytes()));
    assert_eq!(reason(&short), "short_unverified");
    let mut long_enough = short;
    long_enough.resize(SIGNED_HELLO_MIN_LEN, 0);
    assert_eq!(
        decode(&long_enough),
        Ok(Control::SignedHello { nonce: NONCE })
    );
}

#[test]
fn fixed_length_messages_must_have_exactly_their_length() {
    for message in samples() {
        if message.is_padded() || matches!(message, Control::Data { .. }) {
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

#[test]
fn signed_challenge_layout_and_signed_fields() {
    let message = signed_challenge(true);
    let bytes = encoded(&message);
    let mut expected = raw(TYPE_SIGNED_CHALLENGE, &NONCE.to_be_bytes());
    expected[4] = FLAG_LIMIT;
    expected.extend_from_slice(&MAC);
    expected.extend_from_slice(&60u16.to_be_bytes());
    expected.extend_from_slice(&node().ip().octets());
    expected.extend_from_slice(&node().port().to_be_bytes());
    expected.extend_from_slice(&[0x5a; FINGERPRINT_LEN]);
    expected.extend_from_slice(&[0xee; SIGNATURE_LEN]);
    assert_eq!(bytes, expected);
    // The signed fields are the body without the signature, with the flags byte after the
    // refresh, and the domain.
    let mut signed = NONCE.to_be_bytes().to_vec();
    signed.extend_from_slice(&MAC);
    signed.extend_from_slice(&60u16.to_be_bytes());
    signed.push(FLAG_LIMIT);
    signed.extend_from_slice(&bytes[HEADER_LEN + 26..HEADER_LEN + 52]);
    signed.extend_from_slice(b"sixcast signed challenge v1");
    assert_eq!(message.signed_fields(), Some(signed));
    assert_ne!(
        signed_challenge(false).signed_fields(),
        message.signed_fields(),
        "the limit flag is signed"
    );
    assert_eq!(Control::Hello { nonce: 1 }.signed_fields(), None);
    // A voucher sits between fingerprint and signature, flagged, and is signed too.
    let vouched = encoded(&vouched_challenge());
    assert_eq!(vouched[4], FLAG_VOUCHER);
    assert_eq!(
        &vouched[HEADER_LEN + 52..HEADER_LEN + 180],
        &[0x7c; TOKEN_LEN]
    );
    let vouched_fields = vouched_challenge().signed_fields().unwrap();
    assert_eq!(vouched_fields[26], FLAG_VOUCHER);
    assert_eq!(&vouched_fields[53..181], &[0x7c; TOKEN_LEN]);
    // Without its flag the voucher's bytes are trailing; with the flag but no voucher the
    // datagram is too short.
    let mut unflagged = vouched.clone();
    unflagged[4] = 0;
    assert_eq!(reason(&unflagged), "trailing_bytes");
    let mut flagged = bytes.clone();
    flagged[4] |= FLAG_VOUCHER;
    assert_eq!(reason(&flagged), "truncated");
    // Every length but the right one is refused.
    assert_eq!(reason(&bytes[..bytes.len() - 1]), "truncated");
    assert_eq!(reason(&bytes[..HEADER_LEN + 50]), "truncated");
    let mut longer = bytes;
    longer.push(0);
    assert_eq!(reason(&longer), "trailing_bytes");
}

#[test]
fn heard_beacon_is_0_or_1() {
    let mut bytes = encoded(&Control::ProbeReply {
        nonce: NONCE,
        heard_beacon: false,
        observed: node(),
    });
    assert_eq!(bytes[HEADER_LEN + NONCE_LEN], 0);
    bytes[HEADER_LEN + NONCE_LEN] = 2;
    assert_eq!(reason(&bytes), "bad_field");
}

#[test]
fn group_list_rules() {
    for kind in [TYPE_JOIN, TYPE_LEAVE] {
        assert!(decode(&raw(kind, &join_body(1, &[GROUP]))).is_ok());
        assert_eq!(reason(&raw(kind, &join_body(0, &[]))), "bad_count");
        let most = vec![GROUP; MAX_GROUPS_PER_MESSAGE];
        assert!(decode(&raw(kind, &join_body(64, &most))).is_ok());
        let too_many = vec![GROUP; MAX_GROUPS_PER_MESSAGE + 1];
        assert_eq!(reason(&raw(kind, &join_body(65, &too_many))), "bad_count");
        assert_eq!(reason(&raw(kind, &join_body(2, &[GROUP]))), "truncated");
        assert_eq!(
            reason(&raw(kind, &join_body(1, &[GROUP, GROUP]))),
            "trailing_bytes"
        );
        let unicast = *node().ip();
        assert_eq!(
            reason(&raw(kind, &join_body(2, &[GROUP, unicast]))),
            "not_multicast"
        );
    }
}

#[test]
fn gateway_layout_and_group_list_rules() {
    let bytes = encoded(&Control::Gateway {
        gateway: NodeId(NONCE),
        hold_ms: 0x0102,
        groups: vec![GROUP],
    });
    let mut body = NONCE.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x01, 0x02, 0x00, 0x01]);
    body.extend_from_slice(&GROUP.octets());
    assert_eq!(bytes, raw(TYPE_GATEWAY, &body));
    let gateway_body = |count: u16, groups: &[Ipv6Addr]| {
        let mut body = NONCE.to_be_bytes().to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&count.to_be_bytes());
        groups
            .iter()
            .for_each(|group| body.extend_from_slice(&group.octets()));
        body
    };
    assert_eq!(
        reason(&raw(TYPE_GATEWAY, &gateway_body(0, &[]))),
        "bad_count"
    );
    let too_many = vec![GROUP; MAX_GROUPS_PER_MESSAGE + 1];
    assert_eq!(
        reason(&raw(TYPE_GATEWAY, &gateway_body(65, &too_many))),
        "bad_count"
    );
    assert_eq!(
        reason(&raw(TYPE_GATEWAY, &gateway_body(1, &[*node().ip()]))),
        "not_multicast"
    );
    assert_eq!(
        reason(&raw(TYPE_GATEWAY, &gateway_body(1, &[GROUP, GROUP]))),
        "trailing_bytes"
    );
    let empty = Control::Gateway {
        gateway: NodeId(1),
        hold_ms: 0,
        groups: Vec::new(),
    };
    assert_eq!(empty.to_vec().unwrap_err().kind(), ErrorKind::InvalidConfig);
}

#[test]
fn data_rules() {
    let bytes = encoded(&Control::Data {
        group: GROUP,
        datagram: b"x",
    });
    assert_eq!(bytes.len(), DATA_OVERHEAD + 1);
    assert_eq!(reason(&bytes[..DATA_OVERHEAD]), "truncated");
    assert_eq!(reason(&bytes[..DATA_OVERHEAD - 1]), "truncated");
    let mut unicast = bytes.clone();
    unicast[HEADER_LEN] = 0x20;
    assert_eq!(reason(&unicast), "not_multicast");

    let largest = vec![0x55; MAX_DATA_DATAGRAM];
    let message = Control::Data {
        group: GROUP,
        datagram: &largest,
    };
    let bytes = encoded(&message);
    assert_eq!(bytes.len(), MAX_DATAGRAM_SIZE);
    assert_eq!(decode(&bytes), Ok(message));
    let mut oversized = bytes;
    oversized.push(0);
    assert_eq!(reason(&oversized), "oversized");
}

#[test]
fn encode_refuses_what_decode_rejects() {
    let unicast = *node().ip();
    let oversized = vec![0; MAX_DATA_DATAGRAM + 1];
    let cases = [
        (
            Control::Join {
                nonce: 1,
                mac: MAC,
                groups: Vec::new(),
            },
            ErrorKind::InvalidConfig,
            "bad_count",
        ),
        (
            Control::Leave {
                nonce: 1,
                mac: MAC,
                groups: vec![GROUP; MAX_GROUPS_PER_MESSAGE + 1],
            },
            ErrorKind::InvalidConfig,
            "bad_count",
        ),
        (
            Control::Join {
                nonce: 1,
                mac: MAC,
                groups: vec![GROUP, unicast],
            },
            ErrorKind::InvalidAddress,
            "not_multicast",
        ),
        (
            Control::Data {
                group: unicast,
                datagram: b"x",
            },
            ErrorKind::InvalidAddress,
            "not_multicast",
        ),
        (
            Control::Data {
                group: GROUP,
                datagram: b"",
            },
            ErrorKind::InvalidConfig,
            "truncated",
        ),
        (
            Control::Data {
                group: GROUP,
                datagram: &oversized,
            },
            ErrorKind::MessageTooLarge,
            "oversized",
        ),
    ];
    for (message, kind, reason_name) in cases {
        let mut out = b"kept".to_vec();
        let err = message.encode(&mut out).expect_err("must be refused");
        assert_eq!(err.kind(), kind, "{message:?}: {err}");
        assert_eq!(out, b"kept", "{message:?}");
        assert_eq!(message.validate().map_err(|err| err.kind()), Err(kind));
        assert!(message.to_vec().is_err());
        // Written anyway, the fields make bytes every receiver rejects.
        let mut unchecked = Vec::new();
        message.write(&mut unchecked);
        assert_eq!(unchecked.len(), message.encoded_len());
        assert_eq!(reason(&unchecked), reason_name, "{message:?}");
    }
}

#[test]
fn encode_appends() {
    let mut out = b"kept".to_vec();
    Control::Echo { nonce: 1 }.encode(&mut out).unwrap();
    Control::Hello { nonce: 2 }.encode(&mut out).unwrap();
    assert_eq!(out.len(), 4 + 16 + UNVERIFIED_MIN_LEN);
    assert_eq!(&out[..4], b"kept");
    assert_eq!(decode(&out[4..20]), Ok(Control::Echo { nonce: 1 }));
    assert_eq!(decode(&out[20..]), Ok(Control::Hello { nonce: 2 }));
}

#[test]
fn every_control_reason_has_a_failing_case_and_reasons_are_distinct() {
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        raw(TYPE_ECHO, &[1])[..2].to_vec(),
        b"6c\x01\x0e\0\0\0\0\0\0\0\0\0\0\0\0".to_vec(),
        {
            let mut bytes = raw(TYPE_ECHO, &[0; 8]);
            bytes[2] = 9;
            bytes
        },
        raw(0, &[0; 8]),
        raw(TYPE_JOIN, &join_body(0, &[])),
        raw(TYPE_ECHO, &[0; 9]),
        raw(TYPE_HELLO, &[0; 8]),
        padded(raw(TYPE_HELLO, &[0; 9]))
            .into_iter()
            .chain([1])
            .collect(),
        raw(TYPE_PROBE_REPLY, &[9; 27]),
        raw(TYPE_DATA, &[0x20; 17]),
        raw(TYPE_DATA, &vec![0xff; MAX_DATAGRAM_SIZE]),
    ];
    let mut reasons: Vec<&str> = cases.iter().map(|bytes| reason(bytes)).collect();
    reasons.sort_unstable();
    reasons.dedup();
    let mut expected = vec![
        "truncated",
        "bad_magic",
        "unsupported_version",
        "unknown_type",
        "bad_count",
        "trailing_bytes",
        "short_unverified",
        "bad_padding",
        "bad_field",
        "not_multicast",
        "oversized",
    ];
    expected.sort_unstable();
    assert_eq!(reasons, expected);

    let all = [
        DecodeError::Truncated,
        DecodeError::BadMagic,
        DecodeError::UnsupportedVersion(2),
        DecodeError::UnknownType(0),
        DecodeError::BadCount,
        DecodeError::SequenceOverflow,
        DecodeError::BadVarint,
        DecodeError::TrailingBytes,
        DecodeError::BadFragment,
        DecodeError::TooLarge,
        DecodeError::ShortUnverified,
        DecodeError::BadPadding,
        DecodeError::BadField,
        DecodeError::NotMulticast,
        DecodeError::Oversized,
    ];
    let mut names: Vec<_> = all.iter().map(DecodeError::reason).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), all.len());
    for err in all {
        assert_eq!(Error::from(err).kind(), ErrorKind::Malformed);
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn mac_depends_on_every_bit_of_its_inputs() {
    let secret = [7; SECRET_LEN];
    let base = mac(&secret, node(), NONCE);
    assert_eq!(base, mac(&secret, node(), NONCE));
    // Flow info and scope id are not part of the MAC.
    let scoped = SocketAddrV6::new(*node().ip(), node().port(), 9, 3);
    assert_eq!(base, mac(&secret, scoped, NONCE));
    let mut macs = vec![base];
    for bit in 0..128 {
        let ip = Ipv6Addr::from(u128::from(*node().ip()) ^ (1 << bit));
        macs.push(mac(
            &secret,
            SocketAddrV6::new(ip, node().port(), 0, 0),
            NONCE,
        ));
    }
    for bit in 0..16 {
        let peer = SocketAddrV6::new(*node().ip(), node().port() ^ (1 << bit), 0, 0);
        macs.push(mac(&secret, peer, NONCE));
    }
    for bit in 0..64 {
        macs.push(mac(&secret, node(), NONCE ^ (1 << bit)));
    }
    for bit in 0..SECRET_LEN * 8 {
        let mut flipped = secret;
        flipped[bit / 8] ^= 1 << (bit % 8);
        macs.push(mac(&flipped, node(), NONCE));
    }
    let total = macs.len();
    assert_eq!(total, 1 + 128 + 16 + 64 + 256);
    macs.sort_unstable();
    macs.dedup();
    assert_eq!(macs.len(), total, "two inputs gave the same MAC");
}

#[test]
fn mac_is_the_truncated_keyed_blake3_of_address_port_and_nonce() {
    let secret = [0x42; SECRET_LEN];
    let mut input = node().ip().octets().to_vec();
    input.extend_from_slice(&node().port().to_be_bytes());
    input.extend_from_slice(&NONCE.to_be_bytes());
    let full = blake3::keyed_hash(&secret, &input);
    assert_eq!(mac(&secret, node(), NONCE)[..], full.as_bytes()[..MAC_LEN]);
}

#[test]
fn mac_matches_compares_every_byte() {
    let a = mac(&[1; SECRET_LEN], node(), 1);
    assert!(mac_matches(&a, &a));
    for position in 0..MAC_LEN {
        let mut b = a;
        b[position] ^= 0x01;
        assert!(!mac_matches(&a, &b), "byte {position}");
        assert!(!mac_matches(&b, &a), "byte {position}");
    }
    assert!(mac_matches(&[0; MAC_LEN], &[0; MAC_LEN]));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn socket_addr() -> impl Strategy<Value = SocketAddrV6> {
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
    }

    fn group() -> impl Strategy<Value = Ipv6Addr> {
        any::<u128>().prop_map(|bits| Ipv6Addr::from(bits | (0xff << 120)))
    }

    /// Field values for any message type; `build` picks the ones its type needs.
    #[derive(Debug, Clone)]
    struct Fields {
        kind: u8,
        nonce: u64,
        other_nonce: u64,
        flag: bool,
        number: u16,
        mac: Mac,
        addr: SocketAddrV6,
        groups: Vec<Ipv6Addr>,
        datagram: Vec<u8>,
    }

    fn fields(groups: impl Strategy<Value = Vec<Ipv6Addr>>) -> impl Strategy<Value = Fields> {
        (
            TYPE_PROBE..=TYPE_LAST,
            any::<u64>(),
            any::<u64>(),
            any::<bool>(),
            any::<u16>(),
            any::<Mac>(),
            socket_addr(),
            groups,
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(
                |(kind, nonce, other_nonce, flag, number, mac, addr, groups, datagram)| Fields {
                    kind,
                    nonce,
                    other_nonce,
                    flag,
                    number,
                    mac,
                    addr,
                    groups,
                    datagram,
                },
            )
    }

    fn build(f: &Fields) -> Control<'_> {
        let nonce = f.nonce;
        match f.kind {
            TYPE_PROBE => Control::Probe {
                nonce,
                beacon_nonce: f.other_nonce,
            },
            TYPE_ECHO => Control::Echo { nonce },
            TYPE_BEACON => Control::Beacon { nonce },
            TYPE_PROBE_REPLY => Control::ProbeReply {
                nonce,
                heard_beacon: f.flag,
                observed: f.addr,
            },
            TYPE_RELAY_REQUEST => Control::RelayRequest {
                nonce,
                cookie: f.mac,
            },
            TYPE_COOKIE => Control::Cookie {
                nonce,
                cookie: f.mac,
            },
            TYPE_SOLICIT => Control::Solicit {
                nonce,
                node: f.addr,
            },
            TYPE_OFFER => Control::Offer {
                nonce,
                relay: f.addr,
                load: f.number,
                limit: f.flag,
                repeater: f.nonce & 1 == 1,
            },
            TYPE_HELLO => Control::Hello { nonce },
            TYPE_CHALLENGE => Control::Challenge {
                nonce,
                mac: f.mac,
                refresh_secs: f.number,
                limit: f.flag,
            },
            TYPE_JOIN => Control::Join {
                nonce,
                mac: f.mac,
                groups: f.groups.clone(),
            },
            TYPE_LEAVE => Control::Leave {
                nonce,
                mac: f.mac,
                groups: f.groups.clone(),
            },
            TYPE_DATA => Control::Data {
                group: f.groups.first().copied().unwrap_or(*f.addr.ip()),
                datagram: &f.datagram,
            },
            TYPE_KEEPALIVE => Control::Keepalive { nonce },
            TYPE_GATEWAY => Control::Gateway {
                gateway: NodeId(nonce),
                hold_ms: f.number,
                groups: f.groups.clone(),
            },
            TYPE_TEARDOWN => Control::Teardown {
                nonce,
                mac: f.mac,
                old: f.addr,
            },
            TYPE_REBIND => Control::Rebind {
                nonce,
                mac: f.mac,
                old_nonce: f.other_nonce,
                old_mac: f.mac,
            },
            TYPE_SIGNED_HELLO => Control::SignedHello { nonce },
            _ => Control::SignedChallenge {
                nonce,
                mac: f.mac,
                refresh_secs: f.number,
                limit: f.flag,
                observed: f.addr,
                relay_key: Fingerprint(f.other_nonce.to_be_bytes()),
                voucher: (nonce & 2 == 2).then_some(&[0x42; TOKEN_LEN]),
                signature: [f.mac[0]; SIGNATURE_LEN],
            },
        }
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decoding_arbitrary_bodies_never_panics_and_re_encodes(
            kind in 0u8..21,
            flags in any::<u8>(),
            body in proptest::collection::vec(any::<u8>(), 0..280),
        ) {
            let mut bytes = raw(kind, &body);
            bytes[4] = flags;
            if let Ok(message) = decode(&bytes) {
                let again = message.to_vec().expect("a decoded message encodes");
                prop_assert_eq!(decode(&again), Ok(message));
            }
        }

        #[test]
        fn valid_messages_round_trip(f in fields(proptest::collection::vec(group(), 1..=64))) {
            let mut f = f;
            f.datagram.push(0x36);
            let message = build(&f);
            let bytes = message.to_vec().expect("valid");
            prop_assert_eq!(bytes.len(), message.encoded_len());
            prop_assert!(is_control(&bytes));
            prop_assert_eq!(decode(&bytes), Ok(message));
        }

        #[test]
        fn every_message_round_trips_or_is_refused_by_both_validate_and_decode(
            f in fields(proptest::collection::vec(
                prop_oneof![group(), any::<u128>().prop_map(Ipv6Addr::from)],
                0..70,
            )),
        ) {
            let message = build(&f);
            let mut bytes = Vec::new();
            message.write(&mut bytes);
            prop_assert_eq!(bytes.len(), message.encoded_len());
            match message.to_vec() {
                Ok(encoded) => {
                    prop_assert_eq!(&encoded, &bytes);
                    prop_assert_eq!(decode(&bytes), Ok(message));
                }
                Err(err) => {
                    let variable = matches!(
                        message,
                        Control::Join { .. }
                            | Control::Leave { .. }
                            | Control::Data { .. }
                            | Control::Gateway { .. }
                    );
                    prop_assert!(variable);
                    prop_assert!(err.kind() != ErrorKind::Malformed);
                    prop_assert!(decode(&bytes).is_err());
                }
            }
        }
    }
}
