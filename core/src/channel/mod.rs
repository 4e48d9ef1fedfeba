//! The library API: a [`Context`] owns one socket and hands out [`Channel`]s by name.
//!
//! One background thread per context receives every datagram, decodes it and queues the
//! messages on the channel its destination group belongs to; applications pull them with
//! [`Channel::recv`], [`Channel::recv_timeout`] or [`Channel::try_recv`], or wait on
//! [`Channel::readiness_fd`] in an event loop. A second thread sends the datagrams (partly
//! filled ones, batches) that have waited [`Config::linger`]. No thread exists per channel, so a
//! context can serve thousands of channels.
//!
//! This file holds the types and their shared state; the behaviour is split by concern:
//! `context` (opening, the registry, closing), `handle` (the [`Channel`] API), `send`,
//! `receive` (reading and dispatch), `reach` (probing Stratum 0, tunnels, failover) and
//! `stratum1` (the segment's gateway role).

use std::{
    collections::{HashMap, VecDeque},
    net::{Ipv6Addr, SocketAddrV6},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex, RwLock};

use self::{held::Held, queue::Inbound, route::RouteCell};
use crate::{
    config::Config,
    crypto::{Covers, DropCounters, Drops, Protection},
    events::EventQueue,
    gateway::{Gateways, Path},
    lead::Lead,
    locate::Stratum0Source,
    probe::ProbeReport,
    ratelimit::Pacer,
    reliable::{RepairReceiver, RepairSender},
    socket::{self, Interface, McastSocket, RecvBatch, Waker},
    tunnel::{RelayOffer, Tunnel},
    wire::{Inbox, NodeId, Packer},
};

mod context;
mod cover;
mod handle;
mod held;
mod link;
mod queue;
mod reach;
mod receive;
mod repair;
mod route;
mod send;
mod stratum1;
mod stream;

pub use stream::{Messages, Readable, Recv};

/// How often the receive thread looks for fragmented messages that will never complete.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);
/// How soon a node without a way to the core tries again.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// The longest the reach thread sleeps between rounds of the gateway election. Announcements,
/// their hold running out and nudges (joins, leaves, first sends) wake it; this bounds how late
/// it sees a change that nothing announces (a channel's sending hold running out).
const ELECTION_BACKSTOP: Duration = Duration::from_secs(1);
/// The shortest sleep of the reach thread, so that a deadline just past never makes it spin.
const MIN_WAIT: Duration = Duration::from_millis(5);

/// A message received on a channel, with where it came from and how it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The application bytes.
    pub payload: Vec<u8>,
    /// Address and UDP port the datagram came from.
    pub source: SocketAddrV6,
    /// The group the datagram was sent to: the channel's group, or its relayed form.
    pub group: Ipv6Addr,
    /// Index of the interface the datagram arrived on.
    pub interface: u32,
    /// Name of that interface (resolved when the datagram arrived, in the receiving host's
    /// network namespace).
    pub interface_name: Arc<str>,
    /// The sending context's node id (zero for the headerless librecast profile).
    pub sender: NodeId,
    /// The sender's sequence number of this message on this channel (for the librecast
    /// profile, which carries none, a local arrival counter).
    pub seq: u64,
    /// Whether a relay or gateway re-sent this message (it arrived on the relayed group).
    pub relayed: bool,
    /// How the message arrived: natively, through a relay, or through this segment's gateway.
    pub path: Path,
}

