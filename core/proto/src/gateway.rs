//! Stratum 1 gateways: a node that holds a relay tunnel serves its own segment, so that the
//! other nodes there reach the core without tunnels of their own (see `docs/reachability.md`,
//! section 6).
//!
//! Gateways announce the channels they serve on a link-scope group ([`gateway_group`]) every
//! [`ANNOUNCE_INTERVAL`]; an announcement holds for [`HOLD`]. Per channel, the gateway with the
//! lowest node id wins: a node that carries a channel in its tunnel and hears a lower id
//! announce it stops carrying it. A node without a gateway for a joined channel carries it in its
//! own tunnel (opening one if needed), so when the gateway leaves (a withdrawing announcement, or
//! silence for [`HOLD`]) the others take over and elect again.
//!
//! Sending counts as using a channel: a gateway uploads only the channels it serves, so a node
//! that sent to a channel no gateway serves within [`SENDING_HOLD`] keeps (or opens) a tunnel
//! of its own for what it sends, though it joins nothing there for that channel.
//!
//! A gateway re-sends onto its segment only what some neighbour listens to: every node that has
//! joined a channel it does not serve (unless native multicast reaches the core from it both
//! ways: it needs no gateway) says so every [`ANNOUNCE_INTERVAL`] with a withdrawing
//! announcement of that channel (hold 0: "I do not serve it", harmless to every receiver), and
//! a gateway that heard one for a channel within [`HOLD`] keeps re-sending it. Alone on its
//! segment, a gateway spares the segment (and itself) every copy.
//!
//! This module holds the bookkeeping and the decisions, with the time as an argument; the
//! `sixcast` crate's channel layer does the I/O.

use std::{
    collections::HashMap,
    net::{Ipv6Addr, SocketAddrV6},
    time::{Duration, Instant},
};

use tracing::info;

use crate::{
    addr::{self, Profile, Scope},
    tunnel::Tunnel,
    wire::{
        NodeId,
        control::{self, Control, MAX_GROUPS_PER_MESSAGE},
    },
};

/// How often a gateway announces the channels it serves.
pub const ANNOUNCE_INTERVAL: Duration = Duration::from_millis(500);
/// How long an announcement stays valid: three intervals, so one or two lost announcements do
/// not start a new election.
pub const HOLD: Duration = Duration::from_millis(1500);
/// How long a node listens for gateways before it opens a tunnel of its own: two intervals.
pub const LISTEN_WINDOW: Duration = Duration::from_millis(1000);
/// How long a node counts a channel it sent to as used, joined or not: while no gateway serves
/// it, the node keeps (or opens) a tunnel to carry what it sends. Long enough that a periodic
/// sender (a check every few seconds) keeps its tunnel between sends.
pub const SENDING_HOLD: Duration = Duration::from_secs(30);
/// At most this many channels' gateways are remembered, so a flood of announcements cannot
/// grow memory; announcements of further channels are ignored until some expire.
const MAX_CHANNELS_HEARD: usize = 4096;

/// How a message reached this context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Path {
    /// Native multicast, on the channel's group.
    Native,
    /// Through a relay: down this context's tunnel, or re-sent on the core by a relay.
    Relay,
    /// Re-sent on this segment by its Stratum 1 gateway.
    Gateway,
}

impl Path {
    /// `"native"`, `"relay"` or `"gateway"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Relay => "relay",
            Self::Gateway => "gateway",
        }
    }
}

/// The link-scope group gateways announce themselves on (at the control port).
pub fn gateway_group() -> Ipv6Addr {
    match addr::group_addr(b"sixcast/gateways", &Profile::Sixcast, Scope::Link) {
        Ok(group) => group,
        // A short constant name always maps; keep a valid link-scope group even if that changed.
        Err(_) => Ipv6Addr::new(0xff12, 0, 0, 0, 0, 0, 0, 0x5c),
    }
}

/// The announcements a gateway sends for `groups` (several when it serves more than a message
/// holds). `hold` of zero withdraws them.
pub fn announcements(me: NodeId, groups: &[Ipv6Addr], hold: Duration) -> Vec<Control<'static>> {
    let hold_ms = u16::try_from(hold.as_millis()).unwrap_or(u16::MAX);
    groups
        .chunks(MAX_GROUPS_PER_MESSAGE)
        .map(|chunk| {
            Control::Gateway(control::Gateway {
                gateway: me,
                hold_ms,
                groups: chunk.to_vec(),
            })
        })
        .collect()
}

