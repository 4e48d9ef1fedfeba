//! The reach thread: the driver of `sixcast_proto::reach::Reach`, the machine that probes
//! Stratum 0, listens for the segment's gateways, asks for relays, opens a tunnel, fails over
//! to a spare and goes back to native. Its one loop also keeps the tunnel, dispatches what comes
//! down it, and takes part in the segment's gateway election (`stratum1.rs`); it sleeps on its
//! sockets until a datagram, a nudge or the earliest deadline.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use sixcast_proto::reach::{Node, Reach, ReachEvent, Spares, Timing, Transmit};
use tracing::{debug, info, warn};

use super::{Core, MIN_WAIT, RETRY_INTERVAL, RelayLink};
use crate::{
    discovery::{self, multicast_control, probe_group, send_control},
    error::{Error, ErrorKind, Result},
    events::Event,
    gateway::Election,
    probe::{self, ProbeReport},
    socket::{self, McastSocket, RecvBatch, Wait},
    tunnel::{self, Pinning, Tunnel},
};

/// What the reach machine asks of the context when it decides, read from the link's state.
struct LinkView<'a> {
    core: &'a Core,
    link: &'a RelayLink,
}

impl Node for LinkView<'_> {
    fn stratum0(&mut self, tunnelled: bool) -> Result<SocketAddrV6> {
        if !tunnelled {
            return self.core.stratum0(self.link);
        }
        // With a tunnel open, the Stratum 0 known: it is not looked for again while it works.
        let state = self.link.state.lock();
        state.candidates.first().copied().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                "no Stratum 0 is known to probe again",
            )
        })
    }

    fn tunnelled(&self) -> bool {
        self.link.state.lock().tunnel.is_some()
    }

    fn listening_left(&self, now: Instant) -> Duration {
        self.link.segment.gateways.lock().listening_left(now)
    }

    fn tunnel_needed(&self, now: Instant) -> bool {
        self.core.tunnel_needed(self.link, now)
    }

    fn take_tunnel_wanted(&mut self) -> bool {
        self.link.tunnel_wanted.swap(false, Ordering::AcqRel)
    }

    fn unserved_groups(&self) -> Vec<Ipv6Addr> {
        self.core.unserved_groups(self.link)
    }

    fn pinning(&self) -> Pinning {
        self.core.pinning(self.link)
    }

    fn nonce(&self) -> Result<u64> {
        discovery::nonce()
    }

    fn rejected_relays(&self) -> &AtomicU64 {
        &self.link.rejected_relays
    }
}

