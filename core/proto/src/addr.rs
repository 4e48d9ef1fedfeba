//! Channel names to IPv6 multicast groups.
//!
//! A channel is a name of arbitrary bytes. Every member hashes the name the same way, so all of
//! them arrive at the same group without any coordination. The [`Profile`] decides how the hash
//! is laid out in the address (sixcast's own any-source groups, source-specific groups, groups
//! with an embedded rendezvous point, or Librecast-compatible groups) and the [`Scope`] decides
//! how far the group reaches.
//!
//! The sixcast, SSM and embedded-RP profiles also define a *relayed* form of every group: the
//! same group with one RELAYED bit set, which relays use when they re-send a copy so that they
//! never pick up their own traffic again. See `docs/addressing.md` for byte diagrams.
//!
//! This module does no I/O.

use std::{fmt, net::Ipv6Addr, str::FromStr};

use sha3::{Digest, Sha3_256};

use crate::error::{Error, ErrorKind, Result};

/// The longest channel name, in bytes. Longer names fail with [`ErrorKind::InvalidName`].
pub const MAX_NAME_LEN: usize = 4096;

/// The UDP port of the sixcast, SSM and embedded-RP profiles unless configured otherwise.
pub const DEFAULT_PORT: u16 = 6446;

/// The hop limit of sent multicast datagrams unless configured: enough to cross the routers of
/// a campus or a provider's core, where the kernel's default of 1 never leaves the link.
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// The UDP port Librecast uses, and so the port of the [`Profile::Librecast`] profile.
pub const LIBRECAST_PORT: u16 = 4242;

/// The bit of the sixcast flag byte (byte 2 of a [`Profile::Sixcast`] group) that marks the
/// relayed form of a group. The other bits of that byte are reserved and zero.
pub const FLAG_RELAYED: u8 = 0x01;

/// First octet of every IPv6 multicast address (RFC 4291, section 2.7).
const MULTICAST_OCTET: u8 = 0xff;
/// Flags nibble with only T set: a dynamically assigned (transient) any-source group.
const FLAGS_TRANSIENT: u8 = 0x1;
/// Flags nibble P|T with a zero prefix: the source-specific range `ff3X::/32` (RFC 4607).
const FLAGS_SSM: u8 = 0x3;
/// Flags nibble R|P|T: a group with an embedded rendezvous point (RFC 3956).
const FLAGS_EMBEDDED_RP: u8 = 0x7;

/// Index of the sixcast flag byte in a [`Profile::Sixcast`] group.
const ASM_FLAG_BYTE: usize = 2;
/// How many leading digest bytes fill the rest of a [`Profile::Sixcast`] group.
const ASM_DIGEST_LEN: usize = 13;
/// How many leading BLAKE3 bytes fill a [`Profile::Librecast`] group after its first two bytes.
const LIBRECAST_DIGEST_LEN: usize = 14;
/// Index of the 32-bit group id of SSM and embedded-RP groups.
const GID_OFFSET: usize = 12;

/// Group-id bit that puts the id in RFC 3307's range for dynamically allocated ids.
const GID_DYNAMIC: u32 = 0x8000_0000;
/// Group-id bit that marks the relayed form of an SSM or embedded-RP group.
const GID_RELAYED: u32 = 0x4000_0000;
/// Group-id bit that is always zero, so the top octet of the id is never `0xff` and the group
/// never shares an Ethernet MAC address with a solicited-node group.
const GID_ALWAYS_ZERO: u32 = 0x2000_0000;
/// Group-id bits taken from the name's digest.
const GID_HASH_BITS: u32 = 0x1fff_ffff;

/// The RELAYED bit of a [`Profile::Sixcast`] group as a mask over the whole address.
const ASM_RELAYED_MASK: u128 = (FLAG_RELAYED as u128) << (8 * (15 - ASM_FLAG_BYTE));
/// The RELAYED bit of an SSM or embedded-RP group as a mask over the whole address.
const GID_RELAYED_MASK: u128 = GID_RELAYED as u128;

/// The longest RP prefix an embedded-RP group can carry (its network-prefix field is 64 bits).
const MAX_RP_PREFIX_LEN: u8 = 64;
/// The low bits of an RP address that hold its RIID (RP interface id).
const RIID_BITS: u8 = 0x0f;
/// An RP in the `address/prefix-length` form, quoted in error messages.
const EXAMPLE_RP: &str = "2001:db8:5c::5/64";
/// How to write an RP, appended to the errors about a missing or unreadable one.
const RP_SYNTAX_HINT: &str = "write the RP as address/prefix-length, for example 2001:db8:5c::5/64";

