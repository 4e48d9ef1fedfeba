//! A node's side of the relay fallback: probe the core, and where native multicast does not
//! reach it, obtain relays through Stratum 0 and keep a tunnel to the best one, with the others
//! as spares (see `docs/reachability.md`).
//!
//! This module only speaks the control protocol; the channel layer decides what to send up the
//! tunnel and dispatches what comes down it.

use std::{
    collections::HashSet,
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime},
};

use tracing::{debug, info, warn};

use crate::{
    addr::Scope,
    crypto::{
        PublicKey,
        relay_identity::{self, RelayTrust},
    },
    discovery::{self, send_control},
    error::{Error, ErrorKind, Result},
    socket::{Interface, McastSocket, RecvBatch, Waker},
    wire::control::{self, Control, Mac},
};

mod request;

pub use sixcast_proto::relay_request::RelayOffer;

use request::request_relays;

/// How long a handshake with one relay may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Keepalives are sent this often on an otherwise quiet tunnel.
pub(crate) const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
/// A relay not heard for this long is considered gone, and a spare takes over.
pub(crate) const SILENCE_LIMIT: Duration = Duration::from_secs(3);
/// A relay not heard for this long may have lost this node to a NAT rebinding: the node proves
/// its (possibly new) address again and asks the relay to move the tunnel there.
pub(crate) const REBIND_AFTER: Duration = Duration::from_millis(1500);
/// How often a rebinding HELLO is repeated while no CHALLENGE answers it.
const REBIND_RETRY: Duration = Duration::from_millis(400);

/// What a node requires of the relays it tunnels through.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pinning<'a> {
    /// The pinned relay identity keys.
    pub(crate) keys: &'a [PublicKey],
    /// Trusted voucher issuers. With neither keys nor issuers, any relay will do (plain HELLO).
    pub(crate) issuers: &'a [PublicKey],
    /// The relay group of the node's scope, which vouchers must be for.
    pub(crate) group: Ipv6Addr,
    /// The address Stratum 0 saw this node at, if known: a signed challenge must name it.
    pub(crate) seen_as: Option<Ipv6Addr>,
    /// Counts relays refused for proving no pinned identity (and repeaters, which cannot).
    pub(crate) rejected: &'a AtomicU64,
}

impl Pinning<'_> {
    fn is_on(&self) -> bool {
        !self.keys.is_empty() || !self.issuers.is_empty()
    }

    fn trust(&self) -> RelayTrust<'_> {
        RelayTrust {
            keys: self.keys,
            issuers: self.issuers,
            group: self.group,
            now: SystemTime::now(),
        }
    }

    fn refuse(&self, relay: SocketAddrV6, why: &dyn std::fmt::Display) -> Error {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        warn!(%relay, "relay refused: {why}");
        Error::new(
            ErrorKind::Unsupported,
            format!("relay {relay} refused because {why}; relay keys are pinned"),
        )
    }
}

/// Whether `seen` could be this node's address as a relay saw it: a unicast address and a port,
/// and the address Stratum 0 saw when that is known.
fn plausible(seen: SocketAddrV6, seen_as: Option<Ipv6Addr>) -> bool {
    seen.port() != 0
        && !seen.ip().is_unspecified()
        && !seen.ip().is_multicast()
        && seen_as.is_none_or(|ip| ip == *seen.ip())
}

