//! The relay's tunnel clients: their handshake (HELLO, CHALLENGE, the verified JOIN), groups,
//! rebinding, rates and expiry.
//!
//! [`Tunnels`] is the client table without I/O: it takes the time as an argument and says
//! which memberships on the core its changes need ([`CoreMembership`]); its abuse rules (caps,
//! rates, credentials, rebinding, expiry) are tested on a fake clock. The service verifies
//! MACs, answers, and applies the memberships.

use std::{
    collections::{HashMap, HashSet},
    net::{Ipv6Addr, SocketAddrV6},
    time::{Duration, Instant},
};

use tracing::{debug, warn};

use super::{Policy, RelayService, add};
use crate::{
    addr,
    crypto::relay_identity,
    discovery,
    ratelimit::ClientLimits,
    wire::control::{self, Control},
};

/// The relay's clients and the groups they want.
#[derive(Default)]
pub(super) struct Tunnels {
    pub(super) clients: HashMap<SocketAddrV6, Client>,
    /// Which clients want each group; a group is joined on the core while it has any.
    pub(super) members: HashMap<Ipv6Addr, HashSet<SocketAddrV6>>,
    /// A repeater's repeated groups, each with the group it repeats.
    pub(super) repeated: HashMap<Ipv6Addr, Ipv6Addr>,
}

pub(super) struct Client {
    /// The nonce and MAC of the client's handshake, accepted in its first JOIN: its tunnel's
    /// credentials, which stay valid after the relay's secret has rotated.
    pub(super) nonce: u64,
    pub(super) mac: control::Mac,
    groups: HashSet<Ipv6Addr>,
    pub(super) last_heard: Instant,
    pub(super) limits: ClientLimits,
}

/// A membership on the core that a change of the client table needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CoreMembership {
    /// A group's first client: join it on the core.
    Join(Ipv6Addr),
    /// A group's last client left: leave it.
    Leave(Ipv6Addr),
    /// A repeater's client on a new host: hear its SSM to the repeated group (source, group).
    JoinSource(Ipv6Addr, Ipv6Addr),
    /// A repeater's last client on a host left a group: stop hearing its SSM.
    LeaveSource(Ipv6Addr, Ipv6Addr),
}

/// Why a JOIN was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    NotMulticast,
    NoRoom,
    TooManyGroups,
}

impl Tunnels {
    /// Adds `groups` to the client at `source` (creating it, with credentials `nonce` and
    /// `mac`, if `policy` leaves room) at `now`; the memberships to take go to `changes`. A
    /// repeater (`repeater`) also hears each client host's SSM to the groups' repeated twins.
    pub(super) fn join(
        &mut self,
        source: SocketAddrV6,
        (nonce, mac): (u64, control::Mac),
        groups: &[Ipv6Addr],
        (policy, repeater): (&Policy, bool),
        now: Instant,
        changes: &mut Vec<CoreMembership>,
    ) -> Result<(), Refusal> {
        if groups.iter().any(|group| !group.is_multicast()) {
            return Err(Refusal::NotMulticast);
        }
        if !self.clients.contains_key(&source) && self.clients.len() >= policy.max_tunnels {
            return Err(Refusal::NoRoom);
        }
        let known = self.clients.get(&source).map(|client| &client.groups);
        let held = known.map_or(0, HashSet::len);
        let mut seen = HashSet::new();
        let new: Vec<Ipv6Addr> = groups
            .iter()
            .copied()
            .filter(|group| {
                !known.is_some_and(|known| known.contains(group)) && seen.insert(*group)
            })
            .collect();
        if held + new.len() > policy.max_groups_per_tunnel {
            return Err(Refusal::TooManyGroups);
        }
        let client = self.clients.entry(source).or_insert_with(|| Client {
            nonce,
            mac,
            groups: HashSet::new(),
            last_heard: now,
            limits: ClientLimits::new(policy.rates, now),
        });
        client.last_heard = now;
        // A client that shook hands again (same address) is known by its latest handshake.
        (client.nonce, client.mac) = (nonce, mac);
        for group in new {
            client.groups.insert(group);
            let members = self.members.entry(group).or_default();
            if members.is_empty() {
                changes.push(CoreMembership::Join(group));
                if repeater && let Ok(twin) = addr::repeated_addr(group) {
                    self.repeated.insert(twin, group);
                }
            }
            if repeater && !members.iter().any(|member| member.ip() == source.ip()) {
                source_membership(group, *source.ip(), true, changes);
            }
            members.insert(source);
        }
        Ok(())
    }

