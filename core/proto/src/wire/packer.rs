//! Sender side: packs queued messages into as few datagrams as possible.

use super::{
    COUNT_FIELD, FRAGMENT_HEADER_LEN, HEADER_LEN, MAX_DATAGRAM_SIZE, MAX_MESSAGE_SIZE_LIMIT,
    MIN_DATAGRAM_SIZE, NodeId, TYPE_FRAGMENT, TYPE_MESSAGES, varint_len, write_header,
    write_varint,
};
use crate::error::{Error, ErrorKind};

/// Turns one sender's messages on one channel into datagrams.
///
/// Small messages accumulate in an open datagram, which is closed when the next message does not
/// fit, when it is exactly full, or on [`flush`](Self::flush). A message too large for one
/// datagram is sent at once as fragments. Each message, whole or fragmented, takes the next
/// sequence number, starting at 0.
#[derive(Debug)]
pub struct Packer {
    sender: NodeId,
    /// The configured datagram size: what leaves the host, protection included.
    datagram_limit: usize,
    /// What the packer fills: `datagram_limit` minus what sealing and signing add.
    max_datagram: usize,
    max_message: usize,
    /// Bytes of message data one fragment carries.
    chunk_capacity: u16,
    next_seq: u64,
    /// The datagram being filled: header, then records. Empty while no datagram is open.
    open: Vec<u8>,
    open_count: u16,
}

/// Spare capacity of every datagram a [`Packer`] makes, past its datagram size: sealing and
/// signing in place append up to this much for a moment ([`crate::crypto::SIGNING_SCRATCH`]), so that a
/// protected datagram is never reallocated.
pub const PACKER_SPARE: usize = 64;

impl Packer {
    /// Creates a packer whose datagrams are at most `max_datagram` bytes (UDP payload) and which
    /// accepts messages of up to `max_message` bytes.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] if `max_datagram` is outside
    /// [`MIN_DATAGRAM_SIZE`]`..=`[`MAX_DATAGRAM_SIZE`], if `max_message` exceeds
    /// [`MAX_MESSAGE_SIZE_LIMIT`], or if a `max_message` message would need more than 65535
    /// fragments of this datagram size.
    pub fn new(sender: NodeId, max_datagram: usize, max_message: usize) -> crate::Result<Self> {
        let invalid = |message: String| Error::new(ErrorKind::InvalidConfig, message);
        if !(MIN_DATAGRAM_SIZE..=MAX_DATAGRAM_SIZE).contains(&max_datagram) {
            return Err(invalid(format!(
                "the datagram size must be between {MIN_DATAGRAM_SIZE} and {MAX_DATAGRAM_SIZE} \
                 bytes, not {max_datagram}"
            )));
        }
        if max_message > MAX_MESSAGE_SIZE_LIMIT {
            return Err(invalid(format!(
                "the maximum message size must be at most {MAX_MESSAGE_SIZE_LIMIT} bytes, not \
                 {max_message}"
            )));
        }
        let chunk_capacity = chunk_capacity(max_datagram, 0, max_message)?;
        Ok(Self {
            sender,
            datagram_limit: max_datagram,
            max_datagram,
            max_message,
            chunk_capacity,
            next_seq: 0,
            open: Vec::new(),
            open_count: 0,
        })
    }

    /// Leaves `overhead` bytes of every datagram free for what sealing and signing add
    /// ([`crate::crypto::Protection::overhead`]), so that protected datagrams stay within the
    /// datagram size. Closes the open datagram first (appending it to `ready`).
    ///
    /// Fails with [`ErrorKind::InvalidConfig`], changing nothing, if too little room would be
    /// left: a fragment must carry at least one byte, and the maximum message must still fit
    /// 65535 fragments.
    pub fn set_overhead(&mut self, overhead: usize, ready: &mut Vec<Vec<u8>>) -> crate::Result<()> {
        let chunk_capacity = chunk_capacity(self.datagram_limit, overhead, self.max_message)?;
        self.flush(ready);
        self.max_datagram = self.datagram_limit - overhead;
        self.chunk_capacity = chunk_capacity;
        Ok(())
    }

    /// The largest message that travels whole in a datagram of its own, as its only record:
    /// anything longer is fragmented.
    pub fn largest_whole(&self) -> usize {
        let room = self.max_datagram - HEADER_LEN;
        // A record is its length's varint and the message; the varint of `room` is at least as
        // long as the answer's, and at most one byte longer.
        let guess = room - varint_len(room);
        if varint_len(guess + 1) + guess < room {
            guess + 1
        } else {
            guess
        }
        .min(self.max_message)
    }