/// How far a group reaches: the scope nibble of the multicast address (RFC 7346).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// One link; never forwarded by routers (nibble 2).
    Link,
    /// One site (nibble 5).
    Site,
    /// One organization, spanning several sites (nibble 8).
    Organization,
    /// The whole Internet, where multicast routing allows (nibble `e`).
    #[default]
    Global,
}

impl Scope {
    /// Every scope, from the narrowest to the widest.
    pub const ALL: [Self; 4] = [Self::Link, Self::Site, Self::Organization, Self::Global];

    /// The scope nibble that goes into the second byte of the group address.
    pub const fn nibble(self) -> u8 {
        match self {
            Self::Link => 0x2,
            Self::Site => 0x5,
            Self::Organization => 0x8,
            Self::Global => 0xe,
        }
    }

    /// The name used in configuration and on the command line: `link`, `site`, `org` or
    /// `global`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Site => "site",
            Self::Organization => "org",
            Self::Global => "global",
        }
    }

    /// The scope whose [`nibble`](Self::nibble) is `nibble`, if sixcast uses it.
    fn from_nibble(nibble: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.nibble() == nibble)
    }
}

impl FromStr for Scope {
    type Err = Error;

    /// Parses a scope [`name`](Self::name); `organization` is accepted for `org`.
    fn from_str(text: &str) -> Result<Self> {
        if text == "organization" {
            return Ok(Self::Organization);
        }
        let scope = Self::ALL.into_iter().find(|scope| scope.name() == text);
        scope.ok_or_else(|| {
            let message =
                format!("unknown scope {text:?}; use link, site, org (or organization) or global");
            Error::new(ErrorKind::InvalidConfig, message)
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a channel name becomes a group address, and what travels in the datagrams.
///
/// All members of a channel must use the same profile, scope and (for embedded-RP) RP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// sixcast's own any-source groups `ff1X:FF..`: a flag byte, then 13 bytes of
    /// SHA3-256(name).
    #[default]
    Sixcast,
    /// Source-specific groups in `ff3X::/96` (RFC 4607) with a 32-bit group id from
    /// SHA3-256(name). Receivers join per source.
    Ssm,
    /// Any-source groups that carry the address of their rendezvous point (RFC 3956), so
    /// routers need no RP configuration. The group id is the same as for [`Profile::Ssm`].
    EmbeddedRp {
        /// The rendezvous point: a `prefix_len`-bit prefix, zeros, and a non-zero RIID in the
        /// last four bits, such as `2001:db8:5c::5`.
        rp: Ipv6Addr,
        /// The length of the RP's network prefix, 1 to 64 bits.
        prefix_len: u8,
    },
    /// Groups compatible with Librecast 0.9 and later: `ff1X` and 14 bytes of BLAKE3(name),
    /// payloads carried without a sixcast header, on [`LIBRECAST_PORT`]. Has no relayed form.
    Librecast,
}

impl Profile {
    /// The name used in configuration and on the command line: `sixcast`, `ssm`,
    /// `embedded-rp` or `librecast`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sixcast => "sixcast",
            Self::Ssm => "ssm",
            Self::EmbeddedRp { .. } => "embedded-rp",
            Self::Librecast => "librecast",
        }
    }

    /// The UDP port of the profile unless configured otherwise.
    pub fn default_port(&self) -> u16 {
        match self {
            Self::Librecast => LIBRECAST_PORT,
            Self::Sixcast | Self::Ssm | Self::EmbeddedRp { .. } => DEFAULT_PORT,
        }
    }

    /// Whether datagrams start with the sixcast header. Librecast peers send payloads raw.
    pub fn has_header(&self) -> bool {
        !matches!(self, Self::Librecast)
    }

    /// Checks the RP of an [`EmbeddedRp`](Self::EmbeddedRp) profile; the others are always
    /// valid.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] when the prefix length is not 1 to 64, and with
    /// [`ErrorKind::InvalidAddress`] when the RP is not a unicast `prefix::RIID` address with a
    /// RIID of 1 to 15. (RIID 0 would make the RP the subnet-router anycast address of its
    /// prefix, so sixcast refuses it.)
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::EmbeddedRp { rp, prefix_len } => validate_rp(rp, prefix_len),
            Self::Sixcast | Self::Ssm | Self::Librecast => Ok(()),
        }
    }
}

impl FromStr for Profile {
    type Err = Error;

    /// Parses `sixcast`, `ssm` or `librecast`. An embedded-RP profile needs its RP too: use
    /// [`parse_profile`].
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "sixcast" => Ok(Self::Sixcast),
            "ssm" => Ok(Self::Ssm),
            "librecast" => Ok(Self::Librecast),
            "embedded-rp" => Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("the embedded-rp profile needs its rendezvous point; {RP_SYNTAX_HINT}"),
            )),
            _ => Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "unknown profile {text:?}; use one of sixcast, ssm, embedded-rp, librecast"
                ),
            )),
        }
    }
}

