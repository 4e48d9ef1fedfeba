//! The datagram codec (the core's `wire` module, with `wire::repair`, `wire::manifest` and
//! `wire::control`), for tools and tests; no I/O.

use std::net::SocketAddrV6;

use napi::{
    Env, Result,
    bindgen_prelude::{Buffer, Either},
};
use napi_derive::napi;
use sixcast::{
    NodeId,
    wire::{
        self,
        control::{self, Control},
        manifest, repair,
    },
};

use crate::{
    addr::{bytes_of, parse_address},
    config::{invalid, whole},
    error::{OrThrow, malformed_to_js},
};

/// Length of the header every datagram starts with.
#[napi]
pub const HEADER_LEN: u32 = wire::HEADER_LEN as u32;
/// Length of a fragment's fields after the header.
#[napi]
pub const FRAGMENT_HEADER_LEN: u32 = wire::FRAGMENT_HEADER_LEN as u32;
/// The protocol version this library speaks.
#[napi]
pub const VERSION: u8 = wire::VERSION;
/// The smallest datagram size a context accepts.
#[napi]
pub const MIN_DATAGRAM_SIZE: u32 = wire::MIN_DATAGRAM_SIZE as u32;
/// The default datagram size: fits the IPv6 minimum MTU.
#[napi]
pub const DEFAULT_DATAGRAM_SIZE: u32 = wire::DEFAULT_DATAGRAM_SIZE as u32;
/// The largest datagram size.
#[napi]
pub const MAX_DATAGRAM_SIZE: u32 = wire::MAX_DATAGRAM_SIZE as u32;
/// The default largest message.
#[napi]
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = wire::DEFAULT_MAX_MESSAGE_SIZE as u32;
/// No configuration allows messages larger than this.
#[napi]
pub const MAX_MESSAGE_SIZE_LIMIT: u32 = wire::MAX_MESSAGE_SIZE_LIMIT as u32;

/// One message of a decoded batch.
#[napi(object, object_from_js = false)]
pub struct DecodedMessage {
    /// The message's sequence number.
    pub seq: f64,
    /// The message bytes.
    pub payload: Buffer,
}

/// A decoded datagram: a batch of whole messages, or one fragment of a large message.
/// Sequence numbers are exact up to `Number.MAX_SAFE_INTEGER`.
#[napi(
    discriminant = "type",
    discriminant_case = "lowercase",
    object_from_js = false
)]
pub enum Datagram {
    /// One or more whole messages with consecutive sequence numbers.
    Messages {
        /// The sending node id, 16 hex digits.
        sender: String,
        /// Sequence number of the first message.
        first_seq: f64,
        /// The messages in order.
        messages: Vec<DecodedMessage>,
    },
    /// One piece of a message too large for a single datagram.
    Fragment {
        /// The sending node id, 16 hex digits.
        sender: String,
        /// Sequence number of the whole message.
        seq: f64,
        /// Length of the whole message.
        total_len: u32,
        /// Where the chunk starts in the whole message.
        offset: u32,
        /// Position of this fragment, from 0.
        index: u32,
        /// Number of fragments of the message.
        count: u32,
        /// The bytes of the message from `offset` on.
        chunk: Buffer,
    },
}

/// Decodes one received datagram. Throws ERR_SIXCAST_MALFORMED, with the stable `reason`
/// (`truncated`, `bad_magic`, ...), when the bytes are not a valid datagram.
#[napi]
pub fn decode_datagram(env: Env, datagram: &[u8]) -> Result<Datagram> {
    // Sequence numbers become JavaScript numbers: exact below 2^53.
    match wire::decode(datagram) {
        Ok(wire::Datagram::Messages(batch)) => Ok(Datagram::Messages {
            sender: batch.sender.to_string(),
            first_seq: batch.first_seq as f64,
            messages: batch
                .iter()
                .map(|(seq, payload)| DecodedMessage {
                    seq: seq as f64,
                    payload: payload.to_vec().into(),
                })
                .collect(),
        }),
        Ok(wire::Datagram::Fragment(fragment)) => Ok(Datagram::Fragment {
            sender: fragment.sender.to_string(),
            seq: fragment.seq as f64,
            total_len: fragment.total_len,
            offset: fragment.offset,
            index: fragment.index.into(),
            count: fragment.count.into(),
            chunk: fragment.chunk.to_vec().into(),
        }),
        Err(err) => Err(malformed_to_js(&env, err)),
    }
}