/// An open tunnel to a relay.
#[derive(Debug)]
pub(crate) struct Tunnel {
    pub(crate) relay: SocketAddrV6,
    /// The relay's identity key, when it proved one (relay keys are pinned): rebinding
    /// handshakes must be signed by the same key.
    identity: Option<PublicKey>,
    /// Whether `relay` is an SSM repeater.
    pub(crate) repeater: bool,
    /// The repeated groups joined from the repeater.
    pub(crate) repeated: HashSet<Ipv6Addr>,
    nonce: u64,
    mac: Mac,
    groups: HashSet<Ipv6Addr>,
    /// Whether the relay keeps state for this node: from its first JOIN on, also one of no
    /// group (a node that only sends).
    client: bool,
    pub(crate) last_heard: Instant,
    last_sent: Instant,
    last_keepalive: Instant,
    refresh: Duration,
    last_refresh: Instant,
    /// A rebinding in progress.
    rebinding: Option<Rebinding>,
    /// Whether the relay closed the tunnel (it is stopping): fail over at once.
    closed_by_relay: bool,
    /// Control messages for the relay, queued by the protocol and sent by the driver
    /// ([`transmit`](Self::transmit)): the protocol itself does no I/O.
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

/// Opens a tunnel to the relay or repeater of `offer` with the return-routability handshake and
/// joins `groups`. A repeater answers by SSM from its address on the repeater group, which
/// `socket` joins on `interfaces` first: the tunnel opens only where that SSM arrives.
///
/// With relay keys pinned, the handshake is SIGNED_HELLO and SIGNED_CHALLENGE, and a relay whose
/// answer does not prove a pinned identity is refused at once (counted in `pinning`), as is any
/// repeater: SSM service cannot prove who sends it.
pub(crate) fn open(
    socket: &McastSocket,
    waker: &Waker,
    offer: &RelayOffer,
    groups: &[Ipv6Addr],
    (scope, interfaces): (Scope, &[Interface]),
    pinning: Pinning<'_>,
) -> Result<Tunnel> {
    let relay = offer.address;
    if pinning.is_on() && offer.repeater {
        return Err(pinning.refuse(
            relay,
            &"it is an SSM repeater, which cannot prove an identity",
        ));
    }
    // A repeater's JOIN acknowledgment (by SSM) is the proof that SSM from it arrives: a node
    // with no channel yet joins the repeater group itself to get one.
    let check = [discovery::repeater_group(scope)];
    let groups = if offer.repeater && groups.is_empty() {
        &check[..]
    } else {
        groups
    };
    if offer.repeater {
        for interface in interfaces {
            match socket.join_source(discovery::repeater_group(scope), *relay.ip(), interface) {
                // Joined before, for an earlier attempt with this repeater.
                Err(err)
                    if err.io_error().and_then(std::io::Error::raw_os_error)
                        == Some(libc::EADDRINUSE) => {}
                joined => joined?,
            }
        }
    }
    let nonce = discovery::nonce()?;
    let mut batch = RecvBatch::new();
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    send_control(socket, &hello(nonce, pinning.is_on()), relay)?;
    let mut tunnel: Option<Tunnel> = None;
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        if !discovery::receive(socket, &mut batch, waker, left)? {
            continue;
        }
        for (meta, datagram) in batch.iter() {
            if meta.source != relay {
                continue;
            }
            let answer = control::decode(datagram);
            match answer {
                Ok(
                    ref challenge @ (Control::Challenge(control::Challenge {
                        nonce: echoed,
                        mac,
                        refresh_secs,
                        limit,
                    })
                    | Control::SignedChallenge(control::SignedChallenge {
                        nonce: echoed,
                        mac,
                        refresh_secs,
                        limit,
                        ..
                    })),
                ) if echoed == nonce => {
                    let identity = if pinning.is_on() {
                        let verified =
                            relay_identity::verify_challenge(challenge, &pinning.trust(), |seen| {
                                plausible(seen, pinning.seen_as)
                            });
                        Some(verified.map_err(|why| pinning.refuse(relay, &why))?)
                    } else {
                        None
                    };
                    if limit {
                        return Err(Error::new(
                            ErrorKind::Unsupported,
                            format!("relay {relay} takes no more clients"),
                        ));
                    }
                    let now = Instant::now();
                    let mut opened = Tunnel {
                        relay,
                        identity,
                        repeater: offer.repeater,
                        repeated: HashSet::new(),
                        nonce,
                        mac,
                        groups: HashSet::new(),
                        client: false,
                        last_heard: now,
                        last_sent: now,
                        last_keepalive: now,
                        refresh: Duration::from_secs(u64::from(refresh_secs.max(1))),
                        last_refresh: now,
                        rebinding: None,
                        closed_by_relay: false,
                        outbox: Vec::new(),
                    };
                    // Also with no group yet: the JOIN makes this node a client, which may
                    // send to channels it does not listen to.
                    opened.join(groups, now);
                    opened.transmit(socket)?;
                    tunnel = Some(opened);
                }
                // The relay acknowledges the JOIN with a keepalive: the tunnel is up.
                Ok(Control::Keepalive(control::Keepalive { nonce: echoed })) if echoed == nonce => {
                    if let Some(tunnel) = tunnel {
                        info!(%relay, "tunnel open");
                        return Ok(tunnel);
                    }
                }
                _ => {}
            }
        }
    }
    Err(Error::new(
        ErrorKind::Timeout,
        format!("relay {relay} did not complete the tunnel handshake within {HANDSHAKE_TIMEOUT:?}"),
    ))
}

/// The hello that starts a handshake: signed where the relay must prove its identity.
fn hello(nonce: u64, signed: bool) -> Control<'static> {
    if signed {
        Control::SignedHello(control::SignedHello { nonce })
    } else {
        Control::Hello(control::Hello { nonce })
    }
}