/// Parses IPv6 address text (a group, a source), as every binding takes addresses: anything
/// else fails with [`ErrorKind::InvalidAddress`].
pub fn parse_address(text: &str) -> Result<Ipv6Addr> {
    text.parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidAddress,
            format!("{text:?} is not an IPv6 address"),
        )
    })
}

/// Parses a profile name and, for `embedded-rp`, its RP written as `address/prefix-length`
/// (such as `2001:db8:5c::5/64`). Used by the command line and configuration files.
///
/// Fails with [`ErrorKind::InvalidConfig`] for an unknown name, a missing or out-of-range prefix
/// length, a missing RP for `embedded-rp` or an RP given to another profile, and with
/// [`ErrorKind::InvalidAddress`] for an RP that is not a valid embedded-RP address.
pub fn parse_profile(name: &str, rp: Option<&str>) -> Result<Profile> {
    let Some(rp) = rp else {
        return name.parse();
    };
    if name != "embedded-rp" {
        let profile: Profile = name.parse()?;
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "an RP only applies to the embedded-rp profile, not to {}; drop the RP or choose \
                 embedded-rp",
                profile.name()
            ),
        ));
    }
    let Some((address, prefix_len)) = rp.split_once('/') else {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("RP {rp:?} lacks a prefix length; {RP_SYNTAX_HINT}"),
        ));
    };
    let rp: Ipv6Addr = address.parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidAddress,
            format!("RP {address:?} is not an IPv6 address; {RP_SYNTAX_HINT}"),
        )
    })?;
    let prefix_len: u8 = prefix_len.parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "RP prefix length {prefix_len:?} is not a number from 1 to {MAX_RP_PREFIX_LEN}"
            ),
        )
    })?;
    let profile = Profile::EmbeddedRp { rp, prefix_len };
    profile.validate()?;
    Ok(profile)
}

/// SHA3-256 of a channel name: the digest the sixcast, SSM and embedded-RP groups are cut from.
pub fn name_digest(name: &[u8]) -> [u8; 32] {
    Sha3_256::digest(name).into()
}

/// The group of channel `name` under `profile` and `scope`: the original group, without the
/// RELAYED bit.
///
/// Fails with [`ErrorKind::InvalidName`] when the name is longer than [`MAX_NAME_LEN`] bytes,
/// and as [`Profile::validate`] does for a bad embedded RP.
///
/// ```
/// use sixcast_proto::addr::{Profile, Scope, group_addr};
///
/// let group = group_addr(b"webservers", &Profile::Sixcast, Scope::Global)?;
/// assert_eq!(group.to_string(), "ff1e:c0:1acf:916c:691a:a851:5b62:1339");
/// # Ok::<(), sixcast_proto::Error>(())
/// ```
pub fn group_addr(name: &[u8], profile: &Profile, scope: Scope) -> Result<Ipv6Addr> {
    if name.len() > MAX_NAME_LEN {
        return Err(Error::new(
            ErrorKind::InvalidName,
            format!(
                "the channel name is {} bytes, longer than the limit of {MAX_NAME_LEN} bytes; use \
                 a shorter name",
                name.len()
            ),
        ));
    }
    profile.validate()?;
    let mut octets = [0; 16];
    match *profile {
        Profile::Sixcast => {
            octets[..2].copy_from_slice(&multicast_prefix(FLAGS_TRANSIENT, scope));
            // The flag byte stays zero: this is the original group.
            octets[ASM_FLAG_BYTE + 1..].copy_from_slice(&name_digest(name)[..ASM_DIGEST_LEN]);
        }
        Profile::Ssm => {
            octets[..2].copy_from_slice(&multicast_prefix(FLAGS_SSM, scope));
            octets[GID_OFFSET..].copy_from_slice(&group_id(name).to_be_bytes());
        }
        Profile::EmbeddedRp { rp, prefix_len } => {
            octets[..2].copy_from_slice(&multicast_prefix(FLAGS_EMBEDDED_RP, scope));
            octets[2..GID_OFFSET].copy_from_slice(&embedded_rp_fields(rp, prefix_len));
            octets[GID_OFFSET..].copy_from_slice(&group_id(name).to_be_bytes());
        }
        Profile::Librecast => {
            octets[..2].copy_from_slice(&multicast_prefix(FLAGS_TRANSIENT, scope));
            octets[2..].copy_from_slice(&blake3::hash(name).as_bytes()[..LIBRECAST_DIGEST_LEN]);
        }
    }
    Ok(Ipv6Addr::from(octets))
}

