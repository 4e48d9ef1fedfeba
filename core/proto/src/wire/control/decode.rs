//! Decoding control datagrams: every length, type and field is checked before a
//! [`Control`] is built from it.

use super::{Control, HEADER_LEN, MAGIC, VERSION};
use crate::wire::{DecodeError, MAX_DATAGRAM_SIZE, Reader};

/// Parses and validates one received control datagram.
///
/// Checks, in this order, and fails at the first broken rule: at least [`HEADER_LEN`] bytes
/// (`truncated`), [`MAGIC`] (`bad_magic`), [`VERSION`] (`unsupported_version`), a known type
/// (`unknown_type`), at most 65507 bytes (`oversized`), at least [`UNVERIFIED_MIN_LEN`](super::UNVERIFIED_MIN_LEN) bytes for
/// padded types ([`SIGNED_HELLO_MIN_LEN`](super::SIGNED_HELLO_MIN_LEN) for SIGNED_HELLO; `short_unverified`); then the body fields in order, each checked as it is read:
/// present (`truncated`), heard_beacon 0 or 1 (`bad_field`), group count 1 to
/// [`MAX_GROUPS_PER_MESSAGE`](super::MAX_GROUPS_PER_MESSAGE) (`bad_count`), group addresses multicast (`not_multicast`); then
/// what follows the fields: all zero for padded types (`bad_padding`), at least one byte for DATA
/// (`truncated`), nothing for the others (`trailing_bytes`). Flags other than [`FLAG_LIMIT`](super::FLAG_LIMIT) on
/// OFFER, CHALLENGE and SIGNED_CHALLENGE, [`FLAG_REPEATER`](super::FLAG_REPEATER) on OFFER and [`FLAG_VOUCHER`](super::FLAG_VOUCHER) on
/// SIGNED_CHALLENGE, and the reserved bytes, are ignored. A SIGNED_CHALLENGE's signature and
/// voucher are not verified here.
///
/// Never panics; allocates only the group list of a JOIN or LEAVE (at most 64 addresses).
pub fn decode(datagram: &[u8]) -> Result<Control<'_>, DecodeError> {
    let mut reader = Reader::after_preamble(datagram, HEADER_LEN, MAGIC, VERSION)?;
    let kind = reader.u8()?;
    let flags = reader.u8()?;
    // Reserved for future use: ignored so that older receivers keep accepting what sets them.
    let _reserved = reader.array::<3>()?;
    if !Control::is_known_type(kind) {
        return Err(DecodeError::UnknownType(kind));
    }
    if datagram.len() > MAX_DATAGRAM_SIZE {
        return Err(DecodeError::Oversized);
    }
    let padded_len = Control::padded_len_of(kind);
    let padded = padded_len > 0;
    if padded && datagram.len() < padded_len {
        return Err(DecodeError::ShortUnverified);
    }
    let message = Control::read_body(kind, &mut reader, flags)?;
    if padded {
        if reader.rest.iter().any(|&byte| byte != 0) {
            return Err(DecodeError::BadPadding);
        }
    } else if !reader.rest.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(message)
}
