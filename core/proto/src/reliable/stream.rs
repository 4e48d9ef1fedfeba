//! What a receiver knows of one sender's stream: the packets waiting behind holes, the parity
//! heard, the holes' timers and ages, and what was reported.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    RepairConfig,
    grid::{BlockGrid, count_within},
};

/// Parity symbols heard for one block.
#[derive(Debug)]
pub(super) struct ParityBlock {
    pub(super) len: u16,
    pub(super) symbols: BTreeMap<u16, Vec<u8>>,
}

/// What a receiver knows of one sender's packets; `T` is what the caller notes of how each
/// arrived.
#[derive(Debug)]
pub(super) struct Stream<T> {
    /// The next packet to hand on; everything before it was handed on or given up.
    pub(super) next: u64,
    /// Where the sender's packets are known to reach (exclusive): the highest packet or block
    /// end heard of.
    pub(super) end: u64,
    /// Packets from `next` on, waiting for the holes before them: changed through
    /// [`Self::wait`] and [`Self::take_next`].
    waiting: BTreeMap<u64, (Arc<[u8]>, T)>,
    /// Their bytes, kept as they come and go: checked for every packet.
    waiting_bytes: usize,
    /// Counts the changes to the holes other than the stream growing at its end or moving its
    /// position: a packet or a block end past `end`, a hole filled.
    hole_edits: u64,
    /// What the hole timers were last fitted to (see [`Self::needs_fitting`]): until it
    /// changes, fitting them again would change nothing, and costs a pass over every waiting
    /// packet.
    fitted: Option<Fit>,
    /// Packets handed on, kept while parity might still need them.
    pub(super) kept: BTreeMap<u64, Arc<[u8]>>,
    pub(super) parity: BTreeMap<u64, ParityBlock>,
    /// Where the sender's blocks are, to weigh other receivers' NACKs block by block.
    pub(super) grid: BlockGrid,
    /// When to ask for each hole, by the hole's first packet when it was found: a random delay
    /// after it was found, or a wait for the repair after it was asked for (by this receiver
    /// or another one heard).
    pub(super) hole_timers: BTreeMap<u64, Instant>,
    /// The holes whose timer another receiver's NACK pushed back since this receiver last
    /// asked: pushed once, so that a stream of others' NACKs cannot silence this one.
    pub(super) suppressed: BTreeSet<u64>,
    /// How long to wait for a repair after a NACK: doubles with each unanswered one.
    pub(super) backoff: Duration,
    /// Since when the oldest hole has been the oldest: since the position last moved.
    pub(super) hole_since: Option<Instant>,
    /// When each open hole opened, by its first packet then.
    pub(super) opened: BTreeMap<u64, Instant>,
    pub(super) last_heard: Instant,
    /// How the sender's latest packet arrived: where this receiver's reports go.
    pub(super) reply_to: Option<T>,
    /// The position last reported to the sender, and when.
    pub(super) reported: Option<(u64, Instant)>,
    /// When the next report is due, if the position moved since the last.
    pub(super) status_at: Option<Instant>,
    /// Bytes handed on since the last report.
    pub(super) unreported_bytes: usize,
}

impl<T> Stream<T> {
    pub(super) fn new(first: u64, now: Instant, config: &RepairConfig) -> Self {
        Self {
            next: first,
            end: first,
            waiting: BTreeMap::new(),
            waiting_bytes: 0,
            hole_edits: 0,
            fitted: None,
            kept: BTreeMap::new(),
            parity: BTreeMap::new(),
            grid: BlockGrid::new(config.block_len),
            hole_timers: BTreeMap::new(),
            suppressed: BTreeSet::new(),
            backoff: config.repair_wait,
            hole_since: None,
            opened: BTreeMap::new(),
            last_heard: now,
            reply_to: None,
            reported: None,
            status_at: None,
            unreported_bytes: 0,
        }
    }

    /// When the oldest hole is given up: once it has been open, and the position has not
    /// moved, for `give_up`.
    pub(super) fn give_up_at(&self, give_up: Duration) -> Option<Instant> {
        let since = self.hole_since?;
        let arrived = self.waiting.keys().next().copied().unwrap_or(self.end);
        if arrived <= self.next {
            // No hole in front: packets wait for the application, not for a repair.
            return None;
        }
        let opened = self
            .opened
            .range(self.next..arrived)
            .map(|(_, &at)| at)
            .min();
        Some(opened.map_or(since, |opened| opened.max(since)) + give_up)
    }

