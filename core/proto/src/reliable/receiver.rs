//! The receivers' half: puts each sender's packets back in order, decodes parity, asks for what
//! is missing with NACKs that other receivers' NACKs can spare, and gives up on a hole in time.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    net::Ipv6Addr,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    ReceiverStats, RepairConfig, fec,
    stream::{ParityBlock, Stream},
};
use crate::wire::{
    NodeId,
    repair::{self, Nack, Parity, Sequenced, Status},
};

/// A packet handed on: the datagram to decode, from `sender`, number `packet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready<T> {
    /// The sender whose packet it is.
    pub sender: NodeId,
    /// Its number.
    pub packet: u64,
    /// The datagram it carries, shared with the copy kept for parity while that may need it.
    pub datagram: Arc<[u8]>,
    /// How it arrived (for a rebuilt one: how the parity that completed it arrived).
    pub tag: T,
}

/// Copies of each report that a receiver left: reports are not acknowledged, and a sender
/// that misses all of them waits for the receiver until it gives it up.
const FAREWELL_COPIES: usize = 3;

/// A STATUS from `from` to `target` on the channel of `group`, at `position`.
fn status(from: NodeId, target: NodeId, group: Ipv6Addr, position: u64) -> Vec<u8> {
    let mut status = Vec::new();
    repair::encode_status(
        &mut status,
        &Status {
            from,
            target,
            group,
            position,
        },
    );
    status
}

/// Receiver side of reliable channels, without I/O, for every sender of one channel. Give it
/// what arrives ([`on_sequenced`](Self::on_sequenced), [`on_parity`](Self::on_parity),
/// [`on_nack`](Self::on_nack)) with a tag of how it arrived; it returns the packets to decode,
/// in each sender's order, each with its tag (a packet rebuilt from parity gets the parity's).
/// Send what [`poll_transmit`](Self::poll_transmit) returns (NACKs), and call
/// [`poll_expired`](Self::poll_expired) at [`poll_timeout`](Self::poll_timeout).
#[derive(Debug)]
pub struct RepairReceiver<T> {
    node: NodeId,
    group: Ipv6Addr,
    config: RepairConfig,
    streams: HashMap<NodeId, Stream<T>>,
    out: VecDeque<(Vec<u8>, Option<T>)>,
    rng: u64,
    /// Whether packets are held back because the application is not taking messages.
    held: bool,
    /// Since when the driver has had datagrams it has not read yet: NACKs wait meanwhile.
    behind_since: Option<Instant>,
    stats: ReceiverStats,
    /// The other receivers heard sending NACKs, each with when it was last heard: how many
    /// share the channel, as far as NACKs tell.
    peers: HashMap<NodeId, Instant>,
}

/// How long a receiver heard sending a NACK counts as sharing the channel.
const PEER_WINDOW: Duration = Duration::from_secs(5);

/// The most other receivers counted: NACKs spread over at most 1 + log2(64) = 7 times
/// `nack_spread`, however many receivers (or forged NACKs) there are.
const MAX_PEERS: usize = 63;

impl<T: Clone> RepairReceiver<T> {
    /// A receiver of the channel of `group` that sends its NACKs and reports as `node`; `seed`
    /// varies its NACK delays.
    pub fn new(node: NodeId, group: Ipv6Addr, config: RepairConfig, seed: u64) -> Self {
        Self {
            node,
            group,
            config,
            streams: HashMap::new(),
            out: VecDeque::new(),
            rng: seed | 1,
            held: false,
            behind_since: None,
            stats: ReceiverStats::default(),
            peers: HashMap::new(),
        }
    }

    /// What this receiver did so far.
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    /// Stops handing on packets, because the application's queue is filling: they wait here,
    /// and the position reported to senders stops, so that they wait too.
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Takes back packets handed on that the application's queue had no room for, and holds:
    /// they are handed on again at [`release`](Self::release).
    pub fn put_back(&mut self, unused: Vec<Ready<T>>) {
        self.held = true;
        // Newest first: each rewinds its stream to itself, so that the next one (older) is
        // again before the stream's position.
        for ready in unused.into_iter().rev() {
            if let Some(stream) = self.streams.get_mut(&ready.sender)
                && ready.packet < stream.next
            {
                stream.kept.remove(&ready.packet);
                stream.next = stream.next.min(ready.packet);
                stream.wait(ready.packet, ready.datagram, ready.tag);
            }
        }
    }

