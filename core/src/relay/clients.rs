//! The relay's tunnel clients: their handshake (HELLO, CHALLENGE, the verified JOIN), groups,
//! rebinding, rates and expiry.

use std::{
    collections::HashSet,
    net::{Ipv6Addr, SocketAddrV6},
    time::Instant,
};

use tracing::{debug, warn};

use super::{Client, RelayService, Tunnels, add};
use crate::{
    addr,
    crypto::relay_identity,
    discovery,
    ratelimit::ClientLimits,
    wire::control::{self, Control},
};

impl RelayService {
    /// A KEEPALIVE to a verified client: unicast from a relay; from a repeater, source-specific
    /// multicast to the repeater group at the client's port, so that the client hears it only
    /// where SSM from this host reaches it.
    fn answer_keepalive(&self, nonce: u64, client: SocketAddrV6) {
        let keepalive = Control::Keepalive { nonce };
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

    /// Joins or leaves, on the core, the repeated group of `group` from `source`: where a
    /// repeater's client sends its traffic.
    fn client_source(&self, group: Ipv6Addr, source: Ipv6Addr, join: bool) {
        let Ok(repeated) = addr::repeated_addr(group) else {
            return;
        };
        for interface in &self.interfaces {
            let done = if join {
                self.core.join_source(repeated, source, interface)
            } else {
                self.core.leave_source(repeated, source, interface)
            };
            if let Err(err) = done {
                // Another client of the same host may hold this membership already.
                debug!("({source}, {repeated}) on {}: {err}", interface.name);
            }
        }
    }

    pub(super) fn handle_client(&self, source: SocketAddrV6, datagram: &[u8]) {
        match control::decode(datagram) {
            Ok(Control::Hello { nonce }) => {
                let (mac, refresh_secs, limit) = self.challenge_fields(source, nonce);
                self.send(
                    &Control::Challenge {
                        nonce,
                        mac,
                        refresh_secs,
                        limit,
                    },
                    source,
                );
            }
            // Padded to the answer's length: signing for an unverified address amplifies nothing.
            Ok(Control::SignedHello { nonce }) => {
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
            Ok(Control::Join { nonce, mac, groups }) => {
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
            Ok(Control::Leave { nonce, mac, groups }) if self.verify(source, nonce, &mac) => {
                if self.allow_control(source) {
                    self.leave(source, &groups);
                } else {
                    add(&self.counters.throttled_control, 1);
                }
            }
            // The MAC was issued to the old address, which a client behind a rebinding NAT has lost.
            Ok(Control::Teardown { nonce, mac, old })
                if self.secrets.lock().verify(old, nonce, &mac) =>
            {
                self.drop_client(old);
            }
            Ok(Control::Rebind {
                nonce,
                mac,
                old_nonce,
                old_mac,
            }) => {
                if self.rebind(source, (nonce, &mac), (old_nonce, &old_mac)) {
                    // Sent only now that the new address is proven: the client's sign to switch.
                    self.answer_keepalive(nonce, source);
                } else {
                    add(&self.counters.refused, 1);
                }
            }
            Ok(Control::Keepalive { nonce }) => {
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
            Ok(Control::Data { group, datagram }) => self.forward_up(source, group, datagram),
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
        let mac = self.secrets.lock().mac(source, nonce);
        let policy = self.policy();
        let limit = self.state.lock().clients.len() >= policy.max_tunnels;
        let refresh_secs = u16::try_from(policy.refresh.as_secs()).unwrap_or(u16::MAX);
        (mac, refresh_secs, limit)
    }

    /// Whether the client at `source` is within its control rate (taking one message from it).
    /// An address that is no client yet is not limited here: its JOIN was verified by its MAC,
    /// and an unverified address is answered with at most what it sent.
    fn allow_control(&self, source: SocketAddrV6) -> bool {
        let now = Instant::now();
        self.state
            .lock()
            .clients
            .get_mut(&source)
            .is_none_or(|client| client.limits.allow_control(now))
    }

    /// Whether `mac` proves that `source` received our CHALLENGE to `nonce`: under a current
    /// secret, or as the credentials of the client already at `source`.
    fn verify(&self, source: SocketAddrV6, nonce: u64, mac: &control::Mac) -> bool {
        self.secrets.lock().verify(source, nonce, mac) || self.is_credential(source, nonce, mac)
    }

    /// Whether (`nonce`, `mac`) are the credentials of the client at `address`.
    fn is_credential(&self, address: SocketAddrV6, nonce: u64, mac: &control::Mac) -> bool {
        self.state
            .lock()
            .clients
            .get(&address)
            .is_some_and(|client| client.nonce == nonce && control::mac_matches(&client.mac, mac))
    }

    /// Adds `groups` to the client at `source` (creating it if there is room); false if refused.
    pub(super) fn join(
        &self,
        source: SocketAddrV6,
        (nonce, mac): (u64, control::Mac),
        groups: &[Ipv6Addr],
    ) -> bool {
        if groups.iter().any(|group| !group.is_multicast()) {
            return false;
        }
        let policy = self.policy();
        let mut state = self.state.lock();
        let state = &mut *state;
        if !state.clients.contains_key(&source) && state.clients.len() >= policy.max_tunnels {
            return false;
        }
        let now = Instant::now();
        let client = state.clients.entry(source).or_insert_with(|| Client {
            nonce,
            mac,
            groups: HashSet::new(),
            last_heard: now,
            limits: ClientLimits::new(policy.rates, now),
        });
        client.last_heard = now;
        // A client that shook hands again (same address) is known by its latest handshake.
        (client.nonce, client.mac) = (nonce, mac);
        let new: Vec<Ipv6Addr> = groups
            .iter()
            .copied()
            .filter(|group| !client.groups.contains(group))
            .collect();
        if client.groups.len() + new.len() > policy.max_groups_per_tunnel {
            return false;
        }
        for group in new {
            client.groups.insert(group);
            let members = state.members.entry(group).or_default();
            if members.is_empty() {
                for interface in &self.interfaces {
                    if let Err(err) = self.core.join(group, interface) {
                        warn!("joining {group} for a tunnel client: {err}");
                    }
                }
                if self.config.ssm_repeater
                    && let Ok(repeated) = addr::repeated_addr(group)
                {
                    state.repeated.insert(repeated, group);
                }
            }
            if self.config.ssm_repeater && !members.iter().any(|m| m.ip() == source.ip()) {
                self.client_source(group, *source.ip(), true);
            }
            members.insert(source);
        }
        true
    }

    pub(super) fn leave(&self, source: SocketAddrV6, groups: &[Ipv6Addr]) {
        let mut state = self.state.lock();
        let state = &mut *state;
        let Some(client) = state.clients.get_mut(&source) else {
            return;
        };
        let left: Vec<Ipv6Addr> = groups
            .iter()
            .copied()
            .filter(|group| client.groups.remove(group))
            .collect();
        for group in left {
            self.forget_member(state, group, source);
        }
    }

    fn forget_member(&self, state: &mut Tunnels, group: Ipv6Addr, client: SocketAddrV6) {
        let Some(clients) = state.members.get_mut(&group) else {
            return;
        };
        clients.remove(&client);
        if self.config.ssm_repeater && !clients.iter().any(|m| m.ip() == client.ip()) {
            self.client_source(group, *client.ip(), false);
        }
        if clients.is_empty() {
            state.members.remove(&group);
            state.repeated.retain(|_, repeated| *repeated != group);
            for interface in &self.interfaces {
                if let Err(err) = self.core.leave(group, interface) {
                    debug!("leaving {group}: {err}");
                }
            }
        }
    }

    /// Moves a client's tunnel to `source` after a NAT rebinding, keeping its joins. The first
    /// nonce and MAC are of a handshake with `source` (it receives there), the second the
    /// credentials of the tunnel being moved (it is that client). False, and nothing changes,
    /// unless both verify and `source` is not another client already.
    fn rebind(
        &self,
        source: SocketAddrV6,
        (nonce, mac): (u64, &control::Mac),
        (old_nonce, old_mac): (u64, &control::Mac),
    ) -> bool {
        if !self.secrets.lock().verify(source, nonce, mac) {
            return false;
        }
        let mut state = self.state.lock();
        let state = &mut *state;
        // The old credentials prove the sender is that client.
        let old = state.clients.iter().find_map(|(address, client)| {
            (client.nonce == old_nonce && control::mac_matches(&client.mac, old_mac))
                .then_some(*address)
        });
        let Some(old) = old else {
            return false;
        };
        if old != source && state.clients.contains_key(&source) {
            return false;
        }
        let Some(mut client) = state.clients.remove(&old) else {
            return false;
        };
        (client.nonce, client.mac) = (nonce, *mac);
        client.last_heard = Instant::now();
        for group in &client.groups {
            if let Some(members) = state.members.get_mut(group) {
                members.remove(&old);
                let moved_host = old.ip() != source.ip();
                if self.config.ssm_repeater && moved_host {
                    if !members.iter().any(|m| m.ip() == old.ip()) {
                        self.client_source(*group, *old.ip(), false);
                    }
                    if !members.iter().any(|m| m.ip() == source.ip()) {
                        self.client_source(*group, *source.ip(), true);
                    }
                }
                members.insert(source);
            }
        }
        state.clients.insert(source, client);
        if old != source {
            add(&self.counters.rebinds, 1);
            debug!(%old, new = %source, "tunnel moved after a NAT rebinding");
        }
        true
    }

    fn drop_client(&self, address: SocketAddrV6) {
        let mut state = self.state.lock();
        let state = &mut *state;
        if let Some(client) = state.clients.remove(&address) {
            for group in client.groups {
                self.forget_member(state, group, address);
            }
            debug!(%address, "tunnel client dropped");
        }
    }

    /// Notes that a client was heard; false if it is not a client.
    fn touch(&self, source: SocketAddrV6) -> bool {
        match self.state.lock().clients.get_mut(&source) {
            Some(client) => {
                client.last_heard = Instant::now();
                true
            }
            None => false,
        }
    }

    pub(super) fn expire_silent_clients(&self) {
        let silent = self.policy().refresh * 3;
        let expired: Vec<SocketAddrV6> = self
            .state
            .lock()
            .clients
            .iter()
            .filter(|(_, client)| client.last_heard.elapsed() > silent)
            .map(|(address, _)| *address)
            .collect();
        for address in expired {
            self.drop_client(address);
        }
    }
}
