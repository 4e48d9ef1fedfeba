//! The datagram codec of the core's `wire` module, the datagrams of reliable channels
//! (`wire::repair`), the manifests of signed runs (`wire::manifest`) and the control messages
//! (`wire::control`), for tools and conformance tests.

use std::net::SocketAddrV6;

use sixcast::{
    NodeId,
    wire::{
        self,
        control::{self, Control},
        manifest, repair,
    },
};

use crate::{
    addr::parse_address,
    error::{Result, SixcastError},
};

/// One decoded datagram.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Datagram {
    /// One or more whole messages with consecutive sequence numbers.
    Messages {
        /// The sending node, 16 hex digits.
        sender: String,
        /// Sequence number of the first message.
        first_seq: u64,
        /// The messages in the order they were queued.
        messages: Vec<BatchRecord>,
    },
    /// One piece of a message too large for a single datagram.
    Fragment {
        /// The sending node, 16 hex digits.
        sender: String,
        /// Sequence number of the whole message.
        seq: u64,
        /// Length of the whole message.
        total_len: u32,
        /// Where the chunk starts in the whole message.
        offset: u32,
        /// Position of this fragment among the message's fragments, from 0.
        index: u16,
        /// Number of fragments of the message.
        count: u16,
        /// The bytes of the message from `offset` on.
        chunk: Vec<u8>,
    },
}

/// One whole message of a `Datagram.Messages` batch.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BatchRecord {
    /// The message's sequence number.
    pub seq: u64,
    /// The message.
    pub payload: Vec<u8>,
}

/// Decodes one received datagram. Fails with `Malformed`, whose message names the stable reason
/// in parentheses, for example `malformed datagram (bad_magic): ...`.
#[uniffi::export]
pub fn decode_datagram(datagram: Vec<u8>) -> Result<Datagram> {
    let decoded = wire::decode(&datagram).map_err(sixcast::Error::from)?;
    Ok(match decoded {
        wire::Datagram::Messages(batch) => Datagram::Messages {
            sender: batch.sender.to_string(),
            first_seq: batch.first_seq,
            messages: batch
                .iter()
                .map(|(seq, payload)| BatchRecord {
                    seq,
                    payload: payload.to_vec(),
                })
                .collect(),
        },
        wire::Datagram::Fragment(fragment) => Datagram::Fragment {
            sender: fragment.sender.to_string(),
            seq: fragment.seq,
            total_len: fragment.total_len,
            offset: fragment.offset,
            index: fragment.index,
            count: fragment.count,
            chunk: fragment.chunk.to_vec(),
        },
    })
}

/// The datagrams a sender with node id `sender` (16 hex digits) whose next sequence number is
/// `first_seq` emits for `messages`, with datagrams of at most `max_datagram` bytes.
///
/// Fails with `InvalidConfig` for a malformed node id or a datagram size outside 128..=65507.
#[uniffi::export]
pub fn pack_messages(
    sender: String,
    first_seq: u64,
    max_datagram: u32,
    messages: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>> {
    let sender: NodeId = sender.parse()?;
    // Saturating is enough: the core rejects sizes over 65507 with a message naming them.
    let max_datagram = usize::try_from(max_datagram).unwrap_or(usize::MAX);
    let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    Ok(wire::pack(sender, first_seq, max_datagram, &messages)?)
}

/// One decoded datagram of a reliable channel (docs/reliability.md): a numbered packet, a parity
/// symbol, a request for repair or a receiver's report.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Repair {
    /// A numbered packet (SEQUENCED).
    Sequenced {
        /// The sending node, 16 hex digits.
        sender: String,
        /// Its number among the sender's packets on the channel, from 0.
        packet: u64,
        /// The datagram it carries: a whole datagram of the channel, possibly sealed or signed.
        inner: Vec<u8>,
    },
    /// A Reed-Solomon parity symbol over a block of packets (PARITY).
    Parity {
        /// The node whose packets it repairs, 16 hex digits.
        sender: String,
        /// The first packet number of the block.
        block_start: u64,
        /// How many packets the block holds.
        block_len: u16,
        /// Which of the block's parity symbols this is, from 0.
        index: u16,
        /// The symbol.
        symbol: Vec<u8>,
    },
    /// A request for repair (NACK).
    Nack {
        /// The receiver asking, 16 hex digits.
        from: String,
        /// The sender asked, 16 hex digits.
        target: String,
        /// How far the receiver has heard the sender (exclusive): the highest packet number or
        /// block end it has heard of.
        heard: u64,
        /// The missing packets, in the order sent.
        ranges: Vec<NackRange>,
    },
    /// A receiver's report of how far it got (STATUS).
    Status {
        /// The receiver reporting, 16 hex digits.
        from: String,
        /// The sender it reports on, 16 hex digits.
        target: String,
        /// The channel's multicast group, IPv6 address text.
        group: String,
        /// The next packet it waits for: it has handed on every one before.
        position: u64,
    },
}