    /// Removes `groups` from the client at `source`.
    pub(super) fn leave(
        &mut self,
        source: SocketAddrV6,
        groups: &[Ipv6Addr],
        repeater: bool,
        changes: &mut Vec<CoreMembership>,
    ) {
        let Some(client) = self.clients.get_mut(&source) else {
            return;
        };
        let left: Vec<Ipv6Addr> = groups
            .iter()
            .copied()
            .filter(|group| client.groups.remove(group))
            .collect();
        for group in left {
            self.forget_member(group, source, repeater, changes);
        }
    }

    fn forget_member(
        &mut self,
        group: Ipv6Addr,
        client: SocketAddrV6,
        repeater: bool,
        changes: &mut Vec<CoreMembership>,
    ) {
        let Some(clients) = self.members.get_mut(&group) else {
            return;
        };
        clients.remove(&client);
        if repeater && !clients.iter().any(|member| member.ip() == client.ip()) {
            source_membership(group, *client.ip(), false, changes);
        }
        if clients.is_empty() {
            self.members.remove(&group);
            self.repeated.retain(|_, repeated| *repeated != group);
            changes.push(CoreMembership::Leave(group));
        }
    }

    /// Whether (`nonce`, `mac`) are the credentials of the client at `address`.
    pub(super) fn is_credential(
        &self,
        address: SocketAddrV6,
        nonce: u64,
        mac: &control::Mac,
    ) -> bool {
        self.clients
            .get(&address)
            .is_some_and(|client| client.nonce == nonce && control::mac_matches(&client.mac, mac))
    }

    /// Whether the client at `source` is within its control rate at `now` (taking one message
    /// from it). An address that is no client yet is not limited here: its JOIN was verified by
    /// its MAC, and an unverified address is answered with at most what it sent.
    pub(super) fn allow_control(&mut self, source: SocketAddrV6, now: Instant) -> bool {
        self.clients
            .get_mut(&source)
            .is_none_or(|client| client.limits.allow_control(now))
    }

    /// Moves the client whose credentials are (`old_nonce`, `old_mac`) to `source`, with the
    /// new credentials (`nonce`, `mac`) of a handshake the caller verified for `source`,
    /// keeping its joins. False, and nothing changes, unless such a client exists and `source`
    /// is not another client already. Returns whether it moved, and from where.
    pub(super) fn rebind(
        &mut self,
        source: SocketAddrV6,
        (nonce, mac): (u64, &control::Mac),
        (old_nonce, old_mac): (u64, &control::Mac),
        (repeater, now): (bool, Instant),
        changes: &mut Vec<CoreMembership>,
    ) -> Option<SocketAddrV6> {
        // The old credentials prove the sender is that client.
        let old = self.clients.iter().find_map(|(address, client)| {
            (client.nonce == old_nonce && control::mac_matches(&client.mac, old_mac))
                .then_some(*address)
        })?;
        if old != source && self.clients.contains_key(&source) {
            return None;
        }
        let mut client = self.clients.remove(&old)?;
        (client.nonce, client.mac) = (nonce, *mac);
        client.last_heard = now;
        for group in &client.groups {
            if let Some(members) = self.members.get_mut(group) {
                members.remove(&old);
                if repeater && old.ip() != source.ip() {
                    if !members.iter().any(|member| member.ip() == old.ip()) {
                        source_membership(*group, *old.ip(), false, changes);
                    }
                    if !members.iter().any(|member| member.ip() == source.ip()) {
                        source_membership(*group, *source.ip(), true, changes);
                    }
                }
                members.insert(source);
            }
        }
        self.clients.insert(source, client);
        Some(old)
    }

