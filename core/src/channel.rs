//! The library API: a [`Context`] owns one socket and hands out [`Channel`]s by name.
//!
//! One background thread per context receives every datagram, decodes it and queues the
//! messages on the channel its destination group belongs to; applications pull them with
//! [`Channel::recv`], [`Channel::recv_timeout`] or [`Channel::try_recv`]. A second thread sends
//! the datagrams (partly filled ones, batches) that have waited [`Config::linger`]. No thread exists per channel,
//! so a context can serve thousands of channels.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    net::{Ipv6Addr, SocketAddrV6},
    os::fd::RawFd,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};
use tracing::{debug, info, trace, warn};

use crate::{
    addr,
    config::Config,
    crypto::{
        ChannelKey, DropCounters, DropReason, Drops, KeyId, Protection, PublicKey, Rejected,
        SigningKey, Token,
    },
    discovery::{self, ProbeReport, ProbeSettings, ThreadBody},
    error::{Error, ErrorKind, Result},
    gateway::{self, Gateways, Path},
    lead::{Lead, Turn},
    locate::Stratum0Source,
    queue::Inbound,
    socket::{self, Interface, McastSocket, RecvBatch, RecvMeta, SocketOptions, Wait, Waker},
    tunnel::{self, Pinning, RelayOffer, Tunnel},
    wire::{
        self, Inbox, InboxLimits, NodeId, Packer,
        control::{self, Control},
    },
};

/// How often the receive thread looks for fragmented messages that will never complete.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);
/// How soon a node without a way to the core tries again.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// How often a node takes part in its segment's gateway election, at least.
const ELECTION_TICK: Duration = Duration::from_millis(100);

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
    /// What the channel's keys refused, by reason: datagrams, and messages for
    /// [`DropReason::Replay`] (older than what the receiver remembers of their sender).
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
            // The inbox counts these; ChannelState::stats fills them in.
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
    flush_queue: Mutex<VecDeque<(Instant, Arc<ChannelState>)>>,
    flush_wanted: Condvar,
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
    /// Set when a joined channel has neither a gateway nor the tunnel: open one now.
    tunnel_wanted: AtomicBool,
    /// Relays refused for proving no pinned identity.
    rejected_relays: AtomicU64,
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
    inbox: Mutex<Inbox>,
    queue: Mutex<Inbound>,
    arrived: Condvar,
    /// Polls readable once the queue turns non-empty, for event loops (made on first use).
    readiness: OnceLock<Waker>,
    membership: Mutex<Membership>,
    counters: Counters,
    /// Arrival counter standing in for sequence numbers where the profile carries none.
    raw_seq: AtomicU64,
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
}

/// Most datagrams handed to the kernel in one batch: one `sendmmsg`, whose runs of equal
/// lengths go as UDP GSO sends.
const SEND_BATCH: usize = socket::BATCH;
/// Most bytes a channel holds back for a batch.
const SEND_BATCH_BYTES: usize = 256 << 10;

impl Outbox {
    /// Whether anything waits to be sent.
    fn waiting(&self) -> bool {
        self.packer.pending() > 0 || !self.ready.is_empty()
    }

    /// Whether the complete datagrams should leave now rather than at the linger's end: the
    /// batch is full, or nothing left for a linger, so that one lone datagram gains nothing by
    /// waiting (sparse large messages keep their latency, streams of them batch).
    fn batch_due(&self, now: Instant, linger: Duration) -> bool {
        self.ready.len() >= SEND_BATCH
            || self.ready.iter().map(Vec::len).sum::<usize>() >= SEND_BATCH_BYTES
            || self
                .sent_at
                .is_none_or(|sent| now.saturating_duration_since(sent) >= linger)
    }
}

#[derive(Default)]
struct Membership {
    any_source: bool,
    sources: Vec<Ipv6Addr>,
}

impl Context {
    /// Opens a context: validates `config`, binds the UDP port and starts the receive and flush
    /// threads. Fails with [`ErrorKind::UnknownInterface`] when no usable interface exists.
    pub fn new(config: Config) -> Result<Self> {
        config.validate()?;
        // First, so that a failing random number generator opens no socket.
        let node = NodeId::random()?;
        let interfaces = socket::select_interfaces(&config.interfaces)?;
        let mut socket = McastSocket::bind(&SocketOptions {
            address: Ipv6Addr::UNSPECIFIED,
            port: config.effective_port(),
            hop_limit: config.hop_limit,
            loopback: config.loopback,
            recv_buffer: config.recv_buffer,
        })?;
        socket.send_multicast_on(&interfaces);
        let relay_link = match Stratum0Source::of(&config) {
            Some(source) => Some(RelayLink {
                socket: McastSocket::bind(&SocketOptions {
                    address: Ipv6Addr::UNSPECIFIED,
                    port: 0,
                    hop_limit: config.hop_limit,
                    loopback: false,
                    recv_buffer: config.recv_buffer,
                })?,
                segment: Segment::open(&config, &interfaces, node)?,
                tunnel_wanted: AtomicBool::new(false),
                rejected_relays: AtomicU64::new(0),
                source,
                state: Mutex::default(),
            }),
            None => None,
        };
        let core = Arc::new(Core {
            node,
            socket,
            waker: Waker::new()?,
            lead: Lead::new(RecvBatch::new(), ChannelState::wake_to_lead)?,
            relay_link,
            interfaces,
            by_group: RwLock::default(),
            by_name: Mutex::default(),
            counters: Counters::default(),
            closed: AtomicBool::new(false),
            flush_queue: Mutex::default(),
            flush_wanted: Condvar::new(),
            config,
        });
        let mut bodies: Vec<ThreadBody<Core>> = vec![
            ("sixcast-recv", Core::receive_loop),
            ("sixcast-flush", Core::flush_loop),
        ];
        if core.relay_link.is_some() {
            bodies.push(("sixcast-reach", Core::reach_loop));
            bodies.push(("sixcast-gateway", Core::gateway_loop));
        }
        let threads = discovery::start_threads(&core, &bodies, Core::shutdown)?;
        debug!(node = %core.node, port = core.socket.port(), "context opened");
        Ok(Self {
            shared: Arc::new(Shared {
                core,
                threads: Mutex::new(threads),
            }),
        })
    }

    /// The configuration this context was opened with.
    pub fn config(&self) -> &Config {
        &self.shared.core.config
    }

    /// This context's node id, carried in every datagram it sends.
    pub fn node_id(&self) -> NodeId {
        self.shared.core.node
    }

    /// The UDP port the context is bound to.
    pub fn port(&self) -> u16 {
        self.shared.core.socket.port()
    }

    /// The names of the interfaces the context joins and sends on.
    pub fn interfaces(&self) -> Vec<String> {
        self.shared
            .core
            .interfaces
            .iter()
            .map(|interface| interface.name.to_string())
            .collect()
    }