impl Core {
    /// Keeps the path to the core: probes, opens a tunnel where native multicast falls short,
    /// dispatches what comes down it, and fails over to a spare relay when it goes silent.
    pub(super) fn reach_loop(&self) {
        let Some(link) = &self.relay_link else { return };
        let mut batch = RecvBatch::new();
        let timing = Timing {
            probe_within: self.config.probe_timeout,
            probe_interval: self.config.probe_interval,
            retry_interval: RETRY_INTERVAL,
        };
        let start = Instant::now();
        let mut reach = Reach::new(self.config.scope, timing, start);
        // The probe's listener on the probe group, open while a probe is under way.
        let mut listener = None;
        let mut election = Election::new(start);
        while !self.closed.load(Ordering::Acquire) {
            if let Some((failed, spares)) = self.maintain_tunnel(link) {
                // A probe under way gives way; the next attempt starts it again.
                reach.fail_over(failed, spares, &LinkView { core: self, link });
            }
            // Before the machine: the election may want a tunnel at once.
            let election_due = self.election_round(link, &mut election);
            self.drive(link, &mut reach, &mut listener);
            self.publish_path(link);
            let now = Instant::now();
            let tunnel_due = link.state.lock().tunnel.as_ref().and_then(Tunnel::next_due);
            let due = [
                reach.poll_timeout(now, &LinkView { core: self, link }),
                tunnel_due,
                Some(election_due),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(election_due);
            let wait = due.saturating_duration_since(now).max(MIN_WAIT);
            self.wait_and_read(link, &mut reach, listener.as_ref(), &mut batch, wait);
        }
        let mut state = link.state.lock();
        let state = &mut *state;
        if let (Some(tunnel), Some(report)) = (&mut state.tunnel, &state.report)
            && let Some(observed) = report.observed
        {
            tunnel::close(tunnel, &link.socket, observed);
        }
        self.leave_election(link, &election);
    }

    /// Moves the machine on, acting on what happened, and sends what it has due. A datagram
    /// of the probe or relay request that cannot leave fails its step at once.
    fn drive(&self, link: &RelayLink, reach: &mut Reach, listener: &mut Option<McastSocket>) {
        loop {
            let now = Instant::now();
            while let Some(event) = reach.poll(now, &mut LinkView { core: self, link }) {
                self.on_reach_event(link, reach, listener, event);
            }
            if !reach.is_probing() {
                *listener = None;
            }
            let mut failed = false;
            while let Some(transmit) = reach.poll_transmit() {
                let sent = match &transmit {
                    Transmit::ProbeGroup(message) => match listener {
                        Some(listener) => multicast_control(
                            listener,
                            &self.interfaces,
                            message,
                            probe_group(self.config.scope),
                        ),
                        // The listener could not open: the probe already failed.
                        None => Ok(()),
                    },
                    Transmit::To(to, message) => send_control(&link.socket, message, *to),
                };
                if let Err(err) = sent {
                    debug!(?transmit, "{err}");
                    failed |= reach.transmit_failed(err);
                }
            }
            if !failed {
                return;
            }
        }
    }

    fn on_reach_event(
        &self,
        link: &RelayLink,
        reach: &mut Reach,
        listener: &mut Option<McastSocket>,
        event: ReachEvent,
    ) {
        match event {
            ReachEvent::ProbeStarted => {
                let opened =
                    probe::listener(self.config.scope, self.config.hop_limit, &self.interfaces);
                match opened {
                    Ok(opened) => *listener = Some(opened),
                    Err(err) => drop(reach.transmit_failed(err)),
                }
            }
            ReachEvent::Probed(report) => self.probed(link, report),
            ReachEvent::Failed(err) => self.attempt_failed(link, &err),
            ReachEvent::JoinRepeater(repeater) => {
                // Where the join fails, no SSM arrives and the handshake times out.
                let network = (self.config.scope, self.interfaces.as_slice());
                if let Err(err) = tunnel::join_repeater(&link.socket, network, repeater) {
                    debug!(%repeater, "joining the repeater group: {err}");
                }
            }
            ReachEvent::Opened { tunnel, spares } => self.tunnel_opened(link, *tunnel, spares),
            ReachEvent::FailoverFailed { from } => {
                self.events.push(Event::RelayFailover { from, to: None });
            }
        }
    }

    /// Sleeps until a datagram on the link's socket, the gateway group (or the probe's
    /// listener), a nudge (a join, a leave, a first send, or the close) or `wait` has passed,
    /// and hands what came to the machine, the tunnel and the election.
    fn wait_and_read(
        &self,
        link: &RelayLink,
        reach: &mut Reach,
        listener: Option<&McastSocket>,
        batch: &mut RecvBatch,
        wait: Duration,
    ) {
        let announcer = &link.segment.announcer;
        let sockets: Vec<&McastSocket> = [Some(&link.socket), Some(announcer), listener]
            .into_iter()
            .flatten()
            .collect();
        match socket::wait_any(&sockets, &link.nudge, Some(wait)) {
            Ok(Some(Wait::Woken)) => {
                link.nudge.reset();
                return;
            }
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(err) => {
                warn!("{err}");
                // A persistent error must not become a hot loop.
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
        if let Ok(Wait::Received(_)) =
            link.socket
                .recv_batch(batch, &link.nudge, Some(Duration::ZERO))
        {
            let now = Instant::now();
            for (meta, datagram) in batch.iter() {
                if !reach.on_unicast(meta.source, datagram, now, &link.rejected_relays) {
                    self.handle_relay_datagram(link, meta, datagram, now);
                }
            }
        }
        self.hear_gateways(link, batch);
        if let Some(listener) = listener {
            match listener.recv_batch(batch, &link.nudge, Some(Duration::ZERO)) {
                Ok(Wait::Received(_)) => {
                    for (_, datagram) in batch.iter() {
                        reach.on_probe_group(datagram);
                    }
                }
                Ok(_) => {}
                Err(err) => debug!("reading the probe group: {err}"),
            }
        }
    }

    /// Acts on a probe's outcome: with a tunnel open, closes it when native multicast works
    /// both ways again.
    fn probed(&self, link: &RelayLink, report: ProbeReport) {
        let mut state = link.state.lock();
        let tunnelled = state.tunnel.is_some();
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
        if !tunnelled {
            state.last_error = None;
        }
        drop(state);
        link.nudge.wake();
    }

    /// Whether this node needs a tunnel of its own, now that it has listened for the segment's
    /// gateways: some joined channel, or one sent to lately, has no gateway (or no channel is
    /// joined yet).
    fn tunnel_needed(&self, link: &RelayLink, now: Instant) -> bool {
        let channels: Vec<_> = self
            .joined_channels()
            .iter()
            .map(|state| state.group)
            .collect();
        let sends_to = self.sends_only_to(link, &channels, now);
        channels.is_empty()
            || link
                .segment
                .gateways
                .lock()
                .plan(&channels, &sends_to, |_| false, false, now)
                .open_tunnel
    }

    /// Takes a new tunnel into use. After a relay request, every other offer is a spare; after
    /// a failover, the offers not tried are, and the application hears of the failover.
    fn tunnel_opened(&self, link: &RelayLink, tunnel: Tunnel, spares: Spares) {
        let to = tunnel.relay();
        let mut state = link.state.lock();
        let failed = match spares {
            Spares::Offers(offers) => {
                state.spares = offers
                    .iter()
                    .filter(|offer| offer.address != to)
                    .cloned()
                    .collect();
                state.offers = offers;
                None
            }
            Spares::Untried { from, untried } => {
                state.spares = untried;
                Some(from)
            }
        };
        state.tunnel = Some(tunnel);
        state.last_error = None;
        self.settle_held(link, &mut state);
        if let Some(from) = failed {
            // Under the lock: the path published from the new tunnel (by any thread) comes after
            // the failover in the application's events.
            self.events
                .push(Event::RelayFailover { from, to: Some(to) });
        }
        drop(state);
        // Channels joined during the handshake missed it: join them now.
        self.tunnel_join(&self.unserved_groups(link));
        link.nudge.wake();
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

    /// Records why reaching the core failed; the next attempt tries the next Stratum 0
    /// candidate, or finds them again.
    fn attempt_failed(&self, link: &RelayLink, err: &Error) {
        warn!("reaching the multicast core: {err}");
        let mut state = link.state.lock();
        state.last_error = Some(err.to_string());
        if !state.candidates.is_empty() {
            state.candidates.remove(0);
        }
    }
}