    /// Drops the client at `address` and its joins.
    pub(super) fn drop_client(
        &mut self,
        address: SocketAddrV6,
        repeater: bool,
        changes: &mut Vec<CoreMembership>,
    ) -> bool {
        let Some(client) = self.clients.remove(&address) else {
            return false;
        };
        for group in client.groups {
            self.forget_member(group, address, repeater, changes);
        }
        true
    }

    /// Whether the client at `source` may send a datagram of `len` bytes up at `now` (taking it
    /// from its rates); `None` if `source` is no client. Sending counts as being heard.
    pub(super) fn admit_data(
        &mut self,
        source: SocketAddrV6,
        len: usize,
        now: Instant,
    ) -> Option<bool> {
        let client = self.clients.get_mut(&source)?;
        client.last_heard = now;
        Some(client.limits.allow_data(len, now))
    }

    /// Notes that a client was heard at `now`; false if it is not a client.
    pub(super) fn touch(&mut self, source: SocketAddrV6, now: Instant) -> bool {
        self.clients
            .get_mut(&source)
            .map(|client| client.last_heard = now)
            .is_some()
    }

    /// The clients not heard for more than `silent` at `now`.
    pub(super) fn silent(&self, silent: Duration, now: Instant) -> Vec<SocketAddrV6> {
        self.clients
            .iter()
            .filter(|(_, client)| now.saturating_duration_since(client.last_heard) > silent)
            .map(|(address, _)| *address)
            .collect()
    }
}

/// The SSM membership (`source`, the repeated twin of `group`) a repeater takes or gives up.
fn source_membership(
    group: Ipv6Addr,
    source: Ipv6Addr,
    join: bool,
    changes: &mut Vec<CoreMembership>,
) {
    if let Ok(repeated) = addr::repeated_addr(group) {
        changes.push(if join {
            CoreMembership::JoinSource(source, repeated)
        } else {
            CoreMembership::LeaveSource(source, repeated)
        });
    }
}

impl RelayService {
    /// A KEEPALIVE to a verified client: unicast from a relay; from a repeater, source-specific
    /// multicast to the repeater group at the client's port, so that the client hears it only
    /// where SSM from this host reaches it.
    fn answer_keepalive(&self, nonce: u64, client: SocketAddrV6) {
        let keepalive = Control::Keepalive(control::Keepalive { nonce });
        if !self.config.ssm_repeater {
            self.send(&keepalive, client);
            return;
        }
        let Ok(datagram) = keepalive.to_vec() else {
            return;
        };
        let group = SocketAddrV6::new(
            discovery::repeater_group(self.config.scope),
            client.port(),
            0,
            0,
        );
        for interface in &self.interfaces {
            if let Err(err) = self.tunnels_socket.send_via(&datagram, group, interface) {
                debug!("sending a keepalive to {group}: {err}");
            }
        }
    }

    /// Takes, on the core, the memberships the client table's changes need.
    pub(super) fn apply(&self, changes: &[CoreMembership]) {
        for change in changes {
            for interface in &self.interfaces {
                let done = match *change {
                    CoreMembership::Join(group) => self.core.join(group, interface),
                    CoreMembership::Leave(group) => self.core.leave(group, interface),
                    CoreMembership::JoinSource(source, group) => {
                        self.core.join_source(group, source, interface)
                    }
                    CoreMembership::LeaveSource(source, group) => {
                        self.core.leave_source(group, source, interface)
                    }
                };
                if let Err(err) = done {
                    // Another client of the same host may hold an SSM membership already.
                    match change {
                        CoreMembership::Join(_) => warn!("{change:?} on {}: {err}", interface.name),
                        _ => debug!("{change:?} on {}: {err}", interface.name),
                    }
                }
            }
        }
    }

