//! The signed tunnel handshake: a node asks a relay to prove its identity key
//! (`docs/security.md`, "Relay identity"). The signature is made and checked in
//! [`crate::crypto`]; here are the message and the bytes it signs.

use std::net::SocketAddrV6;

use super::{
    Body, ControlFields, FLAG_LIMIT, FLAG_VOUCHER, HEADER_LEN, MAC_LEN, Mac, Message, NONCE_LEN,
    SIGNED_CHALLENGE_DOMAIN, SIGNED_CHALLENGE_LEN, SIGNED_HELLO_MIN_LEN, SOCKET_ADDR_LEN,
    TYPE_SIGNED_CHALLENGE, TYPE_SIGNED_HELLO,
    field::{put_socket_addr, put_u64, read_socket_addr},
    probe::nonce_only,
};
use crate::wire::{DecodeError, FINGERPRINT_LEN, Fingerprint, Reader, SIGNATURE_LEN, TOKEN_LEN};

/// SIGNED_HELLO, node → relay (padded to [`SIGNED_HELLO_MIN_LEN`]): opens a tunnel, or starts
/// a rebinding, with a relay that must prove its identity: a relay with an identity key
/// answers SIGNED_CHALLENGE, one without ignores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHello {
    /// Chosen by the node.
    pub nonce: u64,
}

nonce_only! {
    SignedHello: TYPE_SIGNED_HELLO, "signed_hello", SIGNED_HELLO_MIN_LEN;
}

/// SIGNED_CHALLENGE, relay → node: a CHALLENGE signed by the relay's identity key, bound to the
/// node's nonce and to the address the relay saw it at, so that it cannot be replayed to
/// another node or session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedChallenge<'a> {
    /// The SIGNED_HELLO's nonce.
    pub nonce: u64,
    /// `mac(relay secret, node address, nonce)`, as in CHALLENGE.
    pub mac: Mac,
    /// How often the node must refresh its membership, in seconds.
    pub refresh_secs: u16,
    /// Flag [`FLAG_LIMIT`]: the relay takes no new clients.
    pub limit: bool,
    /// The source address and port the relay saw the SIGNED_HELLO come from.
    pub observed: SocketAddrV6,
    /// The fingerprint of the relay's identity key.
    pub relay_key: Fingerprint,
    /// Flag [`FLAG_VOUCHER`]: a capability token of an issuer (Stratum 0's operator) for the
    /// relay's key on the relay group, which nodes that trust the issuer accept instead of a
    /// pinned key. Checked by the node, not by the decoder.
    pub voucher: Option<&'a [u8; TOKEN_LEN]>,
    /// Ed25519 signature of the relay's identity key over [`Self::signed_fields`].
    pub signature: [u8; SIGNATURE_LEN],
}

impl SignedChallenge<'_> {
    /// The bytes a relay's identity key signs: nonce (8), MAC (16), refresh (2), flags (1),
    /// observed address (16) and port (2), key fingerprint (8), the voucher (128, if any), then
    /// [`SIGNED_CHALLENGE_DOMAIN`].
    pub fn signed_fields(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            NONCE_LEN
                + TOKEN_LEN
                + MAC_LEN
                + 3
                + SOCKET_ADDR_LEN
                + FINGERPRINT_LEN
                + SIGNED_CHALLENGE_DOMAIN.len(),
        );
        put_u64(&mut out, self.nonce);
        out.extend_from_slice(&self.mac);
        out.extend_from_slice(&self.refresh_secs.to_be_bytes());
        out.push(self.flags());
        put_socket_addr(&mut out, self.observed);
        out.extend_from_slice(&self.relay_key.0);
        if let Some(voucher) = self.voucher {
            out.extend_from_slice(voucher);
        }
        out.extend_from_slice(SIGNED_CHALLENGE_DOMAIN);
        out
    }
}

impl<'a> Message<'a> for SignedChallenge<'a> {
    const TYPE: u8 = TYPE_SIGNED_CHALLENGE;
    const NAME: &'static str = "signed_challenge";

    fn read(body: &mut Reader<'a>, flags: u8) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: body.u64()?,
            mac: body.array()?,
            refresh_secs: body.u16()?,
            limit: flags & FLAG_LIMIT != 0,
            observed: read_socket_addr(body)?,
            relay_key: Fingerprint(body.array()?),
            voucher: if flags & FLAG_VOUCHER == 0 {
                None
            } else {
                let (voucher, rest) = body
                    .rest
                    .split_first_chunk::<TOKEN_LEN>()
                    .ok_or(DecodeError::Truncated)?;
                body.rest = rest;
                Some(voucher)
            },
            signature: body.array()?,
        })
    }
}

impl<'a> Body<'a> for SignedChallenge<'a> {
    fn flags(&self) -> u8 {
        (u8::from(self.limit) * FLAG_LIMIT) | (u8::from(self.voucher.is_some()) * FLAG_VOUCHER)
    }
    fn body_len(&self) -> usize {
        let voucher_len = if self.voucher.is_some() { TOKEN_LEN } else { 0 };
        SIGNED_CHALLENGE_LEN - HEADER_LEN + voucher_len
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.nonce);
        out.extend_from_slice(&self.mac);
        out.extend_from_slice(&self.refresh_secs.to_be_bytes());
        put_socket_addr(out, self.observed);
        out.extend_from_slice(&self.relay_key.0);
        if let Some(voucher) = self.voucher {
            out.extend_from_slice(voucher);
        }
        out.extend_from_slice(&self.signature);
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.nonce = Some(self.nonce);
        fields.mac = Some(&self.mac);
        fields.refresh_secs = Some(self.refresh_secs);
        fields.limit = Some(self.limit);
        fields.observed = Some(self.observed);
        fields.relay_key = Some(self.relay_key);
        fields.voucher = self.voucher;
        fields.signature = Some(&self.signature);
    }
}