    /// The channel called `name`, created on first use. The same name always gives a handle to
    /// the same channel.
    pub fn channel(&self, name: impl AsRef<[u8]>) -> Result<Channel> {
        let core = &self.shared.core;
        core.check_open()?;
        let name = name.as_ref();
        let mut by_name = core.by_name.lock();
        if let Some(state) = by_name.get(name) {
            return Ok(Channel {
                shared: Arc::clone(&self.shared),
                state: Arc::clone(state),
            });
        }
        let profile = &core.config.profile;
        let group = addr::group_addr(name, profile, core.config.scope)?;
        let relayed_group = addr::relayed_addr(group, profile).ok();
        let repeated_groups: Vec<Ipv6Addr> = relayed_group
            .iter()
            .chain([&group])
            .filter_map(|group| addr::repeated_addr(*group).ok())
            .collect();
        let mut by_group = core.by_group.write();
        if let Some(other) = by_group.get(&group) {
            return Err(Error::new(
                ErrorKind::InvalidName,
                format!(
                    "channel {:?} maps to group {group}, which channel {:?} already uses in the \
                     {} profile; choose another name",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(&other.name),
                    profile.name()
                ),
            ));
        }
        let state = Arc::new(ChannelState {
            name: name.to_vec(),
            group,
            relayed_group,
            repeated_groups: if relayed_group.is_some() {
                repeated_groups.clone()
            } else {
                Vec::new()
            },
            outbox: Mutex::new(Outbox {
                packer: Packer::new(
                    core.node,
                    core.config.max_datagram_size,
                    core.config.max_message_size,
                )?,
                opened_at: None,
                flush_queued: false,
                ready: Vec::new(),
                sent_at: None,
            }),
            protection: RwLock::new(Protection::new(group)),
            readiness: OnceLock::new(),
            inbox: Mutex::new(Inbox::new(InboxLimits {
                max_message: core.config.max_message_size,
                reassembly_timeout: core.config.reassembly_timeout,
                reassembly_memory: core.config.reassembly_memory,
                ..InboxLimits::default()
            })),
            queue: Mutex::default(),
            arrived: Condvar::new(),
            membership: Mutex::default(),
            counters: Counters::default(),
            raw_seq: AtomicU64::new(0),
        });
        by_group.insert(group, Arc::clone(&state));
        if let Some(relayed) = relayed_group {
            by_group.insert(relayed, Arc::clone(&state));
            for repeated in repeated_groups {
                by_group.insert(repeated, Arc::clone(&state));
            }
        }
        by_name.insert(name.to_vec(), Arc::clone(&state));
        Ok(Channel {
            shared: Arc::clone(&self.shared),
            state,
        })
    }

    /// What the context knows of its path to the multicast core: `None` when the configuration
    /// names no Stratum 0 (no `stratum0`, no `domain`, not the embedded-RP profile).
    pub fn reachability(&self) -> Option<Reachability> {
        let core = &self.shared.core;
        let link = core.relay_link.as_ref()?;
        let channels = core.joined_channels();
        let state = link.state.lock();
        let gateway = if state.report.as_ref().is_some_and(|report| !report.native()) {
            let gateways = link.segment.gateways.lock();
            let now = Instant::now();
            channels
                .iter()
                .filter(|channel| {
                    !state
                        .tunnel
                        .as_ref()
                        .is_some_and(|tunnel| tunnel.carries(channel.group))
                })
                .find_map(|channel| gateways.serving(channel.group, now))
                .map(|heard| heard.address)
        } else {
            None
        };
        Some(Reachability {
            stratum0: state.stratum0,
            probe: state.report.clone(),
            relay: state.tunnel.as_ref().map(|tunnel| tunnel.relay),
            offers: state.offers.clone(),
            last_error: state.last_error.clone(),
            gateway,
            serving: state.serving.clone(),
            rejected_relays: link.rejected_relays.load(Ordering::Relaxed),
        })
    }

    /// Counters summed over every channel, plus datagrams no channel claimed.
    pub fn stats(&self) -> Stats {
        let core = &self.shared.core;
        let mut total = core.counters.snapshot();
        for state in core.by_name.lock().values() {
            total += state.stats();
        }
        total
    }

