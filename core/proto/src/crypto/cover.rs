//! One signature for many datagrams: the digest a manifest lists for each covered datagram,
//! and the receiver's state machine that holds covered datagrams until a verified manifest
//! lists them (`docs/security.md`, section 7). No I/O; time is passed in.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::Ipv6Addr,
    time::{Duration, Instant},
};

use crate::wire::{
    NodeId,
    manifest::{DIGEST_LEN, Digest, MAX_DIGESTS},
};

/// BLAKE3 key-derivation context of the key of a channel's digests.
pub const DIGEST_CONTEXT: &str = "sixcast 2026-12 manifest digest v1";

/// The digest of `datagram` (as sent: sealed and flagged COVERED) on the channel whose
/// canonical group is `group`: the first [`DIGEST_LEN`] bytes of the BLAKE3 keyed hash of the
/// datagram, keyed with [`digest_key`]`(group)`. [`Protection::digest`](super::Protection::digest)
/// gives the same with the key derived once.
pub fn digest(group: Ipv6Addr, datagram: &[u8]) -> Digest {
    keyed_digest(&digest_key(group), datagram)
}

/// The key of a channel's digests: BLAKE3 in key-derivation mode with [`DIGEST_CONTEXT`] over
/// the canonical group's 16 bytes.
pub fn digest_key(group: Ipv6Addr) -> [u8; 32] {
    blake3::derive_key(DIGEST_CONTEXT, &group.octets())
}

pub(super) fn keyed_digest(key: &[u8; 32], datagram: &[u8]) -> Digest {
    let mut digest = [0; DIGEST_LEN];
    digest.copy_from_slice(&blake3::keyed_hash(key, datagram).as_bytes()[..DIGEST_LEN]);
    digest
}

/// How long and how much a receiver holds covered datagrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoverLimits {
    /// How long a covered datagram waits for its manifest: long enough for a reliable sender
    /// to repair a lost manifest.
    pub wait: Duration,
    /// Most datagrams held at once.
    pub max_held: usize,
    /// Most bytes held at once.
    pub max_bytes: usize,
    /// How many digests of verified manifests are remembered for datagrams that come later
    /// (reordered, or a second copy heard through a relay); one manifest's number is
    /// remembered per [`MAX_DIGESTS`] of them, to know its repeated copies.
    pub remembered: usize,
}

impl Default for CoverLimits {
    fn default() -> Self {
        Self {
            wait: Duration::from_secs(1),
            max_held: 4 * MAX_DIGESTS,
            max_bytes: 16 << 20,
            remembered: 16 * MAX_DIGESTS,
        }
    }
}

/// Covered datagrams waiting for their manifest, and what verified manifests vouched for.
/// `T` is what the caller keeps with each datagram (the opened datagram and how it arrived).
#[derive(Debug)]
pub struct Covers<T> {
    limits: CoverLimits,
    held: HashMap<Digest, Held<T>>,
    /// Held digests, oldest first, with when they came; entries already released are skipped.
    arrivals: VecDeque<(Digest, Instant)>,
    held_bytes: usize,
    vouched: HashSet<Digest>,
    vouched_order: VecDeque<Digest>,
    manifests: HashSet<(NodeId, u64)>,
    manifest_order: VecDeque<(NodeId, u64)>,
}

#[derive(Debug)]
struct Held<T> {
    item: T,
    len: usize,
    since: Instant,
}

impl<T> Covers<T> {
    /// Nothing held or vouched for yet.
    pub fn new(limits: CoverLimits) -> Self {
        Self {
            limits,
            held: HashMap::new(),
            arrivals: VecDeque::new(),
            held_bytes: 0,
            vouched: HashSet::new(),
            vouched_order: VecDeque::new(),
            manifests: HashSet::new(),
            manifest_order: VecDeque::new(),
        }
    }

