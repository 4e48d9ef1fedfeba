//! Reaching the multicast core, as one machine without I/O: probe Stratum 0, listen for the
//! segment's gateways where native multicast falls short, ask Stratum 0 for relays, open a
//! tunnel to the best offer, fail over to a spare when it goes silent, and probe again, which
//! closes the tunnel once native multicast works both ways (`docs/reachability.md`).
//!
//! [`Reach`] composes the machines of each step ([`Prober`], [`RelayRequest`], [`Connector`])
//! and decides which comes next. It is fed datagrams and the time, and polled for what to send,
//! for what happened ([`ReachEvent`]) and for its next deadline. What it shares with the rest
//! of a node (the tunnel in use, the gateways heard, the channels joined) it asks of a
//! [`Node`] when it decides, so that the driver keeps that state where its data plane reads it.

use std::{
    collections::VecDeque,
    mem,
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::AtomicU64,
    time::{Duration, Instant},
};

use tracing::debug;

use crate::{
    addr::Scope,
    error::{Error, Result},
    probe::{self, ProbeReport, Prober},
    relay_request::{RelayOffer, RelayRequest},
    tunnel::{Connector, Pinning, Progress, Tunnel},
    wire::control::Control,
};

/// How often a node tries to reach the core.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How long a probe may take before Stratum 0 counts as unanswered.
    pub probe_within: Duration,
    /// Between probes once the path is known (native, or a tunnel to look past).
    pub probe_interval: Duration,
    /// Before trying again after an attempt failed.
    pub retry_interval: Duration,
}

/// What [`Reach`] asks of the node it runs for when it decides.
pub trait Node {
    /// The Stratum 0 to ask: with a tunnel open, the one in use; else the next candidate,
    /// which the node may have to look up.
    fn stratum0(&mut self, tunnelled: bool) -> Result<SocketAddrV6>;
    /// Whether a tunnel is open.
    fn tunnelled(&self) -> bool;
    /// How long the node still listens for its segment's gateways before deciding.
    fn listening_left(&self, now: Instant) -> Duration;
    /// Whether the node needs a tunnel of its own: some channel it uses has no gateway.
    fn tunnel_needed(&self, now: Instant) -> bool;
    /// Whether the gateway election asked for a tunnel at once since the last call.
    fn take_tunnel_wanted(&mut self) -> bool;
    /// The groups a new tunnel must join: those of the channels no gateway serves.
    fn unserved_groups(&self) -> Vec<Ipv6Addr>;
    /// What relays must prove.
    fn pinning(&self) -> Pinning;
    /// A fresh random nonce.
    fn nonce(&self) -> Result<u64>;
    /// Counts relays refused for proving no pinned identity.
    fn rejected_relays(&self) -> &AtomicU64;
}

