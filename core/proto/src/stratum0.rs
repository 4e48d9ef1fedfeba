//! Stratum 0's protocol without I/O: it answers probes (and echoes each one on the probe group,
//! so that the node learns whether the core's multicast reaches it), notes the beacons nodes
//! multicast (so that the node learns whether its multicast reaches the core), and passes
//! verified relay requests to the relays on the relay group (see `docs/reachability.md`,
//! sections 2 and 3). [`Responder`] is fed with datagrams and the time and tested on a fake
//! clock; the `sixcast` crate's `Stratum0` service runs it on its sockets.

use std::{
    collections::HashMap,
    net::{Ipv6Addr, SocketAddrV6},
    time::{Duration, Instant},
};

use tracing::debug;

use crate::{
    addr::Scope,
    discovery::{Secrets, probe_group, relay_group},
    error::Result,
    wire::control::{self, Control},
};

/// How long Stratum 0 remembers a beacon it heard.
pub const BEACON_MEMORY: Duration = Duration::from_secs(30);
/// At most this many beacons are remembered, so a flood of them cannot grow memory.
pub const MAX_BEACONS: usize = 4096;

/// What Stratum 0 sends in answer to a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// To the datagram's source.
    Reply(Control<'static>),
    /// To a group (the probe or the relay group), on every core interface.
    Multicast(Control<'static>, Ipv6Addr),
}

/// What a datagram was, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// A probe: answered, and echoed on the probe group.
    Probe,
    /// A relay request without a valid cookie: answered with one.
    Cookie,
    /// A verified relay request: passed to the relays.
    Solicitation,
    /// A node's beacon on the probe group: noted for the probe that asks about it.
    Beacon,
    /// Stratum 0's own echo, heard back through loopback.
    OwnEcho,
    /// Malformed, or a message Stratum 0 does not take.
    Rejected,
}

/// Stratum 0's protocol without I/O: the beacons heard and the cookie secrets.
pub struct Responder {
    scope: Scope,
    beacons: HashMap<u64, Instant>,
    secrets: Secrets,
}

impl Responder {
    /// Fails only if the random generator does (no cookie secret, no Stratum 0).
    pub fn new(scope: Scope, now: Instant) -> Result<Self> {
        Ok(Self {
            scope,
            beacons: HashMap::new(),
            secrets: Secrets::new(now)?,
        })
    }

    /// Takes a datagram from `source` on the unicast socket at `now`; `answers` gets what to
    /// send. A probe is answered (with whether its beacon was heard, and the address seen) and
    /// echoed on the probe group; a relay request gets a cookie, or with a valid one is passed
    /// to the relays. Nothing unverified is answered with more than it sent.
    pub fn on_unicast(
        &mut self,
        source: SocketAddrV6,
        datagram: &[u8],
        now: Instant,
        answers: &mut Vec<Answer>,
    ) -> Heard {
        match control::decode(datagram) {
            Ok(Control::Probe(control::Probe {
                nonce,
                beacon_nonce,
            })) => {
                answers.push(Answer::Multicast(
                    Control::Echo(control::Echo { nonce }),
                    probe_group(self.scope),
                ));
                answers.push(Answer::Reply(Control::ProbeReply(control::ProbeReply {
                    nonce,
                    heard_beacon: beacon_nonce != 0 && self.beacons.contains_key(&beacon_nonce),
                    observed: source,
                })));
                Heard::Probe
            }
            Ok(Control::RelayRequest(control::RelayRequest { nonce, cookie })) => {
                if self.secrets.verify(source, nonce, &cookie, now) {
                    answers.push(Answer::Multicast(
                        Control::Solicit(control::Solicit {
                            nonce,
                            node: source,
                        }),
                        relay_group(self.scope),
                    ));
                    Heard::Solicitation
                } else {
                    let cookie = self.secrets.mac(source, nonce, now);
                    answers.push(Answer::Reply(Control::Cookie(control::Cookie {
                        nonce,
                        cookie,
                    })));
                    Heard::Cookie
                }
            }
            Ok(other) => {
                debug!(%source, kind = other.name(), "stratum 0 does not take this message");
                Heard::Rejected
            }
            Err(err) => {
                debug!(%source, "malformed control datagram: {err}");
                Heard::Rejected
            }
        }
    }

    /// Takes a datagram heard on the probe group at `now`: a beacon is remembered for
    /// [`BEACON_MEMORY`], at most [`MAX_BEACONS`] at once.
    pub fn on_probe_group(&mut self, datagram: &[u8], now: Instant) -> Heard {
        match control::decode(datagram) {
            Ok(Control::Beacon(control::Beacon { nonce })) => {
                if self.beacons.len() >= MAX_BEACONS {
                    self.forget_old_beacons(now);
                }
                if self.beacons.len() < MAX_BEACONS {
                    self.beacons.insert(nonce, now);
                }
                Heard::Beacon
            }
            Ok(Control::Echo(_)) => Heard::OwnEcho,
            _ => Heard::Rejected,
        }
    }

