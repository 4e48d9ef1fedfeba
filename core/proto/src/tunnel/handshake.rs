//! Opening a tunnel: the node's HELLO (SIGNED_HELLO where relay keys are pinned), the relay's
//! CHALLENGE proving that the node's address is its own, and the node's JOIN, which the relay
//! acknowledges with a KEEPALIVE.

use std::{
    collections::HashSet,
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant, SystemTime},
};

use tracing::{info, warn};

use super::{HANDSHAKE_TIMEOUT, Tunnel, hello, plausible};
use crate::{
    crypto::{
        PublicKey,
        relay_identity::{self, RelayTrust},
    },
    error::{Error, ErrorKind, Result},
    relay_request::RelayOffer,
    wire::control::{self, Control},
};

/// What a node requires of the relays it tunnels through.
#[derive(Debug, Clone)]
pub struct Pinning {
    /// The pinned relay identity keys.
    pub keys: Vec<PublicKey>,
    /// Trusted voucher issuers. With neither keys nor issuers, any relay will do (plain HELLO).
    pub issuers: Vec<PublicKey>,
    /// The relay group of the node's scope, which vouchers must be for.
    pub group: Ipv6Addr,
    /// The address Stratum 0 saw this node at, if known: a signed challenge must name it.
    pub seen_as: Option<Ipv6Addr>,
}

impl Pinning {
    fn is_on(&self) -> bool {
        !self.keys.is_empty() || !self.issuers.is_empty()
    }

    fn trust(&self) -> RelayTrust<'_> {
        RelayTrust {
            keys: &self.keys,
            issuers: &self.issuers,
            group: self.group,
            now: SystemTime::now(),
        }
    }

    /// Refuses `relay`, counted in `rejected`.
    fn refuse(relay: SocketAddrV6, why: &dyn std::fmt::Display, rejected: &AtomicU64) -> Error {
        rejected.fetch_add(1, Ordering::Relaxed);
        warn!(%relay, "relay refused: {why}");
        Error::new(
            ErrorKind::Unsupported,
            format!("relay {relay} refused because {why}; relay keys are pinned"),
        )
    }
}

/// One handshake with the relay or repeater of an offer, without I/O.
///
/// With relay keys pinned, the handshake is SIGNED_HELLO and SIGNED_CHALLENGE, and a relay whose
/// answer does not prove a pinned identity is refused at once, as is any repeater: SSM service
/// cannot prove who sends it. Refusals are counted in the `rejected` the methods take. A
/// repeater answers by SSM from its address, which the driver must have joined before it sends
/// the HELLO.
#[derive(Debug)]
pub struct Handshake {
    offer: RelayOffer,
    groups: Vec<Ipv6Addr>,
    nonce: u64,
    pinning: Pinning,
    started: Instant,
    outbox: Vec<Control<'static>>,
    /// The tunnel, from the relay's CHALLENGE on: its JOIN awaits the relay's KEEPALIVE.
    opened: Option<Tunnel>,
    /// How the handshake ended, before the timeout: refused, or the tunnel is up.
    ended: Option<Result<Tunnel>>,
}

impl Handshake {
    /// A handshake with `offer`'s relay, with `nonce`, starting at `now` with the HELLO; the
    /// tunnel joins `groups` (none makes the node a client that only sends). A repeater is
    /// refused at once where relay keys are pinned (counted in `rejected`).
    pub fn new(
        offer: &RelayOffer,
        groups: &[Ipv6Addr],
        nonce: u64,
        pinning: Pinning,
        now: Instant,
        rejected: &AtomicU64,
    ) -> Result<Self> {
        if pinning.is_on() && offer.repeater {
            return Err(Pinning::refuse(
                offer.address,
                &"it is an SSM repeater, which cannot prove an identity",
                rejected,
            ));
        }
        Ok(Self {
            offer: offer.clone(),
            groups: groups.to_vec(),
            nonce,
            outbox: vec![hello(nonce, pinning.is_on())],
            pinning,
            started: now,
            opened: None,
            ended: None,
        })
    }

    /// The relay this handshake is with.
    pub fn relay(&self) -> SocketAddrV6 {
        self.offer.address
    }

