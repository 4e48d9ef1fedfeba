//! The control-message codec of the reachability protocol: probes, relay requests and the relay
//! tunnel (`docs/reachability.md`, section "Control messages (wire)"). No I/O happens here.
//!
//! Control datagrams start with [`MAGIC`] (`"6r"`), data datagrams with [`super::MAGIC`]
//! (`"6c"`), so one socket can carry both: [`is_control`] tells them apart. Every control
//! datagram is an 8-byte header (magic, version, type, flags, 3 reserved bytes) and a body of
//! big-endian fields; addresses are 16 raw bytes, ports two.
//!
//! **Amplification.** The messages a party sends before its address is verified (PROBE,
//! RELAY_REQUEST, HELLO) are zero-padded to [`UNVERIFIED_MIN_LEN`] bytes (SIGNED_HELLO to
//! [`SIGNED_HELLO_MIN_LEN`]), and every answer to them is at most that long, so an unverified
//! address never receives more bytes than it sent.
//!
//! **Verification.** [`mac`] is the stateless return-routability cookie of AMT (RFC 7450,
//! §5.3.5): a keyed hash of the peer's address, port and nonce under a secret only the verifier
//! knows. The verifier rotates its secret and accepts MACs under the current and the previous
//! one; compare with [`mac_matches`], which takes constant time.
//!
//! **Encoding** checks what decoding checks: [`Control::encode`] refuses exactly the messages
//! [`decode`] could not give back, so whatever encodes round-trips. Only JOIN, LEAVE, GATEWAY and
//! DATA can break a rule (group count, multicast groups, datagram length), and only by a mistake
//! of their builder; every other message always encodes.
//!
//! **Layout of this module.** Each message type is a struct with its own codec (the `Message`
//! trait: type byte, name, flags, body), in a file per family: `probe.rs`, the relay
//! `request.rs`, `tunnel.rs`, the `signed.rs` handshake and the `gateway.rs` announcement.
//! [`Control`] is the enum of them all; the code that dispatches over it (names, lengths,
//! writing, reading) is generated from one list, so that a new message is a struct, its type
//! byte and a line in that list. The header checks, [`decode`] and [`Control::encode`] live in
//! files of their own, and the field codecs the messages share in `field.rs`.

use std::net::{Ipv6Addr, SocketAddrV6};

use super::{
    DecodeError, FINGERPRINT_LEN, Fingerprint, MAX_DATAGRAM_SIZE, NodeId, Reader, SIGNATURE_LEN,
    TOKEN_LEN,
};

mod decode;
mod encode;
mod field;
mod gateway;
mod probe;
mod request;
mod signed;
#[cfg(test)]
mod tests;
mod tunnel;

pub use decode::decode;
pub use gateway::Gateway;
pub use probe::{Beacon, Echo, Probe, ProbeReply};
pub use request::{Cookie, Offer, RelayRequest, Solicit};
pub use signed::{SignedChallenge, SignedHello};
pub use tunnel::{Challenge, Data, Hello, Join, Keepalive, Leave, Rebind, Teardown};

