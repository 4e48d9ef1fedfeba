//! What a context sent before it knew its path to the core. Native multicast may not reach the
//! core from here, so a copy of each datagram waits, within [`HELD_BYTES`], to go up the tunnel
//! if one opens; once the core is known to be reached natively, or through a gateway of the
//! segment, the copies are dropped. Receivers deduplicate a message that arrives both ways.

use std::{collections::VecDeque, net::Ipv6Addr};

/// The most bytes of datagrams held at once; beyond, the oldest go (and are counted).
pub(super) const HELD_BYTES: usize = 1 << 20;

/// Datagrams sent before the path was known, each with the relayed group of its channel.
#[derive(Debug, Default)]
pub(super) struct Held {
    datagrams: VecDeque<(Ipv6Addr, Vec<u8>)>,
    bytes: usize,
    dropped: u64,
}

impl Held {
    /// Keeps copies of `datagrams`, sent natively to the channel whose relayed group is
    /// `relayed`, dropping the oldest held beyond [`HELD_BYTES`].
    pub(super) fn hold(&mut self, relayed: Ipv6Addr, datagrams: &[Vec<u8>]) {
        for datagram in datagrams {
            self.bytes += datagram.len();
            self.datagrams.push_back((relayed, datagram.clone()));
        }
        while self.bytes > HELD_BYTES {
            let Some((_, oldest)) = self.datagrams.pop_front() else {
                break;
            };
            self.bytes -= oldest.len();
            self.dropped += 1;
        }
    }

    /// Takes what is held, oldest first, to send up a tunnel.
    pub(super) fn take(&mut self) -> VecDeque<(Ipv6Addr, Vec<u8>)> {
        self.bytes = 0;
        std::mem::take(&mut self.datagrams)
    }

    /// Drops what is held: native multicast or a gateway carried it.
    pub(super) fn forget(&mut self) {
        self.datagrams.clear();
        self.bytes = 0;
    }

    /// Datagrams dropped so far to stay within [`HELD_BYTES`]: they went out natively only.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RELAYED: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 1);

    #[test]
    fn holds_in_order_within_its_bytes_and_counts_what_it_drops() {
        let mut held = Held::default();
        let datagram = |byte: u8| vec![byte; HELD_BYTES / 4];
        held.hold(RELAYED, &[datagram(1), datagram(2), datagram(3)]);
        held.hold(RELAYED, &[datagram(4), datagram(5)]);
        assert_eq!(held.dropped(), 1);
        let taken: Vec<u8> = held.take().into_iter().map(|(_, bytes)| bytes[0]).collect();
        assert_eq!(taken, [2, 3, 4, 5]);
        assert!(held.take().is_empty());
        held.hold(RELAYED, &[datagram(6)]);
        held.forget();
        assert!(held.take().is_empty());
        assert_eq!(held.dropped(), 1);
    }
}
