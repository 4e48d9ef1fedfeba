//! The datagram codec: how messages become UDP datagrams and back. No I/O happens here.
//!
//! Every datagram starts with a [`HEADER_LEN`]-byte header and is either a batch of whole
//! messages ([`MessageBatch`]) or one piece of a large message ([`Fragment`]). Senders use a
//! [`Packer`] per channel; receivers [`decode`] each datagram and feed it to an [`Inbox`], which
//! drops duplicates and reassembles fragments within fixed memory limits. Time is always passed
//! in, never read. The byte layout is specified in `docs/wire-format.md`.
//!
//! The reachability protocol's control messages (probes, relay requests, the relay tunnel) have
//! their own codec in [`control`], with its own magic so that both kinds can share a socket.

pub mod control;
mod dedup;
mod inbox;
mod keys;
pub mod manifest;
mod packer;
mod reassembly;
pub mod repair;

use std::{fmt, hash::Hash, str::FromStr};

use crate::error::{Error, ErrorKind};

pub use inbox::{Delivery, Inbox, InboxLimits, InboxStats, MAX_DEDUP_WINDOW, SenderLoss};
pub use keys::{FINGERPRINT_LEN, Fingerprint, SIGNATURE_LEN, TOKEN_LEN};
pub use packer::{PACKER_SPARE, Packer, pack};

/// The first two bytes of every datagram: `"6c"`.
pub const MAGIC: [u8; 2] = *b"6c";
/// The protocol version this codec writes and accepts.
pub const VERSION: u8 = 1;
/// Length of the header every datagram starts with.
pub const HEADER_LEN: usize = 24;
/// Length of the fields that follow the header in a fragment datagram, before the chunk.
pub const FRAGMENT_HEADER_LEN: usize = 12;
/// The smallest datagram size a [`Packer`] accepts.
pub const MIN_DATAGRAM_SIZE: usize = 128;
/// A datagram size that is never fragmented by IPv6: 1280 (minimum MTU) - 40 (IPv6) - 8 (UDP).
pub const DEFAULT_DATAGRAM_SIZE: usize = 1232;
/// The largest datagram size a [`Packer`] accepts: the largest UDP payload over IPv4 and IPv6.
pub const MAX_DATAGRAM_SIZE: usize = 65_507;
/// The default largest message, whole or fragmented.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1 << 20;
/// No configuration may allow messages larger than this, and no fragment may announce more.
pub const MAX_MESSAGE_SIZE_LIMIT: usize = 16 << 20;

/// Header flag: the body is sealed with a channel key ([`crate::crypto`]).
pub const FLAG_SEALED: u8 = 0x01;
/// Header flag: a signature trailer ends the datagram ([`crate::crypto`]).
pub const FLAG_SIGNED: u8 = 0x02;
/// Header flag: the signature trailer starts with a capability token ([`crate::crypto::Token`]).
/// Only valid with [`FLAG_SIGNED`].
pub const FLAG_TOKEN: u8 = 0x04;
/// Header flag: the datagram carries no signature of its own; a signed
/// [`manifest`](manifest::Manifest) of its sender lists its digest. Not valid with
/// [`FLAG_SIGNED`].
pub const FLAG_COVERED: u8 = 0x08;
/// Every flag this version defines; a datagram with any other flag bit set is dropped.
const KNOWN_FLAGS: u8 = FLAG_SEALED | FLAG_SIGNED | FLAG_TOKEN | FLAG_COVERED;

/// Datagram type of a batch of whole messages.
pub(crate) const TYPE_MESSAGES: u8 = 1;
/// Datagram type of one fragment of a large message.
pub(crate) const TYPE_FRAGMENT: u8 = 2;
/// Where the flags byte sits in the header.
pub const FLAGS_FIELD: usize = 4;
/// Where the message count sits in the header; the packer fills it in when a datagram closes.
const COUNT_FIELD: std::ops::Range<usize> = 6..8;
/// Record lengths are LEB128 varints of at most this many bytes (28 bits, more than a datagram).
const MAX_VARINT_LEN: usize = 4;