/// The first two bytes of every control datagram: `"6r"`.
pub const MAGIC: [u8; 2] = *b"6r";
/// The control protocol version this codec writes and accepts.
pub const VERSION: u8 = 1;
/// Length of the header every control datagram starts with.
pub const HEADER_LEN: usize = 8;
/// PROBE, RELAY_REQUEST and HELLO are padded to at least this many bytes, and no answer to them
/// is longer.
pub const UNVERIFIED_MIN_LEN: usize = 64;
/// The most groups one JOIN or LEAVE may name.
pub const MAX_GROUPS_PER_MESSAGE: usize = 64;
/// Length of a [`Mac`].
pub const MAC_LEN: usize = 16;
/// Length of the secret a [`mac`] is computed with.
pub const SECRET_LEN: usize = 32;
/// Flag bit of OFFER and CHALLENGE: the relay takes no new clients.
pub const FLAG_LIMIT: u8 = 0x01;
/// Flag bit of SIGNED_CHALLENGE: a voucher (a capability token, [`TOKEN_LEN`] bytes) follows the
/// relay key fingerprint.
pub const FLAG_VOUCHER: u8 = 0x02;
/// Flag bit of OFFER: the offering service is an SSM repeater (its channel traffic comes as
/// source-specific multicast from its address, not down a tunnel). Each flag has a bit of its
/// own, whatever types carry it.
pub const FLAG_REPEATER: u8 = 0x04;
/// Bytes a DATA message adds in front of the sixcast datagram it carries: header and group.
pub const DATA_OVERHEAD: usize = HEADER_LEN + ADDR_LEN;
/// The largest sixcast datagram a DATA message can carry.
pub const MAX_DATA_DATAGRAM: usize = MAX_DATAGRAM_SIZE - DATA_OVERHEAD;
/// Length of a SIGNED_CHALLENGE without a voucher: header, nonce, MAC, refresh, observed address
/// and port, relay key fingerprint and Ed25519 signature.
pub const SIGNED_CHALLENGE_LEN: usize =
    HEADER_LEN + NONCE_LEN + MAC_LEN + 2 + SOCKET_ADDR_LEN + FINGERPRINT_LEN + SIGNATURE_LEN;
/// Length of a SIGNED_CHALLENGE with a voucher.
pub const VOUCHED_CHALLENGE_LEN: usize = SIGNED_CHALLENGE_LEN + TOKEN_LEN;
/// SIGNED_HELLO is padded to at least this many bytes: as long as the longest SIGNED_CHALLENGE
/// that can answer it, so that a relay never sends an unverified address more than it received.
pub const SIGNED_HELLO_MIN_LEN: usize = VOUCHED_CHALLENGE_LEN;
/// Appended to the fields a relay signs in a SIGNED_CHALLENGE, so that the signature is never
/// taken for anything else (a signed datagram or a token).
pub const SIGNED_CHALLENGE_DOMAIN: &[u8] = b"sixcast signed challenge v1";

/// A message authentication code: a cookie from Stratum 0 or a relay's challenge.
pub type Mac = [u8; MAC_LEN];

const ADDR_LEN: usize = 16;
const SOCKET_ADDR_LEN: usize = ADDR_LEN + 2;
const NONCE_LEN: usize = 8;
const COUNT_LEN: usize = 2;

/// Length of the body fields of a JOIN or LEAVE before its group list.
const GROUP_LIST_FIXED_LEN: usize = NONCE_LEN + MAC_LEN + COUNT_LEN;
/// Length of the body fields of a GATEWAY before its group list: node id, hold, count.
const GATEWAY_FIXED_LEN: usize = NONCE_LEN + 2 + COUNT_LEN;

// The largest JOIN still fits a datagram that IPv6 never fragments.
const _: () = assert!(
    HEADER_LEN + GROUP_LIST_FIXED_LEN + MAX_GROUPS_PER_MESSAGE * ADDR_LEN
        <= super::DEFAULT_DATAGRAM_SIZE
);
const _: () = assert!(MAX_GROUPS_PER_MESSAGE <= u16::MAX as usize);

/// The type byte of each message, the registry of this protocol version.
const TYPE_PROBE: u8 = 1;
const TYPE_ECHO: u8 = 2;
const TYPE_BEACON: u8 = 3;
const TYPE_PROBE_REPLY: u8 = 4;
const TYPE_RELAY_REQUEST: u8 = 5;
const TYPE_COOKIE: u8 = 6;
const TYPE_SOLICIT: u8 = 7;
const TYPE_OFFER: u8 = 8;
const TYPE_HELLO: u8 = 9;
const TYPE_CHALLENGE: u8 = 10;
const TYPE_JOIN: u8 = 11;
const TYPE_LEAVE: u8 = 12;
const TYPE_DATA: u8 = 13;
const TYPE_KEEPALIVE: u8 = 14;
const TYPE_TEARDOWN: u8 = 15;
const TYPE_GATEWAY: u8 = 16;
const TYPE_REBIND: u8 = 17;
const TYPE_SIGNED_HELLO: u8 = 18;
const TYPE_SIGNED_CHALLENGE: u8 = 19;
/// The highest type byte of this version.
#[cfg(test)]
const TYPE_LAST: u8 = TYPE_SIGNED_CHALLENGE;

