//! Reaching the multicast core where native multicast falls short: probing Stratum 0,
//! opening a tunnel to a relay, failing over to a spare, and going back to native.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use tracing::{debug, info, warn};

use super::{ChannelState, Core, LinkState, MIN_WAIT, RETRY_INTERVAL, RelayLink, Segment};
use crate::{
    addr,
    config::Config,
    discovery,
    error::{Error, ErrorKind, Result},
    events::{CorePath, Event},
    gateway::{self, Gateways},
    probe::{self, ProbeSettings},
    socket::{Interface, McastSocket, RecvBatch, RecvMeta, SocketOptions, Wait, Waker},
    tunnel::{self, Connector, Pinning, Tunnel},
    wire::{
        NodeId,
        control::{self, Control},
    },
};

impl Segment {
    pub(super) fn open(config: &Config, interfaces: &[Interface], node: NodeId) -> Result<Self> {
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
            nudge: Waker::new()?,
        })
    }

    /// Announces `groups` (withdraws them when `hold` is zero) on the gateway group.
    pub(super) fn announce(
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

impl Core {
    /// The channels joined for any source. Takes channel locks: call it before locking the
    /// link state, which joins take while they hold their channel's lock.
    pub(super) fn joined_channels(&self) -> Vec<Arc<ChannelState>> {
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

    /// A channel was joined or left: the gateway election looks again at once.
    pub(super) fn memberships_changed(&self) {
        if let Some(link) = &self.relay_link {
            link.segment.nudge.wake();
        }
    }

    pub(super) fn tunnel_join(&self, groups: &[Ipv6Addr]) {
        let Some(link) = &self.relay_link else { return };
        let mut state = link.state.lock();
        let Some(tunnel) = state.tunnel.as_mut() else {
            return;
        };
        tunnel.join(groups, Instant::now());
        if let Err(err) = tunnel::transmit(tunnel, &link.socket) {
            debug!("joining through the tunnel: {err}");
        }
        if tunnel.is_repeater() {
            self.repeated_membership(tunnel, groups, true);
        }
    }

    pub(super) fn tunnel_leave(&self, groups: &[Ipv6Addr]) {
        let Some(link) = &self.relay_link else { return };
        let mut state = link.state.lock();
        let Some(tunnel) = state.tunnel.as_mut() else {
            return;
        };
        tunnel.leave(groups, Instant::now());
        if let Err(err) = tunnel::transmit(tunnel, &link.socket) {
            debug!("leaving through the tunnel: {err}");
        }
        if tunnel.is_repeater() {
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
                    .leave_source(repeated, *tunnel.relay().ip(), interface);
            }
            tunnel.repeated.remove(&repeated);
        }
    }

    /// Joins (or leaves) the repeated groups of `groups` from the repeater of `tunnel`, on the
    /// context's socket: where the repeater's copies arrive.
    fn repeated_membership(&self, tunnel: &mut Tunnel, groups: &[Ipv6Addr], join: bool) {
        let source = *tunnel.relay().ip();
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
    pub(super) fn reach_loop(&self) {
        let Some(link) = &self.relay_link else { return };
        let mut batch = RecvBatch::new();
        let mut next_attempt = Instant::now();
        while !self.closed.load(Ordering::Acquire) {
            // A failover ends with a tunnel, or with none and a next attempt.
            let failing_over = link.state.lock().failover.is_some();
            if !failing_over && Instant::now() >= next_attempt {
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
            if !failing_over
                && link.tunnel_wanted.swap(false, Ordering::AcqRel)
                && link.state.lock().tunnel.is_none()
                && !self.open_tunnel(link)
            {
                next_attempt = next_attempt.max(Instant::now() + RETRY_INTERVAL);
            }
            // Nothing happens before the next attempt, the tunnel's next keepalive, rebinding
            // step or silence check, or a failover's handshake timeout, but a datagram or a
            // nudge (a tunnel wanted, or the close).
            let due = {
                let state = link.state.lock();
                let tunnel_due = state.tunnel.as_ref().and_then(Tunnel::next_due);
                let failover_due = state
                    .failover
                    .as_ref()
                    .and_then(|(_, connector)| connector.poll_timeout());
                [Some(next_attempt), tunnel_due, failover_due]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(next_attempt)
            };
            let wait = due.saturating_duration_since(Instant::now()).max(MIN_WAIT);
            match link.socket.recv_batch(&mut batch, &link.nudge, Some(wait)) {
                Ok(Wait::Woken) => {
                    link.nudge.reset();
                }
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
            self.fail_over(link);
            self.publish_path(link);
        }
        let mut state = link.state.lock();
        let state = &mut *state;
        if let (Some(tunnel), Some(report)) = (&mut state.tunnel, &state.report)
            && let Some(observed) = report.observed
        {
            tunnel::close(tunnel, &link.socket, observed);
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
    pub(super) fn stratum0(&self, link: &RelayLink) -> Result<SocketAddrV6> {
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
    pub(super) fn attempt(&self, link: &RelayLink) -> Duration {
        let stratum0 = match self.stratum0(link) {
            Ok(stratum0) => stratum0,
            Err(err) => {
                self.attempt_failed(link, &err);
                return RETRY_INTERVAL;
            }
        };
        // No tunnel is open yet, so nothing else arrives on the socket.
        let settings = self.probe_settings(stratum0);
        let report = match probe::probe(&settings, &link.socket, &self.waker, &mut |_, _| {}) {
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
        link.segment.nudge.wake();
        if native || !self.tunnel_needed(link) || self.open_tunnel(link) {
            self.config.probe_interval
        } else {
            RETRY_INTERVAL
        }
    }

    /// Whether this node needs a tunnel of its own, once it has listened for the segment's
    /// gateways: some joined channel, or one sent to lately, has no gateway (or no channel is
    /// joined yet).
    fn tunnel_needed(&self, link: &RelayLink) -> bool {
        // Waits out the listening window; no tunnel is open, so nothing arrives meanwhile that
        // anyone needs.
        let mut batch = RecvBatch::new();
        loop {
            let left = link.segment.gateways.lock().listening_left(Instant::now());
            if left.is_zero() {
                break;
            }
            if let Ok(Wait::Woken) = link.socket.recv_batch(&mut batch, &link.nudge, Some(left)) {
                if self.closed.load(Ordering::Acquire) {
                    return false;
                }
                // A wanted tunnel: the flag stays set for the reach loop.
                link.nudge.reset();
            }
        }
        let channels: Vec<Ipv6Addr> = self
            .joined_channels()
            .iter()
            .map(|state| state.group)
            .collect();
        let sends_to = link.state.lock().sends_only_to(&channels, Instant::now());
        channels.is_empty()
            || link
                .segment
                .gateways
                .lock()
                .plan(&channels, &sends_to, |_| false, false, Instant::now())
                .open_tunnel
    }

    /// The segment's gateway that carries one of `channels` (joined channels) where native
    /// multicast falls short and this node's tunnel does not carry it.
    pub(super) fn serving_gateway(
        &self,
        link: &RelayLink,
        state: &LinkState,
        channels: &[Arc<ChannelState>],
    ) -> Option<SocketAddrV6> {
        if state.report.as_ref().is_none_or(|report| report.native()) {
            return None;
        }
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
    }

    /// Announces the path to the core whenever it changed, once it is known: the probe found
    /// native multicast, a tunnel or gateway carries the channels, or an attempt failed (Stratum
    /// 0 unanswered, no relay).
    pub(super) fn publish_path(&self, link: &RelayLink) {
        let channels = self.joined_channels();
        let mut state = link.state.lock();
        let gateway = self.serving_gateway(link, &state, &channels);
        self.settle_held(link, &mut state);
        let Some(report) = &state.report else {
            // Stratum 0 never answered: the core is out of reach until it does.
            if state.last_error.is_some() {
                drop(state);
                self.events.path(CorePath::Unreachable);
            }
            return;
        };
        let path = match &state.tunnel {
            Some(tunnel) if tunnel.is_repeater() => CorePath::Repeater(tunnel.relay()),
            Some(tunnel) => CorePath::Relay(tunnel.relay()),
            None if report.native() => CorePath::Native,
            None => match gateway {
                Some(gateway) => CorePath::Gateway(gateway),
                // Unreachable once an attempt failed; until then a tunnel may still open.
                None if state.last_error.is_some() => CorePath::Unreachable,
                None => return,
            },
        };
        drop(state);
        self.events.path(path);
    }

    /// What was sent before the path was known (see `held`): up the tunnel once one is open,
    /// else dropped once native multicast, or for a channel the segment's gateway, is known to
    /// carry it.
    fn settle_held(&self, link: &RelayLink, state: &mut LinkState) {
        let native = state.report.as_ref().is_some_and(|report| report.native());
        state.reached_natively = native;
        let LinkState { tunnel, held, .. } = state;
        if let Some(tunnel) = tunnel {
            for datagram in held.take() {
                let bytes = std::slice::from_ref(&datagram.bytes);
                self.send_up(link, tunnel, datagram.relayed, bytes);
            }
        } else if native {
            held.forget(|_| true);
        } else {
            let gateways = link.segment.gateways.lock();
            let now = Instant::now();
            held.forget(|group| gateways.serving(group, now).is_some());
        }
    }

    /// Opens a tunnel to the best relay offered, for the joined channels no gateway serves (the
    /// probe has found native multicast lacking); false if none could be opened.
    pub(super) fn open_tunnel(&self, link: &RelayLink) -> bool {
        let groups = self.unserved_groups(link);
        let network = (self.config.scope, self.interfaces.as_slice());
        let established = self.stratum0(link).and_then(|stratum0| {
            tunnel::establish(
                &link.socket,
                &self.waker,
                stratum0,
                &groups,
                network,
                (self.pinning(link), &link.rejected_relays),
            )
        });
        match established {
            Ok((tunnel, offers)) => {
                let mut state = link.state.lock();
                state.spares = offers
                    .iter()
                    .filter(|offer| offer.address != tunnel.relay())
                    .cloned()
                    .collect();
                state.offers = offers;
                state.tunnel = Some(tunnel);
                state.last_error = None;
                self.settle_held(link, &mut state);
                drop(state);
                // Channels joined while the tunnel was being opened missed it: join them now.
                self.tunnel_join(&self.unserved_groups(link));
                link.segment.nudge.wake();
                true
            }
            Err(err) => {
                self.attempt_failed(link, &err);
                false
            }
        }
    }

    /// What relays must prove to this context: its pinned keys, and the address Stratum 0 saw.
    fn pinning(&self, link: &RelayLink) -> Pinning {
        let seen_as = link
            .state
            .lock()
            .report
            .as_ref()
            .and_then(|report| report.observed)
            .map(|observed| *observed.ip());
        Pinning {
            keys: self.config.relay_keys.clone(),
            issuers: self.config.relay_issuers.clone(),
            group: discovery::relay_group(self.config.scope),
            seen_as,
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
        if let Some(tunnel) = link.state.lock().tunnel.as_mut() {
            tunnel.send_keepalive(Instant::now());
            if let Err(err) = tunnel::transmit(tunnel, &link.socket) {
                debug!("keeping the tunnel up: {err}");
            }
        }
        let Some(stratum0) = link.state.lock().candidates.first().copied() else {
            return RETRY_INTERVAL;
        };
        let probed = probe::probe(
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
                    info!(relay = %tunnel.relay(), "native multicast reaches the core again; closing the tunnel");
                    if let Some(observed) = report.observed {
                        tunnel::close(&mut tunnel, &link.socket, observed);
                    }
                }
                state.report = Some(report);
                link.segment.nudge.wake();
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
        if let Some((_, connector)) = &mut state.failover {
            connector.on_datagram(meta.source, datagram, now, &link.rejected_relays);
            return;
        }
        let Some(tunnel) = state
            .tunnel
            .as_mut()
            .filter(|tunnel| tunnel.relay() == meta.source)
        else {
            return;
        };
        match control::decode(datagram) {
            Ok(Control::Data(control::Data { group, datagram })) => {
                tunnel.data_heard(now);
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
                tunnel.on_control(&message, now, &link.rejected_relays);
                if let Err(err) = tunnel::transmit(tunnel, &link.socket) {
                    debug!("answering the relay: {err}");
                }
            }
            Err(_) => {}
        }
    }

    /// Keeps the tunnel up; when its relay closed it or went silent, gives it up and starts a
    /// failover to the spares.
    fn maintain_tunnel(&self, link: &RelayLink) {
        let (failed, spares) = {
            let mut state = link.state.lock();
            let Some(tunnel) = state.tunnel.as_mut() else {
                return;
            };
            let now = Instant::now();
            let maintained = tunnel
                .maintain(now, &mut discovery::nonce)
                .and_then(|()| tunnel::transmit(tunnel, &link.socket));
            if let Err(err) = maintained {
                debug!("keeping the tunnel up: {err}");
            }
            let Some(why) = tunnel.failure(now) else {
                return;
            };
            warn!(relay = %tunnel.relay(), "{why}; failing over to a spare");
            self.retire(tunnel);
            let failed = tunnel.relay();
            state.tunnel = None;
            link.segment.nudge.wake();
            (failed, std::mem::take(&mut state.spares))
        };
        // Collecting the joined groups takes channel locks that joins hold before the link's.
        let groups = self.unserved_groups(link);
        let connector = Connector::new(spares, &groups, self.config.scope, self.pinning(link));
        link.state.lock().failover = Some((failed, connector));
    }

    /// Moves a failover on: the handshakes with the spares run beside the loop's other work
    /// (channels send natively, or hold what they send, meanwhile). Announces its end.
    fn fail_over(&self, link: &RelayLink) {
        let mut state = link.state.lock();
        let Some((failed, connector)) = &mut state.failover else {
            return;
        };
        let failed = *failed;
        let network = (self.config.scope, self.interfaces.as_slice());
        let ended = tunnel::advance(
            connector,
            &link.socket,
            network,
            &link.rejected_relays,
            Instant::now(),
        );
        match ended {
            None => {}
            Some(Ok((tunnel, untried))) => {
                let to = tunnel.relay();
                state.failover = None;
                state.tunnel = Some(tunnel);
                state.spares = untried;
                // Under the lock: the path published from the new tunnel (by any thread) comes
                // after the failover in the application's events.
                self.events.push(Event::RelayFailover {
                    from: failed,
                    to: Some(to),
                });
                drop(state);
                // Channels joined during the handshake missed it: join them now.
                self.tunnel_join(&self.unserved_groups(link));
                link.segment.nudge.wake();
            }
            Some(Err(err)) => {
                debug!("no spare relay opened a tunnel: {err}");
                state.failover = None;
                self.events.push(Event::RelayFailover {
                    from: failed,
                    to: None,
                });
            }
        }
    }

    /// Whether this node could be its segment's gateway for `channel` (it reaches the core
    /// through a relay link, and the profile has a relayed twin): only then is a datagram worth
    /// keeping for [`upload`](Self::upload).
    pub(super) fn may_upload(&self, channel: &ChannelState) -> bool {
        self.relay_link.is_some() && channel.relayed_group.is_some()
    }

    /// As its segment's gateway for `channel`, sends a datagram a neighbour multicast natively
    /// on the channel's group up the tunnel, where this segment's multicast does not reach the
    /// core. Copies on the relayed twin and what came down the tunnel are never uploaded, so
    /// nothing loops.
    pub(super) fn upload(&self, channel: &ChannelState, datagram: &[u8]) {
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
            && let Err(err) = tunnel::send_data(tunnel, &link.socket, relayed, datagram)
        {
            debug!("uploading for the segment: {err}");
        }
    }
}
