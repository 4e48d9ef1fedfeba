//! Partial messages waiting for their remaining fragments, indexed by age for expiry and eviction.

use std::{
    collections::BTreeMap,
    mem,
    time::{Duration, Instant},
};

use super::{Fragment, NodeId, usize_from};

/// Identifies a message: its sender and sequence number.
pub(super) type MessageKey = (NodeId, u64);

/// Bookkeeping charged per partial message on top of its payload: its entries in both maps
/// (B-tree nodes may be only half full), the chunk map's first node, the index words and
/// malloc's headers. 256 bytes undercounted a flood of small partial messages by half
/// (`core/tests/reassembly_memory.rs` measures the heap against the charge).
const PARTIAL_OVERHEAD: usize = 768;
/// Bookkeeping charged per announced fragment: one entry of the chunk map in half-full nodes,
/// plus its index bit.
const FRAGMENT_OVERHEAD: usize = 48;

/// What became of a fragment handed to [`Reassembly::add`].
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Added {
    /// Stored; the message still misses fragments.
    Pending,
    /// The same fragment was already stored; nothing changed.
    Duplicate,
    /// The fragment completed the message, which is no longer held.
    Complete(Vec<u8>),
    /// The fragment contradicts the ones before it; the whole partial message was dropped.
    Inconsistent,
}

/// All partial messages of one inbox, with the memory they are charged.
#[derive(Debug, Default)]
pub(super) struct Reassembly {
    partials: BTreeMap<MessageKey, Partial>,
    /// Partial messages by (first fragment's arrival, serial number), oldest first.
    by_age: BTreeMap<(Instant, u64), MessageKey>,
    serials: u64,
    bytes: usize,
}

impl Reassembly {
    /// Memory charged for a message announced by `fragment`: its payload plus bookkeeping, so a
    /// flood of tiny announced messages is bounded as well as a few large ones.
    pub(super) fn cost(fragment: &Fragment<'_>) -> usize {
        let bookkeeping = usize::from(fragment.count) * FRAGMENT_OVERHEAD + PARTIAL_OVERHEAD;
        usize_from(fragment.total_len).saturating_add(bookkeeping)
    }

    /// Memory charged for all partial messages.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(super) fn contains(&self, key: &MessageKey) -> bool {
        self.partials.contains_key(key)
    }

    /// Adds a checked fragment, starting a partial message if it is the first one seen. The
    /// caller makes room for [`cost`](Self::cost) beforehand.
    pub(super) fn add(&mut self, fragment: &Fragment<'_>, now: Instant) -> Added {
        let key = (fragment.sender, fragment.seq);
        let Some(partial) = self.partials.get_mut(&key) else {
            let mut partial = Partial::new(fragment, (now, self.serials));
            self.serials += 1;
            let added = partial.add(fragment);
            if added == Added::Pending {
                self.bytes += partial.cost;
                self.by_age.insert(partial.age, key);
                self.partials.insert(key, partial);
            }
            return added;
        };
        let added = partial.add(fragment);
        if matches!(added, Added::Complete(_) | Added::Inconsistent) {
            self.remove(&key);
        }
        added
    }

    /// Drops the partial message that started first, if any.
    pub(super) fn pop_oldest(&mut self) -> Option<MessageKey> {
        let (_, key) = self.by_age.first_key_value()?;
        let key = *key;
        self.remove(&key);
        Some(key)
    }

    /// Drops one partial message whose first fragment arrived `timeout` or longer before `now`.
    pub(super) fn pop_expired(&mut self, now: Instant, timeout: Duration) -> Option<MessageKey> {
        let started = self.oldest_start()?;
        if now.saturating_duration_since(started) < timeout {
            return None;
        }
        self.pop_oldest()
    }

    /// When the oldest partial message received its first fragment.
    pub(super) fn oldest_start(&self) -> Option<Instant> {
        self.by_age
            .first_key_value()
            .map(|((started, _), _)| *started)
    }

    /// Drops every partial message of `sender` and returns how many there were.
    pub(super) fn remove_sender(&mut self, sender: NodeId) -> u64 {
        let keys: Vec<_> = self
            .partials
            .range((sender, 0)..=(sender, u64::MAX))
            .map(|(key, _)| *key)
            .collect();
        for key in &keys {
            self.remove(key);
        }
        keys.len() as u64
    }

    fn remove(&mut self, key: &MessageKey) {
        if let Some(partial) = self.partials.remove(key) {
            self.by_age.remove(&partial.age);
            self.bytes -= partial.cost;
        }
    }
}

/// One message being reassembled.
#[derive(Debug)]
struct Partial {
    payload: Vec<u8>,
    total_len: u32,
    count: u16,
    /// Chunks stored so far, by offset, to detect overlaps and exact repeats.
    chunks: BTreeMap<u32, Chunk>,
    /// One bit per fragment index received, to detect two different chunks claiming one index.
    indexes: Vec<u64>,
    received_bytes: usize,
    age: (Instant, u64),
    cost: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chunk {
    end: u32,
    index: u16,
}

impl Partial {
    fn new(first: &Fragment<'_>, age: (Instant, u64)) -> Self {
        Self {
            payload: vec![0; usize_from(first.total_len)],
            total_len: first.total_len,
            count: first.count,
            chunks: BTreeMap::new(),
            indexes: vec![0; usize::from(first.count).div_ceil(64)],
            received_bytes: 0,
            age,
            cost: Reassembly::cost(first),
        }
    }

