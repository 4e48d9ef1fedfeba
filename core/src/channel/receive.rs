//! Receiving: the receive thread (or a waiting application thread, see `lead`) reads batches
//! of datagrams and dispatches each to its channel's inbox and queue.

use std::{
    borrow::Cow,
    cell::RefCell,
    net::Ipv6Addr,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant, SystemTime},
};

use tracing::{debug, trace, warn};

use super::{Arrival, ChannelState, Core, EXPIRY_INTERVAL, Message, Stats, bump};
use crate::{
    config::Config,
    crypto::{DropReason, Rejected},
    events::Event,
    gateway::Path,
    socket::{self, RecvBatch, RecvMeta, Wait},
    wire::{self, NodeId},
};

thread_local! {
    /// Where a receiving thread opens sealed datagrams: one allocation for all of them.
    static PLAIN: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    /// The channels a batch being dispatched on this thread reached (`None`: no batch), whose
    /// receivers are woken once at its end rather than at every datagram: a wake-up costs a
    /// system call and, on another core, an interrupt, which one-message datagrams paid each.
    static BATCH_CHANNELS: RefCell<Option<Vec<Arc<ChannelState>>>> = const { RefCell::new(None) };
}

/// While alive, the channels a batch reaches owe their receivers one wake-up, given when it
/// ends (also if dispatching ends early).
struct BatchWakes;

impl BatchWakes {
    fn begin() -> Self {
        BATCH_CHANNELS.set(Some(Vec::new()));
        Self
    }
}

impl Drop for BatchWakes {
    fn drop(&mut self) {
        for state in BATCH_CHANNELS.take().unwrap_or_default() {
            state.wake_owed_receivers();
        }
    }
}

impl ChannelState {
    /// The channel's group and, where the profile has one, its relayed twin.
    pub(super) fn groups(&self) -> Vec<Ipv6Addr> {
        std::iter::once(self.group)
            .chain(self.relayed_group)
            .collect()
    }

    pub(super) fn stats(&self) -> Stats {
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
        let receiver = self.repair_receiver.lock().stats();
        stats.nacks_sent = receiver.nacks_sent;
        stats.repairs_received = receiver.repairs_received;
        stats.packets_recovered = receiver.packets_recovered;
        stats.packets_lost = receiver.packets_lost;
        stats.malformed += receiver.bad_parity;
        if let Some(sender) = &self.repair_sender {
            let sender = sender.lock().stats();
            stats.nacks_received = sender.nacks_received;
            stats.repairs_sent = sender.repair_datagrams;
            stats.repair_bytes_sent = sender.repair_bytes;
        }
        stats
    }

    /// Wakes the threads waiting on this channel's queue, one of them to read the socket next
    /// (see `lead`).
    pub(super) fn wake_to_lead(state: &Arc<Self>) {
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
        if BATCH_CHANNELS.with_borrow(Option::is_some) && now_waiting {
            // Within a batch the wake-up waits for its end (`wake_owed_receivers`). Waking
            // early as well, every 64 messages, was slower at both MTUs.
            self.readiness_owed.fetch_or(was_empty, Ordering::Relaxed);
            self.wake_owed.store(true, Ordering::Relaxed);
            return;
        }
        let parked = if now_waiting {
            queue.take_wakers()
        } else {
            Vec::new()
        };
        drop(queue);
        self.wake_receivers(parked, was_empty && now_waiting);
    }

    /// Wakes the threads waiting on the queue, the async receivers `parked` and, if the queue
    /// turned non-empty (`readiness`), the readiness descriptor.
    fn wake_receivers(&self, parked: Vec<std::task::Waker>, readiness: bool) {
        self.arrived.notify_all();
        parked.into_iter().for_each(std::task::Waker::wake);
        if readiness && let Some(readiness) = self.readiness.get() {
            readiness.wake();
        }
    }