    /// Forgets the beacons heard more than [`BEACON_MEMORY`] before `now`.
    pub fn forget_old_beacons(&mut self, now: Instant) {
        self.beacons
            .retain(|_, heard| now.saturating_duration_since(*heard) < BEACON_MEMORY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(Ipv6Addr::new(0xfd5c, 0x1a, 0, 0, 0, 0, 0, 0x11), port, 0, 0)
    }

    fn encoded(message: &Control<'_>) -> Vec<u8> {
        message.to_vec().unwrap()
    }

    fn probe(nonce: u64, beacon_nonce: u64) -> Vec<u8> {
        encoded(&Control::Probe(control::Probe {
            nonce,
            beacon_nonce,
        }))
    }

    #[test]
    fn a_probe_is_echoed_and_answered_with_whether_its_beacon_was_heard() {
        let now = Instant::now();
        let mut responder = Responder::new(Scope::Global, now).unwrap();
        let mut answers = Vec::new();
        assert_eq!(
            responder.on_unicast(node(1), &probe(5, 6), now, &mut answers),
            Heard::Probe
        );
        let reply = |heard_beacon| {
            Answer::Reply(Control::ProbeReply(control::ProbeReply {
                nonce: 5,
                heard_beacon,
                observed: node(1),
            }))
        };
        let echo = Answer::Multicast(
            Control::Echo(control::Echo { nonce: 5 }),
            probe_group(Scope::Global),
        );
        assert_eq!(answers, [echo.clone(), reply(false)]);
        let beacon = encoded(&Control::Beacon(control::Beacon { nonce: 6 }));
        assert_eq!(responder.on_probe_group(&beacon, now), Heard::Beacon);
        answers.clear();
        responder.on_unicast(node(1), &probe(5, 6), now, &mut answers);
        assert_eq!(answers, [echo, reply(true)]);
        // A probe that asks about no beacon (0) never hears one.
        let zero = encoded(&Control::Beacon(control::Beacon { nonce: 0 }));
        responder.on_probe_group(&zero, now);
        answers.clear();
        responder.on_unicast(node(1), &probe(5, 0), now, &mut answers);
        assert_eq!(answers[1], reply(false));
    }

    #[test]
    fn beacons_are_forgotten_after_their_memory_and_bounded_in_number() {
        let start = Instant::now();
        let mut responder = Responder::new(Scope::Global, start).unwrap();
        for nonce in 1..=MAX_BEACONS as u64 + 10 {
            responder.on_probe_group(&encoded(&Control::Beacon(control::Beacon { nonce })), start);
        }
        assert_eq!(
            responder.beacons.len(),
            MAX_BEACONS,
            "a flood cannot grow memory"
        );
        let later = start + BEACON_MEMORY;
        // Once the flood is old, a new beacon makes room by forgetting it.
        let fresh = encoded(&Control::Beacon(control::Beacon { nonce: 1 << 40 }));
        responder.on_probe_group(&fresh, later);
        assert_eq!(responder.beacons.len(), 1);
        responder.forget_old_beacons(later + BEACON_MEMORY);
        assert!(responder.beacons.is_empty());
    }

    #[test]
    fn a_relay_request_gets_a_cookie_and_only_its_echo_from_that_address_reaches_the_relays() {
        let now = Instant::now();
        let mut responder = Responder::new(Scope::Global, now).unwrap();
        let request = |cookie| {
            encoded(&Control::RelayRequest(control::RelayRequest {
                nonce: 9,
                cookie,
            }))
        };
        let mut answers = Vec::new();
        let first =
            responder.on_unicast(node(1), &request([0; control::MAC_LEN]), now, &mut answers);
        assert_eq!(first, Heard::Cookie);
        let [Answer::Reply(Control::Cookie(control::Cookie { nonce: 9, cookie }))] = answers[..]
        else {
            panic!("{answers:?}");
        };
        answers.clear();
        // Echoed from another address (a spoofer relaying someone else's cookie): another cookie.
        let spoofed = responder.on_unicast(node(2), &request(cookie), now, &mut answers);
        assert_eq!(spoofed, Heard::Cookie);
        answers.clear();
        let verified = responder.on_unicast(node(1), &request(cookie), now, &mut answers);
        assert_eq!(verified, Heard::Solicitation);
        assert_eq!(
            answers,
            [Answer::Multicast(
                Control::Solicit(control::Solicit {
                    nonce: 9,
                    node: node(1)
                }),
                relay_group(Scope::Global)
            )]
        );
        // A cookie outlives one rotation of the secret, not two.
        let rotated = now + crate::discovery::SECRET_ROTATION;
        answers.clear();
        assert_eq!(
            responder.on_unicast(node(1), &request(cookie), rotated, &mut answers),
            Heard::Solicitation
        );
        let twice = rotated + crate::discovery::SECRET_ROTATION;
        assert_eq!(
            responder.on_unicast(node(1), &request(cookie), twice, &mut answers),
            Heard::Cookie
        );
    }

    #[test]
    fn junk_and_messages_for_others_are_rejected_and_own_echoes_ignored() {
        let now = Instant::now();
        let mut responder = Responder::new(Scope::Global, now).unwrap();
        let mut answers = Vec::new();
        let keepalive = encoded(&Control::Keepalive(control::Keepalive { nonce: 1 }));
        assert_eq!(
            responder.on_unicast(node(1), &keepalive, now, &mut answers),
            Heard::Rejected
        );
        assert_eq!(
            responder.on_unicast(node(1), b"junk", now, &mut answers),
            Heard::Rejected
        );
        assert!(answers.is_empty(), "nothing answered");
        let echo = encoded(&Control::Echo(control::Echo { nonce: 3 }));
        assert_eq!(responder.on_probe_group(&echo, now), Heard::OwnEcho);
        assert_eq!(responder.on_probe_group(&keepalive, now), Heard::Rejected);
        assert!(responder.beacons.is_empty());
    }
}