    /// The next message for the relay, if one waits.
    pub fn poll_transmit(&mut self) -> Option<Control<'static>> {
        if !self.outbox.is_empty() {
            return Some(self.outbox.remove(0));
        }
        self.opened.as_mut().and_then(Tunnel::poll_transmit)
    }

    /// When the handshake gives up if the relay has not completed it.
    pub fn poll_timeout(&self) -> Instant {
        self.started + HANDSHAKE_TIMEOUT
    }

    /// Takes a datagram from `source` at `now`: the relay's CHALLENGE to this HELLO, or its
    /// KEEPALIVE acknowledging the JOIN; anything else, and anything from elsewhere, is ignored.
    /// A challenge that proves no pinned identity is counted in `rejected`.
    pub fn on_datagram(
        &mut self,
        source: SocketAddrV6,
        datagram: &[u8],
        now: Instant,
        rejected: &AtomicU64,
    ) {
        let relay = self.offer.address;
        if source != relay || self.ended.is_some() {
            return;
        }
        match control::decode(datagram) {
            Ok(
                ref challenge @ (Control::Challenge(control::Challenge {
                    nonce,
                    mac,
                    refresh_secs,
                    limit,
                })
                | Control::SignedChallenge(control::SignedChallenge {
                    nonce,
                    mac,
                    refresh_secs,
                    limit,
                    ..
                })),
            ) if nonce == self.nonce => {
                let identity = if self.pinning.is_on() {
                    let seen_as = self.pinning.seen_as;
                    let verified = relay_identity::verify_challenge(
                        challenge,
                        &self.pinning.trust(),
                        |seen| plausible(seen, seen_as),
                    );
                    match verified {
                        Ok(identity) => Some(identity),
                        Err(why) => {
                            self.ended = Some(Err(Pinning::refuse(relay, &why, rejected)));
                            return;
                        }
                    }
                } else {
                    None
                };
                if limit {
                    self.ended = Some(Err(Error::new(
                        ErrorKind::Unsupported,
                        format!("relay {relay} takes no more clients"),
                    )));
                    return;
                }
                let mut tunnel = Tunnel {
                    relay,
                    identity,
                    repeater: self.offer.repeater,
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
                // Also with no group yet: the JOIN makes this node a client, which may send to
                // channels it does not listen to.
                tunnel.join(&self.groups, now);
                self.opened = Some(tunnel);
            }
            // The relay acknowledges the JOIN with a keepalive: the tunnel is up.
            Ok(Control::Keepalive(control::Keepalive { nonce })) if nonce == self.nonce => {
                if let Some(tunnel) = self.opened.take() {
                    info!(%relay, "tunnel open");
                    self.ended = Some(Ok(tunnel));
                }
            }
            _ => {}
        }
    }

    /// How the handshake ended, once it has at `now`: the open tunnel, or why there is none (a
    /// refusal, or no answer within [`HANDSHAKE_TIMEOUT`]). Taken once.
    pub fn finish(&mut self, now: Instant) -> Option<Result<Tunnel>> {
        if let Some(ended) = self.ended.take() {
            return Some(ended);
        }
        (now >= self.poll_timeout()).then(|| {
            Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "relay {} did not complete the tunnel handshake within {HANDSHAKE_TIMEOUT:?}",
                    self.offer.address
                ),
            ))
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::SigningKey;

    const NONCE: u64 = 0x5c;

    fn relay() -> SocketAddrV6 {
        "[fd5c:c::21]:6448".parse().unwrap()
    }

    fn node() -> SocketAddrV6 {
        "[fd5c:a::2]:40000".parse().unwrap()
    }

    fn group() -> Ipv6Addr {
        "ff1e::5c".parse().unwrap()
    }

    fn offer(repeater: bool) -> RelayOffer {
        RelayOffer {
            address: relay(),
            rtt: Duration::from_millis(1),
            load: 0,
            repeater,
        }
    }

    pub(crate) fn pinning(keys: &[PublicKey]) -> Pinning {
        Pinning {
            keys: keys.to_vec(),
            issuers: Vec::new(),
            group: "ff1e::1".parse().unwrap(),
            seen_as: Some(*node().ip()),
        }
    }

    fn handshake(
        repeater: bool,
        groups: &[Ipv6Addr],
        keys: &[PublicKey],
        rejected: &AtomicU64,
        now: Instant,
    ) -> Result<Handshake> {
        Handshake::new(
            &offer(repeater),
            groups,
            NONCE,
            pinning(keys),
            now,
            rejected,
        )
    }

    fn challenge(nonce: u64, limit: bool) -> Vec<u8> {
        Control::Challenge(control::Challenge {
            nonce,
            mac: [9; control::MAC_LEN],
            refresh_secs: 30,
            limit,
        })
        .to_vec()
        .unwrap()
    }

    fn keepalive(nonce: u64) -> Vec<u8> {
        Control::Keepalive(control::Keepalive { nonce })
            .to_vec()
            .unwrap()
    }

    fn sent(handshake: &mut Handshake) -> Vec<Control<'static>> {
        std::iter::from_fn(|| handshake.poll_transmit()).collect()
    }

    #[test]
    fn hello_challenge_join_and_keepalive_open_the_tunnel() {
        let rejected = AtomicU64::new(0);
        let start = Instant::now();
        let mut handshake = handshake(false, &[group()], &[], &rejected, start).unwrap();
        assert_eq!(
            sent(&mut handshake),
            [Control::Hello(control::Hello { nonce: NONCE })]
        );
        let step = |n| start + Duration::from_millis(n);
        // Neither a keepalive before the challenge, another nonce, nor another source counts.
        handshake.on_datagram(relay(), &keepalive(NONCE), step(1), &rejected);
        handshake.on_datagram(relay(), &challenge(NONCE + 1, false), step(2), &rejected);
        handshake.on_datagram(node(), &challenge(NONCE, false), step(3), &rejected);
        assert!(sent(&mut handshake).is_empty());
        assert!(handshake.finish(step(4)).is_none());
        handshake.on_datagram(relay(), &challenge(NONCE, false), step(5), &rejected);
        assert_eq!(
            sent(&mut handshake),
            [Control::Join(control::Join {
                nonce: NONCE,
                mac: [9; control::MAC_LEN],
                groups: vec![group()],
            })]
        );
        assert!(
            handshake.finish(step(6)).is_none(),
            "the JOIN is not acknowledged yet"
        );
        handshake.on_datagram(relay(), &keepalive(NONCE), step(7), &rejected);
        let tunnel = handshake.finish(step(8)).unwrap().unwrap();
        assert_eq!(tunnel.relay(), relay());
        assert!(tunnel.carries(group()) && !tunnel.is_repeater());
        assert_eq!(tunnel.failure(step(7)), None);
        assert_eq!(rejected.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_node_that_joins_nothing_still_becomes_a_client() {
        let rejected = AtomicU64::new(0);
        let start = Instant::now();
        let mut handshake = handshake(false, &[], &[], &rejected, start).unwrap();
        sent(&mut handshake);
        handshake.on_datagram(relay(), &challenge(NONCE, false), start, &rejected);
        assert_eq!(
            sent(&mut handshake),
            [Control::Join(control::Join {
                nonce: NONCE,
                mac: [9; control::MAC_LEN],
                groups: vec![],
            })]
        );
    }

    #[test]
    fn a_relay_at_its_limit_ends_the_handshake_at_once() {
        let rejected = AtomicU64::new(0);
        let start = Instant::now();
        let mut handshake = handshake(false, &[group()], &[], &rejected, start).unwrap();
        sent(&mut handshake);
        handshake.on_datagram(relay(), &challenge(NONCE, true), start, &rejected);
        assert!(sent(&mut handshake).is_empty(), "no JOIN to a full relay");
        let err = handshake.finish(start).unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.to_string().contains("no more clients"), "{err}");
    }

    #[test]
    fn a_silent_relay_times_the_handshake_out() {
        let rejected = AtomicU64::new(0);
        let start = Instant::now();
        let mut handshake = handshake(false, &[group()], &[], &rejected, start).unwrap();
        assert_eq!(handshake.poll_timeout(), start + HANDSHAKE_TIMEOUT);
        let just_before = start + HANDSHAKE_TIMEOUT - Duration::from_millis(1);
        assert!(handshake.finish(just_before).is_none());
        let err = handshake
            .finish(start + HANDSHAKE_TIMEOUT)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
    }

    #[test]
    fn with_keys_pinned_a_repeater_is_refused_before_any_hello() {
        let keys = [SigningKey::generate().unwrap().public_key()];
        let rejected = AtomicU64::new(0);
        let start = Instant::now();
        let err = handshake(true, &[group()], &keys, &rejected, start).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert_eq!(rejected.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn with_keys_pinned_only_a_challenge_signed_by_a_pinned_key_opens_the_tunnel() {
        let pinned = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let keys = [pinned.public_key()];
        let rejected = AtomicU64::new(0);
        let start = Instant::now();
        let signed = |identity: &SigningKey| {
            relay_identity::sign_challenge(
                (identity, None),
                (NONCE, [9; control::MAC_LEN]),
                30,
                false,
                node(),
            )
            .to_vec()
            .unwrap()
        };
        for (answer, opens) in [
            (challenge(NONCE, false), false),
            (signed(&other), false),
            (signed(&pinned), true),
        ] {
            let mut handshake = handshake(false, &[group()], &keys, &rejected, start).unwrap();
            assert_eq!(
                sent(&mut handshake),
                [Control::SignedHello(control::SignedHello { nonce: NONCE })]
            );
            handshake.on_datagram(relay(), &answer, start, &rejected);
            handshake.on_datagram(relay(), &keepalive(NONCE), start, &rejected);
            let opened = handshake.finish(start).unwrap();
            assert_eq!(opened.is_ok(), opens, "{opened:?}");
        }
        assert_eq!(rejected.load(Ordering::Relaxed), 2);
    }
}