/// One range of missing packets of a `Repair.Nack`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NackRange {
    /// The first missing packet's number.
    pub first: u64,
    /// How many consecutive packets are missing (at least 1).
    pub count: u32,
}

/// Decodes one received datagram of a reliable channel. Fails with `Malformed`, whose message
/// names the stable reason in parentheses, for example `malformed datagram (bad_count): ...`.
#[uniffi::export]
pub fn decode_repair(datagram: Vec<u8>) -> Result<Repair> {
    let decoded = repair::decode(&datagram).map_err(sixcast::Error::from)?;
    Ok(match decoded {
        repair::Repair::Sequenced(packet) => Repair::Sequenced {
            sender: packet.sender.to_string(),
            packet: packet.packet,
            inner: packet.inner.to_vec(),
        },
        repair::Repair::Parity(parity) => Repair::Parity {
            sender: parity.sender.to_string(),
            block_start: parity.block_start,
            block_len: parity.block_len,
            index: parity.index,
            symbol: parity.symbol.to_vec(),
        },
        repair::Repair::Nack(nack) => Repair::Nack {
            from: nack.from.to_string(),
            target: nack.target.to_string(),
            heard: nack.heard,
            ranges: nack
                .ranges()
                .map(|(first, count)| NackRange { first, count })
                .collect(),
        },
        repair::Repair::Status(status) => Repair::Status {
            from: status.from.to_string(),
            target: status.target.to_string(),
            group: status.group.to_string(),
            position: status.position,
        },
    })
}

/// A decoded MANIFEST (docs/security.md, section 7): the digests of the datagrams one signature
/// covers.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Manifest {
    /// The node that sent it and the datagrams it covers, 16 hex digits.
    pub sender: String,
    /// The sender's count of manifests; a repeated copy has the same number.
    pub number: u64,
    /// The digests (16 bytes each), in the order their datagrams were sent.
    pub digests: Vec<Vec<u8>>,
}

/// Decodes one plain (opened) MANIFEST datagram. Fails with `Malformed`, whose message names the
/// stable reason in parentheses, for example `malformed datagram (bad_count): ...`.
#[uniffi::export]
pub fn decode_manifest(datagram: Vec<u8>) -> Result<Manifest> {
    let decoded = manifest::decode(&datagram).map_err(sixcast::Error::from)?;
    Ok(Manifest {
        sender: decoded.sender.to_string(),
        number: decoded.number,
        digests: decoded.digests().map(|digest| digest.to_vec()).collect(),
    })
}