    /// Makes the next message take sequence number `seq` instead of continuing the count.
    ///
    /// Call it before the first [`push`](Self::push); the conformance vectors use it to show
    /// sequence numbers other than 0.
    pub fn with_first_seq(mut self, seq: u64) -> Self {
        self.next_seq = seq;
        self
    }

    /// Queues one message and returns its sequence number. Completed datagrams are appended to
    /// `ready`: the open datagram is closed when the message does not fit; a message larger than
    /// one datagram's capacity closes the open datagram and is emitted at once as fragments.
    ///
    /// Fails with [`ErrorKind::MessageTooLarge`] if `payload` exceeds the maximum message size;
    /// nothing changes then.
    pub fn push(&mut self, payload: &[u8], ready: &mut Vec<Vec<u8>>) -> crate::Result<u64> {
        if payload.len() > self.max_message {
            return Err(Error::new(
                ErrorKind::MessageTooLarge,
                format!(
                    "the message is {} bytes but the maximum message size is {} bytes; split it \
                     or raise the limit",
                    payload.len(),
                    self.max_message
                ),
            ));
        }
        let seq = self.next_seq;
        let record_len = varint_len(payload.len()) + payload.len();
        if record_len > self.max_datagram - HEADER_LEN {
            self.flush(ready);
            self.push_fragments(seq, payload, ready);
        } else {
            if self.open.len() + record_len > self.max_datagram {
                self.flush(ready);
            }
            if self.open.is_empty() {
                self.open.reserve_exact(self.datagram_limit + PACKER_SPARE);
                write_header(&mut self.open, TYPE_MESSAGES, 0, self.sender, seq);
            }
            write_varint(&mut self.open, payload.len());
            self.open.extend_from_slice(payload);
            // Cannot overflow: each record takes at least one byte (asserted in the parent module).
            self.open_count += 1;
            if self.open.len() == self.max_datagram {
                self.flush(ready);
            }
        }
        // Cannot overflow in practice: 2^64 messages at one per nanosecond take 584 years.
        self.next_seq += 1;
        Ok(seq)
    }

    /// Closes the open datagram, if it holds any message, and appends it to `ready`.
    pub fn flush(&mut self, ready: &mut Vec<Vec<u8>>) {
        if self.open_count == 0 {
            return;
        }
        // The open datagram always starts with a full header, so the field is in bounds.
        self.open[COUNT_FIELD].copy_from_slice(&self.open_count.to_be_bytes());
        ready.push(std::mem::take(&mut self.open));
        self.open_count = 0;
    }

    /// Number of messages waiting in the open datagram.
    pub fn pending(&self) -> usize {
        usize::from(self.open_count)
    }

    /// The sequence number the next pushed message will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    fn push_fragments(&mut self, seq: u64, payload: &[u8], ready: &mut Vec<Vec<u8>>) {
        // `new` bounds max_message, hence the payload, to at most u16::MAX chunks and
        // MAX_MESSAGE_SIZE_LIMIT bytes, so both conversions succeed and every offset fits a u32.
        let chunk_capacity = usize::from(self.chunk_capacity);
        let count = u16::try_from(payload.len().div_ceil(chunk_capacity)).unwrap_or(u16::MAX);
        let total_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
        for (index, chunk) in (0..count).zip(payload.chunks(chunk_capacity)) {
            let offset = u32::from(index) * u32::from(self.chunk_capacity);
            let mut datagram = Vec::with_capacity(self.datagram_limit + PACKER_SPARE);
            write_header(&mut datagram, TYPE_FRAGMENT, 0, self.sender, seq);
            datagram.extend_from_slice(&total_len.to_be_bytes());
            datagram.extend_from_slice(&offset.to_be_bytes());
            datagram.extend_from_slice(&index.to_be_bytes());
            datagram.extend_from_slice(&count.to_be_bytes());
            datagram.extend_from_slice(chunk);
            ready.push(datagram);
        }
    }
}

