//! The relay tunnel: opening it (HELLO, CHALLENGE), memberships (JOIN, LEAVE), the traffic it
//! carries (DATA), keeping it alive, moving it after a NAT rebinding (REBIND) and closing it
//! (TEARDOWN) (`docs/reachability.md`, "Tunnel").

use std::net::{Ipv6Addr, SocketAddrV6};

use super::{
    ADDR_LEN, Body, ControlFields, FLAG_LIMIT, GROUP_LIST_FIXED_LEN, MAC_LEN, MAX_DATA_DATAGRAM,
    Mac, Message, NONCE_LEN, SOCKET_ADDR_LEN, TYPE_CHALLENGE, TYPE_DATA, TYPE_HELLO, TYPE_JOIN,
    TYPE_KEEPALIVE, TYPE_LEAVE, TYPE_REBIND, TYPE_TEARDOWN, UNVERIFIED_MIN_LEN,
    field::{
        check_groups, check_multicast, put_groups, put_socket_addr, put_u64, read_group,
        read_groups, read_socket_addr,
    },
    probe::nonce_only,
};
use crate::{
    error::{Error, ErrorKind},
    wire::{DecodeError, Reader},
};

/// HELLO, node → relay (padded): opens a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Chosen by the node.
    pub nonce: u64,
}

/// KEEPALIVE, both ways: keeps the tunnel (and any NAT binding) alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keepalive {
    /// Chosen by the sender.
    pub nonce: u64,
}

nonce_only! {
    Hello: TYPE_HELLO, "hello", UNVERIFIED_MIN_LEN;
    Keepalive: TYPE_KEEPALIVE, "keepalive", 0;
}

/// CHALLENGE, relay → node: `mac(relay secret, node address, nonce)`, to send back in JOIN,
/// LEAVE and TEARDOWN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The HELLO's nonce.
    pub nonce: u64,
    /// The MAC.
    pub mac: Mac,
    /// How often the node must refresh its membership, in seconds.
    pub refresh_secs: u16,
    /// Flag [`FLAG_LIMIT`]: the relay takes no new clients.
    pub limit: bool,
}

impl Message<'_> for Challenge {
    const TYPE: u8 = TYPE_CHALLENGE;
    const NAME: &'static str = "challenge";

    fn read(body: &mut Reader<'_>, flags: u8) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: body.u64()?,
            mac: body.array()?,
            refresh_secs: body.u16()?,
            limit: flags & FLAG_LIMIT != 0,
        })
    }
}

impl Body<'_> for Challenge {
    fn flags(&self) -> u8 {
        u8::from(self.limit) * FLAG_LIMIT
    }
    fn body_len(&self) -> usize {
        NONCE_LEN + MAC_LEN + 2
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.nonce);
        out.extend_from_slice(&self.mac);
        out.extend_from_slice(&self.refresh_secs.to_be_bytes());
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.nonce = Some(self.nonce);
        fields.mac = Some(&self.mac);
        fields.refresh_secs = Some(self.refresh_secs);
        fields.limit = Some(self.limit);
    }
}

/// JOIN, node → relay: groups to receive (0 to [`MAX_GROUPS_PER_MESSAGE`] multicast
/// addresses; a JOIN of no group makes a client that only sends).
///
/// [`MAX_GROUPS_PER_MESSAGE`]: super::MAX_GROUPS_PER_MESSAGE
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Join {
    /// The HELLO's nonce.
    pub nonce: u64,
    /// The CHALLENGE's MAC.
    pub mac: Mac,
    /// The groups.
    pub groups: Vec<Ipv6Addr>,
}

/// LEAVE, node → relay: groups to stop receiving (1 to [`MAX_GROUPS_PER_MESSAGE`] multicast
/// addresses).
///
/// [`MAX_GROUPS_PER_MESSAGE`]: super::MAX_GROUPS_PER_MESSAGE
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leave {
    /// The HELLO's nonce.
    pub nonce: u64,
    /// The CHALLENGE's MAC.
    pub mac: Mac,
    /// The groups.
    pub groups: Vec<Ipv6Addr>,
}

/// Declares the codec of a membership message: nonce, MAC and at least `least` groups.
macro_rules! membership {
    ($($message:ty: $kind:expr, $name:literal, $least:expr;)*) => {$(
        impl Message<'_> for $message {
            const TYPE: u8 = $kind;
            const NAME: &'static str = $name;

            fn read(body: &mut Reader<'_>, _flags: u8) -> Result<Self, DecodeError> {
                Ok(Self {
                    nonce: body.u64()?,
                    mac: body.array()?,
                    groups: read_groups(body, $least)?,
                })
            }
        }

        impl Body<'_> for $message {
            fn body_len(&self) -> usize {
                GROUP_LIST_FIXED_LEN + self.groups.len().saturating_mul(ADDR_LEN)
            }
            fn write_body(&self, out: &mut Vec<u8>) {
                put_u64(out, self.nonce);
                out.extend_from_slice(&self.mac);
                put_groups(out, &self.groups);
            }
            fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
                fields.nonce = Some(self.nonce);
                fields.mac = Some(&self.mac);
                fields.groups = Some(&self.groups);
            }
            fn validate(&self) -> crate::Result<()> {
                check_groups($name, &self.groups, $least)
            }
        }
    )*};
}

