//! The Stratum 1 gateway role: the segment's sockets, this node's part in the segment's gateway
//! election (a round of it in every pass of the reach thread's loop) and serving the segment's
//! channels that no neighbour serves.

use std::{
    net::Ipv6Addr,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use tracing::{debug, info, warn};

use super::{ChannelState, Core, ELECTION_BACKSTOP, RelayLink, Segment};
use crate::{
    config::Config,
    discovery,
    error::Result,
    events::Event,
    gateway::{self, Election, Gateways},
    probe::ProbeReport,
    socket::{Interface, McastSocket, RecvBatch, SocketOptions, Wait},
    tunnel,
    wire::{NodeId, control},
};

impl Segment {
    pub(super) fn open(config: &Config, interfaces: &[Interface], node: NodeId) -> Result<Self> {
        // Hop limit 1: announcements and re-sends never leave the segment.
        let options = |port| SocketOptions {
            address: Ipv6Addr::UNSPECIFIED,
            port,
            hop_limit: 1,
            loopback: config.loopback,
            recv_buffer: 1 << 16,
        };
        let announcer = McastSocket::bind(&options(discovery::CONTROL_PORT))?;
        for interface in interfaces {
            announcer.join(gateway::gateway_group(), interface)?;
        }
        Ok(Self {
            announcer,
            // Bound to the data port, because multicast goes to the sending socket's port.
            resender: McastSocket::bind(&options(config.effective_port()))?,
            gateways: Mutex::new(Gateways::new(node, Instant::now())),
        })
    }

    /// Announces `groups` (withdraws them when `hold` is zero) on the gateway group.
    pub(super) fn announce(
        &self,
        interfaces: &[Interface],
        node: NodeId,
        groups: &[Ipv6Addr],
        hold: Duration,
    ) {
        for message in gateway::announcements(node, groups, hold) {
            if let Err(err) = discovery::multicast_control(
                &self.announcer,
                interfaces,
                &message,
                gateway::gateway_group(),
            ) {
                debug!("announcing the gateway: {err}");
            }
        }
    }

    /// Re-sends a datagram that came down the tunnel onto the segment, to the relayed twin.
    pub(super) fn resend(&self, interfaces: &[Interface], relayed: Ipv6Addr, datagram: &[u8]) {
        let copy = [datagram.to_vec()];
        for interface in interfaces {
            if let Err(err) = self.resender.send_batch(&copy, relayed, interface) {
                debug!("re-sending onto the segment: {err}");
            }
        }
    }
}

impl Core {
    /// Hears what came on the gateway group, without waiting.
    pub(super) fn hear_gateways(&self, link: &RelayLink, batch: &mut RecvBatch) {
        let segment = &link.segment;
        match segment
            .announcer
            .recv_batch(batch, &link.nudge, Some(Duration::ZERO))
        {
            Ok(Wait::Received(_)) => {
                let now = Instant::now();
                let mut gateways = segment.gateways.lock();
                for (meta, datagram) in batch.iter() {
                    match control::decode(datagram) {
                        Ok(announcement) => gateways.heard(meta.source, &announcement, now),
                        Err(err) => debug!(source = %meta.source, "on the gateway group: {err}"),
                    }
                }
            }
            Ok(_) => {}
            Err(err) => warn!("{err}"),
        }
    }

    /// One round of this node's part in the election: takes part, and announces the channels
    /// it serves (withdrawing those it stopped serving) when that changed or is due. Returns
    /// when the next round is due if nothing happens meanwhile.
    pub(super) fn election_round(&self, link: &RelayLink, election: &mut Election) -> Instant {
        let serving = self.take_part(link);
        if serving != election.announced() {
            self.events.push(Event::GatewayRole {
                serving: serving.clone(),
            });
        }
        // A node whose multicast reaches the core both ways needs no gateway: it neither serves
        // nor listens, so it says nothing on the gateway group, where on a core segment every
        // announcement would wake every node, and it has nothing to look at before its next
        // probe.
        let native = link
            .state
            .lock()
            .report
            .as_ref()
            .is_some_and(ProbeReport::native);
        let (listening, backstop) = if native {
            (Vec::new(), self.config.probe_interval)
        } else {
            (self.listening(&serving), ELECTION_BACKSTOP)
        };
        let now = Instant::now();
        let segment = &link.segment;
        if let Some(announcement) = election.round(serving, listening, now) {
            let node = self.node;
            segment.announce(
                &self.interfaces,
                node,
                &announcement.withdraw,
                Duration::ZERO,
            );
            segment.announce(&self.interfaces, node, &announcement.serve, gateway::HOLD);
        }
        let gateways = segment.gateways.lock();
        election.poll_timeout(&gateways, now, backstop)
    }

    /// Withdraws what this node announces: it is closing.
    pub(super) fn leave_election(&self, link: &RelayLink, election: &Election) {
        let segment = &link.segment;
        segment.announce(
            &self.interfaces,
            self.node,
            election.announced(),
            Duration::ZERO,
        );
    }

    /// The groups of the joined channels (with a relayed twin) this node does not serve: what it
    /// tells the segment's gateway it listens to, in a stable order.
    fn listening(&self, serving: &[Ipv6Addr]) -> Vec<Ipv6Addr> {
        let mut listening: Vec<Ipv6Addr> = self
            .joined_channels()
            .iter()
            .filter(|state| state.relayed_group.is_some() && !serving.contains(&state.group))
            .map(|state| state.group)
            .collect();
        listening.sort_unstable();
        listening
    }

    /// One round of the election, for a node that needs the core: stops carrying channels a
    /// better gateway serves (closing the tunnel when it carries none of the joined channels
    /// and no channel sent to needs it), carries unserved channels in the tunnel or asks for
    /// one, and returns the groups of the channels served.
    fn take_part(&self, link: &RelayLink) -> Vec<Ipv6Addr> {
        let channels: Vec<Arc<ChannelState>> = self
            .joined_channels()
            .into_iter()
            .filter(|state| state.relayed_group.is_some())
            .collect();
        let groups: Vec<Ipv6Addr> = channels.iter().map(|state| state.group).collect();
        let twins = |chosen: &[Ipv6Addr]| -> Vec<Ipv6Addr> {
            channels
                .iter()
                .filter(|state| chosen.contains(&state.group))
                .flat_map(|state| state.groups())
                .collect()
        };
        let now = Instant::now();
        let sends_to = self.sends_only_to(link, &groups, now);
        let mut state = link.state.lock();
        let state = &mut *state;
        // Only a node that needs the core (the probe found native multicast lacking) takes part.
        // Nor does one served by an SSM repeater: its copies reach every node of the segment.
        let repeated = state
            .tunnel
            .as_ref()
            .is_some_and(|tunnel| tunnel.is_repeater());
        if repeated || state.report.as_ref().is_none_or(ProbeReport::native) {
            state.serving.clear();
            return Vec::new();
        }
        let plan = {
            let mut gateways = link.segment.gateways.lock();
            gateways.expire(now);
            let tunnel = state.tunnel.as_ref();
            let plan = gateways.plan(
                &groups,
                &sends_to,
                |group| tunnel.is_some_and(|tunnel| tunnel.carries(group)),
                tunnel.is_some(),
                now,
            );
            if plan.open_tunnel && gateways.listened(now) {
                // The reach step that follows this round asks for relays.
                link.tunnel_wanted.store(true, Ordering::Release);
            }
            plan
        };
        let close = state.tunnel.as_mut().is_some_and(|tunnel| {
            let close = plan.apply(tunnel, !groups.is_empty(), twins, now);
            if let Err(err) = tunnel::transmit(tunnel, &link.socket) {
                debug!("changing what the tunnel carries: {err}");
            }
            close
        });
        if close && let Some(mut tunnel) = state.tunnel.take() {
            info!(relay = %tunnel.relay(), "the segment's gateway carries every channel; closing the tunnel");
            if let Some(observed) = state.report.as_ref().and_then(|report| report.observed) {
                tunnel::close(&mut tunnel, &link.socket, observed);
            }
        }
        let mut serving = plan.serve;
        // In a stable order, so that an unchanged set is announced only every interval.
        serving.sort_unstable();
        state.serving.clone_from(&serving);
        serving
    }
}
