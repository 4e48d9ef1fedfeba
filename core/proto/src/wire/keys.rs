//! What datagrams carry of keys: a public key's short name (its fingerprint), signatures and
//! capability tokens, by size. The codecs need only these; the keys, how fingerprints are
//! computed and what a token holds are in [`crate::crypto`], which builds on this module.

use std::fmt;

/// Bytes of a [`Fingerprint`].
pub const FINGERPRINT_LEN: usize = 8;
/// Bytes of a signature (Ed25519).
pub const SIGNATURE_LEN: usize = 64;
/// Bytes of a capability token: subject key (32), group (16), expiry (8), issuer fingerprint
/// (8) and the issuer's signature (64).
pub const TOKEN_LEN: usize = 128;

/// The short name of a public key carried in signed datagrams: the first 8 bytes of the BLAKE3
/// hash of the key. Written as 16 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; FINGERPRINT_LEN]);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