    /// A covered datagram of `len` bytes with digest `digest` arrived. Returns `item` at once if
    /// a verified manifest listed the digest, else holds it; a second copy of a datagram held
    /// already is dropped. The count is of datagrams given up now: waited too long, or pushed
    /// out by the limits.
    pub fn arrive(
        &mut self,
        digest: Digest,
        item: T,
        len: usize,
        now: Instant,
    ) -> (Option<T>, u64) {
        let mut dropped = self.expire(now);
        if self.vouched.contains(&digest) {
            return (Some(item), dropped);
        }
        if self.held.contains_key(&digest) {
            return (None, dropped);
        }
        while !self.held.is_empty()
            && (self.held.len() >= self.limits.max_held
                || self.held_bytes + len > self.limits.max_bytes)
        {
            dropped += u64::from(self.drop_oldest());
        }
        self.held.insert(
            digest,
            Held {
                item,
                len,
                since: now,
            },
        );
        self.held_bytes += len;
        self.arrivals.push_back((digest, now));
        (None, dropped)
    }

    /// Whether the manifest `number` of `sender` was verified already: a repeated copy, which
    /// needs no second verification.
    pub fn seen(&self, sender: NodeId, number: u64) -> bool {
        self.manifests.contains(&(sender, number))
    }

    /// A manifest was verified: returns the held datagrams it lists, in its order, and
    /// remembers its digests for datagrams still to come. The count is as for
    /// [`arrive`](Self::arrive).
    pub fn vouch(
        &mut self,
        sender: NodeId,
        number: u64,
        digests: impl IntoIterator<Item = Digest>,
        now: Instant,
    ) -> (Vec<T>, u64) {
        let dropped = self.expire(now);
        if self.manifests.insert((sender, number)) {
            self.manifest_order.push_back((sender, number));
            if self.manifest_order.len() > self.limits.remembered / MAX_DIGESTS
                && let Some(oldest) = self.manifest_order.pop_front()
            {
                self.manifests.remove(&oldest);
            }
        }
        let mut released = Vec::new();
        for digest in digests {
            if let Some(held) = self.held.remove(&digest) {
                self.held_bytes -= held.len;
                released.push(held.item);
            }
            if self.vouched.insert(digest) {
                self.vouched_order.push_back(digest);
                if self.vouched_order.len() > self.limits.remembered
                    && let Some(oldest) = self.vouched_order.pop_front()
                {
                    self.vouched.remove(&oldest);
                }
            }
        }
        // Released datagrams leave their arrival behind; most are at the front.
        while self.arrivals.front().is_some_and(|(digest, since)| {
            self.held
                .get(digest)
                .is_none_or(|held| held.since != *since)
        }) {
            self.arrivals.pop_front();
        }
        (released, dropped)
    }

    /// Gives up the datagrams that waited longer than [`CoverLimits::wait`]; returns how many.
    pub fn expire(&mut self, now: Instant) -> u64 {
        let mut dropped = 0;
        while let Some(&(_, since)) = self.arrivals.front() {
            if now.saturating_duration_since(since) <= self.limits.wait {
                break;
            }
            dropped += u64::from(self.drop_oldest());
        }
        dropped
    }

    /// When the oldest held datagram is due to be given up, if any is held (possibly earlier:
    /// a datagram released since may still mark the time).
    pub fn next_expiry(&self) -> Option<Instant> {
        self.arrivals
            .front()
            .map(|&(_, since)| since + self.limits.wait)
    }

