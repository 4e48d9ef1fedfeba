//! Channel security: channel keys (sealing), signing and public keys (authenticated senders),
//! and capability tokens, each with its one-line file text. The caller reads and writes files.

use std::{
    ffi::c_char,
    time::{Duration, SystemTime},
};

use sixcast::{
    ErrorKind,
    crypto::{self, KeyId},
};

use crate::{
    addr::parse_address,
    error::{Result, SixcastError, SixcastStatus, guard},
    text,
};

/// A channel's symmetric key: whoever holds it reads and writes the channel's sealed traffic.
pub struct SixcastChannelKey {
    pub(crate) inner: crypto::ChannelKey,
}

/// A sender's Ed25519 signing key.
pub struct SixcastSigningKey {
    pub(crate) inner: crypto::SigningKey,
}

/// A sender's Ed25519 public key, as receivers trust it.
pub struct SixcastPublicKey {
    pub(crate) inner: crypto::PublicKey,
}

/// An issuer's signed statement that a key may sign a channel's datagrams until a time.
pub struct SixcastToken {
    pub(crate) inner: crypto::Token,
}

/// Boxes `value` into `*out` for the caller, who frees it with the type's free function.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn hand_out<T>(out: *mut *mut T, value: T) -> Result<()> {
    if out.is_null() {
        return Err(crate::error::Failure::invalid_argument(
            "output pointer is NULL",
        ));
    }
    // SAFETY: per the contract above.
    unsafe { out.write(Box::into_raw(Box::new(value))) };
    Ok(())
}

/// Frees a box from `hand_out`. NULL is ignored.
///
/// # Safety
/// `pointer` is NULL or came from `hand_out` with the same `T`, freed once.
unsafe fn free<T>(pointer: *mut T) {
    if !pointer.is_null() {
        // SAFETY: per the contract above.
        drop(unsafe { Box::from_raw(pointer) });
    }
}

/// Exactly 32 bytes of key material at `bytes`, or an `InvalidConfig` error naming `what`.
///
/// # Safety
/// `bytes` is NULL or points to `len` readable bytes.
unsafe fn key_bytes(bytes: *const u8, len: usize, what: &str) -> Result<[u8; crypto::KEY_LEN]> {
    // SAFETY: per the contract above.
    let bytes = unsafe { text::bytes(bytes, len, what) }?;
    Ok(bytes.try_into().map_err(|_| {
        sixcast::Error::new(
            ErrorKind::InvalidConfig,
            format!(
                "{what} must be {} bytes, not {}",
                crypto::KEY_LEN,
                bytes.len()
            ),
        )
    })?)
}

/// A new channel key with a random id, from the operating system's random number generator.
///
/// # Safety
/// `key_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_key_generate(
    key_out: *mut *mut SixcastChannelKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        let inner = crypto::ChannelKey::generate()?;
        // SAFETY: per the contract above.
        unsafe { hand_out(key_out, SixcastChannelKey { inner }) }
    })
}

/// The channel key of id `id` and the 32 secret bytes at `secret`.
///
/// # Safety
/// `secret` points to `secret_len` readable bytes; `key_out` is writable; `error_out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_key_from_bytes(
    id: u32,
    secret: *const u8,
    secret_len: usize,
    key_out: *mut *mut SixcastChannelKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let secret = unsafe { key_bytes(secret, secret_len, "secret") }?;
        let inner = crypto::ChannelKey::from_bytes(KeyId(id), secret);
        // SAFETY: per the contract above.
        unsafe { hand_out(key_out, SixcastChannelKey { inner }) }
    })
}

/// Parses the text of a channel key file (`sixcast-channel-key-v1 <id> <secret>`).
///
/// # Safety
/// `text` is a NUL-terminated string; `key_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_key_from_file_text(
    text: *const c_char,
    key_out: *mut *mut SixcastChannelKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let inner = crypto::ChannelKey::from_file_text(unsafe { text::arg(text, "text") }?)?;
        // SAFETY: per the contract above.
        unsafe { hand_out(key_out, SixcastChannelKey { inner }) }
    })
}

/// The key file text, with its newline, in `*text_out` (free it with `sixcast_string_free`).
/// Write it to a file only its owner can read.
///
/// # Safety
/// `key` is a live key; `text_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_key_to_file_text(
    key: *const SixcastChannelKey,
    text_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let key = unsafe { text::handle(key, "key") }?;
        // SAFETY: per the contract above.
        unsafe { text::store_text(text_out, key.inner.to_file_text().to_string(), "text_out") }
    })
}

