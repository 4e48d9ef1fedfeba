//! [`SixcastContext`]: one socket, one node id, any number of channels.

use std::ffi::c_char;

use crate::{
    channel::SixcastChannel,
    config::SixcastConfig,
    error::{SixcastError, SixcastStatus, guard},
    message::SixcastStats,
    text,
};

/// A context. Thread-safe: any thread may use it at any time.
pub struct SixcastContext {
    pub(crate) inner: sixcast::Context,
}

/// Opens a context with `config` (NULL: the defaults), which the caller still owns: validates
/// it, binds the UDP port and starts the background threads. Stores the handle in
/// `*context_out`; free it with `sixcast_context_free`. Fails with
/// `SIXCAST_STATUS_INVALID_CONFIG` / `INVALID_ADDRESS` for a bad configuration and
/// `UNKNOWN_INTERFACE` when a named interface, or any usable one, is missing.
///
/// # Safety
/// `config` is NULL or a live configuration; `context_out` is writable; `error_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_open(
    config: *const SixcastConfig,
    context_out: *mut *mut SixcastContext,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        if context_out.is_null() {
            return Err(crate::error::Failure::invalid_argument(
                "context_out is NULL",
            ));
        }
        // SAFETY: per the contract above.
        let config = match unsafe { config.as_ref() } {
            Some(config) => config.to_core()?,
            None => sixcast::Config::default(),
        };
        let context = Box::new(SixcastContext {
            inner: sixcast::Context::new(config)?,
        });
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { text::store(context_out, Box::into_raw(context), "context_out") }
    })
}

/// Sends what is still packed, leaves every group and stops the background threads. Blocked
/// receives fail with `SIXCAST_STATUS_CLOSED`, and so do later calls. Closing twice is
/// harmless; the handle stays valid until `sixcast_context_free`.
///
/// # Safety
/// `context` is NULL or a live context.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_close(context: *const SixcastContext) {
    // SAFETY: per the contract above.
    if let Some(context) = unsafe { context.as_ref() } {
        context.inner.close();
    }
}

/// Releases the handle. The context closes once this handle and every channel of it are freed
/// (or at `sixcast_context_close`). NULL is ignored.
///
/// # Safety
/// `context` is NULL or a context from `sixcast_context_open`, freed once, and no other thread
/// uses it any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_free(context: *mut SixcastContext) {
    if !context.is_null() {
        // SAFETY: per the contract above.
        drop(unsafe { Box::from_raw(context) });
    }
}

/// Whether `sixcast_context_close` was called (true for NULL).
///
/// # Safety
/// `context` is NULL or a live context.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_is_closed(context: *const SixcastContext) -> bool {
    // SAFETY: per the contract above.
    unsafe { context.as_ref() }.is_none_or(|context| context.inner.is_closed())
}

/// This context's node id, 16 hex digits, carried in every datagram it sends. Free it with
/// `sixcast_string_free`; NULL for a NULL context.
///
/// # Safety
/// `context` is NULL or a live context.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_node_id(context: *const SixcastContext) -> *mut c_char {
    // SAFETY: per the contract above.
    unsafe { context.as_ref() }.map_or(std::ptr::null_mut(), |context| {
        text::owned(context.inner.node_id().to_string())
    })
}

/// The UDP port the context is bound to (0 for NULL).
///
/// # Safety
/// `context` is NULL or a live context.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_port(context: *const SixcastContext) -> u16 {
    // SAFETY: per the contract above.
    unsafe { context.as_ref() }.map_or(0, |context| context.inner.port())
}

/// The names of the interfaces the context joins and sends on, comma-separated. Free it with
/// `sixcast_string_free`; NULL for a NULL context.
///
/// # Safety
/// `context` is NULL or a live context.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_interfaces(context: *const SixcastContext) -> *mut c_char {
    // SAFETY: per the contract above.
    unsafe { context.as_ref() }.map_or(std::ptr::null_mut(), |context| {
        text::owned(context.inner.interfaces().join(","))
    })
}

/// Counters summed over every channel, plus datagrams no channel claimed, into `*stats_out`.
///
/// # Safety
/// `context` is a live context; `stats_out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_stats(
    context: *const SixcastContext,
    stats_out: *mut SixcastStats,
) -> SixcastStatus {
    guard(std::ptr::null_mut(), || {
        // SAFETY: per the contract above.
        let context = unsafe { text::handle(context, "context") }?;
        // SAFETY: per the contract above.
        unsafe { text::store(stats_out, context.inner.stats().into(), "stats_out") }
    })
}

/// The channel called `name` (UTF-8), created on first use; the same name gives the same
/// channel and queue. Stores a new handle in `*channel_out`; free it with
/// `sixcast_channel_free`. Fails with `SIXCAST_STATUS_INVALID_NAME` for a name over 4096 bytes
/// and `CLOSED` after `sixcast_context_close`.
///
/// # Safety
/// `context` is a live context; `name` is a NUL-terminated string; `channel_out` is writable;
/// `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_channel(
    context: *const SixcastContext,
    name: *const c_char,
    channel_out: *mut *mut SixcastChannel,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let (context, name) =
            unsafe { (text::handle(context, "context")?, text::arg(name, "name")?) };
        if channel_out.is_null() {
            return Err(crate::error::Failure::invalid_argument(
                "channel_out is NULL",
            ));
        }
        let channel = SixcastChannel::new(context.inner.channel(name)?);
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { text::store(channel_out, Box::into_raw(Box::new(channel)), "channel_out") }
    })
}