    /// How many datagrams are held.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Drops the oldest arrival; whether it was still held (not released since).
    fn drop_oldest(&mut self) -> bool {
        let Some((digest, since)) = self.arrivals.pop_front() else {
            return false;
        };
        match self.held.get(&digest) {
            Some(held) if held.since == since => {
                self.held_bytes -= held.len;
                self.held.remove(&digest);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: NodeId = NodeId(7);

    fn covers() -> Covers<u32> {
        Covers::new(CoverLimits {
            wait: Duration::from_millis(100),
            max_held: 4,
            max_bytes: 1000,
            remembered: 2 * MAX_DIGESTS,
        })
    }

    fn d(byte: u8) -> Digest {
        [byte; DIGEST_LEN]
    }

    #[test]
    fn held_datagrams_are_released_in_the_manifests_order() {
        let (mut covers, now) = (covers(), Instant::now());
        for (item, byte) in [(1, 1), (2, 2), (3, 3)] {
            assert_eq!(covers.arrive(d(byte), item, 100, now), (None, 0));
        }
        let (released, dropped) = covers.vouch(SENDER, 0, [d(3), d(1), d(2)], now);
        assert_eq!((released, dropped), (vec![3, 1, 2], 0));
        assert_eq!(covers.held(), 0);
        // Nothing is left to time out.
        assert_eq!(covers.next_expiry(), None);
    }

    #[test]
    fn a_datagram_after_its_manifest_passes_at_once_and_so_does_a_second_copy() {
        let (mut covers, now) = (covers(), Instant::now());
        assert_eq!(covers.vouch(SENDER, 0, [d(1)], now), (vec![], 0));
        assert_eq!(covers.arrive(d(1), 1, 100, now), (Some(1), 0));
        assert_eq!(covers.arrive(d(1), 2, 100, now), (Some(2), 0));
        assert_eq!(covers.arrive(d(2), 3, 100, now), (None, 0));
    }

    #[test]
    fn a_repeated_manifest_is_known_without_verifying_it_again() {
        let (mut covers, now) = (covers(), Instant::now());
        assert!(!covers.seen(SENDER, 5));
        covers.vouch(SENDER, 5, [d(1)], now);
        assert!(covers.seen(SENDER, 5));
        assert!(!covers.seen(SENDER, 6));
        assert!(!covers.seen(NodeId(8), 5));
    }

    #[test]
    fn datagrams_no_manifest_lists_are_given_up_after_the_wait() {
        let (mut covers, start) = (covers(), Instant::now());
        covers.arrive(d(1), 1, 100, start);
        covers.arrive(d(2), 2, 100, start + Duration::from_millis(60));
        assert_eq!(covers.expire(start + Duration::from_millis(100)), 0);
        assert_eq!(covers.expire(start + Duration::from_millis(101)), 1);
        // Released ones are not counted when their turn to expire comes.
        covers.vouch(SENDER, 0, [d(2)], start + Duration::from_millis(120));
        assert_eq!(covers.expire(start + Duration::from_secs(1)), 0);
        // A manifest that comes too late releases nothing.
        covers.arrive(d(3), 3, 100, start + Duration::from_secs(1));
        let late = start + Duration::from_millis(1200);
        assert_eq!(covers.vouch(SENDER, 1, [d(3)], late), (vec![], 1));
    }

    #[test]
    fn the_limits_push_the_oldest_out() {
        let (mut covers, now) = (covers(), Instant::now());
        for byte in 1..=4 {
            assert_eq!(covers.arrive(d(byte), u32::from(byte), 10, now), (None, 0));
        }
        // A fifth datagram: the first goes.
        assert_eq!(covers.arrive(d(5), 5, 10, now), (None, 1));
        // 1000 bytes at most: a large one pushes out as many as it needs (three of the four).
        assert_eq!(covers.arrive(d(6), 6, 985, now), (None, 3));
        let (released, _) = covers.vouch(SENDER, 0, (1..=6).map(d), now);
        assert_eq!(released, [5, 6]);
    }

    #[test]
    fn what_is_remembered_is_bounded() {
        let (mut covers, now) = (covers(), Instant::now());
        for number in 0..100u64 {
            let digests = (0..=255u8).map(|byte| {
                let mut digest = d(byte);
                digest[..8].copy_from_slice(&number.to_be_bytes());
                digest
            });
            covers.vouch(SENDER, number, digests, now);
        }
        assert_eq!(covers.vouched.len(), 2 * MAX_DIGESTS);
        assert_eq!(covers.manifests.len(), 2);
        assert!(covers.seen(SENDER, 99) && !covers.seen(SENDER, 97));
    }

    #[test]
    fn digests_depend_on_the_group_and_every_byte() {
        let group = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x5c);
        let other = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x5d);
        let datagram = b"a datagram".to_vec();
        let base = digest(group, &datagram);
        assert_ne!(base, digest(other, &datagram));
        let mut changed = datagram.clone();
        changed[3] ^= 1;
        assert_ne!(base, digest(group, &changed));
        assert_eq!(base, digest(group, &datagram));
    }
}
