//! The encode cases of `control.json`: messages whose encoding the vectors fix (every type,
//! each field at telling values), and messages that must not encode.

use super::*;

/// Messages whose encoding the vectors fix: every type, and each field at telling values.
pub(super) fn encode_cases<'a>(
    datagram: &'a [u8],
    voucher: &'a [u8; TOKEN_LEN],
) -> Vec<(&'static str, Control<'a>)> {
    let most_groups: Vec<Ipv6Addr> = (0..MAX_GROUPS_PER_MESSAGE)
        .map(|i| {
            Ipv6Addr::new(
                0xff1e,
                0,
                0,
                0,
                0,
                0,
                0x100,
                u16::try_from(i).expect("small"),
            )
        })
        .collect();
    vec![
        (
            "probe_without_beacon",
            Control::Probe(control::Probe {
                nonce: NONCE,
                beacon_nonce: 0,
            }),
        ),
        (
            "probe_asking_about_a_beacon",
            Control::Probe(control::Probe {
                nonce: NONCE,
                beacon_nonce: OTHER_NONCE,
            }),
        ),
        ("echo", Control::Echo(control::Echo { nonce: NONCE })),
        (
            "beacon",
            Control::Beacon(control::Beacon { nonce: OTHER_NONCE }),
        ),
        (
            "probe_reply_heard",
            Control::ProbeReply(control::ProbeReply {
                nonce: NONCE,
                heard_beacon: true,
                observed: node(),
            }),
        ),
        (
            "probe_reply_not_heard_behind_nat",
            Control::ProbeReply(control::ProbeReply {
                nonce: NONCE,
                heard_beacon: false,
                observed: SocketAddrV6::new(
                    Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0x99),
                    61_234,
                    0,
                    0,
                ),
            }),
        ),
        (
            "relay_request_first_try",
            Control::RelayRequest(control::RelayRequest {
                nonce: NONCE,
                cookie: [0; MAC_LEN],
            }),
        ),
        (
            "relay_request_with_cookie",
            Control::RelayRequest(control::RelayRequest {
                nonce: NONCE,
                cookie: MAC,
            }),
        ),
        (
            "cookie",
            Control::Cookie(control::Cookie {
                nonce: NONCE,
                cookie: MAC,
            }),
        ),
        (
            "solicit",
            Control::Solicit(control::Solicit {
                nonce: NONCE,
                node: node(),
            }),
        ),
        (
            "offer",
            Control::Offer(control::Offer {
                nonce: NONCE,
                relay: relay(),
                load: 250,
                limit: false,
                repeater: false,
            }),
        ),
        (
            "offer_at_limit",
            Control::Offer(control::Offer {
                nonce: NONCE,
                relay: relay(),
                load: 1000,
                limit: true,
                repeater: false,
            }),
        ),
        (
            "offer_from_a_repeater",
            Control::Offer(control::Offer {
                nonce: NONCE,
                relay: relay(),
                load: 10,
                limit: false,
                repeater: true,
            }),
        ),
        ("hello", Control::Hello(control::Hello { nonce: NONCE })),
        (
            "challenge",
            Control::Challenge(control::Challenge {
                nonce: NONCE,
                mac: MAC,
                refresh_secs: 60,
                limit: false,
            }),
        ),
        (
            "challenge_answering_hello",
            Control::Challenge(control::Challenge {
                nonce: NONCE,
                mac: control::mac(&counting_secret(), node(), NONCE),
                refresh_secs: 60,
                limit: false,
            }),
        ),
        (
            "challenge_at_limit",
            Control::Challenge(control::Challenge {
                nonce: NONCE,
                mac: MAC,
                refresh_secs: 0x0102,
                limit: true,
            }),
        ),
        (
            "join_one_group",
            Control::Join(control::Join {
                nonce: NONCE,
                mac: control::mac(&counting_secret(), node(), NONCE),
                groups: vec![GROUP],
            }),
        ),
        (
            "join_no_group",
            Control::Join(control::Join {
                nonce: NONCE,
                mac: MAC,
                groups: Vec::new(),
            }),
        ),
        (
            "join_most_groups",
            Control::Join(control::Join {
                nonce: NONCE,
                mac: MAC,
                groups: most_groups,
            }),
        ),
        (
            "leave_two_groups",
            Control::Leave(control::Leave {
                nonce: NONCE,
                mac: MAC,
                groups: vec![GROUP, RELAYED_GROUP],
            }),
        ),
        (
            "data",
            Control::Data(control::Data {
                group: GROUP,
                datagram,
            }),
        ),
        (
            "data_one_byte",
            Control::Data(control::Data {
                group: RELAYED_GROUP,
                datagram: &datagram[..1],
            }),
        ),
        (
            "keepalive",
            Control::Keepalive(control::Keepalive { nonce: u64::MAX }),
        ),
        (
            "teardown",
            Control::Teardown(control::Teardown {
                nonce: NONCE,
                mac: MAC,
                old: node(),
            }),
        ),
        (
            "gateway",
            Control::Gateway(control::Gateway {
                gateway: NodeId(OTHER_NONCE),
                hold_ms: 1500,
                groups: vec![GROUP],
            }),
        ),
        (
            "gateway_withdrawn",
            Control::Gateway(control::Gateway {
                gateway: NodeId(NONCE),
                hold_ms: 0,
                groups: vec![GROUP, RELAYED_GROUP],
            }),
        ),
        (
            "rebind",
            Control::Rebind(control::Rebind {
                nonce: OTHER_NONCE,
                mac: MAC,
                old_nonce: NONCE,
                old_mac: [0x5c; MAC_LEN],
            }),
        ),
        (
            "signed_hello",
            Control::SignedHello(control::SignedHello { nonce: NONCE }),
        ),
        ("signed_challenge", signed_challenge(false, None)),
        ("signed_challenge_at_limit", signed_challenge(true, None)),
        (
            "signed_challenge_vouched",
            signed_challenge(false, Some(voucher)),
        ),
    ]
}

/// Messages that must not encode, with the error kind.
pub(super) fn refused_cases() -> Vec<(&'static str, Control<'static>, &'static str)> {
    let unicast = *node().ip();
    vec![
        (
            "leave_no_group",
            Control::Leave(control::Leave {
                nonce: NONCE,
                mac: MAC,
                groups: Vec::new(),
            }),
            "InvalidConfig",
        ),
        (
            "leave_too_many_groups",
            Control::Leave(control::Leave {
                nonce: NONCE,
                mac: MAC,
                groups: vec![GROUP; MAX_GROUPS_PER_MESSAGE + 1],
            }),
            "InvalidConfig",
        ),
        (
            "join_unicast_group",
            Control::Join(control::Join {
                nonce: NONCE,
                mac: MAC,
                groups: vec![GROUP, unicast],
            }),
            "InvalidAddress",
        ),
        (
            "data_unicast_group",
            Control::Data(control::Data {
                group: unicast,
                datagram: b"6c",
            }),
            "InvalidAddress",
        ),
        (
            "gateway_no_group",
            Control::Gateway(control::Gateway {
                gateway: NodeId(1),
                hold_ms: 1500,
                groups: Vec::new(),
            }),
            "InvalidConfig",
        ),
        (
            "gateway_unicast_group",
            Control::Gateway(control::Gateway {
                gateway: NodeId(1),
                hold_ms: 1500,
                groups: vec![unicast],
            }),
            "InvalidAddress",
        ),
        (
            "data_empty_datagram",
            Control::Data(control::Data {
                group: GROUP,
                datagram: b"",
            }),
            "InvalidConfig",
        ),
    ]
}
