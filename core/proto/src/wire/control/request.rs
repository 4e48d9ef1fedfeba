//! The relay request: a node asks Stratum 0 for relays, proves its address with a cookie, and
//! relays answer it with offers (`docs/reachability.md`, "Relay request").

use std::net::SocketAddrV6;

use super::{
    Body, ControlFields, FLAG_LIMIT, FLAG_REPEATER, MAC_LEN, Mac, Message, NONCE_LEN,
    SOCKET_ADDR_LEN, TYPE_COOKIE, TYPE_OFFER, TYPE_RELAY_REQUEST, TYPE_SOLICIT, UNVERIFIED_MIN_LEN,
    field::{put_socket_addr, put_u64, read_socket_addr},
};
use crate::wire::{DecodeError, Reader};

/// RELAY_REQUEST, node → Stratum 0 (padded): asks for relays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRequest {
    /// Chosen by the node.
    pub nonce: u64,
    /// All zero on the first try, then the COOKIE's.
    pub cookie: Mac,
}

/// COOKIE, Stratum 0 → node: `mac(secret, node address, nonce)`, to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// The RELAY_REQUEST's nonce.
    pub nonce: u64,
    /// The cookie.
    pub cookie: Mac,
}

/// Declares the codec of a message whose body is a nonce and a cookie.
macro_rules! nonce_and_cookie {
    ($($message:ty: $kind:expr, $name:literal, $padded:expr;)*) => {$(
        impl Message<'_> for $message {
            const TYPE: u8 = $kind;
            const NAME: &'static str = $name;
            const PADDED_LEN: usize = $padded;

            fn read(body: &mut Reader<'_>, _flags: u8) -> Result<Self, DecodeError> {
                Ok(Self {
                    nonce: body.u64()?,
                    cookie: body.array()?,
                })
            }
        }

        impl Body<'_> for $message {
            fn body_len(&self) -> usize {
                NONCE_LEN + MAC_LEN
            }
            fn write_body(&self, out: &mut Vec<u8>) {
                put_u64(out, self.nonce);
                out.extend_from_slice(&self.cookie);
            }
            fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
                fields.nonce = Some(self.nonce);
                fields.cookie = Some(&self.cookie);
            }
        }
    )*};
}

nonce_and_cookie! {
    RelayRequest: TYPE_RELAY_REQUEST, "relay_request", UNVERIFIED_MIN_LEN;
    Cookie: TYPE_COOKIE, "cookie", 0;
}

/// SOLICIT, Stratum 0 → relay group: a verified node wants relays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solicit {
    /// The RELAY_REQUEST's nonce.
    pub nonce: u64,
    /// Where the node sent the request from, and where relays send their offers.
    pub node: SocketAddrV6,
}

impl Message<'_> for Solicit {
    const TYPE: u8 = TYPE_SOLICIT;
    const NAME: &'static str = "solicit";

    fn read(body: &mut Reader<'_>, _flags: u8) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: body.u64()?,
            node: read_socket_addr(body)?,
        })
    }
}

impl Body<'_> for Solicit {
    fn body_len(&self) -> usize {
        NONCE_LEN + SOCKET_ADDR_LEN
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.nonce);
        put_socket_addr(out, self.node);
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.nonce = Some(self.nonce);
        fields.node = Some(self.node);
    }
}

/// OFFER, relay → node: an offer to relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The SOLICIT's nonce.
    pub nonce: u64,
    /// Where to open the tunnel.
    pub relay: SocketAddrV6,
    /// Per mille of the relay's capacity in use.
    pub load: u16,
    /// Flag [`FLAG_LIMIT`]: the relay takes no new clients.
    pub limit: bool,
    /// Flag [`FLAG_REPEATER`]: an SSM repeater rather than a relay.
    pub repeater: bool,
}

impl Message<'_> for Offer {
    const TYPE: u8 = TYPE_OFFER;
    const NAME: &'static str = "offer";

    fn read(body: &mut Reader<'_>, flags: u8) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: body.u64()?,
            relay: read_socket_addr(body)?,
            load: body.u16()?,
            limit: flags & FLAG_LIMIT != 0,
            repeater: flags & FLAG_REPEATER != 0,
        })
    }
}

impl Body<'_> for Offer {
    fn flags(&self) -> u8 {
        (u8::from(self.limit) * FLAG_LIMIT) | (u8::from(self.repeater) * FLAG_REPEATER)
    }
    fn body_len(&self) -> usize {
        NONCE_LEN + SOCKET_ADDR_LEN + 2
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.nonce);
        put_socket_addr(out, self.relay);
        out.extend_from_slice(&self.load.to_be_bytes());
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.nonce = Some(self.nonce);
        fields.relay = Some(self.relay);
        fields.load = Some(self.load);
        fields.limit = Some(self.limit);
        fields.repeater = Some(self.repeater);
    }
}
