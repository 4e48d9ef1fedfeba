//! Channel names to group addresses: `group_address`, `relayed_address` and the addressing
//! constants.

use std::net::Ipv6Addr;

use pyo3::prelude::*;
use sixcast::{Error, ErrorKind, addr};

use crate::{
    bytes_or_text,
    error::{OrRaise, to_py_err},
};

/// The IPv6 multicast group of channel ``name`` (str, taken as UTF-8, or bytes) in ``profile``
/// and ``scope``; ``rp`` ("ADDR/LEN") is the embedded-rp profile's rendezvous point.
#[pyfunction]
#[pyo3(signature = (name, profile = "sixcast", scope = "global", rp = None))]
fn group_address(
    name: &Bound<'_, PyAny>,
    profile: &str,
    scope: &str,
    rp: Option<&str>,
) -> PyResult<String> {
    let name = bytes_or_text(name, "name")?;
    let profile = addr::parse_profile(profile, rp).or_raise()?;
    let scope = scope.parse().or_raise()?;
    let group = addr::group_addr(&name, &profile, scope).or_raise()?;
    Ok(group.to_string())
}

/// The relayed form of ``group`` (a group of ``profile``): where relays and gateways re-send
/// the channel's traffic. Raises UnsupportedError for the librecast profile, which has none.
#[pyfunction]
#[pyo3(signature = (group, profile = "sixcast", rp = None))]
fn relayed_address(group: &str, profile: &str, rp: Option<&str>) -> PyResult<String> {
    let profile = addr::parse_profile(profile, rp).or_raise()?;
    let group = parse_address(group, "group")?;
    let relayed = addr::relayed_addr(group, &profile).or_raise()?;
    Ok(relayed.to_string())
}

/// Parses an IPv6 address, raising InvalidAddressError that says what `what` should be.
pub(crate) fn parse_address(text: &str, what: &str) -> PyResult<Ipv6Addr> {
    text.parse().map_err(|_| {
        to_py_err(Error::new(
            ErrorKind::InvalidAddress,
            format!("{what} {text:?} is not an IPv6 address"),
        ))
    })
}

/// Adds the addressing functions and constants to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(group_address, module)?)?;
    module.add_function(wrap_pyfunction!(relayed_address, module)?)?;
    module.add("DEFAULT_PORT", addr::DEFAULT_PORT)?;
    module.add("LIBRECAST_PORT", addr::LIBRECAST_PORT)?;
    module.add("MAX_NAME_LEN", addr::MAX_NAME_LEN)?;
    module.add("FLAG_RELAYED", addr::FLAG_RELAYED)?;
    Ok(())
}