/// Counters of a channel, or of a whole context (the sum of its channels plus what could not be
/// attributed to any channel).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Messages accepted by `send`.
    pub messages_sent: u64,
    /// Payload bytes accepted by `send`.
    pub bytes_sent: u64,
    /// Datagrams handed to the kernel (once per interface).
    pub datagrams_sent: u64,
    /// Messages delivered to the application's queue.
    pub messages_received: u64,
    /// Payload bytes delivered to the application's queue.
    pub bytes_received: u64,
    /// Datagrams received from the network, including dropped ones.
    pub datagrams_received: u64,
    /// Messages dropped because they had been delivered already.
    pub duplicates: u64,
    /// Datagrams dropped because they did not decode.
    pub malformed: u64,
    /// Datagrams of this context's own sending, heard back through multicast loopback (for a
    /// segment's gateway, also every copy on the relayed group of a channel it serves: its
    /// tunnel brings those).
    pub own_dropped: u64,
    /// Messages dropped because the application did not take them and the queue was full.
    pub queue_overflow: u64,
    /// Messages never heard: sequence numbers a sender skipped, less those that arrived late
    /// (so it can fall). Counted from the first message heard from each sender; a sender's last
    /// messages before it falls silent cannot be told lost.
    pub lost: u64,
    /// Fragmented messages given up (timed out, inconsistent, or over the memory bound).
    pub reassembly_dropped: u64,
    /// Memory charged now for partial messages, at most [`Config::reassembly_memory`] per
    /// channel (a gauge, not a counter).
    pub reassembly_bytes: u64,
    /// Datagrams for a group no channel of this context has (context totals only).
    pub unknown_group: u64,
    /// NACKs this node sent for packets of reliable senders it missed.
    pub nacks_sent: u64,
    /// NACKs received for this node's own packets (reliable contexts).
    pub nacks_received: u64,
    /// Repair datagrams sent: parity, re-sent packets, and the announcements of each burst's
    /// end.
    pub repairs_sent: u64,
    /// Their bytes.
    pub repair_bytes_sent: u64,
    /// Parity datagrams received for packets this node still needed or had.
    pub repairs_received: u64,
    /// Packets of reliable senders rebuilt from parity.
    pub packets_recovered: u64,
    /// Packets of reliable senders given up (not repaired in time, or this receiver fell too
    /// far behind); the messages they held count in `lost`.
    pub packets_lost: u64,
    /// What the channel's keys refused, by reason: datagrams, and messages for
    /// [`DropReason::Replay`](crate::crypto::DropReason::Replay) (older than what the receiver remembers of their sender).
    pub drops: Drops,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, other: Self) {
        self.messages_sent += other.messages_sent;
        self.bytes_sent += other.bytes_sent;
        self.datagrams_sent += other.datagrams_sent;
        self.messages_received += other.messages_received;
        self.bytes_received += other.bytes_received;
        self.datagrams_received += other.datagrams_received;
        self.duplicates += other.duplicates;
        self.malformed += other.malformed;
        self.own_dropped += other.own_dropped;
        self.queue_overflow += other.queue_overflow;
        self.lost += other.lost;
        self.reassembly_dropped += other.reassembly_dropped;
        self.reassembly_bytes += other.reassembly_bytes;
        self.unknown_group += other.unknown_group;
        self.nacks_sent += other.nacks_sent;
        self.nacks_received += other.nacks_received;
        self.repairs_sent += other.repairs_sent;
        self.repair_bytes_sent += other.repair_bytes_sent;
        self.repairs_received += other.repairs_received;
        self.packets_recovered += other.packets_recovered;
        self.packets_lost += other.packets_lost;
        self.drops += other.drops;
    }
}

/// Lock-free counters behind [`Stats`].
#[derive(Default)]
struct Counters {
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    datagrams_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    datagrams_received: AtomicU64,
    malformed: AtomicU64,
    own_dropped: AtomicU64,
    queue_overflow: AtomicU64,
    unknown_group: AtomicU64,
    drops: DropCounters,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    fn snapshot(&self) -> Stats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            messages_sent: get(&self.messages_sent),
            bytes_sent: get(&self.bytes_sent),
            datagrams_sent: get(&self.datagrams_sent),
            messages_received: get(&self.messages_received),
            bytes_received: get(&self.bytes_received),
            datagrams_received: get(&self.datagrams_received),
            malformed: get(&self.malformed),
            own_dropped: get(&self.own_dropped),
            queue_overflow: get(&self.queue_overflow),
            unknown_group: get(&self.unknown_group),
            drops: self.drops.snapshot(),
            // The inbox and the repair state count these; ChannelState::stats fills them in.
            nacks_sent: 0,
            nacks_received: 0,
            repairs_sent: 0,
            repair_bytes_sent: 0,
            repairs_received: 0,
            packets_recovered: 0,
            packets_lost: 0,
            duplicates: 0,
            lost: 0,
            reassembly_dropped: 0,
            reassembly_bytes: 0,
        }
    }
}

