//! The datagrams of reliable channels: numbered packets, their FEC parity, and NACKs.
//!
//! A reliable channel's sender wraps each datagram it would send (sealed or signed as usual) in
//! a SEQUENCED datagram that numbers it among the sender's packets on the channel. Packets are
//! grouped in blocks of consecutive numbers; PARITY datagrams carry Reed-Solomon parity over a
//! block, so that one parity packet fills any one hole of that block at any receiver. Receivers
//! ask for repair with NACKs, sent to the channel's group so that one receiver's NACK spares
//! the others theirs, and report how far they got with STATUS datagrams, which hold a sender
//! to the pace of its slowest receiver. The layouts are in `docs/reliability.md`; the state machines that use them
//! are in [`crate::reliable`]. No I/O happens here.

use std::net::Ipv6Addr;

use super::{DecodeError, HEADER_LEN, NodeId, Reader, read_header, write_header};

/// Datagram type of a numbered packet of a reliable channel.
pub const TYPE_SEQUENCED: u8 = 3;
/// Datagram type of one parity symbol over a block of numbered packets.
pub const TYPE_PARITY: u8 = 4;
/// Datagram type of a request for repair.
pub const TYPE_NACK: u8 = 5;
/// Datagram type of a receiver's report of how far it got.
pub const TYPE_STATUS: u8 = 6;
/// Bytes a PARITY datagram adds in front of its symbol: the header and the parity index.
pub const PARITY_OVERHEAD: usize = HEADER_LEN + 2;
/// The most packets a block may hold.
pub const MAX_BLOCK_LEN: u16 = 1024;
/// The most ranges one NACK may list.
pub const MAX_NACK_RANGES: u16 = 64;
/// Bytes of one NACK range: the first packet number (u64) and how many follow it (u32).
const NACK_RANGE_LEN: usize = 12;

/// How many parity symbols a block of `block_len` packets has: as many as its packets, so that
/// a receiver that lost the whole block can be repaired by parity alone, and at least
/// [`SMALL_BLOCK_PARITY`] up to twice its packets, so that a small block (a burst's tail) can
/// be repaired again after a first repair was lost too. Not more: the decoder's work grows with
/// the parity count (twice the packets cost twice the time per decode, measured), and past the
/// last symbol a sender sends the packets asked for again. Sender and receivers must agree on
/// it, because the code depends on it.
pub const fn parity_count(block_len: u16) -> u16 {
    let small = block_len.saturating_mul(2);
    let small = if small < SMALL_BLOCK_PARITY {
        small
    } else {
        SMALL_BLOCK_PARITY
    };
    if block_len > small { block_len } else { small }
}

/// The parity count of a small block is twice its packets, up to this many symbols.
pub const SMALL_BLOCK_PARITY: u16 = 64;

/// One decoded repair-layer datagram, borrowing from the received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair<'a> {
    /// A numbered packet.
    Sequenced(Sequenced<'a>),
    /// A parity symbol.
    Parity(Parity<'a>),
    /// A request for repair.
    Nack(Nack<'a>),
    /// A receiver's progress.
    Status(Status),
}

/// The position a receiver reports when it leaves the channel: its senders stop waiting for it.
pub const LEFT: u64 = u64::MAX;

/// A receiver's report that it has handed on every packet of `target` on the channel of
/// `group` before `position` (or, at [`LEFT`], that it left). It goes to the sender's address by unicast, so it names the
/// channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The receiver reporting.
    pub from: NodeId,
    /// The sender it reports on.
    pub target: NodeId,
    /// The channel's group.
    pub group: Ipv6Addr,
    /// The next packet it waits for, or [`LEFT`].
    pub position: u64,
}

/// A numbered packet: a whole datagram of the channel (type 1 or 2, possibly sealed or signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sequenced<'a> {
    /// The node that sent it.
    pub sender: NodeId,
    /// Its number among the sender's packets on the channel, from 0.
    pub packet: u64,
    /// The datagram it carries.
    pub inner: &'a [u8],
}

/// One parity symbol of the block of packets `block_start .. block_start + block_len`.
///
/// A symbol is computed over the block's packets, each framed as its length (u16) and its
/// bytes, zero-padded to the symbol's length (see [`crate::reliable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parity<'a> {
    /// The node whose packets it repairs.
    pub sender: NodeId,
    /// The first packet number of the block.
    pub block_start: u64,
    /// How many packets the block holds, `1..=`[`MAX_BLOCK_LEN`].
    pub block_len: u16,
    /// Which of the block's [`parity_count`] symbols this is.
    pub index: u16,
    /// The symbol; its length is even and at least 2.
    pub symbol: &'a [u8],
}

