//! The sender's half: numbers packets, keeps a repair window, answers NACKs with parity.

use std::{
    collections::{BTreeMap, VecDeque},
    ops::Range,
    time::Instant,
};

use super::{RepairConfig, SenderStats, fec, flow::Flow};
use crate::wire::{
    NodeId,
    repair::{self, Nack, Status, parity_count},
};

/// One block of consecutive packets in the repair window.
#[derive(Debug)]
struct Block {
    start: u64,
    packets: Vec<Vec<u8>>,
    /// A closed block takes no more packets; only closed blocks have parity.
    closed: bool,
    /// Every parity symbol, computed at the first repair.
    parity: Option<Vec<Vec<u8>>>,
    /// The next parity index to send: each repair is a symbol no receiver has had.
    next_parity: u16,
    /// The latest repairs of this block: a NACK sent before one arrived must not have the
    /// same holes repaired twice.
    rounds: Vec<Round>,
    /// Whether NACKs brought it a repair yet.
    repaired: bool,
}

/// One repair of a block: when it left, and what followed it.
#[derive(Debug, Clone, Copy)]
struct Round {
    at: Instant,
    /// The sender's next packet number when it left: a receiver that has heard this packet
    /// (or a later one) has had the repair too, or lost it.
    next_packet: u64,
    /// Parity symbols (or packets) it sent.
    count: usize,
}

impl Block {
    fn len(&self) -> u16 {
        // A block never grows past RepairConfig::block_len, which is a u16.
        u16::try_from(self.packets.len()).unwrap_or(u16::MAX)
    }

    fn end(&self) -> u64 {
        self.start + self.packets.len() as u64
    }

    fn bytes(&self) -> usize {
        self.packets.iter().map(Vec::len).sum::<usize>()
            + self.parity.iter().flatten().map(Vec::len).sum::<usize>()
    }
}

/// What NACKs asked of one block since its last repair.
#[derive(Debug, Default)]
struct Wanted {
    /// The most packets of the block one receiver misses.
    holes: usize,
    /// Packets asked for, for the rare repair past the block's parity.
    packets: Vec<Range<u64>>,
}

impl Wanted {
    /// Adds `more` to the packets asked for, each packet once.
    fn ask(&mut self, more: impl IntoIterator<Item = Range<u64>>) {
        self.packets.extend(more);
        self.packets.sort_unstable_by_key(|range| range.start);
        let mut merged: Vec<Range<u64>> = Vec::with_capacity(self.packets.len());
        for range in self.packets.drain(..) {
            match merged.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        self.packets = merged;
    }
}

/// Sender side of a reliable channel, without I/O: [`wrap`](Self::wrap) every datagram before
/// it leaves, give it every NACK for this node, and send what
/// [`poll_transmit`](Self::poll_transmit) returns when [`poll_timeout`](Self::poll_timeout)
/// comes.
#[derive(Debug)]
pub struct RepairSender {
    node: NodeId,
    config: RepairConfig,
    next_packet: u64,
    blocks: VecDeque<Block>,
    held_bytes: usize,
    wanted: BTreeMap<u64, Wanted>,
    repair_due: Option<Instant>,
    /// When to announce the last block (its parity tells receivers where the stream ends), and
    /// how many announcements are left.
    tail: Option<(Instant, u8)>,
    out: VecDeque<Vec<u8>>,
    /// When a NACK last arrived or a repair last left.
    last_active: Option<Instant>,
    /// How far ahead of its receivers this sender may be.
    flow: Flow,
    stats: SenderStats,
    /// What the latest blocks' first repairs asked: what the next one sends at least when
    /// more than one receiver listens.
    group_need: GroupNeed,
}

/// How many times the tail of a burst is announced.
const TAIL_ANNOUNCEMENTS: u8 = 3;

impl RepairSender {
    /// A sender for `node`'s packets.
    pub fn new(node: NodeId, config: RepairConfig) -> Self {
        Self {
            node,
            config,
            next_packet: 0,
            blocks: VecDeque::new(),
            held_bytes: 0,
            wanted: BTreeMap::new(),
            repair_due: None,
            tail: None,
            out: VecDeque::new(),
            last_active: None,
            // A receiver behind is waited for at the end while it moves at least once per
            // `give_up` (or the receiver timeout, if longer): a stall that short (a starved
            // process, a burst of loss) does not cut it off, and past `give_up` it would have
            // skipped its holes anyway.
            flow: Flow::new(
                config.flow_window_bytes,
                config.receiver_timeout,
                config.give_up.max(config.receiver_timeout),
            ),
            stats: SenderStats::default(),
            group_need: GroupNeed::default(),
        }
    }