/// A context: one socket, one node id, any number of channels. Cheap to clone; all clones
/// share the same context. Dropping the last handle (contexts and channels alike) sends what is
/// still packed, leaves every group and stops the background threads.
#[derive(Clone)]
pub struct Context {
    shared: Arc<Shared>,
}

/// A named channel of a [`Context`]. Cheap to clone; clones share the receive queue.
#[derive(Clone)]
pub struct Channel {
    shared: Arc<Shared>,
    state: Arc<ChannelState>,
}

/// Owned by the user-facing handles; its drop stops the threads.
struct Shared {
    core: Arc<Core>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Everything the background threads need.
struct Core {
    config: Config,
    node: NodeId,
    socket: McastSocket,
    waker: Waker,
    /// Who reads `socket`: the receive thread, or an application thread waiting in a receive.
    lead: Lead<RecvBatch, Arc<ChannelState>>,
    interfaces: Vec<Interface>,
    by_group: RwLock<HashMap<Ipv6Addr, Arc<ChannelState>>>,
    by_name: Mutex<HashMap<Vec<u8>, Arc<ChannelState>>>,
    counters: Counters,
    closed: AtomicBool,
    /// Whether the last receive filled its batch: datagrams wait unread, and reliable
    /// channels hold their NACKs until they are read (`RepairReceiver::set_behind`).
    reading_behind: AtomicBool,
    /// Whether a channel held NACKs while reading was behind: catching up re-runs its timers.
    nacks_held: AtomicBool,
    /// Deadlines of the flush thread, in order: lingering datagrams and repair timers.
    flush_queue: Mutex<VecDeque<(Instant, Arc<ChannelState>, Due)>>,
    flush_wanted: Condvar,
    /// Keeps `send` within the configured rates (`Config::send_rate_messages` and `_bytes`).
    pacer: Option<Mutex<Pacer>>,
    /// What happened, for the application (`Context::try_event`).
    events: EventQueue,
    /// The way to the core through a relay, when a Stratum 0 is configured.
    relay_link: Option<RelayLink>,
}

/// A node's link to the multicast core through Stratum 0 and relays.
struct RelayLink {
    /// Unicast socket for Stratum 0 and the tunnel.
    socket: McastSocket,
    /// Where Stratum 0 is found.
    source: Stratum0Source,
    state: Mutex<LinkState>,
    segment: Segment,
    /// Set when a channel joined or sent to has neither a gateway nor the tunnel: open one now.
    tunnel_wanted: AtomicBool,
    /// Wakes the reach thread: a channel was joined, left or first sent to (the election looks
    /// again), or the context closes.
    nudge: Waker,
    /// Relays refused for proving no pinned identity.
    rejected_relays: AtomicU64,
    /// When the link was made: channels note their last send as a time after it (`route`).
    epoch: Instant,
}

/// This node's side of the Stratum 1 gateways of its segment (see `gateway`).
struct Segment {
    /// Sends and hears announcements on the link-scope gateway group.
    announcer: McastSocket,
    /// Re-sends what the tunnel brings onto the segment, with hop limit 1 so it stays there.
    resender: McastSocket,
    gateways: Mutex<Gateways>,
}

#[derive(Default)]
struct LinkState {
    /// Stratum 0 candidates from the source, the one in use first; found again when used up.
    candidates: Vec<SocketAddrV6>,
    /// The Stratum 0 of the latest attempt.
    stratum0: Option<SocketAddrV6>,
    report: Option<ProbeReport>,
    tunnel: Option<Tunnel>,
    /// Every offer of the last relay request, best first.
    offers: Vec<RelayOffer>,
    /// Offered relays not yet tried since the last request.
    spares: Vec<RelayOffer>,
    last_error: Option<String>,
    /// Groups of the channels this node serves as its segment's gateway.
    serving: Vec<Ipv6Addr>,
    /// Whether the core is known to be reached natively. Until then, and whenever that stops,
    /// what is sent to a channel no gateway of the segment serves waits in `held` for a tunnel
    /// too.
    reached_natively: bool,
    held: Held,
}

/// Where a context stands with the multicast core, as far as it has found out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reachability {
    /// The Stratum 0 of the latest attempt to reach the core, once one was found (configured,
    /// from DNS, or the embedded RP).
    pub stratum0: Option<SocketAddrV6>,
    /// The latest probe of native reachability, once one has completed.
    pub probe: Option<ProbeReport>,
    /// The relay whose tunnel carries this context's channels, if any.
    pub relay: Option<SocketAddrV6>,
    /// The relays that offered to serve this context at the last request, best first.
    pub offers: Vec<RelayOffer>,
    /// Why the last attempt to reach the core failed, if it did.
    pub last_error: Option<String>,
    /// The Stratum 1 gateway of this segment that carries this context's channels (where its
    /// announcements come from), if one does.
    pub gateway: Option<SocketAddrV6>,
    /// Groups of the channels this context serves as its segment's gateway.
    pub serving: Vec<Ipv6Addr>,
    /// Relays refused because they proved no pinned identity ([`Config::relay_keys`]): plain
    /// or forged challenges, unpinned keys, and SSM repeaters.
    pub rejected_relays: u64,
    /// Datagrams sent before the path to the core was known (or while no tunnel carried them)
    /// whose copy for the tunnel was dropped to stay within 1 MiB: they went out natively only,
    /// which may not have reached the core.
    pub held_dropped: u64,
}