/// Bytes of message data one fragment carries with `overhead` bytes of a `max_datagram`-byte
/// datagram taken by protection, checked against the 65535-fragment limit for `max_message`.
fn chunk_capacity(max_datagram: usize, overhead: usize, max_message: usize) -> crate::Result<u16> {
    let chunk_capacity = max_datagram
        .checked_sub(overhead.saturating_add(HEADER_LEN + FRAGMENT_HEADER_LEN))
        .filter(|&capacity| capacity > 0)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "{max_datagram}-byte datagrams leave no room for data after {overhead} bytes \
                     of sealing and signing; raise the datagram size"
                ),
            )
        })?;
    if max_message.div_ceil(chunk_capacity) > usize::from(u16::MAX) {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "a {max_message}-byte message would need more than {} fragments of a \
                 {max_datagram}-byte datagram; raise the datagram size or lower the maximum \
                 message size",
                u16::MAX
            ),
        ));
    }
    // Fits: MAX_DATAGRAM_SIZE - HEADER_LEN <= u16::MAX (asserted in the parent module).
    Ok(u16::try_from(chunk_capacity).unwrap_or(u16::MAX))
}

/// Packs `messages` the way one sender whose next sequence number is `first_seq` would, with
/// datagrams of at most `max_datagram` bytes, and returns every datagram in order. Messages
/// may be as large as the format allows ([`MAX_MESSAGE_SIZE_LIMIT`]).
///
/// This is the encode side of the shared conformance vectors, exposed so that tools and every
/// language's tests can produce reference datagrams.
pub fn pack(
    sender: NodeId,
    first_seq: u64,
    max_datagram: usize,
    messages: &[&[u8]],
) -> crate::Result<Vec<Vec<u8>>> {
    let largest = messages
        .iter()
        .map(|message| message.len())
        .max()
        .unwrap_or(0);
    let mut packer = Packer::new(sender, max_datagram, largest)?.with_first_seq(first_seq);
    let mut datagrams = Vec::new();
    for message in messages {
        packer.push(message, &mut datagrams)?;
    }
    packer.flush(&mut datagrams);
    Ok(datagrams)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DEFAULT_DATAGRAM_SIZE, DEFAULT_MAX_MESSAGE_SIZE, Datagram, decode};

    const SENDER: NodeId = NodeId(0x5eed);

    fn packer(max_datagram: usize) -> Packer {
        Packer::new(SENDER, max_datagram, DEFAULT_MAX_MESSAGE_SIZE).unwrap()
    }

    /// Every message of every batch datagram, in order.
    fn unpack(datagrams: &[Vec<u8>]) -> Vec<(u64, Vec<u8>)> {
        let mut messages = Vec::new();
        for datagram in datagrams {
            let Ok(Datagram::Messages(batch)) = decode(datagram) else {
                panic!("not a batch")
            };
            messages.extend(batch.iter().map(|(seq, payload)| (seq, payload.to_vec())));
        }
        messages
    }

    #[test]
    fn the_largest_whole_message_fills_one_datagram_and_one_more_byte_fragments() {
        // Around every varint boundary of the room after the header, and typical sizes.
        for size in [
            128, 151, 152, 153, 1232, 1452, 8952, 16_407, 16_408, 16_409, 65_507,
        ] {
            let mut packer = packer(size);
            let whole = packer.largest_whole();
            let mut ready = Vec::new();
            packer.push(&vec![1; whole], &mut ready).unwrap();
            packer.flush(&mut ready);
            assert_eq!(ready.len(), 1, "{size}");
            // Full, but for a byte where a longer length would not fit.
            assert!(
                size - ready[0].len() <= 1,
                "{size}: {} bytes",
                ready[0].len()
            );
            assert!(
                matches!(decode(&ready[0]), Ok(Datagram::Messages(_))),
                "{size}"
            );
            ready.clear();
            packer.push(&vec![1; whole + 1], &mut ready).unwrap();
            assert!(
                matches!(decode(&ready[0]), Ok(Datagram::Fragment(_))),
                "{size}"
            );
        }
    }

    #[test]
    fn rejects_out_of_range_configuration() {
        let kind = |result: crate::Result<Packer>| result.unwrap_err().kind();
        assert_eq!(
            kind(Packer::new(SENDER, MIN_DATAGRAM_SIZE - 1, 10)),
            ErrorKind::InvalidConfig
        );
        assert_eq!(
            kind(Packer::new(SENDER, MAX_DATAGRAM_SIZE + 1, 10)),
            ErrorKind::InvalidConfig
        );
        let too_big = MAX_MESSAGE_SIZE_LIMIT + 1;
        assert_eq!(
            kind(Packer::new(SENDER, MAX_DATAGRAM_SIZE, too_big)),
            ErrorKind::InvalidConfig
        );
        // 16 MiB in 92-byte chunks would need 182,362 fragments.
        let limit = MAX_MESSAGE_SIZE_LIMIT;
        assert_eq!(
            kind(Packer::new(SENDER, MIN_DATAGRAM_SIZE, limit)),
            ErrorKind::InvalidConfig
        );
        assert!(Packer::new(SENDER, MIN_DATAGRAM_SIZE, 92 * 65_535).is_ok());
        assert!(Packer::new(SENDER, MIN_DATAGRAM_SIZE, 92 * 65_535 + 1).is_err());
        assert!(Packer::new(SENDER, DEFAULT_DATAGRAM_SIZE, limit).is_ok());
    }

    #[test]
    fn packs_small_messages_into_few_datagrams_in_order() {
        let mut packer = packer(DEFAULT_DATAGRAM_SIZE);
        let mut ready = Vec::new();
        let messages: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 64]).collect();
        for (expected_seq, message) in (0..).zip(&messages) {
            assert_eq!(packer.push(message, &mut ready).unwrap(), expected_seq);
        }
        packer.flush(&mut ready);
        // 65 bytes per record, 1208 bytes of room: 18 records per datagram, 6 datagrams.
        assert_eq!(ready.len(), 6);
        assert!(
            ready
                .iter()
                .all(|datagram| datagram.len() <= DEFAULT_DATAGRAM_SIZE)
        );
        let expected: Vec<_> = (0..).zip(messages).collect();
        assert_eq!(unpack(&ready), expected);
        assert_eq!((packer.pending(), packer.next_seq()), (0, 100));
    }

    #[test]
    fn closes_a_datagram_as_soon_as_it_is_exactly_full() {
        let mut packer = packer(MIN_DATAGRAM_SIZE);
        let mut ready = Vec::new();
        // 24 header + (1 + 50) + (1 + 52) = 128.
        packer.push(&[1; 50], &mut ready).unwrap();
        assert_eq!((ready.len(), packer.pending()), (0, 1));
        packer.push(&[2; 52], &mut ready).unwrap();
        assert_eq!((ready.len(), packer.pending()), (1, 0));
        assert_eq!(ready[0].len(), MIN_DATAGRAM_SIZE);
        packer.flush(&mut ready);
        assert_eq!(
            ready.len(),
            1,
            "flushing with nothing pending emits nothing"
        );
    }

    #[test]
    fn a_message_that_does_not_fit_closes_the_open_datagram() {
        let mut packer = packer(MIN_DATAGRAM_SIZE);
        let mut ready = Vec::new();
        packer.push(&[1; 50], &mut ready).unwrap();
        packer.push(&[2; 53], &mut ready).unwrap();
        assert_eq!((ready.len(), packer.pending()), (1, 1));
        packer.flush(&mut ready);
        assert_eq!(unpack(&ready), [(0, vec![1; 50]), (1, vec![2; 53])]);
    }

    #[test]
    fn the_largest_whole_message_fits_one_datagram_and_one_more_byte_fragments() {
        // 24 header + 1-byte length + 103 payload = 128.
        let mut packer = packer(MIN_DATAGRAM_SIZE);
        let mut ready = Vec::new();
        packer.push(&[0; 103], &mut ready).unwrap();
        assert_eq!(ready.len(), 1);
        assert!(matches!(decode(&ready[0]), Ok(Datagram::Messages(_))));
        packer.push(&[0; 104], &mut ready).unwrap();
        assert_eq!(ready.len(), 3);
        assert!(
            ready[1..]
                .iter()
                .all(|d| matches!(decode(d), Ok(Datagram::Fragment(_))))
        );
    }

    #[test]
    fn large_messages_flush_the_open_datagram_and_fragment_at_once() {
        let mut packer = packer(MIN_DATAGRAM_SIZE);
        let mut ready = Vec::new();
        packer.push(b"before", &mut ready).unwrap();
        let large: Vec<u8> = (0..=255).collect();
        assert_eq!(packer.push(&large, &mut ready).unwrap(), 1);
        assert_eq!(packer.pending(), 0);
        assert_eq!(unpack(&ready[..1]), [(0, b"before".to_vec())]);
        // 92 bytes per chunk: 92 + 92 + 72.
        let fragments: Vec<_> = ready[1..]
            .iter()
            .map(|datagram| match decode(datagram) {
                Ok(Datagram::Fragment(fragment)) => fragment,
                other => panic!("expected a fragment, got {other:?}"),
            })
            .collect();
        assert_eq!(fragments.len(), 3);
        for (index, fragment) in (0..).zip(&fragments) {
            assert_eq!(
                (fragment.seq, fragment.index, fragment.count),
                (1, index, 3)
            );
            assert_eq!(fragment.total_len, 256);
            let offset = usize::try_from(fragment.offset).unwrap();
            assert_eq!(
                fragment.chunk,
                &large[offset..offset + fragment.chunk.len()]
            );
        }
        assert_eq!(fragments[2].chunk.len(), 72);
        assert_eq!(packer.push(b"after", &mut ready).unwrap(), 2);
    }

    #[test]
    fn oversized_messages_are_refused_without_side_effects() {
        let mut packer = Packer::new(SENDER, MIN_DATAGRAM_SIZE, 10).unwrap();
        let mut ready = Vec::new();
        packer.push(b"kept", &mut ready).unwrap();
        let err = packer.push(&[0; 11], &mut ready).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MessageTooLarge);
        assert_eq!(
            (ready.len(), packer.pending(), packer.next_seq()),
            (0, 1, 1)
        );
        assert_eq!(packer.push(&[0; 10], &mut ready).unwrap(), 1);
    }

    #[test]
    fn overhead_leaves_room_for_protection() {
        let mut packer = packer(MIN_DATAGRAM_SIZE);
        let mut ready = Vec::new();
        packer.push(b"open", &mut ready).unwrap();
        packer.set_overhead(20, &mut ready).unwrap();
        assert_eq!((ready.len(), packer.pending()), (1, 0), "closed first");
        ready.clear();
        // 108 bytes left: a 83-byte message fills a batch, an 84-byte one fragments in 72s.
        packer.push(&[1; 83], &mut ready).unwrap();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].len(), MIN_DATAGRAM_SIZE - 20);
        packer.push(&[2; 84], &mut ready).unwrap();
        assert_eq!(ready.len(), 3);
        assert_eq!(ready[1].len(), MIN_DATAGRAM_SIZE - 20);
        let err = packer.set_overhead(92, &mut ready).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        let err = packer.set_overhead(usize::MAX, &mut ready).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        packer.set_overhead(0, &mut ready).unwrap();
        packer.push(&[3; 103], &mut ready).unwrap();
        assert_eq!(ready.last().unwrap().len(), MIN_DATAGRAM_SIZE);
        // The fragment limit counts with the smaller chunks.
        let mut big = Packer::new(SENDER, MIN_DATAGRAM_SIZE, 92 * 65_535).unwrap();
        assert!(big.set_overhead(1, &mut ready).is_err());
    }

    proptest::proptest! {
        #[test]
        fn whatever_is_packed_is_received_back_in_order(
            messages in proptest::collection::vec(proptest::collection::vec(0u8.., 0..700), 0..20),
            max_datagram in MIN_DATAGRAM_SIZE..1500,
            first_seq in 0u64..1 << 40,
        ) {
            let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let datagrams = pack(SENDER, first_seq, max_datagram, &refs).unwrap();
            let mut inbox = crate::wire::Inbox::new(crate::wire::InboxLimits::default());
            let mut received = Vec::new();
            for datagram in &datagrams {
                proptest::prop_assert!(datagram.len() <= max_datagram);
                let decoded = decode(datagram).unwrap();
                inbox.accept(&decoded, std::time::Instant::now(), &mut |delivery| {
                    received.push((delivery.seq, delivery.payload));
                });
            }
            let expected: Vec<_> = (first_seq..).zip(messages).collect();
            proptest::prop_assert_eq!(received, expected);
        }
    }

    #[test]
    fn empty_messages_take_one_byte() {
        let mut packer = packer(MIN_DATAGRAM_SIZE).with_first_seq(7);
        let mut ready = Vec::new();
        for _ in 0..MIN_DATAGRAM_SIZE - HEADER_LEN {
            packer.push(b"", &mut ready).unwrap();
        }
        assert_eq!(ready.len(), 1);
        let messages = unpack(&ready);
        assert_eq!(messages.len(), 104);
        assert_eq!(messages.first(), Some(&(7, Vec::new())));
        assert_eq!(messages.last(), Some(&(110, Vec::new())));
    }
}
