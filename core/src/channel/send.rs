//! Sending: packed datagrams leave in batches, on every interface, at the linger deadline
//! (the flush thread) or at an explicit flush.

use std::{
    net::Ipv6Addr,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use parking_lot::Mutex;
use tracing::{debug, warn};

use super::{ChannelState, Core, Due, Outbox, RelayLink, bump, route::Route};
use crate::{
    addr,
    error::Result,
    socket::Interface,
    tunnel::{self, Tunnel},
};

impl Core {
    /// Applies `apply` on every interface; on the first failure undoes the ones that succeeded.
    pub(super) fn for_each_interface(
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

    /// Seals the ready datagrams of `state` where it has keys, numbers them on a reliable
    /// context, and sends them (see [`send_datagrams`](Self::send_datagrams)).
    pub(super) fn transmit(&self, state: &ChannelState, ready: &mut Vec<Vec<u8>>) -> Result<()> {
        {
            let protection = state.protection.read();
            if protection.protects_sending() {
                // A reliable sender repairs a lost manifest; else a second copy stands in.
                let copies = if self.config.reliable { 1 } else { 2 };
                protection.seal_batch(
                    ready,
                    self.config.packed_datagram_size(),
                    copies,
                    &state.next_manifest,
                )?;
            }
        }
        self.number_packets(state, ready);
        self.send_datagrams(state, ready)
    }

    /// Sends `ready` as they are to `state`'s group on every interface, and up the tunnel where
    /// this node's multicast does not reach the core, and empties `ready`.
    pub(super) fn send_datagrams(
        &self,
        state: &ChannelState,
        ready: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        let result = self.interfaces.iter().try_for_each(|interface| {
            self.socket.send_batch(ready, state.group, interface)?;
            bump(&state.counters.datagrams_sent, ready.len() as u64);
            Ok(())
        });
        if let (Some(link), Some(relayed)) = (&self.relay_link, state.relayed_group) {
            let now = Instant::now();
            link.note_sent(state, now);
            if state.route.get().has(Route::NATIVE_UP) {
                // Native multicast reaches the core: nothing more to send, nor to lock.
                ready.clear();
                return result;
            }
            let mut guard = link.state.lock();
            let link_state = &mut *guard;
            let native_up = link_state
                .report
                .as_ref()
                .is_some_and(|report| report.native_up);
            match (&mut link_state.tunnel, native_up) {
                (Some(tunnel), false) => self.send_up(link, tunnel, relayed, ready),
                // Native multicast may not reach the core and no gateway is known to serve the
                // channel, so a copy waits for the tunnel that may open (see `held`).
                (None, false)
                    if !link_state.reached_natively
                        && link
                            .segment
                            .gateways
                            .lock()
                            .serving(state.group, now)
                            .is_none() =>
                {
                    link_state.held.hold(state.group, relayed, ready);
                }
                _ => {}
            }
        }
        ready.clear();
        result
    }

    /// Sends `datagrams` of the channel whose relayed group is `relayed` towards the core
    /// through `tunnel`: to a repeater by SSM from this node, on the twin's repeated group, or
    /// up a relay's tunnel, which re-sends them on the core to the relayed twin.
    pub(super) fn send_up(
        &self,
        link: &RelayLink,
        tunnel: &mut Tunnel,
        relayed: Ipv6Addr,
        datagrams: &[Vec<u8>],
    ) {
        // A repeater hears this node's SSM on a channel only once asked to (the channel was
        // joined through it); what a node sends without joining goes up by unicast instead.
        if tunnel.is_repeater() && tunnel.carries(relayed) {
            if let Ok(repeated) = addr::repeated_addr(relayed) {
                for interface in &self.interfaces {
                    if let Err(err) = self.socket.send_batch(datagrams, repeated, interface) {
                        debug!("sending to the repeater: {err}");
                    }
                }
            }
            return;
        }
        for datagram in datagrams {
            if let Err(err) = tunnel::send_data(tunnel, &link.socket, relayed, datagram) {
                debug!("sending up the tunnel: {err}");
            }
        }
    }

    pub(super) fn flush_channel(&self, state: &ChannelState) -> Result<()> {
        let mut outbox = state.outbox.lock();
        let outbox = &mut *outbox;
        outbox.packer.flush(&mut outbox.ready);
        self.send_ready(state, outbox, Instant::now())
    }

    /// Sends the complete datagrams waiting in `outbox` (the open one stays open, its wait
    /// starting anew) and notes when, which tells the next datagram whether waiting for a batch
    /// is worth it.
    pub(super) fn send_ready(
        &self,
        state: &ChannelState,
        outbox: &mut Outbox,
        now: Instant,
    ) -> Result<()> {
        outbox.opened_at = None;
        if outbox.ready.is_empty() {
            return Ok(());
        }
        outbox.sent_at = Some(now);
        self.transmit(state, &mut outbox.ready)
    }

    pub(super) fn flush_all(&self) {
        let states: Vec<_> = self.by_name.lock().values().cloned().collect();
        for state in states {
            if let Err(err) = self.flush_channel(&state) {
                warn!(group = %state.group, "sending packed messages at close failed: {err}");
            }
        }
    }

    pub(super) fn schedule_flush(&self, deadline: Instant, state: &Arc<ChannelState>) {
        self.schedule(deadline, state, Due::Flush);
    }

    /// Has the flush thread do `due` for `state` at `next` (`timer` holding when it is queued
    /// for), unless an entry already comes sooner.
    pub(super) fn arm_timer(
        &self,
        state: &ChannelState,
        timer: &Mutex<Option<Instant>>,
        next: Option<Instant>,
        due: Due,
    ) {
        let Some(next) = next else {
            return;
        };
        {
            let mut timer = timer.lock();
            if timer.is_some_and(|at| at <= next) {
                return;
            }
            *timer = Some(next);
        }
        let shared = self.by_group.read().get(&state.group).cloned();
        if let Some(shared) = shared {
            self.schedule(next, &shared, due);
        }
    }

    /// Has the flush thread do `due` for `state` at `deadline`.
    pub(super) fn schedule(&self, deadline: Instant, state: &Arc<ChannelState>, due: Due) {
        let mut queue = self.flush_queue.lock();
        // In deadline order (a re-queued entry may precede others); almost always at the back.
        let at = queue.partition_point(|(queued, _, _)| *queued <= deadline);
        queue.insert(at, (deadline, Arc::clone(state), due));
        // The flusher sleeps until the front deadline: wake it only when that changed.
        if at == 0 {
            self.flush_wanted.notify_one();
        }
    }

    /// Sends partly filled datagrams once they have lingered long enough, runs the repair
    /// timers of reliable channels, and gives up covered datagrams no manifest vouched for.
    pub(super) fn flush_loop(&self) {
        loop {
            let due = {
                let mut queue = self.flush_queue.lock();
                loop {
                    if self.closed.load(Ordering::Acquire) {
                        return;
                    }
                    match queue.front() {
                        Some(&(deadline, _, _)) if deadline <= Instant::now() => {
                            break queue.pop_front();
                        }
                        Some(&(deadline, _, _)) => {
                            self.flush_wanted.wait_until(&mut queue, deadline);
                        }
                        None => self.flush_wanted.wait(&mut queue),
                    }
                }
            };
            let Some((_, state, due)) = due else { continue };
            match due {
                Due::Repair => {
                    self.drive_repair(&state, Instant::now());
                    continue;
                }
                Due::Cover => {
                    self.expire_covers(&state, Instant::now());
                    continue;
                }
                Due::Flush => {}
            }
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
}
