//! Channel security: sealed (encrypted and authenticated) and signed datagrams. No I/O happens
//! here; keys come in as values or key file text.
//!
//! A channel can hold [`ChannelKey`]s (symmetric, with a [`KeyId`] so that keys rotate without
//! downtime), a [`SigningKey`] to sign what it sends (with a capability [`Token`] to present),
//! and trusted [`PublicKey`]s of senders or of token issuers, whose signatures it requires.
//! [`Protection`] applies them to whole datagrams: one AES-256-GCM seal (under a key of the
//! sender's own) and at most one Ed25519 signature per datagram, however many messages it packs,
//! or one per run of datagrams sent together (a signed manifest of their digests, held for by
//! [`Covers`]), so relays forward protected datagrams unchanged. The byte layout and the threat model are in
//! `docs/security.md`.

mod cover;
mod keys;
mod protection;
#[doc(hidden)]
pub mod random;
#[doc(hidden)]
pub mod relay_identity;
mod token;

use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};

pub use crate::wire::SIGNATURE_LEN;
pub use cover::{CoverLimits, Covers, DIGEST_CONTEXT, digest, digest_key};
pub use keys::{
    CHANNEL_KEY_TAG, ChannelKey, FINGERPRINT_LEN, Fingerprint, KEY_LEN, KeyId, PUBLIC_KEY_TAG,
    PublicKey, SIGNING_KEY_TAG, SigningKey,
};
pub use protection::{
    CONTROL_MAC_CONTEXT, CONTROL_TAG_LEN, KEY_ID_LEN, MAX_CHAIN_LEN, Protection, Rejected,
    SEAL_KEY_CONTEXT, SEAL_OVERHEAD, SIGNATURE_DOMAIN, SIGNATURE_OVERHEAD, SIGNING_SCRATCH,
    TAG_LEN,
};
pub use token::{TOKEN_DOMAIN, TOKEN_LEN, TOKEN_TAG, Token};

/// Why a well-formed datagram or message was dropped by a channel's protection.
///
/// [`name`](Self::name) is stable; it is used in the conformance vectors and the CLI's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The channel holds a key but the datagram is not sealed.
    NotSealed,
    /// The datagram is sealed with a key the channel does not hold (or the channel holds none).
    NoKey,
    /// The seal does not open: the datagram was changed, or sealed for another channel.
    BadTag,
    /// The channel requires signatures but the datagram is not signed.
    NotSigned,
    /// The datagram is signed by a key the channel does not trust.
    UntrustedSigner,
    /// The signature does not verify: the datagram was changed, or signed for another channel;
    /// or a presented token is forged, for another channel or for another key.
    BadSignature,
    /// The signer presented a token of a trusted issuer that has expired.
    Expired,
    /// The message is older than what the receiver remembers of its sender: a replay, or too
    /// late to tell apart from one.
    Replay,
    /// The channel requires signatures and the datagram was COVERED (its sender's signed
    /// manifest was to vouch for it), but no verified manifest listed it in time.
    Unverified,
}

impl DropReason {
    /// Every reason, in declaration order.
    pub const ALL: &'static [Self] = &[
        Self::NotSealed,
        Self::NoKey,
        Self::BadTag,
        Self::NotSigned,
        Self::UntrustedSigner,
        Self::BadSignature,
        Self::Expired,
        Self::Replay,
        Self::Unverified,
    ];

    /// The stable snake_case name of the reason.
    pub const fn name(self) -> &'static str {
        match self {
            Self::NotSealed => "not_sealed",
            Self::NoKey => "no_key",
            Self::BadTag => "bad_tag",
            Self::NotSigned => "not_signed",
            Self::UntrustedSigner => "untrusted_signer",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::Replay => "replay",
            Self::Unverified => "unverified",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::NotSealed => 0,
            Self::NoKey => 1,
            Self::BadTag => 2,
            Self::NotSigned => 3,
            Self::UntrustedSigner => 4,
            Self::BadSignature => 5,
            Self::Expired => 6,
            Self::Replay => 7,
            Self::Unverified => 8,
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How many datagrams (messages, for [`DropReason::Replay`]) were dropped for each reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drops {
    counts: [u64; DropReason::ALL.len()],
}

impl Drops {
    /// The count of `reason`.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counts[reason.index()]
    }

    /// Every reason with its count, in [`DropReason::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|&reason| (reason, self.get(reason)))
    }

    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Adds `count` drops of `reason`.
    pub fn add(&mut self, reason: DropReason, count: u64) {
        self.counts[reason.index()] += count;
    }
}

impl std::ops::AddAssign for Drops {
    fn add_assign(&mut self, other: Self) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
    }
}

/// Lock-free [`Drops`], for counting on the receive path.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct DropCounters {
    counts: [AtomicU64; DropReason::ALL.len()],
}

impl DropCounters {
    /// Counts one datagram dropped for `reason`.
    pub fn bump(&self, reason: DropReason) {
        self.add(reason, 1);
    }

    /// Counts `count` datagrams dropped for `reason`.
    pub fn add(&self, reason: DropReason, count: u64) {
        if count > 0 {
            self.counts[reason.index()].fetch_add(count, Ordering::Relaxed);
        }
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Drops {
        Drops {
            counts: self
                .counts
                .each_ref()
                .map(|count| count.load(Ordering::Relaxed)),
        }
    }
}

#[cfg(test)]
mod tests;
