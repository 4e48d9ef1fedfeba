//! The decode cases of `control.json`: datagrams built by hand, field by field, independently
//! of the library's encoder, with what decoding each must give.

use super::*;

/// A header written field by field, independently of the library's encoder.
pub(super) fn header(version: u8, kind: u8, flags: u8, reserved: [u8; 3]) -> Vec<u8> {
    let mut bytes = b"6r".to_vec();
    bytes.extend([version, kind, flags]);
    bytes.extend(reserved);
    bytes
}

pub(super) fn raw(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = header(1, kind, 0, [0; 3]);
    bytes.extend(body);
    bytes
}

pub(super) fn padded(mut bytes: Vec<u8>, len: usize) -> Vec<u8> {
    bytes.resize(len, 0);
    bytes
}

pub(super) fn nonce_then(rest: &[&[u8]]) -> Vec<u8> {
    let mut body = NONCE.to_be_bytes().to_vec();
    for part in rest {
        body.extend(*part);
    }
    body
}

pub(super) fn socket_bytes(addr: SocketAddrV6) -> Vec<u8> {
    let mut bytes = addr.ip().octets().to_vec();
    bytes.extend(addr.port().to_be_bytes());
    bytes
}

/// A JOIN body with `count` in its count field and `groups` after it.
pub(super) fn join_body(count: u16, groups: &[Ipv6Addr]) -> Vec<u8> {
    let mut body = nonce_then(&[&MAC, &count.to_be_bytes()]);
    for group in groups {
        body.extend(group.octets());
    }
    body
}