impl Tunnel {
    /// Sends what the protocol queued for the relay.
    pub(crate) fn transmit(&mut self, socket: &McastSocket) -> Result<()> {
        while let Some(message) = self.poll_transmit() {
            send_control(socket, &message, self.relay)?;
        }
        Ok(())
    }

    /// The next control message queued for the relay.
    pub(crate) fn poll_transmit(&mut self) -> Option<Control<'static>> {
        (!self.outbox.is_empty()).then(|| self.outbox.remove(0))
    }

    fn queue(&mut self, message: Control<'static>, now: Instant) {
        self.outbox.push(message);
        self.last_sent = now;
    }

    /// Asks the relay for `groups` as well (a JOIN covers at most 64 groups).
    /// Groups already joined are skipped, so joining the same list twice sends nothing.
    pub(crate) fn join(&mut self, groups: &[Ipv6Addr], now: Instant) {
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
    pub(crate) fn leave(&mut self, groups: &[Ipv6Addr], now: Instant) {
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

    /// Sends one channel datagram up the tunnel, for `group` (the channel's relayed twin).
    pub(crate) fn send_data(
        &mut self,
        socket: &McastSocket,
        group: Ipv6Addr,
        datagram: &[u8],
    ) -> Result<()> {
        send_control(
            socket,
            &Control::Data(control::Data { group, datagram }),
            self.relay,
        )?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Queues the keepalives, join refreshes and rebinding HELLOs due at `now` (none before
    /// the first JOIN: the relay has no state for this node then); `fresh` gives a rebinding
    /// its nonce.
    pub(crate) fn maintain(
        &mut self,
        now: Instant,
        fresh: &mut dyn FnMut() -> Result<u64>,
    ) -> Result<()> {
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
    pub(crate) fn on_control(&mut self, message: &Control<'_>, now: Instant, rejected: &AtomicU64) {
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
    pub(crate) fn send_keepalive(&mut self, now: Instant) {
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
    pub(crate) fn carries(&self, group: Ipv6Addr) -> bool {
        self.groups.contains(&group)
    }

    /// When [`maintain`](Self::maintain) or [`failure`](Self::failure) next has something to
    /// do if nothing is sent or heard meanwhile (what is sent or heard only moves it later),
    /// so that the driver sleeps until then instead of polling; `None` before the first JOIN,
    /// when neither has anything to do.
    pub(crate) fn next_due(&self) -> Option<Instant> {
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
    pub(crate) fn is_idle(&self) -> bool {
        self.groups.is_empty()
    }

    /// Why the tunnel must be given up, if it must: the relay closed it, or has been silent for
    /// too long.
    pub(crate) fn failure(&self, now: Instant) -> Option<&'static str> {
        if self.closed_by_relay {
            Some("the relay closed the tunnel")
        } else if self.client && now.saturating_duration_since(self.last_heard) >= SILENCE_LIMIT {
            Some("the relay went silent")
        } else {
            None
        }
    }

    /// Ends the tunnel politely (best effort: the relay also forgets silent clients), sending
    /// what was queued and a TEARDOWN. `old` is this node's address as the core sees it.
    pub(crate) fn close(&mut self, socket: &McastSocket, old: SocketAddrV6) {
        let teardown = Control::Teardown(control::Teardown {
            nonce: self.nonce,
            mac: self.mac,
            old,
        });
        self.queue(teardown, Instant::now());
        if let Err(err) = self.transmit(socket) {
            debug!("tearing down the tunnel to {}: {err}", self.relay);
        }
    }
}

/// Asks Stratum 0 for relays and opens a tunnel to the best one that completes the handshake
/// (and, with keys pinned, proves a pinned identity); returns it with every offer received.
pub(crate) fn establish(
    socket: &McastSocket,
    waker: &Waker,
    stratum0: SocketAddrV6,
    groups: &[Ipv6Addr],
    network: (Scope, &[Interface]),
    pinning: Pinning<'_>,
) -> Result<(Tunnel, Vec<RelayOffer>)> {
    let offers = request_relays(socket, waker, stratum0)?;
    let mut last_error = None;
    for offer in &offers {
        match open(socket, waker, offer, groups, network, pinning) {
            Ok(tunnel) => return Ok((tunnel, offers)),
            Err(err) => {
                debug!(relay = %offer.address, "{err}");
                last_error = Some(err);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| Error::new(ErrorKind::Timeout, "no relay could be reached")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tunnel(now: Instant) -> Tunnel {
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
