//! A node's side of a tunnel to a relay, without I/O (`docs/reachability.md`, section 4): the
//! return-routability [`Handshake`] that opens it, the [`Connector`] that tries the offered
//! relays in turn, then the [`Tunnel`] itself, which joins and
//! leaves groups, keeps the relay's state alive with keepalives and join refreshes, follows the
//! node through NAT rebindings, and says when the relay is gone. Both are fed with the relay's
//! control messages and the time, queue what to send for [`poll_transmit`](Tunnel::poll_transmit),
//! and are tested on a fake clock; the `sixcast` crate drives them on the node's unicast socket
//! and sends channel datagrams up the tunnel itself.

use std::{
    collections::HashSet,
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime},
};

use tracing::{info, warn};

use crate::{
    crypto::{
        PublicKey,
        relay_identity::{self, RelayTrust},
    },
    error::Result,
    wire::control::{self, Control, Mac},
};

mod connect;
mod handshake;

pub use connect::{Connector, Progress};
pub use handshake::{Handshake, Pinning};

/// How long a handshake with one relay may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Keepalives are sent this often on an otherwise quiet tunnel.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// A relay not heard for this long is considered gone, and a spare takes over.
pub const SILENCE_LIMIT: Duration = Duration::from_secs(3);
/// A relay not heard for this long may have lost this node to a NAT rebinding: the node proves
/// its (possibly new) address again and asks the relay to move the tunnel there.
pub const REBIND_AFTER: Duration = Duration::from_millis(1500);
/// How often a rebinding HELLO is repeated while no CHALLENGE answers it.
const REBIND_RETRY: Duration = Duration::from_millis(400);

/// Whether `seen` could be this node's address as a relay saw it: a unicast address and a port,
/// and the address Stratum 0 saw when that is known.
fn plausible(seen: SocketAddrV6, seen_as: Option<Ipv6Addr>) -> bool {
    seen.port() != 0
        && !seen.ip().is_unspecified()
        && !seen.ip().is_multicast()
        && seen_as.is_none_or(|ip| ip == *seen.ip())
}

/// The hello that starts a handshake: signed where the relay must prove its identity.
fn hello(nonce: u64, signed: bool) -> Control<'static> {
    if signed {
        Control::SignedHello(control::SignedHello { nonce })
    } else {
        Control::Hello(control::Hello { nonce })
    }
}

/// An open tunnel to a relay, from the end of its [`Handshake`] on.
#[derive(Debug)]
pub struct Tunnel {
    relay: SocketAddrV6,
    /// The relay's identity key, when it proved one (relay keys are pinned): rebinding
    /// handshakes must be signed by the same key.
    identity: Option<PublicKey>,
    /// Whether `relay` is an SSM repeater.
    repeater: bool,
    /// The repeated groups the driver joined from the repeater (source-specific memberships of
    /// its socket), to be left when the tunnel ends.
    pub repeated: HashSet<Ipv6Addr>,
    nonce: u64,
    mac: Mac,
    groups: HashSet<Ipv6Addr>,
    /// Whether the relay keeps state for this node: from its first JOIN on, also one of no
    /// group (a node that only sends).
    client: bool,
    last_heard: Instant,
    last_sent: Instant,
    last_keepalive: Instant,
    refresh: Duration,
    last_refresh: Instant,
    /// A rebinding in progress.
    rebinding: Option<Rebinding>,
    /// Whether the relay closed the tunnel (it is stopping): fail over at once.
    closed_by_relay: bool,
    /// Control messages for the relay, queued by the protocol for the driver to send
    /// ([`poll_transmit`](Self::poll_transmit)).
    outbox: Vec<Control<'static>>,
}

/// A handshake from the node's current address that will move the tunnel there.
#[derive(Debug)]
struct Rebinding {
    /// The nonce of its HELLO.
    nonce: u64,
    sent_at: Instant,
    /// The CHALLENGE's MAC, once it came: the REBIND is sent, the relay's KEEPALIVE awaited.
    mac: Option<Mac>,
}

