//! Receiver side: drops duplicates and reassembles fragments, within fixed memory limits.

use std::{
    num::NonZeroU64,
    time::{Duration, Instant},
};

use super::{
    DEFAULT_MAX_MESSAGE_SIZE, Datagram, Fragment, MAX_MESSAGE_SIZE_LIMIT, MessageBatch, NodeId,
    dedup::{GapChange, Seen, SenderTable},
    reassembly::{Added, Reassembly},
    usize_from,
};
use crate::error::{Error, ErrorKind};

/// The largest [`InboxLimits::dedup_window`]; each sender's window takes `dedup_window / 8` bytes.
pub const MAX_DEDUP_WINDOW: u64 = 1 << 16;

/// Bounds on what one [`Inbox`] accepts and holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InboxLimits {
    /// Messages larger than this are dropped (counted in [`InboxStats::too_large`]).
    pub max_message: usize,
    /// A partial message is dropped this long after its first fragment arrived.
    pub reassembly_timeout: Duration,
    /// Memory that partial messages may hold together; see [`Inbox::reassembly_bytes`].
    pub reassembly_memory: usize,
    /// Senders tracked at once; the least recently heard is forgotten to make room. Each costs
    /// at most `dedup_window / 8` bytes for its window plus 640 bytes for map entries and the
    /// floors of forgotten senders (apart from [`reassembly_memory`](Self::reassembly_memory)).
    pub max_senders: usize,
    /// How many of a sender's most recent sequence numbers are remembered to drop duplicates.
    pub dedup_window: u64,
}

impl Default for InboxLimits {
    /// 1 MiB messages, 5 s reassembly timeout, 32 MiB reassembly memory, 4096 senders and a
    /// 4096-message duplicate window.
    fn default() -> Self {
        Self {
            max_message: DEFAULT_MAX_MESSAGE_SIZE,
            reassembly_timeout: Duration::from_secs(5),
            reassembly_memory: 32 << 20,
            max_senders: 4096,
            dedup_window: 4096,
        }
    }
}

impl InboxLimits {
    /// Fails with [`ErrorKind::InvalidConfig`] if a limit is out of range: `max_message` over
    /// [`MAX_MESSAGE_SIZE_LIMIT`], `max_senders` zero, or `dedup_window` outside
    /// `1..=`[`MAX_DEDUP_WINDOW`]. [`Inbox::new`] clamps such values instead.
    pub fn validate(&self) -> crate::Result<()> {
        let problem = if self.max_message > MAX_MESSAGE_SIZE_LIMIT {
            format!("the maximum message size must be at most {MAX_MESSAGE_SIZE_LIMIT} bytes")
        } else if self.max_senders == 0 {
            "the inbox must track at least one sender".to_owned()
        } else if !(1..=MAX_DEDUP_WINDOW).contains(&self.dedup_window) {
            format!("the duplicate window must be between 1 and {MAX_DEDUP_WINDOW} messages")
        } else {
            return Ok(());
        };
        Err(Error::new(ErrorKind::InvalidConfig, problem))
    }
}

/// A message ready for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The node that sent it.
    pub sender: NodeId,
    /// Its sequence number among the sender's messages on this channel.
    pub seq: u64,
    /// The message itself.
    pub payload: Vec<u8>,
}

/// Counters of what an [`Inbox`] did with the datagrams it was given.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct InboxStats {
    /// Messages handed to the application.
    pub delivered: u64,
    /// Messages and fragments dropped because their message was already delivered or given up.
    pub duplicates: u64,
    /// Messages and fragments dropped because they are older than their sender's duplicate
    /// window, or than the floor remembered for a sender forgotten to stay within
    /// [`InboxLimits::max_senders`]: they cannot be told apart from replays.
    pub stale: u64,
    /// Messages, and fragments of messages, larger than [`InboxLimits::max_message`].
    pub too_large: u64,
    /// Partial messages dropped because their remaining fragments did not arrive in time.
    pub reassembly_expired: u64,
    /// Partial messages dropped to stay within the memory budget, because their fragments
    /// contradicted each other, or because their sender was evicted.
    pub reassembly_rejected: u64,
    /// Senders forgotten to stay within [`InboxLimits::max_senders`].
    pub senders_evicted: u64,
    /// Messages never heard: sequence numbers a sender skipped, less those that arrived late.
    /// It can fall when a late message fills a gap; a gap older than the sender's duplicate
    /// window stays counted. Nothing a sender sent before the first message heard from it
    /// counts, and neither can its last messages before a silence.
    pub lost: u64,
}