    /// The packets from `next` to `end` that have not arrived, as `(first, count)` ranges.
    pub(super) fn holes(&self) -> Vec<(u64, u32)> {
        let mut holes = Vec::new();
        let mut from = self.next;
        let waiting = self
            .waiting
            .keys()
            .copied()
            .chain(std::iter::once(self.end));
        for present in waiting {
            if present > from {
                let count = u32::try_from(present - from).unwrap_or(u32::MAX);
                holes.push((from, count));
            }
            // The last `present` is `end`, which may be 2^64 - 1: nothing follows it.
            from = present.saturating_add(1);
        }
        holes
    }

    /// The holes to ask for: every hole, less as many per block as parity symbols of that block
    /// are held here already. Any symbol fills any one hole, so the sender, which sends a block
    /// as many fresh symbols as a NACK lists holes of it, then sends only what is still needed.
    /// When holes that have no NACK timer (all in a block that seems open) get one: once a
    /// sender heard last at `last_heard` has surely closed the block it was filling, after its
    /// tail delay and a repair wait for the announcement to arrive. `None` while every hole has
    /// a timer, or there is none.
    pub(super) fn unasked_until(&self, config: &RepairConfig) -> Option<Instant> {
        (self.hole_timers.is_empty() && !self.opened.is_empty())
            .then(|| self.last_heard + config.tail_delay + config.repair_wait)
    }

    /// The block of the hole at `first`, as its length and how many of its packets are missing
    /// here (of `holes`), less the parity symbols of it held: what this receiver would ask of it.
    pub(super) fn need_in_block(&self, first: u64, holes: &[(u64, u32)]) -> (u64, u64) {
        let block = self.grid.block_of(first);
        let held = self
            .parity
            .get(&block.0)
            .map_or(0, |parity| parity.symbols.len() as u64);
        (
            block.1 - block.0,
            count_within(holes, block).saturating_sub(held),
        )
    }

    pub(super) fn wanted(&self) -> Vec<(u64, u32)> {
        let holes = self.holes();
        // Per block with parity held: its end, and how many of its holes to list.
        let mut quota: BTreeMap<u64, (u64, u64)> = self
            .parity
            .iter()
            .filter(|(_, block)| !block.symbols.is_empty())
            .map(|(&start, block)| (start, (start + u64::from(block.len), 0)))
            .collect();
        if quota.is_empty() {
            return holes;
        }
        for &(first, count) in &holes {
            let end = first.saturating_add(u64::from(count));
            for (&start, (block_end, left)) in quota.range_mut(..end) {
                *left += (*block_end).min(end).saturating_sub(start.max(first));
            }
        }
        for (start, (_, left)) in &mut quota {
            let held = self
                .parity
                .get(start)
                .map_or(0, |block| block.symbols.len());
            *left = left.saturating_sub(held as u64);
        }
        let mut wanted = Vec::with_capacity(holes.len());
        for (first, count) in holes {
            let end = first.saturating_add(u64::from(count));
            let mut at = first;
            while at < end {
                // The block with parity that `at` is in, or the next one to start in the hole.
                let inside = quota
                    .range_mut(..=at)
                    .next_back()
                    .filter(|(_, (block_end, _))| *block_end > at);
                match inside {
                    Some((_, (block_end, left))) => {
                        let stop = (*block_end).min(end);
                        let take = (stop - at).min(*left);
                        *left -= take;
                        if take > 0 {
                            push_range(&mut wanted, at, take);
                        }
                        at = stop;
                    }
                    None => {
                        let stop = quota.range(at..end).next().map_or(end, |(&start, _)| start);
                        push_range(&mut wanted, at, stop - at);
                        at = stop;
                    }
                }
            }
        }
        wanted
    }

    pub(super) fn missing(&self) -> u64 {
        self.end - self.next - self.waiting.len() as u64
    }

    pub(super) fn have(&self, packet: u64) -> Option<&[u8]> {
        self.waiting
            .get(&packet)
            .map(|(bytes, _)| &bytes[..])
            .or_else(|| self.kept.get(&packet).map(|bytes| &bytes[..]))
    }

    pub(super) fn waiting_bytes(&self) -> usize {
        self.waiting_bytes
    }

    pub(super) fn is_waiting(&self, packet: u64) -> bool {
        self.waiting.contains_key(&packet)
    }

    /// The first packet waiting, if any.
    pub(super) fn first_waiting(&self) -> Option<u64> {
        self.waiting.keys().next().copied()
    }

    /// Puts `packet` among those waiting (replacing a copy already there), and moves `end`
    /// past it.
    pub(super) fn wait(&mut self, packet: u64, datagram: Arc<[u8]>, tag: T) {
        if packet != self.end {
            self.hole_edits += 1;
        }
        self.end = self.end.max(packet.saturating_add(1));
        self.waiting_bytes += datagram.len();
        if let Some((replaced, _)) = self.waiting.insert(packet, (datagram, tag)) {
            self.waiting_bytes -= replaced.len();
        }
    }