/// One control message type: its type byte and name, and how its body is read. Messages with
/// fields that borrow from the datagram (DATA, SIGNED_CHALLENGE) borrow for `'a`.
pub(super) trait Message<'a>: Body<'a> + Sized {
    /// The type byte.
    const TYPE: u8;
    /// The type's name in lower snake case, as in the vectors.
    const NAME: &'static str;
    /// For a message sent to an address not yet verified: the length it is padded to, and the
    /// least a received one may have. 0 for the others.
    const PADDED_LEN: usize = 0;

    /// Reads the body fields, after the header (whose flags byte is `flags`), checking each
    /// as it is read. What follows the fields is checked by [`decode`].
    fn read(body: &mut Reader<'a>, flags: u8) -> Result<Self, DecodeError>;
}

/// The half of a message's codec that does not depend on its type: what [`Control`] calls on
/// whichever message it holds.
pub(super) trait Body<'a> {
    /// The flags byte of the header.
    fn flags(&self) -> u8 {
        0
    }
    /// Length of the body fields, without padding.
    fn body_len(&self) -> usize;
    /// Appends the body fields as they are, valid or not.
    fn write_body(&self, out: &mut Vec<u8>);
    /// Fills in the fields this type has.
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>);
    /// Checks what [`decode`] would check of the fields: only group lists and DATA can fail.
    fn validate(&self) -> crate::Result<()> {
        Ok(())
    }
}

/// Declares [`Control`] and the code that dispatches over its messages, from one list.
macro_rules! control_messages {
    ($($(#[$doc:meta])* $variant:ident($message:ty),)*) => {
        /// One control message. DATA and SIGNED_CHALLENGE borrow from the datagram they were
        /// decoded from.
        ///
        /// Socket addresses travel as address and port only: their flow info and scope id are
        /// not sent and decode as 0.
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Control<'a> {
            $($(#[$doc])* $variant($message),)*
        }

        impl<'a> Control<'a> {
            /// The message type's name in lower snake case (`"probe_reply"`), as in the vectors.
            pub const fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant(_) => <$message as Message<'a>>::NAME,)*
                }
            }

            /// The type byte of the message.
            pub const fn type_code(&self) -> u8 {
                match self {
                    $(Self::$variant(_) => <$message as Message<'a>>::TYPE,)*
                }
            }

            /// The message this holds, as its codec.
            fn body(&self) -> &dyn Body<'a> {
                match self {
                    $(Self::$variant(message) => message,)*
                }
            }

            /// The length a message of type `kind` is padded to; 0 for types that are not
            /// padded, and for unknown ones.
            const fn padded_len_of(kind: u8) -> usize {
                $(if kind == <$message as Message<'a>>::TYPE {
                    return <$message as Message<'a>>::PADDED_LEN;
                })*
                0
            }

            /// Whether `kind` is a type byte of this version.
            const fn is_known_type(kind: u8) -> bool {
                $(if kind == <$message as Message<'a>>::TYPE {
                    return true;
                })*
                false
            }

            /// Reads the body of a message of type `kind`.
            fn read_body(kind: u8, body: &mut Reader<'a>, flags: u8) -> Result<Self, DecodeError> {
                $(if kind == <$message as Message<'a>>::TYPE {
                    return Ok(Self::$variant(<$message as Message<'a>>::read(body, flags)?));
                })*
                Err(DecodeError::UnknownType(kind))
            }
        }
    };
}

