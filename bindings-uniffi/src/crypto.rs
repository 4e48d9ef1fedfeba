//! Channel security (the core's `crypto` module): the key objects and capability tokens with
//! their one-line files, the drop reasons, and [`seal_datagram`] / [`open_datagram`] for tools
//! and tests (what a channel does to each datagram). No I/O: key files are read and written by
//! the caller.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use sixcast::{
    Error, ErrorKind,
    crypto::{self, DropReason, KeyId, Protection, Rejected},
};

use crate::{addr::parse_address, error::Result};

/// A channel's symmetric key: whoever holds it reads and writes the channel's sealed traffic.
/// Its `id` names it in sealed datagrams, so that keys rotate without downtime.
#[derive(Debug, uniffi::Object)]
pub struct ChannelKey {
    pub(crate) inner: crypto::ChannelKey,
}

#[uniffi::export]
impl ChannelKey {
    /// A new key with a random id, from the operating system's random number generator.
    #[uniffi::constructor]
    pub fn generate() -> Result<Self> {
        Ok(Self {
            inner: crypto::ChannelKey::generate()?,
        })
    }

    /// The key of id `id` and 32 secret bytes. Fails with `InvalidConfig` for another length.
    #[uniffi::constructor]
    pub fn from_bytes(id: u32, secret: Vec<u8>) -> Result<Self> {
        Ok(Self {
            inner: crypto::ChannelKey::from_bytes(KeyId(id), key_bytes(&secret, "secret")?),
        })
    }

    /// Parses the text of a channel key file. Fails with `InvalidConfig` for anything else.
    #[uniffi::constructor]
    pub fn from_file_text(text: String) -> Result<Self> {
        Ok(Self {
            inner: crypto::ChannelKey::from_file_text(&text)?,
        })
    }

    /// The key file text: `sixcast-channel-key-v1 <id> <secret>` and a newline. Write it to a
    /// file only its owner can read.
    pub fn to_file_text(&self) -> String {
        self.inner.to_file_text().to_string()
    }

    /// The key's id.
    pub fn id(&self) -> u32 {
        self.inner.id().0
    }
}

/// A sender's Ed25519 signing key; receivers trust its `public_key()`.
#[derive(Debug, uniffi::Object)]
pub struct SigningKey {
    pub(crate) inner: crypto::SigningKey,
}

#[uniffi::export]
impl SigningKey {
    /// A new key from the operating system's random number generator.
    #[uniffi::constructor]
    pub fn generate() -> Result<Self> {
        Ok(Self {
            inner: crypto::SigningKey::generate()?,
        })
    }

    /// The key whose 32-byte secret seed is `seed` (RFC 8032). Fails with `InvalidConfig` for
    /// another length.
    #[uniffi::constructor]
    pub fn from_seed(seed: Vec<u8>) -> Result<Self> {
        Ok(Self {
            inner: crypto::SigningKey::from_seed(key_bytes(&seed, "seed")?),
        })
    }

    /// Parses the text of a signing key file. Fails with `InvalidConfig` for anything else.
    #[uniffi::constructor]
    pub fn from_file_text(text: String) -> Result<Self> {
        Ok(Self {
            inner: crypto::SigningKey::from_file_text(&text)?,
        })
    }

    /// The key file text: `sixcast-signing-key-v1 <seed>` and a newline. Write it to a file
    /// only its owner can read.
    pub fn to_file_text(&self) -> String {
        self.inner.to_file_text().to_string()
    }

    /// The public half, for receivers' `Channel.trust`.
    pub fn public_key(&self) -> Arc<PublicKey> {
        Arc::new(PublicKey {
            inner: self.inner.public_key(),
        })
    }
}

/// A sender's Ed25519 public key, as receivers trust it.
#[derive(Debug, uniffi::Object)]
pub struct PublicKey {
    pub(crate) inner: crypto::PublicKey,
}

#[uniffi::export]
impl PublicKey {
    /// The key from its 32 bytes. Fails with `InvalidConfig` if they are not a valid (or are a
    /// weak) Ed25519 key.
    #[uniffi::constructor]
    pub fn from_bytes(key: Vec<u8>) -> Result<Self> {
        Ok(Self {
            inner: crypto::PublicKey::from_bytes(key_bytes(&key, "key")?)?,
        })
    }

    /// Parses the text of a public key file. Fails with `InvalidConfig` for anything else.
    #[uniffi::constructor]
    pub fn from_file_text(text: String) -> Result<Self> {
        Ok(Self {
            inner: crypto::PublicKey::from_file_text(&text)?,
        })
    }

    /// The key file text: `sixcast-public-key-v1 <key>` and a newline.
    pub fn to_file_text(&self) -> String {
        self.inner.to_file_text()
    }

    /// The key's 32 bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes().to_vec()
    }

    /// The key's short name carried in signed datagrams: 16 hex digits.
    pub fn fingerprint(&self) -> String {
        self.inner.fingerprint().to_string()
    }
}

/// A capability token: an issuer's signed statement that the `subject` key may sign datagrams
/// of the channel whose canonical group is `group` until `not_after` (Unix seconds; valid
/// through that second). A sender presents it with `Channel.present`; receivers that
/// `trust_issuer` the issuer then accept the subject's signatures.
#[derive(Debug, uniffi::Object)]
pub struct Token {
    pub(crate) inner: crypto::Token,
}