    /// Sends what is still packed, leaves every group and stops the background threads. Blocked
    /// receives return [`ErrorKind::Closed`]; later calls fail with it. Closing twice is harmless.
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.shared.core.closed.load(Ordering::Acquire)
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("node", &self.node_id())
            .field("port", &self.port())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Channel {
    /// The channel's name.
    pub fn name(&self) -> &[u8] {
        &self.state.name
    }

    /// The group address original traffic of this channel is sent to.
    pub fn group(&self) -> Ipv6Addr {
        self.state.group
    }

    /// The group relays and gateways re-send this channel's traffic to, if the profile has one.
    pub fn relayed_group(&self) -> Option<Ipv6Addr> {
        self.state.relayed_group
    }

    /// Starts receiving the channel from any source on every configured interface.
    pub fn join(&self) -> Result<()> {
        let core = &self.shared.core;
        core.check_open()?;
        let mut membership = self.state.membership.lock();
        if membership.any_source {
            return Ok(());
        }
        if !membership.sources.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "the channel is joined source-specifically; leave() before joining any source",
            ));
        }
        // The relayed twin carries copies from relays and gateways; duplicates are dropped.
        let groups = self.state.groups();
        for (done, group) in groups.iter().enumerate() {
            let joined = core.for_each_interface(
                |interface| core.socket.join(*group, interface),
                |interface| core.socket.leave(*group, interface),
            );
            if let Err(err) = joined {
                for earlier in &groups[..done] {
                    core.interfaces
                        .iter()
                        .for_each(|interface| drop(core.socket.leave(*earlier, interface)));
                }
                return Err(err);
            }
        }
        core.tunnel_join(&groups);
        membership.any_source = true;
        debug!(group = %self.state.group, "joined");
        Ok(())
    }

    /// Starts receiving the channel from `source` only (source-specific multicast, RFC 4607).
    /// Several sources may be joined one by one.
    pub fn join_source(&self, source: Ipv6Addr) -> Result<()> {
        let core = &self.shared.core;
        core.check_open()?;
        if source.is_multicast() || source.is_unspecified() {
            return Err(Error::new(
                ErrorKind::InvalidAddress,
                format!("{source} cannot be a multicast source; give the sender's unicast address"),
            ));
        }
        let mut membership = self.state.membership.lock();
        if membership.any_source {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "the channel is joined for any source; leave() before joining a single source",
            ));
        }
        if membership.sources.contains(&source) {
            return Ok(());
        }
        let group = self.state.group;
        core.for_each_interface(
            |interface| core.socket.join_source(group, source, interface),
            |interface| core.socket.leave_source(group, source, interface),
        )?;
        membership.sources.push(source);
        debug!(%group, %source, "joined source-specifically");
        Ok(())
    }

    /// Stops receiving the channel (every membership: any-source and source-specific).
    pub fn leave(&self) -> Result<()> {
        let core = &self.shared.core;
        core.check_open()?;
        let mut membership = self.state.membership.lock();
        let group = self.state.group;
        let mut first_error = None;
        if membership.any_source {
            core.tunnel_leave(&self.state.groups());
        }
        for interface in &core.interfaces {
            if membership.any_source {
                for joined in self.state.groups() {
                    if let Err(err) = core.socket.leave(joined, interface) {
                        first_error.get_or_insert(err);
                    }
                }
            }
            for source in &membership.sources {
                if let Err(err) = core.socket.leave_source(group, *source, interface) {
                    first_error.get_or_insert(err);
                }
            }
        }
        *membership = Membership::default();
        first_error.map_or(Ok(()), Err)
    }

    /// Queues `payload` for the channel. Small messages are packed together (unless
    /// [`Config::packing`] is off) and large ones fragmented. Datagrams leave in batches, one
    /// system call each, within [`Config::linger`] or at [`flush`](Self::flush); after a linger
    /// without sending, the next complete datagram leaves at once.
    pub fn send(&self, payload: &[u8]) -> Result<()> {
        let core = &self.shared.core;
        core.check_open()?;
        if !core.config.profile.has_header() {
            return self.send_raw(payload);
        }
        let linger = core.config.linger;
        let mut outbox = self.state.outbox.lock();
        let outbox = &mut *outbox;
        outbox.packer.push(payload, &mut outbox.ready)?;
        bump(&self.state.counters.messages_sent, 1);
        bump(&self.state.counters.bytes_sent, payload.len() as u64);
        if linger.is_zero() || !core.config.packing {
            outbox.packer.flush(&mut outbox.ready);
        }
        if outbox.ready.is_empty() && outbox.opened_at.is_some() {
            // The common case while packing: the message joined the open datagram.
            return Ok(());
        }
        let now = Instant::now();
        if !outbox.ready.is_empty() && (linger.is_zero() || outbox.batch_due(now, linger)) {
            core.send_ready(&self.state, outbox, now)?;
        }
        if outbox.waiting() && outbox.opened_at.is_none() {
            outbox.opened_at = Some(now);
            if !outbox.flush_queued {
                outbox.flush_queued = true;
                core.schedule_flush(now + linger, &self.state);
            }
        }
        Ok(())
    }

    /// One datagram per message, no header: the librecast profile's format.
    fn send_raw(&self, payload: &[u8]) -> Result<()> {
        let core = &self.shared.core;
        let limit = core.config.max_message_size.min(wire::MAX_DATAGRAM_SIZE);
        if payload.len() > limit {
            return Err(Error::new(
                ErrorKind::MessageTooLarge,
                format!(
                    "{} bytes do not fit one datagram of the {} profile (at most {limit} bytes)",
                    payload.len(),
                    core.config.profile.name()
                ),
            ));
        }
        let mut ready = vec![payload.to_vec()];
        core.transmit(&self.state, &mut ready)?;
        bump(&self.state.counters.messages_sent, 1);
        bump(&self.state.counters.bytes_sent, payload.len() as u64);
        Ok(())
    }

    /// Sends the partly filled datagram now instead of waiting for the linger timer.
    pub fn flush(&self) -> Result<()> {
        let core = &self.shared.core;
        core.check_open()?;
        core.flush_channel(&self.state)
    }

    /// Waits for the next message.
    pub fn recv(&self) -> Result<Message> {
        self.wait(None)
    }

    /// Waits at most `timeout` for the next message; fails with [`ErrorKind::Timeout`].
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message> {
        // A queued message needs no deadline: reading the clock cost a quarter of a busy
        // receiving thread's time.
        if let Some(message) = self.state.queue.lock().pop_front() {
            return Ok(message);
        }
        // A deadline beyond what Instant can represent is as good as no deadline.
        self.wait(Instant::now().checked_add(timeout))
    }

    /// The next message if one is waiting. Finding none re-arms the
    /// [readiness descriptor](Self::readiness_fd).
    pub fn try_recv(&self) -> Result<Option<Message>> {
        let mut queue = self.state.queue.lock();
        if let Some(message) = queue.pop_front() {
            return Ok(Some(message));
        }
        if self.shared.core.closed.load(Ordering::Acquire) {
            return Err(Error::closed());
        }
        // Under the queue lock: a message enqueued after this wakes the descriptor again.
        if let Some(readiness) = self.state.readiness.get() {
            readiness.reset();
        }
        Ok(None)
    }

    /// A file descriptor that polls readable when a message may be waiting, so that an event
    /// loop (epoll, kqueue, asyncio's `add_reader`, Go's poller) waits for the channel beside
    /// its own sockets, with no thread blocked in a receive.
    ///
    /// It becomes readable when the queue turns non-empty and when the context closes; it stays
    /// readable until [`try_recv`](Self::try_recv) finds the queue empty. So: wait for it, then
    /// take messages with `try_recv` until it returns `None` (or an error), then wait again.
    /// Never read from it or close it: the channel owns it, and it lives as long as the
    /// channel's context. Made on the first call; every handle of the channel shares it.
    pub fn readiness_fd(&self) -> Result<RawFd> {
        let readiness = match self.state.readiness.get() {
            Some(readiness) => readiness,
            None => {
                let made = Waker::new()?;
                // Readable at once if messages already wait or the context is closed.
                made.wake();
                // A racing first call may have won; its descriptor is as good.
                let _ = self.state.readiness.set(made);
                self.state
                    .readiness
                    .get()
                    .unwrap_or_else(|| unreachable!("just set"))
            }
        };
        Ok(readiness.as_raw_fd())
    }

    /// Waits until a message is waiting or `timeout` passes (`None`: no limit), without taking
    /// it: `Ok(true)` when [`try_recv`](Self::try_recv) will return a message. Bindings wait
    /// with this in short slices so that a cancelled wait never takes a message it cannot hand on.
    pub fn wait_readable(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let mut queue = self.state.queue.lock();
        self.wait_for_message(&mut queue, deadline)
    }

    fn wait(&self, deadline: Option<Instant>) -> Result<Message> {
        let mut queue = self.state.queue.lock();
        self.wait_for_message(&mut queue, deadline)?;
        queue.pop_front().ok_or_else(|| {
            Error::new(
                ErrorKind::Timeout,
                format!("no message arrived on {} in time", self.state.group),
            )
        })
    }

    /// Waits, with the queue locked, until it holds a message (`true`) or `deadline` passes
    /// (`false`). Messages still queued when the context closes are handed out first. While
    /// nobody else reads the socket, the waiting thread reads it itself (see `lead`).
    fn wait_for_message(
        &self,
        queue: &mut MutexGuard<'_, Inbound>,
        deadline: Option<Instant>,
    ) -> Result<bool> {
        let core = &self.shared.core;
        let mut timed_out = false;
        // Kept until the next turn: a follower woken to lead counts as following until it leads.
        let mut following = None;
        loop {
            if !queue.is_empty() {
                return Ok(true);
            }
            if core.closed.load(Ordering::Acquire) {
                return Err(Error::closed());
            }
            if timed_out {
                return Ok(false);
            }
            let turn = core.lead.turn(&self.state);
            drop(following.take());
            timed_out = match turn {
                // The leader is dropped with the queue unlocked: it may wake a follower of this
                // very channel.
                Turn::Lead(mut leader) => {
                    MutexGuard::unlocked(queue, move || core.read_as_leader(&mut leader, deadline))
                }
                Turn::Follow(follower) => {
                    following = Some(follower);
                    match deadline {
                        None => {
                            self.state.arrived.wait(queue);
                            false
                        }
                        Some(deadline) => {
                            self.state.arrived.wait_until(queue, deadline).timed_out()
                        }
                    }
                }
            };
        }
    }

    /// This channel's counters.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Seals everything sent from now on with `key`, and accepts only datagrams sealed with it
    /// or another key added with [`add_key`](Self::add_key). What was already packed is sent
    /// first, as it was. Receivers without the key deliver nothing of the channel.
    ///
    /// Fails with [`ErrorKind::Unsupported`] in a profile without header, and with
    /// [`ErrorKind::InvalidConfig`] if the datagram size leaves no room for the seal.
    pub fn set_key(&self, key: &ChannelKey) -> Result<()> {
        self.protect(|protection| {
            protection.set_key(key);
            Ok(())
        })
    }

    /// Accepts datagrams sealed with `key` too, without sending with it: for rotating keys,
    /// receivers add the new key, then senders switch to it, then receivers remove the old one.
    pub fn add_key(&self, key: &ChannelKey) -> Result<()> {
        self.protect(|protection| {
            protection.add_key(key);
            Ok(())
        })
    }

    /// Stops accepting datagrams sealed with key `id`; returns whether the channel held it.
    /// Removing the send key makes the channel send plain datagrams again.
    pub fn remove_key(&self, id: KeyId) -> Result<bool> {
        let mut removed = false;
        self.protect(|protection| {
            removed = protection.remove_key(id);
            Ok(())
        })?;
        Ok(removed)
    }

    /// Signs everything sent from now on with `key`, so that receivers trusting its public key
    /// accept it. Adds 72 bytes to each datagram.
    pub fn sign_with(&self, key: SigningKey) -> Result<()> {
        self.protect(|protection| {
            protection.sign_with(key);
            Ok(())
        })
    }

    /// Presents `token` with every signed datagram, so that receivers that trust its issuer
    /// ([`trust_issuer`](Self::trust_issuer)) accept this channel's signing key until the token
    /// expires. Adds 128 bytes to each datagram.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] unless the token is for the key set with
    /// [`sign_with`](Self::sign_with) and for this channel.
    pub fn present(&self, token: Token) -> Result<()> {
        self.protect(|protection| protection.present(token))
    }

    /// Accepts datagrams signed with `key`. From the first trusted key on, the channel accepts
    /// only datagrams signed by a trusted key.
    pub fn trust(&self, key: PublicKey) -> Result<()> {
        self.protect(|protection| {
            protection.trust(key);
            Ok(())
        })
    }

    /// Accepts datagrams signed by any key that presents an unexpired token of `issuer` for this
    /// channel. Like [`trust`](Self::trust), makes the channel accept only signed datagrams.
    pub fn trust_issuer(&self, issuer: PublicKey) -> Result<()> {
        self.protect(|protection| {
            protection.trust_issuer(issuer);
            Ok(())
        })
    }

    /// Changes the channel's keys. The packer is closed and resized first, so that no datagram
    /// is sealed under keys it was not packed for and protected datagrams keep within the
    /// datagram size.
    fn protect(&self, change: impl FnOnce(&mut Protection) -> Result<()>) -> Result<()> {
        let core = &self.shared.core;
        core.check_open()?;
        if !core.config.profile.has_header() {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "the {} profile carries no header, so its datagrams cannot be sealed or \
                     signed",
                    core.config.profile.name()
                ),
            ));
        }
        let mut outbox = self.state.outbox.lock();
        let outbox = &mut *outbox;
        let mut next = self.state.protection.read().clone();
        change(&mut next)?;
        outbox
            .packer
            .set_overhead(next.overhead(), &mut outbox.ready)?;
        let sent = core.send_ready(&self.state, outbox, Instant::now());
        *self.state.protection.write() = next;
        sent
    }
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("name", &String::from_utf8_lossy(&self.state.name))
            .field("group", &self.state.group)
            .finish_non_exhaustive()
    }
}