/// A decoded control message (Stratum 0 probes, relay requests, the relay tunnel, gateway
/// announcements): `name` (for example `probe_reply`) and the fields of that message type; the
/// others are null. Nonces are 16 hex digits, socket addresses `[address]:port`, groups IPv6
/// address text.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ControlMessage {
    /// The message type's name, for example `probe_reply`.
    pub name: String,
    /// The message's nonce, 16 hex digits.
    pub nonce: Option<String>,
    /// PROBE: the nonce of the BEACON asked about (all zero for none).
    pub beacon_nonce: Option<String>,
    /// PROBE_REPLY: whether Stratum 0 heard the beacon.
    pub heard_beacon: Option<bool>,
    /// OFFER and CHALLENGE: the relay takes no new clients.
    pub limit: Option<bool>,
    /// OFFER: the offer comes from an SSM repeater.
    pub repeater: Option<bool>,
    /// PROBE_REPLY: the node's address and port as Stratum 0 saw them.
    pub observed: Option<String>,
    /// SOLICIT: the node that asked for relays.
    pub node: Option<String>,
    /// OFFER: where to open the tunnel.
    pub relay: Option<String>,
    /// TEARDOWN: the old address and port.
    pub old: Option<String>,
    /// REBIND: the tunnel's nonce, 16 hex digits.
    pub old_nonce: Option<String>,
    /// REBIND: the MAC the relay issued for the old address (16 bytes).
    pub old_mac: Option<Vec<u8>>,
    /// RELAY_REQUEST and COOKIE: the cookie (16 bytes).
    pub cookie: Option<Vec<u8>>,
    /// CHALLENGE, JOIN, LEAVE and TEARDOWN: the MAC (16 bytes).
    pub mac: Option<Vec<u8>>,
    /// OFFER: per mille of the relay's capacity in use.
    pub load: Option<u16>,
    /// CHALLENGE: how often to refresh the membership, in seconds.
    pub refresh_secs: Option<u16>,
    /// GATEWAY: the announcing gateway's node id, 16 hex digits.
    pub gateway: Option<String>,
    /// GATEWAY: how long the announcement stays valid, in milliseconds (0: withdrawn).
    pub hold_ms: Option<u16>,
    /// JOIN, LEAVE and GATEWAY: the groups.
    pub groups: Option<Vec<String>>,
    /// DATA: the group of the carried datagram.
    pub group: Option<String>,
    /// DATA: the carried sixcast datagram.
    pub datagram: Option<Vec<u8>>,
    /// SIGNED_CHALLENGE: the fingerprint of the relay's identity key, 16 hex digits.
    pub relay_key: Option<String>,
    /// SIGNED_CHALLENGE: the issuer's capability token for the relay's key (128 bytes), if any.
    pub voucher: Option<Vec<u8>>,
    /// SIGNED_CHALLENGE: the relay's Ed25519 signature (64 bytes).
    pub signature: Option<Vec<u8>>,
}

fn nonce_text(nonce: u64) -> String {
    format!("{nonce:016x}")
}

impl From<&Control<'_>> for ControlMessage {
    fn from(message: &Control<'_>) -> Self {
        let fields = message.fields();
        let bytes = |data: &[u8]| data.to_vec();
        Self {
            name: message.name().to_owned(),
            nonce: fields.nonce.map(nonce_text),
            beacon_nonce: fields.beacon_nonce.map(nonce_text),
            heard_beacon: fields.heard_beacon,
            limit: fields.limit,
            repeater: fields.repeater,
            observed: fields.observed.as_ref().map(ToString::to_string),
            node: fields.node.as_ref().map(ToString::to_string),
            relay: fields.relay.as_ref().map(ToString::to_string),
            old: fields.old.as_ref().map(ToString::to_string),
            old_nonce: fields.old_nonce.map(nonce_text),
            old_mac: fields.old_mac.map(|mac| bytes(mac)),
            cookie: fields.cookie.map(|cookie| bytes(cookie)),
            mac: fields.mac.map(|mac| bytes(mac)),
            load: fields.load,
            refresh_secs: fields.refresh_secs,
            gateway: fields.gateway.map(|gateway| nonce_text(gateway.0)),
            hold_ms: fields.hold_ms,
            groups: fields
                .groups
                .map(|groups| groups.iter().map(ToString::to_string).collect()),
            group: fields.group.as_ref().map(ToString::to_string),
            datagram: fields.datagram.map(bytes),
            relay_key: fields.relay_key.as_ref().map(ToString::to_string),
            voucher: fields.voucher.map(|voucher| bytes(voucher)),
            signature: fields.signature.map(|signature| bytes(signature)),
        }
    }
}

/// Decodes one received control message. Fails with `Malformed`, whose message names the stable
/// reason in parentheses, for example `malformed datagram (short_unverified): ...`.
#[uniffi::export]
pub fn decode_control(datagram: Vec<u8>) -> Result<ControlMessage> {
    let message = control::decode(&datagram).map_err(sixcast::Error::from)?;
    Ok(ControlMessage::from(&message))
}

