//! A relay's tunnel clients without I/O: their verified joins, groups, rebinding, rates and
//! expiry (`docs/reachability.md`, section 4). [`Tunnels`] takes the time as an argument and
//! says which memberships on the core its changes need ([`CoreMembership`]); its abuse rules
//! (caps, rates, credentials, rebinding, expiry) are tested on a fake clock. The `sixcast`
//! crate's relay service verifies MACs, answers, and applies the memberships.

use std::{
    collections::{HashMap, HashSet},
    net::{Ipv6Addr, SocketAddrV6},
    time::{Duration, Instant},
};

use crate::{
    addr,
    ratelimit::{ClientLimits, Rates},
    wire::control,
};

/// The limits a relay puts on its tunnel clients.
#[derive(Debug, Clone, Copy)]
pub struct TunnelLimits {
    /// The most clients at once.
    pub max_tunnels: usize,
    /// The most groups one client may join.
    pub max_groups_per_tunnel: usize,
    /// Each client's rates: datagrams, bytes and control messages a second.
    pub rates: Rates,
}

/// The relay's clients and the groups they want.
#[derive(Debug, Default)]
pub struct Tunnels {
    /// The clients, by the address their tunnel comes from.
    pub clients: HashMap<SocketAddrV6, Client>,
    /// Which clients want each group; a group is joined on the core while it has any.
    pub members: HashMap<Ipv6Addr, HashSet<SocketAddrV6>>,
    /// A repeater's repeated groups, each with the group it repeats.
    pub repeated: HashMap<Ipv6Addr, Ipv6Addr>,
}

/// One tunnel client.
#[derive(Debug)]
pub struct Client {
    /// The nonce and MAC of the client's handshake, accepted in its first JOIN: its tunnel's
    /// credentials, which stay valid after the relay's secret has rotated.
    pub nonce: u64,
    /// The MAC of those credentials.
    pub mac: control::Mac,
    groups: HashSet<Ipv6Addr>,
    /// When the client was last heard.
    pub last_heard: Instant,
    /// The client's rates.
    pub limits: ClientLimits,
}

/// A membership on the core that a change of the client table needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreMembership {
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
pub enum Refusal {
    /// A group named is not a multicast address.
    NotMulticast,
    /// A new client, and the relay has as many as it takes.
    NoRoom,
    /// The client would hold more groups than it may.
    TooManyGroups,
}

impl Tunnels {
    /// Adds `groups` to the client at `source` (creating it, with credentials `nonce` and
    /// `mac`, if `limits` leave room) at `now`; the memberships to take go to `changes`. A
    /// repeater (`repeater`) also hears each client host's SSM to the groups' repeated twins.
    pub fn join(
        &mut self,
        source: SocketAddrV6,
        (nonce, mac): (u64, control::Mac),
        groups: &[Ipv6Addr],
        (limits, repeater): (&TunnelLimits, bool),
        now: Instant,
        changes: &mut Vec<CoreMembership>,
    ) -> Result<(), Refusal> {
        if groups.iter().any(|group| !group.is_multicast()) {
            return Err(Refusal::NotMulticast);
        }
        if !self.clients.contains_key(&source) && self.clients.len() >= limits.max_tunnels {
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
        if held + new.len() > limits.max_groups_per_tunnel {
            return Err(Refusal::TooManyGroups);
        }
        let client = self.clients.entry(source).or_insert_with(|| Client {
            nonce,
            mac,
            groups: HashSet::new(),
            last_heard: now,
            limits: ClientLimits::new(limits.rates, now),
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
    pub fn leave(
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
    pub fn is_credential(&self, address: SocketAddrV6, nonce: u64, mac: &control::Mac) -> bool {
        self.clients
            .get(&address)
            .is_some_and(|client| client.nonce == nonce && control::mac_matches(&client.mac, mac))
    }

    /// Whether the client at `source` is within its control rate at `now` (taking one message
    /// from it). An address that is no client yet is not limited here: its JOIN was verified by
    /// its MAC, and an unverified address is answered with at most what it sent.
    pub fn allow_control(&mut self, source: SocketAddrV6, now: Instant) -> bool {
        self.clients
            .get_mut(&source)
            .is_none_or(|client| client.limits.allow_control(now))
    }

    /// Moves the client whose credentials are (`old_nonce`, `old_mac`) to `source`, with the
    /// new credentials (`nonce`, `mac`) of a handshake the caller verified for `source`,
    /// keeping its joins. False, and nothing changes, unless such a client exists and `source`
    /// is not another client already. Returns whether it moved, and from where.
    pub fn rebind(
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
    pub fn drop_client(
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
    pub fn admit_data(&mut self, source: SocketAddrV6, len: usize, now: Instant) -> Option<bool> {
        let client = self.clients.get_mut(&source)?;
        client.last_heard = now;
        Some(client.limits.allow_data(len, now))
    }

    /// Notes that a client was heard at `now`; false if it is not a client.
    pub fn touch(&mut self, source: SocketAddrV6, now: Instant) -> bool {
        self.clients
            .get_mut(&source)
            .map(|client| client.last_heard = now)
            .is_some()
    }

    /// The clients not heard for more than `silent` at `now`.
    pub fn silent(&self, silent: Duration, now: Instant) -> Vec<SocketAddrV6> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const G1: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5c, 1);
    const G2: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0x5c, 2);

    fn client(last: u16, port: u16) -> SocketAddrV6 {
        SocketAddrV6::new(Ipv6Addr::new(0xfd5c, 0x1a, 0, 0, 0, 0, 0, last), port, 0, 0)
    }

    fn policy(max_tunnels: usize, max_groups: usize) -> TunnelLimits {
        TunnelLimits {
            max_tunnels,
            max_groups_per_tunnel: max_groups,
            rates: Rates {
                datagrams: 100,
                bytes: 1 << 20,
                control: 5,
            },
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
        policy: &TunnelLimits,
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