/// A datagram [`Reach`] wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// To the probe group, on every interface, from the probe's listener.
    ProbeGroup(Control<'static>),
    /// From the node's unicast socket, to Stratum 0 or a relay.
    To(SocketAddrV6, Control<'static>),
}

/// What happened, for the driver to act on before it polls again.
#[derive(Debug)]
pub enum ReachEvent {
    /// A probe starts: the driver listens on the probe group, where Stratum 0's ECHO arrives,
    /// until the probe ends (see [`Reach::is_probing`]).
    ProbeStarted,
    /// A probe found the path. With a tunnel open and native multicast working both ways, the
    /// driver closes the tunnel.
    Probed(ProbeReport),
    /// Reaching the core failed (Stratum 0 unanswered, no relay offered or reachable): the
    /// driver records why and turns to its next Stratum 0 candidate.
    Failed(Error),
    /// A handshake with this repeater starts: the driver joins its repeater group first.
    JoinRepeater(SocketAddrV6),
    /// A tunnel opened.
    Opened {
        /// The tunnel (boxed: it is large beside the other events).
        tunnel: Box<Tunnel>,
        /// Its relay's alternatives.
        spares: Spares,
    },
    /// No spare opened a tunnel after the one to `from` failed; the next probe starts over.
    FailoverFailed {
        /// The relay given up.
        from: SocketAddrV6,
    },
}

/// What a new tunnel's relay has for alternatives.
#[derive(Debug)]
pub enum Spares {
    /// After a relay request: every offer, best first (the open tunnel's among them).
    Offers(Vec<RelayOffer>),
    /// After a failover from `from`: the spares not tried.
    Untried {
        /// The relay whose tunnel failed.
        from: SocketAddrV6,
        /// The spares not tried, best first.
        untried: Vec<RelayOffer>,
    },
}

/// What the machine is doing, besides what the driver's tunnel does.
#[derive(Debug)]
enum Step {
    /// Nothing until the next attempt.
    Waiting,
    /// Probing Stratum 0: an attempt to reach the core, or with a tunnel open, a look whether
    /// native multicast works again.
    Probing(Prober),
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
    /// Handshaking with relays: every offer of a request, or the spares after `failed`'s
    /// tunnel was given up.
    Connecting {
        // Boxed: it is large beside the other steps.
        connector: Box<Connector>,
        failed: Option<SocketAddrV6>,
    },
}

/// A node's way to the multicast core, without I/O.
#[derive(Debug)]
pub struct Reach {
    scope: Scope,
    timing: Timing,
    step: Step,
    next_attempt: Instant,
    /// The offers of the request under way, kept for the tunnel's spares.
    offers: Vec<RelayOffer>,
    /// Why the last datagram of the probe or request under way could not be sent.
    unsent: Option<Error>,
    transmits: VecDeque<Transmit>,
}

impl Reach {
    /// A machine for a node of `scope` that starts its first attempt at `now`.
    pub fn new(scope: Scope, timing: Timing, now: Instant) -> Self {
        Self {
            scope,
            timing,
            step: Step::Waiting,
            next_attempt: now,
            offers: Vec::new(),
            unsent: None,
            transmits: VecDeque::new(),
        }
    }

    /// Moves on at `now`: what happened, or `None` once nothing more is due. The driver acts on
    /// each event (the next decision may depend on it) and polls again.
    pub fn poll(&mut self, now: Instant, node: &mut dyn Node) -> Option<ReachEvent> {
        loop {
            let before = mem::discriminant(&self.step);
            let step = mem::replace(&mut self.step, Step::Waiting);
            let (step, event) = self.advance(step, now, node);
            let moved = mem::discriminant(&step) != before;
            self.step = step;
            // A step that begins sends at once: move on until the step stays the same.
            if event.is_some() || !moved {
                return event;
            }
        }
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// When [`poll`](Self::poll) next has something to do if nothing arrives meanwhile.
    pub fn poll_timeout(&self, now: Instant, node: &dyn Node) -> Option<Instant> {
        match &self.step {
            Step::Waiting => Some(self.next_attempt),
            Step::Probing(prober) => Some(prober.poll_timeout()),
            Step::Listening => Some(now + node.listening_left(now)),
            Step::Requesting { request, .. } => Some(request.poll_timeout()),
            Step::Connecting { connector, .. } => connector.poll_timeout(),
        }
    }

    /// Whether a probe is under way: the driver keeps its listener on the probe group open.
    pub fn is_probing(&self) -> bool {
        matches!(self.step, Step::Probing(_))
    }

    /// Takes a datagram that came from `source` to the node's unicast socket at `now`. True
    /// when it was the probe's (Stratum 0's answer); anything else, a relay's answers included,
    /// is for the tunnel too.
    pub fn on_unicast(
        &mut self,
        source: SocketAddrV6,
        datagram: &[u8],
        now: Instant,
        rejected: &AtomicU64,
    ) -> bool {
        match &mut self.step {
            Step::Probing(prober) => prober.on_unicast(source, datagram, now),
            Step::Requesting { request, .. } => {
                request.on_datagram(source, datagram, now);
                false
            }
            Step::Connecting { connector, .. } => {
                connector.on_datagram(source, datagram, now, rejected);
                false
            }
            Step::Waiting | Step::Listening => false,
        }
    }

    /// Takes a datagram that came on the probe group.
    pub fn on_probe_group(&mut self, datagram: &[u8]) {
        if let Step::Probing(prober) = &mut self.step {
            prober.on_probe_group(datagram);
        }
    }

    /// A datagram could not be sent. True when that fails the step under way (a probe or a
    /// relay request) with `err` at the next [`poll`](Self::poll); a relay's handshake just
    /// times out.
    pub fn transmit_failed(&mut self, err: Error) -> bool {
        let fails = matches!(self.step, Step::Probing(_) | Step::Requesting { .. });
        if fails {
            self.unsent = Some(err);
        }
        fails
    }

    /// The tunnel to `failed` was given up: tries `spares` at once, whatever was under way (a
    /// probe starts again at the next attempt).
    pub fn fail_over(&mut self, failed: SocketAddrV6, spares: Vec<RelayOffer>, node: &dyn Node) {
        let connector = Connector::new(spares, &node.unserved_groups(), self.scope, node.pinning());
        // A send failure of the step given up is not the next probe's or request's.
        self.unsent = None;
        self.step = Step::Connecting {
            connector: Box::new(connector),
            failed: Some(failed),
        };
    }

    fn advance(
        &mut self,
        step: Step,
        now: Instant,
        node: &mut dyn Node,
    ) -> (Step, Option<ReachEvent>) {
        match step {
            Step::Waiting => {
                let tunnelled = node.tunnelled();
                if now >= self.next_attempt {
                    self.start_probe(tunnelled, now, node)
                } else if node.take_tunnel_wanted() && !tunnelled {
                    // The segment's gateway left (or never served a channel joined since): take
                    // over at once, on the probe's standing verdict.
                    self.start_request(now, node)
                } else {
                    (Step::Waiting, None)
                }
            }
            Step::Probing(prober) => self.probe(prober, now, node),
            Step::Listening => {
                if !node.listening_left(now).is_zero() {
                    (Step::Listening, None)
                } else if node.tunnel_needed(now) {
                    self.start_request(now, node)
                } else {
                    self.next_attempt = now + self.timing.probe_interval;
                    (Step::Waiting, None)
                }
            }
            Step::Requesting { request, groups } => self.request(request, groups, now, node),
            Step::Connecting { connector, failed } => self.connect(connector, failed, now, node),
        }
    }

    /// Starts a probe of the Stratum 0 in use.
    fn start_probe(
        &mut self,
        tunnelled: bool,
        now: Instant,
        node: &mut dyn Node,
    ) -> (Step, Option<ReachEvent>) {
        match node.stratum0(tunnelled) {
            Ok(stratum0) => {
                let prober = Prober::new(stratum0, self.timing.probe_within, now);
                (Step::Probing(prober), Some(ReachEvent::ProbeStarted))
            }
            Err(err) if tunnelled => {
                debug!("probing again: {err}");
                self.next_attempt = now + self.timing.retry_interval;
                (Step::Waiting, None)
            }
            Err(err) => self.attempt_failed(err, now),
        }
    }

    /// Sends what the probe has due, and acts on its outcome. With a tunnel open, a probe that
    /// finds native multicast both ways closes it (a failed one leaves it: Stratum 0 may be
    /// briefly unreachable). Without one, where native multicast falls short, the node listens
    /// for its segment's gateways next.
    fn probe(
        &mut self,
        mut prober: Prober,
        now: Instant,
        node: &mut dyn Node,
    ) -> (Step, Option<ReachEvent>) {
        let sent = loop {
            match prober.poll_transmit(now, &mut || node.nonce()) {
                Ok(Some(probe::Transmit::Multicast(message))) => {
                    self.transmits.push_back(Transmit::ProbeGroup(message));
                }
                Ok(Some(probe::Transmit::ToStratum0(message))) => {
                    self.transmits
                        .push_back(Transmit::To(prober.stratum0(), message));
                }
                Ok(None) => break Ok(()),
                Err(err) => break Err(err),
            }
        };
        let outcome = match sent.and(self.unsent.take().map_or(Ok(()), Err)) {
            Ok(()) => prober.outcome(now),
            Err(err) => Some(Err(err)),
        };
        let Some(outcome) = outcome else {
            return (Step::Probing(prober), None);
        };
        let tunnelled = node.tunnelled();
        match outcome {
            Ok(report) => {
                let native = report.native();
                let step = if native || tunnelled {
                    self.next_attempt = now + self.timing.probe_interval;
                    Step::Waiting
                } else {
                    Step::Listening
                };
                (step, Some(ReachEvent::Probed(report)))
            }
            Err(err) if tunnelled => {
                debug!("probing again: {err}");
                self.next_attempt = now + self.timing.probe_interval;
                (Step::Waiting, None)
            }
            Err(err) => self.attempt_failed(err, now),
        }
    }

    /// Starts a relay request to the Stratum 0 in use, for the groups no gateway serves now.
    fn start_request(&mut self, now: Instant, node: &mut dyn Node) -> (Step, Option<ReachEvent>) {
        let started = node
            .stratum0(false)
            .and_then(|stratum0| Ok(RelayRequest::new(stratum0, node.nonce()?, now)));
        match started {
            Ok(request) => {
                let groups = node.unserved_groups();
                (Step::Requesting { request, groups }, None)
            }
            Err(err) => self.attempt_failed(err, now),
        }
    }

    /// Sends what the request has due; once the offers are in, handshakes with them in turn.
    fn request(
        &mut self,
        mut request: RelayRequest,
        groups: Vec<Ipv6Addr>,
        now: Instant,
        node: &mut dyn Node,
    ) -> (Step, Option<ReachEvent>) {
        while let Some(message) = request.poll_transmit() {
            self.transmits
                .push_back(Transmit::To(request.stratum0(), message));
        }
        let outcome = match self.unsent.take() {
            Some(err) => Some(Err(err)),
            None => request.outcome(now),
        };
        match outcome {
            None => (Step::Requesting { request, groups }, None),
            Some(Ok(offers)) => {
                let connector = Connector::new(offers.clone(), &groups, self.scope, node.pinning());
                self.offers = offers;
                let connector = Box::new(connector);
                (
                    Step::Connecting {
                        connector,
                        failed: None,
                    },
                    None,
                )
            }
            Some(Err(err)) => self.attempt_failed(err, now),
        }
    }

    /// Moves the handshakes on, and sends what they have due.
    fn connect(
        &mut self,
        mut connector: Box<Connector>,
        failed: Option<SocketAddrV6>,
        now: Instant,
        node: &mut dyn Node,
    ) -> (Step, Option<ReachEvent>) {
        let progress = connector.poll(now, &mut || node.nonce(), node.rejected_relays());
        while let Some((message, relay)) = connector.poll_transmit() {
            self.transmits.push_back(Transmit::To(relay, message));
        }
        match progress {
            None => (Step::Connecting { connector, failed }, None),
            Some(Progress::Trying(offer)) => {
                let event = offer
                    .repeater
                    .then_some(ReachEvent::JoinRepeater(offer.address));
                (Step::Connecting { connector, failed }, event)
            }
            Some(Progress::Opened { tunnel, untried }) => {
                let spares = match failed {
                    Some(from) => Spares::Untried { from, untried },
                    None => {
                        self.next_attempt = now + self.timing.probe_interval;
                        Spares::Offers(mem::take(&mut self.offers))
                    }
                };
                (Step::Waiting, Some(ReachEvent::Opened { tunnel, spares }))
            }
            Some(Progress::Failed(err)) => match failed {
                Some(from) => {
                    debug!("no spare relay opened a tunnel: {err}");
                    (Step::Waiting, Some(ReachEvent::FailoverFailed { from }))
                }
                None => self.attempt_failed(err, now),
            },
        }
    }

    /// Waits before the next attempt, and tells the driver why this one failed.
    fn attempt_failed(&mut self, err: Error, now: Instant) -> (Step, Option<ReachEvent>) {
        self.next_attempt = self.next_attempt.max(now + self.timing.retry_interval);
        (Step::Waiting, Some(ReachEvent::Failed(err)))
    }
}

#[cfg(test)]
mod tests;