    /// Numbers `datagram` as the next packet, keeps it for repair, and returns the SEQUENCED
    /// datagram to send instead.
    pub fn wrap(&mut self, datagram: Vec<u8>, now: Instant) -> Vec<u8> {
        let packet = self.next_packet;
        self.next_packet += 1;
        let mut wrapped = Vec::new();
        repair::encode_sequenced(&mut wrapped, self.node, packet, &datagram);
        let len = datagram.len();
        let block_len = usize::from(self.config.block_len.max(1));
        match self.blocks.back_mut() {
            Some(block) if !block.closed => {
                block.packets.push(datagram);
                block.closed = block.packets.len() >= block_len;
                if block.closed && self.wanted.contains_key(&block.start) {
                    self.repair_due
                        .get_or_insert(now + self.config.nack_holdoff);
                }
            }
            _ => self.blocks.push_back(Block {
                start: packet,
                packets: vec![datagram],
                closed: block_len == 1,
                parity: None,
                next_parity: 0,
                rounds: Vec::new(),
                repaired: false,
            }),
        }
        self.held_bytes += len;
        self.flow.sent(len);
        self.evict();
        self.tail = Some((now + self.config.tail_delay, TAIL_ANNOUNCEMENTS));
        wrapped
    }

    /// Drops the oldest blocks beyond the window, never the one being filled.
    fn evict(&mut self) {
        while self.held_bytes > self.config.window_bytes && self.blocks.len() > 1 {
            if let Some(block) = self.blocks.pop_front() {
                self.held_bytes -= block.bytes();
                self.wanted.remove(&block.start);
                self.flow.forget_before(block.end());
            }
        }
    }

    /// Takes a receiver's report of how far it got.
    pub fn on_status(&mut self, status: &Status, now: Instant) {
        if status.target == self.node {
            self.flow.report(status.from, status.position, now);
        }
    }

    /// Whether more packets may be numbered now: fewer than
    /// [`RepairConfig::flow_window_bytes`] are ahead of the slowest receiver. `Err` holds when
    /// to look again if no report comes first: when the slowest receiver will be dropped for
    /// making no progress.
    pub fn window(&mut self, now: Instant) -> Result<(), Instant> {
        let result = self.flow.may_send(self.next_packet, now);
        self.stats.receivers_dropped = self.flow.dropped;
        result
    }

    /// Takes a NACK addressed to this node: notes what each block misses, to be repaired after
    /// [`RepairConfig::nack_holdoff`] so that NACKs from other receivers join the same repair.
    /// Repairs on their way to the receiver when it asked (told by how far it heard) count as
    /// sent: they fill what it asks for.
    pub fn on_nack(&mut self, nack: &Nack<'_>, now: Instant) {
        if nack.target != self.node {
            return;
        }
        self.stats.nacks_received += 1;
        self.last_active = Some(now);
        if let Some((first_missing, _)) = nack.ranges().next() {
            self.flow.nacked(nack.from, first_missing, now);
        }
        // Nobody has heard past the last packet sent.
        let heard = nack.heard.min(self.next_packet);
        let oldest = self
            .blocks
            .front()
            .map_or(self.next_packet, |block| block.start);
        // Block by block, not packet by packet: a range may span the whole window.
        let mut holes: BTreeMap<usize, Wanted> = BTreeMap::new();
        for (first, count) in nack.ranges() {
            let end = first.saturating_add(u64::from(count)).min(self.next_packet);
            self.stats.unrepairable += end.min(oldest).saturating_sub(first);
            let from = self
                .blocks
                .partition_point(|block| block.end() <= first.max(oldest));
            for (at, block) in self.blocks.iter().enumerate().skip(from) {
                if block.start >= end {
                    break;
                }
                let asked = first.max(block.start)..end.min(block.end());
                let wanted = holes.entry(at).or_default();
                wanted.holes += usize::try_from(asked.end - asked.start).unwrap_or(usize::MAX);
                wanted.packets.push(asked);
            }
        }
        for (at, asked) in holes {
            let block = &self.blocks[at];
            let missing = asked
                .holes
                .saturating_sub(self.in_flight(block, heard, now));
            if missing == 0 {
                continue;
            }
            let wanted = self.wanted.entry(block.start).or_default();
            wanted.holes = wanted.holes.max(missing);
            wanted.ask(asked.packets);
        }
        if !self.wanted.is_empty() && self.repair_due.is_none() {
            self.repair_due = Some(now + self.config.nack_holdoff);
        }
    }

