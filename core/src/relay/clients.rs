//! The relay's tunnel clients: their handshake (HELLO, CHALLENGE, the verified JOIN), groups,
//! rebinding, rates and expiry.
//!
//! The client table is `sixcast_proto::relay::Tunnels`, without I/O: it takes the time as an
//! argument and says which memberships on the core its changes need; its abuse rules (caps,
//! rates, credentials, rebinding, expiry) are tested on a fake clock. The service here verifies
//! MACs, answers, and applies the memberships.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    time::Instant,
};

use sixcast_proto::relay::CoreMembership;
use tracing::{debug, warn};

use super::{RelayService, add};
use crate::{
    crypto::relay_identity,
    discovery,
    wire::control::{self, Control},
};

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
        let limit = self.state.lock().clients.len() >= policy.limits.max_tunnels;
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
            (&policy.limits, self.config.ssm_repeater),
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