/// A decoded datagram of a reliable channel (docs/reliability.md): a numbered packet, a parity
/// symbol, a request for repair or a receiver's report. Packet numbers are exact up to
/// `Number.MAX_SAFE_INTEGER`.
#[napi(
    discriminant = "type",
    discriminant_case = "lowercase",
    object_from_js = false
)]
pub enum Repair {
    /// A numbered packet.
    Sequenced {
        /// The sending node id, 16 hex digits.
        sender: String,
        /// Its number among the sender's packets on the channel, from 0.
        packet: f64,
        /// The datagram it carries: a whole datagram of the channel, possibly sealed or signed.
        inner: Buffer,
    },
    /// A Reed-Solomon parity symbol over a block of packets.
    Parity {
        /// The node id whose packets it repairs, 16 hex digits.
        sender: String,
        /// The first packet number of the block.
        block_start: f64,
        /// How many packets the block holds.
        block_len: u32,
        /// Which of the block's parity symbols this is, from 0.
        index: u32,
        /// The symbol.
        symbol: Buffer,
    },
    /// A request for repair.
    Nack {
        /// The node id of the receiver asking, 16 hex digits.
        from: String,
        /// The node id of the sender asked, 16 hex digits.
        target: String,
        /// How far the receiver has heard the sender (exclusive): the highest packet number or
        /// block end it has heard of.
        heard: f64,
        /// The missing packets as `[first, count]` ranges, in the order sent.
        ranges: Vec<(f64, u32)>,
    },
    /// A receiver's report of how far it got.
    Status {
        /// The node id of the receiver reporting, 16 hex digits.
        from: String,
        /// The node id of the sender it reports on, 16 hex digits.
        target: String,
        /// The channel's multicast group, IPv6 address text.
        group: String,
        /// The next packet it waits for: it has handed on every one before.
        position: f64,
    },
}

/// Decodes one received datagram of a reliable channel. Throws ERR_SIXCAST_MALFORMED, with the
/// stable `reason` (`bad_count`, `truncated`, ...), when the bytes are not a valid one.
#[napi]
pub fn decode_repair(env: Env, datagram: &[u8]) -> Result<Repair> {
    // Packet numbers become JavaScript numbers: exact below 2^53.
    match repair::decode(datagram) {
        Ok(repair::Repair::Sequenced(packet)) => Ok(Repair::Sequenced {
            sender: packet.sender.to_string(),
            packet: packet.packet as f64,
            inner: packet.inner.to_vec().into(),
        }),
        Ok(repair::Repair::Parity(parity)) => Ok(Repair::Parity {
            sender: parity.sender.to_string(),
            block_start: parity.block_start as f64,
            block_len: parity.block_len.into(),
            index: parity.index.into(),
            symbol: parity.symbol.to_vec().into(),
        }),
        Ok(repair::Repair::Nack(nack)) => Ok(Repair::Nack {
            from: nack.from.to_string(),
            target: nack.target.to_string(),
            heard: nack.heard as f64,
            ranges: nack
                .ranges()
                .map(|(first, count)| (first as f64, count))
                .collect(),
        }),
        Ok(repair::Repair::Status(status)) => Ok(Repair::Status {
            from: status.from.to_string(),
            target: status.target.to_string(),
            group: status.group.to_string(),
            position: status.position as f64,
        }),
        Err(err) => Err(malformed_to_js(&env, err)),
    }
}

/// Datagram type of a manifest.
#[napi]
pub const TYPE_MANIFEST: u8 = manifest::TYPE_MANIFEST;
/// Bytes of one digest of a manifest.
#[napi]
pub const DIGEST_LEN: u32 = manifest::DIGEST_LEN as u32;
/// Most digests one manifest lists.
#[napi]
pub const MAX_DIGESTS: u32 = manifest::MAX_DIGESTS as u32;

/// A decoded MANIFEST (docs/security.md, section 7): the digests of the datagrams one signature
/// covers. Manifest numbers are exact up to `Number.MAX_SAFE_INTEGER`.
#[napi(object, object_from_js = false)]
pub struct Manifest {
    /// The node id that sent it and the datagrams it covers, 16 hex digits.
    pub sender: String,
    /// The sender's count of manifests; a repeated copy has the same number.
    pub number: f64,
    /// The digests (`DIGEST_LEN` bytes each), in the order their datagrams were sent.
    pub digests: Vec<Buffer>,
}

/// Decodes one plain (opened) MANIFEST datagram. Throws ERR_SIXCAST_MALFORMED, with the stable
/// `reason` (`bad_count`, `truncated`, ...), when the bytes are not a valid one.
#[napi]
pub fn decode_manifest(env: Env, datagram: &[u8]) -> Result<Manifest> {
    // Manifest numbers become JavaScript numbers: exact below 2^53.
    match manifest::decode(datagram) {
        Ok(decoded) => Ok(Manifest {
            sender: decoded.sender.to_string(),
            number: decoded.number as f64,
            digests: decoded
                .digests()
                .map(|digest| digest.to_vec().into())
                .collect(),
        }),
        Err(err) => Err(malformed_to_js(&env, err)),
    }
}