    /// How many of `block`'s repairs may still be on their way to a receiver that has heard
    /// this sender up to `heard` (packets leave in order, and a repair carries no number):
    /// - one it heard a packet sent after of has arrived there, or was lost;
    /// - one sent after packets it has not heard yet is behind them, on its way, if the
    ///   receiver is slow: counted for up to [`RepairConfig::repair_wait_max`], and as long
    ///   when packets followed the repair (the receiver will hear them, or see them announced);
    /// - one sent right after the last packet it heard, with nothing after it, may be lost:
    ///   counted for [`RepairConfig::repair_guard`] only.
    fn in_flight(&self, block: &Block, heard: u64, now: Instant) -> usize {
        block
            .rounds
            .iter()
            .filter(|round| {
                let behind = heard < round.next_packet || self.next_packet > round.next_packet;
                let limit = if behind {
                    self.config.repair_wait_max
                } else {
                    self.config.repair_guard
                };
                heard <= round.next_packet && now.saturating_duration_since(round.at) < limit
            })
            .map(|round| round.count)
            .sum()
    }

    /// The next datagram to send (a repair, or the announcement of the stream's tail), if any
    /// is due by `now`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.repair_due.is_some_and(|due| due <= now) {
            self.repair_due = None;
            self.repair(now);
        }
        if let Some((due, left)) = self.tail
            && due <= now
        {
            // A receiver that reported is still behind: its copies of the announcements may all
            // have been lost, so it may not know what it misses. Keep telling it, less often
            // (`left` 0), until it catches up or is given up.
            let behind = self.flow.catching_up(self.next_packet, now).is_some();
            if left > 0 || behind {
                self.announce_tail(now);
            }
            self.tail = if left > 1 {
                Some((now + self.config.tail_delay * 4, left - 1))
            } else if behind {
                Some((now + self.config.repair_wait_max, 0))
            } else {
                None
            };
        }
        let datagram = self.out.pop_front()?;
        self.last_active = Some(now);
        self.stats.repair_datagrams += 1;
        self.stats.repair_bytes += datagram.len() as u64;
        Some(datagram)
    }

    /// When [`poll_transmit`](Self::poll_transmit) next has something new to send (call it until
    /// it returns `None` first).
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.repair_due, self.tail.map(|(due, _)| due)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Until when a sender about to stop should keep answering: while a repair or the
    /// announcement of its last burst is due; while a receiver that moved lately has not got
    /// everything (see `Flow::catching_up`), so that one that keeps moving is waited for
    /// however slowly; and for four `repair_wait` after the last NACK or repair, for receivers
    /// that never reported. `None`: it may stop.
    pub fn busy_until(&self, now: Instant) -> Option<Instant> {
        let behind = self.flow.catching_up(self.next_packet, now);
        // A repeated announcement (`left` 0) is owed only to receivers behind.
        let tail = self
            .tail
            .filter(|&(_, left)| left > 0 || behind.is_some())
            .map(|(due, _)| due);
        if let Some(due) = [self.repair_due, tail].into_iter().flatten().min() {
            // Due already: the driver's turn is next.
            return Some(due.max(now + std::time::Duration::from_millis(1)));
        }
        let quiet_end = self
            .last_active
            .map(|active| active + self.config.repair_wait * 4);
        behind
            .into_iter()
            .chain(quiet_end)
            .max()
            .filter(|&until| until > now)
    }

    /// What this sender did so far.
    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    fn repair(&mut self, now: Instant) {
        let forget = self.config.repair_wait_max.max(self.config.repair_guard);
        let mut postponed: Option<Instant> = None;
        for (start, wanted) in std::mem::take(&mut self.wanted) {
            let Some(at) = self.blocks.iter().position(|block| block.start == start) else {
                continue;
            };
            let block = &mut self.blocks[at];
            if !block.closed {
                // Repaired once full (or at the burst's end): closing it now would leave small
                // blocks, whose parity fills few holes each.
                self.wanted.insert(start, wanted);
                continue;
            }
            // One repair per block per `repair_guard`: however many NACKs come, forged or not,
            // a block costs at most that.
            let free = block
                .rounds
                .last()
                .map(|round| round.at + self.config.repair_guard);
            if let Some(free) = free.filter(|&free| free > now) {
                self.wanted.insert(start, wanted);
                postponed = Some(postponed.map_or(free, |at| at.min(free)));
                continue;
            }
            let count = if block.repaired {
                wanted.holes
            } else {
                let available = parity_count(block.len()).saturating_sub(block.next_parity);
                let receivers = self.flow.receivers();
                self.group_need
                    .first_repair(wanted.holes, receivers, available)
            };
            let added = send_parity(self.node, block, count, &wanted.packets, &mut self.out);
            block.repaired = true;
            block
                .rounds
                .retain(|round| now.saturating_duration_since(round.at) < forget);
            block.rounds.push(Round {
                at: now,
                next_packet: self.next_packet,
                count,
            });
            self.held_bytes += added;
            self.evict();
        }
        if let Some(at) = postponed {
            self.repair_due = Some(self.repair_due.map_or(at, |due| due.min(at)));
        }
    }

    /// Closes the block being filled and sends one parity symbol of the newest block, which
    /// tells receivers how far the stream goes (and fills one hole at each).
    fn announce_tail(&mut self, now: Instant) {
        let mut added = 0;
        // While no receiver has reported, the first block too (closed already, when it is not
        // the last): receivers that lost the whole start (a switch still learning who joined,
        // say) hear that the stream began, and ask for it, rather than join late at the end.
        // It goes first, so that such a receiver follows the sender already when the tail's
        // symbol comes, and takes it.
        if !self.flow.heard()
            && self.blocks.len() > 1
            && let Some(first) = self.blocks.front_mut().filter(|block| block.start == 0)
        {
            added += send_parity(self.node, first, 1, &[], &mut self.out);
        }
        let Some(block) = self.blocks.back_mut() else {
            return;
        };
        block.closed = true;
        if self.wanted.contains_key(&block.start) {
            self.repair_due.get_or_insert(now);
        }
        // Once the block's parity is used up (a long wait for a receiver behind), its last
        // packet itself says where the stream ends.
        let last = block.start.max(block.end().saturating_sub(1))..block.end();
        added += send_parity(self.node, block, 1, &[last], &mut self.out);
        self.held_bytes += added;
        self.evict();
    }
}

