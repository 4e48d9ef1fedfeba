//! Keys and their one-line text files.

use std::fmt;

use ed25519_dalek::{SigningKey as DalekSigningKey, VerifyingKey};
use zeroize::Zeroizing;

use super::random;
use crate::error::{Error, ErrorKind};
pub use crate::wire::{FINGERPRINT_LEN, Fingerprint};

/// First word of a channel key file.
pub const CHANNEL_KEY_TAG: &str = "sixcast-channel-key-v1";
/// First word of a signing (secret) key file.
pub const SIGNING_KEY_TAG: &str = "sixcast-signing-key-v1";
/// First word of a public key file.
pub const PUBLIC_KEY_TAG: &str = "sixcast-public-key-v1";

/// Bytes of a channel key, a signing key seed and a public key.
pub const KEY_LEN: usize = 32;

/// Names a channel key in sealed datagrams, so that receivers holding several keys (during a
/// rotation) know which one to open a datagram with. Written as 8 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub u32);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}

/// A channel's symmetric key: whoever holds it can read and write the channel's sealed traffic.
///
/// The secret bytes are wiped from memory when the key is dropped and never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKey {
    id: KeyId,
    secret: Zeroizing<[u8; KEY_LEN]>,
}

impl ChannelKey {
    /// A key from its id and 32 secret bytes.
    pub fn from_bytes(id: KeyId, secret: [u8; KEY_LEN]) -> Self {
        Self {
            id,
            secret: Zeroizing::new(secret),
        }
    }

    /// A new key with a random id, from the operating system's random number generator.
    ///
    /// Fails with [`ErrorKind::Io`] if the generator is unavailable.
    pub fn generate() -> crate::Result<Self> {
        let mut secret = Zeroizing::new([0; KEY_LEN]);
        random::fill(secret.as_mut())?;
        let mut id = [0; 4];
        random::fill(&mut id)?;
        Ok(Self {
            id: KeyId(u32::from_be_bytes(id)),
            secret,
        })
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The secret bytes.
    pub fn secret(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    /// The key file text: `sixcast-channel-key-v1 <id: 8 hex digits> <key: 64 hex digits>` and
    /// a newline.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{CHANNEL_KEY_TAG} {} {}\n",
            self.id,
            hex::encode(self.secret.as_slice())
        ))
    }

    /// Parses what [`to_file_text`](Self::to_file_text) writes (hex digits in either case).
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] on anything else.
    pub fn from_file_text(text: &str) -> crate::Result<Self> {
        let [id, secret] = fields(text, CHANNEL_KEY_TAG, "a channel key")?;
        let id = hex_array::<4>(id, "the key id")?;
        let secret = Zeroizing::new(hex_array::<KEY_LEN>(secret, "the channel key")?);
        Ok(Self {
            id: KeyId(u32::from_be_bytes(id)),
            secret,
        })
    }
}

impl fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A sender's Ed25519 signing key. Its [`PublicKey`] goes into receivers' keyrings.
///
/// The secret is wiped from memory when the key is dropped and never printed by `Debug`.
#[derive(Clone)]
pub struct SigningKey {
    key: DalekSigningKey,
}

impl SigningKey {
    /// The key whose 32-byte secret seed is `seed` (RFC 8032).
    pub fn from_seed(seed: [u8; KEY_LEN]) -> Self {
        Self {
            key: DalekSigningKey::from_bytes(&seed),
        }
    }

    /// A new key from the operating system's random number generator.
    ///
    /// Fails with [`ErrorKind::Io`] if the generator is unavailable.
    pub fn generate() -> crate::Result<Self> {
        let mut seed = Zeroizing::new([0; KEY_LEN]);
        random::fill(seed.as_mut())?;
        Ok(Self::from_seed(*seed))
    }

    /// The public half, for receivers' keyrings.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key: self.key.verifying_key(),
        }
    }

    /// The secret seed.
    pub fn seed(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.key.to_bytes())
    }

    pub(super) fn dalek(&self) -> &DalekSigningKey {
        &self.key
    }

    /// The key file text: `sixcast-signing-key-v1 <seed: 64 hex digits>` and a newline.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{SIGNING_KEY_TAG} {}\n",
            hex::encode(self.seed().as_slice())
        ))
    }

    /// Parses what [`to_file_text`](Self::to_file_text) writes.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] on anything else.
    pub fn from_file_text(text: &str) -> crate::Result<Self> {
        let [seed] = fields(text, SIGNING_KEY_TAG, "a signing key")?;
        let seed = Zeroizing::new(hex_array::<KEY_LEN>(seed, "the signing key")?);
        Ok(Self::from_seed(*seed))
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.public_key().fingerprint())
            .finish_non_exhaustive()
    }
}

/// A sender's Ed25519 public key, as trusted by receivers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
}

