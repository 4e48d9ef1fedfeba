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

use std::net::{Ipv6Addr, SocketAddrV6};

use super::{DecodeError, MAX_DATAGRAM_SIZE, NodeId, Reader};
use crate::{
    crypto::{FINGERPRINT_LEN, Fingerprint, SIGNATURE_LEN, TOKEN_LEN},
    error::{Error, ErrorKind},
};

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
/// source-specific multicast from its address, not down a tunnel).
pub const FLAG_REPEATER: u8 = 0x02;
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

    /// The number of bytes [`encode`](Self::encode) writes (for a valid message).
    pub fn encoded_len(&self) -> usize {
        (HEADER_LEN + self.body_len()).max(self.padded_len())
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

    /// Checks the rules [`encode`](Self::encode) enforces, without encoding. `Ok` exactly for
    /// the messages [`decode`] can give back.
    ///
    /// Only four messages can break a rule, and only by a mistake of their builder: a JOIN,
    /// LEAVE or GATEWAY with no group or more than [`MAX_GROUPS_PER_MESSAGE`]
    /// ([`ErrorKind::InvalidConfig`]), a JOIN, LEAVE, GATEWAY or DATA naming a group that is not
    /// multicast ([`ErrorKind::InvalidAddress`]), and a DATA whose datagram is empty
    /// ([`ErrorKind::InvalidConfig`]) or longer than [`MAX_DATA_DATAGRAM`]
    /// ([`ErrorKind::MessageTooLarge`]).
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            Self::Join { groups, .. }
            | Self::Leave { groups, .. }
            | Self::Gateway { groups, .. } => {
                if groups.is_empty() || groups.len() > MAX_GROUPS_PER_MESSAGE {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "a {} names 1 to {MAX_GROUPS_PER_MESSAGE} groups, not {}; split \
                             longer lists over several messages",
                            self.name(),
                            groups.len()
                        ),
                    ));
                }
                groups.iter().try_for_each(|group| check_multicast(*group))
            }
            Self::Data { group, datagram } => {
                check_multicast(*group)?;
                if datagram.is_empty() {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        "a data message carries a datagram of at least 1 byte",
                    ));
                }
                if datagram.len() > MAX_DATA_DATAGRAM {
                    return Err(Error::new(
                        ErrorKind::MessageTooLarge,
                        format!(
                            "a data message carries at most {MAX_DATA_DATAGRAM} bytes, not {}",
                            datagram.len()
                        ),
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Appends the encoded message to `out`.
    ///
    /// Fails, leaving `out` unchanged, only for a message that [`validate`](Self::validate)
    /// rejects: a JOIN, LEAVE or DATA its builder got wrong. Every other message always encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> crate::Result<()> {
        self.validate()?;
        self.write(out);
        Ok(())
    }

    /// The encoded message in a new vector of exactly [`encoded_len`](Self::encoded_len) bytes;
    /// fails as [`encode`](Self::encode) does.
    pub fn to_vec(&self) -> crate::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Writes the fields as they are, valid or not. For a message that
    /// [`validate`](Self::validate) rejects, the bytes are ones [`decode`] rejects too.
    fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[VERSION, self.type_code(), self.flags(), 0, 0, 0]);
        match self {
            Self::Probe {
                nonce,
                beacon_nonce,
            } => {
                put_u64(out, *nonce);
                put_u64(out, *beacon_nonce);
            }
            Self::Echo { nonce }
            | Self::Beacon { nonce }
            | Self::Hello { nonce }
            | Self::Keepalive { nonce }
            | Self::SignedHello { nonce } => put_u64(out, *nonce),
            Self::ProbeReply {
                nonce,
                heard_beacon,
                observed,
            } => {
                put_u64(out, *nonce);
                out.push(u8::from(*heard_beacon));
                put_socket_addr(out, *observed);
            }
            Self::RelayRequest { nonce, cookie } | Self::Cookie { nonce, cookie } => {
                put_u64(out, *nonce);
                out.extend_from_slice(cookie);
            }
            Self::Solicit { nonce, node } => {
                put_u64(out, *nonce);
                put_socket_addr(out, *node);
            }
            Self::Offer {
                nonce, relay, load, ..
            } => {
                put_u64(out, *nonce);
                put_socket_addr(out, *relay);
                out.extend_from_slice(&load.to_be_bytes());
            }
            Self::Challenge {
                nonce,
                mac,
                refresh_secs,
                ..
            } => {
                put_u64(out, *nonce);
                out.extend_from_slice(mac);
                out.extend_from_slice(&refresh_secs.to_be_bytes());
            }
            Self::Join { nonce, mac, groups } | Self::Leave { nonce, mac, groups } => {
                put_u64(out, *nonce);
                out.extend_from_slice(mac);
                put_groups(out, groups);
            }
            Self::Data { group, datagram } => {
                out.extend_from_slice(&group.octets());
                out.extend_from_slice(datagram);
            }
            Self::Teardown { nonce, mac, old } => {
                put_u64(out, *nonce);
                out.extend_from_slice(mac);
                put_socket_addr(out, *old);
            }
            Self::Gateway {
                gateway,
                hold_ms,
                groups,
            } => {
                put_u64(out, gateway.0);
                out.extend_from_slice(&hold_ms.to_be_bytes());
                put_groups(out, groups);
            }
            Self::Rebind {
                nonce,
                mac,
                old_nonce,
                old_mac,
            } => {
                put_u64(out, *nonce);
                out.extend_from_slice(mac);
                put_u64(out, *old_nonce);
                out.extend_from_slice(old_mac);
            }
            Self::SignedChallenge {
                nonce,
                mac,
                refresh_secs,
                observed,
                relay_key,
                voucher,
                signature,
                ..
            } => {
                put_u64(out, *nonce);
                out.extend_from_slice(mac);
                out.extend_from_slice(&refresh_secs.to_be_bytes());
                put_socket_addr(out, *observed);
                out.extend_from_slice(&relay_key.0);
                if let Some(voucher) = voucher {
                    out.extend_from_slice(*voucher);
                }
                out.extend_from_slice(signature);
            }
        }
        if self.is_padded() {
            out.resize(start + self.padded_len(), 0);
        }
    }

    /// The flags byte: [`FLAG_LIMIT`] on OFFER, CHALLENGE and SIGNED_CHALLENGE,
    /// [`FLAG_REPEATER`] on OFFER, [`FLAG_VOUCHER`] on SIGNED_CHALLENGE, otherwise 0.
    const fn flags(&self) -> u8 {
        match *self {
            Self::Offer {
                limit, repeater, ..
            } => (limit as u8 * FLAG_LIMIT) | (repeater as u8 * FLAG_REPEATER),
            Self::Challenge { limit, .. } => limit as u8 * FLAG_LIMIT,
            Self::SignedChallenge { limit, voucher, .. } => {
                (limit as u8 * FLAG_LIMIT) | (voucher.is_some() as u8 * FLAG_VOUCHER)
            }
            _ => 0,
        }
    }

    /// Length of the body fields, without padding.
    fn body_len(&self) -> usize {
        match self {
            Self::Probe { .. } => 2 * NONCE_LEN,
            Self::Echo { .. }
            | Self::Beacon { .. }
            | Self::Hello { .. }
            | Self::Keepalive { .. }
            | Self::SignedHello { .. } => NONCE_LEN,
            Self::ProbeReply { .. } => NONCE_LEN + 1 + SOCKET_ADDR_LEN,
            Self::RelayRequest { .. } | Self::Cookie { .. } => NONCE_LEN + MAC_LEN,
            Self::Solicit { .. } => NONCE_LEN + SOCKET_ADDR_LEN,
            Self::Offer { .. } => NONCE_LEN + SOCKET_ADDR_LEN + 2,
            Self::Challenge { .. } => NONCE_LEN + MAC_LEN + 2,
            Self::Join { groups, .. } | Self::Leave { groups, .. } => {
                GROUP_LIST_FIXED_LEN + groups.len().saturating_mul(ADDR_LEN)
            }
            Self::Data { datagram, .. } => ADDR_LEN + datagram.len(),
            Self::Teardown { .. } => NONCE_LEN + MAC_LEN + SOCKET_ADDR_LEN,
            Self::Gateway { groups, .. } => {
                GATEWAY_FIXED_LEN + groups.len().saturating_mul(ADDR_LEN)
            }
            Self::Rebind { .. } => 2 * (NONCE_LEN + MAC_LEN),
            Self::SignedChallenge { voucher, .. } => {
                let voucher_len = if voucher.is_some() { TOKEN_LEN } else { 0 };
                SIGNED_CHALLENGE_LEN - HEADER_LEN + voucher_len
            }
        }
    }
}