/// A receiver's request for the packets it misses of one sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nack<'a> {
    /// The receiver asking.
    pub from: NodeId,
    /// The sender asked.
    pub target: NodeId,
    /// How far the receiver has heard the sender (exclusive): the highest packet number or
    /// block end it has heard of. The sender tells by it whether a repair it sent could have
    /// arrived before the NACK left.
    pub heard: u64,
    count: u16,
    ranges: &'a [u8],
}

impl Nack<'_> {
    /// The missing packets as `(first, count)` ranges, in the order sent.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.ranges.chunks_exact(NACK_RANGE_LEN).map(|range| {
            let (first, count) = range.split_at(8);
            (
                u64::from_be_bytes(first.try_into().unwrap_or_default()),
                u32::from_be_bytes(count.try_into().unwrap_or_default()),
            )
        })
    }

    /// How many ranges it lists (at least 1).
    pub fn range_count(&self) -> usize {
        usize::from(self.count)
    }
}

/// Whether `datagram` claims one of the repair types. Checks no more than its first four
/// bytes; [`decode`] checks the rest.
pub fn is_repair(datagram: &[u8]) -> bool {
    matches!(
        datagram,
        [b'6', b'c', super::VERSION, TYPE_SEQUENCED..=TYPE_STATUS, ..]
    )
}

/// Whether `datagram` claims to be a NACK or a STATUS: what receivers send, which a sealed
/// channel authenticates with a MAC after the message (`Protection::check_control`).
pub fn is_control(datagram: &[u8]) -> bool {
    matches!(
        datagram,
        [b'6', b'c', super::VERSION, TYPE_NACK | TYPE_STATUS, ..]
    )
}

/// Parses and validates a repair-layer datagram. Never panics and never allocates.
///
/// Checks, in order: the header (as for every datagram; its flags must be clear, since these
/// types are not sealed themselves), then the type's rules: a SEQUENCED count of 0, a
/// non-empty packet and a number below `u64::MAX`; a PARITY block of `1..=`[`MAX_BLOCK_LEN`]
/// packets that ends (exclusive) within 64 bits, an index below [`parity_count`] and an even
/// symbol of at least 2 bytes; a NACK with `1..=`[`MAX_NACK_RANGES`] ranges of at least one
/// packet each, ending (exclusive) within 64 bits, and nothing after them; a STATUS of count 0
/// with its target and group and nothing after them. Every range and block ends within 64
/// bits, so that receivers never overflow counting past it.
pub fn decode(datagram: &[u8]) -> Result<Repair<'_>, DecodeError> {
    let header = read_header(datagram, |kind| {
        (TYPE_SEQUENCED..=TYPE_STATUS).contains(&kind)
    })?;
    if header.flags != 0 {
        return Err(DecodeError::UnknownFlags(header.flags));
    }
    let mut body = Reader::new(&datagram[HEADER_LEN..]);
    match header.kind {
        TYPE_SEQUENCED => {
            if header.count != 0 {
                return Err(DecodeError::BadCount);
            }
            if body.rest.is_empty() {
                return Err(DecodeError::Truncated);
            }
            // Receivers count up to the packet after it.
            if header.seq == u64::MAX {
                return Err(DecodeError::SequenceOverflow);
            }
            Ok(Repair::Sequenced(Sequenced {
                sender: header.sender,
                packet: header.seq,
                inner: body.rest,
            }))
        }
        TYPE_PARITY => {
            let block_len = header.count;
            if !(1..=MAX_BLOCK_LEN).contains(&block_len) {
                return Err(DecodeError::BadCount);
            }
            // The packet after the block must have a number too.
            header
                .seq
                .checked_add(u64::from(block_len))
                .ok_or(DecodeError::SequenceOverflow)?;
            let index = body.u16()?;
            let symbol = body.rest;
            if index >= parity_count(block_len)
                || symbol.len() < 2
                || !symbol.len().is_multiple_of(2)
            {
                return Err(DecodeError::BadField);
            }
            Ok(Repair::Parity(Parity {
                sender: header.sender,
                block_start: header.seq,
                block_len,
                index,
                symbol,
            }))
        }
        TYPE_STATUS => {
            if header.count != 0 {
                return Err(DecodeError::BadCount);
            }
            let target = NodeId(body.u64()?);
            let group = Ipv6Addr::from(body.array::<16>()?);
            if !body.rest.is_empty() {
                return Err(DecodeError::TrailingBytes);
            }
            if !group.is_multicast() {
                return Err(DecodeError::NotMulticast);
            }
            Ok(Repair::Status(Status {
                from: header.sender,
                target,
                group,
                position: header.seq,
            }))
        }
        _ => {
            if !(1..=MAX_NACK_RANGES).contains(&header.count) {
                return Err(DecodeError::BadCount);
            }
            let target = NodeId(body.u64()?);
            let ranges = body.bytes(usize::from(header.count) * NACK_RANGE_LEN)?;
            if !body.rest.is_empty() {
                return Err(DecodeError::TrailingBytes);
            }
            let nack = Nack {
                from: header.sender,
                target,
                heard: header.seq,
                count: header.count,
                ranges,
            };
            for (first, count) in nack.ranges() {
                if count == 0 {
                    return Err(DecodeError::BadField);
                }
                first
                    .checked_add(u64::from(count))
                    .ok_or(DecodeError::SequenceOverflow)?;
            }
            Ok(Repair::Nack(nack))
        }
    }
}

