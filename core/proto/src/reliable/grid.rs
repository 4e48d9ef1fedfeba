//! Where one sender's blocks begin and end, as far as a receiver can tell. A sender fills
//! blocks of [`RepairConfig::block_len`](super::RepairConfig::block_len) packets from packet 0
//! and closes one early only where a burst ends, which it announces with parity of that block.
//! So the blocks heard of through parity, and blocks of the configured length after each of
//! them, place every packet. Receivers use it to time their NACKs by block and to weigh what
//! they miss of one.

use std::collections::BTreeMap;

/// Blocks heard of, by start, with their ends.
#[derive(Debug)]
pub(super) struct BlockGrid {
    block_len: u64,
    known: BTreeMap<u64, u64>,
    /// Counts the changes to `known`, so that a receiver can tell when blocks moved.
    edits: u64,
}

impl BlockGrid {
    pub(super) fn new(block_len: u16) -> Self {
        Self {
            block_len: u64::from(block_len.max(1)),
            known: BTreeMap::new(),
            edits: 0,
        }
    }

    /// How many times the blocks known changed.
    pub(super) fn edits(&self) -> u64 {
        self.edits
    }

    /// Notes a block heard of through its parity.
    pub(super) fn note(&mut self, start: u64, len: u16) {
        let end = start.saturating_add(u64::from(len));
        if self.known.insert(start, end) != Some(end) {
            self.edits += 1;
        }
    }

    /// Forgets the blocks before the one `packet` is in: nothing before it is asked for again.
    pub(super) fn forget_before(&mut self, packet: u64) {
        // Called for every packet handed on: nothing to do is the common case.
        while let Some((&first, _)) = self.known.first_key_value() {
            let next = self
                .known
                .range(first.saturating_add(1)..)
                .next()
                .map(|(&start, _)| start);
            if next.is_none_or(|next| next > packet) {
                break;
            }
            self.known.remove(&first);
            self.edits += 1;
        }
    }

    /// The block `packet` is in, as `start..end`.
    pub(super) fn block_of(&self, packet: u64) -> (u64, u64) {
        let base = match self.known.range(..=packet).next_back() {
            Some((&start, &end)) if packet < end => return (start, end),
            Some((_, &end)) => end,
            None => 0,
        };
        let start = base + (packet - base) / self.block_len * self.block_len;
        let mut end = start.saturating_add(self.block_len);
        if let Some((&next, _)) = self.known.range(packet.saturating_add(1)..).next() {
            end = end.min(next);
        }
        (start, end)
    }
}

/// How many packets of `ranges` fall in `start..end`.
pub(super) fn count_within(ranges: &[(u64, u32)], (start, end): (u64, u64)) -> u64 {
    ranges
        .iter()
        .map(|&(first, count)| {
            let last = first.saturating_add(u64::from(count));
            last.min(end).saturating_sub(first.max(start))
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_fall_in_blocks_of_the_configured_length_from_zero() {
        let grid = BlockGrid::new(64);
        assert_eq!(grid.block_of(0), (0, 64));
        assert_eq!(grid.block_of(63), (0, 64));
        assert_eq!(grid.block_of(64), (64, 128));
    }

    #[test]
    fn a_block_closed_early_moves_the_blocks_after_it() {
        let mut grid = BlockGrid::new(64);
        // A burst ended after packet 99: its last block was 64..100.
        grid.note(64, 36);
        assert_eq!(grid.block_of(70), (64, 100));
        assert_eq!(grid.block_of(100), (100, 164));
        assert_eq!(grid.block_of(170), (164, 228));
        // A later block heard of bounds the one before it.
        grid.note(200, 64);
        assert_eq!(grid.block_of(170), (164, 200));
        grid.forget_before(210);
        assert_eq!(grid.block_of(210), (200, 264));
    }

    #[test]
    fn counts_only_what_falls_in_the_block() {
        let ranges = [(3, 2), (60, 10), (u64::MAX - 1, 1)];
        assert_eq!(count_within(&ranges, (0, 64)), 6);
        assert_eq!(count_within(&ranges, (64, 128)), 6);
        assert_eq!(count_within(&ranges, (128, 192)), 0);
    }
}