/// The key's id (0 for NULL).
///
/// # Safety
/// `key` is NULL or a live key.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_key_id(key: *const SixcastChannelKey) -> u32 {
    // SAFETY: per the contract above.
    unsafe { key.as_ref() }.map_or(0, |key| key.inner.id().0)
}

/// Frees a channel key. NULL is ignored.
///
/// # Safety
/// `key` is NULL or a channel key from this library, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_key_free(key: *mut SixcastChannelKey) {
    // SAFETY: per the contract above.
    unsafe { free(key) };
}

/// A new signing key from the operating system's random number generator.
///
/// # Safety
/// `key_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_signing_key_generate(
    key_out: *mut *mut SixcastSigningKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        let inner = crypto::SigningKey::generate()?;
        // SAFETY: per the contract above.
        unsafe { hand_out(key_out, SixcastSigningKey { inner }) }
    })
}

/// The signing key whose 32-byte secret seed is at `seed` (RFC 8032).
///
/// # Safety
/// `seed` points to `seed_len` readable bytes; `key_out` is writable; `error_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_signing_key_from_seed(
    seed: *const u8,
    seed_len: usize,
    key_out: *mut *mut SixcastSigningKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let inner = crypto::SigningKey::from_seed(unsafe { key_bytes(seed, seed_len, "seed") }?);
        // SAFETY: per the contract above.
        unsafe { hand_out(key_out, SixcastSigningKey { inner }) }
    })
}

/// Parses the text of a signing key file (`sixcast-signing-key-v1 <seed>`).
///
/// # Safety
/// `text` is a NUL-terminated string; `key_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_signing_key_from_file_text(
    text: *const c_char,
    key_out: *mut *mut SixcastSigningKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let inner = crypto::SigningKey::from_file_text(unsafe { text::arg(text, "text") }?)?;
        // SAFETY: per the contract above.
        unsafe { hand_out(key_out, SixcastSigningKey { inner }) }
    })
}

/// The signing key file text in `*text_out` (free it with `sixcast_string_free`). Write it to
/// a file only its owner can read.
///
/// # Safety
/// `key` is a live key; `text_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_signing_key_to_file_text(
    key: *const SixcastSigningKey,
    text_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let key = unsafe { text::handle(key, "key") }?;
        // SAFETY: per the contract above.
        unsafe { text::store_text(text_out, key.inner.to_file_text().to_string(), "text_out") }
    })
}

/// The public half of `key` in `*public_out` (free it with `sixcast_public_key_free`).
///
/// # Safety
/// `key` is a live key; `public_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_signing_key_public_key(
    key: *const SixcastSigningKey,
    public_out: *mut *mut SixcastPublicKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let inner = unsafe { text::handle(key, "key") }?.inner.public_key();
        // SAFETY: per the contract above.
        unsafe { hand_out(public_out, SixcastPublicKey { inner }) }
    })
}

/// Frees a signing key. NULL is ignored.
///
/// # Safety
/// `key` is NULL or a signing key from this library, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_signing_key_free(key: *mut SixcastSigningKey) {
    // SAFETY: per the contract above.
    unsafe { free(key) };
}

/// The public key of the 32 bytes at `bytes`. Fails with `SIXCAST_STATUS_INVALID_CONFIG` if
/// they are not a valid (or are a weak) Ed25519 key.
///
/// # Safety
/// `bytes` points to `len` readable bytes; `key_out` is writable; `error_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_public_key_from_bytes(
    bytes: *const u8,
    len: usize,
    key_out: *mut *mut SixcastPublicKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let inner = crypto::PublicKey::from_bytes(unsafe { key_bytes(bytes, len, "key") }?)?;
        // SAFETY: per the contract above.
        unsafe { hand_out(key_out, SixcastPublicKey { inner }) }
    })
}

/// Parses the text of a public key file (`sixcast-public-key-v1 <key>`).
///
/// # Safety
/// `text` is a NUL-terminated string; `key_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_public_key_from_file_text(
    text: *const c_char,
    key_out: *mut *mut SixcastPublicKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let inner = crypto::PublicKey::from_file_text(unsafe { text::arg(text, "text") }?)?;
        // SAFETY: per the contract above.
        unsafe { hand_out(key_out, SixcastPublicKey { inner }) }
    })
}