membership! {
    Join: TYPE_JOIN, "join", 0;
    Leave: TYPE_LEAVE, "leave", 1;
}

/// DATA, both ways: one sixcast datagram of a multicast group, borrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data<'a> {
    /// The group the datagram was or is to be sent to.
    pub group: Ipv6Addr,
    /// The sixcast datagram: 1 to [`MAX_DATA_DATAGRAM`] bytes.
    pub datagram: &'a [u8],
}

impl<'a> Message<'a> for Data<'a> {
    const TYPE: u8 = TYPE_DATA;
    const NAME: &'static str = "data";

    fn read(body: &mut Reader<'a>, _flags: u8) -> Result<Self, DecodeError> {
        let group = read_group(body)?;
        if body.rest.is_empty() {
            return Err(DecodeError::Truncated);
        }
        let datagram = std::mem::take(&mut body.rest);
        Ok(Self { group, datagram })
    }
}

impl<'a> Body<'a> for Data<'a> {
    fn body_len(&self) -> usize {
        ADDR_LEN + self.datagram.len()
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.group.octets());
        out.extend_from_slice(self.datagram);
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.group = Some(self.group);
        fields.datagram = Some(self.datagram);
    }
    fn validate(&self) -> crate::Result<()> {
        check_multicast(self.group)?;
        if self.datagram.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "a data message carries a datagram of at least 1 byte",
            ));
        }
        if self.datagram.len() > MAX_DATA_DATAGRAM {
            return Err(Error::new(
                ErrorKind::MessageTooLarge,
                format!(
                    "a data message carries at most {MAX_DATA_DATAGRAM} bytes, not {}",
                    self.datagram.len()
                ),
            ));
        }
        Ok(())
    }
}

/// TEARDOWN, closes a tunnel. Node → relay, from the node's new address: closes the tunnel of
/// its old address (NAT rebinding, AMT §5.1.7), or the node's own tunnel when it goes back to
/// native. Relay → node: the relay is stopping and closes the node's tunnel, so that the node
/// fails over at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Teardown {
    /// The nonce of the tunnel's HELLO.
    pub nonce: u64,
    /// The MAC the relay issued for the tunnel's address.
    pub mac: Mac,
    /// The tunnel's (node's) address and port, as the relay sees it.
    pub old: SocketAddrV6,
}

impl Message<'_> for Teardown {
    const TYPE: u8 = TYPE_TEARDOWN;
    const NAME: &'static str = "teardown";

    fn read(body: &mut Reader<'_>, _flags: u8) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: body.u64()?,
            mac: body.array()?,
            old: read_socket_addr(body)?,
        })
    }
}

impl Body<'_> for Teardown {
    fn body_len(&self) -> usize {
        NONCE_LEN + MAC_LEN + SOCKET_ADDR_LEN
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.nonce);
        out.extend_from_slice(&self.mac);
        put_socket_addr(out, self.old);
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.nonce = Some(self.nonce);
        fields.mac = Some(&self.mac);
        fields.old = Some(self.old);
    }
}

/// REBIND, node → relay, from the node's new address after a NAT rebinding: moves the tunnel,
/// with its joins, to the new address. Proves both that the node receives at the new address
/// (a fresh HELLO's nonce and the CHALLENGE's MAC for the new address) and that it owns the
/// tunnel (the tunnel's nonce and the MAC issued for the old address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebind {
    /// The nonce of the HELLO just sent from the new address.
    pub nonce: u64,
    /// The CHALLENGE's MAC for the new address.
    pub mac: Mac,
    /// The tunnel's nonce (of the HELLO that opened it, or of the last rebinding).
    pub old_nonce: u64,
    /// The MAC the relay issued for the old address.
    pub old_mac: Mac,
}

impl Message<'_> for Rebind {
    const TYPE: u8 = TYPE_REBIND;
    const NAME: &'static str = "rebind";

    fn read(body: &mut Reader<'_>, _flags: u8) -> Result<Self, DecodeError> {
        Ok(Self {
            nonce: body.u64()?,
            mac: body.array()?,
            old_nonce: body.u64()?,
            old_mac: body.array()?,
        })
    }
}

impl Body<'_> for Rebind {
    fn body_len(&self) -> usize {
        2 * (NONCE_LEN + MAC_LEN)
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.nonce);
        out.extend_from_slice(&self.mac);
        put_u64(out, self.old_nonce);
        out.extend_from_slice(&self.old_mac);
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.nonce = Some(self.nonce);
        fields.mac = Some(&self.mac);
        fields.old_nonce = Some(self.old_nonce);
        fields.old_mac = Some(&self.old_mac);
    }
}
