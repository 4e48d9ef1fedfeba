//! A node's probe of native reachability: whether the core's multicast reaches the node (Stratum
//! 0's ECHO arrives on the probe group) and whether the node's multicast reaches the core
//! (Stratum 0 heard its BEACON), see `docs/reachability.md`, section 2.
//!
//! The protocol is `sixcast_proto::probe::Prober`, without I/O: fed datagrams and the time, it
//! says what to send, when it next needs the clock, and the outcome; it is tested on a fake
//! clock. `ProbeRun` here gives it the node's unicast socket and a listener on the probe
//! group, for the reach thread, which sleeps on both (and on its tunnel) at once.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    time::{Duration, Instant},
};

pub use sixcast_proto::probe::ProbeReport;
use sixcast_proto::probe::{Prober, Transmit};

use crate::{
    addr::Scope,
    discovery::{CONTROL_PORT, multicast_control, nonce, probe_group, send_control},
    error::Result,
    socket::{Interface, McastSocket, RecvBatch, SocketOptions, Wait, Waker},
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

/// A probe under way, for a driver that does other work meanwhile: the protocol, and a listener
/// on the probe group, where the core's ECHO arrives when multicast reaches this node.
pub(crate) struct ProbeRun {
    prober: Prober,
    listener: McastSocket,
    settings: ProbeSettings,
}

impl ProbeRun {
    /// Starts a probe at `now`: binds the listener and joins the probe group on every interface.
    pub(crate) fn start(settings: ProbeSettings, now: Instant) -> Result<Self> {
        // Loopback on, so that a Stratum 0 on this very host hears the beacon.
        let listener = McastSocket::bind(&SocketOptions {
            address: Ipv6Addr::UNSPECIFIED,
            port: CONTROL_PORT,
            hop_limit: settings.hop_limit,
            loopback: true,
            recv_buffer: 1 << 20,
        })?;
        for interface in &settings.interfaces {
            listener.join(probe_group(settings.scope), interface)?;
        }
        Ok(Self {
            prober: Prober::new(settings.stratum0, settings.within, now),
            listener,
            settings,
        })
    }

    /// The socket to wait on, beside the node's unicast socket.
    pub(crate) fn listener(&self) -> &McastSocket {
        &self.listener
    }

    /// Sends what the probe has due at `now`: BEACONs on the probe group, and the requests to
    /// Stratum 0 from `unicast`.
    pub(crate) fn transmit(&mut self, unicast: &McastSocket, now: Instant) -> Result<()> {
        while let Some(transmit) = self.prober.poll_transmit(now, &mut nonce)? {
            match transmit {
                Transmit::Multicast(message) => {
                    let group = probe_group(self.settings.scope);
                    multicast_control(&self.listener, &self.settings.interfaces, &message, group)?;
                }
                Transmit::ToStratum0(message) => {
                    send_control(unicast, &message, self.settings.stratum0)?;
                }
            }
        }
        Ok(())
    }

    /// Once the probe has ended at `now`: what it found, or why it could not tell.
    pub(crate) fn outcome(&self, now: Instant) -> Option<Result<ProbeReport>> {
        self.prober.outcome(now)
    }

    /// When the probe next has something to send, or ends.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.prober.poll_timeout()
    }

    /// Takes a datagram that came to the unicast socket; false when it is not Stratum 0's
    /// answer to this probe (a tunnel's traffic, say).
    pub(crate) fn on_unicast(
        &mut self,
        source: SocketAddrV6,
        datagram: &[u8],
        now: Instant,
    ) -> bool {
        self.prober.on_unicast(source, datagram, now)
    }

    /// Reads what arrived on the probe group, without waiting.
    pub(crate) fn read_probe_group(&mut self, batch: &mut RecvBatch, waker: &Waker) -> Result<()> {
        if let Wait::Received(_) = self
            .listener
            .recv_batch(batch, waker, Some(Duration::ZERO))?
        {
            for (_, datagram) in batch.iter() {
                self.prober.on_probe_group(datagram);
            }
        }
        Ok(())
    }
}