impl ChannelState {
    /// The channel's group and, where the profile has one, its relayed twin.
    fn groups(&self) -> Vec<Ipv6Addr> {
        std::iter::once(self.group)
            .chain(self.relayed_group)
            .collect()
    }

    fn stats(&self) -> Stats {
        let mut stats = self.counters.snapshot();
        let (inbox, reassembly_bytes) = {
            let inbox = self.inbox.lock();
            (inbox.stats(), inbox.reassembly_bytes())
        };
        stats.reassembly_bytes = reassembly_bytes as u64;
        stats.duplicates = inbox.duplicates;
        stats.lost = inbox.lost;
        stats.drops.add(DropReason::Replay, inbox.stale);
        stats.reassembly_dropped = inbox.reassembly_expired + inbox.reassembly_rejected;
        stats
    }

    /// Wakes the threads waiting on this channel's queue, one of them to read the socket next
    /// (see `lead`).
    fn wake_to_lead(state: &Arc<Self>) {
        drop(state.queue.lock());
        state.arrived.notify_all();
    }

    fn enqueue(&self, messages: Vec<Message>, config: &Config) {
        if messages.is_empty() {
            return;
        }
        let mut queue = self.queue.lock();
        // A non-empty queue has woken the readiness descriptor already: `try_recv` re-arms it
        // only once it finds the queue empty.
        let was_empty = queue.is_empty();
        for message in messages {
            let len = message.payload.len() as u64;
            match queue.push(message, config.queue_capacity, config.queue_bytes) {
                Ok(()) => {
                    bump(&self.counters.messages_received, 1);
                    bump(&self.counters.bytes_received, len);
                }
                Err(_) => bump(&self.counters.queue_overflow, 1),
            }
        }
        let now_waiting = !queue.is_empty();
        drop(queue);
        self.arrived.notify_all();
        if was_empty
            && now_waiting
            && let Some(readiness) = self.readiness.get()
        {
            readiness.wake();
        }
    }
}

impl Segment {
    fn open(config: &Config, interfaces: &[Interface], node: NodeId) -> Result<Self> {
        // Hop limit 1: announcements and re-sends never leave the segment.
        let options = |port| SocketOptions {
            address: Ipv6Addr::UNSPECIFIED,
            port,
            hop_limit: 1,
            loopback: config.loopback,
            recv_buffer: 1 << 16,
        };
        let announcer = McastSocket::bind(&options(discovery::CONTROL_PORT))?;
        for interface in interfaces {
            announcer.join(gateway::gateway_group(), interface)?;
        }
        Ok(Self {
            announcer,
            // Bound to the data port, because multicast goes to the sending socket's port.
            resender: McastSocket::bind(&options(config.effective_port()))?,
            gateways: Mutex::new(Gateways::new(node, Instant::now())),
        })
    }

    /// Announces `groups` (withdraws them when `hold` is zero) on the gateway group.
    fn announce(
        &self,
        interfaces: &[Interface],
        node: NodeId,
        groups: &[Ipv6Addr],
        hold: Duration,
    ) {
        for message in gateway::announcements(node, groups, hold) {
            if let Err(err) = discovery::multicast_control(
                &self.announcer,
                interfaces,
                &message,
                gateway::gateway_group(),
            ) {
                debug!("announcing the gateway: {err}");
            }
        }
    }

    /// Re-sends a datagram that came down the tunnel onto the segment, to the relayed twin.
    fn resend(&self, interfaces: &[Interface], relayed: Ipv6Addr, datagram: &[u8]) {
        let copy = [datagram.to_vec()];
        for interface in interfaces {
            if let Err(err) = self.resender.send_batch(&copy, relayed, interface) {
                debug!("re-sending onto the segment: {err}");
            }
        }
    }
}

impl Shared {
    fn close(&self) {
        if self.core.closed.load(Ordering::Acquire) {
            return;
        }
        self.core.flush_all();
        self.core.shutdown();
        for handle in self.threads.lock().drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.close();
    }
}

