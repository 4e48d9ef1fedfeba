//! The relay's threads and traffic: the tunnel socket's loop, what goes up to the core and
//! down to clients, the core's side, and the offers it makes to Stratum 0's requests.

use std::{
    cell::RefCell,
    net::{Ipv6Addr, SocketAddrV6},
    sync::atomic::Ordering,
    time::Instant,
};

use tracing::{debug, warn};

use super::{Downstream, RelayService, add};
use crate::{
    addr,
    discovery::{send_control, serve},
    wire::control::{self, Control},
};

impl RelayService {
    pub(super) fn tunnel_loop(&self) {
        serve(
            &self.tunnels_socket,
            &self.waker,
            &self.closed,
            |source, _, datagram| self.handle_client(source, datagram),
            || self.expire_silent_clients(),
        );
    }

    /// Sends each client a TEARDOWN of its tunnel, authenticated by the tunnel's nonce and MAC,
    /// which only this relay and the client know.
    pub(super) fn close_tunnels(&self) {
        let clients: Vec<(SocketAddrV6, u64, control::Mac)> = self
            .state
            .lock()
            .clients
            .iter()
            .map(|(address, client)| (*address, client.nonce, client.mac))
            .collect();
        for (address, nonce, mac) in clients {
            let teardown = Control::Teardown(control::Teardown {
                nonce,
                mac,
                old: address,
            });
            self.send(&teardown, address);
        }
    }

    pub(super) fn send(&self, message: &Control<'_>, to: SocketAddrV6) {
        if let Err(err) = send_control(&self.tunnels_socket, message, to) {
            debug!("sending {} to {to}: {err}", message.name());
        }
    }

    /// A datagram a client sends up: multicast on the core and passed to the group's other
    /// clients. The client need not have joined the group: a node may send to a channel it
    /// does not listen to, and joining would only bring it the channel's traffic. Joining
    /// first and sending then was open to any client anyway; its rate limits bound both.
    pub(super) fn forward_up(&self, source: SocketAddrV6, group: Ipv6Addr, datagram: &[u8]) {
        let others: Vec<SocketAddrV6> = {
            let mut state = self.state.lock();
            match state.admit_data(source, datagram.len(), Instant::now()) {
                None => {
                    add(&self.counters.rejected, 1);
                    return;
                }
                Some(false) => {
                    add(&self.counters.throttled, 1);
                    return;
                }
                Some(true) => {}
            }
            let members = state.members.get(&group);
            members
                .map(|members| {
                    members
                        .iter()
                        .copied()
                        .filter(|member| *member != source)
                        .collect()
                })
                .unwrap_or_default()
        };
        add(&self.counters.datagrams_up, 1);
        add(&self.counters.bytes_up, datagram.len() as u64);
        self.multicast(datagram, group);
        let mut down = Downstream::default();
        self.forward_down(group, datagram, &others, &mut down);
        self.flush_down(&mut down);
    }

    /// Queues `datagram` in `down` for each of `clients` (or, as a repeater, multicasts it once).
    fn forward_down(
        &self,
        group: Ipv6Addr,
        datagram: &[u8],
        clients: &[SocketAddrV6],
        down: &mut Downstream,
    ) {
        if clients.is_empty() {
            return;
        }
        if self.config.ssm_repeater {
            // One copy for every client, as SSM from this host.
            if let Ok(repeated) = addr::repeated_addr(group) {
                self.multicast(datagram, repeated);
                add(&self.counters.datagrams_down, 1);
                add(&self.counters.bytes_down, datagram.len() as u64);
            }
            return;
        }
        let message = match (Control::Data(control::Data { group, datagram })).to_vec() {
            Ok(message) => message,
            Err(err) => {
                // An empty or oversized datagram: nothing a client could use.
                debug!("not forwarding a datagram for {group}: {err}");
                add(&self.counters.rejected, 1);
                return;
            }
        };
        let index = down.messages.len();
        down.messages.push((message, datagram.len()));
        down.sends
            .extend(clients.iter().map(|client| (index, *client)));
        if down.sends.len() >= Downstream::FLUSH_AT {
            self.flush_down(down);
        }
    }

