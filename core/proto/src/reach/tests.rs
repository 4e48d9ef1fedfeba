//! The reach machine on a fake clock, against a scripted Stratum 0 and relays: each test is one
//! of the namespace worlds' stories (native, island, gateway, failover, back to native), told in
//! virtual seconds.

use std::{
    cell::{Cell, RefCell},
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::AtomicU64,
    time::{Duration, Instant},
};

use super::*;
use crate::{
    error::ErrorKind,
    tunnel::HANDSHAKE_TIMEOUT,
    wire::control::{self, Control},
};

const TIMING: Timing = Timing {
    probe_within: Duration::from_secs(2),
    probe_interval: Duration::from_secs(30),
    retry_interval: Duration::from_secs(5),
};

fn at(last: u16, port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(Ipv6Addr::new(0xfd5c, 0xc, 0, 0, 0, 0, 0, last), port, 0, 0)
}

fn stratum0() -> SocketAddrV6 {
    at(0x10, 6447)
}

fn relay(n: u16) -> SocketAddrV6 {
    at(0x20 + n, 6448)
}

fn group() -> Ipv6Addr {
    Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x5c)
}

fn offer(address: SocketAddrV6) -> RelayOffer {
    RelayOffer {
        address,
        rtt: Duration::from_millis(1),
        load: 0,
        repeater: false,
    }
}

/// The node's side, as the driver keeps it.
struct FakeNode {
    /// What looking up Stratum 0 gives; `None` fails.
    stratum0: Option<SocketAddrV6>,
    lookups: usize,
    tunnelled: bool,
    listening_until: Instant,
    tunnel_needed: bool,
    tunnel_wanted: bool,
    next_nonce: Cell<u64>,
    rejected: AtomicU64,
}

impl FakeNode {
    fn new(start: Instant) -> Self {
        Self {
            stratum0: Some(stratum0()),
            lookups: 0,
            tunnelled: false,
            listening_until: start,
            tunnel_needed: true,
            tunnel_wanted: false,
            next_nonce: Cell::new(1),
            rejected: AtomicU64::new(0),
        }
    }
}

impl Node for FakeNode {
    fn stratum0(&mut self, _tunnelled: bool) -> Result<SocketAddrV6> {
        self.lookups += 1;
        self.stratum0
            .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "names no Stratum 0"))
    }

    fn tunnelled(&self) -> bool {
        self.tunnelled
    }

    fn listening_left(&self, now: Instant) -> Duration {
        self.listening_until.saturating_duration_since(now)
    }

    fn tunnel_needed(&self, _now: Instant) -> bool {
        self.tunnel_needed
    }

    fn take_tunnel_wanted(&mut self) -> bool {
        mem::take(&mut self.tunnel_wanted)
    }

    fn unserved_groups(&self) -> Vec<Ipv6Addr> {
        vec![group()]
    }

    fn pinning(&self) -> Pinning {
        Pinning {
            keys: Vec::new(),
            issuers: Vec::new(),
            group: Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 1),
            seen_as: None,
        }
    }

    fn nonce(&self) -> Result<u64> {
        let nonce = self.next_nonce.get();
        self.next_nonce.set(nonce + 1);
        Ok(nonce)
    }

    fn rejected_relays(&self) -> &AtomicU64 {
        &self.rejected
    }
}

/// How Stratum 0 and the relays answer, and what the node sent them.
struct Network {
    stratum0_answers: bool,
    native_up: bool,
    native_down: bool,
    /// The relays that offer to serve, and whether each completes a handshake.
    relays: Vec<(SocketAddrV6, bool)>,
    /// Whether offers say the relay is a repeater.
    repeaters: bool,
    sent: RefCell<Vec<(Instant, Transmit)>>,
}

impl Network {
    fn new() -> Self {
        Self {
            stratum0_answers: true,
            native_up: false,
            native_down: false,
            relays: Vec::new(),
            repeaters: false,
            sent: RefCell::new(Vec::new()),
        }
    }

    fn native() -> Self {
        Self {
            native_up: true,
            native_down: true,
            ..Self::new()
        }
    }

    fn answers(&self, relay: SocketAddrV6) -> bool {
        self.relays.contains(&(relay, true))
    }

