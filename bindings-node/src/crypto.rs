//! Channel security (the core's `crypto` module): the key classes and capability tokens with
//! their one-line files, the drop reasons, and `sealDatagram` / `openDatagram` for tools and
//! tests (what a channel does to each datagram). No I/O: key files are read and written by the
//! caller.

use std::time::{Duration, SystemTime};

use napi::{Env, Result, bindgen_prelude::Buffer};
use napi_derive::napi;
use sixcast::{
    crypto::{self, DropReason, KeyId, Protection, Rejected},
    wire,
};

use crate::{
    addr::parse_address,
    config::{invalid, whole},
    error::{OrThrow, malformed_to_js},
};

/// The SEALED bit of a datagram's flag byte.
#[napi]
pub const FLAG_SEALED: u8 = wire::FLAG_SEALED;
/// The SIGNED bit of a datagram's flag byte.
#[napi]
pub const FLAG_SIGNED: u8 = wire::FLAG_SIGNED;
/// The TOKEN bit of a datagram's flag byte.
#[napi]
pub const FLAG_TOKEN: u8 = wire::FLAG_TOKEN;
/// The COVERED bit of a datagram's flag byte: a signed manifest vouches for it.
#[napi]
pub const FLAG_COVERED: u8 = wire::FLAG_COVERED;
/// Bytes of a capability token.
#[napi]
pub const TOKEN_LEN: u32 = crypto::TOKEN_LEN as u32;
/// Bytes of the key id in a sealed datagram.
#[napi]
pub const KEY_ID_LEN: u32 = crypto::KEY_ID_LEN as u32;
/// Bytes of the AEAD tag of a sealed datagram.
#[napi]
pub const TAG_LEN: u32 = crypto::TAG_LEN as u32;
/// Bytes sealing adds to a datagram.
#[napi]
pub const SEAL_OVERHEAD: u32 = crypto::SEAL_OVERHEAD as u32;
/// Bytes of an Ed25519 signature.
#[napi]
pub const SIGNATURE_LEN: u32 = crypto::SIGNATURE_LEN as u32;
/// Bytes signing adds to a datagram.
#[napi]
pub const SIGNATURE_OVERHEAD: u32 = crypto::SIGNATURE_OVERHEAD as u32;
/// Bytes of a public key's fingerprint.
#[napi]
pub const FINGERPRINT_LEN: u32 = crypto::FINGERPRINT_LEN as u32;
/// BLAKE3 key-derivation context of the per-channel AEAD key.
#[napi]
pub const SEAL_KEY_CONTEXT: &str = crypto::SEAL_KEY_CONTEXT;
/// BLAKE3 key-derivation context of the per-channel key of manifest digests.
#[napi]
pub const DIGEST_CONTEXT: &str = crypto::DIGEST_CONTEXT;

/// What signed bytes end with, so that a sixcast signature means nothing else.
#[napi]
pub fn signature_domain() -> Buffer {
    crypto::SIGNATURE_DOMAIN.to_vec().into()
}

/// What token signatures sign after the token's fields.
#[napi]
pub fn token_domain() -> Buffer {
    crypto::TOKEN_DOMAIN.to_vec().into()
}

/// Every reason a channel's keys drop a datagram, as counted in `Stats.drops`.
#[napi]
pub fn drop_reasons() -> Vec<&'static str> {
    DropReason::ALL.iter().map(|reason| reason.name()).collect()
}

/// A channel's symmetric key: whoever holds it reads and writes the channel's sealed traffic.
/// Its `id` names it in sealed datagrams, so that keys rotate without downtime.
#[napi]
pub struct ChannelKey {
    pub(crate) inner: crypto::ChannelKey,
}

// napi-derive moves the methods out of the impl, where `Self` would not name the class.
#[allow(clippy::use_self)]
#[napi]
impl ChannelKey {
    /// A new key with a random id, from the operating system's random number generator.
    #[napi(factory)]
    pub fn generate(env: Env) -> Result<Self> {
        let inner = crypto::ChannelKey::generate().or_throw(&env)?;
        Ok(Self { inner })
    }

    /// The key of id `id` (below 2^32) and 32 secret bytes.
    #[napi(factory)]
    pub fn from_bytes(env: Env, id: u32, secret: &[u8]) -> Result<Self> {
        let secret = key_bytes(secret, "secret").or_throw(&env)?;
        Ok(Self {
            inner: crypto::ChannelKey::from_bytes(KeyId(id), secret),
        })
    }

    /// Parses the text of a channel key file; throws ERR_SIXCAST_INVALID_CONFIG for anything
    /// else.
    #[napi(factory)]
    pub fn from_file_text(env: Env, text: String) -> Result<Self> {
        let inner = crypto::ChannelKey::from_file_text(&text).or_throw(&env)?;
        Ok(Self { inner })
    }

    /// The key file text: `sixcast-channel-key-v1 <id> <secret>` and a newline. Write it to a
    /// file only its owner can read.
    #[napi]
    pub fn to_file_text(&self) -> String {
        self.inner.to_file_text().to_string()
    }

