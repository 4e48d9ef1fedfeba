//! Capability tokens: an issuer's signed statement that a signing key may send on a channel
//! until a time. Receivers trust the issuer instead of every sender.

use std::{
    fmt,
    net::Ipv6Addr,
    time::{Duration, SystemTime},
};

use ed25519_dalek::{Signature, Signer};

use super::keys::{FINGERPRINT_LEN, Fingerprint, KEY_LEN, PublicKey, SigningKey};
use crate::error::{Error, ErrorKind};

pub use crate::wire::TOKEN_LEN;
// A token's bytes: subject key (32), group (16), expiry (8), issuer fingerprint (8) and the
// issuer's signature (64).
const _: () = assert!(TOKEN_LEN == KEY_LEN + 16 + 8 + FINGERPRINT_LEN + 64);
/// First word of a token file.
pub const TOKEN_TAG: &str = "sixcast-token-v1";
/// Appended to the signed fields, so that a token signature is never taken for anything else.
pub const TOKEN_DOMAIN: &[u8] = b"sixcast capability token v1";

const SIGNED_LEN: usize = TOKEN_LEN - 64;

/// Says, signed by an issuer, that the `subject` key may sign datagrams of the channel whose
/// canonical group is `group` until `not_after` (whole seconds since the Unix epoch).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Token {
    bytes: [u8; TOKEN_LEN],
    subject: PublicKey,
}

impl Token {
    /// Issues a token for `subject` on `group`, valid until `not_after` (rounded down to a
    /// second; times before the epoch count as the epoch).
    pub fn issue(
        issuer: &SigningKey,
        subject: PublicKey,
        group: Ipv6Addr,
        not_after: SystemTime,
    ) -> Self {
        let seconds = not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let mut bytes = [0; TOKEN_LEN];
        bytes[..32].copy_from_slice(&subject.to_bytes());
        bytes[32..48].copy_from_slice(&group.octets());
        bytes[48..56].copy_from_slice(&seconds.to_be_bytes());
        bytes[56..64].copy_from_slice(&issuer.public_key().fingerprint().0);
        let signature = issuer.dalek().sign(&signed_message(&bytes));
        bytes[SIGNED_LEN..].copy_from_slice(&signature.to_bytes());
        Self { bytes, subject }
    }

    /// Parses the 128 bytes of a token. Checks the form only (the subject is a valid key); the
    /// signature is checked against a trusted issuer when a datagram presents the token.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`].
    pub fn from_bytes(bytes: &[u8]) -> crate::Result<Self> {
        let bytes: [u8; TOKEN_LEN] = bytes.try_into().map_err(|_| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("a token is {TOKEN_LEN} bytes, not {}", bytes.len()),
            )
        })?;
        let mut subject = [0; KEY_LEN];
        subject.copy_from_slice(&bytes[..32]);
        Ok(Self {
            bytes,
            subject: PublicKey::from_bytes(subject)?,
        })
    }

    /// The token's bytes.
    pub fn to_bytes(&self) -> [u8; TOKEN_LEN] {
        self.bytes
    }

    /// The token's bytes, borrowed (as a relay's voucher in a SIGNED_CHALLENGE).
    pub fn as_bytes(&self) -> &[u8; TOKEN_LEN] {
        &self.bytes
    }

    /// The key the token lets send.
    pub fn subject(&self) -> PublicKey {
        self.subject
    }

    /// The canonical group of the channel the token is for.
    pub fn group(&self) -> Ipv6Addr {
        let mut octets = [0; 16];
        octets.copy_from_slice(&self.bytes[32..48]);
        Ipv6Addr::from(octets)
    }

    /// The last second the token is valid in.
    pub fn not_after(&self) -> SystemTime {
        let mut seconds = [0; 8];
        seconds.copy_from_slice(&self.bytes[48..56]);
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from_be_bytes(seconds))
    }

    /// The fingerprint of the issuer's key.
    pub fn issuer(&self) -> Fingerprint {
        let mut fingerprint = [0; FINGERPRINT_LEN];
        fingerprint.copy_from_slice(&self.bytes[56..64]);
        Fingerprint(fingerprint)
    }

    /// Whether `issuer` signed the token.
    pub(super) fn is_signed_by(&self, issuer: &PublicKey) -> bool {
        let Ok(signature) = Signature::from_slice(&self.bytes[SIGNED_LEN..]) else {
            return false;
        };
        issuer
            .dalek()
            .verify_strict(&signed_message(&self.bytes), &signature)
            .is_ok()
    }

    /// Whether the token is still valid at `now`.
    pub(super) fn is_valid_at(&self, now: SystemTime) -> bool {
        now < self.not_after() + Duration::from_secs(1)
    }

    /// The token file text: `sixcast-token-v1 <token: 256 hex digits>` and a newline.
    pub fn to_file_text(&self) -> String {
        format!("{TOKEN_TAG} {}\n", hex::encode(self.bytes))
    }

    /// Parses what [`to_file_text`](Self::to_file_text) writes.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] on anything else.
    pub fn from_file_text(text: &str) -> crate::Result<Self> {
        let [token] = super::keys::fields(text, TOKEN_TAG, "a token")?;
        Self::from_bytes(&super::keys::hex_array::<TOKEN_LEN>(token, "the token")?)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("subject", &self.subject.fingerprint())
            .field("group", &self.group())
            .field("not_after", &self.not_after())
            .field("issuer", &self.issuer())
            .finish()
    }
}

fn signed_message(bytes: &[u8; TOKEN_LEN]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNED_LEN + TOKEN_DOMAIN.len());
    message.extend_from_slice(&bytes[..SIGNED_LEN]);
    message.extend_from_slice(TOKEN_DOMAIN);
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP: Ipv6Addr = Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 1);

    #[test]
    fn tokens_round_trip_and_verify_against_their_issuer_only() {
        let issuer = SigningKey::from_seed([1; 32]);
        let subject = SigningKey::from_seed([2; 32]).public_key();
        let until = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let token = Token::issue(&issuer, subject, GROUP, until);
        assert_eq!(
            (token.subject(), token.group(), token.not_after()),
            (subject, GROUP, until)
        );
        assert_eq!(token.issuer(), issuer.public_key().fingerprint());
        assert!(token.is_signed_by(&issuer.public_key()));
        assert!(!token.is_signed_by(&subject));
        assert_eq!(Token::from_file_text(&token.to_file_text()).unwrap(), token);
        assert!(token.is_valid_at(until + Duration::from_millis(999)));
        assert!(!token.is_valid_at(until + Duration::from_secs(1)));
        let mut forged = token.to_bytes();
        forged[50] ^= 1; // a later expiry
        assert!(
            !Token::from_bytes(&forged)
                .unwrap()
                .is_signed_by(&issuer.public_key())
        );
        for bad in [&token.to_bytes()[1..], &[0; TOKEN_LEN][..]] {
            let err = Token::from_bytes(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig);
        }
    }
}
