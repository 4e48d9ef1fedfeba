//! Properties over any input: round trips of any message, and decode never panics.

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
        TYPE_PROBE => Control::Probe(Probe {
            nonce,
            beacon_nonce: f.other_nonce,
        }),
        TYPE_ECHO => Control::Echo(Echo { nonce }),
        TYPE_BEACON => Control::Beacon(Beacon { nonce }),
        TYPE_PROBE_REPLY => Control::ProbeReply(ProbeReply {
            nonce,
            heard_beacon: f.flag,
            observed: f.addr,
        }),
        TYPE_RELAY_REQUEST => Control::RelayRequest(RelayRequest {
            nonce,
            cookie: f.mac,
        }),
        TYPE_COOKIE => Control::Cookie(Cookie {
            nonce,
            cookie: f.mac,
        }),
        TYPE_SOLICIT => Control::Solicit(Solicit {
            nonce,
            node: f.addr,
        }),
        TYPE_OFFER => Control::Offer(Offer {
            nonce,
            relay: f.addr,
            load: f.number,
            limit: f.flag,
            repeater: f.nonce & 1 == 1,
        }),
        TYPE_HELLO => Control::Hello(Hello { nonce }),
        TYPE_CHALLENGE => Control::Challenge(Challenge {
            nonce,
            mac: f.mac,
            refresh_secs: f.number,
            limit: f.flag,
        }),
        TYPE_JOIN => Control::Join(Join {
            nonce,
            mac: f.mac,
            groups: f.groups.clone(),
        }),
        TYPE_LEAVE => Control::Leave(Leave {
            nonce,
            mac: f.mac,
            groups: f.groups.clone(),
        }),
        TYPE_DATA => Control::Data(Data {
            group: f.groups.first().copied().unwrap_or(*f.addr.ip()),
            datagram: &f.datagram,
        }),
        TYPE_KEEPALIVE => Control::Keepalive(Keepalive { nonce }),
        TYPE_GATEWAY => Control::Gateway(Gateway {
            gateway: NodeId(nonce),
            hold_ms: f.number,
            groups: f.groups.clone(),
        }),
        TYPE_TEARDOWN => Control::Teardown(Teardown {
            nonce,
            mac: f.mac,
            old: f.addr,
        }),
        TYPE_REBIND => Control::Rebind(Rebind {
            nonce,
            mac: f.mac,
            old_nonce: f.other_nonce,
            old_mac: f.mac,
        }),
        TYPE_SIGNED_HELLO => Control::SignedHello(SignedHello { nonce }),
        _ => Control::SignedChallenge(SignedChallenge {
            nonce,
            mac: f.mac,
            refresh_secs: f.number,
            limit: f.flag,
            observed: f.addr,
            relay_key: Fingerprint(f.other_nonce.to_be_bytes()),
            voucher: (nonce & 2 == 2).then_some(&[0x42; TOKEN_LEN]),
            signature: [f.mac[0]; SIGNATURE_LEN],
        }),
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
                    Control::Join(_)
                        | Control::Leave(_)
                        | Control::Data(_)
                        | Control::Gateway(_)
                );
                prop_assert!(variable);
                prop_assert!(err.kind() != ErrorKind::Malformed);
                prop_assert!(decode(&bytes).is_err());
            }
        }
    }
}