/// A gateway heard announcing a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    /// Its node id.
    pub node: NodeId,
    /// Where its announcements come from.
    pub address: SocketAddrV6,
    expires: Instant,
}

/// The gateways a node has heard on its segment, per channel group.
#[derive(Debug)]
pub struct Gateways {
    me: NodeId,
    heard: HashMap<Ipv6Addr, Vec<Heard>>,
    /// Per channel group, until when some other node of the segment listens to it (its latest
    /// withdrawing announcement, plus [`HOLD`]).
    listened_to: HashMap<Ipv6Addr, Instant>,
    listening_since: Instant,
}

/// What a node should do about its channels, given the gateways it hears (see [`Gateways::plan`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Channels this node carries but a lower id serves: stop carrying them.
    pub stand_down: Vec<Ipv6Addr>,
    /// Channels nobody serves that the open tunnel should carry.
    pub carry: Vec<Ipv6Addr>,
    /// Some channel has no gateway and there is no tunnel: open one.
    pub open_tunnel: bool,
    /// A channel sent to lately (see [`SENDING_HOLD`]) has no gateway: the tunnel carries what
    /// is sent to it, so it stays open though it may carry no joined channel.
    pub keep_tunnel: bool,
    /// Channels this node serves as the segment's gateway: announce them.
    pub serve: Vec<Ipv6Addr>,
}

impl Gateways {
    /// The bookkeeping of node `me`, which starts listening at `now`.
    pub fn new(me: NodeId, now: Instant) -> Self {
        Self {
            me,
            heard: HashMap::new(),
            listened_to: HashMap::new(),
            listening_since: now,
        }
    }

    /// Takes an announcement heard from `from`. Our own (heard back through loopback) is ignored.
    /// A withdrawal also says that its sender listens to the groups for [`HOLD`].
    pub fn heard(&mut self, from: SocketAddrV6, announcement: &Control<'_>, now: Instant) {
        let Control::Gateway(control::Gateway {
            gateway,
            hold_ms,
            groups,
        }) = announcement
        else {
            return;
        };
        if *gateway == self.me {
            return;
        }
        let expires = now + Duration::from_millis(u64::from(*hold_ms));
        if *hold_ms == 0 {
            self.listener_heard(groups, now);
        }
        for group in groups {
            if self.heard.len() >= MAX_CHANNELS_HEARD && !self.heard.contains_key(group) {
                self.expire(now);
                if self.heard.len() >= MAX_CHANNELS_HEARD {
                    continue;
                }
            }
            let entries = self.heard.entry(*group).or_default();
            entries.retain(|entry| entry.node != *gateway);
            if *hold_ms > 0 {
                entries.push(Heard {
                    node: *gateway,
                    address: from,
                    expires,
                });
            }
        }
        self.heard.retain(|_, entries| !entries.is_empty());
    }

    fn listener_heard(&mut self, groups: &[Ipv6Addr], now: Instant) {
        let until = now + HOLD;
        for group in groups {
            if self.listened_to.len() >= MAX_CHANNELS_HEARD && !self.listened_to.contains_key(group)
            {
                self.listened_to.retain(|_, until| *until > now);
                if self.listened_to.len() >= MAX_CHANNELS_HEARD {
                    continue;
                }
            }
            self.listened_to.insert(*group, until);
        }
    }

    /// Forgets announcements and listeners whose hold has passed.
    pub fn expire(&mut self, now: Instant) {
        for entries in self.heard.values_mut() {
            entries.retain(|entry| entry.expires > now);
        }
        self.heard.retain(|_, entries| !entries.is_empty());
        self.listened_to.retain(|_, until| *until > now);
    }

    /// When, after `now`, the next announcement heard runs out (or the listening window ends),
    /// if ever: the election has something new to decide then, whatever else happens.
    pub fn next_change(&self, now: Instant) -> Option<Instant> {
        let listening_ends = self.listening_since + LISTEN_WINDOW;
        self.heard
            .values()
            .flatten()
            .map(|entry| entry.expires)
            .chain(self.listened_to.values().copied())
            .chain(std::iter::once(listening_ends))
            .filter(|at| *at > now)
            .min()
    }

