//! Choosing a relay: handshakes with the offered relays, best first and one at a time, until
//! one opens a tunnel. Used for the offers of a relay request, and for the spares when a
//! tunnel fails over.

use std::{
    collections::VecDeque,
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::AtomicU64,
    time::Instant,
};

use tracing::debug;

use super::{Handshake, Pinning, Tunnel};
use crate::{
    addr::Scope,
    discovery,
    error::{Error, ErrorKind, Result},
    relay_request::RelayOffer,
    wire::control::Control,
};

/// What a [`Connector`] did, for its driver.
#[derive(Debug)]
pub enum Progress {
    /// A handshake with this relay starts. Where it is a repeater, the driver joins its
    /// repeater group (source-specific, from its address) before sending the HELLO.
    Trying(RelayOffer),
    /// The tunnel is open; the offers after its relay, not tried, are the spares.
    Opened {
        /// The open tunnel (boxed: it is large beside the other variants).
        tunnel: Box<Tunnel>,
        /// The offers not tried, best first.
        untried: Vec<RelayOffer>,
    },
    /// No offered relay opened a tunnel: why the last one did not.
    Failed(Error),
}

/// Opens a tunnel to the first offered relay that completes its handshake, without I/O.
#[derive(Debug)]
pub struct Connector {
    offers: VecDeque<RelayOffer>,
    groups: Vec<Ipv6Addr>,
    scope: Scope,
    pinning: Pinning,
    current: Option<Handshake>,
    last_error: Option<Error>,
}

impl Connector {
    /// Tries `offers` in their order; the tunnel joins `groups`. A repeater is asked for the
    /// repeater group of `scope` where there are none: its acknowledgment, by SSM, is the proof
    /// that SSM from it arrives.
    pub fn new(
        offers: Vec<RelayOffer>,
        groups: &[Ipv6Addr],
        scope: Scope,
        pinning: Pinning,
    ) -> Self {
        Self {
            offers: offers.into(),
            groups: groups.to_vec(),
            scope,
            pinning,
            current: None,
            last_error: None,
        }
    }

    /// Moves on at `now`: `None` while a handshake waits for its relay, else what happened. A
    /// handshake that failed gives way to the next offer, with a nonce from `fresh`; refusals of
    /// relays that prove no pinned identity are counted in `rejected`.
    pub fn poll(
        &mut self,
        now: Instant,
        fresh: &mut dyn FnMut() -> Result<u64>,
        rejected: &AtomicU64,
    ) -> Option<Progress> {
        if let Some(handshake) = &mut self.current {
            match handshake.finish(now)? {
                Ok(tunnel) => {
                    self.current = None;
                    let untried = self.offers.drain(..).collect();
                    return Some(Progress::Opened {
                        tunnel: Box::new(tunnel),
                        untried,
                    });
                }
                Err(err) => {
                    debug!(relay = %handshake.relay(), "{err}");
                    self.current = None;
                    self.last_error = Some(err);
                }
            }
        }
        while let Some(offer) = self.offers.pop_front() {
            let check = [discovery::repeater_group(self.scope)];
            let groups = if offer.repeater && self.groups.is_empty() {
                &check[..]
            } else {
                &self.groups
            };
            let started = fresh().and_then(|nonce| {
                Handshake::new(&offer, groups, nonce, self.pinning.clone(), now, rejected)
            });
            match started {
                Ok(handshake) => {
                    self.current = Some(handshake);
                    return Some(Progress::Trying(offer));
                }
                Err(err) => {
                    debug!(relay = %offer.address, "{err}");
                    self.last_error = Some(err);
                }
            }
        }
        Some(Progress::Failed(self.last_error.take().unwrap_or_else(
            || Error::new(ErrorKind::Timeout, "no relay could be reached"),
        )))
    }

    /// The next message to send, with the relay it is for.
    pub fn poll_transmit(&mut self) -> Option<(Control<'static>, SocketAddrV6)> {
        let handshake = self.current.as_mut()?;
        let relay = handshake.relay();
        handshake.poll_transmit().map(|message| (message, relay))
    }