impl PublicKey {
    /// The key from its 32 bytes.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] if the bytes are not a point of the curve, or are
    /// a weak (small-order) key that would verify forged signatures.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> crate::Result<Self> {
        match VerifyingKey::from_bytes(&bytes) {
            Ok(key) if !key.is_weak() => Ok(Self { key }),
            _ => Err(Error::new(
                ErrorKind::InvalidConfig,
                "the public key is not a valid Ed25519 key",
            )),
        }
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.key.to_bytes()
    }

    /// The key's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        let hash = blake3::hash(self.key.as_bytes());
        let mut short = [0; FINGERPRINT_LEN];
        short.copy_from_slice(&hash.as_bytes()[..FINGERPRINT_LEN]);
        Fingerprint(short)
    }

    pub(super) fn dalek(&self) -> &VerifyingKey {
        &self.key
    }

    /// The key file text: `sixcast-public-key-v1 <key: 64 hex digits>` and a newline.
    pub fn to_file_text(&self) -> String {
        format!("{PUBLIC_KEY_TAG} {}\n", hex::encode(self.to_bytes()))
    }

    /// Parses what [`to_file_text`](Self::to_file_text) writes.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] on anything else.
    pub fn from_file_text(text: &str) -> crate::Result<Self> {
        let [key] = fields(text, PUBLIC_KEY_TAG, "a public key")?;
        Self::from_bytes(hex_array::<KEY_LEN>(key, "the public key")?)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidConfig, message)
}

/// Splits a one-line key file into its `N` fields after `tag`. One trailing newline (LF or
/// CRLF) is allowed; fields are separated by single spaces.
pub(super) fn fields<'a, const N: usize>(
    text: &'a str,
    tag: &str,
    what: &str,
) -> crate::Result<[&'a str; N]> {
    let line = text
        .strip_suffix('\n')
        .map_or(text, |line| line.strip_suffix('\r').unwrap_or(line));
    let mut words = line.split(' ');
    let first = words.next().unwrap_or_default();
    if first != tag {
        let shown: String = first.chars().take(40).collect();
        return Err(invalid(format!(
            "this is not {what} file: it must start with {tag:?}, not {shown:?}"
        )));
    }
    let rest: Vec<&str> = words.collect();
    rest.try_into().map_err(|rest: Vec<&str>| {
        invalid(format!(
            "{what} file has {N} field(s) after {tag:?} on one line, not {}",
            rest.len()
        ))
    })
}

pub(super) fn hex_array<const N: usize>(text: &str, what: &str) -> crate::Result<[u8; N]> {
    let mut bytes = [0; N];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| {
        invalid(format!(
            "{what} must be exactly {} hexadecimal digits",
            2 * N
        ))
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_keys_round_trip_through_their_file_text() {
        let key = ChannelKey::generate().unwrap();
        let text = key.to_file_text();
        assert!(text.starts_with("sixcast-channel-key-v1 "));
        assert_eq!(text.len(), CHANNEL_KEY_TAG.len() + 1 + 8 + 1 + 64 + 1);
        assert_eq!(ChannelKey::from_file_text(&text).unwrap(), key);
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(ChannelKey::from_file_text(&crlf).unwrap(), key);
        assert_ne!(ChannelKey::generate().unwrap(), key);
        assert!(!format!("{key:?}").contains(&hex::encode(key.secret())));
    }

    #[test]
    fn signing_and_public_keys_round_trip() {
        let signing = SigningKey::generate().unwrap();
        let again = SigningKey::from_file_text(&signing.to_file_text()).unwrap();
        assert_eq!(again.public_key(), signing.public_key());
        let public = signing.public_key();
        assert_eq!(
            PublicKey::from_file_text(&public.to_file_text()).unwrap(),
            public
        );
        assert_eq!(public.fingerprint().to_string().len(), 16);
        assert!(!format!("{signing:?}").contains(&hex::encode(signing.seed().as_slice())));
    }

    #[test]
    fn bad_key_files_are_invalid_config() {
        let key = "00".repeat(32);
        let cases = [
            String::new(),
            "\n".into(),
            format!("sixcast-channel-key-v2 00000001 {key}"),
            format!("sixcast-channel-key-v1 00000001 {key} extra"),
            format!("sixcast-channel-key-v1 00000001  {key}"),
            format!("sixcast-channel-key-v1 0000001 {key}"),
            format!("sixcast-channel-key-v1 00000001 {}", &key[2..]),
            format!("sixcast-channel-key-v1 00000001 {}zz", &key[2..]),
            format!("sixcast-channel-key-v1 00000001 {key}\n\n"),
            format!("{SIGNING_KEY_TAG} {key}"),
        ];
        for text in &cases {
            let err = ChannelKey::from_file_text(text).expect_err(text);
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{text}");
        }
        assert!(ChannelKey::from_file_text(&format!("{CHANNEL_KEY_TAG} 00000001 {key}")).is_ok());
        assert!(SigningKey::from_file_text(&format!("{PUBLIC_KEY_TAG} {key}")).is_err());
        // The all-zero point encoding is a small-order (weak) key.
        let weak = format!("{PUBLIC_KEY_TAG} 01{}", "00".repeat(31));
        let err = PublicKey::from_file_text(&weak).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    }
}