    /// Whether another node of the segment said within [`HOLD`] that it listens to `group`: only
    /// then does the gateway of `group` re-send it onto the segment.
    pub fn listened_to(&self, group: Ipv6Addr, now: Instant) -> bool {
        self.listened_to
            .get(&group)
            .is_some_and(|until| *until > now)
    }

    /// The gateway serving `group` on this segment, other than this node: the lowest id heard.
    pub fn serving(&self, group: Ipv6Addr, now: Instant) -> Option<Heard> {
        self.heard
            .get(&group)?
            .iter()
            .filter(|entry| entry.expires > now)
            .min_by_key(|entry| entry.node)
            .copied()
    }

    /// Whether this node has listened long enough to know the segment's gateways.
    pub fn listened(&self, now: Instant) -> bool {
        self.listening_left(now).is_zero()
    }

    /// How much longer this node must listen to know the segment's gateways.
    pub fn listening_left(&self, now: Instant) -> Duration {
        LISTEN_WINDOW.saturating_sub(now.duration_since(self.listening_since))
    }

    /// Decides, for a node that needs the core's multicast, which of its joined `channels`
    /// (channel groups) it serves, which it leaves to a better gateway, and which still need a
    /// tunnel; and whether the channels it only `sends_to` need one. `carried` says whether
    /// the tunnel (if `tunnel`) carries a channel now.
    pub fn plan(
        &self,
        channels: &[Ipv6Addr],
        sends_to: &[Ipv6Addr],
        carried: impl Fn(Ipv6Addr) -> bool,
        tunnel: bool,
        now: Instant,
    ) -> Plan {
        let mut plan = Plan::default();
        // What this node sends to an unserved channel goes up its own tunnel; it joins nothing
        // for that, so it neither carries nor serves the channel.
        if sends_to
            .iter()
            .any(|&channel| self.serving(channel, now).is_none())
        {
            plan.keep_tunnel = tunnel;
            plan.open_tunnel = !tunnel;
        }
        for &channel in channels {
            let gateway = self.serving(channel, now);
            if tunnel && carried(channel) {
                if gateway.is_some_and(|gateway| gateway.node < self.me) {
                    plan.stand_down.push(channel);
                } else {
                    plan.serve.push(channel);
                }
            } else if gateway.is_none() {
                if tunnel {
                    plan.carry.push(channel);
                } else {
                    plan.open_tunnel = true;
                }
            }
        }
        plan
    }
}

impl Plan {
    /// Changes what `tunnel` carries as the plan says, at `now`: leaves the channels it stands
    /// down from and joins those it carries, each with the groups `twins` gives for channels
    /// (a channel's group and its relayed twin). True when the tunnel should then be closed: it
    /// carries nothing, though some channel is `joined` (gateways serve them all), and nothing
    /// this node sends needs it. One kept idle would hold a MAC that expires, and a node on it
    /// would not be served.
    pub fn apply(
        &self,
        tunnel: &mut Tunnel,
        joined: bool,
        twins: impl Fn(&[Ipv6Addr]) -> Vec<Ipv6Addr>,
        now: Instant,
    ) -> bool {
        if !self.stand_down.is_empty() {
            info!(channels = ?self.stand_down, "a better gateway serves the segment; standing down");
            tunnel.leave(&twins(&self.stand_down), now);
        }
        tunnel.join(&twins(&self.carry), now);
        joined && tunnel.is_idle() && !self.keep_tunnel
    }
}

/// This node's part in its segment's gateway election: what it last announced, and when it
/// announces again. Each round the driver says which channels the node serves (from
/// [`Gateways::plan`]) and which it listens to without serving; the round says what to send.
#[derive(Debug)]
pub struct Election {
    announced: Vec<Ipv6Addr>,
    listened: Vec<Ipv6Addr>,
    next_announcement: Instant,
}