    /// Hands on again: returns the packets that waited, in each sender's order.
    pub fn release(&mut self, now: Instant) -> Vec<Ready<T>> {
        self.held = false;
        let mut ready = Vec::new();
        let senders: Vec<NodeId> = self.streams.keys().copied().collect();
        for sender in senders {
            self.settle(sender, now, &mut ready);
        }
        ready
    }

    /// Tells whether the driver has read everything that arrived (`false`) or has datagrams
    /// waiting unread (`true`). While it is behind, no NACK leaves, for up to
    /// [`RepairConfig::repair_wait_max`]: what waits unread may fill the holes (a slow reader
    /// takes parity as long on its way), and a NACK from a stale view asks for repair again.
    /// Holes are not given up meanwhile: their clocks stand still, as the repairs may wait
    /// unread behind the packets sent before them.
    pub fn set_behind(&mut self, behind: bool, now: Instant) {
        match (behind, self.behind_since) {
            (false, Some(since)) => {
                let paused = now.saturating_duration_since(since);
                for stream in self.streams.values_mut() {
                    stream.hole_since = stream.hole_since.map(|at| at + paused);
                    stream.opened.values_mut().for_each(|at| *at += paused);
                }
                self.behind_since = None;
            }
            (true, None) => self.behind_since = Some(now),
            _ => {}
        }
    }

    /// Whether some sender's stream misses packets.
    pub fn has_holes(&self) -> bool {
        self.streams.values().any(|stream| stream.missing() > 0)
    }

    /// Until when NACKs wait for the driver to catch up, while it is behind.
    fn nacks_held_until(&self) -> Option<Instant> {
        self.behind_since
            .map(|since| since + self.config.repair_wait_max)
    }

    /// Takes a numbered packet; returns the packets now ready, in order (it among them unless
    /// it is a duplicate or waits for a hole before it).
    pub fn on_sequenced(&mut self, packet: &Sequenced<'_>, tag: T, now: Instant) -> Vec<Ready<T>> {
        let mut ready = Vec::new();
        if !self.streams.contains_key(&packet.sender) {
            self.new_stream(packet.sender, packet.packet, now);
        }
        let Some(stream) = self.streams.get_mut(&packet.sender) else {
            return ready;
        };
        stream.last_heard = now;
        stream.reply_to = Some(tag.clone());
        if packet.packet < stream.next || stream.is_waiting(packet.packet) {
            self.stats.duplicates += 1;
            return ready;
        }
        if self.held && stream.waiting_bytes() > self.config.reorder_bytes {
            // No room while the application catches up: asked for again once there is.
            self.stats.overrun += 1;
            return ready;
        }
        stream.wait(packet.packet, Arc::from(packet.inner), tag.clone());
        // A packet re-sent (once a block's parity is used up) may be what the parity held here
        // was waiting for: NACKs do not ask for holes that held parity fills.
        let block = stream
            .parity
            .range(..=packet.packet)
            .next_back()
            .filter(|(start, block)| **start + u64::from(block.len) > packet.packet)
            .map(|(&start, _)| start);
        if let Some(start) = block {
            self.decode(packet.sender, start, &tag);
        }
        self.settle(packet.sender, now, &mut ready);
        ready
    }

    /// Takes a parity symbol; returns the packets it completes, in order.
    pub fn on_parity(&mut self, parity: &Parity<'_>, tag: T, now: Instant) -> Vec<Ready<T>> {
        let mut ready = Vec::new();
        if !self.streams.contains_key(&parity.sender) {
            // A later block of a sender not heard yet: this receiver joins at its next packet.
            if parity.block_start >= u64::from(self.config.block_len) {
                return ready;
            }
            // Its first block: every packet of it was lost here.
            self.new_stream(parity.sender, parity.block_start, now);
        }
        let Some(stream) = self.streams.get_mut(&parity.sender) else {
            return ready;
        };
        stream.last_heard = now;
        let block_end = parity.block_start + u64::from(parity.block_len);
        if block_end <= stream.next {
            // The sender still announces its tail (or repairs its last block for others): it
            // may be waiting for this receiver, whose report that it has everything was lost.
            let said_so_lately = stream.reported.is_some_and(|(position, at)| {
                position < stream.next || now < at + self.config.repair_wait_max
            });
            if block_end >= stream.end && !said_so_lately {
                stream.status_at.get_or_insert(now);
            }
            return ready;
        }
        self.stats.repairs_received += 1;
        stream.extend_to(block_end);
        stream.grid.note(parity.block_start, parity.block_len);
        let block = stream
            .parity
            .entry(parity.block_start)
            .or_insert_with(|| ParityBlock {
                len: parity.block_len,
                symbols: BTreeMap::new(),
            });
        let same_shape = block.len == parity.block_len
            && block
                .symbols
                .values()
                .next()
                .is_none_or(|symbol| symbol.len() == parity.symbol.len());
        if same_shape {
            block
                .symbols
                .entry(parity.index)
                .or_insert_with(|| parity.symbol.to_vec());
            self.decode(parity.sender, parity.block_start, &tag);
        }
        self.settle(parity.sender, now, &mut ready);
        ready
    }