    /// The key's id.
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.inner.id().0
    }

    /// Whether `other` is the same key (id and secret).
    #[napi]
    pub fn equals(&self, other: &ChannelKey) -> bool {
        self.inner == other.inner
    }
}

/// A sender's Ed25519 signing key; receivers trust its `publicKey()`.
#[napi]
pub struct SigningKey {
    pub(crate) inner: crypto::SigningKey,
}

#[napi]
impl SigningKey {
    /// A new key from the operating system's random number generator.
    #[napi(factory)]
    pub fn generate(env: Env) -> Result<Self> {
        let inner = crypto::SigningKey::generate().or_throw(&env)?;
        Ok(Self { inner })
    }

    /// The key whose 32-byte secret seed is `seed` (RFC 8032).
    #[napi(factory)]
    pub fn from_seed(env: Env, seed: &[u8]) -> Result<Self> {
        let seed = key_bytes(seed, "seed").or_throw(&env)?;
        Ok(Self {
            inner: crypto::SigningKey::from_seed(seed),
        })
    }

    /// Parses the text of a signing key file; throws ERR_SIXCAST_INVALID_CONFIG for anything
    /// else.
    #[napi(factory)]
    pub fn from_file_text(env: Env, text: String) -> Result<Self> {
        let inner = crypto::SigningKey::from_file_text(&text).or_throw(&env)?;
        Ok(Self { inner })
    }

    /// The key file text: `sixcast-signing-key-v1 <seed>` and a newline. Write it to a file
    /// only its owner can read.
    #[napi]
    pub fn to_file_text(&self) -> String {
        self.inner.to_file_text().to_string()
    }

    /// The public half, for receivers' `Channel.trust`.
    #[napi]
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.public_key(),
        }
    }
}

/// A sender's Ed25519 public key, as receivers trust it.
#[napi]
pub struct PublicKey {
    pub(crate) inner: crypto::PublicKey,
}

// napi-derive moves the methods out of the impl, where `Self` would not name the class.
#[allow(clippy::use_self)]
#[napi]
impl PublicKey {
    /// The key from its 32 bytes; throws ERR_SIXCAST_INVALID_CONFIG if they are not a valid (or
    /// are a weak) Ed25519 key.
    #[napi(factory)]
    pub fn from_bytes(env: Env, key: &[u8]) -> Result<Self> {
        let inner = key_bytes(key, "key")
            .and_then(crypto::PublicKey::from_bytes)
            .or_throw(&env)?;
        Ok(Self { inner })
    }

    /// Parses the text of a public key file; throws ERR_SIXCAST_INVALID_CONFIG for anything
    /// else.
    #[napi(factory)]
    pub fn from_file_text(env: Env, text: String) -> Result<Self> {
        let inner = crypto::PublicKey::from_file_text(&text).or_throw(&env)?;
        Ok(Self { inner })
    }

    /// The key file text: `sixcast-public-key-v1 <key>` and a newline.
    #[napi]
    pub fn to_file_text(&self) -> String {
        self.inner.to_file_text()
    }

    /// The key's 32 bytes.
    #[napi]
    pub fn to_bytes(&self) -> Buffer {
        self.inner.to_bytes().to_vec().into()
    }

    /// The key's short name carried in signed datagrams: 16 hex digits.
    #[napi(getter)]
    pub fn fingerprint(&self) -> String {
        self.inner.fingerprint().to_string()
    }

    /// Whether `other` is the same key.
    #[napi]
    pub fn equals(&self, other: &PublicKey) -> bool {
        self.inner == other.inner
    }
}

/// A capability token: an issuer's signed statement that the `subject` key may sign datagrams
/// of the channel whose canonical group is `group` until `notAfter` (Unix seconds; valid
/// through that second). A sender presents it with `Channel.present`; receivers that
/// `trustIssuer` the issuer then accept the subject's signatures.
#[napi]
pub struct Token {
    pub(crate) inner: crypto::Token,
}

// napi-derive moves the methods out of the impl, where `Self` would not name the class.
#[allow(clippy::use_self)]
#[napi]
impl Token {
    /// Issues, signed with `issuer`, a token for `subject` on the channel of canonical group
    /// `group` (`channel.group`), valid through `notAfter` (Unix seconds).
    #[napi(factory)]
    pub fn issue(
        env: Env,
        issuer: &SigningKey,
        subject: &PublicKey,
        group: String,
        not_after: f64,
    ) -> Result<Self> {
        let (group, not_after) =
            (|| Ok((parse_address(&group)?, unix_time("notAfter", not_after)?)))()
                .or_throw(&env)?;
        Ok(Self {
            inner: crypto::Token::issue(&issuer.inner, subject.inner, group, not_after),
        })
    }

    /// The token from its `TOKEN_LEN` bytes; throws ERR_SIXCAST_INVALID_CONFIG for anything
    /// else.
    #[napi(factory)]
    pub fn from_bytes(env: Env, bytes: &[u8]) -> Result<Self> {
        let inner = crypto::Token::from_bytes(bytes).or_throw(&env)?;
        Ok(Self { inner })
    }