/// What a round of the [`Election`] sends on the gateway group.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Announcement {
    /// Withdrawn (hold zero): what the node stopped serving, and what it listens to without
    /// serving, which tells the segment's gateway to keep re-sending it.
    pub withdraw: Vec<Ipv6Addr>,
    /// Served, for [`HOLD`].
    pub serve: Vec<Ipv6Addr>,
}

impl Election {
    /// A node that has announced nothing, and announces at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            announced: Vec::new(),
            listened: Vec::new(),
            next_announcement: now,
        }
    }

    /// The channels last announced as served: withdrawn when the node leaves.
    pub fn announced(&self) -> &[Ipv6Addr] {
        &self.announced
    }

    /// A round at `now`, given the groups served and those listened to without serving, each
    /// in a stable order: what to announce when either changed or an announcement is due.
    pub fn round(
        &mut self,
        serving: Vec<Ipv6Addr>,
        listening: Vec<Ipv6Addr>,
        now: Instant,
    ) -> Option<Announcement> {
        if serving == self.announced && listening == self.listened && now < self.next_announcement {
            return None;
        }
        let mut withdraw: Vec<Ipv6Addr> = self
            .announced
            .iter()
            .filter(|group| !serving.contains(group) && !listening.contains(group))
            .copied()
            .collect();
        withdraw.extend_from_slice(&listening);
        let announcement = Announcement {
            withdraw,
            serve: serving.clone(),
        };
        self.announced = serving;
        self.listened = listening;
        self.next_announcement = now + ANNOUNCE_INTERVAL;
        Some(announcement)
    }

    /// When the next round is due if nothing changes meanwhile: an announcement is due, or one
    /// heard in `gateways` runs out; at most `backstop` after `now`, which bounds how late a
    /// change nothing announces is seen.
    pub fn poll_timeout(&self, gateways: &Gateways, now: Instant, backstop: Duration) -> Instant {
        let mut due = now + backstop;
        if !self.announced.is_empty() || !self.listened.is_empty() {
            due = due.min(self.next_announcement);
        }
        if let Some(change) = gateways.next_change(now) {
            due = due.min(change);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::control;

    const CHANNEL: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5c, 1);
    const OTHER: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5c, 2);

    fn from(last: u16) -> SocketAddrV6 {
        SocketAddrV6::new(
            Ipv6Addr::new(0xfd5c, 0x1a, 0, 0, 0, 0, 0, last),
            40_000,
            0,
            0,
        )
    }

    fn announce(node: u64, hold_ms: u16, groups: &[Ipv6Addr]) -> Control<'static> {
        Control::Gateway(control::Gateway {
            gateway: NodeId(node),
            hold_ms,
            groups: groups.to_vec(),
        })
    }

    #[test]
    fn the_gateway_group_is_link_scoped_and_multicast() {
        let group = gateway_group();
        assert!(group.is_multicast());
        assert_eq!(group.octets()[1] & 0x0f, 0x2, "{group}");
    }

    #[test]
    fn announcements_split_long_lists_and_encode() {
        let groups: Vec<Ipv6Addr> = (0..70u16)
            .map(|i| Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5c, i))
            .collect();
        let sent = announcements(NodeId(7), &groups, HOLD);
        assert_eq!(sent.len(), 2);
        let mut back = Vec::new();
        for message in &sent {
            let bytes = message.to_vec().unwrap();
            match control::decode(&bytes).unwrap() {
                Control::Gateway(control::Gateway {
                    gateway,
                    hold_ms,
                    groups,
                }) => {
                    assert_eq!((gateway, hold_ms), (NodeId(7), 1500));
                    back.extend(groups);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, groups);
        assert!(announcements(NodeId(7), &[], HOLD).is_empty());
    }

    #[test]
    fn the_lowest_id_serves_and_announcements_expire_after_their_hold() {
        let start = Instant::now();
        let mut gateways = Gateways::new(NodeId(50), start);
        gateways.heard(from(3), &announce(90, 1500, &[CHANNEL]), start);
        gateways.heard(from(2), &announce(20, 1000, &[CHANNEL, OTHER]), start);
        let serving = gateways.serving(CHANNEL, start).unwrap();
        assert_eq!((serving.node, serving.address), (NodeId(20), from(2)));
        // Node 20's hold (1 s) passes before node 90's (1.5 s).
        let later = start + Duration::from_millis(1200);
        assert_eq!(gateways.serving(CHANNEL, later).unwrap().node, NodeId(90));
        gateways.expire(later);
        assert_eq!(gateways.serving(OTHER, later), None);
        gateways.expire(start + HOLD);
        assert_eq!(gateways.serving(CHANNEL, start + HOLD), None);
    }

    #[test]
    fn a_withdrawal_ends_a_gateway_at_once_and_own_announcements_are_ignored() {
        let now = Instant::now();
        let mut gateways = Gateways::new(NodeId(50), now);
        gateways.heard(from(2), &announce(20, 1500, &[CHANNEL]), now);
        gateways.heard(from(2), &announce(20, 0, &[CHANNEL]), now);
        assert_eq!(gateways.serving(CHANNEL, now), None);
        gateways.heard(from(9), &announce(50, 1500, &[CHANNEL]), now);
        assert_eq!(gateways.serving(CHANNEL, now), None);
        gateways.heard(
            from(9),
            &Control::Keepalive(control::Keepalive { nonce: 1 }),
            now,
        );
        assert_eq!(gateways.serving(CHANNEL, now), None);
    }

    #[test]
    fn withdrawals_say_a_neighbour_listens_for_a_hold() {
        let now = Instant::now();
        let mut gateways = Gateways::new(NodeId(50), now);
        assert!(!gateways.listened_to(CHANNEL, now));
        // Announcing a channel is serving it, not listening to it.
        gateways.heard(from(3), &announce(90, 1500, &[CHANNEL]), now);
        assert!(!gateways.listened_to(CHANNEL, now));
        gateways.heard(from(2), &announce(20, 0, &[CHANNEL]), now);
        assert!(gateways.listened_to(CHANNEL, now));
        assert!(!gateways.listened_to(OTHER, now));
        // Repeated every interval, the signal holds; once it stops, it lapses after the hold.
        let later = now + ANNOUNCE_INTERVAL;
        gateways.heard(from(2), &announce(20, 0, &[CHANNEL]), later);
        assert!(gateways.listened_to(CHANNEL, now + HOLD));
        gateways.expire(later + HOLD);
        assert!(!gateways.listened_to(CHANNEL, later + HOLD));
        // This node's own withdrawals, heard back, are no neighbour.
        gateways.heard(from(9), &announce(50, 0, &[OTHER]), now);
        assert!(!gateways.listened_to(OTHER, now));
    }

    #[test]
    fn listeners_memory_is_bounded() {
        let now = Instant::now();
        let mut gateways = Gateways::new(NodeId(50), now);
        let flood: Vec<Ipv6Addr> = (0..=MAX_CHANNELS_HEARD)
            .map(|i| Ipv6Addr::from(0xff1e_u128 << 112 | i as u128))
            .collect();
        for chunk in flood.chunks(MAX_GROUPS_PER_MESSAGE) {
            gateways.heard(from(2), &announce(7, 0, chunk), now);
        }
        assert_eq!(gateways.listened_to.len(), MAX_CHANNELS_HEARD);
        assert!(!gateways.listened_to(flood[MAX_CHANNELS_HEARD], now));
        let later = now + HOLD;
        gateways.heard(from(2), &announce(7, 0, &[CHANNEL]), later);
        assert!(gateways.listened_to(CHANNEL, later));
        assert_eq!(gateways.listened_to.len(), 1);
    }

    #[test]
    fn memory_is_bounded_whatever_is_announced() {
        let now = Instant::now();
        let mut gateways = Gateways::new(NodeId(50), now);
        let flood: Vec<Ipv6Addr> = (0..=MAX_CHANNELS_HEARD)
            .map(|i| Ipv6Addr::from(0xff1e_u128 << 112 | i as u128))
            .collect();
        for (node, chunk) in flood.chunks(MAX_GROUPS_PER_MESSAGE).enumerate() {
            gateways.heard(from(2), &announce(100 + node as u64, 1500, chunk), now);
        }
        assert_eq!(gateways.heard.len(), MAX_CHANNELS_HEARD);
        assert_eq!(gateways.serving(flood[MAX_CHANNELS_HEARD], now), None);
        // Once the flood has expired, new announcements are taken again.
        let later = now + HOLD;
        gateways.heard(from(2), &announce(1, 1500, &[CHANNEL]), later);
        assert_eq!(gateways.serving(CHANNEL, later).unwrap().node, NodeId(1));
        assert_eq!(gateways.heard.len(), 1);
    }

    #[test]
    fn plans() {
        let now = Instant::now();
        let mut gateways = Gateways::new(NodeId(50), now);
        assert!(!gateways.listened(now));
        assert!(gateways.listened(now + LISTEN_WINDOW));
        // Nobody serves: without a tunnel, open one; with one, carry the channel.
        let plan = gateways.plan(&[CHANNEL], &[], |_| false, false, now);
        assert_eq!(
            plan,
            Plan {
                open_tunnel: true,
                ..Plan::default()
            }
        );
        let plan = gateways.plan(&[CHANNEL], &[], |_| false, true, now);
        assert_eq!(plan.carry, [CHANNEL]);
        // Carrying and unchallenged: serve.
        let plan = gateways.plan(&[CHANNEL], &[], |_| true, true, now);
        assert_eq!(plan.serve, [CHANNEL]);
        // A higher id announces too: keep serving (it stands down).
        gateways.heard(from(3), &announce(90, 1500, &[CHANNEL]), now);
        let plan = gateways.plan(&[CHANNEL], &[], |_| true, true, now);
        assert_eq!(plan.serve, [CHANNEL]);
        // A lower id serves CHANNEL: stand down, and do not open a tunnel for it.
        gateways.heard(from(2), &announce(20, 1500, &[CHANNEL]), now);
        let plan = gateways.plan(&[CHANNEL, OTHER], &[], |group| group == CHANNEL, true, now);
        assert_eq!(plan.stand_down, [CHANNEL]);
        assert!(plan.serve.is_empty());
        assert_eq!(plan.carry, [OTHER]);
        let plan = gateways.plan(&[CHANNEL], &[], |_| false, false, now);
        assert_eq!(plan, Plan::default(), "served by a gateway: no tunnel");
        // Once every announcement has expired, the node needs a tunnel again.
        let plan = gateways.plan(&[CHANNEL], &[], |_| false, false, now + HOLD);
        assert!(plan.open_tunnel);
    }

    #[test]
    fn the_next_change_is_the_first_expiry_or_the_end_of_listening() {
        let start = Instant::now();
        let mut gateways = Gateways::new(NodeId(50), start);
        assert_eq!(gateways.next_change(start), Some(start + LISTEN_WINDOW));
        let later = start + LISTEN_WINDOW;
        assert_eq!(
            gateways.next_change(later),
            None,
            "nothing heard: nothing changes"
        );
        gateways.heard(from(2), &announce(20, 1500, &[CHANNEL]), later);
        gateways.heard(
            from(3),
            &announce(90, 0, &[OTHER]),
            later + Duration::from_millis(200),
        );
        assert_eq!(
            gateways.next_change(later),
            Some(later + HOLD),
            "the gateway's hold runs out before the listener signal's"
        );
        assert_eq!(
            gateways.next_change(later + HOLD),
            Some(later + Duration::from_millis(200) + HOLD)
        );
    }

    #[test]
    fn a_channel_only_sent_to_needs_a_tunnel_while_no_gateway_serves_it() {
        let now = Instant::now();
        let mut gateways = Gateways::new(NodeId(50), now);
        gateways.heard(from(2), &announce(20, 1500, &[CHANNEL]), now);
        // CHANNEL is joined and served; OTHER, only sent to, is not: a tunnel for what is sent.
        let plan = gateways.plan(&[CHANNEL], &[OTHER], |_| false, false, now);
        assert_eq!(
            plan,
            Plan {
                open_tunnel: true,
                ..Plan::default()
            }
        );
        // With one open, keep it, but neither carry nor serve the channel: nothing is joined.
        let plan = gateways.plan(&[CHANNEL], &[OTHER], |_| false, true, now);
        assert_eq!(
            plan,
            Plan {
                keep_tunnel: true,
                ..Plan::default()
            }
        );
        // Sending to a served channel needs nothing: the gateway uploads it.
        let plan = gateways.plan(&[], &[CHANNEL], |_| false, false, now);
        assert_eq!(plan, Plan::default());
    }

    #[test]
    fn an_election_announces_on_change_and_each_interval_and_withdraws_what_it_left() {
        let start = Instant::now();
        let backstop = Duration::from_secs(1);
        let gateways = Gateways::new(NodeId(1), start);
        let mut election = Election::new(start);
        assert_eq!(
            election.poll_timeout(&gateways, start, backstop),
            start + backstop
        );
        let serve = |groups: &[Ipv6Addr]| {
            Some(Announcement {
                withdraw: Vec::new(),
                serve: groups.to_vec(),
            })
        };
        assert_eq!(
            election.round(vec![CHANNEL], Vec::new(), start),
            serve(&[CHANNEL])
        );
        let soon = start + ANNOUNCE_INTERVAL / 2;
        assert_eq!(
            election.round(vec![CHANNEL], Vec::new(), soon),
            None,
            "unchanged"
        );
        assert_eq!(
            election.poll_timeout(&gateways, soon, backstop),
            start + ANNOUNCE_INTERVAL
        );
        let due = start + ANNOUNCE_INTERVAL;
        assert_eq!(
            election.round(vec![CHANNEL], Vec::new(), due),
            serve(&[CHANNEL])
        );
        // It serves another channel instead, then none, listening to the first.
        assert_eq!(
            election.round(vec![OTHER], Vec::new(), due),
            Some(Announcement {
                withdraw: vec![CHANNEL],
                serve: vec![OTHER],
            })
        );
        assert_eq!(
            election.round(Vec::new(), vec![CHANNEL], due),
            Some(Announcement {
                withdraw: vec![OTHER, CHANNEL],
                serve: Vec::new(),
            })
        );
        assert!(election.announced().is_empty());
        // Listening is said again every interval, so the gateway keeps re-sending.
        let later = due + ANNOUNCE_INTERVAL;
        assert_eq!(election.poll_timeout(&gateways, due, backstop), later);
        assert_eq!(
            election.round(Vec::new(), vec![CHANNEL], later),
            Some(Announcement {
                withdraw: vec![CHANNEL],
                serve: Vec::new(),
            })
        );
    }

    #[test]
    fn an_election_wakes_when_a_gateway_heard_runs_out() {
        let start = Instant::now();
        let mut gateways = Gateways::new(NodeId(5), start);
        gateways.heard(from(2), &announce(2, 1000, &[CHANNEL]), start);
        let election = Election::new(start);
        assert_eq!(
            election.poll_timeout(&gateways, start, Duration::from_secs(5)),
            start + Duration::from_millis(1000)
        );
    }

    #[test]
    fn a_plan_changes_what_the_tunnel_carries_and_says_when_to_close_it() {
        let now = Instant::now();
        let mut tunnel = crate::tunnel::tests::tunnel(now);
        let helper_group: Ipv6Addr = "ff1e::5c".parse().unwrap();
        let twins = |channels: &[Ipv6Addr]| channels.to_vec();
        let carry = Plan {
            carry: vec![CHANNEL],
            ..Plan::default()
        };
        assert!(!carry.apply(&mut tunnel, true, twins, now));
        assert!(tunnel.carries(CHANNEL) && tunnel.carries(helper_group));
        assert!(
            matches!(tunnel.poll_transmit(), Some(Control::Join(join)) if join.groups == [CHANNEL])
        );
        let stand_down = Plan {
            stand_down: vec![CHANNEL, helper_group],
            ..Plan::default()
        };
        // Kept for what this node sends, or with no channel joined: not closed.
        let kept = Plan {
            stand_down: vec![CHANNEL, helper_group],
            keep_tunnel: true,
            ..Plan::default()
        };
        assert!(!kept.apply(&mut tunnel, true, twins, now));
        assert!(!tunnel.carries(CHANNEL) && tunnel.is_idle());
        assert!(matches!(tunnel.poll_transmit(), Some(Control::Leave(_))));
        assert!(!stand_down.apply(&mut tunnel, false, twins, now));
        assert!(stand_down.apply(&mut tunnel, true, twins, now));
    }
}