// A batch holds at most one record per byte after the header, so its count always fits the u16
// count field, and a fragment chunk always fits a u16.
const _: () = assert!(MAX_DATAGRAM_SIZE - HEADER_LEN <= u16::MAX as usize);
// A record's length prefix is always shorter than a fragment's extra header, so a message too
// big for one datagram always needs at least two fragments.
const _: () = assert!(MAX_VARINT_LEN < FRAGMENT_HEADER_LEN);

/// Identifies one sender (one context) on the network; chosen at random when the context starts.
///
/// Written and parsed as exactly 16 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::LowerHex for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for NodeId {
    type Err = Error;

    /// Parses exactly 16 hexadecimal digits (either case), as [`Display`](fmt::Display) writes.
    fn from_str(text: &str) -> crate::Result<Self> {
        // from_str_radix alone would also take a sign and shorter strings.
        let well_formed = text.len() == 16 && text.bytes().all(|byte| byte.is_ascii_hexdigit());
        match u64::from_str_radix(text, 16) {
            Ok(id) if well_formed => Ok(Self(id)),
            _ => Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("a node id is exactly 16 hexadecimal digits, not {text:?}"),
            )),
        }
    }
}

/// Why received bytes are not a valid datagram.
///
/// [`reason`](Self::reason) gives each variant a stable name, used by the conformance vectors.
/// Decoding checks, in this order: header length, magic, version, type, flags, then the type's
/// body. Both [`decode`] and [`control::decode`] report it; the variants after `Protected` come
/// only from control messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The datagram ends before a field or record it announces.
    Truncated,
    /// The datagram does not start with [`MAGIC`]: it is not sixcast traffic.
    BadMagic,
    /// The datagram is from a protocol version this codec does not speak.
    UnsupportedVersion(u8),
    /// The datagram type is neither messages nor fragment.
    UnknownType(u8),
    /// A message batch with count 0, a fragment whose header count is not 0, or a control JOIN
    /// or LEAVE naming no group or more than [`control::MAX_GROUPS_PER_MESSAGE`].
    BadCount,
    /// The sequence number of a batch's last message does not fit in 64 bits.
    SequenceOverflow,
    /// A record length is longer than 4 bytes or not minimally encoded.
    BadVarint,
    /// Bytes follow the last record a batch announces, or the last field of a control message.
    TrailingBytes,
    /// Fragment fields contradict each other (see [`Fragment`] for the rules).
    BadFragment,
    /// A fragment announces a message larger than [`MAX_MESSAGE_SIZE_LIMIT`].
    TooLarge,
    /// The header sets flag bits this version does not define, TOKEN without SIGNED, or
    /// COVERED with SIGNED.
    UnknownFlags(u8),
    /// The datagram is sealed or signed: [`crate::crypto::Protection::open`] it, then decode what
    /// it returns.
    Protected,
    /// A control message that is padded because its sender's address is unverified (PROBE,
    /// RELAY_REQUEST, HELLO) is shorter than [`control::UNVERIFIED_MIN_LEN`].
    ShortUnverified,
    /// The padding of a control message is not all zero.
    BadPadding,
    /// A control message field holds a value its type does not allow (a boolean other than 0 or
    /// 1).
    BadField,
    /// A control message names a group address that is not multicast.
    NotMulticast,
    /// A control datagram is longer than [`MAX_DATAGRAM_SIZE`].
    Oversized,
}