    /// Takes the packet at `next`, if it is waiting (the caller moves `next` on).
    pub(super) fn take_next(&mut self) -> Option<(Arc<[u8]>, T)> {
        let taken = self.waiting.remove(&self.next)?;
        self.waiting_bytes -= taken.0.len();
        Some(taken)
    }

    /// Moves `end` to at least `end`: a block end heard, whose missing packets are holes.
    pub(super) fn extend_to(&mut self, end: u64) {
        if end > self.end {
            self.end = end;
            self.hole_edits += 1;
        }
    }

    /// Whether the hole timers need fitting to the holes again, noting that they are about to
    /// be. They need it when the holes changed, or a block closed (its holes are asked for
    /// then): both show in the position, the count of hole edits, the block grid and the block
    /// that `end` is in.
    pub(super) fn needs_fitting(&mut self) -> bool {
        let now = Some(Fit {
            next: self.next,
            hole_edits: self.hole_edits,
            grid_edits: self.grid.edits(),
            open_block: self.grid.block_of(self.end).0,
        });
        let changed = now != self.fitted;
        self.fitted = now;
        changed
    }

    /// Notes that the hole timers were emptied: the next look fits them again.
    pub(super) fn timers_emptied(&mut self) {
        self.fitted = None;
    }
}

/// See [`Stream::needs_fitting`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fit {
    next: u64,
    hole_edits: u64,
    grid_edits: u64,
    open_block: u64,
}

/// Appends the range of `count` packets from `first`, joined to the last range if adjacent.
fn push_range(ranges: &mut Vec<(u64, u32)>, first: u64, count: u64) {
    let mut first = first;
    let mut count = count;
    if let Some((last_first, last_count)) = ranges.last_mut()
        && *last_first + u64::from(*last_count) == first
    {
        let room = u64::from(u32::MAX - *last_count).min(count);
        *last_count += room as u32;
        first += room;
        count -= room;
    }
    while count > 0 {
        let part = count.min(u64::from(u32::MAX));
        ranges.push((first, part as u32));
        first += part;
        count -= part;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Stream<()> {
        let config = RepairConfig {
            block_len: 8,
            ..RepairConfig::default()
        };
        Stream::new(0, Instant::now(), &config)
    }

    fn wait(stream: &mut Stream<()>, packet: u64) {
        stream.wait(packet, Arc::from(vec![0; 10 + packet as usize]), ());
    }

    #[test]
    fn the_timers_are_fitted_again_only_when_the_holes_or_the_blocks_change() {
        let mut stream = stream();
        wait(&mut stream, 1);
        assert!(stream.needs_fitting(), "the first look");
        assert!(!stream.needs_fitting(), "nothing changed");
        wait(&mut stream, 2);
        assert!(!stream.needs_fitting(), "the stream grew at its end");
        wait(&mut stream, 5);
        assert!(stream.needs_fitting(), "a new hole: 3 and 4");
        wait(&mut stream, 3);
        assert!(stream.needs_fitting(), "a hole filled");
        stream.extend_to(7);
        assert!(stream.needs_fitting(), "a block end heard: 6 is missing");
        stream.extend_to(7);
        assert!(!stream.needs_fitting(), "the same end again");
        wait(&mut stream, 7);
        assert!(
            stream.needs_fitting(),
            "the stream reached the next block: the first one closed"
        );
        stream.grid.note(8, 4);
        assert!(stream.needs_fitting(), "a block closed early");
        stream.take_next();
        stream.next += 1;
        assert!(stream.needs_fitting(), "the position moved");
        assert!(!stream.needs_fitting());
        stream.timers_emptied();
        assert!(
            stream.needs_fitting(),
            "the timers were emptied: fitted again"
        );
    }

    #[test]
    fn waiting_bytes_follow_the_packets_in_and_out() {
        let mut stream = stream();
        wait(&mut stream, 0);
        wait(&mut stream, 2);
        wait(&mut stream, 2);
        assert_eq!(stream.waiting_bytes(), 10 + 12);
        assert_eq!(stream.take_next().map(|(bytes, _)| bytes.len()), Some(10));
        assert_eq!(stream.waiting_bytes(), 12);
        assert!(
            stream.take_next().is_none(),
            "packet 0 is gone, 1 never came"
        );
        assert_eq!(stream.first_waiting(), Some(2));
        assert!(stream.is_waiting(2) && !stream.is_waiting(1));
    }
}
