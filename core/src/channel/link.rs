//! The relay link in use: the tunnel's memberships (and a repeater's), what comes down the
//! tunnel, what goes up it for the segment, and the path to the core announced to the
//! application.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::Arc,
    time::Instant,
};

use tracing::{debug, warn};

use super::{ChannelState, Core, LinkState, RelayLink};
use crate::{
    addr, discovery,
    events::CorePath,
    socket::RecvMeta,
    tunnel::{self, RelayOffer, Tunnel},
    wire::control::{self, Control},
};

impl Core {
    /// The channels joined for any source. Takes channel locks: call it before locking the
    /// link state, which joins take while they hold their channel's lock.
    pub(super) fn joined_channels(&self) -> Vec<Arc<ChannelState>> {
        self.by_name
            .lock()
            .values()
            .filter(|state| state.membership.lock().any_source)
            .cloned()
            .collect()
    }

    /// Every group of the joined channels that no gateway of the segment serves: what a new
    /// tunnel must join.
    pub(super) fn unserved_groups(&self, link: &RelayLink) -> Vec<Ipv6Addr> {
        let channels = self.joined_channels();
        let gateways = link.segment.gateways.lock();
        let now = Instant::now();
        channels
            .iter()
            .filter(|state| gateways.serving(state.group, now).is_none())
            .flat_map(|state| state.groups())
            .collect()
    }

    /// A channel was joined or left: the gateway election looks again at once.
    pub(super) fn memberships_changed(&self) {
        if let Some(link) = &self.relay_link {
            link.nudge.wake();
        }
    }

    pub(super) fn tunnel_join(&self, groups: &[Ipv6Addr]) {
        let Some(link) = &self.relay_link else { return };
        let mut state = link.state.lock();
        let Some(tunnel) = state.tunnel.as_mut() else {
            return;
        };
        tunnel.join(groups, Instant::now());
        if let Err(err) = tunnel::transmit(tunnel, &link.socket) {
            debug!("joining through the tunnel: {err}");
        }
        if tunnel.is_repeater() {
            self.repeated_membership(tunnel, groups, true);
        }
    }

    pub(super) fn tunnel_leave(&self, groups: &[Ipv6Addr]) {
        let Some(link) = &self.relay_link else { return };
        let mut state = link.state.lock();
        let Some(tunnel) = state.tunnel.as_mut() else {
            return;
        };
        tunnel.leave(groups, Instant::now());
        if let Err(err) = tunnel::transmit(tunnel, &link.socket) {
            debug!("leaving through the tunnel: {err}");
        }
        if tunnel.is_repeater() {
            self.repeated_membership(tunnel, groups, false);
        }
    }

    /// Leaves what a tunnel that is no longer used had joined on the context's socket.
    pub(super) fn retire(&self, tunnel: &mut Tunnel) {
        let joined: Vec<Ipv6Addr> = tunnel.repeated.iter().copied().collect();
        for repeated in joined {
            for interface in &self.interfaces {
                let _ = self
                    .socket
                    .leave_source(repeated, *tunnel.relay().ip(), interface);
            }
            tunnel.repeated.remove(&repeated);
        }
    }

    /// Joins (or leaves) the repeated groups of `groups` from the repeater of `tunnel`, on the
    /// context's socket: where the repeater's copies arrive.
    fn repeated_membership(&self, tunnel: &mut Tunnel, groups: &[Ipv6Addr], join: bool) {
        let source = *tunnel.relay().ip();
        for repeated in groups
            .iter()
            .filter_map(|group| addr::repeated_addr(*group).ok())
        {
            if join == tunnel.repeated.contains(&repeated) {
                continue;
            }
            let done = if join {
                self.for_each_interface(
                    |interface| self.socket.join_source(repeated, source, interface),
                    |interface| self.socket.leave_source(repeated, source, interface),
                )
            } else {
                self.interfaces
                    .iter()
                    .try_for_each(|interface| self.socket.leave_source(repeated, source, interface))
            };
            match done {
                Ok(()) if join => drop(tunnel.repeated.insert(repeated)),
                Ok(()) => drop(tunnel.repeated.remove(&repeated)),
                Err(err) => debug!("({source}, {repeated}): {err}"),
            }
        }
    }

    /// The segment's gateway that carries one of `channels` (joined channels) where native
    /// multicast falls short and this node's tunnel does not carry it.
    pub(super) fn serving_gateway(
        &self,
        link: &RelayLink,
        state: &LinkState,
        channels: &[Arc<ChannelState>],
    ) -> Option<SocketAddrV6> {
        if state.report.as_ref().is_none_or(|report| report.native()) {
            return None;
        }
        let gateways = link.segment.gateways.lock();
        let now = Instant::now();
        channels
            .iter()
            .filter(|channel| {
                !state
                    .tunnel
                    .as_ref()
                    .is_some_and(|tunnel| tunnel.carries(channel.group))
            })
            .find_map(|channel| gateways.serving(channel.group, now))
            .map(|heard| heard.address)
    }