    /// What comes back for `transmit`: to the unicast socket (`Some` source) or on the probe
    /// group (`None`).
    fn answer(&self, transmit: &Transmit) -> Vec<(Option<SocketAddrV6>, Vec<u8>)> {
        let bytes = |message: Control<'_>| message.to_vec().unwrap();
        let Transmit::To(to, message) = transmit else {
            return Vec::new();
        };
        match message {
            Control::Probe(probe) if *to == stratum0() && self.stratum0_answers => {
                let reply = Control::ProbeReply(control::ProbeReply {
                    nonce: probe.nonce,
                    heard_beacon: self.native_up,
                    observed: at(0x99, 40_000),
                });
                let echo = Control::Echo(control::Echo { nonce: probe.nonce });
                let mut answers = vec![(Some(stratum0()), bytes(reply))];
                if self.native_down {
                    answers.push((None, bytes(echo)));
                }
                answers
            }
            Control::RelayRequest(request) if *to == stratum0() && self.stratum0_answers => self
                .relays
                .iter()
                .map(|(relay, _)| {
                    let offer = Control::Offer(control::Offer {
                        nonce: request.nonce,
                        relay: *relay,
                        load: 0,
                        limit: false,
                        repeater: self.repeaters,
                    });
                    (Some(*relay), bytes(offer))
                })
                .collect(),
            Control::Hello(hello) if self.answers(*to) => {
                let challenge = Control::Challenge(control::Challenge {
                    nonce: hello.nonce,
                    mac: [3; control::MAC_LEN],
                    refresh_secs: 30,
                    limit: false,
                });
                vec![(Some(*to), bytes(challenge))]
            }
            Control::Join(join) if self.answers(*to) => {
                let acknowledgment = Control::Keepalive(control::Keepalive { nonce: join.nonce });
                vec![(Some(*to), bytes(acknowledgment))]
            }
            _ => Vec::new(),
        }
    }

    /// When the node sent messages `matching`, in order.
    fn sent_when(&self, matching: impl Fn(&Transmit) -> bool) -> Vec<Instant> {
        let sent = self.sent.borrow();
        sent.iter()
            .filter(|(_, transmit)| matching(transmit))
            .map(|(when, _)| *when)
            .collect()
    }
}

fn is_request(transmit: &Transmit) -> bool {
    matches!(transmit, Transmit::To(_, Control::RelayRequest(_)))
}

/// Drives `reach` as its driver does: polls at `now`, hands what it sends to the network and
/// the answers back, and jumps to each deadline it names, until an event comes (returned, with
/// `now` at its time) or the next deadline is past `until`.
fn next_event(
    reach: &mut Reach,
    node: &mut FakeNode,
    network: &Network,
    now: &mut Instant,
    until: Instant,
) -> Option<ReachEvent> {
    for _ in 0..10_000 {
        if let Some(event) = reach.poll(*now, node) {
            return Some(event);
        }
        let mut answered = false;
        while let Some(transmit) = reach.poll_transmit() {
            for (source, datagram) in network.answer(&transmit) {
                answered = true;
                match source {
                    Some(source) => drop(reach.on_unicast(source, &datagram, *now, &node.rejected)),
                    None => reach.on_probe_group(&datagram),
                }
            }
            network.sent.borrow_mut().push((*now, transmit));
        }
        if answered {
            continue;
        }
        let due = reach.poll_timeout(*now, node).expect("a deadline");
        if due > until {
            return None;
        }
        assert!(due > *now, "the machine must move on by its own deadline");
        *now = due;
    }
    panic!("no end in sight");
}

fn expect(event: Option<ReachEvent>) -> ReachEvent {
    event.expect("an event")
}

#[test]
fn native_both_ways_is_found_in_one_round_and_probed_again_after_the_interval() {
    let start = Instant::now();
    let (mut node, network) = (FakeNode::new(start), Network::native());
    let mut reach = Reach::new(Scope::Site, TIMING, start);
    let mut now = start;
    let far = start + Duration::from_secs(120);
    let step = |reach: &mut Reach, node: &mut FakeNode, now: &mut Instant| {
        expect(next_event(reach, node, &network, now, far))
    };
    assert!(matches!(
        step(&mut reach, &mut node, &mut now),
        ReachEvent::ProbeStarted
    ));
    assert!(reach.is_probing());
    let ReachEvent::Probed(report) = step(&mut reach, &mut node, &mut now) else {
        panic!("a probe's report");
    };
    assert!(report.native() && report.answered, "{report:?}");
    // The beacon goes 30 ms ahead of the probe, whose answers end the round.
    assert_eq!(now - start, Duration::from_millis(30));
    assert!(!reach.is_probing());
    let settled = now;
    assert_eq!(
        reach.poll_timeout(now, &node),
        Some(settled + TIMING.probe_interval)
    );
    assert!(matches!(
        step(&mut reach, &mut node, &mut now),
        ReachEvent::ProbeStarted
    ));
    assert_eq!(now, settled + TIMING.probe_interval);
    assert!(
        network.sent_when(is_request).is_empty(),
        "no relay asked for"
    );
}

