//! Per-sender duplicate and replay detection, with a bounded table of senders.

use std::{
    collections::{BTreeMap, HashMap},
    num::NonZeroU64,
};

use super::NodeId;

/// What a receiver already knows of one of a sender's sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Seen {
    /// Not settled yet: deliver it.
    New,
    /// Settled, and still inside the sender's window: an ordinary duplicate (a relayed copy, a
    /// repeated fragment).
    Duplicate,
    /// Older than the sender's window or than the floor remembered for a forgotten sender: it
    /// can no longer be told apart from a replay, so it is treated as one.
    Stale,
}

/// How settling one sequence number changed its sender's gaps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct GapChange {
    /// Sequence numbers jumped over: not heard (yet).
    pub(super) skipped: u64,
    /// Whether this number had been jumped over: a late arrival.
    pub(super) filled: bool,
}

/// Remembers which of a sender's most recent sequence numbers are settled (delivered or given up).
///
/// The window covers the `size` sequence numbers ending at the highest one settled so far;
/// anything older is treated as settled, because it can no longer be told apart from a replay.
#[derive(Debug)]
pub(super) struct DedupWindow {
    highest: Option<u64>,
    /// This sender's sequence numbers skipped and not (yet) filled: its share of `lost`.
    lost: u64,
    size: NonZeroU64,
    /// One bit per sequence number in the window, at position `seq % size`.
    settled: Vec<u64>,
}

impl DedupWindow {
    pub(super) fn new(size: NonZeroU64) -> Self {
        let words = usize::try_from(size.get().div_ceil(64)).unwrap_or(usize::MAX);
        Self {
            highest: None,
            lost: 0,
            size,
            settled: vec![0; words],
        }
    }

    /// A window for a sender that was forgotten after settling up to `floor`: everything up to
    /// and including `floor` counts as settled, so replays of its old traffic stay rejected.
    fn with_floor(size: NonZeroU64, floor: u64) -> Self {
        let mut window = Self::new(size);
        window.settled.fill(u64::MAX);
        window.highest = Some(floor);
        window
    }

    /// Whether `seq` is new, a duplicate inside the window, or too old to tell.
    pub(super) fn seen(&self, seq: u64) -> Seen {
        let Some(highest) = self.highest else {
            return Seen::New;
        };
        if seq > highest {
            Seen::New
        } else if highest - seq >= self.size.get() {
            Seen::Stale
        } else if self.bit(seq) {
            Seen::Duplicate
        } else {
            Seen::New
        }
    }

    #[cfg(test)]
    fn is_new(&self, seq: u64) -> bool {
        self.seen(seq) == Seen::New
    }

    /// Records `seq` as settled, sliding the window forward if `seq` is the highest yet, and
    /// says how the sender's gaps changed: sequence numbers skipped by a jump ahead, or a gap
    /// filled by a late arrival. Nothing before the first number settled counts as a gap.
    pub(super) fn settle(&mut self, seq: u64) -> GapChange {
        let change = self.settle_seq(seq);
        self.lost = self
            .lost
            .saturating_add(change.skipped)
            .saturating_sub(u64::from(change.filled));
        change
    }

    fn settle_seq(&mut self, seq: u64) -> GapChange {
        match self.highest {
            Some(highest) if seq <= highest => {
                let filled = highest - seq < self.size.get() && !self.bit(seq);
                if filled {
                    self.set_bit(seq, true);
                }
                GapChange { skipped: 0, filled }
            }
            Some(highest) if seq - highest < self.size.get() => {
                // The slots of the sequence numbers entering the window still hold old ones.
                for entering in highest + 1..seq {
                    self.set_bit(entering, false);
                }
                self.set_bit(seq, true);
                self.highest = Some(seq);
                GapChange {
                    skipped: seq - highest - 1,
                    filled: false,
                }
            }
            previous => {
                self.settled.fill(0);
                self.set_bit(seq, true);
                self.highest = Some(seq);
                GapChange {
                    skipped: previous.map_or(0, |highest| seq - highest - 1),
                    filled: false,
                }
            }
        }
    }

    fn slot(&self, seq: u64) -> (usize, u64) {
        let position = seq % self.size;
        let word = usize::try_from(position / 64).unwrap_or(usize::MAX);
        (word, 1 << (position % 64))
    }

    fn bit(&self, seq: u64) -> bool {
        let (word, mask) = self.slot(seq);
        self.settled.get(word).is_some_and(|bits| bits & mask != 0)
    }

    fn set_bit(&mut self, seq: u64, value: bool) {
        let (word, mask) = self.slot(seq);
        if let Some(bits) = self.settled.get_mut(word) {
            if value { *bits |= mask } else { *bits &= !mask }
        }
    }
}