struct ChannelState {
    name: Vec<u8>,
    group: Ipv6Addr,
    relayed_group: Option<Ipv6Addr>,
    /// Where an SSM repeater re-sends the group and its relayed twin (profiles with a twin).
    repeated_groups: Vec<Ipv6Addr>,
    outbox: Mutex<Outbox>,
    /// Keys; taken after `outbox` where both are needed.
    protection: RwLock<Protection>,
    /// The number of this node's next manifest on the channel.
    next_manifest: AtomicU64,
    /// Covered datagrams waiting for a verified manifest of their sender.
    covers: Mutex<Covers<Covered>>,
    /// When the flush thread next gives up covered datagrams, if an entry is queued.
    cover_timer: Mutex<Option<Instant>>,
    inbox: Mutex<Inbox>,
    queue: Mutex<Inbound>,
    arrived: Condvar,
    /// Polls readable once the queue turns non-empty, for event loops (made on first use).
    readiness: OnceLock<Waker>,
    /// Messages were queued during a batch being dispatched, whose receivers are woken once at
    /// its end (see `receive`); and whether the queue was empty before them.
    wake_owed: AtomicBool,
    readiness_owed: AtomicBool,
    membership: Mutex<Membership>,
    /// The channel's path to the core, published by the reach thread (`route`).
    route: RouteCell,
    counters: Counters,
    /// Arrival counter standing in for sequence numbers where the profile carries none.
    raw_seq: AtomicU64,
    /// Numbers and keeps this node's datagrams for repair, on a reliable context.
    repair_sender: Option<Mutex<RepairSender>>,
    /// Puts reliable senders' packets in order and asks for what is missing. Every channel has
    /// one: whether a channel is reliable is the sender's choice.
    repair_receiver: Mutex<RepairReceiver<Arrival>>,
    /// When the flush thread next looks at the repair state, if an entry is queued.
    repair_timer: Mutex<Option<Instant>>,
    /// Whether this channel's NACKs wait for reading to catch up.
    nacks_held: AtomicBool,
    /// Whether the group is joined only for NACKs (`Membership::for_repair`): what else
    /// arrives is not for the application.
    repair_only: AtomicBool,
    /// Wakes senders waiting for the flow window (with `repair_sender`'s lock).
    window_opened: Condvar,
    /// Whether `repair_receiver` holds packets back until the application takes messages.
    held: AtomicBool,
}

