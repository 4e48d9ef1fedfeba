//! Channel names to IPv6 multicast groups, with profiles and scopes written as text.

use std::{ffi::c_char, net::Ipv6Addr};

use sixcast::Profile;

use crate::{
    error::{Result, SixcastError, SixcastStatus, guard},
    text,
};

/// Parses an IPv6 address given as text; anything else is an `InvalidAddress` error.
pub(crate) fn parse_address(text: &str) -> Result<Ipv6Addr> {
    Ok(sixcast::addr::parse_address(text)?)
}

/// The profile named `profile` (NULL: `sixcast`) with `rp` for `embedded-rp`.
///
/// # Safety
/// `profile` and `rp` are NULL or NUL-terminated strings.
unsafe fn profile_arg(profile: *const c_char, rp: *const c_char) -> Result<Profile> {
    // SAFETY: per the contract above.
    let (name, rp) = unsafe {
        (
            text::optional_arg(profile, "profile")?.unwrap_or("sixcast"),
            text::optional_arg(rp, "rp")?,
        )
    };
    Ok(sixcast::addr::parse_profile(name, rp)?)
}

/// The group of the channel called `name`: the address every member joins, as RFC 5952 text in
/// `*address_out` (free it with `sixcast_string_free`).
///
/// `profile` is `sixcast` (NULL), `ssm`, `embedded-rp` (which needs `rp`, such as
/// `2001:db8:5c::5/64`) or `librecast`; `scope` is `link`, `site`, `org` or `global` (NULL).
/// Fails with `SIXCAST_STATUS_INVALID_NAME` for a name over 4096 bytes, `INVALID_CONFIG` for an
/// unknown profile or scope, and `INVALID_CONFIG` or `INVALID_ADDRESS` for a bad RP.
///
/// # Safety
/// `name` points to `name_len` readable bytes; `profile`, `rp` and `scope` are NULL or
/// NUL-terminated strings; `address_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_group_address(
    name: *const u8,
    name_len: usize,
    profile: *const c_char,
    rp: *const c_char,
    scope: *const c_char,
    address_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let (name, profile, scope) = unsafe {
            (
                text::bytes(name, name_len, "name")?,
                profile_arg(profile, rp)?,
                text::optional_arg(scope, "scope")?.unwrap_or("global"),
            )
        };
        let group = sixcast::addr::group_addr(name, &profile, scope.parse()?)?;
        // SAFETY: per the contract above.
        unsafe { text::store_text(address_out, group.to_string(), "address_out") }
    })
}

/// The relayed form of `group`, the group relays re-send the channel's traffic to: the same
/// address with the profile's RELAYED bit set, in `*address_out`. Fails with
/// `SIXCAST_STATUS_UNSUPPORTED` for `librecast`, which has no relayed form, and
/// `INVALID_ADDRESS` when `group` is not a group of the profile.
///
/// # Safety
/// `group` is a NUL-terminated string; `profile` and `rp` are NULL or NUL-terminated strings;
/// `address_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_relayed_address(
    group: *const c_char,
    profile: *const c_char,
    rp: *const c_char,
    address_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let (group, profile) = unsafe { (text::arg(group, "group")?, profile_arg(profile, rp)?) };
        let relayed = sixcast::addr::relayed_addr(parse_address(group)?, &profile)?;
        // SAFETY: per the contract above.
        unsafe { text::store_text(address_out, relayed.to_string(), "address_out") }
    })
}

/// The UDP port of `profile` (6446, or 4242 for `librecast`) in `*port_out`.
///
/// # Safety
/// `profile` and `rp` are NULL or NUL-terminated strings; `port_out` is writable; `error_out`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_default_port(
    profile: *const c_char,
    rp: *const c_char,
    port_out: *mut u16,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let port = unsafe { profile_arg(profile, rp) }?.default_port();
        // SAFETY: per the contract above.
        unsafe { text::store(port_out, port, "port_out") }
    })
}
