//! Encoding control messages: the checks of [`Control::validate`] and the bytes of
//! [`Control::encode`].

use std::net::{Ipv6Addr, SocketAddrV6};

use super::{
    ADDR_LEN, Control, FLAG_LIMIT, FLAG_REPEATER, FLAG_VOUCHER, GATEWAY_FIXED_LEN,
    GROUP_LIST_FIXED_LEN, HEADER_LEN, MAC_LEN, MAGIC, MAX_DATA_DATAGRAM, MAX_GROUPS_PER_MESSAGE,
    NONCE_LEN, SIGNED_CHALLENGE_LEN, SOCKET_ADDR_LEN, VERSION,
};
use crate::{
    error::{Error, ErrorKind},
    wire::TOKEN_LEN,
};

impl Control<'_> {
    /// The number of bytes [`encode`](Self::encode) writes (for a valid message).
    pub fn encoded_len(&self) -> usize {
        (HEADER_LEN + self.body_len()).max(self.padded_len())
    }

    /// Checks the rules [`encode`](Self::encode) enforces, without encoding. `Ok` exactly for
    /// the messages [`decode`](super::decode) can give back.
    ///
    /// Only four messages can break a rule, and only by a mistake of their builder: a LEAVE or
    /// GATEWAY with no group, a JOIN, LEAVE or GATEWAY with more than [`MAX_GROUPS_PER_MESSAGE`]
    /// ([`ErrorKind::InvalidConfig`]), a JOIN, LEAVE, GATEWAY or DATA naming a group that is not
    /// multicast ([`ErrorKind::InvalidAddress`]), and a DATA whose datagram is empty
    /// ([`ErrorKind::InvalidConfig`]) or longer than [`MAX_DATA_DATAGRAM`]
    /// ([`ErrorKind::MessageTooLarge`]).
    pub fn validate(&self) -> crate::Result<()> {
        match self {
            Self::Join { groups, .. }
            | Self::Leave { groups, .. }
            | Self::Gateway { groups, .. } => {
                // A JOIN of no group makes a client that only sends.
                let least = usize::from(!matches!(self, Self::Join { .. }));
                if groups.len() < least || groups.len() > MAX_GROUPS_PER_MESSAGE {
                    return Err(Error::new(
                        ErrorKind::InvalidConfig,
                        format!(
                            "a {} names {least} to {MAX_GROUPS_PER_MESSAGE} groups, not {}; \
                             split longer lists over several messages",
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
    pub(super) fn write(&self, out: &mut Vec<u8>) {
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
    pub(super) const fn flags(&self) -> u8 {
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

pub(super) fn put_u64(out: &mut Vec<u8>, value: u64) {
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

pub(super) fn put_socket_addr(out: &mut Vec<u8>, addr: SocketAddrV6) {
    out.extend_from_slice(&addr.ip().octets());
    out.extend_from_slice(&addr.port().to_be_bytes());
}
