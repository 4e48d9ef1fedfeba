//! Signatures that cover runs of datagrams, on the receive path: covered datagrams (and the
//! chained manifests that list them) wait in the channel's [`Covers`](crate::crypto::Covers)
//! until a verified manifest of their sender lists them, and are given up (counted
//! `unverified`) when none does in time.

use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};

use tracing::debug;

use super::{Arrival, ChannelState, Core, Covered, Due, bump};
use crate::{crypto::DropReason, gateway::Path, wire};

impl Core {
    /// A covered datagram on a channel that requires signatures: opened (its seal checked), then
    /// delivered at once if a verified manifest listed it already, else held.
    pub(super) fn accept_covered(
        &self,
        state: &ChannelState,
        arrival: &Arrival,
        datagram: &[u8],
        now: Instant,
        upload: bool,
    ) {
        let (opened, digest) = {
            let protection = state.protection.read();
            let opened = protection.open_covered(datagram, SystemTime::now());
            (opened, protection.digest(datagram))
        };
        let Some(plain) = self.opened(state, arrival, opened) else {
            return;
        };
        let covered = Covered {
            arrival: arrival.clone(),
            plain: plain.into_owned(),
            // A copy only where it may go up the tunnel once vouched for.
            upload: (upload && self.may_upload(state)).then(|| datagram.to_vec()),
        };
        let len = covered.plain.len();
        let (vouched, given_up, next) = {
            let mut covers = state.covers.lock();
            let (vouched, given_up) = covers.arrive(digest, covered, len, now);
            (vouched, given_up, covers.next_expiry())
        };
        state.counters.drops.add(DropReason::Unverified, given_up);
        match vouched {
            Some(covered) => self.release(state, vec![covered], now),
            None => self.arm_cover_timer(state, next),
        }
    }

    /// A manifest. A signed one is verified once (its repeated copy is recognised by its
    /// number) and releases the covered datagrams it lists; a COVERED one, chained, waits like
    /// a covered datagram for the signed manifest that lists it. On a channel that requires no
    /// signatures a manifest is only passed on up the segment's tunnel.
    pub(super) fn accept_manifest(
        &self,
        state: &ChannelState,
        arrival: &Arrival,
        datagram: &[u8],
        now: Instant,
        upload: bool,
    ) {
        let upload = upload && arrival.path == Path::Native;
        let protection = state.protection.read();
        if !protection.requires_signatures() {
            drop(protection);
            if upload {
                self.upload(state, datagram);
            }
            return;
        }
        if protection.needs_cover(datagram) {
            drop(protection);
            self.accept_covered(state, arrival, datagram, now, upload);
            return;
        }
        let repeated = wire::decode_header(datagram)
            .is_ok_and(|header| state.covers.lock().seen(header.sender, header.seq));
        if repeated {
            return;
        }
        let opened = protection.open(datagram, SystemTime::now());
        drop(protection);
        let Some(plain) = self.opened(state, arrival, opened) else {
            return;
        };
        if upload {
            self.upload(state, datagram);
        }
        let released = self.vouched_by(state, arrival, &plain, now);
        self.release(state, released, now);
    }

    /// The held datagrams that the opened manifest `plain`, verified or vouched for, lists;
    /// its digests are remembered for what comes later.
    fn vouched_by(
        &self,
        state: &ChannelState,
        arrival: &Arrival,
        plain: &[u8],
        now: Instant,
    ) -> Vec<Covered> {
        let manifest = match wire::manifest::decode(plain) {
            Ok(manifest) => manifest,
            Err(err) => {
                bump(&state.counters.malformed, 1);
                debug!(source = %arrival.source, "dropped a malformed manifest: {err}");
                return Vec::new();
            }
        };
        let (vouched, given_up) =
            state
                .covers
                .lock()
                .vouch(manifest.sender, manifest.number, manifest.digests(), now);
        state.counters.drops.add(DropReason::Unverified, given_up);
        vouched
    }

    /// Delivers `released` in order. A chained manifest among them releases its own list in
    /// its place, so that everything leaves in the order it was sent.
    fn release(&self, state: &ChannelState, released: Vec<Covered>, now: Instant) {
        // A stack, next on top.
        let mut pending: Vec<Covered> = released.into_iter().rev().collect();
        while let Some(covered) = pending.pop() {
            let upload = covered.upload.as_deref();
            if !wire::manifest::is_manifest(&covered.plain) {
                self.deliver(state, &covered.arrival, &covered.plain, upload, now);
                continue;
            }
            if let Some(datagram) = upload {
                self.upload(state, datagram);
            }
            let listed = self.vouched_by(state, &covered.arrival, &covered.plain, now);
            pending.extend(listed.into_iter().rev());
        }
    }

    /// Has the flush thread give up what still waits at `next`, unless it will sooner.
    fn arm_cover_timer(&self, state: &ChannelState, next: Option<Instant>) {
        self.arm_timer(state, &state.cover_timer, next, Due::Cover);
    }

    /// The cover timer's turn: counts what waited too long, and arms the timer again for what
    /// still waits.
    pub(super) fn expire_covers(&self, state: &Arc<ChannelState>, now: Instant) {
        *state.cover_timer.lock() = None;
        let (given_up, next) = {
            let mut covers = state.covers.lock();
            (covers.expire(now), covers.next_expiry())
        };
        state.counters.drops.add(DropReason::Unverified, given_up);
        self.arm_cover_timer(state, next);
    }
}