impl DecodeError {
    /// A stable snake_case name for the reason, as used in the conformance vectors.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Truncated => "truncated",
            Self::BadMagic => "bad_magic",
            Self::UnsupportedVersion(_) => "unsupported_version",
            Self::UnknownType(_) => "unknown_type",
            Self::BadCount => "bad_count",
            Self::SequenceOverflow => "sequence_overflow",
            Self::BadVarint => "bad_varint",
            Self::TrailingBytes => "trailing_bytes",
            Self::BadFragment => "bad_fragment",
            Self::TooLarge => "too_large",
            Self::UnknownFlags(_) => "unknown_flags",
            Self::Protected => "protected",
            Self::ShortUnverified => "short_unverified",
            Self::BadPadding => "bad_padding",
            Self::BadField => "bad_field",
            Self::NotMulticast => "not_multicast",
            Self::Oversized => "oversized",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("the datagram ends before the data it announces"),
            Self::BadMagic => f.write_str("the datagram does not start with the sixcast magic"),
            Self::UnsupportedVersion(version) => {
                write!(
                    f,
                    "protocol version {version} is not supported (this is version {VERSION})"
                )
            }
            Self::UnknownType(kind) => write!(f, "datagram type {kind} is unknown"),
            Self::BadCount => f.write_str("the message count does not fit the datagram type"),
            Self::SequenceOverflow => f.write_str("the sequence numbers of the batch overflow"),
            Self::BadVarint => f.write_str("a record length is over-long or not minimal"),
            Self::TrailingBytes => f.write_str("bytes follow the last record"),
            Self::BadFragment => f.write_str("the fragment fields are inconsistent"),
            Self::TooLarge => {
                write!(
                    f,
                    "the fragment announces a message over {MAX_MESSAGE_SIZE_LIMIT} bytes"
                )
            }
            Self::UnknownFlags(flags) => {
                write!(f, "the header sets unknown flags {flags:#04x}")
            }
            Self::Protected => f.write_str("the datagram is sealed or signed and was not opened"),
            Self::ShortUnverified => write!(
                f,
                "a message from an unverified address is not padded to {} bytes",
                control::UNVERIFIED_MIN_LEN
            ),
            Self::BadPadding => f.write_str("the padding is not all zero"),
            Self::BadField => f.write_str("a field holds a value its type does not allow"),
            Self::NotMulticast => f.write_str("a group address is not multicast"),
            Self::Oversized => {
                write!(f, "the datagram is longer than {MAX_DATAGRAM_SIZE} bytes")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

impl From<DecodeError> for Error {
    fn from(err: DecodeError) -> Self {
        Self::new(
            ErrorKind::Malformed,
            format!("malformed datagram ({}): {err}", err.reason()),
        )
    }
}

/// One decoded datagram, borrowing from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// One or more whole messages.
    Messages(MessageBatch<'a>),
    /// One piece of a message too large for a single datagram.
    Fragment(Fragment<'a>),
}

impl Datagram<'_> {
    /// The node that sent the datagram.
    pub fn sender(&self) -> NodeId {
        match self {
            Self::Messages(batch) => batch.sender,
            Self::Fragment(fragment) => fragment.sender,
        }
    }
}

/// Whole messages with consecutive sequence numbers from one sender.
///
/// Only [`decode`] creates batches, after checking every record, so iterating cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageBatch<'a> {
    /// The node that sent the messages.
    pub sender: NodeId,
    /// Sequence number of the first message; message `i` has `first_seq + i`.
    pub first_seq: u64,
    count: u16,
    records: &'a [u8],
}

impl<'a> MessageBatch<'a> {
    /// The number of messages in the batch (at least 1).
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether the batch holds no message; never true for a decoded batch.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The messages with their sequence numbers, in the order the sender queued them.
    pub fn iter(&self) -> Records<'a> {
        Records {
            reader: Reader::new(self.records),
            next_seq: self.first_seq,
            remaining: self.count,
        }
    }
}

impl<'a> IntoIterator for &MessageBatch<'a> {
    type Item = (u64, &'a [u8]);
    type IntoIter = Records<'a>;

    fn into_iter(self) -> Records<'a> {
        self.iter()
    }
}

/// Iterator over the `(sequence number, payload)` pairs of a [`MessageBatch`].
#[derive(Debug, Clone)]
pub struct Records<'a> {
    reader: Reader<'a>,
    next_seq: u64,
    remaining: u16,
}

impl<'a> Iterator for Records<'a> {
    type Item = (u64, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        self.remaining = self.remaining.checked_sub(1)?;
        // The records were validated by `decode`, so these reads succeed.
        let len = self.reader.varint().ok()?;
        let payload = self.reader.bytes(len).ok()?;
        let seq = self.next_seq;
        // Only the successor of the batch's last sequence number can wrap, and it is never used.
        self.next_seq = seq.wrapping_add(1);
        Some((seq, payload))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::from(self.remaining);
        (remaining, Some(remaining))
    }
}

impl ExactSizeIterator for Records<'_> {}

