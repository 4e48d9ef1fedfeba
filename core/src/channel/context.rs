//! [`Context`]: opening (the socket, the background threads), the channel registry, the
//! context's reports, and closing.

use std::{
    fmt,
    net::Ipv6Addr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex, RwLock};
use tracing::debug;

use super::{
    Channel, ChannelState, Context, Core, Counters, Outbox, Reachability, RelayLink, SEND_BATCH,
    Segment, Shared, Stats, route::RouteCell,
};
use crate::{
    addr,
    config::Config,
    crypto::{CoverLimits, Covers, Protection},
    discovery::{self, ThreadBody},
    error::{Error, ErrorKind, Result},
    events::{CorePath, Event, EventQueue},
    lead::Lead,
    ratelimit::Pacer,
    reliable::{RepairReceiver, RepairSender},
    socket::{self, McastSocket, RecvBatch, SocketOptions, Waker},
    wire::{Inbox, InboxLimits, NodeId, Packer},
};

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
        let relay_link = match config.stratum0_source() {
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
                nudge: Waker::new()?,
                rejected_relays: AtomicU64::new(0),
                epoch: Instant::now(),
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
            reading_behind: AtomicBool::new(false),
            nacks_held: AtomicBool::new(false),
            flush_queue: Mutex::default(),
            flush_wanted: Condvar::new(),
            events: EventQueue::default(),
            pacer: Pacer::new(
                config.send_rate_messages,
                config.send_rate_bytes,
                Instant::now(),
            )
            .map(Mutex::new),
            config,
        });
        let mut bodies: Vec<ThreadBody<Core>> = vec![
            ("sixcast-recv", Core::receive_loop),
            ("sixcast-flush", Core::flush_loop),
        ];
        if core.relay_link.is_some() {
            bodies.push(("sixcast-reach", Core::reach_loop));
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
                    core.config.packed_datagram_size(),
                    core.config.max_message_size,
                )?,
                opened_at: None,
                flush_queued: false,
                ready: Vec::new(),
                sent_at: None,
                batch_len: SEND_BATCH,
            }),
            protection: RwLock::new(Protection::new(group)),
            next_manifest: AtomicU64::new(0),
            covers: Mutex::new(Covers::new(CoverLimits::default())),
            cover_timer: Mutex::new(None),
            readiness: OnceLock::new(),
            wake_owed: AtomicBool::new(false),
            readiness_owed: AtomicBool::new(false),
            inbox: Mutex::new(Inbox::new(InboxLimits {
                max_message: core.config.max_message_size,
                reassembly_timeout: core.config.reassembly_timeout,
                reassembly_memory: core.config.reassembly_memory,
                ..InboxLimits::default()
            })),
            queue: Mutex::default(),
            arrived: Condvar::new(),
            membership: Mutex::default(),
            route: RouteCell::default(),
            counters: Counters::default(),
            raw_seq: AtomicU64::new(0),
            repair_sender: core
                .config
                .reliable
                .then(|| Mutex::new(RepairSender::new(core.node, core.config.repair))),
            // The node id is random: it spreads NACK delays as well as any seed.
            repair_receiver: Mutex::new(RepairReceiver::new(
                core.node,
                group,
                core.config.repair,
                core.node.0,
            )),
            repair_timer: Mutex::new(None),
            nacks_held: AtomicBool::new(false),
            repair_only: AtomicBool::new(false),
            window_opened: Condvar::new(),
            held: AtomicBool::new(false),
        });
        by_group.insert(group, Arc::clone(&state));
        if let Some(relayed) = relayed_group {
            by_group.insert(relayed, Arc::clone(&state));
            for repeated in repeated_groups {
                by_group.insert(repeated, Arc::clone(&state));
            }
        }
        by_name.insert(name.to_vec(), Arc::clone(&state));
        drop(by_group);
        drop(by_name);
        let channel = Channel {
            shared: Arc::clone(&self.shared),
            state,
        };
        // A reliable sender hears its receivers' NACKs on the channel's group.
        if core.config.reliable {
            channel.join_for_repair()?;
        }
        Ok(channel)
    }

    /// What the context knows of its path to the multicast core: `None` when the configuration
    /// names no Stratum 0 (no `stratum0`, no `domain`, not the embedded-RP profile).
    pub fn reachability(&self) -> Option<Reachability> {
        let core = &self.shared.core;
        let link = core.relay_link.as_ref()?;
        let channels = core.joined_channels();
        let state = link.state.lock();
        let gateway = core.serving_gateway(link, &state, &channels);
        Some(Reachability {
            stratum0: state.stratum0,
            probe: state.report.clone(),
            relay: state.tunnel.as_ref().map(|tunnel| tunnel.relay()),
            offers: state.offers.clone(),
            last_error: state.last_error.clone(),
            gateway,
            serving: state.serving.clone(),
            rejected_relays: link.rejected_relays.load(Ordering::Relaxed),
            held_dropped: state.held.dropped(),
        })
    }

    /// How the context reaches the multicast core now: the path of the latest
    /// [`Event::PathChanged`], [`CorePath::Native`] when the configuration names no Stratum 0
    /// (native multicast is all there is), `None` while a Stratum 0 is configured but the path
    /// is not known yet.
    pub fn path(&self) -> Option<CorePath> {
        let core = &self.shared.core;
        match core.relay_link {
            Some(_) => core.events.current_path(),
            None => Some(CorePath::Native),
        }
    }

    /// The oldest [`Event`] not yet taken, if any. Fails with `Closed` once the context is
    /// closed and no event is left.
    pub fn try_event(&self) -> Result<Option<Event>> {
        self.shared.core.events.try_pop()
    }

    /// Waits for the next [`Event`], at most `timeout`; fails with `Timeout`, or `Closed` once
    /// the context is closed and no event is left.
    pub fn event_timeout(&self, timeout: Duration) -> Result<Event> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(u64::from(u32::MAX)));
        self.shared.core.events.pop_until(deadline)
    }

    /// Events dropped because the application did not take them in time (the queue holds
    /// [`EVENT_CAPACITY`](crate::events::EVENT_CAPACITY)).
    pub fn events_dropped(&self) -> u64 {
        self.shared.core.events.dropped()
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

impl Shared {
    pub(super) fn close(&self) {
        if self.core.closed.load(Ordering::Acquire) {
            return;
        }
        self.core.flush_all();
        self.core.settle_repairs();
        let states: Vec<_> = self.core.by_name.lock().values().cloned().collect();
        for state in states {
            self.core.leave_streams(&state);
        }
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
    pub(super) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::closed())
        } else {
            Ok(())
        }
    }

    fn shutdown(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        self.waker.wake();
        self.events.close();
        if let Some(link) = &self.relay_link {
            link.nudge.wake();
        }
        self.lead.close();
        // Taking each lock before notifying guarantees no waiter misses the wake-up.
        drop(self.flush_queue.lock());
        self.flush_wanted.notify_all();
        for state in self.by_name.lock().values() {
            if let Some(sender) = &state.repair_sender {
                drop(sender.lock());
                state.window_opened.notify_all();
            }
            let parked = state.queue.lock().take_wakers();
            state.arrived.notify_all();
            parked.into_iter().for_each(std::task::Waker::wake);
            if let Some(readiness) = state.readiness.get() {
                readiness.wake();
            }
        }
        debug!(node = %self.node, "context closed");
    }
}
