//! The probe: does multicast reach the node, and does the node's reach the core?
//! (`docs/reachability.md`, "Probe").

use std::net::SocketAddrV6;

use super::{
    Body, ControlFields, Message, NONCE_LEN, SOCKET_ADDR_LEN, TYPE_BEACON, TYPE_ECHO, TYPE_PROBE,
    TYPE_PROBE_REPLY, UNVERIFIED_MIN_LEN,
    field::{put_socket_addr, put_u64, read_socket_addr},
};
use crate::wire::{DecodeError, Reader};

/// PROBE, node → Stratum 0 (padded): asks for an ECHO on the probe group, and whether Stratum
/// 0 heard the BEACON with `beacon_nonce` (0 = no beacon to ask about).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Chosen by the node; echoed in ECHO and PROBE_REPLY.
    pub nonce: u64,
    /// The nonce of a BEACON the node sent, or 0.
    pub beacon_nonce: u64,
}

impl Message<'_> for Probe {
    const TYPE: u8 = TYPE_PROBE;
    const NAME: &'static str = "probe";
    const PADDED_LEN: usize = UNVERIFIED_MIN_LEN;

    fn read(body: &mut Reader<'_>, _flags: u8) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: body.u64()?,
            beacon_nonce: body.u64()?,
        })
    }
}

impl Body<'_> for Probe {
    fn body_len(&self) -> usize {
        2 * NONCE_LEN
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.nonce);
        put_u64(out, self.beacon_nonce);
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.nonce = Some(self.nonce);
        fields.beacon_nonce = Some(self.beacon_nonce);
    }
}

/// ECHO, Stratum 0 → probe group: proves that multicast reaches the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Echo {
    /// The PROBE's nonce.
    pub nonce: u64,
}

/// BEACON, node → probe group: proves that the node's multicast reaches the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beacon {
    /// Chosen by the node; asked about in a later PROBE.
    pub nonce: u64,
}

/// Declares the codec of a message whose body is its nonce alone.
macro_rules! nonce_only {
    ($($message:ty: $kind:expr, $name:literal, $padded:expr;)*) => {$(
        impl Message<'_> for $message {
            const TYPE: u8 = $kind;
            const NAME: &'static str = $name;
            const PADDED_LEN: usize = $padded;

            fn read(body: &mut Reader<'_>, _flags: u8) -> Result<Self, DecodeError> {
                Ok(Self { nonce: body.u64()? })
            }
        }

        impl Body<'_> for $message {
            fn body_len(&self) -> usize {
                NONCE_LEN
            }
            fn write_body(&self, out: &mut Vec<u8>) {
                put_u64(out, self.nonce);
            }
            fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
                fields.nonce = Some(self.nonce);
            }
        }
    )*};
}
pub(super) use nonce_only;

nonce_only! {
    Echo: TYPE_ECHO, "echo", 0;
    Beacon: TYPE_BEACON, "beacon", 0;
}

/// PROBE_REPLY, Stratum 0 → node: the answer to a PROBE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReply {
    /// The PROBE's nonce.
    pub nonce: u64,
    /// Whether Stratum 0 heard the BEACON the PROBE asked about.
    pub heard_beacon: bool,
    /// The source address and port Stratum 0 saw, for NAT detection.
    pub observed: SocketAddrV6,
}

impl Message<'_> for ProbeReply {
    const TYPE: u8 = TYPE_PROBE_REPLY;
    const NAME: &'static str = "probe_reply";

    fn read(body: &mut Reader<'_>, _flags: u8) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: body.u64()?,
            heard_beacon: match body.u8()? {
                0 => false,
                1 => true,
                _ => return Err(DecodeError::BadField),
            },
            observed: read_socket_addr(body)?,
        })
    }
}

impl Body<'_> for ProbeReply {
    fn body_len(&self) -> usize {
        NONCE_LEN + 1 + SOCKET_ADDR_LEN
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.nonce);
        out.push(u8::from(self.heard_beacon));
        put_socket_addr(out, self.observed);
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.nonce = Some(self.nonce);
        fields.heard_beacon = Some(self.heard_beacon);
        fields.observed = Some(self.observed);
    }
}