/// One piece of a message too large for a single datagram.
///
/// [`decode`] accepts a fragment only if `count >= 2`, `index < count`, `count <= total_len`,
/// the chunk is not empty, `offset + chunk.len() <= total_len`, and `total_len` is at most
/// [`MAX_MESSAGE_SIZE_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment<'a> {
    /// The node that sent the message.
    pub sender: NodeId,
    /// Sequence number of the whole message.
    pub seq: u64,
    /// Length of the whole message.
    pub total_len: u32,
    /// Where the chunk starts in the whole message.
    pub offset: u32,
    /// Position of this fragment among the message's fragments, from 0.
    pub index: u16,
    /// Number of fragments of the message.
    pub count: u16,
    /// The bytes of the message from `offset` on.
    pub chunk: &'a [u8],
}

impl Fragment<'_> {
    /// Checks the rules listed on [`Fragment`]. The inbox re-checks them because the fields are
    /// public, so a hand-built fragment could break them.
    fn check(&self) -> Result<(), DecodeError> {
        let total_len = usize_from(self.total_len);
        if total_len > MAX_MESSAGE_SIZE_LIMIT {
            return Err(DecodeError::TooLarge);
        }
        let end = usize_from(self.offset).checked_add(self.chunk.len());
        let consistent = self.count >= 2
            && self.index < self.count
            && usize::from(self.count) <= total_len
            && !self.chunk.is_empty()
            && end.is_some_and(|end| end <= total_len);
        if consistent {
            Ok(())
        } else {
            Err(DecodeError::BadFragment)
        }
    }
}

/// The header fields of a datagram, checked up to its flags but not its body.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The datagram type.
    pub kind: u8,
    /// The flags byte.
    pub flags: u8,
    /// Messages in a batch, or the fragment's index.
    pub count: u16,
    /// The sending node.
    pub sender: NodeId,
    /// The sender's sequence number of the datagram.
    pub seq: u64,
}

/// Reads and checks a datagram's header: length, magic, version, type and flags, in this order.
/// Only the types that may be sealed and signed pass: message batches, fragments and manifests;
/// the repair types have [`repair::decode`].
#[doc(hidden)]
pub fn decode_header(datagram: &[u8]) -> Result<Header, DecodeError> {
    read_header(datagram, |kind| {
        kind == TYPE_MESSAGES || kind == TYPE_FRAGMENT || kind == manifest::TYPE_MANIFEST
    })
}

/// [`decode_header`] for the datagram types `known` accepts.
fn read_header(datagram: &[u8], known: impl Fn(u8) -> bool) -> Result<Header, DecodeError> {
    let mut reader = Reader::after_preamble(datagram, HEADER_LEN, MAGIC, VERSION)?;
    let kind = reader.u8()?;
    if !known(kind) {
        return Err(DecodeError::UnknownType(kind));
    }
    // A flag changes how the datagram must be read, so guessing past an unknown one is unsafe.
    let flags = reader.u8()?;
    let token_unsigned = flags & FLAG_TOKEN != 0 && flags & FLAG_SIGNED == 0;
    let covered_signed = flags & FLAG_COVERED != 0 && flags & FLAG_SIGNED != 0;
    if flags & !KNOWN_FLAGS != 0 || token_unsigned || covered_signed {
        return Err(DecodeError::UnknownFlags(flags));
    }
    // The reserved byte is for future use: ignored so that older receivers keep accepting it.
    let _reserved = reader.u8()?;
    Ok(Header {
        kind,
        flags,
        count: reader.u16()?,
        sender: NodeId(reader.u64()?),
        seq: reader.u64()?,
    })
}

/// Parses and validates one received datagram whose flags are clear (a sealed or signed one is
/// opened first, which clears them).
///
/// Never panics and never allocates, whatever the input.
pub fn decode(datagram: &[u8]) -> Result<Datagram<'_>, DecodeError> {
    let header = decode_header(datagram)?;
    if header.flags != 0 {
        return Err(DecodeError::Protected);
    }
    let Header {
        kind,
        count,
        sender,
        seq,
        ..
    } = header;
    let body = Reader::new(&datagram[HEADER_LEN..]);
    match kind {
        TYPE_MESSAGES => decode_messages(sender, seq, count, body.rest),
        TYPE_FRAGMENT => decode_fragment(sender, seq, count, body),
        // Manifests carry no messages: manifest::decode reads them.
        _ => Err(DecodeError::UnknownType(kind)),
    }
}