    pub(super) fn handle_client(&self, source: SocketAddrV6, datagram: &[u8]) {
        match control::decode(datagram) {
            Ok(Control::Hello(control::Hello { nonce })) => {
                let (mac, refresh_secs, limit) = self.challenge_fields(source, nonce);
                self.send(
                    &Control::Challenge(control::Challenge {
                        nonce,
                        mac,
                        refresh_secs,
                        limit,
                    }),
                    source,
                );
            }
            // Padded to the answer's length: signing for an unverified address amplifies nothing.
            Ok(Control::SignedHello(control::SignedHello { nonce })) => {
                let policy = self.policy();
                let Some(identity) = &policy.identity else {
                    add(&self.counters.rejected, 1);
                    debug!(%source, "a signed hello, but this relay has no identity key");
                    return;
                };
                if !self.signing.lock().take(1, Instant::now()) {
                    add(&self.counters.throttled_control, 1);
                    return;
                }
                let (mac, refresh_secs, limit) = self.challenge_fields(source, nonce);
                let challenge = relay_identity::sign_challenge(
                    (identity, policy.voucher.as_ref()),
                    (nonce, mac),
                    refresh_secs,
                    limit,
                    source,
                );
                self.send(&challenge, source);
            }
            Ok(Control::Join(control::Join { nonce, mac, groups })) => {
                if !self.verify(source, nonce, &mac) {
                    add(&self.counters.refused, 1);
                    return;
                }
                // Charged only once verified, so that nobody else can spend a client's tokens.
                if !self.allow_control(source) {
                    add(&self.counters.throttled_control, 1);
                    return;
                }
                if !self.join(source, (nonce, mac), &groups) {
                    add(&self.counters.refused, 1);
                    return;
                }
                // The first KEEPALIVE tells the client its tunnel is up.
                self.answer_keepalive(nonce, source);
            }
            Ok(Control::Leave(control::Leave { nonce, mac, groups }))
                if self.verify(source, nonce, &mac) =>
            {
                if self.allow_control(source) {
                    self.leave(source, &groups);
                } else {
                    add(&self.counters.throttled_control, 1);
                }
            }
            // The MAC was issued to the old address, which a client behind a rebinding NAT has lost.
            Ok(Control::Teardown(control::Teardown { nonce, mac, old }))
                if self.secrets.lock().verify(old, nonce, &mac, Instant::now()) =>
            {
                self.drop_client(old);
            }
            Ok(Control::Rebind(control::Rebind {
                nonce,
                mac,
                old_nonce,
                old_mac,
            })) => {
                if self.rebind(source, (nonce, &mac), (old_nonce, &old_mac)) {
                    // Sent only now that the new address is proven: the client's sign to switch.
                    self.answer_keepalive(nonce, source);
                } else {
                    add(&self.counters.refused, 1);
                }
            }
            Ok(Control::Keepalive(control::Keepalive { nonce })) => {
                if !self.touch(source) {
                    add(&self.counters.rejected, 1);
                } else if self.allow_control(source) {
                    self.answer_keepalive(nonce, source);
                } else {
                    // KEEPALIVE carries no MAC: a throttled one still counts as the client
                    // heard, and a client that misses the answers recovers by REBIND.
                    add(&self.counters.throttled_control, 1);
                }
            }
            Ok(Control::Data(control::Data { group, datagram })) => {
                self.forward_up(source, group, datagram);
            }
            Ok(other) => {
                add(&self.counters.rejected, 1);
                debug!(%source, kind = other.name(), "a relay does not take this message");
            }
            Err(err) => {
                add(&self.counters.rejected, 1);
                debug!(%source, "malformed tunnel datagram: {err}");
            }
        }
    }

    /// The MAC, refresh interval and LIMIT flag of a (signed or plain) challenge to `source`'s
    /// hello with `nonce`; counts the challenge.
    fn challenge_fields(&self, source: SocketAddrV6, nonce: u64) -> (control::Mac, u16, bool) {
        add(&self.counters.challenges, 1);
        let mac = self.secrets.lock().mac(source, nonce, Instant::now());
        let policy = self.policy();
        let limit = self.state.lock().clients.len() >= policy.max_tunnels;
        let refresh_secs = u16::try_from(policy.refresh.as_secs()).unwrap_or(u16::MAX);
        (mac, refresh_secs, limit)
    }