    /// Takes a NACK heard on the channel from another receiver: this receiver's own NACK waits
    /// one backoff, once per NACK of its own (suppression). The sender answers each block by the
    /// most any receiver asks of it, and any symbol fills any hole, so the repair that NACK
    /// brings often fills this receiver's holes of the same blocks too; what it leaves, and the
    /// holes of blocks it did not ask of, go in one NACK after the wait rather than in one each
    /// time another receiver's NACK leaves some out.
    pub fn on_nack(&mut self, nack: &Nack<'_>, now: Instant) {
        if nack.from == self.node || !self.config.suppression {
            return;
        }
        if let Some(heard) = self.peers.get_mut(&nack.from) {
            *heard = now;
        } else {
            if self.peers.len() >= MAX_PEERS {
                self.peers
                    .retain(|_, heard| now.saturating_duration_since(*heard) < PEER_WINDOW);
            }
            if self.peers.len() < MAX_PEERS {
                self.peers.insert(nack.from, now);
            }
        }
        let Some(stream) = self.streams.get_mut(&nack.target) else {
            return;
        };
        let wait = now + stream.backoff;
        for (hole, due) in &mut stream.hole_timers {
            if *due < wait && stream.suppressed.insert(*hole) {
                *due = wait;
                self.stats.nacks_suppressed += 1;
            }
        }
    }

    /// Leaves every sender's stream: queues, for each sender reported to, three copies of a
    /// report that this receiver left (position [`repair::LEFT`]), so that none waits for it.
    pub fn leave(&mut self) {
        for (&sender, stream) in &self.streams {
            if stream.reported.is_none() {
                continue;
            }
            let status = status(self.node, sender, self.group, repair::LEFT);
            for _ in 0..FAREWELL_COPIES {
                self.out
                    .push_back((status.clone(), stream.reply_to.clone()));
            }
            self.stats.statuses_sent += FAREWELL_COPIES as u64;
        }
        self.streams.clear();
    }

