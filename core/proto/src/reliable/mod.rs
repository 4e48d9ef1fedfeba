//! Reliable channels: no message lost in silence. State machines without I/O that take the
//! time as an argument; the channel's driver owns the sockets and the deadlines.
//!
//! The sender ([`RepairSender`]) numbers every datagram it sends as a packet and keeps the
//! latest ones, in blocks of [`RepairConfig::block_len`], up to
//! [`RepairConfig::window_bytes`]. Receivers ([`RepairReceiver`]) put each sender's packets
//! back in order, and multicast a NACK listing what they miss after a short random delay, so
//! that the first receiver to ask spares the others (RFC 5401's suppression). The sender
//! answers each block's NACKs with as many fresh Reed-Solomon parity symbols as the worst-off
//! receiver misses of it, less the repairs still on their way to it (a NACK says how far its
//! receiver heard): one symbol fills a different hole at each receiver. When a burst ends
//! the sender announces its last block with one parity symbol, which also shows receivers any
//! packets lost at the very end. A hole not repaired within [`RepairConfig::give_up`] is
//! skipped and counted: the packets after it are handed on, and the messages it held show up as
//! lost. Receivers also report how far they got (STATUS), and a sender keeps at most
//! [`RepairConfig::flow_window_bytes`] ahead of its slowest receiver, which it drops from the
//! count once that one has not advanced for [`RepairConfig::receiver_timeout`]: a slow receiver
//! slows the group for a bounded time, then falls behind on its own. The design, with diagrams, is in `docs/reliability.md`; the datagrams in
//! [`crate::wire::repair`].

use std::time::Duration;

#[cfg(test)]
mod ending_tests;
mod fec;
mod flow;
mod grid;
#[cfg(test)]
mod nack_tests;
mod receiver;
mod sender;
#[cfg(test)]
mod sim;
mod stream;
#[cfg(test)]
mod tests;

pub use receiver::{Ready, RepairReceiver};
pub use sender::RepairSender;

/// Bytes a reliable channel's datagrams leave free for the repair layer, so that numbered
/// packets and parity stay within the configured datagram size: a SEQUENCED header (24 bytes),
/// or a PARITY header, index and symbol framing (24 + 2 + 2, and 1 of padding).
pub const RELIABLE_OVERHEAD: usize = 32;

/// Sizes and timers of the repair protocol. The defaults suit a LAN or a relay a few
/// milliseconds away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairConfig {
    /// Packets per block: more spreads parity over more holes and decodes less often (a decode
    /// costs about the same for any block, see [`crate::wire::repair::parity_count`]); fewer decode sooner.
    pub block_len: u16,
    /// Packet (and computed parity) bytes the sender keeps for repair.
    pub window_bytes: usize,
    /// How long the sender collects NACKs before it repairs.
    pub nack_holdoff: Duration,
    /// How long a repair counts as on its way to a receiver that had heard the last packet
    /// before it (with nothing sent after it), and the shortest time between two repairs of
    /// one block.
    pub repair_guard: Duration,
    /// How long a sender waits after its last packet to announce the end of the burst.
    pub tail_delay: Duration,
    /// The shortest wait of a receiver before it NACKs a hole.
    pub nack_delay: Duration,
    /// How receivers' NACKs spread out beyond `nack_delay`: up to this long more the less of
    /// a block a receiver misses (so that the one that misses most asks first), and up to this
    /// long more at random; each times 1 + log2 of the receivers a receiver has heard NACKs
    /// from lately, itself included (up to 64), so that more receivers spread over more time.
    pub nack_spread: Duration,
    /// How long a receiver waits for a repair before it asks again; doubles each time.
    pub repair_wait: Duration,
    /// The longest wait between a receiver's NACKs, and the longest a receiver behind on its
    /// reading holds them; also how long a repair counts as on its way to a receiver that has
    /// not heard the packets sent around it.
    pub repair_wait_max: Duration,
    /// How long a hole may stay open before the receiver skips it and counts it lost.
    pub give_up: Duration,
    /// Bytes a receiver holds behind a hole, per sender, before it skips the hole.
    pub reorder_bytes: usize,
    /// Senders a receiver tracks at once; the longest silent is forgotten for a new one.
    pub max_senders: usize,
    /// How long a sender may be silent before it may be forgotten.
    pub sender_idle: Duration,
    /// Bytes a sender may be ahead of its slowest receiver; `send` waits beyond that. Less
    /// than a receiver's socket buffer (`sixcast::Config::recv_buffer`),
    /// which also pays the kernel's overhead per datagram.
    pub flow_window_bytes: usize,
    /// How often, at most, a receiver reports how far it got.
    pub status_interval: Duration,
    /// How long a receiver may report no progress before the sender stops waiting for it.
    pub receiver_timeout: Duration,
    /// Whether a NACK heard from another receiver holds back this receiver's own (turned off
    /// only to measure what it saves).
    pub suppression: bool,
}

impl Default for RepairConfig {
    fn default() -> Self {
        Self {
            block_len: 128,
            window_bytes: 16 << 20,
            nack_holdoff: Duration::from_millis(2),
            repair_guard: Duration::from_millis(10),
            tail_delay: Duration::from_millis(5),
            nack_delay: Duration::from_millis(1),
            nack_spread: Duration::from_millis(4),
            repair_wait: Duration::from_millis(20),
            repair_wait_max: Duration::from_millis(200),
            give_up: Duration::from_secs(3),
            reorder_bytes: 32 << 20,
            max_senders: 1024,
            sender_idle: Duration::from_secs(300),
            flow_window_bytes: 2 << 20,
            status_interval: Duration::from_millis(5),
            receiver_timeout: Duration::from_secs(1),
            suppression: true,
        }
    }
}

/// What a [`RepairSender`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SenderStats {
    /// NACKs addressed to this sender.
    pub nacks_received: u64,
    /// Parity symbols and re-sent packets sent, tail announcements included.
    pub repair_datagrams: u64,
    /// Their bytes.
    pub repair_bytes: u64,
    /// Packets asked for that had left the repair window.
    pub unrepairable: u64,
    /// Receivers this sender stopped waiting for: no progress within
    /// [`RepairConfig::receiver_timeout`].
    pub receivers_dropped: u64,
}

/// What a [`RepairReceiver`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiverStats {
    /// NACKs sent.
    pub nacks_sent: u64,
    /// Reports of how far this receiver got.
    pub statuses_sent: u64,
    /// Hole timers held back by another receiver's NACK (suppression), each once per NACK of
    /// this receiver's own.
    pub nacks_suppressed: u64,
    /// Parity symbols received for blocks still open here.
    pub repairs_received: u64,
    /// Packets rebuilt from parity.
    pub packets_recovered: u64,
    /// Packets given up.
    pub packets_lost: u64,
    /// Packets received twice (a repair re-sent what had arrived).
    pub duplicates: u64,
    /// Parity that did not decode (forged, or garbled on the way).
    pub bad_parity: u64,
    /// Packets dropped on arrival because [`RepairConfig::reorder_bytes`] already waited while
    /// the application was not taking messages (asked for again later).
    pub overrun: u64,
}