/// What a receiver knows of one sender of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderLoss {
    /// The sender's node id.
    pub sender: NodeId,
    /// The highest sequence number of it delivered or given up, if any.
    pub highest_seq: Option<u64>,
    /// Its messages never heard: its share of [`InboxStats::lost`], counted the same way.
    pub lost: u64,
}

/// Receiver side, one per channel: per-sender duplicate windows plus reassembly, bounded in
/// memory.
///
/// Each `(sender, seq)` is delivered at most once. A message is *settled* once it is delivered
/// or given up (too large, expired, rejected); later copies of it, whole or fragments, count as
/// duplicates, and so does anything older than the sender's [`InboxLimits::dedup_window`].
/// Whole messages are delivered as they arrive, in datagram order, without a reordering buffer.
///
/// When a new partial message would exceed [`InboxLimits::reassembly_memory`], the oldest partial
/// messages are dropped first: the one waiting longest is the most likely to miss a fragment
/// that will never come. A message that alone exceeds the budget is rejected.
#[derive(Debug)]
pub struct Inbox {
    limits: InboxLimits,
    senders: SenderTable,
    reassembly: Reassembly,
    stats: InboxStats,
    /// Sequence numbers skipped since [`take_gaps`](Self::take_gaps), per sender.
    gaps: Vec<(NodeId, u64)>,
}

impl Inbox {
    /// Creates an empty inbox. Out-of-range limits are clamped (see [`InboxLimits::validate`]).
    pub fn new(limits: InboxLimits) -> Self {
        let limits = InboxLimits {
            max_message: limits.max_message.min(MAX_MESSAGE_SIZE_LIMIT),
            max_senders: limits.max_senders.max(1),
            dedup_window: limits.dedup_window.clamp(1, MAX_DEDUP_WINDOW),
            ..limits
        };
        let window = NonZeroU64::new(limits.dedup_window).unwrap_or(NonZeroU64::MIN);
        Self {
            limits,
            senders: SenderTable::new(limits.max_senders, window),
            reassembly: Reassembly::default(),
            stats: InboxStats::default(),
            gaps: Vec::new(),
        }
    }

    /// Feeds one decoded datagram; calls `deliver` once for each message completed and not seen
    /// before. Also drops partial messages that have expired by `now`.
    pub fn accept(
        &mut self,
        datagram: &Datagram<'_>,
        now: Instant,
        deliver: &mut dyn FnMut(Delivery),
    ) {
        self.expire(now);
        if let Some(evicted) = self.senders.touch(datagram.sender()) {
            self.stats.senders_evicted += 1;
            self.stats.reassembly_rejected += self.reassembly.remove_sender(evicted);
        }
        match datagram {
            Datagram::Messages(batch) => self.accept_batch(batch, deliver),
            Datagram::Fragment(fragment) => self.accept_fragment(fragment, now, deliver),
        }
    }