/// Whether `datagram` starts with the control [`MAGIC`] (and so is not a data datagram). Checks
/// only the magic; [`decode`] checks the rest.
pub fn is_control(datagram: &[u8]) -> bool {
    datagram.starts_with(&MAGIC)
}

/// Parses and validates one received control datagram.
///
/// Checks, in this order, and fails at the first broken rule: at least [`HEADER_LEN`] bytes
/// (`truncated`), [`MAGIC`] (`bad_magic`), [`VERSION`] (`unsupported_version`), a known type
/// (`unknown_type`), at most 65507 bytes (`oversized`), at least [`UNVERIFIED_MIN_LEN`] bytes for
/// padded types ([`SIGNED_HELLO_MIN_LEN`] for SIGNED_HELLO; `short_unverified`); then the body fields in order, each checked as it is read:
/// present (`truncated`), heard_beacon 0 or 1 (`bad_field`), group count 1 to
/// [`MAX_GROUPS_PER_MESSAGE`] (`bad_count`), group addresses multicast (`not_multicast`); then
/// what follows the fields: all zero for padded types (`bad_padding`), at least one byte for DATA
/// (`truncated`), nothing for the others (`trailing_bytes`). Flags other than [`FLAG_LIMIT`] on
/// OFFER, CHALLENGE and SIGNED_CHALLENGE, [`FLAG_REPEATER`] on OFFER and [`FLAG_VOUCHER`] on
/// SIGNED_CHALLENGE, and the reserved bytes, are ignored. A SIGNED_CHALLENGE's signature and
/// voucher are not verified here.
///
/// Never panics; allocates only the group list of a JOIN or LEAVE (at most 64 addresses).
pub fn decode(datagram: &[u8]) -> Result<Control<'_>, DecodeError> {
    if datagram.len() < HEADER_LEN {
        return Err(DecodeError::Truncated);
    }
    let mut reader = Reader::new(datagram);
    if reader.array::<2>()? != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = reader.u8()?;
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion(version));
    }
    let kind = reader.u8()?;
    let flags = reader.u8()?;
    let limit = flags & FLAG_LIMIT != 0;
    // Reserved for future use: ignored so that older receivers keep accepting what sets them.
    let _reserved = reader.array::<3>()?;
    if !(TYPE_PROBE..=TYPE_LAST).contains(&kind) {
        return Err(DecodeError::UnknownType(kind));
    }
    if datagram.len() > MAX_DATAGRAM_SIZE {
        return Err(DecodeError::Oversized);
    }
    let padded = is_padded_type(kind);
    if padded && datagram.len() < padded_len(kind) {
        return Err(DecodeError::ShortUnverified);
    }
    let message = match kind {
        TYPE_PROBE => Control::Probe {
            nonce: reader.u64()?,
            beacon_nonce: reader.u64()?,
        },
        TYPE_ECHO => Control::Echo {
            nonce: reader.u64()?,
        },
        TYPE_BEACON => Control::Beacon {
            nonce: reader.u64()?,
        },
        TYPE_PROBE_REPLY => Control::ProbeReply {
            nonce: reader.u64()?,
            heard_beacon: match reader.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::BadField),
            },
            observed: read_socket_addr(&mut reader)?,
        },
        TYPE_RELAY_REQUEST => Control::RelayRequest {
            nonce: reader.u64()?,
            cookie: reader.array()?,
        },
        TYPE_COOKIE => Control::Cookie {
            nonce: reader.u64()?,
            cookie: reader.array()?,
        },
        TYPE_SOLICIT => Control::Solicit {
            nonce: reader.u64()?,
            node: read_socket_addr(&mut reader)?,
        },
        TYPE_OFFER => Control::Offer {
            nonce: reader.u64()?,
            relay: read_socket_addr(&mut reader)?,
            load: reader.u16()?,
            limit,
            repeater: flags & FLAG_REPEATER != 0,
        },
        TYPE_HELLO => Control::Hello {
            nonce: reader.u64()?,
        },
        TYPE_CHALLENGE => Control::Challenge {
            nonce: reader.u64()?,
            mac: reader.array()?,
            refresh_secs: reader.u16()?,
            limit,
        },
        TYPE_JOIN => Control::Join {
            nonce: reader.u64()?,
            mac: reader.array()?,
            groups: read_groups(&mut reader)?,
        },
        TYPE_LEAVE => Control::Leave {
            nonce: reader.u64()?,
            mac: reader.array()?,
            groups: read_groups(&mut reader)?,
        },
        TYPE_DATA => {
            let group = read_group(&mut reader)?;
            if reader.rest.is_empty() {
                return Err(DecodeError::Truncated);
            }
            let datagram = reader.rest;
            reader.rest = &[];
            Control::Data { group, datagram }
        }
        TYPE_KEEPALIVE => Control::Keepalive {
            nonce: reader.u64()?,
        },
        TYPE_TEARDOWN => Control::Teardown {
            nonce: reader.u64()?,
            mac: reader.array()?,
            old: read_socket_addr(&mut reader)?,
        },
        TYPE_GATEWAY => Control::Gateway {
            gateway: NodeId(reader.u64()?),
            hold_ms: reader.u16()?,
            groups: read_groups(&mut reader)?,
        },
        TYPE_REBIND => Control::Rebind {
            nonce: reader.u64()?,
            mac: reader.array()?,
            old_nonce: reader.u64()?,
            old_mac: reader.array()?,
        },
        TYPE_SIGNED_HELLO => Control::SignedHello {
            nonce: reader.u64()?,
        },
        TYPE_SIGNED_CHALLENGE => Control::SignedChallenge {
            nonce: reader.u64()?,
            mac: reader.array()?,
            refresh_secs: reader.u16()?,
            limit,
            observed: read_socket_addr(&mut reader)?,
            relay_key: Fingerprint(reader.array()?),
            voucher: if flags & FLAG_VOUCHER == 0 {
                None
            } else {
                let (voucher, rest) = reader
                    .rest
                    .split_first_chunk::<TOKEN_LEN>()
                    .ok_or(DecodeError::Truncated)?;
                reader.rest = rest;
                Some(voucher)
            },
            signature: reader.array()?,
        },
        other => return Err(DecodeError::UnknownType(other)),
    };
    if padded {
        if reader.rest.iter().any(|&byte| byte != 0) {
            return Err(DecodeError::BadPadding);
        }
    } else if !reader.rest.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(message)
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

