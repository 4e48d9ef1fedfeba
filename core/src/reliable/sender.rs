//! The sender's half: numbers packets, keeps a repair window, answers NACKs with parity.

use std::{
    collections::{BTreeMap, VecDeque},
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
    /// When the last repair of this block left and how many symbols it had: NACKs sent before
    /// it arrived must not repair the same holes twice.
    last_repair: Option<(Instant, usize)>,
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
    packets: Vec<u64>,
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
            flow: Flow::new(config.flow_window_bytes, config.receiver_timeout),
            stats: SenderStats::default(),
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
                last_repair: None,
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
    pub fn on_nack(&mut self, nack: &Nack<'_>, now: Instant) {
        if nack.target != self.node {
            return;
        }
        self.stats.nacks_received += 1;
        self.last_active = Some(now);
        let mut holes: BTreeMap<u64, Wanted> = BTreeMap::new();
        for (first, count) in nack.ranges() {
            let end = first.saturating_add(u64::from(count));
            for packet in first..end.min(self.next_packet) {
                let Some(block) = self.block_of(packet) else {
                    self.stats.unrepairable += 1;
                    continue;
                };
                let wanted = holes.entry(block.start).or_default();
                wanted.holes += 1;
                wanted.packets.push(packet);
            }
        }
        for (start, asked) in holes {
            let wanted = self.wanted.entry(start).or_default();
            wanted.holes = wanted.holes.max(asked.holes);
            wanted.packets.extend(asked.packets);
            wanted.packets.sort_unstable();
            wanted.packets.dedup();
        }
        if !self.wanted.is_empty() && self.repair_due.is_none() {
            self.repair_due = Some(now + self.config.nack_holdoff);
        }
    }

    fn block_of(&self, packet: u64) -> Option<&Block> {
        let at = self.blocks.partition_point(|block| block.end() <= packet);
        self.blocks.get(at).filter(|block| block.start <= packet)
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
            self.announce_tail(now);
            let again = now + self.config.tail_delay * 4;
            self.tail = if left > 1 {
                Some((again, left - 1))
            } else {
                // A receiver that reported is still behind: its copies of the announcements
                // may all have been lost, so it may not know what it misses. Keep telling it,
                // less often, until it catches up or is given up.
                self.flow
                    .catching_up(self.next_packet, now)
                    .map(|_| (now + self.config.repair_wait_max, 1))
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
    /// announcement of its last burst is due; while a receiver that reported lately has not
    /// got everything (until it would be given up, unless its report comes first); and for
    /// `quiet` after the last NACK or repair, for receivers that never reported. `None`: it
    /// may stop.
    pub fn busy_until(&self, now: Instant, quiet: std::time::Duration) -> Option<Instant> {
        if let Some(due) = self.poll_timeout() {
            // Due already: the driver's turn is next.
            return Some(due.max(now + std::time::Duration::from_millis(1)));
        }
        let behind = self.flow.catching_up(self.next_packet, now);
        let quiet_end = self.last_active.map(|active| active + quiet);
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
        let guard = self.config.repair_guard;
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
            // NACKs sent before the last repair arrived ask again for what it repairs.
            let covered = match block.last_repair {
                Some((when, sent)) if now.saturating_duration_since(when) < guard => sent,
                _ => 0,
            };
            let count = wanted.holes.saturating_sub(covered);
            if count == 0 {
                continue;
            }
            let added = send_parity(self.node, block, count, &wanted.packets, &mut self.out);
            self.held_bytes += added;
            block.last_repair = Some((now, count.max(covered)));
            self.evict();
        }
    }

    /// Closes the block being filled and sends one parity symbol of the newest block, which
    /// tells receivers how far the stream goes (and fills one hole at each).
    fn announce_tail(&mut self, now: Instant) {
        let Some(block) = self.blocks.back_mut() else {
            return;
        };
        block.closed = true;
        if self.wanted.contains_key(&block.start) {
            self.repair_due.get_or_insert(now);
        }
        let mut added = send_parity(self.node, block, 1, &[], &mut self.out);
        // While no receiver has reported, the first block too: receivers that lost the whole
        // start (a switch still learning who joined, say) hear that the stream began, and ask
        // for it, rather than join late at the end.
        if !self.flow.heard()
            && self.blocks.len() > 1
            && let Some(first) = self.blocks.front_mut().filter(|block| block.start == 0)
        {
            added += send_parity(self.node, first, 1, &[], &mut self.out);
        }
        self.held_bytes += added;
        self.evict();
    }
}

/// Queues `count` fresh parity symbols of `block` (or, once its parity is used up, the packets
/// `asked` for again); returns the bytes the parity added to the window.
fn send_parity(
    node: NodeId,
    block: &mut Block,
    count: usize,
    asked: &[u64],
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
        for &packet in asked {
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
