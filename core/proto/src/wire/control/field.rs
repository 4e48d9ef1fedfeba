//! The field codecs control messages share: integers, socket addresses and group lists, written
//! and read big-endian, and the checks of group lists.

use std::net::{Ipv6Addr, SocketAddrV6};

use super::{ADDR_LEN, MAX_GROUPS_PER_MESSAGE};
use crate::{
    error::{Error, ErrorKind},
    wire::{DecodeError, Reader},
};

pub(super) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

pub(super) fn put_socket_addr(out: &mut Vec<u8>, addr: SocketAddrV6) {
    out.extend_from_slice(&addr.ip().octets());
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// A group list: its count, then each address.
pub(super) fn put_groups(out: &mut Vec<u8>, groups: &[Ipv6Addr]) {
    // Saturating keeps an (invalid) over-long list invalid: 65535 > 64.
    let count = u16::try_from(groups.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for group in groups {
        out.extend_from_slice(&group.octets());
    }
}

pub(super) fn read_socket_addr(reader: &mut Reader<'_>) -> Result<SocketAddrV6, DecodeError> {
    let ip = Ipv6Addr::from(reader.array::<ADDR_LEN>()?);
    Ok(SocketAddrV6::new(ip, reader.u16()?, 0, 0))
}

pub(super) fn read_group(reader: &mut Reader<'_>) -> Result<Ipv6Addr, DecodeError> {
    let group = Ipv6Addr::from(reader.array::<ADDR_LEN>()?);
    if group.is_multicast() {
        Ok(group)
    } else {
        Err(DecodeError::NotMulticast)
    }
}

/// A group count of at least `least`, then that many groups.
pub(super) fn read_groups(
    reader: &mut Reader<'_>,
    least: usize,
) -> Result<Vec<Ipv6Addr>, DecodeError> {
    let count = usize::from(reader.u16()?);
    if count < least || count > MAX_GROUPS_PER_MESSAGE {
        return Err(DecodeError::BadCount);
    }
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        groups.push(read_group(reader)?);
    }
    Ok(groups)
}

/// What [`read_groups`] checks, for a list about to be encoded in a message named `name`.
pub(super) fn check_groups(name: &str, groups: &[Ipv6Addr], least: usize) -> crate::Result<()> {
    if groups.len() < least || groups.len() > MAX_GROUPS_PER_MESSAGE {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "a {name} names {least} to {MAX_GROUPS_PER_MESSAGE} groups, not {}; split longer \
                 lists over several messages",
                groups.len()
            ),
        ));
    }
    groups.iter().try_for_each(|group| check_multicast(*group))
}

pub(super) fn check_multicast(group: Ipv6Addr) -> crate::Result<()> {
    if group.is_multicast() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidAddress,
            format!("{group} is not a multicast group address"),
        ))
    }
}