    /// Whether the client at `source` is within its control rate (taking one message from it).
    fn allow_control(&self, source: SocketAddrV6) -> bool {
        self.state.lock().allow_control(source, Instant::now())
    }

    /// Whether `mac` proves that `source` received our CHALLENGE to `nonce`: under a current
    /// secret, or as the credentials of the client already at `source`.
    fn verify(&self, source: SocketAddrV6, nonce: u64, mac: &control::Mac) -> bool {
        self.secrets
            .lock()
            .verify(source, nonce, mac, Instant::now())
            || self.state.lock().is_credential(source, nonce, mac)
    }

    /// Adds `groups` to the client at `source` (creating it if there is room); false if refused.
    pub(super) fn join(
        &self,
        source: SocketAddrV6,
        credentials: (u64, control::Mac),
        groups: &[Ipv6Addr],
    ) -> bool {
        let policy = self.policy();
        let mut changes = Vec::new();
        let joined = self.state.lock().join(
            source,
            credentials,
            groups,
            (&policy, self.config.ssm_repeater),
            Instant::now(),
            &mut changes,
        );
        self.apply(&changes);
        if let Err(why) = joined {
            debug!(%source, "join refused: {why:?}");
        }
        joined.is_ok()
    }

    pub(super) fn leave(&self, source: SocketAddrV6, groups: &[Ipv6Addr]) {
        let mut changes = Vec::new();
        self.state
            .lock()
            .leave(source, groups, self.config.ssm_repeater, &mut changes);
        self.apply(&changes);
    }