    /// At the end of a batch: the wake-up owed for what it queued, if anything.
    fn wake_owed_receivers(&self) {
        if !self.wake_owed.swap(false, Ordering::Relaxed) {
            return;
        }
        let readiness = self.readiness_owed.swap(false, Ordering::Relaxed);
        let parked = self.queue.lock().take_wakers();
        self.wake_receivers(parked, readiness);
    }
}

impl Core {
    /// Receives, decodes and dispatches datagrams until the context closes, whenever no
    /// application thread reads the socket itself.
    pub(super) fn receive_loop(&self) {
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
    pub(super) fn read_as_leader(&self, batch: &mut RecvBatch, deadline: Option<Instant>) -> bool {
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
        let filled = batch.filled();
        if filled {
            self.reading_behind.store(true, Ordering::SeqCst);
        }
        {
            let _wakes = BatchWakes::begin();
            for (meta, datagram) in batch.iter() {
                self.dispatch(meta, datagram, now, false);
            }
        }
        if !filled {
            self.caught_up(now);
        }
    }

    pub(super) fn dispatch(&self, meta: &RecvMeta, datagram: &[u8], now: Instant, via_relay: bool) {
        // Receivers' reports of reliable channels come to this node's address.
        if !meta.destination.is_multicast() && wire::repair::is_repair(datagram) {
            bump(&self.counters.datagrams_received, 1);
            self.dispatch_unicast_repair(datagram, now);
            return;
        }
        let Some(state) = self.by_group.read().get(&meta.destination).cloned() else {
            bump(&self.counters.datagrams_received, 1);
            bump(&self.counters.unknown_group, 1);
            trace!(destination = %meta.destination, "datagram for no channel of this context");
            return;
        };
        bump(&state.counters.datagrams_received, 1);
        BATCH_CHANNELS.with_borrow_mut(|reached| {
            if let Some(reached) = reached
                && !reached.iter().any(|known| Arc::ptr_eq(known, &state))
            {
                reached.push(Arc::clone(&state));
            }
        });
        let repeated = state.repeated_groups.contains(&meta.destination);
        let relayed = via_relay || repeated || Some(meta.destination) == state.relayed_group;
        // An SSM repeater is a relay that re-sends by multicast instead of through a tunnel.
        let path = if via_relay || repeated {
            Path::Relay
        } else if relayed {
            let Some(path) = state.route.get().native_copy_path() else {
                bump(&state.counters.own_dropped, 1);
                return;
            };
            path
        } else {
            Path::Native
        };
        let arrival = Arrival {
            source: meta.source,
            destination: meta.destination,
            interface: meta.interface,
            relayed,
            path,
            via_relay,
        };
        if !self.config.profile.has_header() {
            let seq = state.raw_seq.fetch_add(1, Ordering::Relaxed);
            let interface_name = self.interface_name(arrival.interface);
            let message = message(&arrival, &interface_name, NodeId(0), seq, datagram.to_vec());
            state.enqueue(vec![message], &self.config);
            if via_relay {
                self.lead.queued_elsewhere();
            }
            return;
        }
        if wire::repair::is_repair(datagram) {
            self.dispatch_repair(&state, arrival, datagram, now);
        } else if !state.repair_only.load(Ordering::Acquire) {
            self.accept(&state, &arrival, datagram, now, true);
        }
    }

    /// Opens, decodes and delivers one datagram of the message codec (as received, or a
    /// reliable packet in its turn); `upload` sends it up this segment's tunnel too, where this
    /// node is the gateway and it arrived natively.
    pub(super) fn accept(
        &self,
        state: &ChannelState,
        arrival: &Arrival,
        datagram: &[u8],
        now: Instant,
        upload: bool,
    ) {
        // Own datagrams are recognised before opening: a node need not trust its own signature.
        if wire::decode_header(datagram).is_ok_and(|header| header.sender == self.node) {
            bump(&state.counters.own_dropped, 1);
            return;
        }
        if wire::manifest::is_manifest(datagram) {
            self.accept_manifest(state, arrival, datagram, now, upload);
            return;
        }
        let upload = upload && arrival.path == Path::Native;
        // Relayed copies open like originals: the keys are bound to the canonical group.
        let protection = state.protection.read();
        if protection.needs_cover(datagram) {
            drop(protection);
            self.accept_covered(state, arrival, datagram, now, upload);
            return;
        }
        // The driver thread opens datagram after datagram into one buffer; taken rather than
        // borrowed, so that a nested receive would allocate a buffer of its own, not panic.
        let mut scratch = PLAIN.take();
        let opened = protection
            .open_into(datagram, SystemTime::now(), &mut scratch)
            .map(Cow::Borrowed);
        drop(protection);
        if let Some(plain) = self.opened(state, arrival, opened) {
            self.deliver(state, arrival, &plain, upload.then_some(datagram), now);
        }
        PLAIN.set(scratch);
    }

    /// What `Protection::open` gave, or None with the refusal counted.
    pub(super) fn opened<'a>(
        &self,
        state: &ChannelState,
        arrival: &Arrival,
        opened: Result<Cow<'a, [u8]>, Rejected>,
    ) -> Option<Cow<'a, [u8]>> {
        let (source, group) = (arrival.source, arrival.destination);
        match opened {
            Ok(plain) => Some(plain),
            Err(Rejected::Malformed(err)) => {
                bump(&state.counters.malformed, 1);
                debug!(%source, %group, "dropped a malformed datagram: {err}");
                None
            }
            Err(Rejected::Dropped(reason)) => {
                state.counters.drops.bump(reason);
                debug!(%source, %group, %reason, "dropped a datagram the channel's keys refuse");
                None
            }
        }
    }

    /// Decodes and delivers one opened datagram; sends `upload` (the datagram as it came) up
    /// this segment's tunnel first, where this node is its gateway.
    pub(super) fn deliver(
        &self,
        state: &ChannelState,
        arrival: &Arrival,
        plain: &[u8],
        upload: Option<&[u8]>,
        now: Instant,
    ) {
        let decoded = match wire::decode(plain) {
            Ok(decoded) => decoded,
            Err(err) => {
                bump(&state.counters.malformed, 1);
                debug!(source = %arrival.source, group = %arrival.destination, "dropped a malformed datagram: {err}");
                return;
            }
        };
        if let Some(datagram) = upload {
            self.upload(state, datagram);
        }
        let mut messages = Vec::new();
        let interface_name = self.interface_name(arrival.interface);
        let gaps = {
            let mut inbox = state.inbox.lock();
            inbox.accept(&decoded, now, &mut |delivery| {
                messages.push(message(
                    arrival,
                    &interface_name,
                    delivery.sender,
                    delivery.seq,
                    delivery.payload,
                ));
            });
            inbox.take_gaps()
        };
        for (sender, count) in gaps {
            self.events.push(Event::MessagesLost {
                group: state.group,
                sender,
                count,
            });
        }
        state.enqueue(messages, &self.config);
        if arrival.via_relay {
            self.lead.queued_elsewhere();
        }
    }

    /// The name of interface `index`: from the joined interfaces, or asked of the kernel for
    /// the rare datagram that arrives elsewhere.
    pub(super) fn interface_name(&self, index: u32) -> Arc<str> {
        match self
            .interfaces
            .iter()
            .find(|interface| interface.index == index)
        {
            Some(interface) => Arc::clone(&interface.name),
            None => socket::interface_name(index).unwrap_or_default().into(),
        }
    }
}

fn message(
    arrival: &Arrival,
    interface_name: &Arc<str>,
    sender: NodeId,
    seq: u64,
    payload: Vec<u8>,
) -> Message {
    Message {
        payload,
        source: arrival.source,
        group: arrival.destination,
        interface: arrival.interface,
        interface_name: Arc::clone(interface_name),
        sender,
        seq,
        relayed: arrival.relayed,
        path: arrival.path,
    }
}