control_messages! {
    /// Type 1, node → Stratum 0 (padded): asks for an ECHO on the probe group.
    Probe(Probe),
    /// Type 2, Stratum 0 → probe group: proves that multicast reaches the node.
    Echo(Echo),
    /// Type 3, node → probe group: proves that the node's multicast reaches the core.
    Beacon(Beacon),
    /// Type 4, Stratum 0 → node: the answer to a PROBE.
    ProbeReply(ProbeReply),
    /// Type 5, node → Stratum 0 (padded): asks for relays.
    RelayRequest(RelayRequest),
    /// Type 6, Stratum 0 → node: a cookie to send back.
    Cookie(Cookie),
    /// Type 7, Stratum 0 → relay group: a verified node wants relays.
    Solicit(Solicit),
    /// Type 8, relay → node: an offer to relay.
    Offer(Offer),
    /// Type 9, node → relay (padded): opens a tunnel.
    Hello(Hello),
    /// Type 10, relay → node: the MAC to send back in JOIN, LEAVE and TEARDOWN.
    Challenge(Challenge),
    /// Type 11, node → relay: groups to receive.
    Join(Join),
    /// Type 12, node → relay: groups to stop receiving.
    Leave(Leave),
    /// Type 13, both ways: one sixcast datagram of a multicast group.
    Data(Data<'a>),
    /// Type 14, both ways: keeps the tunnel (and any NAT binding) alive.
    Keepalive(Keepalive),
    /// Type 15: closes a tunnel.
    Teardown(Teardown),
    /// Type 16, Stratum 1 gateway → link-scope gateway group: the channels it serves.
    Gateway(Gateway),
    /// Type 17, node → relay, from its new address: moves the tunnel there.
    Rebind(Rebind),
    /// Type 18, node → relay (padded): opens a tunnel with a relay that proves its identity.
    SignedHello(SignedHello),
    /// Type 19, relay → node: a CHALLENGE signed by the relay's identity key.
    SignedChallenge(SignedChallenge<'a>),
}

/// The fields of a control message, flattened: each message type fills the fields it has and
/// leaves the others `None`. Bindings and tools show every message type through this one shape,
/// so a new message type changes them only by the fields it adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ControlFields<'a> {
    /// Every type but DATA and GATEWAY: the message's nonce.
    pub nonce: Option<u64>,
    /// PROBE: the nonce of the BEACON asked about (0 for none).
    pub beacon_nonce: Option<u64>,
    /// PROBE_REPLY: whether Stratum 0 heard the beacon.
    pub heard_beacon: Option<bool>,
    /// OFFER, CHALLENGE and SIGNED_CHALLENGE: the relay takes no new clients.
    pub limit: Option<bool>,
    /// OFFER: the offer comes from an SSM repeater.
    pub repeater: Option<bool>,
    /// PROBE_REPLY and SIGNED_CHALLENGE: the node's address and port as Stratum 0 or the relay
    /// saw them.
    pub observed: Option<SocketAddrV6>,
    /// SOLICIT: the node that asked for relays.
    pub node: Option<SocketAddrV6>,
    /// OFFER: where to open the tunnel.
    pub relay: Option<SocketAddrV6>,
    /// TEARDOWN: the old address and port.
    pub old: Option<SocketAddrV6>,
    /// REBIND: the tunnel's nonce.
    pub old_nonce: Option<u64>,
    /// REBIND: the MAC the relay issued for the old address.
    pub old_mac: Option<&'a Mac>,
    /// RELAY_REQUEST and COOKIE: the cookie.
    pub cookie: Option<&'a Mac>,
    /// CHALLENGE, SIGNED_CHALLENGE, JOIN, LEAVE, TEARDOWN and REBIND: the MAC.
    pub mac: Option<&'a Mac>,
    /// OFFER: per mille of the relay's capacity in use.
    pub load: Option<u16>,
    /// CHALLENGE and SIGNED_CHALLENGE: how often to refresh the membership, in seconds.
    pub refresh_secs: Option<u16>,
    /// GATEWAY: the announcing gateway's node id.
    pub gateway: Option<NodeId>,
    /// GATEWAY: how long the announcement stays valid, in milliseconds (0: withdrawn).
    pub hold_ms: Option<u16>,
    /// JOIN, LEAVE and GATEWAY: the groups.
    pub groups: Option<&'a [Ipv6Addr]>,
    /// DATA: the group of the carried datagram.
    pub group: Option<Ipv6Addr>,
    /// DATA: the carried sixcast datagram.
    pub datagram: Option<&'a [u8]>,
    /// SIGNED_CHALLENGE: the fingerprint of the relay's identity key.
    pub relay_key: Option<Fingerprint>,
    /// SIGNED_CHALLENGE: the issuer's capability token for the relay's key, when it has one.
    pub voucher: Option<&'a [u8; TOKEN_LEN]>,
    /// SIGNED_CHALLENGE: the relay's Ed25519 signature.
    pub signature: Option<&'a [u8; SIGNATURE_LEN]>,
}

impl Control<'_> {
    /// The message's fields, flattened (see [`ControlFields`]).
    pub fn fields(&self) -> ControlFields<'_> {
        let mut fields = ControlFields::default();
        self.body().fill(&mut fields);
        fields
    }

    /// Whether the message is sent to addresses that have not proven they receive there, and so
    /// is padded to [`padded_len`](Self::padded_len) bytes.
    pub const fn is_padded(&self) -> bool {
        self.padded_len() > 0
    }

    /// The length a padded message is padded to ([`UNVERIFIED_MIN_LEN`], or
    /// [`SIGNED_HELLO_MIN_LEN`] for SIGNED_HELLO); 0 for the others.
    pub const fn padded_len(&self) -> usize {
        Self::padded_len_of(self.type_code())
    }

    /// The bytes a relay's identity key signs for a SIGNED_CHALLENGE (see
    /// [`SignedChallenge::signed_fields`]); `None` for every other message.
    pub fn signed_fields(&self) -> Option<Vec<u8>> {
        match self {
            Self::SignedChallenge(challenge) => Some(challenge.signed_fields()),
            _ => None,
        }
    }
}

