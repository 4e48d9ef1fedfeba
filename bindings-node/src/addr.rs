//! Channel names to IPv6 multicast groups (the core's `addr` module), without any I/O.

use napi::{Env, Result, bindgen_prelude::Either};
use napi_derive::napi;
use sixcast::{Profile, Scope, addr};

use crate::error::OrThrow;

/// The UDP port of the sixcast, SSM and embedded-RP profiles unless configured otherwise.
#[napi]
pub const DEFAULT_PORT: u16 = addr::DEFAULT_PORT;
/// The UDP port of the librecast profile.
#[napi]
pub const LIBRECAST_PORT: u16 = addr::LIBRECAST_PORT;
/// The longest channel name, in bytes.
#[napi]
pub const MAX_NAME_LEN: u32 = addr::MAX_NAME_LEN as u32;
/// The RELAYED bit of the flag byte of a sixcast-profile group.
#[napi]
pub const FLAG_RELAYED: u8 = addr::FLAG_RELAYED;

/// How a channel name becomes a group: the profile, its RP, and the scope.
#[napi(object, object_to_js = false)]
pub struct AddressOptions {
    /// `sixcast` (default), `ssm`, `embedded-rp` (needs `rp`) or `librecast`.
    pub profile: Option<String>,
    /// The rendezvous point of the `embedded-rp` profile, as `address/prefix-length`.
    pub rp: Option<String>,
    /// `link`, `site`, `org` or `global` (default).
    pub scope: Option<String>,
}

/// The profile a relayed address is computed for.
#[napi(object, object_to_js = false)]
pub struct ProfileOptions {
    /// `sixcast` (default), `ssm`, `embedded-rp` (needs `rp`) or `librecast`.
    pub profile: Option<String>,
    /// The rendezvous point of the `embedded-rp` profile, as `address/prefix-length`.
    pub rp: Option<String>,
}

/// The group address (RFC 5952 text) of the channel `name` (a string is taken as UTF-8).
#[napi]
pub fn group_address(
    env: Env,
    name: Either<String, &[u8]>,
    options: Option<AddressOptions>,
) -> Result<String> {
    let (profile, rp, scope) = options.map_or((None, None, None), |options| {
        (options.profile, options.rp, options.scope)
    });
    let group = parse_profile(profile, rp).and_then(|profile| {
        let scope = scope.map_or(Ok(Scope::default()), |scope| scope.parse())?;
        addr::group_addr(bytes_of(&name), &profile, scope)
    });
    group.map(|group| group.to_string()).or_throw(&env)
}

/// The relayed form of `group` (the same group with its RELAYED bit set).
#[napi]
pub fn relayed_address(env: Env, group: String, options: Option<ProfileOptions>) -> Result<String> {
    let (profile, rp) = options.map_or((None, None), |options| (options.profile, options.rp));
    let relayed = parse_profile(profile, rp)
        .and_then(|profile| addr::relayed_addr(parse_address(&group)?, &profile));
    relayed.map(|group| group.to_string()).or_throw(&env)
}

fn parse_profile(name: Option<String>, rp: Option<String>) -> sixcast::Result<Profile> {
    let default = Profile::default();
    addr::parse_profile(name.as_deref().unwrap_or(default.name()), rp.as_deref())
}

/// Parses IPv6 address text, failing with InvalidAddress.
pub(crate) use sixcast::addr::parse_address;

/// The bytes of a name or payload given as a string (UTF-8) or as bytes.
pub(crate) fn bytes_of<'a>(value: &'a Either<String, &[u8]>) -> &'a [u8] {
    match value {
        Either::A(text) => text.as_bytes(),
        Either::B(bytes) => bytes,
    }
}
