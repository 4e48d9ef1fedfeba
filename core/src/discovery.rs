//! What Stratum 0 (`stratum0`), the probe (`probe`) and the relays share: the well-known
//! groups and ports, nonces and the rotating cookie secrets (from `sixcast_proto::discovery`),
//! and helpers to send control messages and run a service's threads (see
//! `docs/reachability.md`).

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use tracing::warn;

use crate::{
    error::{Error, Result},
    socket::{Interface, McastSocket, RecvBatch, Wait, Waker},
    wire::control::Control,
};

pub use sixcast_proto::discovery::{
    CONTROL_PORT, RELAY_PORT, STRATUM0_PORT, probe_group, relay_group, repeater_group,
};
pub(crate) use sixcast_proto::discovery::{Secrets, nonce};

/// A background thread's name and body.
pub(crate) type ThreadBody<S> = (&'static str, fn(&S));

/// Starts one named thread per body on a shared service. If one cannot start, shuts the
/// service down (`shutdown`), joins the threads already started and returns the error.
pub(crate) fn start_threads<S: Send + Sync + 'static>(
    service: &Arc<S>,
    bodies: &[ThreadBody<S>],
    shutdown: fn(&S),
) -> Result<Vec<JoinHandle<()>>> {
    let mut threads = Vec::new();
    for &(name, body) in bodies {
        let shared = Arc::clone(service);
        let started = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&shared));
        match started {
            Ok(thread) => threads.push(thread),
            Err(err) => {
                shutdown(service);
                for thread in threads {
                    let _ = thread.join();
                }
                return Err(Error::io("starting a sixcast thread", err));
            }
        }
    }
    Ok(threads)
}

/// Encodes `message` and sends it to a unicast peer.
pub(crate) fn send_control(
    socket: &McastSocket,
    message: &Control<'_>,
    to: SocketAddrV6,
) -> Result<()> {
    socket.send_to(&message.to_vec()?, to)
}

/// Encodes `message` and multicasts it to `group` on every interface.
pub(crate) fn multicast_control(
    socket: &McastSocket,
    interfaces: &[Interface],
    message: &Control<'_>,
    group: Ipv6Addr,
) -> Result<()> {
    let datagram = vec![message.to_vec()?];
    interfaces
        .iter()
        .try_for_each(|interface| socket.send_batch(&datagram, group, interface))
}

/// Receives on `socket` until `closed` is set, handing each datagram with its source to
/// `handle`; `tick` runs at least once a second for housekeeping.
pub(crate) fn serve(
    socket: &McastSocket,
    waker: &Waker,
    closed: &AtomicBool,
    mut handle: impl FnMut(SocketAddrV6, Ipv6Addr, &[u8]),
    mut tick: impl FnMut(),
) {
    let mut batch = RecvBatch::new();
    while !closed.load(Ordering::Acquire) {
        match socket.recv_batch(&mut batch, waker, Some(Duration::from_secs(1))) {
            Ok(Wait::Woken) => return,
            Ok(Wait::Received(_)) => {
                for (meta, datagram) in batch.iter() {
                    handle(meta.source, meta.destination, datagram);
                }
            }
            Ok(Wait::TimedOut) => {}
            Err(err) => {
                warn!("{err}");
                // A persistent error must not become a hot loop.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        tick();
    }
}

#[cfg(test)]
mod tests {
    use sixcast_proto::crypto::random::failure;

    use crate::ErrorKind;

    /// Every service that needs a secret or an id refuses to start without randomness, and
    /// says why, before it opens a socket.
    #[test]
    fn nothing_opens_without_randomness() {
        let refusals = failure::while_failing(|| {
            [
                crate::Context::new(crate::Config::default()).err(),
                crate::relay::Relay::spawn(crate::relay::RelayConfig::default()).err(),
                crate::stratum0::Stratum0::spawn(crate::stratum0::Stratum0Config::default()).err(),
                crate::crypto::ChannelKey::generate().err(),
                crate::crypto::SigningKey::generate().err(),
            ]
        });
        for refusal in refusals {
            let err = refusal.expect("opened without randomness");
            assert_eq!(err.kind(), ErrorKind::Io, "{err}");
            assert!(err.to_string().contains("injected by a test"), "{err}");
        }
    }
}