/// The relayed form of `group`: the same group with the RELAYED bit set. A group that is
/// already relayed is returned unchanged.
///
/// Fails with [`ErrorKind::Unsupported`] for [`Profile::Librecast`], which has no relayed form,
/// and with [`ErrorKind::InvalidAddress`] when `group` is not of the profile's form (as
/// [`group_addr`] derives it).
pub fn relayed_addr(group: Ipv6Addr, profile: &Profile) -> Result<Ipv6Addr> {
    let mask = relayed_mask(group, profile)?;
    Ok(Ipv6Addr::from_bits(group.to_bits() | mask))
}

/// Whether `group` is of the profile's form and has the RELAYED bit set. Always false for
/// [`Profile::Librecast`].
pub fn is_relayed(group: Ipv6Addr, profile: &Profile) -> bool {
    relayed_mask(group, profile).is_ok_and(|mask| group.to_bits() & mask != 0)
}

/// The SSM group on which an SSM repeater re-sends the traffic of `group` (docs/reachability.md,
/// section 7): `ff3X::/96`, X the scope of `group`, with a relayed group id cut from the SHA3-256
/// of the 16 bytes of `group`. Every profile's group (original or relayed form) has its own
/// repeated group; nodes join it from the repeater's address only.
///
/// Fails with [`ErrorKind::InvalidAddress`] when `group` is not multicast or has a scope
/// sixcast does not use.
pub fn repeated_addr(group: Ipv6Addr) -> Result<Ipv6Addr> {
    let octets = group.octets();
    let scope = Scope::from_nibble(octets[1] & 0x0f).filter(|_| group.is_multicast());
    let Some(scope) = scope else {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            format!(
                "{group} is not a multicast group of a scope sixcast uses; give a channel's group"
            ),
        ));
    };
    let digest = name_digest(&octets);
    let hash = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let mut repeated = [0; 16];
    repeated[..2].copy_from_slice(&multicast_prefix(FLAGS_SSM, scope));
    repeated[GID_OFFSET..]
        .copy_from_slice(&(GID_DYNAMIC | GID_RELAYED | hash & GID_HASH_BITS).to_be_bytes());
    Ok(Ipv6Addr::from(repeated))
}

/// The rendezvous point embedded in an `ff7X` group (RFC 3956), or `None` when `group` is not
/// an embedded-RP group or its RP fields are invalid (prefix length not 1 to 64, or RIID 0).
pub fn embedded_rp(group: Ipv6Addr) -> Option<Ipv6Addr> {
    let octets = group.octets();
    if octets[0] != MULTICAST_OCTET || octets[1] >> 4 != FLAGS_EMBEDDED_RP {
        return None;
    }
    // The high nibble of byte 2 is reserved and ignored on receipt.
    let riid = octets[2] & RIID_BITS;
    let prefix_len = octets[3];
    if riid == 0 || !(1..=MAX_RP_PREFIX_LEN).contains(&prefix_len) {
        return None;
    }
    let mut rp = [0; 16];
    rp[..8].copy_from_slice(&octets[4..GID_OFFSET]);
    let rp = u128::from_be_bytes(rp) & prefix_mask(prefix_len) | u128::from(riid);
    Some(Ipv6Addr::from_bits(rp))
}

/// The first two bytes of a group: `ff`, then the flags and scope nibbles.
fn multicast_prefix(flags: u8, scope: Scope) -> [u8; 2] {
    [MULTICAST_OCTET, flags << 4 | scope.nibble()]
}

/// Whether `octets` start with `ff`, the `flags` nibble and a scope sixcast uses.
fn has_multicast_prefix(octets: &[u8; 16], flags: u8) -> bool {
    octets[0] == MULTICAST_OCTET
        && octets[1] >> 4 == flags
        && Scope::from_nibble(octets[1] & 0x0f).is_some()
}

/// The 32-bit group id of the original SSM and embedded-RP groups of `name`.
fn group_id(name: &[u8]) -> u32 {
    let digest = name_digest(name);
    let hash = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    GID_DYNAMIC | hash & GID_HASH_BITS
}

/// Whether the group id in the last four bytes is one sixcast derives (original or relayed).
fn has_sixcast_group_id(octets: &[u8; 16]) -> bool {
    let [.., g0, g1, g2, g3] = *octets;
    let id = u32::from_be_bytes([g0, g1, g2, g3]);
    id & GID_DYNAMIC != 0 && id & GID_ALWAYS_ZERO == 0
}