    /// When [`poll`](Self::poll) next has something to do if nothing arrives meanwhile.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.current.as_ref().map(Handshake::poll_timeout)
    }

    /// Takes a datagram from `source` at `now`, for the handshake under way.
    pub fn on_datagram(
        &mut self,
        source: SocketAddrV6,
        datagram: &[u8],
        now: Instant,
        rejected: &AtomicU64,
    ) {
        if let Some(handshake) = &mut self.current {
            handshake.on_datagram(source, datagram, now, rejected);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::atomic::Ordering, time::Duration};

    use super::*;
    use crate::{
        crypto::SigningKey,
        tunnel::{HANDSHAKE_TIMEOUT, handshake::tests::pinning},
        wire::control,
    };

    fn offer(last: u16, repeater: bool) -> RelayOffer {
        RelayOffer {
            address: SocketAddrV6::new(Ipv6Addr::new(0xfd5c, 0xc, 0, 0, 0, 0, 0, last), 6448, 0, 0),
            rtt: Duration::from_millis(1),
            load: 0,
            repeater,
        }
    }

    /// Nonces 100, 101, ... for the handshakes.
    fn nonces() -> impl FnMut() -> Result<u64> {
        let mut next = 99;
        move || {
            next += 1;
            Ok(next)
        }
    }

    fn answer(message: Control<'_>) -> Vec<u8> {
        message.to_vec().unwrap()
    }

    /// Answers the handshake with nonce `nonce` as `relay` would: a challenge, then the JOIN's
    /// acknowledgment.
    fn complete(connector: &mut Connector, relay: SocketAddrV6, nonce: u64, now: Instant) {
        let rejected = AtomicU64::new(0);
        let challenge = answer(Control::Challenge(control::Challenge {
            nonce,
            mac: [3; control::MAC_LEN],
            refresh_secs: 30,
            limit: false,
        }));
        connector.on_datagram(relay, &challenge, now, &rejected);
        let keepalive = answer(Control::Keepalive(control::Keepalive { nonce }));
        connector.on_datagram(relay, &keepalive, now, &rejected);
    }

    #[test]
    fn a_silent_relay_gives_way_to_the_next_after_the_handshake_timeout() {
        let (first, second, third) = (offer(1, false), offer(2, false), offer(3, false));
        let mut connector = Connector::new(
            vec![first.clone(), second.clone(), third.clone()],
            &[],
            Scope::Site,
            pinning(&[]),
        );
        let mut fresh = nonces();
        let rejected = AtomicU64::new(0);
        let start = Instant::now();
        assert!(matches!(
            connector.poll(start, &mut fresh, &rejected),
            Some(Progress::Trying(offer)) if offer == first
        ));
        assert_eq!(
            connector.poll_transmit(),
            Some((Control::Hello(control::Hello { nonce: 100 }), first.address))
        );
        assert!(connector.poll(start, &mut fresh, &rejected).is_none());
        let timeout = start + HANDSHAKE_TIMEOUT;
        assert_eq!(connector.poll_timeout(), Some(timeout));
        assert!(matches!(
            connector.poll(timeout, &mut fresh, &rejected),
            Some(Progress::Trying(offer)) if offer == second
        ));
        assert_eq!(
            connector.poll_transmit(),
            Some((
                Control::Hello(control::Hello { nonce: 101 }),
                second.address
            ))
        );
        // A late answer of the first relay counts for nothing.
        complete(&mut connector, first.address, 100, timeout);
        assert!(connector.poll(timeout, &mut fresh, &rejected).is_none());
        complete(&mut connector, second.address, 101, timeout);
        match connector.poll(timeout, &mut fresh, &rejected) {
            Some(Progress::Opened { tunnel, untried }) => {
                assert_eq!(tunnel.relay(), second.address);
                assert_eq!(untried, [third]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn when_every_relay_fails_the_last_reason_is_given() {
        let mut connector = Connector::new(vec![offer(1, false)], &[], Scope::Site, pinning(&[]));
        let (mut fresh, rejected, start) = (nonces(), AtomicU64::new(0), Instant::now());
        assert!(matches!(
            connector.poll(start, &mut fresh, &rejected),
            Some(Progress::Trying(_))
        ));
        let full = answer(Control::Challenge(control::Challenge {
            nonce: 100,
            mac: [3; control::MAC_LEN],
            refresh_secs: 30,
            limit: true,
        }));
        connector.on_datagram(offer(1, false).address, &full, start, &rejected);
        match connector.poll(start, &mut fresh, &rejected) {
            Some(Progress::Failed(err)) => {
                assert!(err.to_string().contains("no more clients"), "{err}");
            }
            other => panic!("{other:?}"),
        }
        let mut nothing = Connector::new(Vec::new(), &[], Scope::Site, pinning(&[]));
        assert!(matches!(
            nothing.poll(start, &mut fresh, &rejected),
            Some(Progress::Failed(err)) if err.kind() == ErrorKind::Timeout
        ));
    }

    #[test]
    fn with_keys_pinned_repeaters_are_skipped_without_a_hello() {
        let keys = [SigningKey::generate().unwrap().public_key()];
        let relay = offer(2, false);
        let mut connector = Connector::new(
            vec![offer(1, true), relay.clone()],
            &[],
            Scope::Site,
            pinning(&keys),
        );
        let (mut fresh, rejected, start) = (nonces(), AtomicU64::new(0), Instant::now());
        assert!(matches!(
            connector.poll(start, &mut fresh, &rejected),
            Some(Progress::Trying(offer)) if offer == relay
        ));
        assert_eq!(rejected.load(Ordering::Relaxed), 1);
        assert!(matches!(
            connector.poll_transmit(),
            Some((Control::SignedHello(_), address)) if address == relay.address
        ));
    }

    #[test]
    fn a_repeater_with_no_group_to_carry_is_asked_for_the_repeater_group() {
        let repeater = offer(1, true);
        let mut connector = Connector::new(vec![repeater.clone()], &[], Scope::Site, pinning(&[]));
        let (mut fresh, rejected, start) = (nonces(), AtomicU64::new(0), Instant::now());
        assert!(matches!(
            connector.poll(start, &mut fresh, &rejected),
            Some(Progress::Trying(offer)) if offer.repeater
        ));
        connector.poll_transmit();
        let challenge = answer(Control::Challenge(control::Challenge {
            nonce: 100,
            mac: [3; control::MAC_LEN],
            refresh_secs: 30,
            limit: false,
        }));
        connector.on_datagram(repeater.address, &challenge, start, &rejected);
        assert_eq!(
            connector.poll_transmit(),
            Some((
                Control::Join(control::Join {
                    nonce: 100,
                    mac: [3; control::MAC_LEN],
                    groups: vec![discovery::repeater_group(Scope::Site)],
                }),
                repeater.address
            ))
        );
    }
}