/// What the first repairs of the latest blocks asked, to size the next one's for the group.
/// One NACK, the first of the group (the others held back by it), tells one receiver's holes;
/// receivers that lose independently miss other packets, and some of them more. A first repair
/// as large as most blocks lately needed fills theirs too, rather than in one more NACK and
/// repair each.
#[derive(Debug, Default)]
struct GroupNeed {
    /// The most asked of each of the latest blocks at its first repair, newest last.
    asked: VecDeque<usize>,
}

/// Blocks whose first repairs size the next one.
const GROUP_NEED_BLOCKS: usize = 32;

/// Which of those blocks' asks the next first repair sends at least, counted from the
/// largest: the 8th of 32 (three blocks in four asked no more). Not the largest: one block that
/// a receiver lost a burst of, or a forged NACK, does not pad the blocks after it; and a file
/// sent at the link's rate, which pays for every symbol in time, sent 1.32 and 1.27 bytes per
/// file byte with the 2nd largest of 32 and the 4th of 64, against 1.22 without padding and
/// 1.23 with this.
const GROUP_NEED_RANK: usize = 8;

impl GroupNeed {
    /// How many symbols a block's first repair sends, for `asked` (the most any NACK misses
    /// of it so far), within the block's `available` parity: past it, repairs re-send the
    /// packets asked for, and only those. A single receiver's NACK tells exactly what it
    /// misses, and it gets just that.
    fn first_repair(&mut self, asked: usize, receivers: usize, available: u16) -> usize {
        let mut latest: Vec<usize> = self.asked.iter().copied().collect();
        latest.sort_unstable_by(|a, b| b.cmp(a));
        let need = latest
            .get(GROUP_NEED_RANK - 1)
            .or(latest.last())
            .map_or(0, |&need| need.min(usize::from(available)));
        if self.asked.len() == GROUP_NEED_BLOCKS {
            self.asked.pop_front();
        }
        self.asked.push_back(asked);
        if receivers > 1 {
            asked.max(need)
        } else {
            asked
        }
    }
}

/// Queues `count` fresh parity symbols of `block` (or, once its parity is used up, the packets
/// `asked` for again); returns the bytes the parity added to the window.
fn send_parity(
    node: NodeId,
    block: &mut Block,
    count: usize,
    asked: &[Range<u64>],
    out: &mut VecDeque<Vec<u8>>,
) -> usize {
    let mut added = 0;
    if block.parity.is_none() {
        block.parity = fec::encode(&block.packets);
        added = block.parity.iter().flatten().map(Vec::len).sum();
    }
    let Some(parity) = &block.parity else {
        return added;
    };
    let available = usize::from(parity_count(block.len()).saturating_sub(block.next_parity));
    for _ in 0..count.min(available) {
        let mut datagram = Vec::new();
        let index = block.next_parity;
        repair::encode_parity(
            &mut datagram,
            node,
            block.start,
            block.len(),
            index,
            &parity[usize::from(index)],
        );
        block.next_parity += 1;
        out.push_back(datagram);
    }
    if count > available {
        // Every symbol went out and holes remain: the packets themselves.
        for packet in asked.iter().cloned().flatten() {
            let offset = usize::try_from(packet - block.start).unwrap_or(usize::MAX);
            if let Some(bytes) = block.packets.get(offset) {
                let mut datagram = Vec::new();
                repair::encode_sequenced(&mut datagram, node, packet, bytes);
                out.push_back(datagram);
            }
        }
    }
    added
}