/// The 16-byte cookie or challenge MAC of peer `address` (IPv6 text) and `port` with `nonce`
/// (16 hex digits) under the 32-byte `secret`. Fails with `InvalidConfig` for a secret of
/// another length or a malformed nonce, `InvalidAddress` for a bad address.
#[uniffi::export]
pub fn control_mac(secret: Vec<u8>, address: String, port: u16, nonce: String) -> Result<Vec<u8>> {
    let secret: &[u8; control::SECRET_LEN] = secret.as_slice().try_into().map_err(|_| {
        SixcastError::InvalidConfig(format!(
            "secret must be {} bytes, not {}",
            control::SECRET_LEN,
            secret.len()
        ))
    })?;
    let ip = parse_address(&address)?;
    let nonce = parse_nonce(&nonce)?;
    Ok(control::mac(secret, SocketAddrV6::new(ip, port, 0, 0), nonce).to_vec())
}

/// A nonce given as exactly 16 hex digits, the way the vectors write them.
fn parse_nonce(text: &str) -> Result<u64> {
    if text.len() == 16
        && text.bytes().all(|byte| byte.is_ascii_hexdigit())
        && let Ok(nonce) = u64::from_str_radix(text, 16)
    {
        return Ok(nonce);
    }
    Err(SixcastError::InvalidConfig(format!(
        "nonce {text:?} is not 16 hex digits"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SixcastError;

    #[test]
    fn packed_messages_decode_back() {
        let messages = vec![b"one".to_vec(), Vec::new()];
        let datagrams = pack_messages("0123456789abcdef".into(), 7, 1232, messages).unwrap();
        assert_eq!(datagrams.len(), 1);
        let expected = Datagram::Messages {
            sender: "0123456789abcdef".into(),
            first_seq: 7,
            messages: vec![
                BatchRecord {
                    seq: 7,
                    payload: b"one".to_vec(),
                },
                BatchRecord {
                    seq: 8,
                    payload: Vec::new(),
                },
            ],
        };
        assert_eq!(decode_datagram(datagrams[0].clone()).unwrap(), expected);
    }

    #[test]
    fn errors_carry_the_reason() {
        let error = decode_datagram(Vec::new()).unwrap_err();
        assert!(
            matches!(&error, SixcastError::Malformed(m) if m.contains("(truncated)")),
            "{error:?}"
        );
        let bad_sender = pack_messages("xyz".into(), 0, 1232, vec![]);
        assert!(matches!(bad_sender, Err(SixcastError::InvalidConfig(_))));
        let repair = decode_repair(b"6c\x01\x07".to_vec()).unwrap_err();
        assert!(
            matches!(&repair, SixcastError::Malformed(m) if m.contains("(truncated)")),
            "{repair:?}"
        );
        let manifest = decode_manifest(b"6c\x01\x07".to_vec()).unwrap_err();
        assert!(
            matches!(&manifest, SixcastError::Malformed(m) if m.contains("(truncated)")),
            "{manifest:?}"
        );
        let control = decode_control(vec![0x36, 0x72, 1]).unwrap_err();
        assert!(
            matches!(&control, SixcastError::Malformed(m) if m.contains("(truncated)")),
            "{control:?}"
        );
    }

    #[test]
    fn control_mac_checks_its_arguments() {
        let mac = control_mac(
            vec![0; 32],
            "2001:db8::7".into(),
            40000,
            "0102030405060708".into(),
        );
        assert_eq!(mac.unwrap().len(), 16);
        for nonce in ["0102", "+102030405060708", "010203040506070g"] {
            let bad = control_mac(vec![0; 32], "2001:db8::7".into(), 1, nonce.into());
            assert!(
                matches!(bad, Err(SixcastError::InvalidConfig(_))),
                "{nonce}"
            );
        }
        let short = control_mac(
            vec![0; 31],
            "2001:db8::7".into(),
            1,
            "0102030405060708".into(),
        );
        assert!(matches!(short, Err(SixcastError::InvalidConfig(_))));
        let address = control_mac(vec![0; 32], "zz".into(), 1, "0102030405060708".into());
        assert!(matches!(address, Err(SixcastError::InvalidAddress(_))));
    }
}
