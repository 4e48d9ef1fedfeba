//! Reliable channels in the driver: numbered packets leave through `transmit`, repair datagrams
//! arrive through `dispatch`, and the flush thread runs the repair timers. The protocol itself
//! is in `crate::reliable`, without I/O.

use std::{
    net::SocketAddrV6,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use tracing::{debug, warn};

use super::{Arrival, ChannelState, Core, Due, Path, bump};
use crate::{
    crypto::{CONTROL_TAG_LEN, Protection},
    reliable::{Ready, RepairReceiver},
    wire::repair::{self, Repair},
};

impl Core {
    /// Handles a SEQUENCED, PARITY or NACK datagram of `state`'s group.
    pub(super) fn dispatch_repair(
        &self,
        state: &ChannelState,
        arrival: Arrival,
        datagram: &[u8],
        now: Instant,
    ) {
        // A sealed channel's NACKs and reports carry the MAC of a channel key: checked and
        // removed here, so that nobody without the key makes senders repair, wait or forget.
        let message = if repair::is_control(datagram) {
            match state.protection.read().check_control(datagram) {
                Ok(message) => message,
                Err(reason) => {
                    state.counters.drops.bump(reason);
                    debug!(source = %arrival.source, %reason, "dropped an unauthenticated NACK or report");
                    return;
                }
            }
        } else {
            datagram
        };
        let decoded = match repair::decode(message) {
            Ok(decoded) => decoded,
            Err(err) => {
                bump(&state.counters.malformed, 1);
                debug!(source = %arrival.source, "dropped a malformed repair datagram: {err}");
                return;
            }
        };
        let sender = match &decoded {
            Repair::Sequenced(packet) => packet.sender,
            Repair::Parity(parity) => parity.sender,
            Repair::Nack(nack) => nack.from,
            Repair::Status(status) => status.from,
        };
        if sender == self.node {
            bump(&state.counters.own_dropped, 1);
            return;
        }
        if arrival.path == Path::Native {
            self.upload(state, datagram);
        }
        // Joined for the NACKs alone: nothing else here is for this node.
        let for_this_sender = match &decoded {
            Repair::Nack(nack) => nack.target == self.node,
            Repair::Status(status) => status.target == self.node,
            _ => false,
        };
        if !for_this_sender && state.repair_only.load(Ordering::Acquire) {
            return;
        }
        let (mut receiver, ready) = match decoded {
            Repair::Nack(nack) if nack.target == self.node => {
                if let Some(sender) = &state.repair_sender {
                    let next = {
                        let mut sender = sender.lock();
                        sender.on_nack(&nack, now);
                        sender.poll_timeout()
                    };
                    self.arm_repair_timer(state, next);
                }
                return;
            }
            Repair::Nack(nack) => {
                state.repair_receiver.lock().on_nack(&nack, now);
                return;
            }
            Repair::Status(status) => {
                self.take_status(state, &status, now);
                return;
            }
            // The receiver stays locked until what it hands on is delivered (or put back), so
            // that no other thread's packets of the channel pass them.
            Repair::Sequenced(packet) => {
                let mut receiver = state.repair_receiver.lock();
                let ready = receiver.on_sequenced(&packet, arrival, now);
                (receiver, ready)
            }
            Repair::Parity(parity) => {
                let mut receiver = state.repair_receiver.lock();
                let ready = receiver.on_parity(&parity, arrival, now);
                (receiver, ready)
            }
        };
        let next = self.hand_on(state, &mut receiver, ready, now);
        drop(receiver);
        self.arm_repair_timer(state, next);
    }

    /// Delivers the packets `receiver` (locked by the caller) handed on while the application's
    /// queue has room; over half full, the rest go back and the receiver holds. Returns when
    /// the repair timers are due next.
    fn hand_on(
        &self,
        state: &ChannelState,
        receiver: &mut RepairReceiver<Arrival>,
        ready: Vec<Ready<Arrival>>,
        now: Instant,
    ) -> Option<Instant> {
        let (capacity, bytes) = (self.config.queue_capacity, self.config.queue_bytes);
        let mut ready = ready;
        loop {
            let mut handing = ready.into_iter();
            for handed in handing.by_ref() {
                self.accept(state, &handed.tag, &handed.datagram, now, false);
                if state.queue.lock().fuller_than(2, capacity, bytes) {
                    break;
                }
            }
            let unused: Vec<_> = handing.collect();
            if unused.is_empty() && !state.queue.lock().fuller_than(2, capacity, bytes) {
                break;
            }
            receiver.put_back(unused);
            // Held first, then a look at the queue: an application that took it down to a
            // quarter before it saw `held` would never release it.
            state.held.store(true, Ordering::SeqCst);
            if state.queue.lock().fuller_than(4, capacity, bytes) {
                break;
            }
            state.held.store(false, Ordering::SeqCst);
            ready = receiver.release(now);
        }
        receiver.poll_timeout()
    }

    /// After the application took a message: once a held channel's queue is down to a quarter,
    /// hands on what waited (on the application's thread).
    pub(super) fn release_if_drained(&self, state: &ChannelState) {
        let mut receiver = state.repair_receiver.lock();
        let (capacity, bytes) = (self.config.queue_capacity, self.config.queue_bytes);
        if !state.held.load(Ordering::SeqCst) || state.queue.lock().fuller_than(4, capacity, bytes)
        {
            return;
        }
        state.held.store(false, Ordering::SeqCst);
        let now = Instant::now();
        let ready = receiver.release(now);
        let next = self.hand_on(state, &mut receiver, ready, now);
        drop(receiver);
        self.arm_repair_timer(state, next);
    }

    /// A receiver's report, sent to this node's address: for the channel it names.
    pub(super) fn dispatch_unicast_repair(&self, datagram: &[u8], now: Instant) {
        // A sealed channel's report ends in a MAC: the channel it names is read from the message
        // before it, and the MAC checked with that channel's keys.
        let named = repair::decode(datagram).ok().or_else(|| {
            let message = datagram.get(..datagram.len().checked_sub(CONTROL_TAG_LEN)?)?;
            repair::decode(message).ok()
        });
        let Some(Repair::Status(named)) = named
            .filter(|named| matches!(named, Repair::Status(status) if status.target == self.node))
        else {
            // Nothing else of the repair layer is sent to an address.
            bump(&self.counters.malformed, 1);
            return;
        };
        let Some(state) = self.by_group.read().get(&named.group).cloned() else {
            return;
        };
        let checked = state.protection.read().check_control(datagram);
        match checked.map(repair::decode) {
            Ok(Ok(Repair::Status(status))) => self.take_status(&state, &status, now),
            Ok(_) => bump(&state.counters.malformed, 1),
            Err(reason) => {
                state.counters.drops.bump(reason);
                debug!(%reason, "dropped an unauthenticated report");
            }
        }
    }

    fn take_status(&self, state: &ChannelState, status: &repair::Status, now: Instant) {
        if let Some(sender) = &state.repair_sender {
            sender.lock().on_status(status, now);
            state.window_opened.notify_all();
        }
    }

    /// Waits until the flow window of a reliable channel lets `send` go on: the slowest
    /// receiver is close enough, or was given up for making no progress. Fails with
    /// [`ErrorKind::Timeout`](crate::ErrorKind::Timeout) if it is still closed at `deadline`.
    pub(super) fn wait_for_window(
        &self,
        state: &ChannelState,
        deadline: Option<Instant>,
    ) -> crate::Result<()> {
        let Some(sender) = &state.repair_sender else {
            return Ok(());
        };
        let mut sender = sender.lock();
        loop {
            self.check_open()?;
            let now = Instant::now();
            match sender.window(now) {
                Ok(()) => return Ok(()),
                Err(_) if deadline.is_some_and(|deadline| now >= deadline) => {
                    return Err(crate::Error::new(
                        crate::ErrorKind::Timeout,
                        "the flow window stayed closed (a receiver is behind) until the send \
                         timeout; nothing was queued",
                    ));
                }
                Err(until) => {
                    let until = deadline.map_or(until, |deadline| until.min(deadline));
                    state.window_opened.wait_until(&mut sender, until);
                }
            }
        }
    }

    /// Numbers the sealed datagrams in `ready` as packets of a reliable channel.
    pub(super) fn number_packets(&self, state: &ChannelState, ready: &mut [Vec<u8>]) {
        let Some(sender) = &state.repair_sender else {
            return;
        };
        let now = Instant::now();
        let next = {
            let mut sender = sender.lock();
            for datagram in ready.iter_mut() {
                *datagram = sender.wrap(std::mem::take(datagram), now);
            }
            sender.poll_timeout()
        };
        self.arm_repair_timer(state, next);
    }

    /// Has the flush thread look at `state`'s repair timers at `next`, unless it will sooner.
    fn arm_repair_timer(&self, state: &ChannelState, next: Option<Instant>) {
        self.arm_timer(state, &state.repair_timer, next, Due::Repair);
    }

    /// Reading has caught up with what arrived: the NACKs held meanwhile may go.
    pub(super) fn caught_up(&self, now: Instant) {
        self.reading_behind.store(false, Ordering::SeqCst);
        if !self.nacks_held.swap(false, Ordering::SeqCst) {
            return;
        }
        let states: Vec<_> = self.by_group.read().values().cloned().collect();
        for state in states {
            if state.nacks_held.swap(false, Ordering::SeqCst) {
                self.arm_repair_timer(&state, Some(now));
            }
        }
    }

    /// The repair timers' turn: sends due NACKs and repairs, hands on what waited behind holes
    /// given up, and arms the next timer.
    pub(super) fn drive_repair(&self, state: &Arc<ChannelState>, now: Instant) {
        *state.repair_timer.lock() = None;
        let mut out = Vec::new();
        let mut next = None;
        if let Some(sender) = &state.repair_sender {
            let mut sender = sender.lock();
            while let Some(datagram) = sender.poll_transmit(now) {
                out.push(datagram);
            }
            next = sender.poll_timeout();
        }
        let mut reports = Vec::new();
        {
            let mut receiver = state.repair_receiver.lock();
            let mut behind = self.reading_behind.load(Ordering::SeqCst);
            // Datagrams wait unread (the receive thread waits for a core): another receiver's
            // NACK among them would hold this one's back, so read them before asking. Under
            // loss to 16 receivers on two cores this cut their NACKs by a tenth to a third.
            if !behind && receiver.has_holes() && self.socket.has_unread() {
                self.reading_behind.store(true, Ordering::SeqCst);
                behind = true;
            }
            if behind {
                state.nacks_held.store(true, Ordering::SeqCst);
                self.nacks_held.store(true, Ordering::SeqCst);
                // Reading may have caught up before it could see the flags.
                behind = self.reading_behind.load(Ordering::SeqCst);
            }
            receiver.set_behind(behind, now);
            let expired = receiver.poll_expired(now);
            let handed_next = self.hand_on(state, &mut receiver, expired, now);
            next = next.into_iter().chain(handed_next).min();
            route_receiver_output(
                &mut receiver,
                &state.protection.read(),
                now,
                &mut out,
                &mut reports,
            );
            next = next.into_iter().chain(receiver.poll_timeout()).min();
        }
        self.send_repair_output(state, out, reports);
        self.arm_repair_timer(state, next);
    }

    /// Tells the senders `state`'s receiver reported to that it left the channel, so that none
    /// waits for it.
    pub(super) fn leave_streams(&self, state: &ChannelState) {
        let (mut out, mut reports) = (Vec::new(), Vec::new());
        {
            let mut receiver = state.repair_receiver.lock();
            receiver.leave();
            let protection = state.protection.read();
            route_receiver_output(
                &mut receiver,
                &protection,
                Instant::now(),
                &mut out,
                &mut reports,
            );
        }
        self.send_repair_output(state, out, reports);
    }

    /// Sends `out` to `state`'s group (and tunnels), and each report to its sender.
    fn send_repair_output(
        &self,
        state: &ChannelState,
        mut out: Vec<Vec<u8>>,
        reports: Vec<(Vec<u8>, SocketAddrV6)>,
    ) {
        if !out.is_empty()
            && let Err(err) = self.send_datagrams(state, &mut out)
        {
            warn!(group = %state.group, "sending repairs or NACKs failed: {err}");
        }
        for (report, sender) in reports {
            if let Err(err) = self.socket.send_to(&report, sender) {
                debug!(%sender, "reporting progress failed: {err}");
            }
        }
    }

    /// Before a reliable context closes: keeps answering NACKs while its channels owe repairs
    /// (see `RepairSender::busy_until`: a receiver behind is waited for while it moves), for at
    /// most [`CLOSE_LINGER`].
    pub(super) fn settle_repairs(&self) {
        let states: Vec<_> = self.by_name.lock().values().cloned().collect();
        let deadline = Instant::now() + CLOSE_LINGER;
        for state in states {
            let Some(sender) = &state.repair_sender else {
                continue;
            };
            let mut sender = sender.lock();
            // Woken by each receiver's report; otherwise at the next thing to look at.
            while let Some(until) = sender.busy_until(Instant::now()) {
                if Instant::now() >= deadline {
                    return;
                }
                state
                    .window_opened
                    .wait_until(&mut sender, until.min(deadline));
            }
        }
    }
}

/// Takes what `receiver` has to send by `now`: NACKs into `out` (for the group) and reports
/// into `reports`, each with the MAC of the channel's send key if it has one.
fn route_receiver_output(
    receiver: &mut RepairReceiver<Arrival>,
    protection: &Protection,
    now: Instant,
    out: &mut Vec<Vec<u8>>,
    reports: &mut Vec<(Vec<u8>, SocketAddrV6)>,
) {
    while let Some((mut datagram, to)) = receiver.poll_transmit(now) {
        protection.tag_control(&mut datagram);
        match to {
            // Straight back to a sender heard natively; through the group (and so the tunnel)
            // to one heard through a relay, whose address is the relay's.
            Some(arrival) if arrival.path == Path::Native && !arrival.via_relay => {
                reports.push((datagram, arrival.source));
            }
            _ => out.push(datagram),
        }
    }
}

/// The longest a closing reliable context waits for receivers still catching up: the repair
/// window (16 MiB by default) at a few megabits a second.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(30);