/// What decoding a hand-built datagram must give.
pub(super) enum Expected {
    Decoded(Control<'static>),
    Invalid(&'static str),
}

/// A decode case: `(name, why, datagram, (repeated byte, count), expected)`.
pub(super) type DecodeCase = (&'static str, &'static str, Vec<u8>, (u8, usize), Expected);

pub(super) fn decode_cases() -> Vec<DecodeCase> {
    let keepalive = raw(14, &NONCE.to_be_bytes());
    let with = |position: usize, byte: u8| {
        let mut bytes = keepalive.clone();
        bytes[position] = byte;
        bytes
    };
    let probe = padded(raw(1, &nonce_then(&[&OTHER_NONCE.to_be_bytes()])), 64);
    let reply = |heard: u8| raw(4, &nonce_then(&[&[heard], &socket_bytes(node())]));
    let unicast = *node().ip();
    let none = (0, 0);
    let valid =
        |name, why, datagram, message| (name, why, datagram, none, Expected::Decoded(message));
    let invalid =
        |name, why, datagram, reason| (name, why, datagram, none, Expected::Invalid(reason));
    vec![
        valid(
            "flags_and_reserved_ignored",
            "a keepalive with every flag bit and every reserved byte set",
            {
                let mut bytes = header(1, 14, 0xff, [0xff; 3]);
                bytes.extend(NONCE.to_be_bytes());
                bytes
            },
            Control::Keepalive(control::Keepalive { nonce: NONCE }),
        ),
        valid(
            "offer_limit_with_unknown_flags",
            "flags 0xff: LIMIT and REPEATER are set, the other bits are ignored",
            {
                let mut bytes = header(1, 8, 0xff, [0; 3]);
                bytes.extend(nonce_then(&[&socket_bytes(relay()), &[0x03, 0xe8]]));
                bytes
            },
            Control::Offer(control::Offer {
                nonce: NONCE,
                relay: relay(),
                load: 1000,
                limit: true,
                repeater: true,
            }),
        ),
        valid(
            "challenge_unknown_flag_only",
            "flags 0xfe: LIMIT is clear",
            {
                let mut bytes = header(1, 10, 0xfe, [0; 3]);
                bytes.extend(nonce_then(&[&MAC, &[0, 60]]));
                bytes
            },
            Control::Challenge(control::Challenge {
                nonce: NONCE,
                mac: MAC,
                refresh_secs: 60,
                limit: false,
            }),
        ),
        valid(
            "hello_padded_beyond_64",
            "padding may be longer than the minimum, as long as it is zero",
            padded(raw(9, &NONCE.to_be_bytes()), 200),
            Control::Hello(control::Hello { nonce: NONCE }),
        ),
        invalid("empty", "no bytes at all", Vec::new(), "truncated"),
        invalid(
            "truncated_header",
            "7 bytes, one short of a header",
            keepalive[..HEADER_LEN - 1].to_vec(),
            "truncated",
        ),
        invalid(
            "bad_magic_data_datagram",
            "a data datagram (magic \"6c\") is not a control message",
            data_datagram(),
            "bad_magic",
        ),
        invalid(
            "version_2",
            "version byte 2",
            with(2, 2),
            "unsupported_version",
        ),
        invalid("type_0", "type byte 0", with(3, 0), "unknown_type"),
        invalid(
            "type_20",
            "type byte 20, after the last type",
            with(3, 20),
            "unknown_type",
        ),
        (
            "oversized",
            "a DATA of 65508 bytes, one more than a UDP datagram can hold",
            raw(13, &GROUP.octets()),
            (0x55, MAX_DATA_DATAGRAM + 1),
            Expected::Invalid("oversized"),
        ),
        invalid(
            "probe_unpadded",
            "a probe of 24 bytes, its fields without padding",
            probe[..24].to_vec(),
            "short_unverified",
        ),
        invalid(
            "hello_63_bytes",
            "a hello one byte short of the padded minimum",
            padded(raw(9, &NONCE.to_be_bytes()), 63),
            "short_unverified",
        ),
        invalid(
            "signed_hello_64_bytes",
            "a signed hello padded only to the 64 bytes of a plain hello",
            padded(raw(18, &NONCE.to_be_bytes()), UNVERIFIED_MIN_LEN),
            "short_unverified",
        ),
        invalid(
            "signed_hello_one_short",
            "a signed hello one byte short of its padded minimum",
            padded(raw(18, &NONCE.to_be_bytes()), SIGNED_HELLO_MIN_LEN - 1),
            "short_unverified",
        ),
        invalid(
            "signed_challenge_voucher_flag_without_voucher",
            "a signed challenge flagged VOUCHER whose bytes end after the signature",
            {
                let mut bytes = signed_challenge(false, None).to_vec().expect("encodes");
                bytes[4] |= FLAG_VOUCHER;
                bytes
            },
            "truncated",
        ),
        invalid(
            "signed_challenge_trailing_byte",
            "a signed challenge with one byte after its signature",
            {
                let mut bytes = signed_challenge(false, None).to_vec().expect("encodes");
                bytes.push(0);
                bytes
            },
            "trailing_bytes",
        ),
        invalid(
            "relay_request_dirty_padding",
            "the last padding byte of a relay request is 01",
            {
                let mut bytes = padded(raw(5, &nonce_then(&[&[0; MAC_LEN]])), 64);
                bytes[63] = 1;
                bytes
            },
            "bad_padding",
        ),
        invalid(
            "keepalive_cut",
            "a keepalive one byte short",
            keepalive[..15].to_vec(),
            "truncated",
        ),
        invalid(
            "echo_trailing_byte",
            "an echo with one byte after its nonce",
            raw(2, &nonce_then(&[&[0]])),
            "trailing_bytes",
        ),
        invalid(
            "probe_reply_heard_2",
            "heard_beacon must be 0 or 1",
            reply(2),
            "bad_field",
        ),
        invalid(
            "probe_reply_cut",
            "a probe reply without the last port byte",
            reply(1)[..34].to_vec(),
            "truncated",
        ),
        valid(
            "join_no_group",
            "a join of no group makes a client that only sends",
            raw(11, &join_body(0, &[])),
            Control::Join(control::Join {
                nonce: NONCE,
                mac: MAC,
                groups: Vec::new(),
            }),
        ),
        invalid(
            "leave_count_0",
            "a leave must name at least one group",
            raw(12, &join_body(0, &[])),
            "bad_count",
        ),
        invalid(
            "leave_count_65",
            "a leave names at most 64 groups",
            raw(12, &join_body(65, &[GROUP; 65])),
            "bad_count",
        ),
        invalid(
            "join_group_missing",
            "the count says 2 but one group follows",
            raw(11, &join_body(2, &[GROUP])),
            "truncated",
        ),
        invalid(
            "join_extra_group",
            "the count says 1 but two groups follow",
            raw(11, &join_body(1, &[GROUP, GROUP])),
            "trailing_bytes",
        ),
        invalid(
            "join_unicast_group",
            "the second group is a unicast address",
            raw(11, &join_body(2, &[GROUP, unicast])),
            "not_multicast",
        ),
        invalid(
            "data_unicast_group",
            "a relay must never send to a unicast address a client names",
            raw(13, &[&unicast.octets()[..], b"6c"].concat()),
            "not_multicast",
        ),
        invalid(
            "data_empty",
            "a DATA without a datagram",
            raw(13, &GROUP.octets()),
            "truncated",
        ),
        invalid(
            "gateway_count_0",
            "a gateway announcement serves at least one channel",
            raw(16, &nonce_then(&[&[0x05, 0xdc], &[0, 0]])),
            "bad_count",
        ),
        invalid(
            "gateway_unicast_group",
            "a gateway announces channel groups, which are multicast",
            raw(
                16,
                &nonce_then(&[&[0x05, 0xdc], &[0, 1], &unicast.octets()]),
            ),
            "not_multicast",
        ),
        invalid(
            "gateway_extra_group",
            "the count says 1 but two groups follow",
            raw(
                16,
                &nonce_then(&[&[0x05, 0xdc], &[0, 1], &GROUP.octets(), &GROUP.octets()]),
            ),
            "trailing_bytes",
        ),
        invalid(
            "teardown_trailing_byte",
            "a teardown with one byte after the old port",
            raw(15, &nonce_then(&[&MAC, &socket_bytes(node()), &[0]])),
            "trailing_bytes",
        ),
        invalid(
            "rebind_short",
            "a rebind whose old MAC lacks its last byte",
            raw(
                17,
                &nonce_then(&[&MAC, &NONCE.to_be_bytes(), &MAC[..MAC_LEN - 1]]),
            ),
            "truncated",
        ),
    ]
}

/// `datagram` followed by `count` copies of `byte`.
pub(super) fn full_datagram(datagram: &[u8], (byte, count): (u8, usize)) -> Vec<u8> {
    let mut bytes = datagram.to_vec();
    bytes.resize(datagram.len() + count, byte);
    bytes
}
