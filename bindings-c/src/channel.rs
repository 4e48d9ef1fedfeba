//! [`SixcastChannel`]: join, send, receive, counters, keys and readiness of one channel.

use std::{ffi::c_char, time::Duration};

use serde_json::{Value, json};

use crate::{
    addr::parse_address,
    crypto::{SixcastChannelKey, SixcastPublicKey, SixcastSigningKey, SixcastToken},
    error::{Failure, Result, SixcastError, SixcastStatus, guard},
    message::{OwnedMessage, SixcastMessage, SixcastStats},
    text,
};

/// A channel of a context. Thread-safe; handles to the same name share one queue.
pub struct SixcastChannel {
    pub(crate) inner: sixcast::Channel,
}

impl SixcastChannel {
    pub(crate) fn new(inner: sixcast::Channel) -> Self {
        Self { inner }
    }
}

/// Runs `body` on the channel behind `channel`, as an exported call.
fn with_channel(
    channel: *const SixcastChannel,
    error_out: *mut *mut SixcastError,
    body: impl FnOnce(&SixcastChannel) -> Result<()>,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: every caller's contract says `channel` is NULL or a live channel.
        body(unsafe { text::handle(channel, "channel") }?)
    })
}

/// Releases the handle. NULL is ignored.
///
/// # Safety
/// `channel` is NULL or a channel from `sixcast_context_channel`, freed once, and no other
/// thread uses it any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_free(channel: *mut SixcastChannel) {
    if !channel.is_null() {
        // SAFETY: per the contract above.
        drop(unsafe { Box::from_raw(channel) });
    }
}

/// The channel's name. Free it with `sixcast_string_free`; NULL for a NULL channel.
///
/// # Safety
/// `channel` is NULL or a live channel.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_name(channel: *const SixcastChannel) -> *mut c_char {
    // SAFETY: per the contract above.
    unsafe { channel.as_ref() }.map_or(std::ptr::null_mut(), |channel| {
        text::owned(String::from_utf8_lossy(channel.inner.name()))
    })
}

/// The group the channel's traffic is sent to, as text. Free it with `sixcast_string_free`;
/// NULL for a NULL channel.
///
/// # Safety
/// `channel` is NULL or a live channel.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_group(channel: *const SixcastChannel) -> *mut c_char {
    // SAFETY: per the contract above.
    unsafe { channel.as_ref() }.map_or(std::ptr::null_mut(), |channel| {
        text::owned(channel.inner.group().to_string())
    })
}

/// The group relays re-send this channel's traffic to. Free it with `sixcast_string_free`;
/// NULL for the librecast profile, which has none.
///
/// # Safety
/// `channel` is NULL or a live channel.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_relayed_group(
    channel: *const SixcastChannel,
) -> *mut c_char {
    // SAFETY: per the contract above.
    unsafe { channel.as_ref() }
        .and_then(|channel| channel.inner.relayed_group())
        .map_or(std::ptr::null_mut(), |group| text::owned(group.to_string()))
}

/// Starts receiving the channel from any source on every configured interface.
///
/// # Safety
/// `channel` is a live channel; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_join(
    channel: *const SixcastChannel,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| Ok(channel.inner.join()?))
}

/// Starts receiving the channel from `source` (a unicast IPv6 address as text) only.
///
/// # Safety
/// `channel` is a live channel; `source` is a NUL-terminated string; `error_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_join_source(
    channel: *const SixcastChannel,
    source: *const c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        let source = parse_address(unsafe { text::arg(source, "source") }?)?;
        Ok(channel.inner.join_source(source)?)
    })
}

/// Stops receiving the channel (any-source and source-specific memberships alike).
///
/// # Safety
/// `channel` is a live channel; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_leave(
    channel: *const SixcastChannel,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| Ok(channel.inner.leave()?))
}

/// Queues the `len` bytes at `data` for the channel (copied; NULL is allowed with 0). Small
/// messages are packed together and large ones fragmented; datagrams leave within the
/// configured linger time or at `sixcast_channel_flush`. Fails with
/// `SIXCAST_STATUS_MESSAGE_TOO_LARGE` above the configured maximum message size. Blocks while
/// the send rate or a reliable channel's flow window holds the message back; see
/// `sixcast_channel_send_timeout` and `sixcast_channel_try_send`.
///
/// # Safety
/// `channel` is a live channel; `data` points to `len` readable bytes; `error_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_send(
    channel: *const SixcastChannel,
    data: *const u8,
    len: usize,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        Ok(channel
            .inner
            .send(unsafe { text::bytes(data, len, "data") }?)?)
    })
}

