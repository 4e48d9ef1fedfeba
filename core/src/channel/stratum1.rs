//! The Stratum 1 gateway role: taking part in the segment's gateway election and serving the
//! segment's channels that no neighbour serves.

use std::{
    net::Ipv6Addr,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use tracing::{debug, info, warn};

use super::{ChannelState, Core, ELECTION_BACKSTOP, MIN_WAIT, RelayLink, Segment};
use crate::{
    config::Config,
    discovery,
    error::Result,
    events::Event,
    gateway::{self, Gateways},
    probe::ProbeReport,
    socket::{Interface, McastSocket, RecvBatch, SocketOptions, Wait, Waker},
    tunnel::{self, Tunnel},
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
            nudge: Waker::new()?,
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
    /// Hears the segment's gateway announcements, takes part in the election, and announces
    /// the channels this node serves (withdrawing them when it stops, and when it closes).
    pub(super) fn gateway_loop(&self) {
        let Some(link) = &self.relay_link else { return };
        let segment = &link.segment;
        let mut batch = RecvBatch::new();
        let mut announced: Vec<Ipv6Addr> = Vec::new();
        let mut listened: Vec<Ipv6Addr> = Vec::new();
        let mut next_announcement = Instant::now();
        let mut wait = Duration::ZERO;
        while !self.closed.load(Ordering::Acquire) {
            match segment
                .announcer
                .recv_batch(&mut batch, &segment.nudge, Some(wait))
            {
                Ok(Wait::Woken) => {
                    if self.closed.load(Ordering::Acquire) {
                        break;
                    }
                    segment.nudge.reset();
                }
                Ok(Wait::Received(_)) => {
                    let now = Instant::now();
                    let mut gateways = segment.gateways.lock();
                    for (meta, datagram) in batch.iter() {
                        match control::decode(datagram) {
                            Ok(announcement) => gateways.heard(meta.source, &announcement, now),
                            Err(err) => {
                                debug!(source = %meta.source, "on the gateway group: {err}");
                            }
                        }
                    }
                }
                Ok(Wait::TimedOut) => {}
                Err(err) => {
                    warn!("{err}");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let serving = self.take_part(link);
            if serving != announced {
                self.events.push(Event::GatewayRole {
                    serving: serving.clone(),
                });
            }
            // Checked every round: a gateway heard or lost changes the path too.
            self.publish_path(link);
            let listening = self.listening(&serving);
            if serving != announced || listening != listened || Instant::now() >= next_announcement
            {
                // What it stopped serving, and what it listens to without serving (so that
                // the gateway re-sends it), go out as withdrawals.
                let mut withdrawn: Vec<Ipv6Addr> = announced
                    .iter()
                    .filter(|group| !serving.contains(group) && !listening.contains(group))
                    .copied()
                    .collect();
                withdrawn.extend_from_slice(&listening);
                segment.announce(&self.interfaces, self.node, &withdrawn, Duration::ZERO);
                segment.announce(&self.interfaces, self.node, &serving, gateway::HOLD);
                announced = serving;
                listened = listening;
                next_announcement = Instant::now() + gateway::ANNOUNCE_INTERVAL;
            }
            // Sleeps until something can change: an announcement is due, one heard runs out,
            // a datagram comes, or a nudge (a join, a leave, a first send, the tunnel or the
            // probe); at most the backstop.
            let now = Instant::now();
            let mut due = now + ELECTION_BACKSTOP;
            if !announced.is_empty() || !listened.is_empty() {
                due = due.min(next_announcement);
            }
            if let Some(change) = segment.gateways.lock().next_change(now) {
                due = due.min(change);
            }
            wait = due.saturating_duration_since(now).max(MIN_WAIT);
        }
        segment.announce(&self.interfaces, self.node, &announced, Duration::ZERO);
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
        let sends_to = state.sends_only_to(&groups, now);
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
                link.tunnel_wanted.store(true, Ordering::Release);
                link.nudge.wake();
            }
            plan
        };
        if let Some(tunnel) = state.tunnel.as_mut() {
            if !plan.stand_down.is_empty() {
                info!(channels = ?plan.stand_down, "a better gateway serves the segment; standing down");
                tunnel.leave(&twins(&plan.stand_down), now);
            }
            tunnel.join(&twins(&plan.carry), now);
            if let Err(err) = tunnel::transmit(tunnel, &link.socket) {
                debug!("changing what the tunnel carries: {err}");
            }
        }
        // A tunnel that carries none of the joined channels (gateways serve them all) is closed
        // unless what this node sends needs it: one kept idle would hold a MAC that expires, and
        // a node on it would not be served.
        let idle = state.tunnel.as_ref().is_some_and(Tunnel::is_idle);
        if !groups.is_empty()
            && idle
            && !plan.keep_tunnel
            && let Some(mut tunnel) = state.tunnel.take()
        {
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
