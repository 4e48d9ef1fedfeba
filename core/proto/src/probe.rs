//! The probe without I/O: does the core's multicast reach this node, and does the node's reach
//! the core? A round is a BEACON on the probe group, 30 ms later a PROBE to Stratum 0 that asks
//! whether it heard the beacon, then 300 ms for the PROBE_REPLY and Stratum 0's ECHO on the
//! probe group (`docs/reachability.md`, "Probe"). [`Prober`] takes the time as an argument;
//! the `sixcast` crate's driver owns the sockets.

use std::{
    net::SocketAddrV6,
    time::{Duration, Instant},
};

use crate::{
    error::{Error, ErrorKind, Result},
    wire::control::{self, Control},
};

/// How long a beacon goes ahead of the probe that asks about it.
const BEACON_LEAD: Duration = Duration::from_millis(30);
/// How long a round waits for answers before the next beacon and probe: a few rounds a second,
/// so that one lost datagram does not decide the outcome.
const ROUND: Duration = Duration::from_millis(300);

/// What a probe found out about the path between a node and the multicast core.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProbeReport {
    /// The Stratum 0 asked.
    pub stratum0: SocketAddrV6,
    /// Whether Stratum 0 answered at all.
    pub answered: bool,
    /// Round trip of the first answered probe.
    pub rtt: Option<Duration>,
    /// Whether the core's multicast reaches this node (Stratum 0's echo arrived natively).
    pub native_down: bool,
    /// Whether this node's multicast reaches the core (Stratum 0 heard its beacon).
    pub native_up: bool,
    /// This node's address and port as Stratum 0 saw them.
    pub observed: Option<SocketAddrV6>,
}

impl ProbeReport {
    /// Whether native multicast works both ways, so no relay is needed.
    pub fn native(&self) -> bool {
        self.native_down && self.native_up
    }
}

/// A datagram the prober wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// To the probe group, on every interface.
    Multicast(Control<'static>),
    /// To Stratum 0.
    ToStratum0(Control<'static>),
}

/// Where a round stands.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The next beacon is due at this time.
    Beacon(Instant),
    /// The probe asking about `beacon` is due at this time.
    Probe { at: Instant, beacon: u64 },
    /// Answers are awaited until this time.
    Listen(Instant),
}

/// The probe protocol for one attempt, without I/O.
#[derive(Debug)]
pub struct Prober {
    deadline: Instant,
    within: Duration,
    report: ProbeReport,
    /// Each probe's nonce and when it was sent.
    sent: Vec<(u64, Instant)>,
    step: Step,
}

impl Prober {
    /// A probe of `stratum0` that starts at `now` and gives up `within` later.
    pub fn new(stratum0: SocketAddrV6, within: Duration, now: Instant) -> Self {
        Self {
            deadline: now + within,
            within,
            report: ProbeReport {
                stratum0,
                answered: false,
                rtt: None,
                native_down: false,
                native_up: false,
                observed: None,
            },
            sent: Vec::new(),
            step: Step::Beacon(now),
        }
    }

    /// The Stratum 0 this probe asks.
    pub fn stratum0(&self) -> SocketAddrV6 {
        self.report.stratum0
    }

    fn finished(&self, now: Instant) -> bool {
        self.report.native() || now >= self.deadline
    }

    /// The next datagram to send at `now`, if one is due; `fresh` gives each a new nonce.
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        fresh: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<Option<Transmit>> {
        if self.finished(now) {
            return Ok(None);
        }
        if let Step::Listen(until) = self.step
            && now >= until
        {
            self.step = Step::Beacon(now);
        }
        match self.step {
            Step::Beacon(at) if now >= at => {
                let beacon = fresh()?;
                self.step = Step::Probe {
                    at: now + BEACON_LEAD,
                    beacon,
                };
                Ok(Some(Transmit::Multicast(Control::Beacon(
                    control::Beacon { nonce: beacon },
                ))))
            }
            Step::Probe { at, beacon } if now >= at => {
                let nonce = fresh()?;
                self.sent.push((nonce, now));
                self.step = Step::Listen((now + ROUND).min(self.deadline));
                Ok(Some(Transmit::ToStratum0(Control::Probe(control::Probe {
                    nonce,
                    beacon_nonce: beacon,
                }))))
            }
            _ => Ok(None),
        }
    }

    /// When the prober next needs [`poll_transmit`](Self::poll_transmit) or
    /// [`outcome`](Self::outcome) called, if nothing arrives before.
    pub fn poll_timeout(&self) -> Instant {
        let next = match self.step {
            Step::Beacon(at) | Step::Probe { at, .. } | Step::Listen(at) => at,
        };
        next.min(self.deadline)
    }