/// As `sixcast_channel_send`, but waits at most `timeout_ms` milliseconds (negative: no limit)
/// for the send rate's turn (`send_rate_messages`, `send_rate_bytes`) and for a reliable
/// channel's flow window; fails with `SIXCAST_STATUS_TIMEOUT`, queueing nothing of the
/// message, if either comes later (ZeroMQ's send timeout). Blocks the calling thread.
///
/// # Safety
/// `channel` is a live channel; `data` points to `len` readable bytes; `error_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_send_timeout(
    channel: *const SixcastChannel,
    data: *const u8,
    len: usize,
    timeout_ms: i64,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        let payload = unsafe { text::bytes(data, len, "data") }?;
        Ok(match u64::try_from(timeout_ms) {
            Ok(ms) => channel
                .inner
                .send_timeout(payload, Duration::from_millis(ms)),
            Err(_) => channel.inner.send(payload),
        }?)
    })
}

/// As `sixcast_channel_send`, but never waits: fails with `SIXCAST_STATUS_TIMEOUT`, queueing
/// nothing, when the send rate or a reliable channel's flow window would make
/// `sixcast_channel_send` wait (ZeroMQ's `DONTWAIT`).
///
/// # Safety
/// `channel` is a live channel; `data` points to `len` readable bytes; `error_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_try_send(
    channel: *const SixcastChannel,
    data: *const u8,
    len: usize,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        Ok(channel
            .inner
            .try_send(unsafe { text::bytes(data, len, "data") }?)?)
    })
}

/// Sends what waits (the partly filled datagram, a batch) now.
///
/// # Safety
/// `channel` is a live channel; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_flush(
    channel: *const SixcastChannel,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| Ok(channel.inner.flush()?))
}

/// Waits for the next message, at most `timeout_ms` milliseconds (negative: no limit), and
/// stores it in `*message_out` (free it with `sixcast_message_free`). Blocks the calling
/// thread; fails with `SIXCAST_STATUS_TIMEOUT`, or `CLOSED` once the context is closed and the
/// queue is empty.
///
/// # Safety
/// `channel` is a live channel; `message_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_recv(
    channel: *const SixcastChannel,
    timeout_ms: i64,
    message_out: *mut *mut SixcastMessage,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        if message_out.is_null() {
            return Err(Failure::invalid_argument("message_out is NULL"));
        }
        let received = match u64::try_from(timeout_ms) {
            Ok(ms) => channel.inner.recv_timeout(Duration::from_millis(ms)),
            Err(_) => channel.inner.recv(),
        };
        let message = received?;
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { text::store(message_out, OwnedMessage::into_raw(message), "message_out") }
    })
}

/// Takes the next message if one waits: `*message_out` is the message (free it with
/// `sixcast_message_free`) or NULL when none waits. Fails with `SIXCAST_STATUS_CLOSED` once the
/// context is closed and the queue is empty. Finding the queue empty re-arms the readiness
/// descriptor.
///
/// # Safety
/// `channel` is a live channel; `message_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_try_recv(
    channel: *const SixcastChannel,
    message_out: *mut *mut SixcastMessage,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        if message_out.is_null() {
            return Err(Failure::invalid_argument("message_out is NULL"));
        }
        let message = channel
            .inner
            .try_recv()?
            .map_or(std::ptr::null_mut(), OwnedMessage::into_raw);
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { text::store(message_out, message, "message_out") }
    })
}

/// A file descriptor that polls readable when a message may wait on the channel, for poll,
/// epoll, libuv or libevent: wait for it to be readable, then take messages with
/// `sixcast_channel_try_recv` until it gives NULL (which re-arms it), then wait again. It also
/// becomes readable when the context closes. Never read from it or close it: the channel owns
/// it until its context is gone. Every handle of the channel gives the same descriptor, and no
/// thread stands behind it.
///
/// # Safety
/// `channel` is a live channel; `fd_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_readiness_fd(
    channel: *const SixcastChannel,
    fd_out: *mut i32,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        let fd = channel.inner.readiness_fd()?;
        // SAFETY: per the contract above.
        unsafe { text::store(fd_out, fd, "fd_out") }
    })
}

