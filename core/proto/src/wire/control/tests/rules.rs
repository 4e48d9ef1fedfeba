//! The rules of each message (signed challenges, group lists, gateways, DATA), what encode
//! refuses, every decode reason, and the MAC.

use super::*;

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
    assert_eq!(Control::Hello(Hello { nonce: 1 }).signed_fields(), None);
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
    let mut bytes = encoded(&Control::ProbeReply(ProbeReply {
        nonce: NONCE,
        heard_beacon: false,
        observed: node(),
    }));
    assert_eq!(bytes[HEADER_LEN + NONCE_LEN], 0);
    bytes[HEADER_LEN + NONCE_LEN] = 2;
    assert_eq!(reason(&bytes), "bad_field");
}

#[test]
fn group_list_rules() {
    // A JOIN of no group makes a client that only sends; a LEAVE of none means nothing.
    assert!(decode(&raw(TYPE_JOIN, &join_body(0, &[]))).is_ok());
    assert_eq!(reason(&raw(TYPE_LEAVE, &join_body(0, &[]))), "bad_count");
    for kind in [TYPE_JOIN, TYPE_LEAVE] {
        assert!(decode(&raw(kind, &join_body(1, &[GROUP]))).is_ok());
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
    let bytes = encoded(&Control::Gateway(Gateway {
        gateway: NodeId(NONCE),
        hold_ms: 0x0102,
        groups: vec![GROUP],
    }));
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
    let empty = Control::Gateway(Gateway {
        gateway: NodeId(1),
        hold_ms: 0,
        groups: Vec::new(),
    });
    assert_eq!(empty.to_vec().unwrap_err().kind(), ErrorKind::InvalidConfig);
}

#[test]
fn data_rules() {
    let bytes = encoded(&Control::Data(Data {
        group: GROUP,
        datagram: b"x",
    }));
    assert_eq!(bytes.len(), DATA_OVERHEAD + 1);
    assert_eq!(reason(&bytes[..DATA_OVERHEAD]), "truncated");
    assert_eq!(reason(&bytes[..DATA_OVERHEAD - 1]), "truncated");
    let mut unicast = bytes.clone();
    unicast[HEADER_LEN] = 0x20;
    assert_eq!(reason(&unicast), "not_multicast");

    let largest = vec![0x55; MAX_DATA_DATAGRAM];
    let message = Control::Data(Data {
        group: GROUP,
        datagram: &largest,
    });
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
            Control::Leave(Leave {
                nonce: 1,
                mac: MAC,
                groups: Vec::new(),
            }),
            ErrorKind::InvalidConfig,
            "bad_count",
        ),
        (
            Control::Leave(Leave {
                nonce: 1,
                mac: MAC,
                groups: vec![GROUP; MAX_GROUPS_PER_MESSAGE + 1],
            }),
            ErrorKind::InvalidConfig,
            "bad_count",
        ),
        (
            Control::Join(Join {
                nonce: 1,
                mac: MAC,
                groups: vec![GROUP, unicast],
            }),
            ErrorKind::InvalidAddress,
            "not_multicast",
        ),
        (
            Control::Data(Data {
                group: unicast,
                datagram: b"x",
            }),
            ErrorKind::InvalidAddress,
            "not_multicast",
        ),
        (
            Control::Data(Data {
                group: GROUP,
                datagram: b"",
            }),
            ErrorKind::InvalidConfig,
            "truncated",
        ),
        (
            Control::Data(Data {
                group: GROUP,
                datagram: &oversized,
            }),
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
    Control::Echo(Echo { nonce: 1 }).encode(&mut out).unwrap();
    Control::Hello(Hello { nonce: 2 }).encode(&mut out).unwrap();
    assert_eq!(out.len(), 4 + 16 + UNVERIFIED_MIN_LEN);
    assert_eq!(&out[..4], b"kept");
    assert_eq!(decode(&out[4..20]), Ok(Control::Echo(Echo { nonce: 1 })));
    assert_eq!(decode(&out[20..]), Ok(Control::Hello(Hello { nonce: 2 })));
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
        raw(TYPE_LEAVE, &join_body(0, &[])),
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