    /// Takes a datagram that came to the node's unicast socket from `source`; false if it is
    /// not Stratum 0's (a tunnel's traffic, when probing while one is open), for the caller.
    pub fn on_unicast(&mut self, source: SocketAddrV6, datagram: &[u8], now: Instant) -> bool {
        if source != self.report.stratum0 {
            return false;
        }
        if let Ok(Control::ProbeReply(control::ProbeReply {
            nonce,
            heard_beacon,
            observed,
        })) = control::decode(datagram)
            && let Some((_, sent_at)) = self.sent.iter().find(|(sent, _)| *sent == nonce)
        {
            self.report.answered = true;
            self.report
                .rtt
                .get_or_insert(now.saturating_duration_since(*sent_at));
            self.report.native_up |= heard_beacon;
            self.report.observed = Some(observed);
        }
        true
    }

    /// Takes a datagram heard on the probe group: an ECHO of one of this node's probes says the
    /// core's multicast reaches it.
    pub fn on_probe_group(&mut self, datagram: &[u8]) {
        if let Ok(Control::Echo(control::Echo { nonce })) = control::decode(datagram) {
            self.report.native_down |= self.sent.iter().any(|(sent, _)| *sent == nonce);
        }
    }

    /// The outcome once the probe is over at `now` (native both ways, or its time is up):
    /// the report, or a timeout if Stratum 0 never answered.
    pub fn outcome(&self, now: Instant) -> Option<Result<ProbeReport>> {
        if !self.finished(now) {
            return None;
        }
        if self.report.answered {
            return Some(Ok(self.report.clone()));
        }
        let stratum0 = self.report.stratum0;
        Some(Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "Stratum 0 at {stratum0} did not answer within {:?}; check the address and that \
                 UDP port {} is open on the way",
                self.within,
                stratum0.port()
            ),
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    const STRATUM0: SocketAddrV6 =
        SocketAddrV6::new(Ipv6Addr::new(0xfd5c, 0xc, 0, 0, 0, 0, 0, 0x10), 6447, 0, 0);
    const OBSERVED: SocketAddrV6 = SocketAddrV6::new(
        Ipv6Addr::new(0xfd5c, 0x1a, 0, 0, 0, 0, 0, 0x11),
        40_000,
        0,
        0,
    );
    const WITHIN: Duration = Duration::from_secs(2);

    /// Nonces 1, 2, 3, ...: beacons and probes alternate, so a round's are (odd, even).
    fn counter() -> impl FnMut() -> Result<u64> {
        let mut next = 0;
        move || {
            next += 1;
            Ok(next)
        }
    }

    fn reply(nonce: u64, heard_beacon: bool) -> Vec<u8> {
        Control::ProbeReply(control::ProbeReply {
            nonce,
            heard_beacon,
            observed: OBSERVED,
        })
        .to_vec()
        .unwrap()
    }

    fn echo(nonce: u64) -> Vec<u8> {
        Control::Echo(control::Echo { nonce }).to_vec().unwrap()
    }

    /// Polls at `now` until nothing more is due; returns what was sent.
    fn sent_at(
        prober: &mut Prober,
        now: Instant,
        fresh: &mut dyn FnMut() -> Result<u64>,
    ) -> Vec<Transmit> {
        std::iter::from_fn(|| prober.poll_transmit(now, fresh).unwrap()).collect()
    }

    #[test]
    fn a_beacon_then_the_probe_that_asks_about_it_and_native_both_ways_ends_at_once() {
        let start = Instant::now();
        let mut fresh = counter();
        let mut prober = Prober::new(STRATUM0, WITHIN, start);
        assert_eq!(
            sent_at(&mut prober, start, &mut fresh),
            [Transmit::Multicast(Control::Beacon(control::Beacon {
                nonce: 1
            }))]
        );
        // The probe waits for the beacon's head start, and says when.
        assert_eq!(prober.poll_timeout(), start + BEACON_LEAD);
        let probe_at = start + BEACON_LEAD;
        assert_eq!(
            sent_at(&mut prober, probe_at, &mut fresh),
            [Transmit::ToStratum0(Control::Probe(control::Probe {
                nonce: 2,
                beacon_nonce: 1
            }))]
        );
        assert_eq!(prober.poll_timeout(), probe_at + ROUND);
        let answered_at = probe_at + Duration::from_millis(4);
        assert!(prober.on_unicast(STRATUM0, &reply(2, true), answered_at));
        assert!(
            prober.outcome(answered_at).is_none(),
            "the echo may still come"
        );
        prober.on_probe_group(&echo(2));
        let report = prober.outcome(answered_at).unwrap().unwrap();
        assert!(report.native() && report.answered, "{report:?}");
        assert_eq!(report.rtt, Some(Duration::from_millis(4)));
        assert_eq!(report.observed, Some(OBSERVED));
        assert!(sent_at(&mut prober, answered_at + ROUND, &mut fresh).is_empty());
    }

    #[test]
    fn an_unanswered_probe_repeats_each_round_and_times_out_at_its_bound() {
        let start = Instant::now();
        let mut fresh = counter();
        let mut prober = Prober::new(STRATUM0, WITHIN, start);
        let mut now = start;
        let mut probes = 0;
        // Driven as the driver does: to each deadline the prober names, never past its bound.
        while prober.outcome(now).is_none() {
            for transmit in sent_at(&mut prober, now, &mut fresh) {
                probes += usize::from(matches!(transmit, Transmit::ToStratum0(_)));
            }
            let next = prober.poll_timeout();
            assert!(next > now && next <= start + WITHIN, "{next:?}");
            now = next;
        }
        // A round is the beacon's lead and 300 ms of waiting: probes at 0.03 s, 0.36 s, ... 1.68 s.
        assert_eq!(probes, 6);
        assert_eq!(now, start + WITHIN);
        let err = prober.outcome(now).unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().contains("did not answer"), "{err}");
    }

