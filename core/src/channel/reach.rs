//! The reach thread: probing Stratum 0, listening for the segment's gateways, asking for relays,
//! opening a tunnel, failing over to a spare, and going back to native. Each of these is a
//! step that the thread's one loop moves on while it also keeps the tunnel, dispatches what
//! comes down it, and takes part in the segment's gateway election (`stratum1.rs`); the loop
//! sleeps on its sockets until a datagram, a nudge or the earliest deadline, and no step blocks
//! it.

use std::{
    mem,
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use sixcast_proto::relay_request::RelayRequest;
use tracing::{debug, info, warn};

use super::{Core, MIN_WAIT, RETRY_INTERVAL, RelayLink, stratum1::Election};
use crate::{
    discovery::{self, send_control},
    error::{Error, ErrorKind, Result},
    events::Event,
    probe::{ProbeReport, ProbeRun, ProbeSettings},
    socket::{self, McastSocket, RecvBatch, RecvMeta, Wait},
    tunnel::{self, Connector, Pinning, RelayOffer, Tunnel},
};

/// What the reach thread is doing, besides keeping the tunnel it has.
enum Step {
    /// Nothing until the next attempt.
    Waiting,
    /// Probing Stratum 0: an attempt to reach the core, or with a tunnel open, a look whether
    /// native multicast works again.
    Probing(ProbeRun),
    /// Listening for the segment's gateways, one of which may make a tunnel needless.
    Listening,
    /// Asking Stratum 0 for relays, for a tunnel that will join `groups`: the channels no
    /// gateway served when the node found it needed a tunnel. They are taken then, not when the
    /// offers come, so that neighbours who decided together all carry their channels and the
    /// election settles on the lowest node id, rather than on whose tunnel opened first.
    Requesting {
        request: RelayRequest,
        groups: Vec<Ipv6Addr>,
    },
    /// Handshaking with the offered relays: every offer of a request (`offers`), or the spares
    /// when the tunnel to `failed` was given up.
    Connecting {
        // Boxed: it is large beside the other steps.
        connector: Box<Connector>,
        offers: Option<Vec<RelayOffer>>,
        failed: Option<SocketAddrV6>,
    },
}

impl Step {
    /// When the step next has something to do if nothing arrives meanwhile.
    fn due(&self, link: &RelayLink, next_attempt: Instant, now: Instant) -> Option<Instant> {
        match self {
            Self::Waiting => Some(next_attempt),
            Self::Probing(run) => Some(run.poll_timeout()),
            Self::Listening => Some(now + link.segment.gateways.lock().listening_left(now)),
            Self::Requesting { request, .. } => Some(request.poll_timeout()),
            Self::Connecting { connector, .. } => connector.poll_timeout(),
        }
    }
}

impl Core {
    /// Keeps the path to the core: probes, opens a tunnel where native multicast falls short,
    /// dispatches what comes down it, and fails over to a spare relay when it goes silent.
    pub(super) fn reach_loop(&self) {
        let Some(link) = &self.relay_link else { return };
        let mut batch = RecvBatch::new();
        let mut step = Step::Waiting;
        let mut next_attempt = Instant::now();
        let mut election = Election::new(next_attempt);
        while !self.closed.load(Ordering::Acquire) {
            if let Some((failed, spares)) = self.maintain_tunnel(link) {
                // A probe under way gives way; the next attempt starts it again.
                let groups = self.unserved_groups(link);
                let connector = Box::new(Connector::new(
                    spares,
                    &groups,
                    self.config.scope,
                    self.pinning(link),
                ));
                step = Step::Connecting {
                    connector,
                    offers: None,
                    failed: Some(failed),
                };
            }
            // Before the steps: the election may want a tunnel at once.
            let election_due = self.election_round(link, &mut election);
            // A step that begins sends at once: move on until the step stays the same.
            loop {
                let before = mem::discriminant(&step);
                step = self.advance(link, step, &mut next_attempt, Instant::now());
                if mem::discriminant(&step) == before {
                    break;
                }
            }
            self.publish_path(link);
            let now = Instant::now();
            let tunnel_due = link.state.lock().tunnel.as_ref().and_then(Tunnel::next_due);
            let due = [
                step.due(link, next_attempt, now),
                tunnel_due,
                Some(election_due),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(next_attempt);
            let wait = due.saturating_duration_since(now).max(MIN_WAIT);
            self.wait_and_read(link, &mut step, &mut batch, wait);
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

    /// Sleeps until a datagram on the link's socket, the gateway group (or the probe's
    /// listener), a nudge (a join, a leave, a first send, or the close) or `wait` has passed,
    /// and hands what came to the step, the tunnel and the election.
    fn wait_and_read(
        &self,
        link: &RelayLink,
        step: &mut Step,
        batch: &mut RecvBatch,
        wait: Duration,
    ) {
        let listener = match step {
            Step::Probing(run) => Some(run.listener()),
            _ => None,
        };
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
                if !Self::step_takes(link, step, meta, datagram, now) {
                    self.handle_relay_datagram(link, meta, datagram, now);
                }
            }
        }
        self.hear_gateways(link, batch);
        if let Step::Probing(run) = step
            && let Err(err) = run.read_probe_group(batch, &link.nudge)
        {
            debug!("reading the probe group: {err}");
        }
    }

    /// Gives a datagram that came to the link's socket to the step under way: true when it was
    /// the step's (Stratum 0's answer to a probe); relays' answers also go on to the tunnel.
    fn step_takes(
        link: &RelayLink,
        step: &mut Step,
        meta: &RecvMeta,
        datagram: &[u8],
        now: Instant,
    ) -> bool {
        match step {
            Step::Probing(run) => run.on_unicast(meta.source, datagram, now),
            Step::Requesting { request, .. } => {
                request.on_datagram(meta.source, datagram, now);
                false
            }
            Step::Connecting { connector, .. } => {
                connector.on_datagram(meta.source, datagram, now, &link.rejected_relays);
                false
            }
            Step::Waiting | Step::Listening => false,
        }
    }

    /// Moves `step` on at `now`, sending what it has due, and returns the next step.
    fn advance(
        &self,
        link: &RelayLink,
        step: Step,
        next_attempt: &mut Instant,
        now: Instant,
    ) -> Step {
        match step {
            Step::Waiting => {
                let tunnelled = link.state.lock().tunnel.is_some();
                if now >= *next_attempt {
                    self.start_probe(link, tunnelled, next_attempt, now)
                } else if link.tunnel_wanted.swap(false, Ordering::AcqRel) && !tunnelled {
                    // The segment's gateway left (or never served a channel joined since): take
                    // over at once, on the probe's standing verdict.
                    self.start_request(link, next_attempt, now)
                } else {
                    Step::Waiting
                }
            }
            Step::Probing(mut run) => {
                let outcome = match run.transmit(&link.socket, now) {
                    Ok(()) => run.outcome(now),
                    Err(err) => Some(Err(err)),
                };
                match outcome {
                    None => Step::Probing(run),
                    Some(outcome) => self.probed(link, outcome, next_attempt, now),
                }
            }
            Step::Listening => {
                if !link.segment.gateways.lock().listening_left(now).is_zero() {
                    Step::Listening
                } else if self.tunnel_needed(link, now) {
                    self.start_request(link, next_attempt, now)
                } else {
                    *next_attempt = now + self.config.probe_interval;
                    Step::Waiting
                }
            }
            Step::Requesting {
                mut request,
                groups,
            } => {
                let mut outcome = None;
                while let Some(message) = request.poll_transmit() {
                    if let Err(err) = send_control(&link.socket, &message, request.stratum0()) {
                        outcome = Some(Err(err));
                    }
                }
                match outcome.or_else(|| request.outcome(now)) {
                    None => Step::Requesting { request, groups },
                    Some(Ok(offers)) => {
                        let connector = Box::new(Connector::new(
                            offers.clone(),
                            &groups,
                            self.config.scope,
                            self.pinning(link),
                        ));
                        Step::Connecting {
                            connector,
                            offers: Some(offers),
                            failed: None,
                        }
                    }
                    Some(Err(err)) => self.attempt_failed(link, &err, next_attempt, now),
                }
            }
            Step::Connecting {
                mut connector,
                offers,
                failed,
            } => {
                let network = (self.config.scope, self.interfaces.as_slice());
                let rejected = &link.rejected_relays;
                match tunnel::advance(&mut connector, &link.socket, network, rejected, now) {
                    None => Step::Connecting {
                        connector,
                        offers,
                        failed,
                    },
                    Some(Ok((tunnel, untried))) => {
                        if offers.is_some() {
                            *next_attempt = now + self.config.probe_interval;
                        }
                        self.tunnel_opened(link, tunnel, offers.ok_or(untried), failed);
                        Step::Waiting
                    }
                    Some(Err(err)) => match failed {
                        Some(from) => {
                            debug!("no spare relay opened a tunnel: {err}");
                            self.events.push(Event::RelayFailover { from, to: None });
                            Step::Waiting
                        }
                        None => self.attempt_failed(link, &err, next_attempt, now),
                    },
                }
            }
        }
    }

    /// Starts a probe of the Stratum 0 in use: with a tunnel open, of the one known (it is not
    /// looked for again while the tunnel works).
    fn start_probe(
        &self,
        link: &RelayLink,
        tunnelled: bool,
        next_attempt: &mut Instant,
        now: Instant,
    ) -> Step {
        let stratum0 = if tunnelled {
            link.state
                .lock()
                .candidates
                .first()
                .copied()
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::InvalidConfig,
                        "no Stratum 0 is known to probe again",
                    )
                })
        } else {
            self.stratum0(link)
        };
        match stratum0.and_then(|stratum0| ProbeRun::start(self.probe_settings(stratum0), now)) {
            Ok(run) => Step::Probing(run),
            Err(err) if tunnelled => {
                debug!("probing again: {err}");
                *next_attempt = now + RETRY_INTERVAL;
                Step::Waiting
            }
            Err(err) => self.attempt_failed(link, &err, next_attempt, now),
        }
    }

    /// Acts on a probe's outcome. With a tunnel open, closes it when native multicast works both
    /// ways again (a failed probe leaves it as it is: Stratum 0 may be briefly unreachable).
    /// Without one, where native multicast falls short, listens for the segment's gateways next.
    fn probed(
        &self,
        link: &RelayLink,
        outcome: Result<ProbeReport>,
        next_attempt: &mut Instant,
        now: Instant,
    ) -> Step {
        let mut state = link.state.lock();
        let tunnelled = state.tunnel.is_some();
        let report = match outcome {
            Ok(report) => report,
            Err(err) if tunnelled => {
                debug!("probing again: {err}");
                *next_attempt = now + self.config.probe_interval;
                return Step::Waiting;
            }
            Err(err) => {
                drop(state);
                return self.attempt_failed(link, &err, next_attempt, now);
            }
        };
        let native = report.native();
        if native && let Some(mut tunnel) = state.tunnel.take() {
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
        if native || tunnelled {
            *next_attempt = now + self.config.probe_interval;
            Step::Waiting
        } else {
            Step::Listening
        }
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
        let sends_to = link.state.lock().sends_only_to(&channels, now);
        channels.is_empty()
            || link
                .segment
                .gateways
                .lock()
                .plan(&channels, &sends_to, |_| false, false, now)
                .open_tunnel
    }

    /// Starts a relay request to the Stratum 0 in use.
    fn start_request(&self, link: &RelayLink, next_attempt: &mut Instant, now: Instant) -> Step {
        let started = self.stratum0(link).and_then(|stratum0| {
            Ok(Step::Requesting {
                request: RelayRequest::new(stratum0, discovery::nonce()?, now),
                groups: self.unserved_groups(link),
            })
        });
        started.unwrap_or_else(|err| self.attempt_failed(link, &err, next_attempt, now))
    }

    /// Takes a new tunnel into use. After a relay request (`Ok` with its offers), every other
    /// offer is a spare; after a failover from `failed` (`Err` with the offers not tried), those
    /// are, and the application hears of the failover.
    fn tunnel_opened(
        &self,
        link: &RelayLink,
        tunnel: Tunnel,
        offers: std::result::Result<Vec<RelayOffer>, Vec<RelayOffer>>,
        failed: Option<SocketAddrV6>,
    ) {
        let to = tunnel.relay();
        let mut state = link.state.lock();
        match offers {
            Ok(offers) => {
                state.spares = offers
                    .iter()
                    .filter(|offer| offer.address != to)
                    .cloned()
                    .collect();
                state.offers = offers;
            }
            Err(untried) => state.spares = untried,
        }
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

    /// Records why reaching the core failed, and waits before the next attempt, which tries the
    /// next Stratum 0 candidate, or finds them again.
    fn attempt_failed(
        &self,
        link: &RelayLink,
        err: &Error,
        next_attempt: &mut Instant,
        now: Instant,
    ) -> Step {
        warn!("reaching the multicast core: {err}");
        let mut state = link.state.lock();
        state.last_error = Some(err.to_string());
        if !state.candidates.is_empty() {
            state.candidates.remove(0);
        }
        *next_attempt = (*next_attempt).max(now + RETRY_INTERVAL);
        Step::Waiting
    }
}