/// Whether `datagram` starts with the control [`MAGIC`] (and so is not a data datagram). Checks
/// only the magic; [`decode`] checks the rest.
pub fn is_control(datagram: &[u8]) -> bool {
    datagram.starts_with(&MAGIC)
}

/// The cookie or challenge MAC for `peer` and `nonce`: the first [`MAC_LEN`] bytes of
/// `blake3::keyed_hash(secret, ip (16) || port (2, BE) || nonce (8, BE))`.
///
/// The peer's flow info and scope id do not enter the MAC.
pub fn mac(secret: &[u8; SECRET_LEN], peer: SocketAddrV6, nonce: u64) -> Mac {
    let mut input = [0; SOCKET_ADDR_LEN + NONCE_LEN];
    input[..ADDR_LEN].copy_from_slice(&peer.ip().octets());
    input[ADDR_LEN..SOCKET_ADDR_LEN].copy_from_slice(&peer.port().to_be_bytes());
    input[SOCKET_ADDR_LEN..].copy_from_slice(&nonce.to_be_bytes());
    let hash = blake3::keyed_hash(secret, &input);
    let mut out = [0; MAC_LEN];
    out.copy_from_slice(&hash.as_bytes()[..MAC_LEN]);
    out
}

/// Whether two MACs are equal, in time that does not depend on where they differ.
pub fn mac_matches(a: &Mac, b: &Mac) -> bool {
    // blake3::Hash compares in constant time; zero-extend both MACs to use it.
    let widen = |mac: &Mac| {
        let mut wide = [0; blake3::OUT_LEN];
        wide[..MAC_LEN].copy_from_slice(mac);
        wide
    };
    blake3::Hash::from_bytes(widen(a)) == widen(b)
}