/// The public key file text in `*text_out` (free it with `sixcast_string_free`).
///
/// # Safety
/// `key` is a live key; `text_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_public_key_to_file_text(
    key: *const SixcastPublicKey,
    text_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let key = unsafe { text::handle(key, "key") }?;
        // SAFETY: per the contract above.
        unsafe { text::store_text(text_out, key.inner.to_file_text(), "text_out") }
    })
}

/// Copies the key's 32 bytes to `bytes_out`.
///
/// # Safety
/// `key` is a live key; `bytes_out` points to 32 writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_public_key_to_bytes(
    key: *const SixcastPublicKey,
    bytes_out: *mut u8,
) -> SixcastStatus {
    guard(std::ptr::null_mut(), || {
        // SAFETY: per the contract above.
        let key = unsafe { text::handle(key, "key") }?;
        // SAFETY: per the contract above.
        unsafe {
            text::store(
                bytes_out.cast::<[u8; 32]>(),
                key.inner.to_bytes(),
                "bytes_out",
            )
        }
    })
}

/// The key's fingerprint, 16 hex digits, carried in signed datagrams. Free it with
/// `sixcast_string_free`; NULL for NULL.
///
/// # Safety
/// `key` is NULL or a live key.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_public_key_fingerprint(
    key: *const SixcastPublicKey,
) -> *mut c_char {
    // SAFETY: per the contract above.
    unsafe { key.as_ref() }.map_or(std::ptr::null_mut(), |key| {
        text::owned(key.inner.fingerprint().to_string())
    })
}

/// Frees a public key. NULL is ignored.
///
/// # Safety
/// `key` is NULL or a public key from this library, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_public_key_free(key: *mut SixcastPublicKey) {
    // SAFETY: per the contract above.
    unsafe { free(key) };
}

/// Issues, signed with `issuer`, a token for `subject` on the channel of canonical group
/// `group` (`sixcast_channel_group`), valid through `not_after` (Unix seconds).
///
/// # Safety
/// `issuer` and `subject` are live keys; `group` is a NUL-terminated string; `token_out` is
/// writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_token_issue(
    issuer: *const SixcastSigningKey,
    subject: *const SixcastPublicKey,
    group: *const c_char,
    not_after: u64,
    token_out: *mut *mut SixcastToken,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let (issuer, subject, group) = unsafe {
            (
                text::handle(issuer, "issuer")?,
                text::handle(subject, "subject")?,
                text::arg(group, "group")?,
            )
        };
        let not_after = SystemTime::UNIX_EPOCH
            .checked_add(Duration::from_secs(not_after))
            .ok_or_else(|| {
                sixcast::Error::new(
                    ErrorKind::InvalidConfig,
                    format!("{not_after} s after the Unix epoch is beyond this platform's clock"),
                )
            })?;
        let inner = crypto::Token::issue(
            &issuer.inner,
            subject.inner,
            parse_address(group)?,
            not_after,
        );
        // SAFETY: per the contract above.
        unsafe { hand_out(token_out, SixcastToken { inner }) }
    })
}

/// Parses the text of a token file (`sixcast-token-v1 <token>`).
///
/// # Safety
/// `text` is a NUL-terminated string; `token_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_token_from_file_text(
    text: *const c_char,
    token_out: *mut *mut SixcastToken,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let inner = crypto::Token::from_file_text(unsafe { text::arg(text, "text") }?)?;
        // SAFETY: per the contract above.
        unsafe { hand_out(token_out, SixcastToken { inner }) }
    })
}

/// The token file text in `*text_out` (free it with `sixcast_string_free`).
///
/// # Safety
/// `token` is a live token; `text_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_token_to_file_text(
    token: *const SixcastToken,
    text_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let token = unsafe { text::handle(token, "token") }?;
        // SAFETY: per the contract above.
        unsafe { text::store_text(text_out, token.inner.to_file_text(), "text_out") }
    })
}

/// Frees a token. NULL is ignored.
///
/// # Safety
/// `token` is NULL or a token from this library, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_token_free(token: *mut SixcastToken) {
    // SAFETY: per the contract above.
    unsafe { free(token) };
}
