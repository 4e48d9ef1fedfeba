//! The sender's flow window: how many bytes it may be ahead of its slowest receiver, from the
//! positions receivers report. Bytes rather than packets, so that the window fits receivers'
//! socket buffers whatever the datagram size.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use crate::wire::{NodeId, repair};

#[derive(Debug)]
pub(super) struct Flow {
    window_bytes: u64,
    /// How long the window waits for a receiver that does not move.
    timeout: Duration,
    /// How long a receiver that does not move is remembered, for [`Self::catching_up`].
    patience: Duration,
    /// The oldest packet whose size is still known.
    first: u64,
    /// `ends[i]`: the bytes sent before packet `first + i + 1`.
    ends: VecDeque<u64>,
    /// The bytes sent before packet `first`.
    base: u64,
    /// The largest packet so far (0 before the first): packets not yet sent are counted as
    /// this large, so that the estimate never lets more through than fit.
    largest: u64,
    /// Receivers that reported within `patience`.
    receivers: HashMap<NodeId, Reported>,
    /// Packets below this may be sent, as of the last look at the receivers.
    limit: u64,
    /// Whether a report came since `limit` was worked out.
    stale: bool,
    /// Whether any receiver reported yet; until one does (or `timeout` after the first look
    /// passes), the sender keeps within the window from its first packet, as if a receiver
    /// were there, rather than flood receivers whose first reports are on their way.
    heard: bool,
    /// When the sender first looked while no receiver had reported.
    unheard_since: Option<Instant>,
    /// Receivers given up for making no progress.
    pub(super) dropped: u64,
}

/// What a receiver last reported.
#[derive(Debug, Clone, Copy)]
struct Reported {
    position: u64,
    /// When `position` last moved.
    moved: Instant,
    /// Whether the window waits for it: until it goes `timeout` without moving.
    waited_for: bool,
}

impl Flow {
    pub(super) fn new(window_bytes: usize, timeout: Duration, patience: Duration) -> Self {
        Self {
            window_bytes: window_bytes as u64,
            timeout,
            patience,
            first: 0,
            ends: VecDeque::new(),
            base: 0,
            largest: 0,
            receivers: HashMap::new(),
            // Worked out at the first look: see `heard`.
            limit: 0,
            stale: false,
            heard: false,
            unheard_since: None,
            dropped: 0,
        }
    }

    /// Whether any receiver has reported (or the sender stopped waiting for one).
    pub(super) fn heard(&self) -> bool {
        self.heard
    }

    /// How many receivers report, as far as this sender knows.
    pub(super) fn receivers(&self) -> usize {
        self.receivers.len()
    }

    /// Notes the next packet, of `len` bytes.
    pub(super) fn sent(&mut self, len: usize) {
        let len = len as u64;
        self.largest = self.largest.max(len);
        let total = self.ends.back().copied().unwrap_or(self.base);
        self.ends.push_back(total + len);
    }

    /// Forgets the sizes of packets before `packet` (gone from the repair window too).
    pub(super) fn forget_before(&mut self, packet: u64) {
        while self.first < packet
            && let Some(end) = self.ends.pop_front()
        {
            self.base = end;
            self.first += 1;
        }
    }

    /// The bytes sent before `packet` (for a forgotten one, before the oldest known).
    fn bytes_before(&self, packet: u64) -> u64 {
        match packet.checked_sub(self.first + 1) {
            Some(index) => {
                let index = usize::try_from(index).unwrap_or(usize::MAX);
                self.ends
                    .get(index)
                    .or(self.ends.back())
                    .copied()
                    .unwrap_or(self.base)
            }
            None => self.base,
        }
    }

    /// Takes a receiver's report. Every receiver counts, also one first heard far behind (it
    /// started late, or is catching up): one that does not move is given up after `timeout`,
    /// and waited for again once it moves; one that left is forgotten at once.
    pub(super) fn report(&mut self, from: NodeId, position: u64, now: Instant) {
        self.heard = true;
        self.stale = true;
        if position == repair::LEFT {
            self.receivers.remove(&from);
            return;
        }
        let entry = self.receivers.entry(from).or_insert(Reported {
            position,
            moved: now,
            waited_for: true,
        });
        if position > entry.position {
            *entry = Reported {
                position,
                moved: now,
                waited_for: true,
            };
        }
    }

    /// Takes a NACK from a receiver whose first hole is `first_missing`: one not heard of yet
    /// (its reports were lost, and it reports only when it moves) counts from now, there.
    pub(super) fn nacked(&mut self, from: NodeId, first_missing: u64, now: Instant) {
        if !self.receivers.contains_key(&from) {
            self.report(from, first_missing, now);
        }
    }

    /// Whether packet `next` may be sent now. `Err` holds when to look again if no report
    /// comes first: when the slowest receiver will be given up.
    pub(super) fn may_send(&mut self, next: u64, now: Instant) -> Result<(), Instant> {
        if next < self.limit && !self.stale {
            return Ok(());
        }
        self.stale = false;
        let (timeout, patience) = (self.timeout, self.patience);
        self.receivers
            .retain(|_, receiver| now.saturating_duration_since(receiver.moved) < patience);
        for receiver in self.receivers.values_mut() {
            if receiver.waited_for && now.saturating_duration_since(receiver.moved) >= timeout {
                receiver.waited_for = false;
                self.dropped += 1;
            }
        }
        let slowest = self
            .receivers
            .values()
            .filter(|receiver| receiver.waited_for)
            .min_by_key(|receiver| receiver.position);
        let (position, expiry) = match slowest {
            Some(receiver) => (receiver.position.min(next), receiver.moved + timeout),
            None if !self.heard => {
                let since = *self.unheard_since.get_or_insert(now);
                if now >= since + timeout {
                    // Nobody reported in all that time: nobody to wait for.
                    self.heard = true;
                    self.limit = u64::MAX;
                    return Ok(());
                }
                (self.first, since + timeout)
            }
            None => {
                self.limit = u64::MAX;
                return Ok(());
            }
        };
        let allowed = self.bytes_before(position) + self.window_bytes;
        let within = self.ends.partition_point(|&end| end < allowed);
        self.limit = if within < self.ends.len() {
            self.first + within as u64 + 1
        } else {
            // The window reaches past what was sent: estimate the packets to come.
            let total = self.ends.back().copied().unwrap_or(self.base);
            let largest = match self.largest {
                0 => crate::wire::MAX_DATAGRAM_SIZE as u64,
                largest => largest,
            };
            // Room left always lets one more through: it is worked out again after it.
            next + ((allowed - total) / largest).max(1)
        };
        if next < self.limit {
            Ok(())
        } else {
            Err(expiry)
        }
    }

    /// Until when receivers behind packet `next` may still catch up, if each keeps moving
    /// within `patience` (also those the window no longer waits for).
    pub(super) fn catching_up(&self, next: u64, now: Instant) -> Option<Instant> {
        self.receivers
            .values()
            .filter(|receiver| {
                receiver.position < next
                    && now.saturating_duration_since(receiver.moved) < self.patience
            })
            .map(|receiver| receiver.moved + self.patience)
            .max()
    }
}
