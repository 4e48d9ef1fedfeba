//! The Stratum 1 gateway announcement on a segment's link-scope gateway group
//! (`docs/reachability.md`, "Gateways").

use std::net::Ipv6Addr;

use super::{
    ADDR_LEN, Body, ControlFields, GATEWAY_FIXED_LEN, Message, TYPE_GATEWAY,
    field::{check_groups, put_groups, put_u64, read_groups},
};
use crate::wire::{DecodeError, NodeId, Reader};

/// GATEWAY, Stratum 1 gateway → link-scope gateway group: the sender serves these channels (1
/// to [`MAX_GROUPS_PER_MESSAGE`] channel groups) on its segment through its tunnel.
///
/// [`MAX_GROUPS_PER_MESSAGE`]: super::MAX_GROUPS_PER_MESSAGE
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The gateway's node id: the lowest id among a segment's gateways of a channel wins.
    pub gateway: NodeId,
    /// How long, in milliseconds, the announcement stays valid; 0 withdraws it at once.
    pub hold_ms: u16,
    /// The groups of the channels served.
    pub groups: Vec<Ipv6Addr>,
}

impl Message<'_> for Gateway {
    const TYPE: u8 = TYPE_GATEWAY;
    const NAME: &'static str = "gateway";

    fn read(body: &mut Reader<'_>, _flags: u8) -> Result<Self, DecodeError> {
        Ok(Self {
            gateway: NodeId(body.u64()?),
            hold_ms: body.u16()?,
            groups: read_groups(body, 1)?,
        })
    }
}

impl Body<'_> for Gateway {
    fn body_len(&self) -> usize {
        GATEWAY_FIXED_LEN + self.groups.len().saturating_mul(ADDR_LEN)
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.gateway.0);
        out.extend_from_slice(&self.hold_ms.to_be_bytes());
        put_groups(out, &self.groups);
    }
    fn fill<'s>(&'s self, fields: &mut ControlFields<'s>) {
        fields.gateway = Some(self.gateway);
        fields.hold_ms = Some(self.hold_ms);
        fields.groups = Some(&self.groups);
    }
    fn validate(&self) -> crate::Result<()> {
        check_groups("gateway", &self.groups, 1)
    }
}