    /// Parses the text of a token file; throws ERR_SIXCAST_INVALID_CONFIG for anything else.
    #[napi(factory)]
    pub fn from_file_text(env: Env, text: String) -> Result<Self> {
        let inner = crypto::Token::from_file_text(&text).or_throw(&env)?;
        Ok(Self { inner })
    }

    /// The token file text: `sixcast-token-v1 <token>` and a newline.
    #[napi]
    pub fn to_file_text(&self) -> String {
        self.inner.to_file_text()
    }

    /// The token's bytes.
    #[napi]
    pub fn to_bytes(&self) -> Buffer {
        self.inner.to_bytes().to_vec().into()
    }

    /// The key the token lets send.
    #[napi(getter)]
    pub fn subject(&self) -> PublicKey {
        PublicKey {
            inner: self.inner.subject(),
        }
    }

    /// The canonical group of the channel the token is for.
    #[napi(getter)]
    pub fn group(&self) -> String {
        self.inner.group().to_string()
    }

    /// The last second (Unix time) the token is valid in.
    #[napi(getter)]
    pub fn not_after(&self) -> f64 {
        // Unix seconds stay far below 2^53.
        self.inner
            .not_after()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs() as f64)
    }

    /// The fingerprint of the issuer's key: 16 hex digits.
    #[napi(getter)]
    pub fn issuer(&self) -> String {
        self.inner.issuer().to_string()
    }

    /// Whether `other` is the same token.
    #[napi]
    pub fn equals(&self, other: &Token) -> bool {
        self.inner == other.inner
    }
}

/// `seconds` (whole, since the Unix epoch, named `name` in errors) as a time.
fn unix_time(name: &str, seconds: f64) -> sixcast::Result<SystemTime> {
    let seconds = whole(name, seconds, u64::MAX)?;
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(seconds))
        .ok_or_else(|| invalid(format!("{name} {seconds} is beyond this platform's clock")))
}

/// Exactly 32 bytes of key material, or an InvalidConfig error naming `what`.
fn key_bytes(bytes: &[u8], what: &str) -> sixcast::Result<[u8; crypto::KEY_LEN]> {
    bytes.try_into().map_err(|_| {
        invalid(format!(
            "{what} must be {} bytes, not {}",
            crypto::KEY_LEN,
            bytes.len()
        ))
    })
}

/// What a receiver's keys did with a well-formed datagram: `plain` (the datagram for
/// `decodeDatagram`) when they accept it, else `dropped`, the reason counted in `Stats.drops`.
#[napi(object, object_from_js = false)]
pub struct OpenedDatagram {
    /// The plain datagram, absent when dropped.
    pub plain: Option<Buffer>,
    /// The drop reason (one of `dropReasons()`), absent when accepted.
    pub dropped: Option<&'static str>,
}

/// What a channel of canonical group `group` sends for the plain datagram `plain` (as
/// `packMessages` makes it): sealed with `channelKey` and/or signed with `signingKey`
/// presenting `token`, or unchanged with neither key. Throws ERR_SIXCAST_MALFORMED if `plain`
/// is not a plain datagram, ERR_SIXCAST_INVALID_CONFIG if the token is not for the signing key
/// and group.
#[napi]
pub fn seal_datagram(
    env: Env,
    group: String,
    plain: &[u8],
    channel_key: Option<&ChannelKey>,
    signing_key: Option<&SigningKey>,
    token: Option<&Token>,
) -> Result<Buffer> {
    let sealed = (|| {
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
        protection.seal(plain)
    })();
    Ok(sealed.or_throw(&env)?.into())
}

/// What a channel of canonical group `group` holding channel keys `keys`, trusting public keys
/// `trusted` and token issuers `issuers` does with the `datagram` it receives at Unix time
/// `now` (whole seconds; the current time when absent). Throws ERR_SIXCAST_MALFORMED, with the
/// stable `reason`, if the datagram is not well formed.
#[napi]
pub fn open_datagram(
    env: Env,
    group: String,
    datagram: &[u8],
    keys: Option<Vec<&ChannelKey>>,
    trusted: Option<Vec<&PublicKey>>,
    issuers: Option<Vec<&PublicKey>>,
    now: Option<f64>,
) -> Result<OpenedDatagram> {
    let (group, now) = (|| {
        let now = now.map_or(Ok(SystemTime::now()), |now| unix_time("now", now))?;
        Ok((parse_address(&group)?, now))
    })()
    .or_throw(&env)?;
    let mut protection = Protection::new(group);
    for key in keys.unwrap_or_default() {
        protection.add_key(&key.inner);
    }
    for key in trusted.unwrap_or_default() {
        protection.trust(key.inner);
    }
    for issuer in issuers.unwrap_or_default() {
        protection.trust_issuer(issuer.inner);
    }
    match protection.open(datagram, now) {
        Ok(plain) => Ok(OpenedDatagram {
            plain: Some(plain.into_owned().into()),
            dropped: None,
        }),
        Err(Rejected::Dropped(reason)) => Ok(OpenedDatagram {
            plain: None,
            dropped: Some(reason.name()),
        }),
        Err(Rejected::Malformed(err)) => Err(malformed_to_js(&env, err)),
    }
}