impl Tunnel {
    /// The relay's (or repeater's) address.
    pub fn relay(&self) -> SocketAddrV6 {
        self.relay
    }

    /// Whether the tunnel leads to an SSM repeater, whose traffic comes as source-specific
    /// multicast from its address instead of down the tunnel.
    pub fn is_repeater(&self) -> bool {
        self.repeater
    }

    /// The next control message queued for the relay.
    pub fn poll_transmit(&mut self) -> Option<Control<'static>> {
        (!self.outbox.is_empty()).then(|| self.outbox.remove(0))
    }

    fn queue(&mut self, message: Control<'static>, now: Instant) {
        self.outbox.push(message);
        self.last_sent = now;
    }

    /// Asks the relay for `groups` as well (a JOIN covers at most 64 groups).
    /// Groups already joined are skipped, so joining the same list twice sends nothing.
    pub fn join(&mut self, groups: &[Ipv6Addr], now: Instant) {
        let new: Vec<Ipv6Addr> = groups
            .iter()
            .copied()
            .filter(|group| !self.groups.contains(group))
            .collect();
        if new.is_empty() && self.client {
            return;
        }
        if !self.client {
            // The relay's silence is measured from its first client state on.
            self.last_heard = now;
            self.client = true;
        }
        self.groups.extend(new.iter().copied());
        self.send_joins(&new, now);
    }

    fn send_joins(&mut self, groups: &[Ipv6Addr], now: Instant) {
        // No group at all still takes one JOIN: it keeps the node a client.
        let empty: [&[Ipv6Addr]; 1] = [&[]];
        let chunks: Vec<&[Ipv6Addr]> = if groups.is_empty() {
            empty.to_vec()
        } else {
            groups.chunks(control::MAX_GROUPS_PER_MESSAGE).collect()
        };
        for chunk in chunks {
            let join = Control::Join(control::Join {
                nonce: self.nonce,
                mac: self.mac,
                groups: chunk.to_vec(),
            });
            self.queue(join, now);
        }
    }

    /// Asks the relay to stop sending `groups`.
    pub fn leave(&mut self, groups: &[Ipv6Addr], now: Instant) {
        for group in groups {
            self.groups.remove(group);
        }
        for chunk in groups.chunks(control::MAX_GROUPS_PER_MESSAGE) {
            let leave = Control::Leave(control::Leave {
                nonce: self.nonce,
                mac: self.mac,
                groups: chunk.to_vec(),
            });
            self.queue(leave, now);
        }
    }

    /// Notes that the driver sent a DATA up the tunnel at `now`: no keepalive is owed then.
    pub fn data_sent(&mut self, now: Instant) {
        self.last_sent = now;
    }

    /// Notes that a DATA came down the tunnel at `now`: the relay is alive.
    pub fn data_heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// Queues the keepalives, join refreshes and rebinding HELLOs due at `now` (none before
    /// the first JOIN: the relay has no state for this node then); `fresh` gives a rebinding
    /// its nonce.
    pub fn maintain(&mut self, now: Instant, fresh: &mut dyn FnMut() -> Result<u64>) -> Result<()> {
        if !self.client {
            return Ok(());
        }
        let since = |then: Instant| now.saturating_duration_since(then);
        if since(self.last_refresh) >= self.refresh {
            self.last_refresh = now;
            let groups: Vec<Ipv6Addr> = self.groups.iter().copied().collect();
            self.send_joins(&groups, now);
        }
        // Also when only this node sends: the relay's answer is then all it hears.
        let quiet_out = since(self.last_sent) >= KEEPALIVE_INTERVAL;
        let quiet_in = since(self.last_heard) >= KEEPALIVE_INTERVAL
            && since(self.last_keepalive) >= KEEPALIVE_INTERVAL;
        if quiet_out || quiet_in {
            self.send_keepalive(now);
        }
        let retry_due = self
            .rebinding
            .as_ref()
            .is_none_or(|rebinding| since(rebinding.sent_at) >= REBIND_RETRY);
        if since(self.last_heard) >= REBIND_AFTER && retry_due {
            let nonce = fresh()?;
            self.queue(hello(nonce, self.identity.is_some()), now);
            self.rebinding = Some(Rebinding {
                nonce,
                sent_at: now,
                mac: None,
            });
        }
        Ok(())
    }

    /// Handles a control message from the relay (DATA excepted): keepalives, and the steps of a
    /// rebinding. A tunnel opened with a proven identity takes only challenges signed by that
    /// key; others that answer its rebinding are counted in `rejected`.
    pub fn on_control(&mut self, message: &Control<'_>, now: Instant, rejected: &AtomicU64) {
        match *message {
            Control::Keepalive(control::Keepalive { nonce }) => {
                self.last_heard = now;
                let Some(rebinding) = &self.rebinding else {
                    return;
                };
                if let (true, Some(mac)) = (nonce == rebinding.nonce, rebinding.mac) {
                    // The relay verified the new address and moved the tunnel there.
                    info!(relay = %self.relay, "tunnel moved to this node's new address");
                    (self.nonce, self.mac) = (nonce, mac);
                    self.rebinding = None;
                } else if nonce == self.nonce && rebinding.mac.is_none() {
                    // The relay still hears the tunnel where it was: nothing to move.
                    self.rebinding = None;
                }
            }
            Control::Challenge(control::Challenge {
                nonce,
                mac,
                limit: false,
                ..
            })
            | Control::SignedChallenge(control::SignedChallenge {
                nonce,
                mac,
                limit: false,
                ..
            }) => {
                let Some(rebinding) = self.rebinding.as_mut().filter(|r| r.nonce == nonce) else {
                    return;
                };
                if let Some(identity) = self.identity {
                    // The node's address may have changed: only its form can be checked.
                    let same_key = RelayTrust {
                        keys: &[identity],
                        issuers: &[],
                        group: Ipv6Addr::UNSPECIFIED,
                        now: SystemTime::now(),
                    };
                    let verified = relay_identity::verify_challenge(message, &same_key, |seen| {
                        plausible(seen, None)
                    });
                    if let Err(why) = verified {
                        rejected.fetch_add(1, Ordering::Relaxed);
                        warn!(relay = %self.relay, "rebinding challenge refused: {why}");
                        return;
                    }
                }
                rebinding.mac = Some(mac);
                let rebind = Control::Rebind(control::Rebind {
                    nonce,
                    mac,
                    old_nonce: self.nonce,
                    old_mac: self.mac,
                });
                self.queue(rebind, now);
            }
            // Only the relay knows the tunnel's nonce and MAC besides this node.
            Control::Teardown(control::Teardown { nonce, mac, .. })
                if nonce == self.nonce && control::mac_matches(&self.mac, &mac) =>
            {
                info!(relay = %self.relay, "the relay closed the tunnel");
                self.closed_by_relay = true;
            }
            Control::Teardown(_) => {
                rejected.fetch_add(1, Ordering::Relaxed);
                warn!(relay = %self.relay, "a teardown with wrong credentials was ignored");
            }
            _ => {}
        }
    }

    /// Queues a keepalive at `now` (the relay answers with one), if this node is a client.
    pub fn send_keepalive(&mut self, now: Instant) {
        if !self.client {
            return;
        }
        self.queue(
            Control::Keepalive(control::Keepalive { nonce: self.nonce }),
            now,
        );
        self.last_keepalive = now;
    }

    /// Whether the tunnel carries `group`.
    pub fn carries(&self, group: Ipv6Addr) -> bool {
        self.groups.contains(&group)
    }

    /// When [`maintain`](Self::maintain) or [`failure`](Self::failure) next has something to
    /// do if nothing is sent or heard meanwhile (what is sent or heard only moves it later),
    /// so that the driver sleeps until then instead of polling; `None` before the first JOIN,
    /// when neither has anything to do.
    pub fn next_due(&self) -> Option<Instant> {
        if !self.client {
            return None;
        }
        let rebind = self.last_heard + REBIND_AFTER;
        let rebind = self.rebinding.as_ref().map_or(rebind, |rebinding| {
            rebind.max(rebinding.sent_at + REBIND_RETRY)
        });
        [
            self.last_refresh + self.refresh,
            self.last_sent + KEEPALIVE_INTERVAL,
            self.last_heard.max(self.last_keepalive) + KEEPALIVE_INTERVAL,
            rebind,
            self.last_heard + SILENCE_LIMIT,
        ]
        .into_iter()
        .min()
    }

    /// Whether the tunnel carries no group.
    pub fn is_idle(&self) -> bool {
        self.groups.is_empty()
    }

    /// Why the tunnel must be given up, if it must: the relay closed it, or has been silent for
    /// too long.
    pub fn failure(&self, now: Instant) -> Option<&'static str> {
        if self.closed_by_relay {
            Some("the relay closed the tunnel")
        } else if self.client && now.saturating_duration_since(self.last_heard) >= SILENCE_LIMIT {
            Some("the relay went silent")
        } else {
            None
        }
    }

    /// Queues a TEARDOWN at `now`, which ends the tunnel politely (best effort: the relay also
    /// forgets silent clients). `old` is this node's address as the core sees it.
    pub fn close(&mut self, old: SocketAddrV6, now: Instant) {
        let teardown = Control::Teardown(control::Teardown {
            nonce: self.nonce,
            mac: self.mac,
            old,
        });
        self.queue(teardown, now);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An open tunnel to a relay, joined to `ff1e::5c`.
    pub(crate) fn tunnel(now: Instant) -> Tunnel {
        Tunnel {
            relay: "[fd5c:c::21]:6448".parse().unwrap(),
            identity: None,
            repeater: false,
            repeated: HashSet::new(),
            nonce: 7,
            mac: [1; control::MAC_LEN],
            groups: HashSet::from(["ff1e::5c".parse().unwrap()]),
            client: true,
            last_heard: now,
            last_sent: now,
            last_keepalive: now,
            refresh: Duration::from_secs(60),
            last_refresh: now,
            rebinding: None,
            closed_by_relay: false,
            outbox: Vec::new(),
        }
    }

    #[test]
    fn only_the_relays_own_teardown_closes_the_tunnel() {
        let now = Instant::now();
        let mut tunnel = tunnel(now);
        let rejected = AtomicU64::new(0);
        let node: SocketAddrV6 = "[fd5c:1a::11]:40000".parse().unwrap();
        assert_eq!(tunnel.failure(now), None);
        for (nonce, mac) in [(8, [1; control::MAC_LEN]), (7, [2; control::MAC_LEN])] {
            let forged = Control::Teardown(control::Teardown {
                nonce,
                mac,
                old: node,
            });
            tunnel.on_control(&forged, now, &rejected);
            assert_eq!(
                tunnel.failure(now),
                None,
                "a forged teardown closed the tunnel"
            );
        }
        assert_eq!(rejected.load(Ordering::Relaxed), 2);
        let genuine = Control::Teardown(control::Teardown {
            nonce: 7,
            mac: [1; control::MAC_LEN],
            old: node,
        });
        tunnel.on_control(&genuine, now, &rejected);
        assert_eq!(tunnel.failure(now), Some("the relay closed the tunnel"));
        assert_eq!(rejected.load(Ordering::Relaxed), 2);
        assert_eq!(tunnel.poll_transmit(), None, "a teardown is not answered");
    }

    #[test]
    fn a_silent_relay_fails_the_tunnel_after_the_limit() {
        let now = Instant::now();
        let mut tunnel = tunnel(now);
        assert_eq!(tunnel.failure(now), None);
        let later = now + SILENCE_LIMIT;
        assert_eq!(tunnel.failure(later), Some("the relay went silent"));
        tunnel.groups.clear();
        assert_eq!(
            tunnel.failure(later),
            Some("the relay went silent"),
            "a client of no group hears the relay's answers to its keepalives too"
        );
        tunnel.client = false;
        assert_eq!(
            tunnel.failure(later),
            None,
            "before its first JOIN, a tunnel is not expected to hear anything"
        );
    }

    /// Nonces 100, 101, ... for rebinding HELLOs.
    fn nonces() -> impl FnMut() -> Result<u64> {
        let mut next = 99;
        move || {
            next += 1;
            Ok(next)
        }
    }

    /// Runs `maintain` at `now` and returns what it queued.
    fn maintained(
        tunnel: &mut Tunnel,
        now: Instant,
        fresh: &mut dyn FnMut() -> Result<u64>,
    ) -> Vec<Control<'static>> {
        tunnel.maintain(now, fresh).unwrap();
        std::iter::from_fn(|| tunnel.poll_transmit()).collect()
    }

    #[test]
    fn a_quiet_tunnel_sends_a_keepalive_a_second_and_refreshes_its_joins() {
        let start = Instant::now();
        let mut tunnel = tunnel(start);
        let mut fresh = nonces();
        let keepalive = Control::Keepalive(control::Keepalive { nonce: 7 });
        assert!(maintained(&mut tunnel, start + Duration::from_millis(999), &mut fresh).is_empty());
        let second = start + KEEPALIVE_INTERVAL;
        let sent = maintained(&mut tunnel, second, &mut fresh);
        assert_eq!(sent, std::slice::from_ref(&keepalive));
        // The relay answers: heard, and nothing more is due for another second.
        tunnel.on_control(&keepalive, second, &AtomicU64::new(0));
        assert!(
            maintained(&mut tunnel, second + Duration::from_millis(500), &mut fresh).is_empty()
        );
        assert_eq!(tunnel.next_due(), Some(second + KEEPALIVE_INTERVAL));
        // Sending data counts as sending, but hearing nothing still asks for a keepalive.
        tunnel.last_sent = second + Duration::from_millis(900);
        assert_eq!(
            maintained(&mut tunnel, second + KEEPALIVE_INTERVAL, &mut fresh),
            [keepalive]
        );
        let refresh = start + tunnel.refresh;
        tunnel.on_control(
            &Control::Keepalive(control::Keepalive { nonce: 7 }),
            refresh,
            &AtomicU64::new(0),
        );
        let sent = maintained(&mut tunnel, refresh, &mut fresh);
        assert!(
            matches!(&sent[..], [Control::Join(control::Join { nonce: 7, groups, .. })] if groups.len() == 1),
            "{sent:?}"
        );
    }

    #[test]
    fn a_relay_silent_past_the_rebinding_time_is_asked_to_move_the_tunnel() {
        let start = Instant::now();
        let mut tunnel = tunnel(start);
        let mut fresh = nonces();
        let rejected = AtomicU64::new(0);
        // A keepalive goes out after a second; the relay does not answer it.
        let sent = maintained(&mut tunnel, start + KEEPALIVE_INTERVAL, &mut fresh);
        assert_eq!(sent, [Control::Keepalive(control::Keepalive { nonce: 7 })]);
        let silent = start + REBIND_AFTER;
        let sent = maintained(&mut tunnel, silent, &mut fresh);
        assert_eq!(sent, [hello(100, false)], "a HELLO with a fresh nonce");
        // Unanswered, the HELLO is repeated after REBIND_RETRY, with another nonce.
        assert!(maintained(&mut tunnel, silent + REBIND_RETRY / 2, &mut fresh).is_empty());
        let retried = maintained(&mut tunnel, silent + REBIND_RETRY, &mut fresh);
        assert!(retried.contains(&hello(101, false)), "{retried:?}");
        // The relay, hearing this node from its new address, challenges it: REBIND proves both
        // the old tunnel's credentials and the new address.
        let now = silent + REBIND_RETRY + Duration::from_millis(5);
        let challenge = Control::Challenge(control::Challenge {
            nonce: 101,
            mac: [9; control::MAC_LEN],
            refresh_secs: 60,
            limit: false,
        });
        tunnel.on_control(&challenge, now, &rejected);
        assert_eq!(
            tunnel.poll_transmit(),
            Some(Control::Rebind(control::Rebind {
                nonce: 101,
                mac: [9; control::MAC_LEN],
                old_nonce: 7,
                old_mac: [1; control::MAC_LEN],
            }))
        );
        // Its keepalive under the new nonce says the tunnel moved: the new credentials hold.
        tunnel.on_control(
            &Control::Keepalive(control::Keepalive { nonce: 101 }),
            now,
            &rejected,
        );
        assert_eq!((tunnel.nonce, tunnel.mac), (101, [9; control::MAC_LEN]));
        assert!(tunnel.rebinding.is_none());
        assert_eq!(tunnel.failure(now), None);
        assert_eq!(rejected.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_relay_that_still_hears_the_tunnel_ends_the_rebinding_and_a_stale_challenge_is_ignored() {
        let start = Instant::now();
        let mut tunnel = tunnel(start);
        let mut fresh = nonces();
        let silent = start + REBIND_AFTER;
        maintained(&mut tunnel, silent, &mut fresh);
        assert!(tunnel.rebinding.is_some());
        // A challenge for another nonce is not this rebinding's: nothing is sent.
        let stale = Control::Challenge(control::Challenge {
            nonce: 55,
            mac: [9; control::MAC_LEN],
            refresh_secs: 60,
            limit: false,
        });
        tunnel.on_control(&stale, silent, &AtomicU64::new(0));
        assert_eq!(tunnel.poll_transmit(), None);
        // The old tunnel's keepalive answer arrives after all: nothing to move.
        tunnel.on_control(
            &Control::Keepalive(control::Keepalive { nonce: 7 }),
            silent,
            &AtomicU64::new(0),
        );
        assert!(tunnel.rebinding.is_none());
        assert_eq!(tunnel.nonce, 7);
        assert_eq!(tunnel.failure(silent + Duration::from_secs(1)), None);
    }

    #[test]
    fn the_next_due_time_is_the_earliest_keepalive_rebinding_or_silence() {
        let now = Instant::now();
        let mut tunnel = tunnel(now);
        assert_eq!(tunnel.next_due(), Some(now + KEEPALIVE_INTERVAL));
        // Sending keeps the keepalive out quiet; only hearing nothing still asks for one.
        tunnel.last_sent = now + Duration::from_millis(800);
        assert_eq!(tunnel.next_due(), Some(now + KEEPALIVE_INTERVAL));
        tunnel.last_keepalive = now + Duration::from_millis(900);
        assert_eq!(
            tunnel.next_due(),
            Some(now + REBIND_AFTER),
            "heard nothing since: rebinding is next"
        );
        tunnel.rebinding = Some(Rebinding {
            nonce: 9,
            sent_at: now + REBIND_AFTER,
            mac: None,
        });
        assert_eq!(
            tunnel.next_due(),
            Some(now + Duration::from_millis(1800)),
            "a keepalive a second after the last send comes before the rebinding's retry"
        );
        // Sending a keepalive is sending.
        tunnel.last_sent = now + Duration::from_millis(1900);
        tunnel.last_keepalive = tunnel.last_sent;
        assert_eq!(tunnel.next_due(), Some(now + REBIND_AFTER + REBIND_RETRY));
        tunnel.client = false;
        assert_eq!(tunnel.next_due(), None);
    }
}
