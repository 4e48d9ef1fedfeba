//! Each channel's path to the core as the reach thread last published it, for the data plane to
//! read without the link's lock: the send path per batch, the receive path per relayed copy.
//! The reach thread publishes after every pass of its loop, so a change reaches the data plane
//! within one pass; a send that finds native multicast not known to reach the core still takes
//! the lock, where the tunnel and the held copies are.

use std::{
    net::Ipv6Addr,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use super::{ChannelState, Core, LinkState, RelayLink};
use crate::gateway::{self, Path};

/// A channel's published path: a set of the flags below.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Route(u8);

impl Route {
    /// This node's multicast reaches the core.
    pub(super) const NATIVE_UP: u8 = 1;
    /// The core's multicast reaches this node.
    pub(super) const NATIVE_DOWN: u8 = 1 << 1;
    /// This node serves the channel as its segment's gateway.
    pub(super) const SERVED_HERE: u8 = 1 << 2;
    /// This node's tunnel carries the channel.
    pub(super) const CARRIED: u8 = 1 << 3;
    /// A neighbour serves the channel as the segment's gateway.
    pub(super) const GATEWAY: u8 = 1 << 4;

    pub(super) fn has(self, flag: u8) -> bool {
        self.0 & flag != 0
    }

    /// How a relayed copy heard natively came: from this segment's gateway (a gateway of the
    /// segment serves the channel, this node's tunnel does not carry it, and the core's
    /// multicast with the relays' copies is not known to reach this node), else from a relay
    /// (also without a Stratum 0, where nothing is published). `None` when this node is the
    /// channel's gateway: its tunnel brings everything, and such copies are its own re-sends
    /// heard back (or a rival's during an election).
    pub(super) fn native_copy_path(self) -> Option<Path> {
        if self.has(Self::SERVED_HERE) {
            return None;
        }
        let through_gateway =
            !self.has(Self::NATIVE_DOWN) && !self.has(Self::CARRIED) && self.has(Self::GATEWAY);
        Some(if through_gateway {
            Path::Gateway
        } else {
            Path::Relay
        })
    }
}

/// Where the data plane reads a channel's route, and notes when it last sent.
#[derive(Debug, Default)]
pub(super) struct RouteCell {
    route: AtomicU8,
    /// Milliseconds from the link's epoch to the channel's last send, plus one; zero if never.
    last_sent: AtomicU64,
}

impl RouteCell {
    pub(super) fn get(&self) -> Route {
        Route(self.route.load(Ordering::Acquire))
    }

    fn set(&self, route: Route) {
        self.route.store(route.0, Ordering::Release);
    }
}

impl RelayLink {
    fn stamp(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX - 1)
            + 1
    }

    /// Notes that `channel` was sent to at `now`. A channel newly sent to (or again, after the
    /// sending hold ran out) may need a tunnel: the reach thread's election decides at once.
    pub(super) fn note_sent(&self, channel: &ChannelState, now: Instant) {
        let stamp = self.stamp(now);
        let before = channel.route.last_sent.swap(stamp, Ordering::Relaxed);
        if !within_sending_hold(before, stamp) {
            self.nudge.wake();
        }
    }

    /// Whether `channel` was sent to within the sending hold before `now`.
    fn sent_lately(&self, channel: &ChannelState, now: Instant) -> bool {
        let before = channel.route.last_sent.load(Ordering::Relaxed);
        within_sending_hold(before, self.stamp(now))
    }
}

/// Whether a send stamped `before` (zero: none) is within `gateway::SENDING_HOLD` of `stamp`.
fn within_sending_hold(before: u64, stamp: u64) -> bool {
    before != 0 && Duration::from_millis(stamp.saturating_sub(before)) < gateway::SENDING_HOLD
}

impl Core {
    /// Every channel of the context. Takes the registry's lock: call it before the link
    /// state's.
    pub(super) fn all_channels(&self) -> Vec<Arc<ChannelState>> {
        self.by_name.lock().values().cloned().collect()
    }

    /// The groups of the channels sent to lately that are not among the `joined`, in a stable
    /// order: sending counts as using a channel in the gateway election for
    /// `gateway::SENDING_HOLD`. Takes the registry's lock: call it before the link state's.
    pub(super) fn sends_only_to(
        &self,
        link: &RelayLink,
        joined: &[Ipv6Addr],
        now: Instant,
    ) -> Vec<Ipv6Addr> {
        let mut groups: Vec<Ipv6Addr> = self
            .all_channels()
            .iter()
            .filter(|channel| !joined.contains(&channel.group) && link.sent_lately(channel, now))
            .map(|channel| channel.group)
            .collect();
        groups.sort_unstable();
        groups
    }

    /// Publishes every channel's route from the link's `state`.
    pub(super) fn publish_routes(
        &self,
        link: &RelayLink,
        channels: &[Arc<ChannelState>],
        state: &LinkState,
    ) {
        let report = state.report.as_ref();
        let mut common = 0;
        if report.is_some_and(|report| report.native_up) {
            common |= Route::NATIVE_UP;
        }
        if report.is_some_and(|report| report.native_down) {
            common |= Route::NATIVE_DOWN;
        }
        let gateways = link.segment.gateways.lock();
        let now = Instant::now();
        for channel in channels {
            let mut route = common;
            if state.serving.contains(&channel.group) {
                route |= Route::SERVED_HERE;
            }
            if state
                .tunnel
                .as_ref()
                .is_some_and(|tunnel| tunnel.carries(channel.group))
            {
                route |= Route::CARRIED;
            }
            if gateways.serving(channel.group, now).is_some() {
                route |= Route::GATEWAY;
            }
            channel.route.set(Route(route));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relayed_copy_came_from_the_gateway_only_where_nothing_else_brings_it() {
        let path = |flags| Route(flags).native_copy_path();
        assert_eq!(path(0), Some(Path::Relay), "nothing published");
        assert_eq!(path(Route::GATEWAY), Some(Path::Gateway));
        // The core's multicast reaches this node, or its tunnel carries the channel: the
        // relays' copies come from there.
        assert_eq!(path(Route::GATEWAY | Route::NATIVE_DOWN), Some(Path::Relay));
        assert_eq!(path(Route::GATEWAY | Route::CARRIED), Some(Path::Relay));
        assert_eq!(path(Route::SERVED_HERE | Route::GATEWAY), None);
        assert_eq!(path(Route::SERVED_HERE | Route::NATIVE_UP), None);
    }

    #[test]
    fn a_send_counts_for_the_sending_hold_and_no_longer() {
        let hold = u64::try_from(gateway::SENDING_HOLD.as_millis()).unwrap();
        assert!(!within_sending_hold(0, 5), "never sent");
        assert!(within_sending_hold(5, 5));
        assert!(within_sending_hold(5, 5 + hold - 1));
        assert!(!within_sending_hold(5, 5 + hold));
    }
}