fn decode_messages(
    sender: NodeId,
    first_seq: u64,
    count: u16,
    records: &[u8],
) -> Result<Datagram<'_>, DecodeError> {
    let last_offset = count.checked_sub(1).ok_or(DecodeError::BadCount)?;
    first_seq
        .checked_add(u64::from(last_offset))
        .ok_or(DecodeError::SequenceOverflow)?;
    let mut reader = Reader::new(records);
    for _ in 0..count {
        let len = reader.varint()?;
        reader.bytes(len)?;
    }
    if !reader.rest.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(Datagram::Messages(MessageBatch {
        sender,
        first_seq,
        count,
        records,
    }))
}

fn decode_fragment(
    sender: NodeId,
    seq: u64,
    header_count: u16,
    mut reader: Reader<'_>,
) -> Result<Datagram<'_>, DecodeError> {
    if header_count != 0 {
        return Err(DecodeError::BadCount);
    }
    let total_len = reader.u32()?;
    let offset = reader.u32()?;
    let index = reader.u16()?;
    let count = reader.u16()?;
    let fragment = Fragment {
        sender,
        seq,
        total_len,
        offset,
        index,
        count,
        chunk: reader.rest,
    };
    fragment.check()?;
    Ok(Datagram::Fragment(fragment))
}

/// Widens a length from the wire; saturates on (hypothetical) targets with a narrower `usize`,
/// where such a length could not be held in memory anyway.
fn usize_from(value: u32) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// Writes a datagram header; a batch's count is patched in at [`COUNT_FIELD`] when it closes.
fn write_header(out: &mut Vec<u8>, kind: u8, count: u16, sender: NodeId, seq: u64) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, kind, 0, 0]);
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&sender.0.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
}

/// Number of bytes [`write_varint`] uses for `value`.
fn varint_len(value: usize) -> usize {
    let significant_bits = usize::BITS - value.leading_zeros();
    // Zero still takes one byte; each byte carries 7 bits.
    significant_bits.div_ceil(7).max(1) as usize
}

