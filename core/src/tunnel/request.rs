//! Asking Stratum 0 for relays (`docs/reachability.md`, section 3): `request_relays` drives
//! `sixcast_proto::relay_request::RelayRequest`, the protocol without I/O, on the node's
//! unicast socket.

use std::{net::SocketAddrV6, time::Instant};

use sixcast_proto::relay_request::{RelayOffer, RelayRequest};

use crate::{
    discovery::{self, send_control},
    error::{Error, Result},
    socket::{McastSocket, RecvBatch, Wait, Waker},
};

/// Asks Stratum 0 for relays (answering its cookie first) and collects the offers, best first.
pub(crate) fn request_relays(
    socket: &McastSocket,
    waker: &Waker,
    stratum0: SocketAddrV6,
) -> Result<Vec<RelayOffer>> {
    let mut request = RelayRequest::new(stratum0, discovery::nonce()?, Instant::now());
    let mut batch = RecvBatch::new();
    loop {
        while let Some(message) = request.poll_transmit() {
            send_control(socket, &message, stratum0)?;
        }
        let now = Instant::now();
        if let Some(outcome) = request.outcome(now) {
            return outcome;
        }
        let left = request.poll_timeout().saturating_duration_since(now);
        match socket.recv_batch(&mut batch, waker, Some(left))? {
            Wait::Woken => return Err(Error::closed()),
            Wait::TimedOut => {}
            Wait::Received(_) => {
                let now = Instant::now();
                for (meta, datagram) in batch.iter() {
                    request.on_datagram(meta.source, datagram, now);
                }
            }
        }
    }
}