/// How many forgotten senders' floors are remembered per table. A floor costs about 40 bytes,
/// against `dedup_window / 8` bytes for a full window, so many more fit in the same memory.
pub(super) const FORGOTTEN_SENDERS_PER_SENDER: usize = 4;

/// The dedup windows of at most `capacity` senders; the least recently heard is evicted first.
///
/// An evicted sender leaves behind its *floor*, the highest sequence number it had settled, for
/// up to `FORGOTTEN_SENDERS_PER_SENDER × capacity` senders (again least recently evicted first).
/// A sender heard again after eviction starts from its floor, with everything up to it settled,
/// so that replaying its old datagrams does not deliver them twice. Only when so many senders are
/// active that the floor is forgotten too does a replay get through (see `docs/security.md`).
#[derive(Debug)]
pub(super) struct SenderTable {
    senders: HashMap<NodeId, Sender>,
    /// Senders by the tick they were last heard at, least recent first.
    by_recency: BTreeMap<u64, NodeId>,
    /// Floors of evicted senders with the tick they were evicted at.
    floors: HashMap<NodeId, (u64, u64)>,
    /// Evicted senders by eviction tick, least recent first.
    floors_by_age: BTreeMap<u64, NodeId>,
    /// Counts datagrams; orders senders by recency independently of the caller's clock.
    ticks: u64,
    capacity: usize,
    window_size: NonZeroU64,
}

#[derive(Debug)]
struct Sender {
    window: DedupWindow,
    last_heard: u64,
}

impl SenderTable {
    pub(super) fn new(capacity: usize, window_size: NonZeroU64) -> Self {
        Self {
            senders: HashMap::new(),
            by_recency: BTreeMap::new(),
            ticks: 0,
            capacity: capacity.max(1),
            window_size,
            floors: HashMap::new(),
            floors_by_age: BTreeMap::new(),
        }
    }

    /// Notes that `sender` was just heard, adding it if new. Returns the sender evicted to make
    /// room, if any.
    pub(super) fn touch(&mut self, sender: NodeId) -> Option<NodeId> {
        self.ticks += 1;
        let tick = self.ticks;
        if let Some(known) = self.senders.get_mut(&sender) {
            self.by_recency.remove(&known.last_heard);
            known.last_heard = tick;
            self.by_recency.insert(tick, sender);
            return None;
        }
        let full = self.senders.len() >= self.capacity;
        let evicted = full
            .then(|| self.by_recency.pop_first())
            .flatten()
            .map(|(_, id)| id);
        if let Some(evicted) = evicted
            && let Some(gone) = self.senders.remove(&evicted)
            && let Some(floor) = gone.window.highest
        {
            self.remember_floor(evicted, floor, tick);
        }
        let window = match self.floors.remove(&sender) {
            Some((floor, evicted_at)) => {
                self.floors_by_age.remove(&evicted_at);
                DedupWindow::with_floor(self.window_size, floor)
            }
            None => DedupWindow::new(self.window_size),
        };
        self.senders.insert(
            sender,
            Sender {
                window,
                last_heard: tick,
            },
        );
        self.by_recency.insert(tick, sender);
        evicted
    }

    fn remember_floor(&mut self, sender: NodeId, floor: u64, tick: u64) {
        if self.floors.len() >= self.capacity.saturating_mul(FORGOTTEN_SENDERS_PER_SENDER)
            && let Some((_, oldest)) = self.floors_by_age.pop_first()
        {
            self.floors.remove(&oldest);
        }
        self.floors.insert(sender, (floor, tick));
        self.floors_by_age.insert(tick, sender);
    }

    /// What is known of message `seq` of `sender` (always new for unknown senders; `touch` the
    /// sender first so that a forgotten sender's floor applies).
    pub(super) fn seen(&self, sender: NodeId, seq: u64) -> Seen {
        self.senders
            .get(&sender)
            .map_or(Seen::New, |known| known.window.seen(seq))
    }

    /// The window of `sender`, if known: one lookup for every message of a batch.
    pub(super) fn window_mut(&mut self, sender: NodeId) -> Option<&mut DedupWindow> {
        self.senders.get_mut(&sender).map(|known| &mut known.window)
    }

    /// Marks message `seq` of `sender` as settled, so later copies count as duplicates.
    pub(super) fn settle(&mut self, sender: NodeId, seq: u64) -> GapChange {
        self.senders
            .get_mut(&sender)
            .map(|known| known.window.settle(seq))
            .unwrap_or_default()
    }

    pub(super) fn len(&self) -> usize {
        self.senders.len()
    }