/// Writes `value` as LEB128: 7 bits per byte, least significant first, high bit = more follow.
fn write_varint(out: &mut Vec<u8>, mut value: usize) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads big-endian fields from untrusted bytes; every read checks the length first.
#[derive(Debug, Clone)]
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader past the preamble every datagram starts with, data or control: fails when
    /// `datagram` is shorter than its header (`header_len`), or its magic or version is not
    /// `magic` or `version`, checked in this order.
    fn after_preamble(
        datagram: &'a [u8],
        header_len: usize,
        magic: [u8; 2],
        version: u8,
    ) -> Result<Self, DecodeError> {
        if datagram.len() < header_len {
            return Err(DecodeError::Truncated);
        }
        let mut reader = Self::new(datagram);
        if reader.array::<2>()? != magic {
            return Err(DecodeError::BadMagic);
        }
        let found = reader.u8()?;
        if found != version {
            return Err(DecodeError::UnsupportedVersion(found));
        }
        Ok(reader)
    }

    fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.array().map(u8::from_be_bytes)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let (head, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(DecodeError::Truncated)?;
        self.rest = rest;
        Ok(head)
    }

    /// Reads a LEB128 length of at most [`MAX_VARINT_LEN`] bytes, minimally encoded.
    fn varint(&mut self) -> Result<usize, DecodeError> {
        let mut value = 0;
        for (position, &byte) in self.rest.iter().take(MAX_VARINT_LEN).enumerate() {
            value |= usize::from(byte & 0x7f) << (7 * position);
            if byte & 0x80 == 0 {
                // A final zero byte after the first adds nothing: the same value has a shorter form.
                if byte == 0 && position > 0 {
                    return Err(DecodeError::BadVarint);
                }
                self.bytes(position + 1)?;
                return Ok(value);
            }
        }
        if self.rest.len() >= MAX_VARINT_LEN {
            Err(DecodeError::BadVarint)
        } else {
            Err(DecodeError::Truncated)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: NodeId = NodeId(0x0123_4567_89ab_cdef);

    fn header(kind: u8, count: u16, seq: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(&mut out, kind, count, SENDER, seq);
        out
    }

    fn batch_of(records: &[&[u8]], seq: u64) -> Vec<u8> {
        let count = u16::try_from(records.len()).unwrap();
        let mut out = header(TYPE_MESSAGES, count, seq);
        for record in records {
            write_varint(&mut out, record.len());
            out.extend_from_slice(record);
        }
        out
    }

    fn fragment_of(total_len: u32, offset: u32, index: u16, count: u16, chunk: &[u8]) -> Vec<u8> {
        let mut out = header(TYPE_FRAGMENT, 0, 9);
        out.extend_from_slice(&total_len.to_be_bytes());
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&index.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(chunk);
        out
    }

    fn reason(bytes: &[u8]) -> &'static str {
        decode(bytes).expect_err("must be rejected").reason()
    }

    #[test]
    fn batch_round_trips_with_consecutive_sequence_numbers() {
        let long = vec![7; 300];
        let bytes = batch_of(&[b"one", b"", &long], 41);
        let Ok(Datagram::Messages(batch)) = decode(&bytes) else {
            panic!("not a batch")
        };
        assert_eq!(
            (batch.sender, batch.first_seq, batch.len()),
            (SENDER, 41, 3)
        );
        assert!(!batch.is_empty());
        let records: Vec<_> = batch.iter().collect();
        assert_eq!(
            records,
            [(41, &b"one"[..]), (42, &b""[..]), (43, &long[..])]
        );
        assert_eq!(batch.iter().len(), 3);
    }

    #[test]
    fn fragment_round_trips() {
        let bytes = fragment_of(10, 4, 1, 2, b"abcdef");
        let Ok(Datagram::Fragment(fragment)) = decode(&bytes) else {
            panic!("not a fragment")
        };
        let expected = Fragment {
            sender: SENDER,
            seq: 9,
            total_len: 10,
            offset: 4,
            index: 1,
            count: 2,
            chunk: b"abcdef",
        };
        assert_eq!(fragment, expected);
        assert_eq!(Datagram::Fragment(fragment).sender(), SENDER);
    }

    #[test]
    fn the_reserved_byte_is_ignored_and_flags_are_not() {
        let mut bytes = batch_of(&[b"x"], 0);
        bytes[5] = 0xff;
        assert!(matches!(decode(&bytes), Ok(Datagram::Messages(_))));
        for (flags, expected) in [
            (0x10, DecodeError::UnknownFlags(0x10)),
            (FLAG_TOKEN, DecodeError::UnknownFlags(FLAG_TOKEN)),
            (FLAG_COVERED, DecodeError::Protected),
            (FLAG_COVERED | FLAG_SEALED, DecodeError::Protected),
            (
                FLAG_COVERED | FLAG_SIGNED,
                DecodeError::UnknownFlags(FLAG_COVERED | FLAG_SIGNED),
            ),
            (FLAG_TOKEN | FLAG_SIGNED, DecodeError::Protected),
            (0x83, DecodeError::UnknownFlags(0x83)),
            (FLAG_SEALED, DecodeError::Protected),
            (FLAG_SIGNED, DecodeError::Protected),
        ] {
            bytes[FLAGS_FIELD] = flags;
            assert_eq!(decode(&bytes), Err(expected), "{flags:#x}");
        }
    }

    #[test]
    fn header_errors() {
        let valid = batch_of(&[b"x"], 0);
        assert_eq!(reason(&valid[..HEADER_LEN - 1]), "truncated");
        assert_eq!(reason(&[]), "truncated");
        let mut bad_magic = valid.clone();
        bad_magic[1] = b'C';
        assert_eq!(decode(&bad_magic), Err(DecodeError::BadMagic));
        let mut version_2 = valid.clone();
        version_2[2] = 2;
        assert_eq!(decode(&version_2), Err(DecodeError::UnsupportedVersion(2)));
        let mut type_3 = valid;
        type_3[3] = 3;
        assert_eq!(decode(&type_3), Err(DecodeError::UnknownType(3)));
    }

    #[test]
    fn batch_errors() {
        assert_eq!(reason(&header(TYPE_MESSAGES, 0, 0)), "bad_count");
        assert_eq!(
            reason(&batch_of(&[b"a", b"b"], u64::MAX)),
            "sequence_overflow"
        );
        assert!(decode(&batch_of(&[b"a"], u64::MAX)).is_ok());

        let mut over_long = header(TYPE_MESSAGES, 1, 0);
        over_long.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x00]);
        assert_eq!(reason(&over_long), "bad_varint");
        let mut non_minimal = header(TYPE_MESSAGES, 1, 0);
        non_minimal.extend_from_slice(&[0x81, 0x00, b'x']);
        assert_eq!(reason(&non_minimal), "bad_varint");
        let mut cut_varint = header(TYPE_MESSAGES, 1, 0);
        cut_varint.push(0x80);
        assert_eq!(reason(&cut_varint), "truncated");

        let mut beyond_end = header(TYPE_MESSAGES, 1, 0);
        beyond_end.extend_from_slice(&[5, b'a', b'b']);
        assert_eq!(reason(&beyond_end), "truncated");
        let mut missing_record = batch_of(&[b"a"], 0);
        missing_record[COUNT_FIELD].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(reason(&missing_record), "truncated");

        let mut trailing = batch_of(&[b"a"], 0);
        trailing.push(0);
        assert_eq!(reason(&trailing), "trailing_bytes");
    }

    #[test]
    fn fragment_errors() {
        let mut counted = fragment_of(4, 0, 0, 2, b"ab");
        counted[COUNT_FIELD].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(reason(&counted), "bad_count");
        assert_eq!(
            reason(&fragment_of(4, 0, 0, 2, b"")[..HEADER_LEN + 11]),
            "truncated"
        );
        assert_eq!(reason(&fragment_of(4, 0, 0, 1, b"ab")), "bad_fragment");
        assert_eq!(reason(&fragment_of(4, 0, 2, 2, b"ab")), "bad_fragment");
        assert_eq!(reason(&fragment_of(4, 0, 0, 2, b"")), "bad_fragment");
        assert_eq!(reason(&fragment_of(4, 3, 1, 2, b"ab")), "bad_fragment");
        assert_eq!(
            reason(&fragment_of(4, u32::MAX, 1, 2, b"ab")),
            "bad_fragment"
        );
        assert_eq!(reason(&fragment_of(2, 0, 0, 3, b"ab")), "bad_fragment");
        let over_limit = u32::try_from(MAX_MESSAGE_SIZE_LIMIT + 1).unwrap();
        assert_eq!(
            reason(&fragment_of(over_limit, 0, 0, 2, b"ab")),
            "too_large"
        );
        let at_limit = u32::try_from(MAX_MESSAGE_SIZE_LIMIT).unwrap();
        assert!(decode(&fragment_of(at_limit, at_limit - 2, 1, 2, b"ab")).is_ok());
    }

    #[test]
    fn varint_lengths_match_encoding() {
        for value in [
            0,
            1,
            0x7f,
            0x80,
            0x3fff,
            0x4000,
            0x1f_ffff,
            0x20_0000,
            0x0fff_ffff,
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(out.len(), varint_len(value), "{value:#x}");
            assert_eq!(Reader::new(&out).varint(), Ok(value));
        }
    }

    #[test]
    fn decode_errors_become_malformed_errors() {
        let err = Error::from(DecodeError::UnsupportedVersion(2));
        assert_eq!(err.kind(), ErrorKind::Malformed);
        assert!(err.message().contains("version 2"), "{}", err.message());
    }

    #[test]
    fn node_ids_print_and_parse_as_16_hex_digits() {
        assert_eq!(NodeId(0xab).to_string(), "00000000000000ab");
        assert_eq!(format!("{:x}", SENDER), "0123456789abcdef");
        assert_eq!("0123456789ABCDEF".parse::<NodeId>().unwrap(), SENDER);
        for bad in [
            "",
            "abc",
            "+123456789abcdef",
            "0123456789abcdefa",
            "0123456789abcdeg",
        ] {
            let err = bad.parse::<NodeId>().expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        }
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(0u8.., 0..200)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decoding_arbitrary_bodies_never_panics(
            kind in 0u8..4,
            count in 0u16..5,
            body in proptest::collection::vec(0u8.., 0..64),
        ) {
            let mut bytes = header(kind, count, 7);
            bytes.extend_from_slice(&body);
            if let Ok(Datagram::Messages(batch)) = decode(&bytes) {
                proptest::prop_assert_eq!(batch.iter().count(), batch.len());
            }
        }
    }
}