#[uniffi::export]
impl Token {
    /// Issues, signed with `issuer`, a token for `subject` on the channel of canonical group
    /// `group` (`channel.group()`), valid through `not_after` (Unix seconds).
    #[uniffi::constructor]
    pub fn issue(
        issuer: Arc<SigningKey>,
        subject: Arc<PublicKey>,
        group: String,
        not_after: u64,
    ) -> Result<Self> {
        Ok(Self {
            inner: crypto::Token::issue(
                &issuer.inner,
                subject.inner,
                parse_address(&group)?,
                unix_time(not_after)?,
            ),
        })
    }

    /// The token from its bytes. Fails with `InvalidConfig` for anything else.
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Ok(Self {
            inner: crypto::Token::from_bytes(&bytes)?,
        })
    }

    /// Parses the text of a token file. Fails with `InvalidConfig` for anything else.
    #[uniffi::constructor]
    pub fn from_file_text(text: String) -> Result<Self> {
        Ok(Self {
            inner: crypto::Token::from_file_text(&text)?,
        })
    }

    /// The token file text: `sixcast-token-v1 <token>` and a newline.
    pub fn to_file_text(&self) -> String {
        self.inner.to_file_text()
    }

    /// The token's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes().to_vec()
    }

    /// The key the token lets send.
    pub fn subject(&self) -> Arc<PublicKey> {
        Arc::new(PublicKey {
            inner: self.inner.subject(),
        })
    }

    /// The canonical group of the channel the token is for.
    pub fn group(&self) -> String {
        self.inner.group().to_string()
    }

    /// The last second (Unix time) the token is valid in.
    pub fn not_after(&self) -> u64 {
        self.inner
            .not_after()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs())
    }

    /// The fingerprint of the issuer's key: 16 hex digits.
    pub fn issuer(&self) -> String {
        self.inner.issuer().to_string()
    }
}

/// `seconds` since the Unix epoch as a time; `InvalidConfig` beyond what the platform holds.
fn unix_time(seconds: u64) -> sixcast::Result<SystemTime> {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(seconds))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("{seconds} s after the Unix epoch is beyond this platform's clock"),
            )
        })
}

/// Exactly 32 bytes of key material, or an `InvalidConfig` error naming `what`.
fn key_bytes(bytes: &[u8], what: &str) -> sixcast::Result<[u8; crypto::KEY_LEN]> {
    bytes.try_into().map_err(|_| {
        Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "{what} must be {} bytes, not {}",
                crypto::KEY_LEN,
                bytes.len()
            ),
        )
    })
}

/// Every reason a channel's keys drop a datagram, as counted in `Stats.drops`.
#[uniffi::export]
pub fn drop_reasons() -> Vec<String> {
    DropReason::ALL
        .iter()
        .map(|reason| reason.name().to_owned())
        .collect()
}

/// What a receiver's keys did with a well-formed datagram.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum OpenedDatagram {
    /// The keys accept it: `plain` is the datagram for `decode_datagram`.
    Accepted {
        /// The plain datagram.
        plain: Vec<u8>,
    },
    /// The keys refuse it, for `reason` (one of `drop_reasons()`), as counted in `Stats.drops`.
    Dropped {
        /// The drop reason.
        reason: String,
    },
}

/// What a channel of canonical group `group` sends for the plain datagram `plain` (as
/// `pack_messages` makes it): sealed with `channel_key` and/or signed with `signing_key`
/// presenting `token`, or unchanged with neither key. Fails with `Malformed` if `plain` is not
/// a plain datagram, with `InvalidConfig` if the token is not for the signing key and group.
#[uniffi::export]
pub fn seal_datagram(
    group: String,
    plain: Vec<u8>,
    channel_key: Option<Arc<ChannelKey>>,
    signing_key: Option<Arc<SigningKey>>,
    token: Option<Arc<Token>>,
) -> Result<Vec<u8>> {
    let mut protection = Protection::new(parse_address(&group)?);
    if let Some(key) = channel_key {
        protection.set_key(&key.inner);
    }
    if let Some(key) = signing_key {
        protection.sign_with(key.inner.clone());
    }
    if let Some(token) = token {
        protection.present(token.inner)?;
    }
    Ok(protection.seal(&plain)?)
}

/// What a channel of canonical group `group` holding channel keys `keys`, trusting public keys
/// `trusted` and token issuers `issuers` does with the `datagram` it receives at Unix time
/// `now` (seconds; the current time when null). Fails with `Malformed`, whose message names
/// the stable reason in parentheses, if the datagram is not well formed.
#[uniffi::export]
pub fn open_datagram(
    group: String,
    datagram: Vec<u8>,
    keys: Vec<Arc<ChannelKey>>,
    trusted: Vec<Arc<PublicKey>>,
    issuers: Vec<Arc<PublicKey>>,
    now: Option<u64>,
) -> Result<OpenedDatagram> {
    let mut protection = Protection::new(parse_address(&group)?);
    for key in &keys {
        protection.add_key(&key.inner);
    }
    for key in &trusted {
        protection.trust(key.inner);
    }
    for issuer in &issuers {
        protection.trust_issuer(issuer.inner);
    }
    let now = now.map_or(Ok(SystemTime::now()), unix_time)?;
    match protection.open(&datagram, now) {
        Ok(plain) => Ok(OpenedDatagram::Accepted {
            plain: plain.into_owned(),
        }),
        Err(Rejected::Dropped(reason)) => Ok(OpenedDatagram::Dropped {
            reason: reason.name().to_owned(),
        }),
        Err(Rejected::Malformed(err)) => Err(Error::from(err).into()),
    }
}
