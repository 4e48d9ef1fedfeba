//! What Stratum 0, the probe and the relays share, without I/O: the well-known groups and
//! ports, nonces and the rotating cookie secrets (see `docs/reachability.md`).

use std::{
    net::{Ipv6Addr, SocketAddrV6},
    time::{Duration, Instant},
};

use crate::{
    addr::{self, Profile, Scope},
    crypto::random,
    error::Result,
    wire::control,
};

/// The UDP port Stratum 0 answers on unless configured otherwise.
pub const STRATUM0_PORT: u16 = 6447;
/// The UDP port relays accept tunnels on unless configured otherwise.
pub const RELAY_PORT: u16 = 6448;
/// The UDP port of the probe and relay groups.
pub const CONTROL_PORT: u16 = 6449;

/// How often the cookie secret changes (the previous one stays valid for one more period).
pub const SECRET_ROTATION: Duration = Duration::from_secs(60);

/// The group on which Stratum 0 echoes probes and nodes multicast beacons.
pub fn probe_group(scope: Scope) -> Ipv6Addr {
    well_known_group(b"sixcast/probe", scope)
}

/// The group on which Stratum 0 passes relay requests to the relays.
pub fn relay_group(scope: Scope) -> Ipv6Addr {
    well_known_group(b"sixcast/relays", scope)
}

/// The SSM group on which an SSM repeater answers its clients' keepalives (at each client's
/// port), so that a client learns whether SSM from the repeater reaches it.
pub fn repeater_group(scope: Scope) -> Ipv6Addr {
    match addr::group_addr(b"sixcast/repeater", &Profile::Ssm, scope) {
        Ok(group) => group,
        // A short constant name always maps; keep a valid SSM group even if that ever changed.
        Err(_) => Ipv6Addr::new(0xff3e, 0, 0, 0, 0, 0, 0x8000, 0x5c),
    }
}

fn well_known_group(name: &[u8], scope: Scope) -> Ipv6Addr {
    match addr::group_addr(name, &Profile::Sixcast, scope) {
        Ok(group) => group,
        // A short constant name always maps; keep a valid group even if that ever changed.
        Err(_) => Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x5c),
    }
}

/// A random 64-bit nonce.
pub fn nonce() -> Result<u64> {
    random::u64()
}

/// A fresh cookie secret.
fn secret() -> Result<[u8; 32]> {
    let mut bytes = [0; 32];
    random::fill(&mut bytes)?;
    Ok(bytes)
}

/// The current and previous cookie secrets, rotated every [`SECRET_ROTATION`] (the time is an
/// argument, so that rotation is tested on a fake clock).
pub struct Secrets {
    current: [u8; 32],
    previous: [u8; 32],
    rotated_at: Instant,
}

impl Secrets {
    /// Fresh secrets, whose rotation starts at `now`; fails without randomness.
    pub fn new(now: Instant) -> Result<Self> {
        let current = secret()?;
        Ok(Self {
            current,
            previous: current,
            rotated_at: now,
        })
    }

    /// The MAC a verified peer must echo.
    pub fn mac(&mut self, peer: SocketAddrV6, nonce: u64, now: Instant) -> control::Mac {
        self.rotate(now);
        control::mac(&self.current, peer, nonce)
    }

    /// Whether `mac` proves that `peer` received our answer to `nonce`.
    pub fn verify(
        &mut self,
        peer: SocketAddrV6,
        nonce: u64,
        mac: &control::Mac,
        now: Instant,
    ) -> bool {
        self.rotate(now);
        control::mac_matches(&control::mac(&self.current, peer, nonce), mac)
            || control::mac_matches(&control::mac(&self.previous, peer, nonce), mac)
    }

    fn rotate(&mut self, now: Instant) {
        if now.saturating_duration_since(self.rotated_at) < SECRET_ROTATION {
            return;
        }
        match secret() {
            Ok(next) => {
                self.previous = self.current;
                self.current = next;
                self.rotated_at = now;
            }
            // The current secret is still a random one; rotation is tried again next time.
            Err(err) => tracing::error!("cannot rotate the cookie secret: {err}"),
        }
    }
}