impl Core {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::closed())
        } else {
            Ok(())
        }
    }

    /// Applies `apply` on every interface; on the first failure undoes the ones that succeeded.
    fn for_each_interface(
        &self,
        apply: impl Fn(&Interface) -> Result<()>,
        undo: impl Fn(&Interface) -> Result<()>,
    ) -> Result<()> {
        for (done, interface) in self.interfaces.iter().enumerate() {
            if let Err(err) = apply(interface) {
                for earlier in &self.interfaces[..done] {
                    let _ = undo(earlier);
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Sends the ready datagrams of `state` on every interface, and up the tunnel where this
    /// node's multicast does not reach the core, and empties `ready`.
    fn transmit(&self, state: &ChannelState, ready: &mut Vec<Vec<u8>>) -> Result<()> {
        {
            let protection = state.protection.read();
            if protection.protects_sending() {
                for datagram in ready.iter_mut() {
                    *datagram = protection.seal(datagram)?;
                }
            }
        }
        let result = self.interfaces.iter().try_for_each(|interface| {
            self.socket.send_batch(ready, state.group, interface)?;
            bump(&state.counters.datagrams_sent, ready.len() as u64);
            Ok(())
        });
        if let (Some(link), Some(relayed)) = (&self.relay_link, state.relayed_group) {
            let mut link_state = link.state.lock();
            let native_up = link_state
                .report
                .as_ref()
                .is_some_and(|report| report.native_up);
            match (link_state.tunnel.as_mut(), native_up) {
                // A repeater takes it by SSM from this node, on the twin's repeated group.
                (Some(tunnel), false) if tunnel.repeater => {
                    if let Ok(repeated) = addr::repeated_addr(relayed) {
                        for interface in &self.interfaces {
                            if let Err(err) = self.socket.send_batch(ready, repeated, interface) {
                                debug!("sending to the repeater: {err}");
                            }
                        }
                    }
                }
                // The relay re-sends it on the core to the relayed twin.
                (Some(tunnel), false) => {
                    for datagram in ready.iter() {
                        if let Err(err) = tunnel.send_data(&link.socket, relayed, datagram) {
                            debug!("sending up the tunnel: {err}");
                        }
                    }
                }
                _ => {}
            }
        }
        ready.clear();
        result
    }

    /// The channels joined for any source. Takes channel locks: call it before locking the
    /// link state, which joins take while they hold their channel's lock.
    fn joined_channels(&self) -> Vec<Arc<ChannelState>> {
        self.by_name
            .lock()
            .values()
            .filter(|state| state.membership.lock().any_source)
            .cloned()
            .collect()
    }

    /// Every group of the joined channels that no gateway of the segment serves: what a new
    /// tunnel must join.
    fn unserved_groups(&self, link: &RelayLink) -> Vec<Ipv6Addr> {
        let channels = self.joined_channels();
        let gateways = link.segment.gateways.lock();
        let now = Instant::now();
        channels
            .iter()
            .filter(|state| gateways.serving(state.group, now).is_none())
            .flat_map(|state| state.groups())
            .collect()
    }

    fn tunnel_join(&self, groups: &[Ipv6Addr]) {
        let Some(link) = &self.relay_link else { return };
        let mut state = link.state.lock();
        let Some(tunnel) = state.tunnel.as_mut() else {
            return;
        };
        if let Err(err) = tunnel.join(&link.socket, groups) {
            debug!("joining through the tunnel: {err}");
        }
        if tunnel.repeater {
            self.repeated_membership(tunnel, groups, true);
        }
    }

    fn tunnel_leave(&self, groups: &[Ipv6Addr]) {
        let Some(link) = &self.relay_link else { return };
        let mut state = link.state.lock();
        let Some(tunnel) = state.tunnel.as_mut() else {
            return;
        };
        if let Err(err) = tunnel.leave(&link.socket, groups) {
            debug!("leaving through the tunnel: {err}");
        }
        if tunnel.repeater {
            self.repeated_membership(tunnel, groups, false);
        }
    }

    /// Leaves what a tunnel that is no longer used had joined on the context's socket.
    fn retire(&self, tunnel: &mut Tunnel) {
        let joined: Vec<Ipv6Addr> = tunnel.repeated.iter().copied().collect();
        for repeated in joined {
            for interface in &self.interfaces {
                let _ = self
                    .socket
                    .leave_source(repeated, *tunnel.relay.ip(), interface);
            }
            tunnel.repeated.remove(&repeated);
        }
    }

    /// Joins (or leaves) the repeated groups of `groups` from the repeater of `tunnel`, on the
    /// context's socket: where the repeater's copies arrive.
    fn repeated_membership(&self, tunnel: &mut Tunnel, groups: &[Ipv6Addr], join: bool) {
        let source = *tunnel.relay.ip();
        for repeated in groups
            .iter()
            .filter_map(|group| addr::repeated_addr(*group).ok())
        {
            if join == tunnel.repeated.contains(&repeated) {
                continue;
            }
            let done = if join {
                self.for_each_interface(
                    |interface| self.socket.join_source(repeated, source, interface),
                    |interface| self.socket.leave_source(repeated, source, interface),
                )
            } else {
                self.interfaces
                    .iter()
                    .try_for_each(|interface| self.socket.leave_source(repeated, source, interface))
            };
            match done {
                Ok(()) if join => drop(tunnel.repeated.insert(repeated)),
                Ok(()) => drop(tunnel.repeated.remove(&repeated)),
                Err(err) => debug!("({source}, {repeated}): {err}"),
            }
        }
    }

    /// Keeps the path to the core: probes, opens a tunnel where native multicast falls short,
    /// dispatches what comes down it, and fails over to a spare relay when it goes silent.
    fn reach_loop(&self) {
        let Some(link) = &self.relay_link else { return };
        let mut batch = RecvBatch::new();
        let mut next_attempt = Instant::now();
        while !self.closed.load(Ordering::Acquire) {
            if Instant::now() >= next_attempt {
                let tunnelled = link.state.lock().tunnel.is_some();
                let wait = if tunnelled {
                    self.reprobe(link)
                } else {
                    self.attempt(link)
                };
                next_attempt = Instant::now() + wait;
            }
            // The segment's gateway left (or never served a channel joined since): take over at
            // once, on the probe's standing verdict.
            if link.tunnel_wanted.swap(false, Ordering::AcqRel)
                && link.state.lock().tunnel.is_none()
                && !self.open_tunnel(link)
            {
                next_attempt = next_attempt.max(Instant::now() + RETRY_INTERVAL);
            }
            match link
                .socket
                .recv_batch(&mut batch, &self.waker, Some(Duration::from_millis(250)))
            {
                Ok(Wait::Woken) => break,
                Ok(Wait::Received(_)) => {
                    let now = Instant::now();
                    for (meta, datagram) in batch.iter() {
                        self.handle_relay_datagram(link, meta, datagram, now);
                    }
                }
                Ok(Wait::TimedOut) => {}
                Err(err) => {
                    warn!("{err}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            self.maintain_tunnel(link);
        }
        let state = link.state.lock();
        if let (Some(tunnel), Some(report)) = (&state.tunnel, &state.report)
            && let Some(observed) = report.observed
        {
            tunnel.close(&link.socket, observed);
        }
    }

    /// How to probe the Stratum 0 at `stratum0`.
    fn probe_settings(&self, stratum0: SocketAddrV6) -> ProbeSettings {
        ProbeSettings {
            stratum0,
            scope: self.config.scope,
            hop_limit: self.config.hop_limit,
            interfaces: self.interfaces.clone(),
            within: self.config.probe_timeout,
        }
    }

    /// The Stratum 0 to use now: the first candidate, found from the source when none is left.
    fn stratum0(&self, link: &RelayLink) -> Result<SocketAddrV6> {
        let mut state = link.state.lock();
        if let Some(stratum0) = state.candidates.first().copied() {
            state.stratum0 = Some(stratum0);
            return Ok(stratum0);
        }
        drop(state);
        let found = link.source.candidates(self.config.probe_timeout)?;
        info!(source = %link.source, candidates = ?found, "found Stratum 0");
        let first = found.first().copied().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("{} names no Stratum 0", link.source),
            )
        })?;
        let mut state = link.state.lock();
        state.candidates = found;
        state.stratum0 = Some(first);
        Ok(first)
    }

    /// Probes and, where native multicast falls short, relies on the segment's gateway or opens a
    /// tunnel; returns how long to wait before the next attempt.
    fn attempt(&self, link: &RelayLink) -> Duration {
        let stratum0 = match self.stratum0(link) {
            Ok(stratum0) => stratum0,
            Err(err) => {
                self.attempt_failed(link, &err);
                return RETRY_INTERVAL;
            }
        };
        // No tunnel is open yet, so nothing else arrives on the socket.
        let settings = self.probe_settings(stratum0);
        let report = match discovery::probe(&settings, &link.socket, &self.waker, &mut |_, _| {}) {
            Ok(report) => report,
            Err(err) => {
                self.attempt_failed(link, &err);
                return RETRY_INTERVAL;
            }
        };
        let native = report.native();
        {
            let mut state = link.state.lock();
            state.report = Some(report);
            state.last_error = None;
        }
        if native || !self.tunnel_needed(link) || self.open_tunnel(link) {
            self.config.probe_interval
        } else {
            RETRY_INTERVAL
        }
    }

    /// Whether this node needs a tunnel of its own, once it has listened for the segment's
    /// gateways: some joined channel has no gateway (or no channel is joined yet).
    fn tunnel_needed(&self, link: &RelayLink) -> bool {
        while !link.segment.gateways.lock().listened(Instant::now()) {
            if self.closed.load(Ordering::Acquire) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let channels: Vec<Ipv6Addr> = self
            .joined_channels()
            .iter()
            .map(|state| state.group)
            .collect();
        channels.is_empty()
            || link
                .segment
                .gateways
                .lock()
                .plan(&channels, |_| false, false, Instant::now())
                .open_tunnel
    }

    /// Opens a tunnel to the best relay offered, for the joined channels no gateway serves (the
    /// probe has found native multicast lacking); false if none could be opened.
    fn open_tunnel(&self, link: &RelayLink) -> bool {
        let groups = self.unserved_groups(link);
        let network = (self.config.scope, self.interfaces.as_slice());
        let established = self.stratum0(link).and_then(|stratum0| {
            let pinning = self.pinning(link);
            tunnel::establish(
                &link.socket,
                &self.waker,
                stratum0,
                &groups,
                network,
                pinning,
            )
        });
        match established {
            Ok((tunnel, offers)) => {
                let mut state = link.state.lock();
                state.spares = offers
                    .iter()
                    .filter(|offer| offer.address != tunnel.relay)
                    .cloned()
                    .collect();
                state.offers = offers;
                state.tunnel = Some(tunnel);
                state.last_error = None;
                drop(state);
                // Channels joined while the tunnel was being opened missed it: join them now.
                self.tunnel_join(&self.unserved_groups(link));
                true
            }
            Err(err) => {
                self.attempt_failed(link, &err);
                false
            }
        }
    }

    /// What relays must prove to this context: its pinned keys, and the address Stratum 0 saw.
    fn pinning<'a>(&'a self, link: &'a RelayLink) -> Pinning<'a> {
        let seen_as = link
            .state
            .lock()
            .report
            .as_ref()
            .and_then(|report| report.observed)
            .map(|observed| *observed.ip());
        Pinning {
            keys: &self.config.relay_keys,
            issuers: &self.config.relay_issuers,
            group: discovery::relay_group(self.config.scope),
            seen_as,
            rejected: &link.rejected_relays,
        }
    }

    /// Records why reaching the core failed. The next attempt tries the next Stratum 0
    /// candidate, or finds them again.
    fn attempt_failed(&self, link: &RelayLink, err: &Error) {
        // Closing interrupted the attempt: nothing went wrong.
        if err.kind() == ErrorKind::Closed {
            return;
        }
        warn!("reaching the multicast core: {err}");
        let mut state = link.state.lock();
        state.last_error = Some(err.to_string());
        if !state.candidates.is_empty() {
            state.candidates.remove(0);
        }
    }

    /// Probes again while a tunnel is open; closes the tunnel when native multicast now works
    /// both ways. Tunnel traffic arriving meanwhile is dispatched as usual.
    fn reprobe(&self, link: &RelayLink) -> Duration {
        // A keepalive now, so that its answer (during the probe) keeps the relay from looking
        // silent while the probe holds this thread.
        if let Some(tunnel) = link.state.lock().tunnel.as_mut()
            && let Err(err) = tunnel.send_keepalive(&link.socket)
        {
            debug!("keeping the tunnel up: {err}");
        }
        let Some(stratum0) = link.state.lock().candidates.first().copied() else {
            return RETRY_INTERVAL;
        };
        let probed = discovery::probe(
            &self.probe_settings(stratum0),
            &link.socket,
            &self.waker,
            &mut |meta, datagram| {
                self.handle_relay_datagram(link, meta, datagram, Instant::now());
            },
        );
        match probed {
            Ok(report) => {
                let mut state = link.state.lock();
                if report.native()
                    && let Some(mut tunnel) = state.tunnel.take()
                {
                    self.retire(&mut tunnel);
                    info!(relay = %tunnel.relay, "native multicast reaches the core again; closing the tunnel");
                    if let Some(observed) = report.observed {
                        tunnel.close(&link.socket, observed);
                    }
                }
                state.report = Some(report);
            }
            Err(err) if err.kind() == ErrorKind::Closed => {}
            // Stratum 0 may be briefly unreachable; the tunnel stays as it is.
            Err(err) => debug!("probing again: {err}"),
        }
        self.config.probe_interval
    }

    fn handle_relay_datagram(
        &self,
        link: &RelayLink,
        meta: &RecvMeta,
        datagram: &[u8],
        now: Instant,
    ) {
        let mut state = link.state.lock();
        let Some(tunnel) = state
            .tunnel
            .as_mut()
            .filter(|tunnel| tunnel.relay == meta.source)
        else {
            return;
        };
        match control::decode(datagram) {
            Ok(Control::Data { group, datagram }) => {
                tunnel.last_heard = now;
                // As the segment's gateway, re-send it there on the relayed twin.
                let cut_off = state
                    .report
                    .as_ref()
                    .is_some_and(|report| !report.native_down);
                let resend_to = self
                    .by_group
                    .read()
                    .get(&group)
                    .filter(|channel| cut_off && state.serving.contains(&channel.group))
                    .and_then(|channel| Some((channel.group, channel.relayed_group?)));
                drop(state);
                // Only while a neighbour listens: alone, the copies would reach nobody.
                if let Some((channel, relayed)) = resend_to
                    && link.segment.gateways.lock().listened_to(channel, now)
                {
                    link.segment.resend(&self.interfaces, relayed, datagram);
                }
                let relayed = RecvMeta {
                    destination: group,
                    interface: 0,
                    len: datagram.len(),
                    ..*meta
                };
                self.dispatch(&relayed, datagram, now, true);
            }
            Ok(message) => {
                if let Err(err) =
                    tunnel.on_control(&link.socket, &message, now, &link.rejected_relays)
                {
                    debug!("answering the relay: {err}");
                }
            }
            Err(_) => {}
        }
    }

    fn maintain_tunnel(&self, link: &RelayLink) {
        let mut spares = {
            let mut state = link.state.lock();
            let Some(tunnel) = state.tunnel.as_mut() else {
                return;
            };
            if let Err(err) = tunnel.maintain(&link.socket) {
                debug!("keeping the tunnel up: {err}");
            }
            let Some(why) = tunnel.failure() else {
                return;
            };
            warn!(relay = %tunnel.relay, "{why}; failing over to a spare");
            self.retire(tunnel);
            state.tunnel = None;
            std::mem::take(&mut state.spares)
        };
        // No lock is held while handshaking: channels keep sending natively meanwhile, and
        // collecting the joined groups takes channel locks that joins hold before this one.
        let groups = self.unserved_groups(link);
        while !spares.is_empty() {
            let spare = spares.remove(0);
            let network = (self.config.scope, self.interfaces.as_slice());
            let pinning = self.pinning(link);
            match tunnel::open(&link.socket, &self.waker, &spare, &groups, network, pinning) {
                Ok(tunnel) => {
                    let mut state = link.state.lock();
                    state.tunnel = Some(tunnel);
                    state.spares = spares;
                    drop(state);
                    // Channels joined during the handshake missed it: join them now.
                    self.tunnel_join(&self.unserved_groups(link));
                    return;
                }
                Err(err) => debug!(relay = %spare.address, "spare unusable: {err}"),
            }
        }
    }

    fn flush_channel(&self, state: &ChannelState) -> Result<()> {
        let mut outbox = state.outbox.lock();
        let outbox = &mut *outbox;
        outbox.packer.flush(&mut outbox.ready);
        self.send_ready(state, outbox, Instant::now())
    }

    /// Sends the complete datagrams waiting in `outbox` (the open one stays open, its wait
    /// starting anew) and notes when, which tells the next datagram whether waiting for a batch
    /// is worth it.
    fn send_ready(&self, state: &ChannelState, outbox: &mut Outbox, now: Instant) -> Result<()> {
        outbox.opened_at = None;
        if outbox.ready.is_empty() {
            return Ok(());
        }
        outbox.sent_at = Some(now);
        self.transmit(state, &mut outbox.ready)
    }

    fn flush_all(&self) {
        let states: Vec<_> = self.by_name.lock().values().cloned().collect();
        for state in states {
            if let Err(err) = self.flush_channel(&state) {
                warn!(group = %state.group, "sending packed messages at close failed: {err}");
            }
        }
    }

    fn schedule_flush(&self, deadline: Instant, state: &Arc<ChannelState>) {
        let mut queue = self.flush_queue.lock();
        // In deadline order (a re-queued entry may precede others); almost always at the back.
        let at = queue.partition_point(|(queued, _)| *queued <= deadline);
        queue.insert(at, (deadline, Arc::clone(state)));
        // The flusher sleeps until the front deadline: wake it only when that changed.
        if at == 0 {
            self.flush_wanted.notify_one();
        }
    }

    /// Sends partly filled datagrams once they have lingered long enough.
    fn flush_loop(&self) {
        loop {
            let due = {
                let mut queue = self.flush_queue.lock();
                loop {
                    if self.closed.load(Ordering::Acquire) {
                        return;
                    }
                    match queue.front() {
                        Some(&(deadline, _)) if deadline <= Instant::now() => {
                            break queue.pop_front();
                        }
                        Some(&(deadline, _)) => {
                            self.flush_wanted.wait_until(&mut queue, deadline);
                        }
                        None => self.flush_wanted.wait(&mut queue),
                    }
                }
            };
            let Some((_, state)) = due else { continue };
            let mut outbox = state.outbox.lock();
            let outbox = &mut *outbox;
            let now = Instant::now();
            match outbox.opened_at {
                Some(opened) if opened + self.config.linger <= now => {
                    outbox.packer.flush(&mut outbox.ready);
                    outbox.flush_queued = false;
                    if let Err(err) = self.send_ready(&state, outbox, now) {
                        warn!(group = %state.group, "sending a lingering datagram failed: {err}");
                    }
                }
                // A datagram opened after this entry was queued: wait for its deadline.
                Some(opened) => self.schedule_flush(opened + self.config.linger, &state),
                None => outbox.flush_queued = false,
            }
        }
    }

    /// Receives, decodes and dispatches datagrams until the context closes, whenever no
    /// application thread reads the socket itself.
    fn receive_loop(&self) {
        let mut last_expiry = Instant::now();
        let mut expire_when_due = || {
            if last_expiry.elapsed() >= EXPIRY_INTERVAL {
                last_expiry = Instant::now();
                for state in self.by_group.read().values() {
                    state.inbox.lock().expire(last_expiry);
                }
            }
        };
        while let Some(mut batch) = self.lead.receiver_turn(&mut expire_when_due) {
            match self
                .socket
                .recv_batch(&mut batch, self.lead.nudge(), Some(EXPIRY_INTERVAL))
            {
                // Closing, or an application thread asked to read: the next turn tells which.
                Ok(Wait::Woken) => {
                    self.lead.nudge().reset();
                    drop(batch);
                    self.lead.stepped_aside();
                    continue;
                }
                Ok(Wait::Received(datagrams)) => {
                    self.lead.note_read(datagrams);
                    self.dispatch_batch(&batch);
                }
                Ok(Wait::TimedOut) => self.lead.note_idle(),
                Err(err) => {
                    if self.closed.load(Ordering::Acquire) {
                        return;
                    }
                    warn!("{err}");
                    drop(batch);
                    // A persistent error must not become a hot loop.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            expire_when_due();
        }
    }

    /// One receive for an application thread that leads (see `lead`): waits for datagrams until
    /// `deadline` and dispatches them like the receive thread. Returns whether the deadline
    /// passed.
    fn read_as_leader(&self, batch: &mut RecvBatch, deadline: Option<Instant>) -> bool {
        // A close seen by the previous leader consumed the nudge: look before waiting.
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        let timeout = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
        let nudge = self.lead.leader_nudge();
        match self.socket.recv_batch(batch, nudge, timeout) {
            Ok(Wait::Received(datagrams)) => {
                self.lead.note_read(datagrams);
                self.dispatch_batch(batch);
                false
            }
            // Closing, or messages queued through the tunnel: the caller looks again.
            Ok(Wait::Woken) => {
                nudge.reset();
                false
            }
            // Early returns (a signal) wait again.
            Ok(Wait::TimedOut) => deadline.is_some_and(|deadline| deadline <= Instant::now()),
            Err(err) => {
                warn!("{err}");
                std::thread::sleep(Duration::from_millis(10));
                false
            }
        }
    }

    fn dispatch_batch(&self, batch: &RecvBatch) {
        let now = Instant::now();
        for (meta, datagram) in batch.iter() {
            self.dispatch(meta, datagram, now, false);
        }
    }

    fn dispatch(&self, meta: &RecvMeta, datagram: &[u8], now: Instant, via_relay: bool) {
        let Some(state) = self.by_group.read().get(&meta.destination).cloned() else {
            bump(&self.counters.datagrams_received, 1);
            bump(&self.counters.unknown_group, 1);
            trace!(destination = %meta.destination, "datagram for no channel of this context");
            return;
        };
        bump(&state.counters.datagrams_received, 1);
        let repeated = state.repeated_groups.contains(&meta.destination);
        let relayed = via_relay || repeated || Some(meta.destination) == state.relayed_group;
        // An SSM repeater is a relay that re-sends by multicast instead of through a tunnel.
        let path = if via_relay || repeated {
            Path::Relay
        } else if relayed {
            let Some(path) = self.native_copy_path(&state) else {
                bump(&state.counters.own_dropped, 1);
                return;
            };
            path
        } else {
            Path::Native
        };
        let interface_name = self.interface_name(meta.interface);
        let message = |sender, seq, payload| Message {
            payload,
            source: meta.source,
            group: meta.destination,
            interface: meta.interface,
            interface_name: Arc::clone(&interface_name),
            sender,
            seq,
            relayed,
            path,
        };
        if !self.config.profile.has_header() {
            let seq = state.raw_seq.fetch_add(1, Ordering::Relaxed);
            state.enqueue(
                vec![message(NodeId(0), seq, datagram.to_vec())],
                &self.config,
            );
            if via_relay {
                self.lead.queued_elsewhere();
            }
            return;
        }
        // Own datagrams are recognised before opening: a node need not trust its own signature.
        if wire::decode_header(datagram).is_ok_and(|header| header.sender == self.node) {
            bump(&state.counters.own_dropped, 1);
            return;
        }
        // Relayed copies open like originals: the keys are bound to the canonical group.
        let opened = state
            .protection
            .read()
            .open(datagram, std::time::SystemTime::now());
        let decoded = match &opened {
            Ok(plain) => wire::decode(plain).map_err(Rejected::Malformed),
            Err(rejected) => Err(*rejected),
        };
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(Rejected::Malformed(err)) => {
                bump(&state.counters.malformed, 1);
                debug!(source = %meta.source, group = %meta.destination, "dropped a malformed datagram: {err}");
                return;
            }
            Err(Rejected::Dropped(reason)) => {
                state.counters.drops.bump(reason);
                debug!(source = %meta.source, group = %meta.destination, %reason, "dropped a datagram the channel's keys refuse");
                return;
            }
        };
        if path == Path::Native {
            self.upload(&state, datagram);
        }
        let mut messages = Vec::new();
        state.inbox.lock().accept(&decoded, now, &mut |delivery| {
            messages.push(message(delivery.sender, delivery.seq, delivery.payload));
        });
        state.enqueue(messages, &self.config);
        if via_relay {
            self.lead.queued_elsewhere();
        }
    }

    /// How a relayed copy of `channel` heard natively came: from this segment's gateway (a
    /// gateway of the segment serves the channel, this node's tunnel does not carry it, and the
    /// core's multicast with the relays' copies is not known to reach this node), else from a
    /// relay. `None` when this node is the channel's gateway: its tunnel brings everything, and
    /// such copies are its own re-sends heard back (or a rival's during an election).
    fn native_copy_path(&self, channel: &ChannelState) -> Option<Path> {
        let Some(link) = &self.relay_link else {
            return Some(Path::Relay);
        };
        let state = link.state.lock();
        if state.serving.contains(&channel.group) {
            return None;
        }
        let cut_off = state
            .report
            .as_ref()
            .is_none_or(|report| !report.native_down);
        let carried = state
            .tunnel
            .as_ref()
            .is_some_and(|tunnel| tunnel.carries(channel.group));
        drop(state);
        let through_gateway = cut_off
            && !carried
            && link
                .segment
                .gateways
                .lock()
                .serving(channel.group, Instant::now())
                .is_some();
        Some(if through_gateway {
            Path::Gateway
        } else {
            Path::Relay
        })
    }

    /// As its segment's gateway for `channel`, sends a datagram a neighbour multicast natively
    /// on the channel's group up the tunnel, where this segment's multicast does not reach the
    /// core. Copies on the relayed twin and what came down the tunnel are never uploaded, so
    /// nothing loops.
    fn upload(&self, channel: &ChannelState, datagram: &[u8]) {
        let (Some(link), Some(relayed)) = (&self.relay_link, channel.relayed_group) else {
            return;
        };
        let mut state = link.state.lock();
        let state = &mut *state;
        let native_up = state.report.as_ref().is_some_and(|report| report.native_up);
        if native_up || !state.serving.contains(&channel.group) {
            return;
        }
        if let Some(tunnel) = state.tunnel.as_mut()
            && let Err(err) = tunnel.send_data(&link.socket, relayed, datagram)
        {
            debug!("uploading for the segment: {err}");
        }
    }

    /// Hears the segment's gateway announcements, takes part in the election, and announces
    /// the channels this node serves (withdrawing them when it stops, and when it closes).
    fn gateway_loop(&self) {
        let Some(link) = &self.relay_link else { return };
        let segment = &link.segment;
        let mut batch = RecvBatch::new();
        let mut announced: Vec<Ipv6Addr> = Vec::new();
        let mut listened: Vec<Ipv6Addr> = Vec::new();
        let mut next_announcement = Instant::now();
        while !self.closed.load(Ordering::Acquire) {
            match segment
                .announcer
                .recv_batch(&mut batch, &self.waker, Some(ELECTION_TICK))
            {
                Ok(Wait::Woken) => break,
                Ok(Wait::Received(_)) => {
                    let now = Instant::now();
                    let mut gateways = segment.gateways.lock();
                    for (meta, datagram) in batch.iter() {
                        match control::decode(datagram) {
                            Ok(announcement) => gateways.heard(meta.source, &announcement, now),
                            Err(err) => {
                                debug!(source = %meta.source, "on the gateway group: {err}");
                            }
                        }
                    }
                }
                Ok(Wait::TimedOut) => {}
                Err(err) => {
                    warn!("{err}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let serving = self.take_part(link);
            let listening = self.listening(&serving);
            if serving != announced || listening != listened || Instant::now() >= next_announcement
            {
                // What it stopped serving, and what it listens to without serving (so that
                // the gateway re-sends it), go out as withdrawals.
                let mut withdrawn: Vec<Ipv6Addr> = announced
                    .iter()
                    .filter(|group| !serving.contains(group) && !listening.contains(group))
                    .copied()
                    .collect();
                withdrawn.extend_from_slice(&listening);
                segment.announce(&self.interfaces, self.node, &withdrawn, Duration::ZERO);
                segment.announce(&self.interfaces, self.node, &serving, gateway::HOLD);
                announced = serving;
                listened = listening;
                next_announcement = Instant::now() + gateway::ANNOUNCE_INTERVAL;
            }
        }
        segment.announce(&self.interfaces, self.node, &announced, Duration::ZERO);
    }

    /// The groups of the joined channels (with a relayed twin) this node does not serve: what it
    /// tells the segment's gateway it listens to, in a stable order.
    fn listening(&self, serving: &[Ipv6Addr]) -> Vec<Ipv6Addr> {
        let mut listening: Vec<Ipv6Addr> = self
            .joined_channels()
            .iter()
            .filter(|state| state.relayed_group.is_some() && !serving.contains(&state.group))
            .map(|state| state.group)
            .collect();
        listening.sort_unstable();
        listening
    }

    /// One round of the election, for a node that needs the core: stops carrying channels a
    /// better gateway serves (closing the tunnel when it carries none of the joined channels),
    /// carries unserved channels in the tunnel or asks for one, and returns the groups of the
    /// channels served.
    fn take_part(&self, link: &RelayLink) -> Vec<Ipv6Addr> {
        let channels: Vec<Arc<ChannelState>> = self
            .joined_channels()
            .into_iter()
            .filter(|state| state.relayed_group.is_some())
            .collect();
        let groups: Vec<Ipv6Addr> = channels.iter().map(|state| state.group).collect();
        let twins = |chosen: &[Ipv6Addr]| -> Vec<Ipv6Addr> {
            channels
                .iter()
                .filter(|state| chosen.contains(&state.group))
                .flat_map(|state| state.groups())
                .collect()
        };
        let now = Instant::now();
        let mut state = link.state.lock();
        let state = &mut *state;
        // Only a node that needs the core (the probe found native multicast lacking) takes part.
        // Nor does one served by an SSM repeater: its copies reach every node of the segment.
        let repeated = state.tunnel.as_ref().is_some_and(|tunnel| tunnel.repeater);
        if repeated || state.report.as_ref().is_none_or(ProbeReport::native) {
            state.serving.clear();
            return Vec::new();
        }
        let plan = {
            let mut gateways = link.segment.gateways.lock();
            gateways.expire(now);
            let tunnel = state.tunnel.as_ref();
            let plan = gateways.plan(
                &groups,
                |group| tunnel.is_some_and(|tunnel| tunnel.carries(group)),
                tunnel.is_some(),
                now,
            );
            if plan.open_tunnel && gateways.listened(now) {
                link.tunnel_wanted.store(true, Ordering::Release);
            }
            plan
        };
        if let Some(tunnel) = state.tunnel.as_mut() {
            if !plan.stand_down.is_empty() {
                info!(channels = ?plan.stand_down, "a better gateway serves the segment; standing down");
                if let Err(err) = tunnel.leave(&link.socket, &twins(&plan.stand_down)) {
                    debug!("leaving through the tunnel: {err}");
                }
            }
            if let Err(err) = tunnel.join(&link.socket, &twins(&plan.carry)) {
                debug!("joining through the tunnel: {err}");
            }
        }
        // A tunnel that carries none of the joined channels (gateways serve them all) is closed:
        // one kept idle would hold a MAC that expires, and a node on it would not be served.
        let idle = state.tunnel.as_ref().is_some_and(Tunnel::is_idle);
        if !groups.is_empty()
            && idle
            && let Some(tunnel) = state.tunnel.take()
        {
            info!(relay = %tunnel.relay, "the segment's gateway carries every channel; closing the tunnel");
            if let Some(observed) = state.report.as_ref().and_then(|report| report.observed) {
                tunnel.close(&link.socket, observed);
            }
        }
        let mut serving = plan.serve;
        // In a stable order, so that an unchanged set is announced only every interval.
        serving.sort_unstable();
        state.serving.clone_from(&serving);
        serving
    }

    /// The name of interface `index`: from the joined interfaces, or asked of the kernel for
    /// the rare datagram that arrives elsewhere.
    fn interface_name(&self, index: u32) -> Arc<str> {
        match self
            .interfaces
            .iter()
            .find(|interface| interface.index == index)
        {
            Some(interface) => Arc::clone(&interface.name),
            None => socket::interface_name(index).unwrap_or_default().into(),
        }
    }

    fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.waker.wake();
        self.lead.close();
        // Taking each lock before notifying guarantees no waiter misses the wake-up.
        drop(self.flush_queue.lock());
        self.flush_wanted.notify_all();
        for state in self.by_name.lock().values() {
            drop(state.queue.lock());
            state.arrived.notify_all();
            if let Some(readiness) = state.readiness.get() {
                readiness.wake();
            }
        }
        debug!(node = %self.node, "context closed");
    }
}