#[test]
fn an_island_listens_for_gateways_then_asks_for_relays_and_opens_a_tunnel() {
    let start = Instant::now();
    let mut node = FakeNode::new(start);
    node.listening_until = start + Duration::from_secs(3);
    let network = Network {
        relays: vec![(relay(1), true), (relay(2), true)],
        ..Network::new()
    };
    let mut reach = Reach::new(Scope::Site, TIMING, start);
    let (mut now, far) = (start, start + Duration::from_secs(60));
    assert!(matches!(
        next_event(&mut reach, &mut node, &network, &mut now, far),
        Some(ReachEvent::ProbeStarted)
    ));
    let Some(ReachEvent::Probed(report)) =
        next_event(&mut reach, &mut node, &network, &mut now, far)
    else {
        panic!("a probe's report");
    };
    // Stratum 0 answered, but neither the beacon nor its echo got through: the probe waits out
    // its bound for a late echo.
    assert!(report.answered && !report.native_up && !report.native_down);
    assert_eq!(now, start + TIMING.probe_within);
    let Some(ReachEvent::Opened { tunnel, spares }) =
        next_event(&mut reach, &mut node, &network, &mut now, far)
    else {
        panic!("a tunnel");
    };
    // Relays are asked for only once the gateways had their chance.
    assert_eq!(network.sent_when(is_request), [node.listening_until]);
    assert_eq!(tunnel.relay(), relay(1));
    assert!(tunnel.carries(group()), "the groups no gateway serves");
    let Spares::Offers(offers) = spares else {
        panic!("a request's offers");
    };
    assert_eq!(offers.len(), 2);
    assert_eq!(
        reach.poll_timeout(now, &node),
        Some(now + TIMING.probe_interval)
    );
}

#[test]
fn where_gateways_serve_every_channel_no_relay_is_asked_for() {
    let start = Instant::now();
    let mut node = FakeNode::new(start);
    node.tunnel_needed = false;
    let network = Network {
        relays: vec![(relay(1), true)],
        ..Network::new()
    };
    let mut reach = Reach::new(Scope::Site, TIMING, start);
    let mut now = start;
    let until = start + TIMING.probe_within + TIMING.probe_interval - Duration::from_millis(1);
    next_event(&mut reach, &mut node, &network, &mut now, until);
    assert!(matches!(
        next_event(&mut reach, &mut node, &network, &mut now, until),
        Some(ReachEvent::Probed(_))
    ));
    assert!(next_event(&mut reach, &mut node, &network, &mut now, until).is_none());
    assert!(network.sent_when(is_request).is_empty());
    // The gateway leaves: the election asks for a tunnel, and the machine asks at once, without
    // waiting for its next probe.
    let left = now + Duration::from_secs(7);
    now = left;
    node.tunnel_wanted = true;
    let far = start + Duration::from_secs(120);
    assert!(matches!(
        next_event(&mut reach, &mut node, &network, &mut now, far),
        Some(ReachEvent::Opened { .. })
    ));
    assert_eq!(network.sent_when(is_request), [left]);
}

#[test]
fn an_unanswered_stratum0_fails_the_attempt_and_the_next_one_waits_the_retry_interval() {
    let start = Instant::now();
    let mut node = FakeNode::new(start);
    let network = Network {
        stratum0_answers: false,
        ..Network::new()
    };
    let mut reach = Reach::new(Scope::Site, TIMING, start);
    let (mut now, far) = (start, start + Duration::from_secs(60));
    next_event(&mut reach, &mut node, &network, &mut now, far);
    let Some(ReachEvent::Failed(err)) = next_event(&mut reach, &mut node, &network, &mut now, far)
    else {
        panic!("a failure");
    };
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(now, start + TIMING.probe_within);
    assert!(matches!(
        next_event(&mut reach, &mut node, &network, &mut now, far),
        Some(ReachEvent::ProbeStarted)
    ));
    assert_eq!(now, start + TIMING.probe_within + TIMING.retry_interval);
    assert_eq!(node.lookups, 2, "the driver gives the next candidate");
    // Without any Stratum 0 to ask, the attempt fails at once, and waits as long.
    node.stratum0 = None;
    let mut reach = Reach::new(Scope::Site, TIMING, start);
    let mut now = start;
    assert!(matches!(
        next_event(&mut reach, &mut node, &network, &mut now, far),
        Some(ReachEvent::Failed(err)) if err.kind() == ErrorKind::InvalidConfig
    ));
    assert_eq!(
        reach.poll_timeout(now, &node),
        Some(start + TIMING.retry_interval)
    );
}