    /// Sends what `down` holds, in as few system calls as the platform allows, and empties it.
    fn flush_down(&self, down: &mut Downstream) {
        // Each client's datagrams in a row (in order), so that they can leave as one.
        down.sends.sort_by_key(|(_, client)| *client);
        let sends: Vec<(&[u8], SocketAddrV6)> = down
            .sends
            .iter()
            .map(|(index, client)| (down.messages[*index].0.as_slice(), *client))
            .collect();
        let (mut datagrams, mut bytes) = (0, 0);
        self.tunnels_socket.send_each(&sends, &mut |sent| {
            datagrams += 1;
            bytes += down.messages[down.sends[sent].0].1 as u64;
        });
        add(&self.counters.datagrams_down, datagrams);
        add(&self.counters.bytes_down, bytes);
        down.messages.clear();
        down.sends.clear();
    }

    /// Multicasts `datagram` to `group` on every core interface.
    pub(super) fn multicast(&self, datagram: &[u8], group: Ipv6Addr) {
        let copy = vec![datagram.to_vec()];
        for interface in &self.interfaces {
            if let Err(err) = self.core.send_batch(&copy, group, interface) {
                warn!("multicasting to {group}: {err}");
            }
        }
    }

    /// Channel traffic heard on the core, passed down to the clients of its group; for a
    /// repeater also what its clients send to their repeated groups, passed up.
    pub(super) fn core_loop(&self) {
        // What one receive batch brings goes down the tunnels together, after the batch.
        let down = RefCell::new(Downstream::default());
        serve(
            &self.core,
            &self.waker,
            &self.closed,
            |source, group, datagram| {
                let (clients, repeats) = {
                    let state = self.state.lock();
                    let clients: Vec<SocketAddrV6> = state
                        .members
                        .get(&group)
                        .map(|members| members.iter().copied().collect())
                        .unwrap_or_default();
                    (clients, state.repeated.get(&group).copied())
                };
                match repeats {
                    Some(original) => self.repeat_up(source, group, original, datagram),
                    None => {
                        self.forward_down(group, datagram, &clients, &mut down.borrow_mut());
                    }
                }
            },
            || self.flush_down(&mut down.borrow_mut()),
        );
    }

    /// A datagram a repeater's client sent to `repeated`: multicast on the core to the group it
    /// repeats, and again from this host to `repeated` for the other clients (the sender drops
    /// its own).
    fn repeat_up(
        &self,
        source: SocketAddrV6,
        repeated: Ipv6Addr,
        original: Ipv6Addr,
        datagram: &[u8],
    ) {
        let from_client = self
            .state
            .lock()
            .members
            .get(&original)
            .is_some_and(|members| members.iter().any(|m| m.ip() == source.ip()));
        if !from_client {
            add(&self.counters.rejected, 1);
            return;
        }
        add(&self.counters.datagrams_up, 1);
        add(&self.counters.bytes_up, datagram.len() as u64);
        self.multicast(datagram, original);
        self.multicast(datagram, repeated);
    }

    /// Answers Stratum 0's solicitations with an offer sent straight to the node.
    pub(super) fn offer_loop(&self) {
        serve(
            &self.solicitations,
            &self.waker,
            &self.closed,
            |source, _, datagram| match control::decode(datagram) {
                Ok(Control::Solicit(control::Solicit { nonce, node })) => {
                    let max_tunnels = self.policy().limits.max_tunnels;
                    let clients = self.state.lock().clients.len();
                    let limit = clients >= max_tunnels;
                    let load = (clients * 1000 / max_tunnels.max(1)).min(1000) as u16;
                    let relay = SocketAddrV6::new(
                        *self.config.listen.ip(),
                        self.tunnels_socket.port(),
                        0,
                        0,
                    );
                    add(&self.counters.offers, 1);
                    self.send(
                        &Control::Offer(control::Offer {
                            nonce,
                            relay,
                            load,
                            limit,
                            repeater: self.config.ssm_repeater,
                        }),
                        node,
                    );
                }
                _ => {
                    add(&self.counters.rejected, 1);
                    debug!(%source, "unexpected datagram on the relay group");
                }
            },
            || {},
        );
    }

    pub(super) fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}
