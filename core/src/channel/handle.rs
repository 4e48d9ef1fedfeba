//! [`Channel`]: the application's side of one channel: membership, sending, receiving,
//! counters and keys.

use std::{
    fmt,
    net::Ipv6Addr,
    os::fd::RawFd,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use parking_lot::MutexGuard;
use tracing::debug;

use super::{Channel, Membership, Message, SEND_BATCH, Stats, bump, queue::Inbound};
use crate::{
    crypto::{ChannelKey, KeyId, Protection, PublicKey, SigningKey, Token},
    error::{Error, ErrorKind, Result},
    lead::Turn,
    socket::Waker,
    wire::{self, SenderLoss},
};

impl Channel {
    /// The channel's name.
    pub fn name(&self) -> &[u8] {
        &self.state.name
    }

    /// The group address original traffic of this channel is sent to.
    pub fn group(&self) -> Ipv6Addr {
        self.state.group
    }

    /// The largest message that travels whole in one datagram of this channel, after what its
    /// keys add: longer ones are fragmented. File transfers size their chunks by it.
    pub fn max_whole_message(&self) -> usize {
        self.state.outbox.lock().packer.largest_whole()
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
            // Joined already, perhaps only for NACKs: from now on for the messages too.
            membership.for_repair = false;
            self.state.repair_only.store(false, Ordering::Release);
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
        core.memberships_changed();
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
        // While the path to the senders is still there.
        core.leave_streams(&self.state);
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
        self.state.repair_only.store(false, Ordering::Release);
        core.memberships_changed();
        first_error.map_or(Ok(()), Err)
    }

    /// Joins the group only so that receivers' NACKs reach this reliable sender; messages of
    /// others are not queued until the application joins.
    pub(super) fn join_for_repair(&self) -> Result<()> {
        self.join()?;
        self.state.membership.lock().for_repair = true;
        self.state.repair_only.store(true, Ordering::Release);
        Ok(())
    }

    /// Queues `payload` for the channel. Small messages are packed together (unless
    /// [`Config::packing`](crate::Config::packing) is off) and large ones fragmented. Datagrams
    /// leave in batches, one system call each, within [`Config::linger`](crate::Config::linger)
    /// or at [`flush`](Self::flush); after a linger without sending, the next complete datagram
    /// leaves at once. With a send rate configured
    /// ([`Config::send_rate_messages`](crate::Config::send_rate_messages), `send_rate_bytes`),
    /// `send` first waits for its turn; on a [reliable](crate::Config::reliable) channel it
    /// also waits while the flow window is closed (a receiver is too far behind). The channel
    /// need not be joined to send to it, also through a relay.
    pub fn send(&self, payload: &[u8]) -> Result<()> {
        self.send_by(payload, None)
    }

    /// As [`send`](Self::send), but waits at most `timeout` for the pacer's turn and the flow
    /// window; fails with [`ErrorKind::Timeout`], queueing nothing, if either comes later
    /// (ZeroMQ's send timeout). A zero timeout never waits: see [`try_send`](Self::try_send).
    pub fn send_timeout(&self, payload: &[u8], timeout: Duration) -> Result<()> {
        // A timeout too far ahead to represent is no timeout.
        self.send_by(payload, Instant::now().checked_add(timeout))
    }

    /// Sends without waiting: fails with [`ErrorKind::Timeout`], queueing nothing, when the
    /// pacer or the flow window of a reliable channel would make [`send`](Self::send) wait
    /// (ZeroMQ's `DONTWAIT`).
    pub fn try_send(&self, payload: &[u8]) -> Result<()> {
        self.send_timeout(payload, Duration::ZERO)
    }

    fn send_by(&self, payload: &[u8], deadline: Option<Instant>) -> Result<()> {
        let core = &self.shared.core;
        core.check_open()?;
        // The window first: it reserves nothing, so a refusal leaves the pacer's schedule as
        // it was.
        if core.config.profile.has_header() {
            core.wait_for_window(&self.state, deadline)?;
        }
        // Paced before the outbox's lock is taken; a message too large to send is refused
        // unpaced below.
        if let Some(pacer) = &core.pacer
            && payload.len() <= core.config.max_message_size
        {
            let turn = pacer
                .lock()
                .reserve_by(payload.len(), Instant::now(), deadline);
            let Some(wait) = turn else {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "the send rate's next turn comes after the send timeout; nothing was queued",
                ));
            };
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
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
        let taken = self.state.queue.lock().pop_front();
        if let Some(message) = taken {
            self.taken();
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
            drop(queue);
            self.taken();
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
        let taken = queue.pop_front();
        drop(queue);
        let message = taken.ok_or_else(|| {
            Error::new(
                ErrorKind::Timeout,
                format!("no message arrived on {} in time", self.state.group),
            )
        })?;
        self.taken();
        Ok(message)
    }

    /// After a message was taken: a reliable channel held back because the queue filled may
    /// go on.
    pub(super) fn taken(&self) {
        // After the take (which locked and unlocked the queue): see `Core::hand_on`.
        if self.state.held.load(Ordering::SeqCst) {
            self.shared.core.release_if_drained(&self.state);
        }
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

    /// Loss per sender: every sender this channel tracks now (up to 4,096, the least recently
    /// heard forgotten first), by node id, with its messages never heard. Their sum is [`Stats::lost`] less the losses of
    /// senders forgotten since.
    pub fn sender_losses(&self) -> Vec<SenderLoss> {
        self.state.inbox.lock().sender_losses()
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
        outbox.batch_len = next
            .chain_len(core.config.packed_datagram_size())
            .max(SEND_BATCH);
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