    #[test]
    fn up_only_keeps_listening_for_an_echo_until_the_bound_and_reports_what_it_found() {
        let start = Instant::now();
        let mut fresh = counter();
        let mut prober = Prober::new(STRATUM0, WITHIN, start);
        sent_at(&mut prober, start, &mut fresh);
        sent_at(&mut prober, start + BEACON_LEAD, &mut fresh);
        assert!(prober.on_unicast(STRATUM0, &reply(2, true), start + BEACON_LEAD));
        let before_the_bound = start + WITHIN - Duration::from_millis(1);
        assert!(prober.outcome(before_the_bound).is_none());
        // A later round's probe still goes out, in case the first echo was lost.
        assert!(!sent_at(&mut prober, start + BEACON_LEAD + ROUND, &mut fresh).is_empty());
        let report = prober.outcome(start + WITHIN).unwrap().unwrap();
        assert!(
            report.native_up && !report.native_down && report.answered,
            "{report:?}"
        );
    }

    #[test]
    fn strangers_unknown_nonces_and_junk_change_nothing() {
        let start = Instant::now();
        let mut fresh = counter();
        let mut prober = Prober::new(STRATUM0, WITHIN, start);
        sent_at(&mut prober, start, &mut fresh);
        sent_at(&mut prober, start + BEACON_LEAD, &mut fresh);
        let stranger =
            SocketAddrV6::new(Ipv6Addr::new(0xfd5c, 0xc, 0, 0, 0, 0, 0, 0x21), 6448, 0, 0);
        assert!(
            !prober.on_unicast(stranger, &reply(2, true), start),
            "for the caller"
        );
        assert!(prober.on_unicast(STRATUM0, &reply(99, true), start));
        assert!(prober.on_unicast(STRATUM0, b"junk", start));
        // The beacon's nonce is no probe's: its echo proves nothing.
        prober.on_probe_group(&echo(1));
        prober.on_probe_group(&echo(99));
        prober.on_probe_group(&[0x36, 0x72, 1]);
        assert!(
            prober.outcome(start + WITHIN).unwrap().is_err(),
            "still unanswered"
        );
    }

    #[test]
    fn a_late_answer_to_an_earlier_round_counts_with_its_own_round_trip() {
        let start = Instant::now();
        let mut fresh = counter();
        let mut prober = Prober::new(STRATUM0, WITHIN, start);
        sent_at(&mut prober, start, &mut fresh);
        let first_probe = start + BEACON_LEAD;
        sent_at(&mut prober, first_probe, &mut fresh);
        let second_round = first_probe + ROUND;
        sent_at(&mut prober, second_round, &mut fresh);
        sent_at(&mut prober, second_round + BEACON_LEAD, &mut fresh);
        let late = second_round + BEACON_LEAD + Duration::from_millis(10);
        assert!(prober.on_unicast(STRATUM0, &reply(2, false), late));
        prober.on_probe_group(&echo(2));
        let report = prober.outcome(start + WITHIN).unwrap().unwrap();
        assert_eq!(report.rtt, Some(late - first_probe));
        assert!(report.native_down && !report.native_up, "{report:?}");
    }
}