/// This channel's counters, into `*stats_out`.
///
/// # Safety
/// `channel` is a live channel; `stats_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_stats(
    channel: *const SixcastChannel,
    stats_out: *mut SixcastStats,
) -> SixcastStatus {
    with_channel(channel, std::ptr::null_mut(), |channel| {
        // SAFETY: per the contract above.
        unsafe { text::store(stats_out, channel.inner.stats().into(), "stats_out") }
    })
}

/// Loss per sender, as a JSON array in `*json_out` (free it with `sixcast_string_free`): an
/// object for every sender this channel tracks now (up to 4,096, the least recently heard
/// forgotten first), sorted by node id, with `sender` (16 hex digits), `highest_seq` (the
/// highest sequence number of it delivered or given up; null when none was) and `lost` (its
/// messages never heard: its share of `SixcastStats.lost`, counted the same way).
///
/// # Safety
/// `channel` is a live channel; `json_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_sender_losses_json(
    channel: *const SixcastChannel,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        let json = losses_json(&channel.inner.sender_losses()).to_string();
        // SAFETY: per the contract above.
        unsafe { text::store_text(json_out, json, "json_out") }
    })
}

/// `losses` as the JSON array of `sixcast_channel_sender_losses_json`.
fn losses_json(losses: &[sixcast::SenderLoss]) -> Value {
    losses
        .iter()
        .map(|loss| {
            json!({
                "sender": loss.sender.to_string(),
                "highest_seq": loss.highest_seq,
                "lost": loss.lost,
            })
        })
        .collect()
}

/// Seals everything sent from now on with `key`, and accepts only datagrams sealed with it or
/// a key added with `sixcast_channel_add_key`. The caller still owns `key`.
///
/// # Safety
/// `channel` and `key` are live handles; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_set_key(
    channel: *const SixcastChannel,
    key: *const SixcastChannelKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        Ok(channel
            .inner
            .set_key(&unsafe { text::handle(key, "key") }?.inner)?)
    })
}

/// Accepts datagrams sealed with `key` too, without sending with it: for rotating keys.
///
/// # Safety
/// `channel` and `key` are live handles; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_add_key(
    channel: *const SixcastChannel,
    key: *const SixcastChannelKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        Ok(channel
            .inner
            .add_key(&unsafe { text::handle(key, "key") }?.inner)?)
    })
}

/// Stops accepting datagrams sealed with the key of id `id`; `*removed_out` (when not NULL)
/// says whether the channel held it.
///
/// # Safety
/// `channel` is a live channel; `removed_out` is NULL or writable; `error_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_remove_key(
    channel: *const SixcastChannel,
    id: u32,
    removed_out: *mut bool,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        let removed = channel.inner.remove_key(sixcast::crypto::KeyId(id))?;
        if !removed_out.is_null() {
            // SAFETY: per the contract above.
            unsafe { removed_out.write(removed) };
        }
        Ok(())
    })
}

/// Signs everything sent from now on with `key`.
///
/// # Safety
/// `channel` and `key` are live handles; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_sign_with(
    channel: *const SixcastChannel,
    key: *const SixcastSigningKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        let key = unsafe { text::handle(key, "key") }?.inner.clone();
        Ok(channel.inner.sign_with(key)?)
    })
}

/// Accepts datagrams signed with `key`; from the first trusted key on, only signed ones.
///
/// # Safety
/// `channel` and `key` are live handles; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_trust(
    channel: *const SixcastChannel,
    key: *const SixcastPublicKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        Ok(channel
            .inner
            .trust(unsafe { text::handle(key, "key") }?.inner)?)
    })
}

/// Presents `token` with every signed datagram, so that receivers trusting its issuer accept
/// this channel's signing key until the token expires.
///
/// # Safety
/// `channel` and `token` are live handles; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_present(
    channel: *const SixcastChannel,
    token: *const SixcastToken,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        let token = unsafe { text::handle(token, "token") }?.inner;
        Ok(channel.inner.present(token)?)
    })
}

/// Accepts datagrams signed by any key presenting an unexpired token of `issuer` for this
/// channel; like `sixcast_channel_trust`, makes the channel accept only signed datagrams.
///
/// # Safety
/// `channel` and `issuer` are live handles; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_channel_trust_issuer(
    channel: *const SixcastChannel,
    issuer: *const SixcastPublicKey,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    with_channel(channel, error_out, |channel| {
        // SAFETY: per the contract above.
        Ok(channel
            .inner
            .trust_issuer(unsafe { text::handle(issuer, "issuer") }?.inner)?)
    })
}