    /// Announces the path to the core whenever it changed, once it is known: the probe found
    /// native multicast, a tunnel or gateway carries the channels, or an attempt failed (Stratum
    /// 0 unanswered, no relay).
    pub(super) fn publish_path(&self, link: &RelayLink) {
        let channels = self.joined_channels();
        let every_channel = self.all_channels();
        let mut state = link.state.lock();
        let gateway = self.serving_gateway(link, &state, &channels);
        self.settle_held(link, &mut state);
        self.publish_routes(link, &every_channel, &state);
        let Some(report) = &state.report else {
            // Stratum 0 never answered: the core is out of reach until it does.
            if state.last_error.is_some() {
                drop(state);
                self.events.path(CorePath::Unreachable);
            }
            return;
        };
        let path = match &state.tunnel {
            Some(tunnel) if tunnel.is_repeater() => CorePath::Repeater(tunnel.relay()),
            Some(tunnel) => CorePath::Relay(tunnel.relay()),
            None if report.native() => CorePath::Native,
            None => match gateway {
                Some(gateway) => CorePath::Gateway(gateway),
                // Unreachable once an attempt failed; until then a tunnel may still open.
                None if state.last_error.is_some() => CorePath::Unreachable,
                None => return,
            },
        };
        drop(state);
        self.events.path(path);
    }

    /// What was sent before the path was known (see `held`): up the tunnel once one is open,
    /// else dropped once native multicast, or for a channel the segment's gateway, is known to
    /// carry it.
    pub(super) fn settle_held(&self, link: &RelayLink, state: &mut LinkState) {
        let native = state.report.as_ref().is_some_and(|report| report.native());
        state.reached_natively = native;
        let LinkState { tunnel, held, .. } = state;
        if let Some(tunnel) = tunnel {
            for datagram in held.take() {
                let bytes = std::slice::from_ref(&datagram.bytes);
                self.send_up(link, tunnel, datagram.relayed, bytes);
            }
        } else if native {
            held.forget(|_| true);
        } else {
            let gateways = link.segment.gateways.lock();
            let now = Instant::now();
            held.forget(|group| gateways.serving(group, now).is_some());
        }
    }

    pub(super) fn handle_relay_datagram(
        &self,
        link: &RelayLink,
        meta: &RecvMeta,
        datagram: &[u8],
        now: Instant,
    ) {
        let mut state = link.state.lock();
        let Some(tunnel) = state
            .tunnel
            .as_mut()
            .filter(|tunnel| tunnel.relay() == meta.source)
        else {
            return;
        };
        match control::decode(datagram) {
            Ok(Control::Data(control::Data { group, datagram })) => {
                tunnel.data_heard(now);
                // As the segment's gateway, re-send it there on the relayed twin.
                let cut_off = state
                    .report
                    .as_ref()
                    .is_some_and(|report| !report.native_down);
                let resend_to = self
                    .by_group
                    .read()
                    .get(&group)
                    .filter(|channel| cut_off && state.serving.contains(&channel.group))
                    .and_then(|channel| Some((channel.group, channel.relayed_group?)));
                drop(state);
                // Only while a neighbour listens: alone, the copies would reach nobody.
                if let Some((channel, relayed)) = resend_to
                    && link.segment.gateways.lock().listened_to(channel, now)
                {
                    link.segment.resend(&self.interfaces, relayed, datagram);
                }
                let relayed = RecvMeta {
                    destination: group,
                    interface: 0,
                    len: datagram.len(),
                    ..*meta
                };
                self.dispatch(&relayed, datagram, now, true);
            }
            Ok(message) => {
                tunnel.on_control(&message, now, &link.rejected_relays);
                if let Err(err) = tunnel::transmit(tunnel, &link.socket) {
                    debug!("answering the relay: {err}");
                }
            }
            Err(_) => {}
        }
    }

    /// Keeps the tunnel up. When its relay closed it or went silent, gives it up and returns
    /// the relay with the spares to fail over to.
    pub(super) fn maintain_tunnel(
        &self,
        link: &RelayLink,
    ) -> Option<(SocketAddrV6, Vec<RelayOffer>)> {
        let mut state = link.state.lock();
        let tunnel = state.tunnel.as_mut()?;
        let now = Instant::now();
        let maintained = tunnel
            .maintain(now, &mut discovery::nonce)
            .and_then(|()| tunnel::transmit(tunnel, &link.socket));
        if let Err(err) = maintained {
            debug!("keeping the tunnel up: {err}");
        }
        let why = tunnel.failure(now)?;
        warn!(relay = %tunnel.relay(), "{why}; failing over to a spare");
        self.retire(tunnel);
        let failed = tunnel.relay();
        state.tunnel = None;
        link.nudge.wake();
        Some((failed, std::mem::take(&mut state.spares)))
    }

    /// Whether this node could be its segment's gateway for `channel` (it reaches the core
    /// through a relay link, and the profile has a relayed twin): only then is a datagram worth
    /// keeping for [`upload`](Self::upload).
    pub(super) fn may_upload(&self, channel: &ChannelState) -> bool {
        self.relay_link.is_some() && channel.relayed_group.is_some()
    }

    /// As its segment's gateway for `channel`, sends a datagram a neighbour multicast natively
    /// on the channel's group up the tunnel, where this segment's multicast does not reach the
    /// core. Copies on the relayed twin and what came down the tunnel are never uploaded, so
    /// nothing loops.
    pub(super) fn upload(&self, channel: &ChannelState, datagram: &[u8]) {
        let (Some(link), Some(relayed)) = (&self.relay_link, channel.relayed_group) else {
            return;
        };
        let mut state = link.state.lock();
        let state = &mut *state;
        let native_up = state.report.as_ref().is_some_and(|report| report.native_up);
        if native_up || !state.serving.contains(&channel.group) {
            return;
        }
        if let Some(tunnel) = state.tunnel.as_mut()
            && let Err(err) = tunnel::send_data(tunnel, &link.socket, relayed, datagram)
        {
            debug!("uploading for the segment: {err}");
        }
    }
}