    /// Drops partial messages whose first fragment arrived `reassembly_timeout` or more before
    /// `now`.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.limits.reassembly_timeout;
        while let Some((sender, seq)) = self.reassembly.pop_expired(now, timeout) {
            self.stats.reassembly_expired += 1;
            self.settle(sender, seq);
        }
    }

    /// When [`expire`](Self::expire) next has work, if any partial message is held.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.reassembly
            .oldest_start()?
            .checked_add(self.limits.reassembly_timeout)
    }

    /// What the inbox did so far.
    pub fn stats(&self) -> InboxStats {
        self.stats
    }

    /// Memory charged for partial messages: their full announced length plus an estimate of the
    /// bookkeeping per message and per fragment. Never exceeds
    /// [`InboxLimits::reassembly_memory`].
    pub fn reassembly_bytes(&self) -> usize {
        self.reassembly.bytes()
    }

    /// What is known of each sender tracked now (at most [`InboxLimits::max_senders`], the
    /// least recently heard forgotten first), by node id.
    pub fn sender_losses(&self) -> Vec<SenderLoss> {
        let mut senders: Vec<SenderLoss> = self
            .senders
            .losses()
            .map(|(sender, highest_seq, lost)| SenderLoss {
                sender,
                highest_seq,
                lost,
            })
            .collect();
        senders.sort_unstable_by_key(|stats| stats.sender);
        senders
    }

    /// Number of senders currently tracked (at most [`InboxLimits::max_senders`]).
    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    /// Marks message `seq` of `sender` as settled and counts the gaps that closes or opens.
    fn settle(&mut self, sender: NodeId, seq: u64) {
        let change = self.senders.settle(sender, seq);
        self.note_gaps(sender, change);
    }

    /// Counts `change` in `lost`, and what it skipped in the gaps still to report.
    fn note_gaps(&mut self, sender: NodeId, change: GapChange) {
        self.stats.lost = with_gaps(self.stats.lost, change);
        add_gap(&mut self.gaps, sender, change.skipped);
    }

    /// The sequence numbers skipped since the last call, per sender (in the order the gaps
    /// opened, a sender's consecutive gaps summed): what the application hears of as lost.
    pub fn take_gaps(&mut self) -> Vec<(NodeId, u64)> {
        std::mem::take(&mut self.gaps)
    }

    /// Whether message `seq` of `sender` is new; counts it as a duplicate or stale otherwise.
    fn count_if_seen(&mut self, sender: NodeId, seq: u64) -> bool {
        match self.senders.seen(sender, seq) {
            Seen::New => return true,
            Seen::Duplicate => self.stats.duplicates += 1,
            Seen::Stale => self.stats.stale += 1,
        }
        false
    }

    fn accept_batch(&mut self, batch: &MessageBatch<'_>, deliver: &mut dyn FnMut(Delivery)) {
        // The sender's window is looked up once per datagram, not twice per message. `accept`
        // has just touched the sender, so it is known; an unknown one would have every message
        // new and nothing to settle, as in `SenderTable::is_new` and `settle`.
        let mut window = self.senders.window_mut(batch.sender);
        for (seq, payload) in batch {
            match window.as_ref().map_or(Seen::New, |window| window.seen(seq)) {
                Seen::New => {}
                Seen::Duplicate => {
                    self.stats.duplicates += 1;
                    continue;
                }
                Seen::Stale => {
                    self.stats.stale += 1;
                    continue;
                }
            }
            if let Some(window) = window.as_mut() {
                let change = window.settle(seq);
                self.stats.lost = with_gaps(self.stats.lost, change);
                add_gap(&mut self.gaps, batch.sender, change.skipped);
            }
            if payload.len() > self.limits.max_message {
                self.stats.too_large += 1;
                continue;
            }
            self.stats.delivered += 1;
            deliver(Delivery {
                sender: batch.sender,
                seq,
                payload: payload.to_vec(),
            });
        }
    }

    fn accept_fragment(
        &mut self,
        fragment: &Fragment<'_>,
        now: Instant,
        deliver: &mut dyn FnMut(Delivery),
    ) {
        let Fragment { sender, seq, .. } = *fragment;
        if !self.count_if_seen(sender, seq) {
            return;
        }
        if fragment.check().is_err() {
            // Only a hand-built fragment gets here; `decode` refuses these.
            self.stats.reassembly_rejected += 1;
            return;
        }
        if usize_from(fragment.total_len) > self.limits.max_message {
            self.stats.too_large += 1;
            self.settle(sender, seq);
            return;
        }
        let starts_message = !self.reassembly.contains(&(sender, seq));
        if starts_message && !self.make_room(Reassembly::cost(fragment)) {
            self.stats.reassembly_rejected += 1;
            self.settle(sender, seq);
            return;
        }
        match self.reassembly.add(fragment, now) {
            Added::Pending => {}
            Added::Duplicate => self.stats.duplicates += 1,
            Added::Complete(payload) => {
                self.settle(sender, seq);
                self.stats.delivered += 1;
                deliver(Delivery {
                    sender,
                    seq,
                    payload,
                });
            }
            Added::Inconsistent => {
                self.settle(sender, seq);
                self.stats.reassembly_rejected += 1;
            }
        }
    }

    /// Drops the oldest partial messages until `cost` more bytes fit the budget. Returns false,
    /// dropping nothing, if `cost` alone exceeds the budget.
    fn make_room(&mut self, cost: usize) -> bool {
        let budget = self.limits.reassembly_memory;
        if cost > budget {
            return false;
        }
        while budget.saturating_sub(self.reassembly.bytes()) < cost {
            let Some((sender, seq)) = self.reassembly.pop_oldest() else {
                break;
            };
            self.stats.reassembly_rejected += 1;
            self.settle(sender, seq);
        }
        true
    }
}