    fn add(&mut self, fragment: &Fragment<'_>) -> Added {
        let same_message = fragment.total_len == self.total_len && fragment.count == self.count;
        if !same_message || fragment.index >= self.count {
            return Added::Inconsistent;
        }
        let end = u32::try_from(fragment.chunk.len())
            .ok()
            .and_then(|len| fragment.offset.checked_add(len))
            .filter(|&end| end <= self.total_len);
        let Some(end) = end else {
            return Added::Inconsistent;
        };
        let chunk = Chunk {
            end,
            index: fragment.index,
        };
        if self.chunks.get(&fragment.offset) == Some(&chunk) {
            return Added::Duplicate;
        }
        let word = usize::from(fragment.index / 64);
        let mask = 1u64 << (fragment.index % 64);
        let Some(index_bits) = self.indexes.get_mut(word) else {
            return Added::Inconsistent;
        };
        if *index_bits & mask != 0 {
            return Added::Inconsistent;
        }
        // Stored chunks are disjoint, so the one starting last before `end` ends last among them.
        let overlaps = self
            .chunks
            .range(..end)
            .next_back()
            .is_some_and(|(_, before)| before.end > fragment.offset);
        let range = usize_from(fragment.offset)..usize_from(end);
        let Some(destination) = self.payload.get_mut(range).filter(|_| !overlaps) else {
            return Added::Inconsistent;
        };
        destination.copy_from_slice(fragment.chunk);
        *index_bits |= mask;
        self.chunks.insert(fragment.offset, chunk);
        self.received_bytes += fragment.chunk.len();
        if self.chunks.len() < usize::from(self.count) {
            return Added::Pending;
        }
        // All fragments arrived without overlap; they must also leave no gap.
        if self.received_bytes == self.payload.len() {
            Added::Complete(mem::take(&mut self.payload))
        } else {
            Added::Inconsistent
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: NodeId = NodeId(1);

    fn piece(offset: u32, index: u16, chunk: &[u8]) -> Fragment<'_> {
        Fragment {
            sender: SENDER,
            seq: 0,
            total_len: 6,
            offset,
            index,
            count: 3,
            chunk,
        }
    }

    #[test]
    fn reassembles_in_any_order_and_ignores_exact_repeats() {
        let now = Instant::now();
        let mut reassembly = Reassembly::default();
        assert_eq!(reassembly.add(&piece(4, 2, b"ef"), now), Added::Pending);
        assert_eq!(reassembly.bytes(), Reassembly::cost(&piece(4, 2, b"ef")));
        assert_eq!(reassembly.add(&piece(4, 2, b"ef"), now), Added::Duplicate);
        assert_eq!(reassembly.add(&piece(0, 0, b"ab"), now), Added::Pending);
        assert_eq!(
            reassembly.add(&piece(2, 1, b"cd"), now),
            Added::Complete(b"abcdef".to_vec())
        );
        assert_eq!(reassembly.bytes(), 0);
        assert!(!reassembly.contains(&(SENDER, 0)));
    }

    #[test]
    fn contradictions_drop_the_partial_message() {
        let now = Instant::now();
        let contradictions = [
            Fragment {
                total_len: 7,
                ..piece(2, 1, b"cd")
            },
            Fragment {
                count: 4,
                ..piece(2, 1, b"cd")
            },
            piece(1, 1, b"cd"), // overlaps the first chunk
            piece(2, 0, b"cd"), // index 0 again, elsewhere
            piece(0, 1, b"ab"), // same place, different index
            piece(5, 1, b"cd"), // past total_len
            piece(2, 3, b"cd"), // index beyond count
        ];
        for contradiction in contradictions {
            let mut reassembly = Reassembly::default();
            assert_eq!(reassembly.add(&piece(0, 0, b"ab"), now), Added::Pending);
            assert_eq!(
                reassembly.add(&contradiction, now),
                Added::Inconsistent,
                "{contradiction:?}"
            );
            assert_eq!(reassembly.bytes(), 0);
        }
    }

    #[test]
    fn a_gap_left_by_all_fragments_is_inconsistent() {
        let now = Instant::now();
        let mut reassembly = Reassembly::default();
        assert_eq!(reassembly.add(&piece(0, 0, b"a"), now), Added::Pending);
        assert_eq!(reassembly.add(&piece(2, 1, b"cd"), now), Added::Pending);
        assert_eq!(
            reassembly.add(&piece(4, 2, b"ef"), now),
            Added::Inconsistent
        );
    }

    #[test]
    fn pops_oldest_first_and_expires_by_age() {
        let start = Instant::now();
        let mut reassembly = Reassembly::default();
        let later = start + Duration::from_secs(1);
        reassembly.add(
            &Fragment {
                seq: 1,
                ..piece(0, 0, b"ab")
            },
            later,
        );
        reassembly.add(
            &Fragment {
                seq: 2,
                ..piece(0, 0, b"ab")
            },
            start,
        );
        reassembly.add(
            &Fragment {
                sender: NodeId(2),
                ..piece(0, 0, b"ab")
            },
            later,
        );
        assert_eq!(reassembly.oldest_start(), Some(start));
        let timeout = Duration::from_secs(5);
        assert_eq!(
            reassembly.pop_expired(start + Duration::from_millis(4999), timeout),
            None
        );
        assert_eq!(
            reassembly.pop_expired(start + timeout, timeout),
            Some((SENDER, 2))
        );
        assert_eq!(reassembly.pop_oldest(), Some((SENDER, 1)));
        assert_eq!(reassembly.remove_sender(NodeId(2)), 1);
        assert_eq!((reassembly.pop_oldest(), reassembly.bytes()), (None, 0));
    }
}
