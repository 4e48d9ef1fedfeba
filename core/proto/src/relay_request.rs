//! Asking Stratum 0 for relays, without I/O (`docs/reachability.md`, section 3): a
//! RELAY_REQUEST, answered with a COOKIE that the node echoes in a second RELAY_REQUEST (so that
//! Stratum 0 never asks the relays on behalf of an address that did not prove itself), then the
//! relays' OFFERs, collected for a short window after the first. [`RelayRequest`] is fed with
//! datagrams and the time and tested on a fake clock; the `sixcast` crate drives it on the
//! node's unicast socket.

use std::{
    net::SocketAddrV6,
    time::{Duration, Instant},
};

use crate::{
    error::{Error, ErrorKind, Result},
    wire::control::{self, Control},
};

/// A relay that offered to serve this node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayOffer {
    /// Where to open the tunnel: the offer's source address.
    pub address: SocketAddrV6,
    /// From the relay request to the offer's arrival.
    pub rtt: Duration,
    /// Share of the relay's capacity in use, in per mille.
    pub load: u16,
    /// Whether it is an SSM repeater: its traffic comes as source-specific multicast from its
    /// address instead of down a tunnel.
    pub repeater: bool,
}

/// How long a node collects relay offers after the first one arrives.
const OFFER_WINDOW: Duration = Duration::from_millis(200);
/// How long a node waits for Stratum 0's cookie and the relays' offers.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// One relay request, without I/O.
#[derive(Debug)]
pub struct RelayRequest {
    stratum0: SocketAddrV6,
    nonce: u64,
    started: Instant,
    /// The requests to send: the first, then one echoing each cookie.
    outbox: Vec<Control<'static>>,
    offers: Vec<RelayOffer>,
    first_offer: Option<Instant>,
}

impl RelayRequest {
    /// A request to `stratum0` with `nonce`, starting at `now` with the first RELAY_REQUEST.
    pub fn new(stratum0: SocketAddrV6, nonce: u64, now: Instant) -> Self {
        Self {
            stratum0,
            nonce,
            started: now,
            outbox: vec![Control::RelayRequest(control::RelayRequest {
                nonce,
                cookie: [0; control::MAC_LEN],
            })],
            offers: Vec::new(),
            first_offer: None,
        }
    }

    /// The Stratum 0 asked, where every message of [`poll_transmit`](Self::poll_transmit) goes.
    pub fn stratum0(&self) -> SocketAddrV6 {
        self.stratum0
    }