#[test]
fn a_tunnelled_node_keeps_its_tunnel_while_stratum0_is_silent_and_learns_when_native_works() {
    let start = Instant::now();
    let mut node = FakeNode::new(start);
    node.tunnelled = true;
    let mut network = Network {
        stratum0_answers: false,
        ..Network::new()
    };
    let mut reach = Reach::new(Scope::Site, TIMING, start);
    let (mut now, far) = (start, start + Duration::from_secs(120));
    next_event(&mut reach, &mut node, &network, &mut now, far);
    // No failure reported (the tunnel still works), and no request: the next probe comes a
    // probe interval after this one gave up.
    assert!(matches!(
        next_event(&mut reach, &mut node, &network, &mut now, far),
        Some(ReachEvent::ProbeStarted)
    ));
    assert_eq!(now, start + TIMING.probe_within + TIMING.probe_interval);
    network.stratum0_answers = true;
    network.native_up = true;
    network.native_down = true;
    assert!(matches!(
        next_event(&mut reach, &mut node, &network, &mut now, far),
        Some(ReachEvent::Probed(report)) if report.native()
    ));
    assert!(network.sent_when(is_request).is_empty());
    // A wish for a tunnel while one is open is spent without a request.
    node.tunnel_wanted = true;
    reach.poll(now + Duration::from_secs(1), &mut node);
    assert!(!node.tunnel_wanted);
    assert!(reach.poll_transmit().is_none());
}

#[test]
fn a_failover_tries_the_spares_in_turn_and_names_the_relay_it_replaced() {
    let start = Instant::now();
    let mut node = FakeNode::new(start);
    let network = Network {
        relays: vec![(relay(2), false), (relay(3), true)],
        ..Network::new()
    };
    // No probe comes in the way: the next is due after the story.
    let mut reach = Reach::new(Scope::Site, TIMING, start + Duration::from_secs(60));
    reach.fail_over(relay(1), vec![offer(relay(2)), offer(relay(3))], &node);
    let mut now = start;
    let far = start + Duration::from_secs(30);
    let Some(ReachEvent::Opened { tunnel, spares }) =
        next_event(&mut reach, &mut node, &network, &mut now, far)
    else {
        panic!("a tunnel");
    };
    assert_eq!(tunnel.relay(), relay(3));
    assert_eq!(
        now,
        start + HANDSHAKE_TIMEOUT,
        "the silent spare had its timeout"
    );
    assert!(
        matches!(spares, Spares::Untried { from, untried } if from == relay(1) && untried.is_empty())
    );
    // When no spare answers, the driver hears whom it could not replace.
    reach.fail_over(relay(3), vec![offer(relay(2))], &node);
    let failed_at = now;
    assert!(matches!(
        next_event(&mut reach, &mut node, &network, &mut now, far),
        Some(ReachEvent::FailoverFailed { from }) if from == relay(3)
    ));
    assert_eq!(now, failed_at + HANDSHAKE_TIMEOUT);
}

#[test]
fn a_repeater_is_joined_before_its_hello() {
    let start = Instant::now();
    let mut node = FakeNode::new(start);
    let network = Network {
        relays: vec![(relay(1), false)],
        repeaters: true,
        ..Network::new()
    };
    let mut reach = Reach::new(Scope::Site, TIMING, start);
    let (mut now, far) = (start, start + Duration::from_secs(60));
    let is_hello = |transmit: &Transmit| matches!(transmit, Transmit::To(_, Control::Hello(_)));
    let mut events = Vec::new();
    while let Some(event) = next_event(&mut reach, &mut node, &network, &mut now, far) {
        if matches!(event, ReachEvent::JoinRepeater(repeater) if repeater == relay(1)) {
            assert!(network.sent_when(is_hello).is_empty(), "joined first");
        }
        let failed = matches!(event, ReachEvent::Failed(_));
        events.push(event);
        if failed {
            break;
        }
    }
    assert!(matches!(
        events.as_slice(),
        [
            ReachEvent::ProbeStarted,
            ReachEvent::Probed(_),
            ReachEvent::JoinRepeater(_),
            ReachEvent::Failed(_)
        ]
    ));
    assert_eq!(network.sent_when(is_hello).len(), 1);
}

#[test]
fn a_datagram_that_cannot_leave_fails_the_probe_at_once() {
    let start = Instant::now();
    let mut node = FakeNode::new(start);
    let mut reach = Reach::new(Scope::Site, TIMING, start);
    let unsent = || Error::new(ErrorKind::Io, "network is unreachable");
    assert!(!reach.transmit_failed(unsent()), "nothing under way");
    assert!(matches!(
        reach.poll(start, &mut node),
        Some(ReachEvent::ProbeStarted)
    ));
    assert!(reach.transmit_failed(unsent()));
    assert!(matches!(
        reach.poll(start, &mut node),
        Some(ReachEvent::Failed(err)) if err.to_string().contains("unreachable")
    ));
    assert_eq!(
        reach.poll_timeout(start, &node),
        Some(start + TIMING.retry_interval)
    );
}