/// Bytes 2 to 11 of an embedded-RP group: RIID, prefix length and the 64-bit network prefix.
fn embedded_rp_fields(rp: Ipv6Addr, prefix_len: u8) -> [u8; 10] {
    let mut fields = [0; 10];
    fields[0] = rp.octets()[15] & RIID_BITS;
    fields[1] = prefix_len;
    let prefix = (rp.to_bits() & prefix_mask(prefix_len)).to_be_bytes();
    fields[2..].copy_from_slice(&prefix[..8]);
    fields
}

/// A mask of the leading `prefix_len` bits of an address.
fn prefix_mask(prefix_len: u8) -> u128 {
    let host_bits = 128u32.saturating_sub(u32::from(prefix_len));
    u128::MAX.checked_shl(host_bits).unwrap_or(0)
}

/// The checks of [`Profile::validate`] for an embedded RP.
fn validate_rp(rp: Ipv6Addr, prefix_len: u8) -> Result<()> {
    if !(1..=MAX_RP_PREFIX_LEN).contains(&prefix_len) {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "RP prefix length {prefix_len} is out of range; RFC 3956 allows 1 to \
                 {MAX_RP_PREFIX_LEN}, for example {EXAMPLE_RP}"
            ),
        ));
    }
    if rp.is_multicast() || rp.is_loopback() {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            format!(
                "RP {rp} is not a unicast address; use a router's address such as {EXAMPLE_RP}"
            ),
        ));
    }
    let between_prefix_and_riid = !prefix_mask(prefix_len) & !u128::from(RIID_BITS);
    if rp.to_bits() & between_prefix_and_riid != 0 {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            format!(
                "RP {rp} has bits set between its /{prefix_len} prefix and its last four bits; an \
                 embedded RP must be prefix::RIID, for example {EXAMPLE_RP}"
            ),
        ));
    }
    if rp.octets()[15] & RIID_BITS == 0 {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            format!(
                "RP {rp} has RIID 0, which makes it the subnet-router anycast address; end the RP \
                 in 1 to f, for example {EXAMPLE_RP}"
            ),
        ));
    }
    Ok(())
}