/// What the flush thread does at a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Sends the channel's open datagram if it lingered long enough.
    Flush,
    /// Sends due NACKs and repairs and gives up expired holes.
    Repair,
    /// Gives up covered datagrams no manifest vouched for in time.
    Cover,
}

/// How a datagram arrived, kept with reliable packets that wait for repair.
#[derive(Debug, Clone)]
struct Arrival {
    source: SocketAddrV6,
    /// The group it was sent to.
    destination: Ipv6Addr,
    interface: u32,
    relayed: bool,
    path: Path,
    /// Whether it came through this node's own tunnel.
    via_relay: bool,
}

/// A covered datagram, opened, waiting for its manifest.
struct Covered {
    arrival: Arrival,
    plain: Vec<u8>,
    /// The datagram as it came, for this node to send up its segment's tunnel once vouched for.
    upload: Option<Vec<u8>>,
}

struct Outbox {
    packer: Packer,
    /// When the oldest message still waiting (in the open datagram or in `ready`) was queued.
    opened_at: Option<Instant>,
    /// Whether the flush thread holds an entry for this channel. One at a time: a datagram
    /// opened while it is queued is found by that entry, which re-queues itself for it.
    flush_queued: bool,
    /// Complete datagrams waiting to leave together.
    ready: Vec<Vec<u8>>,
    /// When the last batch left.
    sent_at: Option<Instant>,
    /// How many datagrams make a full batch: [`SEND_BATCH`], or a signing channel's chain of
    /// manifests if longer, so that one signature covers as many datagrams as it can.
    batch_len: usize,
}

/// Most datagrams handed to the kernel in one batch: one `sendmmsg`, whose runs of equal
/// lengths go as UDP GSO sends.
const SEND_BATCH: usize = socket::BATCH;
/// Most bytes a channel holds back for a batch of [`SEND_BATCH`] datagrams (in proportion for
/// a longer batch).
const SEND_BATCH_BYTES: usize = 256 << 10;
/// Most bytes any batch holds back, however long: a longer batch would leave as a burst that
/// outruns a reliable sender's flow window and receivers' socket buffers.
const MAX_BATCH_BYTES: usize = 1 << 20;

impl Outbox {
    /// Whether anything waits to be sent.
    fn waiting(&self) -> bool {
        self.packer.pending() > 0 || !self.ready.is_empty()
    }

    /// Whether the complete datagrams should leave now rather than at the linger's end: the
    /// batch is full, or nothing left for a linger, so that one lone datagram gains nothing by
    /// waiting (sparse large messages keep their latency, streams of them batch).
    fn batch_due(&self, now: Instant, linger: Duration) -> bool {
        self.ready.len() >= self.batch_len
            || self.ready.iter().map(Vec::len).sum::<usize>()
                >= (SEND_BATCH_BYTES * self.batch_len / SEND_BATCH).min(MAX_BATCH_BYTES)
            || self
                .sent_at
                .is_none_or(|sent| now.saturating_duration_since(sent) >= linger)
    }
}

#[derive(Default)]
struct Membership {
    any_source: bool,
    /// Joined by a reliable context for the NACKs alone, not by the application.
    for_repair: bool,
    sources: Vec<Ipv6Addr>,
}