/// Adds `skipped` numbers of `sender` to the gaps to report, summing a sender's consecutive ones.
fn add_gap(gaps: &mut Vec<(NodeId, u64)>, sender: NodeId, skipped: u64) {
    if skipped == 0 {
        return;
    }
    match gaps.last_mut() {
        Some((last, sum)) if *last == sender => *sum += skipped,
        _ => gaps.push((sender, skipped)),
    }
}

/// `lost` after a sender's gaps changed by `change`.
fn with_gaps(lost: u64, change: GapChange) -> u64 {
    lost.saturating_add(change.skipped)
        .saturating_sub(u64::from(change.filled))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::{DEFAULT_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE, Packer, decode};

    const ALICE: NodeId = NodeId(0xa11ce);
    const BOB: NodeId = NodeId(0xb0b);

    /// Packs `messages` as one sender would, starting at `first_seq`, and flushes.
    fn pack(
        sender: NodeId,
        first_seq: u64,
        max_datagram: usize,
        messages: &[Vec<u8>],
    ) -> Vec<Vec<u8>> {
        let mut packer = Packer::new(sender, max_datagram, 2 << 20)
            .unwrap()
            .with_first_seq(first_seq);
        let mut ready = Vec::new();
        for message in messages {
            packer.push(message, &mut ready).unwrap();
        }
        packer.flush(&mut ready);
        ready
    }

    /// Feeds every datagram at `now` and returns what was delivered.
    fn feed(inbox: &mut Inbox, datagrams: &[Vec<u8>], now: Instant) -> Vec<Delivery> {
        let mut delivered = Vec::new();
        for datagram in datagrams {
            let datagram = decode(datagram).expect("packer output decodes");
            inbox.accept(&datagram, now, &mut |delivery| delivered.push(delivery));
        }
        delivered
    }

    /// A deterministic Fisher-Yates shuffle driven by xorshift, so failures reproduce.
    fn shuffle<T>(items: &mut [T], mut seed: u64) {
        for last in (1..items.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            items.swap(last, usize::try_from(seed % (last as u64 + 1)).unwrap());
        }
    }

    fn limits() -> InboxLimits {
        InboxLimits {
            max_message: 2 << 20,
            ..InboxLimits::default()
        }
    }

    /// One datagram per message: message `seq` of `sender`.
    fn single(sender: NodeId, seq: u64) -> Vec<u8> {
        pack(
            sender,
            seq,
            DEFAULT_DATAGRAM_SIZE,
            &[seq.to_be_bytes().to_vec()],
        )
        .remove(0)
    }

    #[test]
    fn gaps_count_as_lost_until_late_messages_fill_them() {
        let mut inbox = Inbox::new(limits());
        let now = Instant::now();
        // The first message heard sets the start: nothing before seq 10 counts.
        feed(&mut inbox, &[single(ALICE, 10), single(ALICE, 11)], now);
        assert_eq!(inbox.stats().lost, 0);
        // 12, 13 and 14 skipped.
        feed(&mut inbox, &[single(ALICE, 15)], now);
        assert_eq!(inbox.stats().lost, 3);
        // 13 arrives late; a duplicate of 15 changes nothing; Bob's own gap adds up.
        feed(&mut inbox, &[single(ALICE, 13), single(ALICE, 15)], now);
        assert_eq!(inbox.stats().lost, 2);
        feed(&mut inbox, &[single(BOB, 0), single(BOB, 4)], now);
        assert_eq!(inbox.stats().lost, 5);
        feed(&mut inbox, &[single(ALICE, 12), single(ALICE, 14)], now);
        assert_eq!(inbox.stats().lost, 3, "Bob's 1, 2, 3 are still missing");
        // Every gap opened is reported once, filled or not: the application hears of it as
        // it happens, and `lost` keeps the balance.
        assert_eq!(inbox.take_gaps(), [(ALICE, 3), (BOB, 3)]);
        assert!(inbox.take_gaps().is_empty(), "reported once");
        assert_eq!(inbox.stats().delivered, 8);
        // The balance per sender: Alice's gaps all filled, Bob's open.
        let per_sender = |lost_of: &[(NodeId, Option<u64>, u64)]| {
            lost_of
                .iter()
                .map(|&(sender, highest_seq, lost)| SenderLoss {
                    sender,
                    highest_seq,
                    lost,
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            inbox.sender_losses(),
            per_sender(&[(BOB, Some(4), 3), (ALICE, Some(15), 0)])
        );
    }

    #[test]
    fn a_gap_older_than_the_window_stays_lost() {
        let mut inbox = Inbox::new(InboxLimits {
            dedup_window: 64,
            ..limits()
        });
        let now = Instant::now();
        feed(
            &mut inbox,
            &[single(ALICE, 0), single(ALICE, 2), single(ALICE, 200)],
            now,
        );
        assert_eq!(inbox.stats().lost, 1 + 197);
        // Message 1 comes far too late to tell from a replay: refused, and still lost.
        feed(&mut inbox, &[single(ALICE, 1)], now);
        assert_eq!((inbox.stats().lost, inbox.stats().stale), (198, 1));
    }

    #[test]
    fn a_fragmented_message_is_lost_only_while_none_of_it_arrived() {
        let mut inbox = Inbox::new(limits());
        let now = Instant::now();
        let large = vec![7u8; 3000];
        let mut datagrams = pack(ALICE, 0, MIN_DATAGRAM_SIZE, &[b"a".to_vec(), large]);
        let last = pack(ALICE, 2, MIN_DATAGRAM_SIZE, &[b"c".to_vec()]);
        let fragments = datagrams.split_off(1);
        feed(&mut inbox, &datagrams, now);
        feed(&mut inbox, &last, now);
        assert_eq!(inbox.stats().lost, 1, "message 1 not heard yet");
        feed(&mut inbox, &fragments, now);
        assert_eq!(inbox.stats().lost, 0);
        assert_eq!(inbox.stats().delivered, 3);
    }

    /// The first fragment of a `total_len`-byte message `seq` from `sender`, split in two.
    fn first_half(sender: NodeId, seq: u64, payload: &[u8]) -> Fragment<'_> {
        let total_len = u32::try_from(payload.len()).unwrap();
        let chunk = &payload[..payload.len() / 2];
        Fragment {
            sender,
            seq,
            total_len,
            offset: 0,
            index: 0,
            count: 2,
            chunk,
        }
    }

    fn second_half(sender: NodeId, seq: u64, payload: &[u8]) -> Fragment<'_> {
        let half = payload.len() / 2;
        let offset = u32::try_from(half).unwrap();
        Fragment {
            offset,
            index: 1,
            chunk: &payload[half..],
            ..first_half(sender, seq, payload)
        }
    }

    fn accept(inbox: &mut Inbox, fragment: Fragment<'_>, now: Instant) -> Vec<Delivery> {
        let mut delivered = Vec::new();
        inbox.accept(&Datagram::Fragment(fragment), now, &mut |delivery| {
            delivered.push(delivery);
        });
        delivered
    }

    #[test]
    fn validate_reports_what_new_would_clamp() {
        assert!(InboxLimits::default().validate().is_ok());
        let bad = [
            InboxLimits {
                max_message: MAX_MESSAGE_SIZE_LIMIT + 1,
                ..InboxLimits::default()
            },
            InboxLimits {
                max_senders: 0,
                ..InboxLimits::default()
            },
            InboxLimits {
                dedup_window: 0,
                ..InboxLimits::default()
            },
            InboxLimits {
                dedup_window: MAX_DEDUP_WINDOW + 1,
                ..InboxLimits::default()
            },
        ];
        for limits in bad {
            assert_eq!(
                limits.validate().unwrap_err().kind(),
                ErrorKind::InvalidConfig
            );
            let _still_usable = Inbox::new(limits);
        }
    }

    #[test]
    fn a_mebibyte_message_reassembles_from_shuffled_fragments() {
        let message: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
        let mut datagrams = pack(
            ALICE,
            0,
            DEFAULT_DATAGRAM_SIZE,
            std::slice::from_ref(&message),
        );
        assert_eq!(
            datagrams.len(),
            message.len().div_ceil(DEFAULT_DATAGRAM_SIZE - 36)
        );
        shuffle(&mut datagrams, 0x5eed);
        let mut inbox = Inbox::new(limits());
        let now = Instant::now();
        let (last, rest) = datagrams.split_last().unwrap();
        assert!(feed(&mut inbox, rest, now).is_empty());
        assert!(inbox.reassembly_bytes() > 1 << 20);
        let delivered = feed(&mut inbox, std::slice::from_ref(last), now);
        assert_eq!(
            delivered,
            [Delivery {
                sender: ALICE,
                seq: 0,
                payload: message
            }]
        );
        assert_eq!((inbox.reassembly_bytes(), inbox.next_expiry()), (0, None));

        assert!(
            feed(&mut inbox, &datagrams[..10], now).is_empty(),
            "fragments of a delivered message"
        );
        assert_eq!(inbox.stats().duplicates, 10);
    }

    #[test]
    fn whole_messages_are_delivered_once_in_order() {
        let messages: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i)]).collect();
        let datagrams = pack(ALICE, 0, MIN_DATAGRAM_SIZE, &messages);
        let mut inbox = Inbox::new(limits());
        let now = Instant::now();
        let delivered = feed(&mut inbox, &datagrams, now);
        let expected: Vec<_> = (0..)
            .zip(messages)
            .map(|(seq, payload)| Delivery {
                sender: ALICE,
                seq,
                payload,
            })
            .collect();
        assert_eq!(delivered, expected);
        assert!(feed(&mut inbox, &datagrams, now).is_empty());
        let stats = inbox.stats();
        assert_eq!((stats.delivered, stats.duplicates), (50, 50));
    }

    #[test]
    fn same_sequence_numbers_from_different_senders_are_distinct() {
        let mut inbox = Inbox::new(limits());
        let now = Instant::now();
        let from_alice = pack(ALICE, 0, DEFAULT_DATAGRAM_SIZE, &[b"a".to_vec()]);
        let from_bob = pack(BOB, 0, DEFAULT_DATAGRAM_SIZE, &[b"b".to_vec()]);
        assert_eq!(feed(&mut inbox, &from_alice, now).len(), 1);
        assert_eq!(feed(&mut inbox, &from_bob, now).len(), 1);
        assert_eq!(inbox.senders(), 2);
    }

    #[test]
    fn messages_older_than_the_window_are_stale() {
        let mut inbox = Inbox::new(InboxLimits {
            dedup_window: 4,
            ..limits()
        });
        let now = Instant::now();
        let single = |seq| pack(ALICE, seq, DEFAULT_DATAGRAM_SIZE, &[vec![1]]);
        assert_eq!(feed(&mut inbox, &single(10), now).len(), 1);
        assert_eq!(
            feed(&mut inbox, &single(7), now).len(),
            1,
            "7 is inside the window 7..=10"
        );
        assert_eq!(feed(&mut inbox, &single(6), now).len(), 0, "6 is too old");
        assert_eq!(feed(&mut inbox, &single(7), now).len(), 0);
        assert_eq!(feed(&mut inbox, &single(14), now).len(), 1);
        assert_eq!(feed(&mut inbox, &single(11), now).len(), 1);
        assert_eq!(
            feed(&mut inbox, &single(10), now).len(),
            0,
            "10 left 11..=14"
        );
        assert_eq!((inbox.stats().duplicates, inbox.stats().stale), (1, 2));
    }

    #[test]
    fn oversized_messages_are_dropped_and_counted() {
        let mut inbox = Inbox::new(InboxLimits {
            max_message: 100,
            ..limits()
        });
        let now = Instant::now();
        let messages = [vec![0; 101], vec![0; 100], vec![0; 5000]];
        let delivered = feed(
            &mut inbox,
            &pack(ALICE, 0, DEFAULT_DATAGRAM_SIZE, &messages),
            now,
        );
        assert_eq!(delivered.iter().map(|d| d.seq).collect::<Vec<_>>(), [1]);
        let stats = inbox.stats();
        // One whole message, then the first fragment of the large one settles it.
        assert_eq!(
            (stats.too_large, stats.duplicates, inbox.reassembly_bytes()),
            (2, 4, 0)
        );
    }

    #[test]
    fn memory_budget_holds_under_a_flood_of_partial_messages() {
        let payload = vec![9; 1000];
        let cost = Reassembly::cost(&first_half(ALICE, 0, &payload));
        let budget = 3 * cost + cost / 2;
        let mut inbox = Inbox::new(InboxLimits {
            reassembly_memory: budget,
            ..limits()
        });
        let now = Instant::now();
        for seq in 0..100 {
            assert!(accept(&mut inbox, first_half(ALICE, seq, &payload), now).is_empty());
            assert!(inbox.reassembly_bytes() <= budget);
        }
        assert_eq!(inbox.reassembly_bytes(), 3 * cost);
        assert_eq!(inbox.stats().reassembly_rejected, 97);
        // The newest survive and complete; the evicted are settled, so stragglers are duplicates.
        assert_eq!(
            accept(&mut inbox, second_half(ALICE, 99, &payload), now).len(),
            1
        );
        assert!(accept(&mut inbox, second_half(ALICE, 0, &payload), now).is_empty());
        assert_eq!(inbox.stats().duplicates, 1);

        let huge = vec![0; budget];
        assert!(accept(&mut inbox, first_half(BOB, 0, &huge), now).is_empty());
        assert_eq!(inbox.stats().reassembly_rejected, 98);
        assert_eq!(
            inbox.reassembly_bytes(),
            2 * cost,
            "rejecting a huge message evicts nothing"
        );
    }

    #[test]
    fn partial_messages_expire_after_the_timeout() {
        let timeout = Duration::from_secs(5);
        let mut inbox = Inbox::new(InboxLimits {
            reassembly_timeout: timeout,
            ..limits()
        });
        let start = Instant::now();
        let payload = b"split in two".to_vec();
        assert_eq!(inbox.next_expiry(), None);
        accept(&mut inbox, first_half(ALICE, 0, &payload), start);
        accept(
            &mut inbox,
            first_half(ALICE, 1, &payload),
            start + Duration::from_secs(1),
        );
        assert_eq!(inbox.next_expiry(), Some(start + timeout));
        inbox.expire(start + timeout - Duration::from_millis(1));
        assert_eq!(inbox.stats().reassembly_expired, 0);
        inbox.expire(start + timeout);
        assert_eq!(inbox.stats().reassembly_expired, 1);
        assert_eq!(
            inbox.next_expiry(),
            Some(start + timeout + Duration::from_secs(1))
        );
        // Too late for message 0; accepting also expires message 1 on the way.
        let late = start + Duration::from_secs(7);
        assert!(accept(&mut inbox, second_half(ALICE, 0, &payload), late).is_empty());
        assert_eq!(inbox.stats().reassembly_expired, 2);
        assert_eq!(inbox.stats().duplicates, 1);
        assert_eq!((inbox.reassembly_bytes(), inbox.next_expiry()), (0, None));
    }

    #[test]
    fn a_timeout_beyond_representable_time_never_expires() {
        let mut inbox = Inbox::new(InboxLimits {
            reassembly_timeout: Duration::MAX,
            ..limits()
        });
        let now = Instant::now();
        accept(&mut inbox, first_half(ALICE, 0, b"abcd"), now);
        assert_eq!(inbox.next_expiry(), None);
        inbox.expire(now + Duration::from_secs(1 << 40));
        assert_eq!(inbox.stats().reassembly_expired, 0);
    }

    #[test]
    fn the_least_recently_heard_sender_is_evicted_with_its_partial_messages() {
        let mut inbox = Inbox::new(InboxLimits {
            max_senders: 2,
            ..limits()
        });
        let now = Instant::now();
        let hello = pack(ALICE, 0, DEFAULT_DATAGRAM_SIZE, &[b"hello".to_vec()]);
        assert_eq!(feed(&mut inbox, &hello, now).len(), 1);
        accept(&mut inbox, first_half(BOB, 0, b"abcd"), now);
        let carol = pack(NodeId(0xca401), 0, DEFAULT_DATAGRAM_SIZE, &[b"hi".to_vec()]);
        assert_eq!(feed(&mut inbox, &carol, now).len(), 1);
        assert_eq!(inbox.stats().senders_evicted, 1);
        assert_eq!(
            inbox.reassembly_bytes(),
            Reassembly::cost(&first_half(BOB, 0, b"abcd"))
        );
        // Alice was heard least recently, so Bob is evicted next, with his partial message.
        assert_eq!(
            feed(&mut inbox, &hello, now).len(),
            0,
            "Alice was forgotten but her floor was not: a replay is not delivered again"
        );
        let next = pack(ALICE, 1, DEFAULT_DATAGRAM_SIZE, &[b"again".to_vec()]);
        assert_eq!(feed(&mut inbox, &next, now).len(), 1);
        let stats = inbox.stats();
        assert_eq!((stats.senders_evicted, stats.reassembly_rejected), (2, 1));
        assert_eq!(stats.duplicates, 1);
        assert_eq!((inbox.senders(), inbox.reassembly_bytes()), (2, 0));
    }

    #[test]
    fn contradicting_fragments_reject_the_message() {
        let mut inbox = Inbox::new(limits());
        let now = Instant::now();
        let payload = b"0123456789".to_vec();
        accept(&mut inbox, first_half(ALICE, 0, &payload), now);
        let overlapping = Fragment {
            offset: 4,
            ..second_half(ALICE, 0, &payload)
        };
        assert!(accept(&mut inbox, overlapping, now).is_empty());
        assert!(accept(&mut inbox, second_half(ALICE, 0, &payload), now).is_empty());
        let stats = inbox.stats();
        assert_eq!(
            (stats.reassembly_rejected, stats.duplicates, stats.delivered),
            (1, 1, 0)
        );

        let hand_built = Fragment {
            index: 2,
            ..second_half(ALICE, 1, &payload)
        };
        assert!(accept(&mut inbox, hand_built, now).is_empty());
        assert_eq!(inbox.stats().reassembly_rejected, 2);
        assert_eq!(inbox.reassembly_bytes(), 0);
    }

    #[test]
    fn repeated_fragments_are_duplicates() {
        let mut inbox = Inbox::new(limits());
        let now = Instant::now();
        let payload = b"0123456789".to_vec();
        accept(&mut inbox, first_half(ALICE, 0, &payload), now);
        accept(&mut inbox, first_half(ALICE, 0, &payload), now);
        assert_eq!(
            accept(&mut inbox, second_half(ALICE, 0, &payload), now).len(),
            1
        );
        assert_eq!(
            accept(&mut inbox, second_half(ALICE, 0, &payload), now).len(),
            0
        );
        assert_eq!((inbox.stats().delivered, inbox.stats().duplicates), (1, 2));
    }

    fn messages() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 0..40)
    }

    proptest! {
        #[test]
        fn packed_messages_round_trip_in_order(
            messages in messages(),
            max_datagram in MIN_DATAGRAM_SIZE..2000,
        ) {
            let datagrams = pack(ALICE, 0, max_datagram, &messages);
            prop_assert!(datagrams.iter().all(|datagram| datagram.len() <= max_datagram));
            let mut inbox = Inbox::new(limits());
            let delivered = feed(&mut inbox, &datagrams, Instant::now());
            let payloads: Vec<_> = delivered.into_iter().map(|d| d.payload).collect();
            prop_assert_eq!(payloads, messages);
            prop_assert_eq!(inbox.reassembly_bytes(), 0);
        }

        #[test]
        fn shuffled_and_repeated_datagrams_deliver_each_message_once(
            messages in messages(),
            max_datagram in MIN_DATAGRAM_SIZE..2000,
            repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
            seed in 1u64..,
        ) {
            let mut datagrams = pack(ALICE, 0, max_datagram, &messages);
            if !datagrams.is_empty() {
                let copies: Vec<_> = repeats.iter().map(|i| i.get(&datagrams).clone()).collect();
                datagrams.extend(copies);
            }
            shuffle(&mut datagrams, seed);
            let mut inbox = Inbox::new(limits());
            let mut delivered = feed(&mut inbox, &datagrams, Instant::now());
            delivered.sort_by_key(|delivery| delivery.seq);
            let expected: Vec<_> = (0..)
                .zip(messages)
                .map(|(seq, payload)| Delivery { sender: ALICE, seq, payload })
                .collect();
            prop_assert_eq!(delivered, expected);
        }

        #[test]
        fn arbitrary_fragments_never_break_the_memory_budget(
            fragments in prop::collection::vec(
                (0u64..3, 0u64..4, 0u32..600, 0u32..600, 0u16..6, 0u16..6, 0usize..300, 0u64..3),
                0..200,
            ),
        ) {
            let budget = 2000;
            let timeout = Duration::from_secs(1);
            let limits = InboxLimits { reassembly_memory: budget, reassembly_timeout: timeout, ..limits() };
            let mut inbox = Inbox::new(limits);
            let start = Instant::now();
            let bytes = vec![0xaa; 300];
            for (sender, seq, total_len, offset, index, count, len, seconds) in fragments {
                let chunk = &bytes[..len];
                let fragment = Fragment { sender: NodeId(sender), seq, total_len, offset, index, count, chunk };
                let now = start + Duration::from_secs(seconds);
                inbox.accept(&Datagram::Fragment(fragment), now, &mut |delivery| {
                    assert_eq!(delivery.payload.len(), usize::try_from(total_len).unwrap());
                });
                prop_assert!(inbox.reassembly_bytes() <= budget);
            }
        }
    }
}