/// The mask of the RELAYED bit of `profile`, after checking that `group` is of its form.
fn relayed_mask(group: Ipv6Addr, profile: &Profile) -> Result<u128> {
    let octets = group.octets();
    let (of_form, mask) = match *profile {
        Profile::Sixcast => (
            has_multicast_prefix(&octets, FLAGS_TRANSIENT)
                && octets[ASM_FLAG_BYTE] & !FLAG_RELAYED == 0,
            ASM_RELAYED_MASK,
        ),
        Profile::Ssm => (
            has_multicast_prefix(&octets, FLAGS_SSM)
                && octets[2..GID_OFFSET].iter().all(|&byte| byte == 0)
                && has_sixcast_group_id(&octets),
            GID_RELAYED_MASK,
        ),
        Profile::EmbeddedRp { rp, prefix_len } => {
            validate_rp(rp, prefix_len)?;
            let of_form = has_multicast_prefix(&octets, FLAGS_EMBEDDED_RP)
                && octets[2..GID_OFFSET] == embedded_rp_fields(rp, prefix_len)
                && has_sixcast_group_id(&octets);
            (of_form, GID_RELAYED_MASK)
        }
        Profile::Librecast => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "the librecast profile has no relayed groups: all of a Librecast group comes from \
                 the name's hash and Librecast peers join only that group; use the sixcast, ssm or \
                 embedded-rp profile for relaying",
            ));
        }
    };
    if !of_form {
        return Err(Error::new(
            ErrorKind::InvalidAddress,
            format!(
                "{group} is not a group of the {} profile; derive it with group_addr using the \
                 same profile",
                profile.name()
            ),
        ));
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn rp_profile(rp: &str, prefix_len: u8) -> Profile {
        Profile::EmbeddedRp {
            rp: rp.parse().expect("test RP parses"),
            prefix_len,
        }
    }

    fn all_profiles() -> Vec<Profile> {
        vec![
            Profile::Sixcast,
            Profile::Ssm,
            rp_profile("2001:db8:5c::5", 64),
            rp_profile("2001:db8:5c::a", 48),
            Profile::Librecast,
        ]
    }

    fn group(name: &[u8], profile: &Profile, scope: Scope) -> Ipv6Addr {
        group_addr(name, profile, scope).expect("valid name and profile")
    }

    fn gid(group: Ipv6Addr) -> u32 {
        // The group id is the low 32 bits of the address.
        (group.to_bits() & u128::from(u32::MAX)) as u32
    }

    #[test]
    fn addresses_parse_or_fail_as_invalid_addresses() {
        assert_eq!(
            parse_address("ff1e::1").unwrap(),
            Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 1)
        );
        for bad in ["ff1e::zz", "", "192.0.2.1", "[ff1e::1]"] {
            let err = parse_address(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidAddress, "{bad:?}");
            assert!(
                err.message().contains("is not an IPv6 address"),
                "{}",
                err.message()
            );
        }
    }
    #[test]
    fn webservers_under_sixcast_matches_the_documented_literal() {
        let expected: Ipv6Addr = "ff1e:c0:1acf:916c:691a:a851:5b62:1339".parse().unwrap();
        assert_eq!(
            group(b"webservers", &Profile::Sixcast, Scope::Global),
            expected
        );
        assert_eq!(
            group_addr(b"webservers", &Profile::default(), Scope::default()).unwrap(),
            expected
        );
    }

    #[test]
    fn librecast_groups_match_librecast() {
        let webservers: Ipv6Addr = "ff1e:81b4:7fc5:feea:3ac9:7831:f88c:46c".parse().unwrap();
        let empty: Ipv6Addr = "ff1e:af13:49b9:f5f9:a1a6:a040:4dea:36dc".parse().unwrap();
        assert_eq!(
            group(b"webservers", &Profile::Librecast, Scope::Global),
            webservers
        );
        assert_eq!(group(b"", &Profile::Librecast, Scope::Global), empty);
    }

    #[test]
    fn ssm_and_embedded_rp_share_the_group_id_and_lay_out_their_headers() {
        let digest = name_digest(b"webservers");
        let expected_gid =
            0x8000_0000 | u32::from_be_bytes(digest[..4].try_into().unwrap()) & 0x1fff_ffff;

        let ssm = group(b"webservers", &Profile::Ssm, Scope::Site);
        assert_eq!(
            ssm.octets()[..12],
            [0xff, 0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(gid(ssm), expected_gid);

        let embedded = group(
            b"webservers",
            &rp_profile("2001:db8:5c::5", 64),
            Scope::Global,
        );
        let header = [
            0xff, 0x7e, 0x05, 64, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x5c, 0, 0,
        ];
        assert_eq!(embedded.octets()[..12], header);
        assert_eq!(gid(embedded), expected_gid);
    }

    #[test]
    fn flags_and_scope_nibbles_are_in_place() {
        for scope in Scope::ALL {
            for (profile, flags) in [
                (Profile::Sixcast, 0x10),
                (Profile::Ssm, 0x30),
                (rp_profile("2001:db8:5c::5", 64), 0x70),
                (Profile::Librecast, 0x10),
            ] {
                let octets = group(b"a", &profile, scope).octets();
                assert_eq!(octets[0], 0xff);
                assert_eq!(octets[1], flags | scope.nibble(), "{profile:?} {scope}");
            }
            assert_eq!(
                group(b"a", &Profile::Sixcast, scope).octets()[2],
                0,
                "flag byte of {scope}"
            );
        }
        let nibbles: Vec<u8> = Scope::ALL.iter().map(|scope| scope.nibble()).collect();
        assert_eq!(nibbles, [0x2, 0x5, 0x8, 0xe]);
    }

    #[test]
    fn relayed_differs_from_original_in_exactly_the_relayed_bit() {
        let asm = group(b"webservers", &Profile::Sixcast, Scope::Global);
        let relayed = relayed_addr(asm, &Profile::Sixcast).unwrap();
        assert_eq!(asm.to_bits() ^ relayed.to_bits(), 1 << (8 * 13));
        assert_eq!(relayed.octets()[2], FLAG_RELAYED);

        for profile in [Profile::Ssm, rp_profile("2001:db8:5c::5", 64)] {
            let original = group(b"webservers", &profile, Scope::Global);
            let relayed = relayed_addr(original, &profile).unwrap();
            assert_eq!(
                original.to_bits() ^ relayed.to_bits(),
                1 << 30,
                "{profile:?}"
            );
        }
    }

    #[test]
    fn relayed_addr_is_idempotent_and_is_relayed_agrees() {
        for profile in all_profiles().into_iter().filter(Profile::has_header) {
            let original = group(b"webservers", &profile, Scope::Global);
            let relayed = relayed_addr(original, &profile).unwrap();
            assert_ne!(relayed, original);
            assert_eq!(relayed_addr(relayed, &profile).unwrap(), relayed);
            assert!(is_relayed(relayed, &profile));
            assert!(!is_relayed(original, &profile));
        }
    }

    #[test]
    fn relayed_addr_rejects_groups_of_another_form() {
        let ssm = group(b"a", &Profile::Ssm, Scope::Global);
        let asm = group(b"a", &Profile::Sixcast, Scope::Global);
        let reserved_flag_set = Ipv6Addr::from_bits(asm.to_bits() | 0x02 << (8 * 13));
        let other_rp = group(b"a", &rp_profile("2001:db8:5c::6", 64), Scope::Global);
        let admin_local_scope: Ipv6Addr = "ff14::1".parse().unwrap();
        let cases = [
            (ssm, Profile::Sixcast),
            (reserved_flag_set, Profile::Sixcast),
            (admin_local_scope, Profile::Sixcast),
            (asm, Profile::Ssm),
            ("ff3e::1".parse().unwrap(), Profile::Ssm),
            ("ff3e::ff00:1".parse().unwrap(), Profile::Ssm),
            ("2001:db8::1".parse().unwrap(), Profile::Ssm),
            (other_rp, rp_profile("2001:db8:5c::5", 64)),
        ];
        for (address, profile) in cases {
            let err = relayed_addr(address, &profile).unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::InvalidAddress,
                "{address} under {profile:?}"
            );
            assert!(!is_relayed(address, &profile));
        }
    }

    #[test]
    fn librecast_has_no_relayed_form() {
        let group = group(b"webservers", &Profile::Librecast, Scope::Global);
        let err = relayed_addr(group, &Profile::Librecast).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(!is_relayed(group, &Profile::Librecast));
        assert!(!Profile::Librecast.has_header());
        assert_eq!(Profile::Librecast.default_port(), LIBRECAST_PORT);
        assert_eq!(Profile::Sixcast.default_port(), DEFAULT_PORT);
    }

    #[test]
    fn scope_names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.name().parse::<Scope>().unwrap(), scope);
            assert_eq!(scope.to_string(), scope.name());
        }
        assert_eq!(
            "organization".parse::<Scope>().unwrap(),
            Scope::Organization
        );
        let err = "planet".parse::<Scope>().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        assert!(err.message().contains("link, site, org"), "{err}");
    }

    #[test]
    fn profile_names_round_trip() {
        for profile in all_profiles() {
            let parsed = match &profile {
                Profile::EmbeddedRp { rp, prefix_len } => {
                    parse_profile(profile.name(), Some(&format!("{rp}/{prefix_len}")))
                }
                _ => parse_profile(profile.name(), None),
            };
            assert_eq!(parsed.unwrap(), profile);
        }
        assert_eq!("ssm".parse::<Profile>().unwrap(), Profile::Ssm);
        assert_eq!(
            "nope".parse::<Profile>().unwrap_err().kind(),
            ErrorKind::InvalidConfig
        );
    }

    #[test]
    fn embedded_rp_without_an_rp_asks_for_one() {
        for err in [
            "embedded-rp".parse::<Profile>().unwrap_err(),
            parse_profile("embedded-rp", None).unwrap_err(),
        ] {
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
            assert!(err.message().contains("address/prefix-length"), "{err}");
        }
    }

    #[test]
    fn bad_rps_are_rejected_with_the_right_kind() {
        let cases = [
            (
                "embedded-rp",
                Some("2001:db8:5c::5/0"),
                ErrorKind::InvalidConfig,
            ),
            (
                "embedded-rp",
                Some("2001:db8:5c::5/65"),
                ErrorKind::InvalidConfig,
            ),
            (
                "embedded-rp",
                Some("2001:db8:5c::5/300"),
                ErrorKind::InvalidConfig,
            ),
            (
                "embedded-rp",
                Some("2001:db8:5c::5"),
                ErrorKind::InvalidConfig,
            ),
            (
                "embedded-rp",
                Some("2001:db8:5c::5/"),
                ErrorKind::InvalidConfig,
            ),
            (
                "embedded-rp",
                Some("not-an-address/64"),
                ErrorKind::InvalidAddress,
            ),
            (
                "embedded-rp",
                Some("2001:db8:5c::1:5/64"),
                ErrorKind::InvalidAddress,
            ),
            (
                "embedded-rp",
                Some("2001:db8:5c::10/64"),
                ErrorKind::InvalidAddress,
            ),
            (
                "embedded-rp",
                Some("2001:db8:5c::/64"),
                ErrorKind::InvalidAddress,
            ),
            ("embedded-rp", Some("ff0e::5/64"), ErrorKind::InvalidAddress),
            ("embedded-rp", Some("::1/64"), ErrorKind::InvalidAddress),
            (
                "sixcast",
                Some("2001:db8:5c::5/64"),
                ErrorKind::InvalidConfig,
            ),
        ];
        for (name, rp, kind) in cases {
            assert_eq!(
                parse_profile(name, rp).unwrap_err().kind(),
                kind,
                "{name} {rp:?}"
            );
        }
        let unvalidated = rp_profile("2001:db8:5c::1:5", 64);
        assert_eq!(
            group_addr(b"a", &unvalidated, Scope::Global)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidAddress
        );
        assert!(!is_relayed("ff7e::1".parse().unwrap(), &unvalidated));
    }

    #[test]
    fn names_up_to_the_limit_are_accepted_and_longer_ones_rejected() {
        let longest = vec![b'a'; MAX_NAME_LEN];
        for profile in all_profiles() {
            assert!(group_addr(&longest, &profile, Scope::Global).is_ok());
            assert!(group_addr(b"", &profile, Scope::Global).is_ok());
            let err = group_addr(&[b'a'; MAX_NAME_LEN + 1], &profile, Scope::Global).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidName);
            assert!(
                err.message().contains("4097") && err.message().contains("4096"),
                "{err}"
            );
        }
    }

    #[test]
    fn embedded_rp_extraction_returns_the_configured_rp() {
        for (rp, prefix_len) in [
            ("2001:db8:5c::5", 64),
            ("2001:db8:5c::a", 48),
            ("2001:db8::f", 32),
            ("8000::1", 1),
        ] {
            let profile = rp_profile(rp, prefix_len);
            for scope in Scope::ALL {
                let original = group(b"webservers", &profile, scope);
                let relayed = relayed_addr(original, &profile).unwrap();
                let expected = rp.parse().ok();
                assert_eq!(embedded_rp(original), expected);
                assert_eq!(embedded_rp(relayed), expected);
            }
        }
    }

    #[test]
    fn embedded_rp_extraction_refuses_other_groups() {
        for address in [
            "ff1e::1",
            "ff3e::8000:1",
            "2001:db8::1",
            "ff7e:0040:2001:db8::1",
            "ff7e:0541:2001:db8::1",
        ] {
            assert_eq!(embedded_rp(address.parse().unwrap()), None, "{address}");
        }
    }

    proptest! {
        #[test]
        fn every_profile_yields_a_multicast_group_of_its_form(
            name in prop::collection::vec(any::<u8>(), 0..=300),
            scope_index in 0..Scope::ALL.len(),
        ) {
            let scope = Scope::ALL[scope_index];
            for profile in all_profiles() {
                let original = group(&name, &profile, scope);
                let octets = original.octets();
                prop_assert!(original.is_multicast());
                prop_assert_eq!(octets[1] & 0x0f, scope.nibble());
                prop_assert!(!is_relayed(original, &profile));
                match profile {
                    Profile::Sixcast => {
                        prop_assert_eq!(octets[1] >> 4, 0x1);
                        prop_assert_eq!(octets[2], 0);
                    }
                    Profile::Librecast => prop_assert_eq!(octets[1] >> 4, 0x1),
                    Profile::Ssm | Profile::EmbeddedRp { .. } => {
                        let flags = if profile == Profile::Ssm { 0x3 } else { 0x7 };
                        prop_assert_eq!(octets[1] >> 4, flags);
                        let relayed = relayed_addr(original, &profile).unwrap();
                        for id in [gid(original), gid(relayed)] {
                            prop_assert_eq!(id & 0xa000_0000, 0x8000_0000);
                            prop_assert_ne!(id >> 24, 0xff);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn repeated_groups_are_relayed_ssm_groups_of_the_same_scope() {
        for profile in [
            Profile::Sixcast,
            Profile::Ssm,
            rp_profile("2001:db8:5c::5", 64),
        ] {
            for scope in [Scope::Site, Scope::Global] {
                let original = group(b"repeat me", &profile, scope);
                let relayed = relayed_addr(original, &profile).unwrap();
                let (a, b) = (
                    repeated_addr(original).unwrap(),
                    repeated_addr(relayed).unwrap(),
                );
                assert_ne!(a, b, "each form has its own repeated group");
                for repeated in [a, b] {
                    let octets = repeated.octets();
                    assert_eq!(octets[..2], multicast_prefix(FLAGS_SSM, scope));
                    assert!(octets[2..GID_OFFSET].iter().all(|&byte| byte == 0));
                    assert!(is_relayed(repeated, &Profile::Ssm), "{repeated}");
                }
            }
        }
        assert_eq!(
            repeated_addr("ff1e::5c".parse().unwrap()).unwrap(),
            repeated_addr("ff1e::5c".parse().unwrap()).unwrap()
        );
        for bad in ["2001:db8::1", "ff10::1", "ff13::1"] {
            let err = repeated_addr(bad.parse().unwrap()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidAddress, "{bad}");
        }
    }
}