    /// The next datagram to send, if one is due by `now`: a NACK, for the channel's group
    /// (`None`), or a report for the sender, with how its packets arrive (`Some`).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(Vec<u8>, Option<T>)> {
        let nacks_held = self.nacks_held_until().is_some_and(|until| until > now);
        let spread = |peers| nack_spread(peers, self.config.nack_spread, now);
        for (&sender, stream) in &mut self.streams {
            if stream.status_at.is_some_and(|at| at <= now) {
                stream.status_at = None;
                stream.reported = Some((stream.next, now));
                stream.unreported_bytes = 0;
                let status = status(self.node, sender, self.group, stream.next);
                self.out.push_back((status, stream.reply_to.clone()));
                self.stats.statuses_sent += 1;
            }
            if stream
                .unasked_until(&self.config)
                .is_some_and(|until| now >= until)
            {
                // Holes only in a block that seems open: a sender quiet for this long closed
                // it, and its announcement of that was lost here. They are asked for now, the
                // receiver that misses most of it first, as for a closed block.
                let holes = stream.holes();
                let (len, missing) = stream
                    .opened
                    .keys()
                    .next()
                    .map_or((1, 0), |&first| stream.need_in_block(first, &holes));
                let due = now
                    + self.config.nack_delay
                    + nack_wait(spread(&self.peers), missing, len, &mut self.rng);
                stream.hole_timers = stream.opened.keys().map(|&first| (first, due)).collect();
            }
            if nacks_held || stream.hole_timers.values().all(|&due| due > now) {
                continue;
            }
            // Every hole, also those another receiver asked for: the sender repairs each block
            // by the most holes one receiver has in it; less what held parity fills.
            let holes = stream.wanted();
            // Asked for now, or all filled by parity held: either way, wait for the next look.
            let wait = now + stream.backoff;
            stream.hole_timers.values_mut().for_each(|due| *due = wait);
            stream.suppressed.clear();
            if holes.is_empty() {
                continue;
            }
            let mut nack = Vec::new();
            repair::encode_nack(&mut nack, self.node, sender, stream.end, &holes);
            self.out.push_back((nack, None));
            self.stats.nacks_sent += 1;
            stream.backoff = (stream.backoff * 2).min(self.config.repair_wait_max);
        }
        self.out.pop_front()
    }

    /// When this receiver next has a NACK to send or a hole to give up on.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let held_until = self.nacks_held_until();
        self.streams
            .values()
            .flat_map(|stream| {
                [
                    stream
                        .hole_timers
                        .values()
                        .min()
                        .map(|&due| held_until.map_or(due, |until| due.max(until))),
                    stream.status_at,
                    stream.unasked_until(&self.config),
                    stream
                        .give_up_at(self.config.give_up)
                        .filter(|_| self.behind_since.is_none()),
                ]
            })
            .flatten()
            .min()
    }

    /// Gives up the holes open longer than [`RepairConfig::give_up`] (and those that hold more
    /// than [`RepairConfig::reorder_bytes`] waiting behind them): returns the packets behind
    /// them, in order. The packets given up are counted in [`ReceiverStats::packets_lost`]; what
    /// they held shows as lost messages where the message codec sees the gap.
    pub fn poll_expired(&mut self, now: Instant) -> Vec<Ready<T>> {
        let mut ready = Vec::new();
        let give_up = self.config.give_up;
        if self.behind_since.is_some() {
            return ready;
        }
        let expired = |stream: &Stream<T>| stream.give_up_at(give_up).is_some_and(|at| at <= now);
        let senders: Vec<NodeId> = self
            .streams
            .iter()
            .filter(|(_, stream)| expired(stream))
            .map(|(&sender, _)| sender)
            .collect();
        for sender in senders {
            // Each hole as old as the first goes too (a sender gone leaves many), one at a time:
            // skipping is not progress, so the position moving past one does not restart the
            // clock of the next.
            while let Some(since) = self
                .streams
                .get(&sender)
                .filter(|stream| expired(stream))
                .and_then(|stream| stream.hole_since)
            {
                if !self.skip_hole(sender) {
                    break;
                }
                self.settle(sender, now, &mut ready);
                if let Some(stream) = self.streams.get_mut(&sender)
                    && stream.hole_since.is_some()
                {
                    stream.hole_since = Some(since);
                }
            }
        }
        ready
    }

    /// Moves past the oldest hole of `sender`, counting its packets lost; whether it moved.
    fn skip_hole(&mut self, sender: NodeId) -> bool {
        let Some(stream) = self.streams.get_mut(&sender) else {
            return false;
        };
        let resume = stream.first_waiting().unwrap_or(stream.end);
        self.stats.packets_lost += resume - stream.next;
        let moved = resume > stream.next;
        stream.next = resume;
        stream.hole_since = None;
        moved
    }

    /// Hands on the packets of `sender` that no hole holds back, keeps them for parity, and
    /// (re)arms the NACK timer for what is missing.
    fn settle(&mut self, sender: NodeId, now: Instant, ready: &mut Vec<Ready<T>>) {
        let config = self.config;
        let before = self.streams.get(&sender).map(|stream| stream.next);
        loop {
            let Some(stream) = self.streams.get_mut(&sender) else {
                return;
            };
            while !self.held
                && let Some((packet, tag)) = stream.take_next()
            {
                stream.kept.insert(stream.next, Arc::clone(&packet));
                stream.unreported_bytes += packet.len();
                ready.push(Ready {
                    sender,
                    packet: stream.next,
                    datagram: packet,
                    tag,
                });
                stream.next += 1;
            }
            let keep_from = stream.next.saturating_sub(u64::from(config.block_len) * 2);
            // One packet or two leave per packet handed on: removed in place, not by splitting
            // the map into a new one (an allocation per packet).
            while let Some(oldest) = stream.kept.first_entry()
                && *oldest.key() < keep_from
            {
                oldest.remove();
            }
            let next = stream.next;
            stream
                .parity
                .retain(|&start, block| start + u64::from(block.len) > next);
            stream.grid.forget_before(next);
            // Held, the packets behind no hole wait too: the flow window bounds them.
            if self.held || stream.waiting_bytes() <= config.reorder_bytes {
                break;
            }
            // Too much waits behind the oldest hole: this receiver has fallen behind.
            self.skip_hole(sender);
        }
        let Some(stream) = self.streams.get_mut(&sender) else {
            return;
        };
        // Report a new position every status_interval at most, or at once when a quarter of
        // the sender's window was handed on since the last report: at the interval alone, a
        // sender could send no more than a window per interval.
        match stream.reported {
            Some((position, _)) if position == stream.next => {}
            Some((_, at)) => {
                let due = if stream.unreported_bytes >= config.flow_window_bytes / 4 {
                    now
                } else {
                    at + config.status_interval
                };
                let status_at = stream.status_at.get_or_insert(due);
                *status_at = (*status_at).min(due);
            }
            None => {
                stream.status_at.get_or_insert(now);
            }
        }
        if stream.missing() == 0 {
            stream.hole_timers.clear();
            stream.suppressed.clear();
            stream.opened.clear();
            stream.hole_since = None;
            stream.backoff = config.repair_wait;
            stream.timers_emptied();
            return;
        }
        stream.hole_since.get_or_insert(now);
        // Progress: repairs come, so the waits start over. Kept long, they would leave a
        // sender that waits for this receiver's position idle for most of each wait. And the
        // oldest hole is a new one: under steady loss some hole is always open, and timing
        // the first one forever skipped fresh holes once `give_up` had passed.
        if before.is_some_and(|before| stream.next > before) {
            stream.hole_since = Some(now);
            stream.backoff = config.repair_wait;
            let soon = now + config.repair_wait;
            stream
                .hole_timers
                .values_mut()
                .for_each(|due| *due = (*due).min(soon));
        }
        if !stream.needs_fitting() {
            return;
        }
        let spread = nack_spread(&self.peers, config.nack_spread, now);
        // A timer per hole: kept while any packet of it is missing, new for a new hole.
        let holes = stream.holes();
        let open = |packet: &u64| {
            holes
                .iter()
                .any(|&(first, count)| (first..first + u64::from(count)).contains(packet))
        };
        stream.hole_timers.retain(|packet, _| open(packet));
        stream.suppressed.retain(open);
        stream.opened.retain(|packet, _| open(packet));
        for &(first, count) in &holes {
            let range = first..first + u64::from(count);
            if stream.opened.range(range).next().is_none() {
                stream.opened.insert(first, now);
            }
        }
        for &(first, count) in &holes {
            // The sender repairs a block once it is closed: asking sooner gains nothing, and
            // asking once for all of a block's holes lets other receivers weigh the whole.
            let block = stream.grid.block_of(first);
            if block.1 <= stream.end
                && stream
                    .hole_timers
                    .range(first..first + u64::from(count))
                    .next()
                    .is_none()
            {
                // One wait per block, shared by its holes: with a draw per hole, the earliest
                // of a block's many draws came early at every receiver alike, and their NACKs
                // crossed before any could spare another.
                let shared = stream
                    .hole_timers
                    .range(block.0..block.1)
                    .map(|(_, &due)| due)
                    .min();
                let due = shared.unwrap_or_else(|| {
                    let (len, missing) = stream.need_in_block(first, &holes);
                    now + config.nack_delay + nack_wait(spread, missing, len, &mut self.rng)
                });
                stream.hole_timers.insert(first, due);
            }
        }
    }

    /// Recovers what parity allows of the block at `start`, into the waiting packets.
    fn decode(&mut self, sender: NodeId, start: u64, tag: &T) {
        let Some(stream) = self.streams.get_mut(&sender) else {
            return;
        };
        let Some(block) = stream.parity.get(&start) else {
            return;
        };
        let len = u64::from(block.len);
        let present: Vec<(usize, &[u8])> = (0..len)
            .filter_map(|offset| Some((offset as usize, stream.have(start + offset)?)))
            .collect();
        if present.len() as u64 == len {
            stream.parity.remove(&start);
            return;
        }
        if present.len() + block.symbols.len() < usize::from(block.len) {
            return;
        }
        let symbol_len = block.symbols.values().next().map_or(0, Vec::len);
        let parity = block
            .symbols
            .iter()
            .map(|(&index, symbol)| (usize::from(index), symbol.as_slice()));
        let recovered = fec::recover(block.len, present.into_iter(), parity, symbol_len);
        let Some(recovered) = recovered else {
            // Forged or garbled parity: forget it, the NACKs ask again.
            self.stats.bad_parity += 1;
            stream.parity.remove(&start);
            return;
        };
        stream.parity.remove(&start);
        for (offset, packet) in recovered {
            let number = start + offset as u64;
            if number >= stream.next {
                self.stats.packets_recovered += 1;
                stream.wait(number, Arc::from(packet), tag.clone());
            }
        }
    }

    /// Starts following `sender`, first heard at `packet`. A sender heard within its first
    /// [`RepairConfig::block_len`] packets has just begun, and this receiver asks for those
    /// before; one heard later is joined late, from where it comes in.
    fn new_stream(&mut self, sender: NodeId, packet: u64, now: Instant) {
        self.make_room(now);
        let first = if packet < u64::from(self.config.block_len) {
            0
        } else {
            packet
        };
        let config = self.config;
        self.streams
            .entry(sender)
            .or_insert_with(|| Stream::new(first, now, &config));
    }

    /// Forgets the senders silent longest once [`RepairConfig::max_senders`] are tracked.
    fn make_room(&mut self, now: Instant) {
        let idle = self.config.sender_idle;
        self.streams.retain(|_, stream| {
            stream.missing() > 0 || now.saturating_duration_since(stream.last_heard) < idle
        });
        while self.streams.len() >= self.config.max_senders.max(1) {
            let oldest = self
                .streams
                .iter()
                .min_by_key(|(_, stream)| stream.last_heard)
                .map(|(&sender, _)| sender);
            match oldest {
                Some(sender) => self.streams.remove(&sender),
                None => break,
            };
        }
    }
}

