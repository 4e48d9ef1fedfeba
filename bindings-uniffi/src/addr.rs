//! Channel names to IPv6 multicast groups: the core's `addr` module with profiles and scopes
//! written as text.

use std::net::Ipv6Addr;

use sixcast::{Profile, Scope};

use crate::error::Result;

/// The group of channel `name`: the address every member of the channel joins, as RFC 5952 text.
///
/// `profile` is `sixcast`, `ssm`, `embedded-rp` (which needs `rp`, such as
/// `2001:db8:5c::5/64`) or `librecast`; `scope` is `link`, `site`, `org` or `global`. Fails with
/// `InvalidName` for a name over 4096 bytes, `InvalidConfig` for an unknown profile or scope,
/// and `InvalidConfig` or `InvalidAddress` for a bad RP.
#[uniffi::export(default(profile = "sixcast", scope = "global", rp = None))]
pub fn group_address(
    name: String,
    profile: String,
    scope: String,
    rp: Option<String>,
) -> Result<String> {
    group_address_bytes(name.into_bytes(), profile, scope, rp)
}

/// `group_address` for a name given as bytes: channel names are bytes and need not be text.
#[uniffi::export(default(profile = "sixcast", scope = "global", rp = None))]
pub fn group_address_bytes(
    name: Vec<u8>,
    profile: String,
    scope: String,
    rp: Option<String>,
) -> Result<String> {
    let profile = parse_profile(&profile, rp.as_deref())?;
    let group = sixcast::addr::group_addr(&name, &profile, parse_scope(&scope)?)?;
    Ok(group.to_string())
}

/// The relayed form of `group` (the group relays re-send the channel's traffic to): the same
/// address with the profile's RELAYED bit set.
///
/// Fails with `Unsupported` for `librecast`, which has no relayed form, and with
/// `InvalidAddress` when `group` is not a group of the profile.
#[uniffi::export(default(profile = "sixcast", rp = None))]
pub fn relayed_address(group: String, profile: String, rp: Option<String>) -> Result<String> {
    let profile = parse_profile(&profile, rp.as_deref())?;
    let relayed = sixcast::addr::relayed_addr(parse_address(&group)?, &profile)?;
    Ok(relayed.to_string())
}

pub(crate) fn parse_profile(name: &str, rp: Option<&str>) -> Result<Profile> {
    Ok(sixcast::addr::parse_profile(name, rp)?)
}

pub(crate) fn parse_scope(name: &str) -> Result<Scope> {
    Ok(name.parse::<Scope>()?)
}

/// The RP of an embedded-RP profile as `address/prefix-length`, the form [`parse_profile`] reads.
pub(crate) fn profile_rp(profile: &Profile) -> Option<String> {
    match profile {
        Profile::EmbeddedRp { rp, prefix_len } => Some(format!("{rp}/{prefix_len}")),
        _ => None,
    }
}

/// Parses an IPv6 address given as text; anything else is an `InvalidAddress` error.
pub(crate) fn parse_address(text: &str) -> Result<Ipv6Addr> {
    Ok(sixcast::addr::parse_address(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SixcastError;

    #[test]
    fn defaults_are_the_sixcast_profile_at_global_scope() {
        let group = group_address("webservers".into(), "sixcast".into(), "global".into(), None);
        assert_eq!(group.unwrap(), "ff1e:c0:1acf:916c:691a:a851:5b62:1339");
        let relayed = relayed_address(
            "ff1e:c0:1acf:916c:691a:a851:5b62:1339".into(),
            "sixcast".into(),
            None,
        );
        assert_eq!(relayed.unwrap(), "ff1e:1c0:1acf:916c:691a:a851:5b62:1339");
    }

    #[test]
    fn bad_inputs_fail_with_the_documented_cases() {
        let not_an_address = relayed_address("ff1e::zz".into(), "sixcast".into(), None);
        assert!(matches!(
            not_an_address,
            Err(SixcastError::InvalidAddress(_))
        ));
        let librecast = relayed_address("ff1e::1".into(), "librecast".into(), None);
        assert!(matches!(librecast, Err(SixcastError::Unsupported(_))));
        let long_name = group_address_bytes(vec![b'a'; 4097], "ssm".into(), "link".into(), None);
        assert!(matches!(long_name, Err(SixcastError::InvalidName(_))));
    }
}