/// Writes a SEQUENCED datagram carrying `inner` as packet `packet` of `sender`.
pub fn encode_sequenced(out: &mut Vec<u8>, sender: NodeId, packet: u64, inner: &[u8]) {
    out.reserve(HEADER_LEN + inner.len());
    write_header(out, TYPE_SEQUENCED, 0, sender, packet);
    out.extend_from_slice(inner);
}

/// Writes a PARITY datagram. The caller keeps to the rules [`decode`] checks.
pub fn encode_parity(
    out: &mut Vec<u8>,
    sender: NodeId,
    block_start: u64,
    block_len: u16,
    index: u16,
    symbol: &[u8],
) {
    out.reserve(PARITY_OVERHEAD + symbol.len());
    write_header(out, TYPE_PARITY, block_len, sender, block_start);
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(symbol);
}

/// Writes `status`.
pub fn encode_status(out: &mut Vec<u8>, status: &Status) {
    write_header(out, TYPE_STATUS, 0, status.from, status.position);
    out.extend_from_slice(&status.target.0.to_be_bytes());
    out.extend_from_slice(&status.group.octets());
}

/// Writes a NACK from `from` to `target`, which `from` has heard up to `heard`, for at most
/// [`MAX_NACK_RANGES`] of `ranges` (the first ones); returns how many it took.
pub fn encode_nack(
    out: &mut Vec<u8>,
    from: NodeId,
    target: NodeId,
    heard: u64,
    ranges: &[(u64, u32)],
) -> usize {
    let taken = &ranges[..ranges.len().min(usize::from(MAX_NACK_RANGES))];
    let count = u16::try_from(taken.len()).unwrap_or(MAX_NACK_RANGES);
    write_header(out, TYPE_NACK, count, from, heard);
    out.extend_from_slice(&target.0.to_be_bytes());
    for &(first, len) in taken {
        out.extend_from_slice(&first.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
    }
    taken.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: NodeId = NodeId(0x0102_0304_0506_0708);

    fn reason(bytes: &[u8]) -> &'static str {
        decode(bytes)
            .map(|_| "ok")
            .unwrap_or_else(|err| err.reason())
    }

    #[test]
    fn sequenced_round_trips() {
        let mut out = Vec::new();
        encode_sequenced(&mut out, SENDER, 7, b"inner");
        assert!(is_repair(&out));
        assert_eq!(
            decode(&out),
            Ok(Repair::Sequenced(Sequenced {
                sender: SENDER,
                packet: 7,
                inner: b"inner"
            }))
        );
        // The message codec does not take it for one of its own.
        assert_eq!(super::super::decode(&out), Err(DecodeError::UnknownType(3)));
    }

    #[test]
    fn parity_round_trips_and_checks_its_fields() {
        let mut out = Vec::new();
        encode_parity(&mut out, SENDER, 64, 8, 15, &[1, 2, 3, 4]);
        let Ok(Repair::Parity(parity)) = decode(&out) else {
            panic!("{out:?} did not decode as parity")
        };
        assert_eq!(
            (parity.block_start, parity.block_len, parity.index),
            (64, 8, 15)
        );
        assert_eq!(parity.symbol, [1, 2, 3, 4]);

        let parity_with = |start: u64, len: u16, index: u16, symbol: &[u8]| {
            let mut out = Vec::new();
            encode_parity(&mut out, SENDER, start, len, index, symbol);
            out
        };
        assert_eq!(reason(&parity_with(0, 8, 16, &[0, 0])), "bad_field");
        assert_eq!(reason(&parity_with(0, 8, 0, &[0, 0, 0])), "bad_field");
        assert_eq!(reason(&parity_with(0, 8, 0, &[])), "bad_field");
        assert_eq!(reason(&parity_with(0, 0, 0, &[0, 0])), "bad_count");
        assert_eq!(reason(&parity_with(0, 1025, 0, &[0, 0])), "bad_count");
        assert_eq!(
            reason(&parity_with(u64::MAX, 2, 0, &[0, 0])),
            "sequence_overflow"
        );
        assert_eq!(
            reason(&parity_with(u64::MAX, 1, 0, &[0, 0])),
            "sequence_overflow"
        );
        assert_eq!(reason(&parity_with(u64::MAX - 1, 1, 0, &[0, 0])), "ok");
        assert_eq!(
            reason(&parity_with(0, 8, 0, &[0, 0])[..HEADER_LEN + 1]),
            "truncated"
        );
    }

    #[test]
    fn nack_round_trips_and_checks_its_ranges() {
        let mut out = Vec::new();
        let taken = encode_nack(&mut out, NodeId(9), SENDER, 12, &[(3, 2), (10, 1)]);
        assert_eq!(taken, 2);
        let Ok(Repair::Nack(nack)) = decode(&out) else {
            panic!("{out:?} did not decode as a NACK")
        };
        assert_eq!(
            (nack.from, nack.target, nack.heard, nack.range_count()),
            (NodeId(9), SENDER, 12, 2)
        );
        assert_eq!(nack.ranges().collect::<Vec<_>>(), [(3, 2), (10, 1)]);

        let nack_of = |ranges: &[(u64, u32)]| {
            let mut out = Vec::new();
            encode_nack(&mut out, NodeId(9), SENDER, 0, ranges);
            out
        };
        assert_eq!(reason(&nack_of(&[])), "bad_count");
        assert_eq!(reason(&nack_of(&[(3, 0)])), "bad_field");
        assert_eq!(reason(&nack_of(&[(u64::MAX, 2)])), "sequence_overflow");
        let mut trailing = nack_of(&[(3, 1)]);
        trailing.push(0);
        assert_eq!(reason(&trailing), "trailing_bytes");
        let full = nack_of(&[(3, 1)]);
        assert_eq!(reason(&full[..full.len() - 1]), "truncated");
        // Only the first MAX_NACK_RANGES ranges go out.
        let many: Vec<_> = (0..100).map(|first| (first * 2, 1)).collect();
        let mut out = Vec::new();
        assert_eq!(encode_nack(&mut out, NodeId(9), SENDER, 200, &many), 64);
        assert_eq!(reason(&out), "ok");
    }

    #[test]
    fn status_round_trips() {
        let status = Status {
            from: NodeId(9),
            target: SENDER,
            group: "ff1e::6c".parse().unwrap(),
            position: 1234,
        };
        let mut out = Vec::new();
        encode_status(&mut out, &status);
        assert_eq!(decode(&out), Ok(Repair::Status(status)));
        let mut unicast = Vec::new();
        encode_status(
            &mut unicast,
            &Status {
                group: "2001:db8::1".parse().unwrap(),
                ..status
            },
        );
        assert_eq!(reason(&unicast), "not_multicast");
        assert_eq!(reason(&out[..out.len() - 1]), "truncated");
        let mut trailing = out.clone();
        trailing.push(0);
        assert_eq!(reason(&trailing), "trailing_bytes");
        out[7] = 1;
        assert_eq!(reason(&out), "bad_count");
    }

    #[test]
    fn header_rules_apply() {
        let mut out = Vec::new();
        encode_sequenced(&mut out, SENDER, 1, b"x");
        let mut flagged = out.clone();
        flagged[4] = 0x01;
        assert_eq!(reason(&flagged), "unknown_flags");
        let mut counted = out.clone();
        counted[7] = 1;
        assert_eq!(reason(&counted), "bad_count");
        assert_eq!(reason(&out[..HEADER_LEN]), "truncated");
        let mut messages = out.clone();
        messages[3] = 1;
        assert!(!is_repair(&messages));
        assert_eq!(reason(&messages), "unknown_type");
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_repair_bodies_never_panics(
            kind in TYPE_SEQUENCED..=TYPE_STATUS,
            count: u16,
            body in proptest::collection::vec(0u8.., 0..200),
        ) {
            let mut datagram = Vec::new();
            write_header(&mut datagram, kind, count, SENDER, 5);
            datagram.extend_from_slice(&body);
            let _ = decode(&datagram);
        }
    }
}