    /// Every sender tracked, with the highest sequence number it settled and its messages lost.
    pub(super) fn losses(&self) -> impl Iterator<Item = (NodeId, Option<u64>, u64)> + '_ {
        self.senders
            .iter()
            .map(|(&id, known)| (id, known.window.highest, known.window.lost))
    }

    /// Number of forgotten senders whose floor is still remembered.
    #[cfg(test)]
    fn forgotten(&self) -> usize {
        self.floors.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(size: u64) -> DedupWindow {
        DedupWindow::new(NonZeroU64::new(size).unwrap())
    }

    #[test]
    fn window_edges() {
        let mut window = window(4);
        assert!(window.is_new(10));
        window.settle(10);
        assert!(!window.is_new(10));
        assert!(window.is_new(11) && window.is_new(u64::MAX));
        // 7..=10 is the window; 6 and below are too old.
        assert!(window.is_new(7));
        assert!(!window.is_new(6));
        assert!(!window.is_new(0));
        window.settle(7);
        assert!(!window.is_new(7));
        window.settle(6); // too old: no effect, and no panic
        assert!(window.is_new(8) && window.is_new(9));
    }

    #[test]
    fn sliding_forward_forgets_the_slots_it_reuses() {
        let mut window = window(4);
        for seq in [0, 1, 2, 3] {
            window.settle(seq);
        }
        // Slots of 4 and 5 held 0 and 1; they must read as new.
        window.settle(6);
        assert!(window.is_new(4) && window.is_new(5));
        assert!(!window.is_new(3) && !window.is_new(6));
        assert!(!window.is_new(2), "2 left the window");
        // A jump larger than the window clears everything.
        window.settle(100);
        assert!((97..100).all(|seq| window.is_new(seq)));
        assert!(!window.is_new(96));
    }

    #[test]
    fn window_of_one_only_remembers_the_highest() {
        let mut window = window(1);
        window.settle(5);
        assert!(!window.is_new(5) && !window.is_new(4) && window.is_new(6));
        window.settle(u64::MAX);
        assert!(!window.is_new(u64::MAX));
    }

    #[test]
    fn sender_table_evicts_the_least_recently_heard() {
        let mut table = SenderTable::new(2, NonZeroU64::new(8).unwrap());
        assert_eq!(table.touch(NodeId(1)), None);
        assert_eq!(table.touch(NodeId(2)), None);
        table.settle(NodeId(1), 0);
        assert_eq!(table.touch(NodeId(1)), None);
        assert_eq!(table.touch(NodeId(3)), Some(NodeId(2)));
        assert_eq!(table.len(), 2);
        assert_eq!(
            table.seen(NodeId(1), 0),
            Seen::Duplicate,
            "the recently heard sender kept its window"
        );
        assert_eq!(table.touch(NodeId(4)), Some(NodeId(1)));
        assert_eq!(table.seen(NodeId(1), 0), Seen::New, "evicted: not tracked");
    }

    #[test]
    fn a_forgotten_sender_comes_back_at_its_floor() {
        let mut table = SenderTable::new(1, NonZeroU64::new(8).unwrap());
        table.touch(NodeId(1));
        for seq in [3, 5, 9] {
            table.settle(NodeId(1), seq);
        }
        assert_eq!(table.touch(NodeId(2)), Some(NodeId(1)));
        assert_eq!(table.forgotten(), 1);
        table.touch(NodeId(1));
        assert_eq!(table.forgotten(), 0, "the floor moved back into the window");
        // 4 was never settled, but once forgotten it cannot be told apart from a replay.
        for seq in [9, 4] {
            assert_eq!(table.seen(NodeId(1), seq), Seen::Duplicate, "{seq}");
        }
        assert_eq!(table.seen(NodeId(1), 1), Seen::Stale);
        assert_eq!(table.seen(NodeId(1), 10), Seen::New);
        table.settle(NodeId(1), 10);
        assert_eq!(table.seen(NodeId(1), 10), Seen::Duplicate);
    }

    #[test]
    fn floors_are_bounded() {
        let mut table = SenderTable::new(1, NonZeroU64::new(8).unwrap());
        let limit = FORGOTTEN_SENDERS_PER_SENDER;
        for id in 0..=u64::try_from(limit).unwrap() + 1 {
            table.touch(NodeId(id));
            table.settle(NodeId(id), 100);
        }
        assert_eq!(table.forgotten(), limit);
        // Sender 0 was forgotten longest ago: its floor is gone, so it starts afresh.
        table.touch(NodeId(0));
        assert_eq!(table.seen(NodeId(0), 100), Seen::New);
        table.touch(NodeId(2));
        assert_eq!(table.seen(NodeId(2), 100), Seen::Duplicate);
    }
}