/// How far NACKs spread, for a receiver that heard NACKs from `peers`: `nack_spread` times
/// 1 + log2 of the receivers it knows of (itself included). The more receivers may ask, the
/// more time their first NACK needs to reach the others before their own timers fire; a lone
/// receiver keeps the shortest wait. (RFC 5401's backoff grows with the group's size too.)
fn nack_spread(peers: &HashMap<NodeId, Instant>, nack_spread: Duration, now: Instant) -> Duration {
    let heard = peers
        .values()
        .filter(|&&heard| now.saturating_duration_since(heard) < PEER_WINDOW)
        .count();
    let receivers = f64::from(u32::try_from(heard + 1).unwrap_or(u32::MAX));
    nack_spread.mul_f64(1.0 + receivers.log2())
}

/// A random wait within `spread`, uniformly: the first receiver to draw an early time is heard
/// by the others before most of their timers fire. (RFC 5401's truncated exponential suits
/// groups of hundreds; with a handful of receivers it bunches their timers late.)
fn nack_backoff(spread: Duration, rng: &mut u64) -> Duration {
    let spread_ns = u64::try_from(spread.as_nanos()).unwrap_or(u64::MAX).max(1);
    Duration::from_nanos(next_random(rng) % spread_ns)
}

/// How long a hole of a block missing `missing` of its `len` packets waits: the more a
/// receiver misses, the sooner it asks, so that the first NACK of a block is most often the one
/// that asks the most, which spares every other receiver's (suppression). Up to `spread` that
/// falls with the logarithm of what is missing (all of it for one packet, none for the whole
/// block), and up to `spread` more is random, to part receivers that miss as much (a loss at
/// the sender's end: every receiver misses the same).
fn nack_wait(spread: Duration, missing: u64, len: u64, rng: &mut u64) -> Duration {
    let scale = f64::from(u32::try_from(len.max(2)).unwrap_or(u32::MAX)).log2();
    let weight = f64::from(u32::try_from(missing.max(1)).unwrap_or(u32::MAX)).log2() / scale;
    spread.mul_f64(1.0 - weight.min(1.0)) + nack_backoff(spread, rng)
}

/// xorshift64: NACK delays need spread, not secrecy.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
