//! Decoding control datagrams: every length, type and field is checked before a
//! [`Control`] is built from it.

use std::net::{Ipv6Addr, SocketAddrV6};

use super::{
    ADDR_LEN, Control, FLAG_LIMIT, FLAG_REPEATER, FLAG_VOUCHER, HEADER_LEN, MAGIC,
    MAX_GROUPS_PER_MESSAGE, TYPE_BEACON, TYPE_CHALLENGE, TYPE_COOKIE, TYPE_DATA, TYPE_ECHO,
    TYPE_GATEWAY, TYPE_HELLO, TYPE_JOIN, TYPE_KEEPALIVE, TYPE_LAST, TYPE_LEAVE, TYPE_OFFER,
    TYPE_PROBE, TYPE_PROBE_REPLY, TYPE_REBIND, TYPE_RELAY_REQUEST, TYPE_SIGNED_CHALLENGE,
    TYPE_SIGNED_HELLO, TYPE_SOLICIT, TYPE_TEARDOWN, VERSION, is_padded_type, padded_len,
};
use crate::wire::{DecodeError, Fingerprint, MAX_DATAGRAM_SIZE, NodeId, Reader, TOKEN_LEN};

/// Parses and validates one received control datagram.
///
/// Checks, in this order, and fails at the first broken rule: at least [`HEADER_LEN`] bytes
/// (`truncated`), [`MAGIC`] (`bad_magic`), [`VERSION`] (`unsupported_version`), a known type
/// (`unknown_type`), at most 65507 bytes (`oversized`), at least [`UNVERIFIED_MIN_LEN`](super::UNVERIFIED_MIN_LEN) bytes for
/// padded types ([`SIGNED_HELLO_MIN_LEN`](super::SIGNED_HELLO_MIN_LEN) for SIGNED_HELLO; `short_unverified`); then the body fields in order, each checked as it is read:
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
        // A JOIN of no group makes a client that only sends.
        TYPE_JOIN => Control::Join {
            nonce: reader.u64()?,
            mac: reader.array()?,
            groups: read_groups(&mut reader, 0)?,
        },
        TYPE_LEAVE => Control::Leave {
            nonce: reader.u64()?,
            mac: reader.array()?,
            groups: read_groups(&mut reader, 1)?,
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
            groups: read_groups(&mut reader, 1)?,
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

/// A group count of at least `least`, then that many groups.
fn read_groups(reader: &mut Reader<'_>, least: usize) -> Result<Vec<Ipv6Addr>, DecodeError> {
    let count = usize::from(reader.u16()?);
    if count < least || count > MAX_GROUPS_PER_MESSAGE {
        return Err(DecodeError::BadCount);
    }
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        groups.push(read_group(reader)?);
    }
    Ok(groups)
}
