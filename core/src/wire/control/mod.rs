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
//! The message types and their fields live here; [`decode`] and [`Control::encode`] in files of
//! their own.

use std::net::{Ipv6Addr, SocketAddrV6};

use super::{FINGERPRINT_LEN, Fingerprint, MAX_DATAGRAM_SIZE, NodeId, SIGNATURE_LEN, TOKEN_LEN};

mod decode;
mod encode;
#[cfg(test)]
mod tests;

pub use decode::decode;
use encode::{put_socket_addr, put_u64};

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
const TYPE_LAST: u8 = TYPE_SIGNED_CHALLENGE;

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

/// One control message. DATA borrows the datagram it carries.
///
/// Socket addresses travel as address and port only: their flow info and scope id are not sent
/// and decode as 0.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control<'a> {
    /// Type 1, node → Stratum 0 (padded): asks for an ECHO on the probe group, and whether
    /// Stratum 0 heard the BEACON with `beacon_nonce` (0 = no beacon to ask about).
    Probe {
        /// Chosen by the node; echoed in ECHO and PROBE_REPLY.
        nonce: u64,
        /// The nonce of a BEACON the node sent, or 0.
        beacon_nonce: u64,
    },
    /// Type 2, Stratum 0 → probe group: proves that multicast reaches the node.
    Echo {
        /// The PROBE's nonce.
        nonce: u64,
    },
    /// Type 3, node → probe group: proves that the node's multicast reaches the core.
    Beacon {
        /// Chosen by the node; asked about in a later PROBE.
        nonce: u64,
    },
    /// Type 4, Stratum 0 → node: the answer to a PROBE.
    ProbeReply {
        /// The PROBE's nonce.
        nonce: u64,
        /// Whether Stratum 0 heard the BEACON the PROBE asked about.
        heard_beacon: bool,
        /// The source address and port Stratum 0 saw, for NAT detection.
        observed: SocketAddrV6,
    },
    /// Type 5, node → Stratum 0 (padded): asks for relays.
    RelayRequest {
        /// Chosen by the node.
        nonce: u64,
        /// All zero on the first try, then the COOKIE's.
        cookie: Mac,
    },
    /// Type 6, Stratum 0 → node: `mac(secret, node address, nonce)`, to send back.
    Cookie {
        /// The RELAY_REQUEST's nonce.
        nonce: u64,
        /// The cookie.
        cookie: Mac,
    },
    /// Type 7, Stratum 0 → relay group: a verified node wants relays.
    Solicit {
        /// The RELAY_REQUEST's nonce.
        nonce: u64,
        /// Where the node sent the request from, and where relays send their offers.
        node: SocketAddrV6,
    },
    /// Type 8, relay → node: an offer to relay.
    Offer {
        /// The SOLICIT's nonce.
        nonce: u64,
        /// Where to open the tunnel.
        relay: SocketAddrV6,
        /// Per mille of the relay's capacity in use.
        load: u16,
        /// Flag [`FLAG_LIMIT`]: the relay takes no new clients.
        limit: bool,
        /// Flag [`FLAG_REPEATER`]: an SSM repeater rather than a relay.
        repeater: bool,
    },
    /// Type 9, node → relay (padded): opens a tunnel.
    Hello {
        /// Chosen by the node.
        nonce: u64,
    },
    /// Type 10, relay → node: `mac(relay secret, node address, nonce)`, to send back in JOIN,
    /// LEAVE and TEARDOWN.
    Challenge {
        /// The HELLO's nonce.
        nonce: u64,
        /// The MAC.
        mac: Mac,
        /// How often the node must refresh its membership, in seconds.
        refresh_secs: u16,
        /// Flag [`FLAG_LIMIT`]: the relay takes no new clients.
        limit: bool,
    },
    /// Type 11, node → relay: groups to receive (1 to [`MAX_GROUPS_PER_MESSAGE`] multicast
    /// addresses).
    Join {
        /// The HELLO's nonce.
        nonce: u64,
        /// The CHALLENGE's MAC.
        mac: Mac,
        /// The groups.
        groups: Vec<Ipv6Addr>,
    },
    /// Type 12, node → relay: groups to stop receiving (1 to [`MAX_GROUPS_PER_MESSAGE`]
    /// multicast addresses).
    Leave {
        /// The HELLO's nonce.
        nonce: u64,
        /// The CHALLENGE's MAC.
        mac: Mac,
        /// The groups.
        groups: Vec<Ipv6Addr>,
    },
    /// Type 13, both ways: one sixcast datagram of a multicast group.
    Data {
        /// The group the datagram was or is to be sent to.
        group: Ipv6Addr,
        /// The sixcast datagram: 1 to [`MAX_DATA_DATAGRAM`] bytes.
        datagram: &'a [u8],
    },
    /// Type 14, both ways: keeps the tunnel (and any NAT binding) alive.
    Keepalive {
        /// Chosen by the sender.
        nonce: u64,
    },
    /// Type 15, closes a tunnel. Node → relay, from the node's new address: closes the tunnel of
    /// its old address (NAT rebinding, AMT §5.1.7), or the node's own tunnel when it goes back to
    /// native. Relay → node: the relay is stopping and closes the node's tunnel, so that the node
    /// fails over at once.
    Teardown {
        /// The nonce of the tunnel's HELLO.
        nonce: u64,
        /// The MAC the relay issued for the tunnel's address.
        mac: Mac,
        /// The tunnel's (node's) address and port, as the relay sees it.
        old: SocketAddrV6,
    },
    /// Type 16, Stratum 1 gateway → link-scope gateway group: the sender serves these channels
    /// (1 to [`MAX_GROUPS_PER_MESSAGE`] channel groups) on its segment through its tunnel.
    Gateway {
        /// The gateway's node id: the lowest id among a segment's gateways of a channel wins.
        gateway: NodeId,
        /// How long, in milliseconds, the announcement stays valid; 0 withdraws it at once.
        hold_ms: u16,
        /// The groups of the channels served.
        groups: Vec<Ipv6Addr>,
    },
    /// Type 17, node → relay, from the node's new address after a NAT rebinding: moves the
    /// tunnel, with its joins, to the new address. Proves both that the node receives at the new
    /// address (a fresh HELLO's nonce and the CHALLENGE's MAC for the new address) and that it
    /// owns the tunnel (the tunnel's nonce and the MAC issued for the old address).
    Rebind {
        /// The nonce of the HELLO just sent from the new address.
        nonce: u64,
        /// The CHALLENGE's MAC for the new address.
        mac: Mac,
        /// The tunnel's nonce (of the HELLO that opened it, or of the last rebinding).
        old_nonce: u64,
        /// The MAC the relay issued for the old address.
        old_mac: Mac,
    },
    /// Type 18, node → relay (padded to [`SIGNED_HELLO_MIN_LEN`]): opens a tunnel, or starts a
    /// rebinding, with a relay that must prove its identity: a relay with an identity key
    /// answers SIGNED_CHALLENGE, one without ignores it.
    SignedHello {
        /// Chosen by the node.
        nonce: u64,
    },
    /// Type 19, relay → node: a CHALLENGE signed by the relay's identity key, bound to the
    /// node's nonce and to the address the relay saw it at, so that it cannot be replayed to
    /// another node or session.
    SignedChallenge {
        /// The SIGNED_HELLO's nonce.
        nonce: u64,
        /// `mac(relay secret, node address, nonce)`, as in CHALLENGE.
        mac: Mac,
        /// How often the node must refresh its membership, in seconds.
        refresh_secs: u16,
        /// Flag [`FLAG_LIMIT`]: the relay takes no new clients.
        limit: bool,
        /// The source address and port the relay saw the SIGNED_HELLO come from.
        observed: SocketAddrV6,
        /// The fingerprint of the relay's identity key.
        relay_key: Fingerprint,
        /// Flag [`FLAG_VOUCHER`]: a capability token of an issuer (Stratum 0's operator) for the
        /// relay's key on the relay group, which nodes that trust the issuer accept instead of a
        /// pinned key. Checked by the node, not by the decoder.
        voucher: Option<&'a [u8; TOKEN_LEN]>,
        /// Ed25519 signature of the relay's identity key over [`Control::signed_fields`].
        signature: [u8; SIGNATURE_LEN],
    },
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
    /// The message type's name in lower snake case (`"probe_reply"`), as in the vectors.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Probe { .. } => "probe",
            Self::Echo { .. } => "echo",
            Self::Beacon { .. } => "beacon",
            Self::ProbeReply { .. } => "probe_reply",
            Self::RelayRequest { .. } => "relay_request",
            Self::Cookie { .. } => "cookie",
            Self::Solicit { .. } => "solicit",
            Self::Offer { .. } => "offer",
            Self::Hello { .. } => "hello",
            Self::Challenge { .. } => "challenge",
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::Data { .. } => "data",
            Self::Keepalive { .. } => "keepalive",
            Self::Teardown { .. } => "teardown",
            Self::Gateway { .. } => "gateway",
            Self::Rebind { .. } => "rebind",
            Self::SignedHello { .. } => "signed_hello",
            Self::SignedChallenge { .. } => "signed_challenge",
        }
    }

    /// The message's fields, flattened (see [`ControlFields`]).
    pub fn fields(&self) -> ControlFields<'_> {
        let mut fields = ControlFields::default();
        match self {
            Self::Probe {
                nonce,
                beacon_nonce,
            } => {
                fields.nonce = Some(*nonce);
                fields.beacon_nonce = Some(*beacon_nonce);
            }
            Self::Echo { nonce }
            | Self::Beacon { nonce }
            | Self::Hello { nonce }
            | Self::SignedHello { nonce }
            | Self::Keepalive { nonce } => fields.nonce = Some(*nonce),
            Self::ProbeReply {
                nonce,
                heard_beacon,
                observed,
            } => {
                fields.nonce = Some(*nonce);
                fields.heard_beacon = Some(*heard_beacon);
                fields.observed = Some(*observed);
            }
            Self::RelayRequest { nonce, cookie } | Self::Cookie { nonce, cookie } => {
                fields.nonce = Some(*nonce);
                fields.cookie = Some(cookie);
            }
            Self::Solicit { nonce, node } => {
                fields.nonce = Some(*nonce);
                fields.node = Some(*node);
            }
            Self::Offer {
                nonce,
                relay,
                load,
                limit,
                repeater,
            } => {
                fields.nonce = Some(*nonce);
                fields.relay = Some(*relay);
                fields.load = Some(*load);
                fields.limit = Some(*limit);
                fields.repeater = Some(*repeater);
            }
            Self::Challenge {
                nonce,
                mac,
                refresh_secs,
                limit,
            } => {
                fields.nonce = Some(*nonce);
                fields.mac = Some(mac);
                fields.refresh_secs = Some(*refresh_secs);
                fields.limit = Some(*limit);
            }
            Self::Join { nonce, mac, groups } | Self::Leave { nonce, mac, groups } => {
                fields.nonce = Some(*nonce);
                fields.mac = Some(mac);
                fields.groups = Some(groups);
            }
            Self::Data { group, datagram } => {
                fields.group = Some(*group);
                fields.datagram = Some(datagram);
            }
            Self::Teardown { nonce, mac, old } => {
                fields.nonce = Some(*nonce);
                fields.mac = Some(mac);
                fields.old = Some(*old);
            }
            Self::Gateway {
                gateway,
                hold_ms,
                groups,
            } => {
                fields.gateway = Some(*gateway);
                fields.hold_ms = Some(*hold_ms);
                fields.groups = Some(groups);
            }
            Self::Rebind {
                nonce,
                mac,
                old_nonce,
                old_mac,
            } => {
                fields.nonce = Some(*nonce);
                fields.mac = Some(mac);
                fields.old_nonce = Some(*old_nonce);
                fields.old_mac = Some(old_mac);
            }
            Self::SignedChallenge {
                nonce,
                mac,
                refresh_secs,
                limit,
                observed,
                relay_key,
                voucher,
                signature,
            } => {
                fields.nonce = Some(*nonce);
                fields.mac = Some(mac);
                fields.refresh_secs = Some(*refresh_secs);
                fields.limit = Some(*limit);
                fields.observed = Some(*observed);
                fields.relay_key = Some(*relay_key);
                fields.voucher = *voucher;
                fields.signature = Some(signature);
            }
        }
        fields
    }

    /// The type byte of the message.
    pub const fn type_code(&self) -> u8 {
        match self {
            Self::Probe { .. } => TYPE_PROBE,
            Self::Echo { .. } => TYPE_ECHO,
            Self::Beacon { .. } => TYPE_BEACON,
            Self::ProbeReply { .. } => TYPE_PROBE_REPLY,
            Self::RelayRequest { .. } => TYPE_RELAY_REQUEST,
            Self::Cookie { .. } => TYPE_COOKIE,
            Self::Solicit { .. } => TYPE_SOLICIT,
            Self::Offer { .. } => TYPE_OFFER,
            Self::Hello { .. } => TYPE_HELLO,
            Self::Challenge { .. } => TYPE_CHALLENGE,
            Self::Join { .. } => TYPE_JOIN,
            Self::Leave { .. } => TYPE_LEAVE,
            Self::Data { .. } => TYPE_DATA,
            Self::Keepalive { .. } => TYPE_KEEPALIVE,
            Self::Teardown { .. } => TYPE_TEARDOWN,
            Self::Gateway { .. } => TYPE_GATEWAY,
            Self::Rebind { .. } => TYPE_REBIND,
            Self::SignedHello { .. } => TYPE_SIGNED_HELLO,
            Self::SignedChallenge { .. } => TYPE_SIGNED_CHALLENGE,
        }
    }

    /// Whether the message is sent to addresses that have not proven they receive there, and so
    /// is padded to [`padded_len`](Self::padded_len) bytes.
    pub const fn is_padded(&self) -> bool {
        is_padded_type(self.type_code())
    }

    /// The length a padded message is padded to ([`UNVERIFIED_MIN_LEN`], or
    /// [`SIGNED_HELLO_MIN_LEN`] for SIGNED_HELLO); 0 for the others.
    pub const fn padded_len(&self) -> usize {
        padded_len(self.type_code())
    }

    /// The bytes a relay's identity key signs for a SIGNED_CHALLENGE: nonce (8), MAC (16),
    /// refresh (2), flags (1), observed address (16) and port (2), key fingerprint (8), the
    /// voucher (128, if any), then [`SIGNED_CHALLENGE_DOMAIN`]. `None` for every other message.
    pub fn signed_fields(&self) -> Option<Vec<u8>> {
        let Self::SignedChallenge {
            nonce,
            mac,
            refresh_secs,
            observed,
            relay_key,
            voucher,
            ..
        } = self
        else {
            return None;
        };
        let mut out = Vec::with_capacity(
            NONCE_LEN
                + TOKEN_LEN
                + MAC_LEN
                + 3
                + SOCKET_ADDR_LEN
                + FINGERPRINT_LEN
                + SIGNED_CHALLENGE_DOMAIN.len(),
        );
        put_u64(&mut out, *nonce);
        out.extend_from_slice(mac);
        out.extend_from_slice(&refresh_secs.to_be_bytes());
        out.push(self.flags());
        put_socket_addr(&mut out, *observed);
        out.extend_from_slice(&relay_key.0);
        if let Some(voucher) = voucher {
            out.extend_from_slice(*voucher);
        }
        out.extend_from_slice(SIGNED_CHALLENGE_DOMAIN);
        Some(out)
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

pub(super) const fn is_padded_type(kind: u8) -> bool {
    padded_len(kind) > 0
}

/// The length a padded type is padded to; 0 for types that are not padded.
pub(super) const fn padded_len(kind: u8) -> usize {
    match kind {
        TYPE_PROBE | TYPE_RELAY_REQUEST | TYPE_HELLO => UNVERIFIED_MIN_LEN,
        TYPE_SIGNED_HELLO => SIGNED_HELLO_MIN_LEN,
        _ => 0,
    }
}
