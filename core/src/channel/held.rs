//! What a context sent before it knew its path to the core. Native multicast may not reach the
//! core from here, so a copy of each datagram waits, within [`HELD_BYTES`], to go up the tunnel
//! if one opens; once the core is known to be reached natively, or a gateway of the segment is
//! known to serve a channel, the copies (of that channel's) are dropped. Receivers deduplicate a
//! message that arrives both ways.

use std::{collections::VecDeque, net::Ipv6Addr};

/// The most bytes of datagrams held at once; beyond, the oldest go (and are counted).
pub(super) const HELD_BYTES: usize = 1 << 20;

/// A datagram held: its channel's group, that channel's relayed twin, and the bytes.
#[derive(Debug)]
pub(super) struct HeldDatagram {
    group: Ipv6Addr,
    pub(super) relayed: Ipv6Addr,
    pub(super) bytes: Vec<u8>,
}

/// Datagrams sent before the path was known.
#[derive(Debug, Default)]
pub(super) struct Held {
    datagrams: VecDeque<HeldDatagram>,
    bytes: usize,
    dropped: u64,
}

impl Held {
    /// Keeps copies of `datagrams`, sent natively to the channel of `group` whose relayed twin
    /// is `relayed`, dropping the oldest held beyond [`HELD_BYTES`].
    pub(super) fn hold(&mut self, group: Ipv6Addr, relayed: Ipv6Addr, datagrams: &[Vec<u8>]) {
        for datagram in datagrams {
            self.bytes += datagram.len();
            self.datagrams.push_back(HeldDatagram {
                group,
                relayed,
                bytes: datagram.clone(),
            });
        }
        while self.bytes > HELD_BYTES {
            let Some(oldest) = self.datagrams.pop_front() else {
                break;
            };
            self.bytes -= oldest.bytes.len();
            self.dropped += 1;
        }
    }

    /// Takes what is held, oldest first, to send up a tunnel.
    pub(super) fn take(&mut self) -> VecDeque<HeldDatagram> {
        self.bytes = 0;
        std::mem::take(&mut self.datagrams)
    }

    /// Drops what is held of the channels whose group `carried` says native multicast or a
    /// gateway carried.
    pub(super) fn forget(&mut self, carried: impl Fn(Ipv6Addr) -> bool) {
        self.datagrams.retain(|datagram| !carried(datagram.group));
        self.bytes = self
            .datagrams
            .iter()
            .map(|datagram| datagram.bytes.len())
            .sum();
    }

    /// Datagrams dropped so far to stay within [`HELD_BYTES`]: they went out natively only.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 1);
    const RELAYED: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 2);
    const OTHER: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 3);
    const OTHER_RELAYED: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 4);

    #[test]
    fn holds_in_order_within_its_bytes_and_counts_what_it_drops() {
        let mut held = Held::default();
        let datagram = |byte: u8| vec![byte; HELD_BYTES / 4];
        held.hold(GROUP, RELAYED, &[datagram(1), datagram(2), datagram(3)]);
        held.hold(GROUP, RELAYED, &[datagram(4), datagram(5)]);
        assert_eq!(held.dropped(), 1);
        let taken: Vec<u8> = held
            .take()
            .into_iter()
            .map(|datagram| datagram.bytes[0])
            .collect();
        assert_eq!(taken, [2, 3, 4, 5]);
        assert!(held.take().is_empty());
        held.hold(GROUP, RELAYED, &[datagram(6)]);
        held.forget(|_| true);
        assert!(held.take().is_empty());
        assert_eq!(held.dropped(), 1);
    }

    #[test]
    fn forgets_only_the_channels_carried_and_frees_their_bytes() {
        let mut held = Held::default();
        let datagram = |byte: u8| vec![byte; HELD_BYTES / 4];
        held.hold(GROUP, RELAYED, &[datagram(1)]);
        held.hold(OTHER, OTHER_RELAYED, &[datagram(2), datagram(3)]);
        held.hold(GROUP, RELAYED, &[datagram(4)]);
        held.forget(|group| group == GROUP);
        // Room for two more without dropping: the forgotten bytes no longer count.
        held.hold(OTHER, OTHER_RELAYED, &[datagram(5), datagram(6)]);
        assert_eq!(held.dropped(), 0);
        let taken: Vec<(Ipv6Addr, u8)> = held
            .take()
            .into_iter()
            .map(|datagram| (datagram.relayed, datagram.bytes[0]))
            .collect();
        assert_eq!(
            taken,
            [2, 3, 5, 6].map(|byte| (OTHER_RELAYED, byte)),
            "the other channel's, in order, up the tunnel to its twin"
        );
    }
}