    /// The next message for Stratum 0, if one waits.
    pub fn poll_transmit(&mut self) -> Option<Control<'static>> {
        (!self.outbox.is_empty()).then(|| self.outbox.remove(0))
    }

    /// When the request ends: the offer window after the first offer, or the timeout.
    pub fn poll_timeout(&self) -> Instant {
        let deadline = self.started + REQUEST_TIMEOUT;
        self.first_offer
            .map_or(deadline, |first| (first + OFFER_WINDOW).min(deadline))
    }

    /// Takes a datagram from `source` at `now`: Stratum 0's cookie for this request, or a
    /// relay's offer (a relay at its limit offers nothing); anything else is ignored.
    pub fn on_datagram(&mut self, source: SocketAddrV6, datagram: &[u8], now: Instant) {
        match control::decode(datagram) {
            Ok(Control::Cookie(control::Cookie { nonce, cookie }))
                if nonce == self.nonce && source == self.stratum0 =>
            {
                self.outbox
                    .push(Control::RelayRequest(control::RelayRequest {
                        nonce,
                        cookie,
                    }));
            }
            Ok(Control::Offer(control::Offer {
                nonce,
                load,
                limit,
                repeater,
                ..
            })) if nonce == self.nonce && !limit => {
                self.first_offer.get_or_insert(now);
                if !self.offers.iter().any(|offer| offer.address == source) {
                    self.offers.push(RelayOffer {
                        address: source,
                        rtt: now.saturating_duration_since(self.started),
                        load,
                        repeater,
                    });
                }
            }
            _ => {}
        }
    }

    /// Once the request has ended at `now`: the offers, best first, or a timeout if none came.
    /// Repeaters come first (one copy serves every client), then the lowest round trip; among
    /// similar ones (within 1 ms) the least loaded.
    pub fn outcome(&self, now: Instant) -> Option<Result<Vec<RelayOffer>>> {
        if now < self.poll_timeout() {
            return None;
        }
        if self.offers.is_empty() {
            return Some(Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "no relay offered to serve this node within {REQUEST_TIMEOUT:?}; is a relay \
                     running on the core, next to Stratum 0 at {}?",
                    self.stratum0
                ),
            )));
        }
        let mut offers = self.offers.clone();
        offers.sort_by_key(|offer| (!offer.repeater, offer.rtt.as_millis(), offer.load));
        Some(Ok(offers))
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    const NONCE: u64 = 0x5c;

    fn at(last: u16, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(Ipv6Addr::new(0xfd5c, 0xc, 0, 0, 0, 0, 0, last), port, 0, 0)
    }

    fn stratum0() -> SocketAddrV6 {
        at(0x10, 6447)
    }

    fn cookie(nonce: u64, byte: u8) -> Vec<u8> {
        Control::Cookie(control::Cookie {
            nonce,
            cookie: [byte; control::MAC_LEN],
        })
        .to_vec()
        .unwrap()
    }

    fn offer(nonce: u64, load: u16, limit: bool, repeater: bool) -> Vec<u8> {
        Control::Offer(control::Offer {
            nonce,
            relay: at(0x21, 6448),
            load,
            limit,
            repeater,
        })
        .to_vec()
        .unwrap()
    }

    #[test]
    fn the_cookie_is_echoed_and_offers_are_taken_for_a_window_after_the_first() {
        let start = Instant::now();
        let mut request = RelayRequest::new(stratum0(), NONCE, start);
        assert_eq!(
            request.poll_transmit(),
            Some(Control::RelayRequest(control::RelayRequest {
                nonce: NONCE,
                cookie: [0; control::MAC_LEN]
            }))
        );
        assert_eq!(request.poll_transmit(), None);
        assert_eq!(request.poll_timeout(), start + REQUEST_TIMEOUT);
        request.on_datagram(
            stratum0(),
            &cookie(NONCE, 7),
            start + Duration::from_millis(1),
        );
        assert_eq!(
            request.poll_transmit(),
            Some(Control::RelayRequest(control::RelayRequest {
                nonce: NONCE,
                cookie: [7; control::MAC_LEN]
            }))
        );
        let first = start + Duration::from_millis(3);
        request.on_datagram(at(0x21, 6448), &offer(NONCE, 500, false, false), first);
        assert_eq!(request.poll_timeout(), first + OFFER_WINDOW);
        assert!(
            request
                .outcome(first + OFFER_WINDOW - Duration::from_millis(1))
                .is_none()
        );
        // Later offers within the window count; one relay's second offer does not.
        request.on_datagram(at(0x22, 6448), &offer(NONCE, 100, false, false), first);
        request.on_datagram(at(0x21, 6448), &offer(NONCE, 0, false, false), first);
        let offers = request.outcome(first + OFFER_WINDOW).unwrap().unwrap();
        let ranked: Vec<(SocketAddrV6, u16)> = offers
            .iter()
            .map(|offer| (offer.address, offer.load))
            .collect();
        assert_eq!(
            ranked,
            [(at(0x22, 6448), 100), (at(0x21, 6448), 500)],
            "similar round trips: the least loaded first"
        );
        assert_eq!(offers[0].rtt, Duration::from_millis(3));
    }

    #[test]
    fn repeaters_rank_first_then_the_lowest_round_trip() {
        let start = Instant::now();
        let mut request = RelayRequest::new(stratum0(), NONCE, start);
        let ms = |n| start + Duration::from_millis(n);
        request.on_datagram(at(0x21, 6448), &offer(NONCE, 0, false, false), ms(2));
        request.on_datagram(at(0x22, 6448), &offer(NONCE, 0, false, false), ms(9));
        request.on_datagram(at(0x23, 6448), &offer(NONCE, 900, false, true), ms(50));
        let offers = request.outcome(ms(2) + OFFER_WINDOW).unwrap().unwrap();
        let order: Vec<SocketAddrV6> = offers.iter().map(|offer| offer.address).collect();
        assert_eq!(order, [at(0x23, 6448), at(0x21, 6448), at(0x22, 6448)]);
    }

    #[test]
    fn full_relays_wrong_nonces_forged_cookies_and_junk_are_ignored_until_the_timeout() {
        let start = Instant::now();
        let mut request = RelayRequest::new(stratum0(), NONCE, start);
        request.poll_transmit();
        let now = start + Duration::from_millis(5);
        request.on_datagram(at(0x21, 6448), &offer(NONCE, 0, true, false), now);
        request.on_datagram(at(0x22, 6448), &offer(NONCE + 1, 0, false, false), now);
        // A cookie that is not Stratum 0's, or not for this request, is not echoed.
        request.on_datagram(at(0x21, 6448), &cookie(NONCE, 1), now);
        request.on_datagram(stratum0(), &cookie(NONCE + 1, 1), now);
        request.on_datagram(stratum0(), b"junk", now);
        assert_eq!(request.poll_transmit(), None);
        assert_eq!(request.poll_timeout(), start + REQUEST_TIMEOUT);
        assert!(request.outcome(now).is_none());
        let err = request
            .outcome(start + REQUEST_TIMEOUT)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.to_string().contains("no relay offered"), "{err}");
    }
}
