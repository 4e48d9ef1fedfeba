//! Stratum 0: the service on the multicast core that answers probes (and echoes each one on
//! the probe group, so that the node learns whether the core's multicast reaches it), notes the
//! beacons nodes multicast (so that the node learns whether its multicast reaches the core), and
//! passes verified relay requests to the relays on the relay group. It carries no channel
//! traffic (see `docs/reachability.md`, sections 2 and 3).
//!
//! The protocol is `sixcast_proto::stratum0::Responder`, without I/O, fed with datagrams and the
//! time and tested on a fake clock; [`Stratum0`] runs it on two threads, one per socket.

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Instant,
};

use parking_lot::Mutex;
use sixcast_proto::stratum0::{Answer, Heard, Responder};
use tracing::{debug, warn};

use crate::{
    addr::{self, Scope},
    discovery::{
        CONTROL_PORT, STRATUM0_PORT, ThreadBody, multicast_control, probe_group, send_control,
        serve, start_threads,
    },
    error::Result,
    socket::{self, Interface, McastSocket, SocketOptions, Waker},
};

/// Settings of a [`Stratum0`] service.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stratum0Config {
    /// Address and port to answer on.
    pub listen: SocketAddrV6,
    /// Core interfaces to multicast on; empty means every multicast interface.
    pub interfaces: Vec<String>,
    /// Scope of the probe and relay groups.
    pub scope: Scope,
    /// Hop limit of the echoes and solicitations it multicasts.
    pub hop_limit: u8,
}

impl Default for Stratum0Config {
    fn default() -> Self {
        Self {
            listen: SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, STRATUM0_PORT, 0, 0),
            interfaces: Vec::new(),
            scope: Scope::Global,
            hop_limit: addr::DEFAULT_HOP_LIMIT,
        }
    }
}

/// Counters of a [`Stratum0`] service.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stratum0Stats {
    /// Probes answered.
    pub probes: u64,
    /// Beacons heard on the probe group.
    pub beacons: u64,
    /// Cookies sent to unverified relay requests.
    pub cookies: u64,
    /// Verified relay requests passed to the relays.
    pub solicitations: u64,
    /// Datagrams that were not valid control messages, or not ones Stratum 0 takes.
    pub rejected: u64,
}

#[derive(Default)]
struct Stratum0Counters {
    probes: AtomicU64,
    beacons: AtomicU64,
    cookies: AtomicU64,
    solicitations: AtomicU64,
    rejected: AtomicU64,
}

/// The Stratum 0 service: answers probes and verified relay requests. Runs on background
/// threads until [`close`](Self::close) or drop.
pub struct Stratum0 {
    service: Arc<Stratum0Service>,
    threads: Vec<JoinHandle<()>>,
}

struct Stratum0Service {
    unicast: McastSocket,
    multicast: McastSocket,
    interfaces: Vec<Interface>,
    /// The protocol's state, shared by the answering and the beacon thread.
    responder: Mutex<Responder>,
    counters: Stratum0Counters,
    waker: Waker,
    closed: AtomicBool,
}

impl Stratum0 {
    /// Binds the service's sockets, joins the probe group and starts answering.
    pub fn spawn(config: Stratum0Config) -> Result<Self> {
        // First, so that a failing random number generator opens no socket.
        let responder = Responder::new(config.scope, Instant::now())?;
        let interfaces = socket::select_interfaces(&config.interfaces)?;
        let unicast = McastSocket::bind(&SocketOptions {
            address: *config.listen.ip(),
            port: config.listen.port(),
            hop_limit: config.hop_limit,
            loopback: false,
            recv_buffer: 1 << 20,
        })?;
        // Loopback on: a relay may run on the same host and must hear the solicitations.
        let multicast = McastSocket::bind(&SocketOptions {
            address: Ipv6Addr::UNSPECIFIED,
            port: CONTROL_PORT,
            hop_limit: config.hop_limit,
            loopback: true,
            recv_buffer: 1 << 20,
        })?;
        let probe_group = probe_group(config.scope);
        for interface in &interfaces {
            multicast.join(probe_group, interface)?;
        }
        let service = Arc::new(Stratum0Service {
            unicast,
            multicast,
            interfaces,
            responder: Mutex::new(responder),
            counters: Stratum0Counters::default(),
            waker: Waker::new()?,
            closed: AtomicBool::new(false),
        });
        let bodies: [ThreadBody<Stratum0Service>; 2] = [
            ("sixcast-s0", Stratum0Service::answer_loop),
            ("sixcast-s0-beacons", Stratum0Service::beacon_loop),
        ];
        let threads = start_threads(&service, &bodies, Stratum0Service::shutdown)?;
        debug!(listen = %config.listen, "stratum 0 started");
        Ok(Self { service, threads })
    }

    /// The port the service answers on.
    pub fn port(&self) -> u16 {
        self.service.unicast.port()
    }

    /// The service's counters.
    pub fn stats(&self) -> Stratum0Stats {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let counters = &self.service.counters;
        Stratum0Stats {
            probes: get(&counters.probes),
            beacons: get(&counters.beacons),
            cookies: get(&counters.cookies),
            solicitations: get(&counters.solicitations),
            rejected: get(&counters.rejected),
        }
    }

    /// Stops the service. Closing twice is harmless.
    pub fn close(&mut self) {
        self.service.shutdown();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Stratum0 {
    fn drop(&mut self) {
        self.close();
    }
}

impl Stratum0Service {
    fn answer_loop(&self) {
        let mut answers = Vec::new();
        serve(
            &self.unicast,
            &self.waker,
            &self.closed,
            |source, _, datagram| {
                let heard = self.responder.lock().on_unicast(
                    source,
                    datagram,
                    Instant::now(),
                    &mut answers,
                );
                self.count(heard);
                for answer in answers.drain(..) {
                    self.send(&answer, source);
                }
            },
            || {},
        );
    }

    fn send(&self, answer: &Answer, source: SocketAddrV6) {
        match answer {
            Answer::Reply(reply) => {
                if let Err(err) = send_control(&self.unicast, reply, source) {
                    debug!("answering {source}: {err}");
                }
            }
            Answer::Multicast(message, group) => {
                let sent = multicast_control(&self.multicast, &self.interfaces, message, *group);
                if let Err(err) = sent {
                    warn!("multicasting {}: {err}", message.name());
                }
            }
        }
    }

    fn count(&self, heard: Heard) {
        let counters = &self.counters;
        let counter = match heard {
            Heard::Probe => &counters.probes,
            Heard::Cookie => &counters.cookies,
            Heard::Solicitation => &counters.solicitations,
            Heard::Beacon => &counters.beacons,
            Heard::Rejected => &counters.rejected,
            Heard::OwnEcho => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn beacon_loop(&self) {
        serve(
            &self.multicast,
            &self.waker,
            &self.closed,
            |source, _, datagram| {
                let heard = self
                    .responder
                    .lock()
                    .on_probe_group(datagram, Instant::now());
                if heard == Heard::Rejected {
                    debug!(%source, "unexpected datagram on the probe group");
                }
                self.count(heard);
            },
            || self.responder.lock().forget_old_beacons(Instant::now()),
        );
    }

    fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}
