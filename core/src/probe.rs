//! A node's probe of native reachability: whether the core's multicast reaches the node (Stratum
//! 0's ECHO arrives on the probe group) and whether the node's multicast reaches the core
//! (Stratum 0 heard its BEACON), see `docs/reachability.md`, section 2.
//!
//! The protocol is `sixcast_proto::probe::Prober`, without I/O: fed datagrams and the time, it
//! says what to send, when it next needs the clock, and the outcome; it is tested on a fake
//! clock. `probe` here drives it with the node's unicast socket and a listener on the probe
//! group, sleeping on both at once until a datagram or the prober's next deadline.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    time::{Duration, Instant},
};

pub use sixcast_proto::probe::ProbeReport;
use sixcast_proto::probe::{Prober, Transmit};

use crate::{
    addr::Scope,
    discovery::{CONTROL_PORT, multicast_control, nonce, probe_group, send_control},
    error::{Error, Result},
    socket::{self, Interface, McastSocket, RecvBatch, RecvMeta, SocketOptions, Wait, Waker},
};

/// How a node probes: where Stratum 0 is and how long to try.
#[derive(Debug, Clone)]
pub(crate) struct ProbeSettings {
    pub(crate) stratum0: SocketAddrV6,
    pub(crate) scope: Scope,
    pub(crate) hop_limit: u8,
    pub(crate) interfaces: Vec<Interface>,
    pub(crate) within: Duration,
}

/// Tests native reachability of the core in both directions, within `settings.within`.
/// Datagrams on the unicast socket that are not Stratum 0's answers go to `other` (a tunnel's
/// traffic, when probing while one is open). Fails with `Closed` once `waker` is woken.
pub(crate) fn probe(
    settings: &ProbeSettings,
    unicast: &McastSocket,
    waker: &Waker,
    other: &mut dyn FnMut(&RecvMeta, &[u8]),
) -> Result<ProbeReport> {
    // Loopback on, so that a Stratum 0 on this very host hears the beacon.
    let listener = McastSocket::bind(&SocketOptions {
        address: Ipv6Addr::UNSPECIFIED,
        port: CONTROL_PORT,
        hop_limit: settings.hop_limit,
        loopback: true,
        recv_buffer: 1 << 20,
    })?;
    let group = probe_group(settings.scope);
    for interface in &settings.interfaces {
        listener.join(group, interface)?;
    }
    let mut prober = Prober::new(settings.stratum0, settings.within, Instant::now());
    let mut batch = RecvBatch::new();
    loop {
        let now = Instant::now();
        while let Some(transmit) = prober.poll_transmit(now, &mut nonce)? {
            match transmit {
                Transmit::Multicast(message) => {
                    multicast_control(&listener, &settings.interfaces, &message, group)?;
                }
                Transmit::ToStratum0(message) => {
                    send_control(unicast, &message, settings.stratum0)?;
                }
            }
        }
        if let Some(outcome) = prober.outcome(now) {
            return outcome;
        }
        let timeout = prober.poll_timeout().saturating_duration_since(now);
        match socket::wait_any(&[unicast, &listener], waker, Some(timeout))? {
            Some(Wait::Woken) => return Err(Error::closed()),
            Some(_) => continue,
            None => {}
        }
        if let Wait::Received(_) = unicast.recv_batch(&mut batch, waker, Some(Duration::ZERO))? {
            let now = Instant::now();
            for (meta, datagram) in batch.iter() {
                if !prober.on_unicast(meta.source, datagram, now) {
                    other(meta, datagram);
                }
            }
        }
        if let Wait::Received(_) = listener.recv_batch(&mut batch, waker, Some(Duration::ZERO))? {
            for (_, datagram) in batch.iter() {
                prober.on_probe_group(datagram);
            }
        }
    }
}