/// Packs `messages` the way a sender with node id `sender` (16 hex digits) whose next sequence
/// number is `firstSeq` would, into datagrams of at most `maxDatagram` bytes; returns every
/// datagram in order.
#[napi]
pub fn pack_messages(
    env: Env,
    sender: String,
    first_seq: f64,
    max_datagram: f64,
    messages: Vec<Either<String, &[u8]>>,
) -> Result<Vec<Buffer>> {
    let packed = (|| {
        let sender: NodeId = sender.parse()?;
        let first_seq = whole("firstSeq", first_seq, u64::MAX)?;
        let max_datagram = whole("maxDatagram", max_datagram, usize::MAX)?;
        let messages: Vec<&[u8]> = messages.iter().map(bytes_of).collect();
        wire::pack(sender, first_seq, max_datagram, &messages)
    })();
    packed
        .map(|datagrams| datagrams.into_iter().map(Buffer::from).collect())
        .or_throw(&env)
}

/// Length of a control message MAC or cookie.
#[napi]
pub const CONTROL_MAC_LEN: u32 = control::MAC_LEN as u32;
/// Length of the secret `controlMac` takes.
#[napi]
pub const CONTROL_SECRET_LEN: u32 = control::SECRET_LEN as u32;

/// A decoded control message (Stratum 0 probes, relay requests, the relay tunnel, gateway
/// announcements): `name` (for example `probe_reply`) and the fields of that message type; the
/// others are absent. Nonces are 16 hex digits, socket addresses `[address]:port`, groups IPv6
/// address text.
#[napi(object, object_from_js = false)]
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
    pub old_mac: Option<Buffer>,
    /// RELAY_REQUEST and COOKIE: the cookie (16 bytes).
    pub cookie: Option<Buffer>,
    /// CHALLENGE, JOIN, LEAVE and TEARDOWN: the MAC (16 bytes).
    pub mac: Option<Buffer>,
    /// OFFER: per mille of the relay's capacity in use.
    pub load: Option<u32>,
    /// CHALLENGE: how often to refresh the membership, in seconds.
    pub refresh_secs: Option<u32>,
    /// GATEWAY: the announcing gateway's node id, 16 hex digits.
    pub gateway: Option<String>,
    /// GATEWAY: how long the announcement stays valid, in milliseconds (0: withdrawn).
    pub hold_ms: Option<u32>,
    /// JOIN, LEAVE and GATEWAY: the groups.
    pub groups: Option<Vec<String>>,
    /// DATA: the group of the carried datagram.
    pub group: Option<String>,
    /// DATA: the carried sixcast datagram.
    pub datagram: Option<Buffer>,
    /// SIGNED_CHALLENGE: the fingerprint of the relay's identity key, 16 hex digits.
    pub relay_key: Option<String>,
    /// SIGNED_CHALLENGE: the issuer's capability token for the relay's key (128 bytes), if any.
    pub voucher: Option<Buffer>,
    /// SIGNED_CHALLENGE: the relay's Ed25519 signature (64 bytes).
    pub signature: Option<Buffer>,
}

fn nonce_text(nonce: u64) -> String {
    format!("{nonce:016x}")
}

impl From<&Control<'_>> for ControlMessage {
    fn from(message: &Control<'_>) -> Self {
        let fields = message.fields();
        let bytes = |data: &[u8]| Buffer::from(data.to_vec());
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
            load: fields.load.map(u32::from),
            refresh_secs: fields.refresh_secs.map(u32::from),
            gateway: fields.gateway.map(|gateway| nonce_text(gateway.0)),
            hold_ms: fields.hold_ms.map(u32::from),
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

/// Decodes one received control message. Throws ERR_SIXCAST_MALFORMED, with the stable
/// `reason` (`truncated`, `short_unverified`, ...), when the bytes are not a valid one.
#[napi]
pub fn decode_control(env: Env, datagram: &[u8]) -> Result<ControlMessage> {
    match control::decode(datagram) {
        Ok(message) => Ok(ControlMessage::from(&message)),
        Err(err) => Err(malformed_to_js(&env, err)),
    }
}

/// The 16-byte cookie or challenge MAC of peer `address` (IPv6 text) and `port` with `nonce`
/// (16 hex digits) under the 32-byte `secret`.
#[napi]
pub fn control_mac(
    env: Env,
    secret: &[u8],
    address: String,
    port: f64,
    nonce: String,
) -> Result<Buffer> {
    let mac = (|| {
        let secret: &[u8; control::SECRET_LEN] = secret.try_into().map_err(|_| {
            invalid(format!(
                "secret must be {} bytes, not {}",
                control::SECRET_LEN,
                secret.len()
            ))
        })?;
        let ip = parse_address(&address)?;
        let port = whole("port", port, u16::MAX)?;
        let nonce = parse_nonce(&nonce)?;
        Ok(control::mac(
            secret,
            SocketAddrV6::new(ip, port, 0, 0),
            nonce,
        ))
    })();
    mac.map(|mac| Buffer::from(mac.to_vec())).or_throw(&env)
}

/// A nonce given as exactly 16 hex digits, the way the vectors write them.
fn parse_nonce(text: &str) -> sixcast::Result<u64> {
    if text.len() == 16
        && text.bytes().all(|byte| byte.is_ascii_hexdigit())
        && let Ok(nonce) = u64::from_str_radix(text, 16)
    {
        return Ok(nonce);
    }
    Err(invalid(format!("nonce {text:?} is not 16 hex digits")))
}