const fn is_padded_type(kind: u8) -> bool {
    padded_len(kind) > 0
}

/// The length a padded type is padded to; 0 for types that are not padded.
const fn padded_len(kind: u8) -> usize {
    match kind {
        TYPE_PROBE | TYPE_RELAY_REQUEST | TYPE_HELLO => UNVERIFIED_MIN_LEN,
        TYPE_SIGNED_HELLO => SIGNED_HELLO_MIN_LEN,
        _ => 0,
    }
}

fn check_multicast(group: Ipv6Addr) -> crate::Result<()> {
    if group.is_multicast() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidAddress,
            format!("{group} is not a multicast group address"),
        ))
    }
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// A group list: its count, then each address.
fn put_groups(out: &mut Vec<u8>, groups: &[Ipv6Addr]) {
    // Saturating keeps an (invalid) over-long list invalid: 65535 > 64.
    let count = u16::try_from(groups.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for group in groups {
        out.extend_from_slice(&group.octets());
    }
}

fn put_socket_addr(out: &mut Vec<u8>, addr: SocketAddrV6) {
    out.extend_from_slice(&addr.ip().octets());
    out.extend_from_slice(&addr.port().to_be_bytes());
}

fn read_socket_addr(reader: &mut Reader<'_>) -> Result<SocketAddrV6, DecodeError> {
    let ip = Ipv6Addr::from(reader.array::<ADDR_LEN>()?);
    Ok(SocketAddrV6::new(ip, reader.u16()?, 0, 0))
}

fn read_group(reader: &mut Reader<'_>) -> Result<Ipv6Addr, DecodeError> {
    let group = Ipv6Addr::from(reader.array::<ADDR_LEN>()?);
    if group.is_multicast() {
        Ok(group)
    } else {
        Err(DecodeError::NotMulticast)
    }
}

fn read_groups(reader: &mut Reader<'_>) -> Result<Vec<Ipv6Addr>, DecodeError> {
    let count = usize::from(reader.u16()?);
    if count == 0 || count > MAX_GROUPS_PER_MESSAGE {
        return Err(DecodeError::BadCount);
    }
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        groups.push(read_group(reader)?);
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    |(kind, nonce, other_nonce, flag, number, mac, addr, groups, datagram)| {
                        Fields {
                            kind,
                            nonce,
                            other_nonce,
                            flag,
                            number,
                            mac,
                            addr,
                            groups,
                            datagram,
                        }
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
}