    /// Moves a client's tunnel to `source` after a NAT rebinding, keeping its joins. The first
    /// nonce and MAC are of a handshake with `source` (it receives there), the second the
    /// credentials of the tunnel being moved (it is that client). False, and nothing changes,
    /// unless both verify and `source` is not another client already.
    fn rebind(
        &self,
        source: SocketAddrV6,
        (nonce, mac): (u64, &control::Mac),
        old: (u64, &control::Mac),
    ) -> bool {
        if !self
            .secrets
            .lock()
            .verify(source, nonce, mac, Instant::now())
        {
            return false;
        }
        let mut changes = Vec::new();
        let moved = self.state.lock().rebind(
            source,
            (nonce, mac),
            old,
            (self.config.ssm_repeater, Instant::now()),
            &mut changes,
        );
        self.apply(&changes);
        match moved {
            Some(old) if old != source => {
                add(&self.counters.rebinds, 1);
                debug!(%old, new = %source, "tunnel moved after a NAT rebinding");
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    fn drop_client(&self, address: SocketAddrV6) {
        let mut changes = Vec::new();
        let dropped =
            self.state
                .lock()
                .drop_client(address, self.config.ssm_repeater, &mut changes);
        self.apply(&changes);
        if dropped {
            debug!(%address, "tunnel client dropped");
        }
    }

    /// Notes that a client was heard; false if it is not a client.
    fn touch(&self, source: SocketAddrV6) -> bool {
        self.state.lock().touch(source, Instant::now())
    }

    pub(super) fn expire_silent_clients(&self) {
        let silent = self.policy().refresh * 3;
        let expired = self.state.lock().silent(silent, Instant::now());
        for address in expired {
            self.drop_client(address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Rates;

    const G1: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5c, 1);
    const G2: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5c, 2);

    fn client(last: u16, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(Ipv6Addr::new(0xfd5c, 0x1a, 0, 0, 0, 0, 0, last), port, 0, 0)
    }

    fn policy(max_tunnels: usize, max_groups: usize) -> Policy {
        Policy {
            max_tunnels,
            max_groups_per_tunnel: max_groups,
            refresh: Duration::from_secs(10),
            rates: Rates {
                datagrams: 100,
                bytes: 1 << 20,
                control: 5,
            },
            identity: None,
            voucher: None,
        }
    }

    fn credentials(byte: u8) -> (u64, control::Mac) {
        (u64::from(byte), [byte; control::MAC_LEN])
    }

    /// Joins on a relay (not a repeater) and returns the memberships it needs.
    fn join(
        table: &mut Tunnels,
        (source, byte): (SocketAddrV6, u8),
        groups: &[Ipv6Addr],
        policy: &Policy,
        now: Instant,
    ) -> Result<Vec<CoreMembership>, Refusal> {
        let mut changes = Vec::new();
        table.join(
            source,
            credentials(byte),
            groups,
            (policy, false),
            now,
            &mut changes,
        )?;
        Ok(changes)
    }

    #[test]
    fn a_group_is_joined_on_the_core_for_its_first_client_and_left_after_its_last() {
        let now = Instant::now();
        let policy = policy(8, 4);
        let mut table = Tunnels::default();
        let (a, b) = (client(1, 40_000), client(2, 40_000));
        assert_eq!(
            join(&mut table, (a, 1), &[G1, G2], &policy, now),
            Ok(vec![CoreMembership::Join(G1), CoreMembership::Join(G2)])
        );
        assert_eq!(join(&mut table, (b, 2), &[G1], &policy, now), Ok(vec![]));
        // Joining again changes nothing; a JOIN of no group makes a client too.
        assert_eq!(join(&mut table, (a, 1), &[G1], &policy, now), Ok(vec![]));
        assert_eq!(
            join(&mut table, (client(3, 1), 3), &[], &policy, now),
            Ok(vec![])
        );
        let mut changes = Vec::new();
        table.leave(a, &[G1, G2], false, &mut changes);
        assert_eq!(changes, [CoreMembership::Leave(G2)], "b still wants G1");
        changes.clear();
        assert!(table.drop_client(b, false, &mut changes));
        assert_eq!(changes, [CoreMembership::Leave(G1)]);
        assert!(!table.drop_client(b, false, &mut changes), "gone already");
    }

    #[test]
    fn joins_beyond_the_caps_or_of_unicast_groups_are_refused_and_leave_nothing() {
        let now = Instant::now();
        let policy = policy(2, 2);
        let mut table = Tunnels::default();
        let unicast = Ipv6Addr::new(0xfd5c, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(
            join(&mut table, (client(1, 1), 1), &[G1, unicast], &policy, now),
            Err(Refusal::NotMulticast)
        );
        let third = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5c, 3);
        assert_eq!(
            join(
                &mut table,
                (client(1, 1), 1),
                &[G1, G2, third],
                &policy,
                now
            ),
            Err(Refusal::TooManyGroups)
        );
        assert!(table.clients.is_empty() && table.members.is_empty());
        join(&mut table, (client(1, 1), 1), &[G1, G2], &policy, now).unwrap();
        // The same group twice in one JOIN counts once.
        join(&mut table, (client(2, 1), 2), &[G1, G1], &policy, now).unwrap();
        assert_eq!(
            join(&mut table, (client(3, 1), 3), &[G1], &policy, now),
            Err(Refusal::NoRoom)
        );
        // A client already served is no new tunnel: it may still join within its own cap.
        assert_eq!(
            join(&mut table, (client(2, 1), 2), &[G2], &policy, now),
            Ok(vec![])
        );
        assert_eq!(table.clients.len(), 2);
    }

    #[test]
    fn control_and_data_rates_hold_per_client_and_refill_with_time() {
        let start = Instant::now();
        let policy = policy(8, 4);
        let mut table = Tunnels::default();
        let (a, b) = (client(1, 1), client(2, 1));
        join(&mut table, (a, 1), &[G1], &policy, start).unwrap();
        join(&mut table, (b, 2), &[G1], &policy, start).unwrap();
        let allowed = (0..10).filter(|_| table.allow_control(a, start)).count();
        assert_eq!(allowed, 5, "one second's worth of control messages");
        assert!(
            table.allow_control(b, start),
            "another client's budget is its own"
        );
        assert!(
            table.allow_control(a, start + Duration::from_millis(250)),
            "refilled"
        );
        assert!(
            table.allow_control(client(9, 9), start),
            "not a client: limited elsewhere"
        );
        let sent = (0..150)
            .filter(|_| table.admit_data(a, 1000, start) == Some(true))
            .count();
        assert_eq!(sent, 100);
        assert_eq!(table.admit_data(client(9, 9), 1000, start), None);
        assert_eq!(
            table.admit_data(a, 1000, start + Duration::from_secs(1)),
            Some(true)
        );
    }

    #[test]
    fn a_rebinding_needs_the_old_credentials_and_a_free_address_and_keeps_the_joins() {
        let now = Instant::now();
        let policy = policy(8, 4);
        let mut table = Tunnels::default();
        let (old, new, other) = (client(1, 40_000), client(1, 50_000), client(2, 40_000));
        join(&mut table, (old, 1), &[G1], &policy, now).unwrap();
        join(&mut table, (other, 2), &[G2], &policy, now).unwrap();
        let fresh = (7, &[7; control::MAC_LEN]);
        let mut changes = Vec::new();
        let forged = (1, &[9; control::MAC_LEN]);
        assert_eq!(
            table.rebind(new, fresh, forged, (false, now), &mut changes),
            None
        );
        let (nonce, mac) = credentials(1);
        assert_eq!(
            table.rebind(other, fresh, (nonce, &mac), (false, now), &mut changes),
            None,
            "onto another client's address"
        );
        let later = now + Duration::from_secs(5);
        assert_eq!(
            table.rebind(new, fresh, (nonce, &mac), (false, later), &mut changes),
            Some(old)
        );
        assert!(
            changes.is_empty(),
            "the same groups, the same host: nothing on the core"
        );
        assert!(!table.clients.contains_key(&old));
        assert!(table.is_credential(new, 7, &[7; control::MAC_LEN]));
        assert!(
            !table.is_credential(new, 1, &[1; control::MAC_LEN]),
            "the old ones are spent"
        );
        assert!(table.members[&G1].contains(&new) && !table.members[&G1].contains(&old));
        // Heard at the rebinding: not silent for another 3 refreshes from then (unlike the other
        // client, heard last at the start).
        let silent = table.silent(Duration::from_secs(30), later + Duration::from_secs(29));
        assert_eq!(silent, [other]);
    }

    #[test]
    fn silent_clients_expire_and_being_heard_keeps_them() {
        let start = Instant::now();
        let policy = policy(8, 4);
        let mut table = Tunnels::default();
        let (a, b) = (client(1, 1), client(2, 1));
        join(&mut table, (a, 1), &[G1], &policy, start).unwrap();
        join(&mut table, (b, 2), &[G1], &policy, start).unwrap();
        let limit = Duration::from_secs(30);
        assert!(table.touch(b, start + Duration::from_secs(20)));
        assert!(!table.touch(client(9, 9), start), "not a client");
        assert_eq!(table.silent(limit, start + limit), []);
        assert_eq!(
            table.silent(limit, start + limit + Duration::from_millis(1)),
            [a]
        );
    }

    #[test]
    fn a_repeater_hears_each_client_host_once_per_group() {
        let now = Instant::now();
        let policy = policy(8, 4);
        let mut table = Tunnels::default();
        let twin = addr::repeated_addr(G1).unwrap();
        let host = |port| client(1, port);
        let mut changes = Vec::new();
        table
            .join(
                host(1),
                credentials(1),
                &[G1],
                (&policy, true),
                now,
                &mut changes,
            )
            .unwrap();
        assert_eq!(
            changes,
            [
                CoreMembership::Join(G1),
                CoreMembership::JoinSource(*host(1).ip(), twin)
            ]
        );
        assert_eq!(table.repeated.get(&twin), Some(&G1));
        changes.clear();
        // A second client on the same host needs no second SSM membership, nor its leaving.
        table
            .join(
                host(2),
                credentials(2),
                &[G1],
                (&policy, true),
                now,
                &mut changes,
            )
            .unwrap();
        table.leave(host(2), &[G1], true, &mut changes);
        assert_eq!(changes, []);
        table.leave(host(1), &[G1], true, &mut changes);
        assert_eq!(
            changes,
            [
                CoreMembership::LeaveSource(*host(1).ip(), twin),
                CoreMembership::Leave(G1)
            ]
        );
        assert!(table.repeated.is_empty());
    }
}
