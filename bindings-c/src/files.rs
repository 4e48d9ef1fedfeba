//! Files to every receiver of a channel at once (the core's `files` module, `docs/files.md`):
//! `sixcast_send_file`, and a [`SixcastFileReceiver`] that writes what a channel carries into a
//! folder. Results are JSON objects with the other bindings' field names, as
//! `sixcast_context_reachability` reports.

use std::{ffi::c_char, path::Path, time::Duration};

use serde_json::{Value, json};
use sixcast::files;

use crate::{
    channel::SixcastChannel,
    error::{Failure, SixcastError, SixcastStatus, guard},
    text,
};

/// How long a receive without a limit waits: what the core's other receives take for no limit.
const NO_LIMIT: Duration = Duration::from_secs(u32::MAX as u64);

/// A folder that receives files sent with `sixcast_send_file`. Used by one thread at a time,
/// as a `SixcastConfig` is.
pub struct SixcastFileReceiver {
    inner: files::FileReceiver,
}

fn sent_json(sent: &files::SentFile) -> Value {
    json!({
        "name": sent.name,
        "size": sent.size,
        "sha256": hex::encode(sent.sha256),
        "chunk": sent.chunk,
    })
}

fn outcome_json(outcome: &files::FileOutcome) -> Value {
    match outcome {
        files::FileOutcome::Complete(file) => json!({
            "complete": true,
            "name": file.name,
            "path": file.path.display().to_string(),
            "size": file.size,
            "sha256": hex::encode(file.sha256),
            "sender": file.sender.to_string(),
            "resumed": file.resumed,
        }),
        files::FileOutcome::Incomplete(partial) => json!({
            "complete": false,
            "name": partial.name,
            "size": partial.size,
            "missing": partial.missing,
        }),
    }
}

fn stats_json(stats: &files::FileStats) -> Value {
    json!({
        "frames": stats.frames,
        "other_messages": stats.other_messages,
        "malformed": stats.malformed,
        "refused": stats.refused,
        "unfollowed": stats.unfollowed,
        "chunks": stats.chunks,
        "duplicate_chunks": stats.duplicate_chunks,
    })
}

/// Sends the file at `path` (UTF-8) to every receiver of `channel`, `passes` times (receivers
/// that joined late complete it in a later pass), named `name` at the receivers (NULL: the
/// path's last component). Blocks until every frame was handed to the channel; on a reliable
/// context (`reliable` set) every chunk arrives or its loss is reported, and closing the
/// context waits for the receivers' last repairs. Stores what was sent in `*json_out` as a JSON
/// object (free it with `sixcast_string_free`): `name`, `size`, `sha256` (hex) and `chunk`
/// (bytes per DATA frame).
///
/// Fails with `SIXCAST_STATUS_INVALID_CONFIG` for a name that is not a plain one (a path, or
/// starting with '.') or 0 passes, `IO` if the file cannot be read, `MESSAGE_TOO_LARGE` if it
/// has too many chunks for the channel's datagram size, and as `sixcast_channel_send` does.
///
/// # Safety
/// `channel` is a live channel; `path` is a NUL-terminated string; `name` is NULL or one;
/// `json_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_send_file(
    channel: *const SixcastChannel,
    path: *const c_char,
    passes: u32,
    name: *const c_char,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let (channel, path, name) = unsafe {
            (
                text::handle(channel, "channel")?,
                text::arg(path, "path")?,
                text::optional_arg(name, "name")?,
            )
        };
        if json_out.is_null() {
            return Err(Failure::invalid_argument("json_out is NULL"));
        }
        let mut options = files::SendOptions::default();
        options.passes = passes;
        options.name = name.map(str::to_owned);
        let sent = files::send_file(&channel.inner, Path::new(path), &options, &mut |_| {})?;
        // SAFETY: per the contract above.
        unsafe { text::store_text(json_out, sent_json(&sent).to_string(), "json_out") }
    })
}

/// A receiver of files into the folder `dir` (UTF-8), which must exist. Offers of files larger
/// than `max_size` bytes (0: no limit), or beyond `max_transfers` at once (0: 16), are refused.
/// Stores the handle in `*receiver_out`; free it with `sixcast_file_receiver_free`. Fails with
/// `SIXCAST_STATUS_INVALID_CONFIG` if `dir` is not a folder.
///
/// # Safety
/// `dir` is a NUL-terminated string; `receiver_out` is writable; `error_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_file_receiver_new(
    dir: *const c_char,
    max_size: u64,
    max_transfers: u32,
    receiver_out: *mut *mut SixcastFileReceiver,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let dir = unsafe { text::arg(dir, "dir") }?;
        if receiver_out.is_null() {
            return Err(Failure::invalid_argument("receiver_out is NULL"));
        }
        let mut options = files::ReceiveOptions::default();
        if max_size != 0 {
            options.max_size = max_size;
        }
        if max_transfers != 0 {
            options.max_transfers = usize::try_from(max_transfers).unwrap_or(usize::MAX);
        }
        let receiver = Box::new(SixcastFileReceiver {
            inner: files::FileReceiver::new(dir, options)?,
        });
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { text::store(receiver_out, Box::into_raw(receiver), "receiver_out") }
    })
}

/// Records what the receiver holds of unfinished files, for a later receiver to resume from,
/// and releases it. NULL is ignored.
///
/// # Safety
/// `receiver` is NULL or a receiver from `sixcast_file_receiver_new`, freed once, and no other
/// thread uses it any more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_file_receiver_free(receiver: *mut SixcastFileReceiver) {
    if !receiver.is_null() {
        // SAFETY: per the contract above.
        drop(unsafe { Box::from_raw(receiver) });
    }
}

/// Receives from `channel` (which the caller joined) until a transfer ends, at most
/// `timeout_ms` milliseconds (negative: no limit), and stores how it ended in `*json_out` as a
/// JSON object (free it with `sixcast_string_free`): `complete` true with `name`, `path`,
/// `size`, `sha256` (hex), `sender` (16 hex digits) and `resumed` (bytes an earlier receiver
/// kept), or `complete` false with `name`, `size` and `missing` when the sender finished before
/// the file was whole here (what arrived is kept for a later sending). Messages that are not
/// files are counted and passed over. Blocks the calling thread.
///
/// Fails with `SIXCAST_STATUS_TIMEOUT` when no transfer ended in time (what arrived is kept,
/// and resumed by the next call or receiver), `MALFORMED` when a whole file does not match its
/// SHA-256 (it is removed), `IO` when the folder cannot be written, and as
/// `sixcast_channel_recv` does.
///
/// # Safety
/// `receiver` is a live receiver that no other thread uses during the call; `channel` is a
/// live channel; `json_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_file_receiver_recv(
    receiver: *mut SixcastFileReceiver,
    channel: *const SixcastChannel,
    timeout_ms: i64,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let receiver = unsafe { receiver.as_mut() }
            .ok_or_else(|| Failure::invalid_argument("receiver is NULL"))?;
        // SAFETY: per the contract above.
        let channel = unsafe { text::handle(channel, "channel") }?;
        if json_out.is_null() {
            return Err(Failure::invalid_argument("json_out is NULL"));
        }
        let timeout = u64::try_from(timeout_ms)
            .map_or(NO_LIMIT, |ms| Duration::from_millis(ms).min(NO_LIMIT));
        let outcome = receiver.inner.recv(&channel.inner, timeout, &mut |_| {})?;
        // SAFETY: checked not NULL above; writable per the contract.
        unsafe { text::store_text(json_out, outcome_json(&outcome).to_string(), "json_out") }
    })
}

/// What the receiver saw so far, as a JSON object in `*json_out` (free it with
/// `sixcast_string_free`): `frames`, `other_messages`, `malformed`, `refused`, `unfollowed`,
/// `chunks` and `duplicate_chunks`.
///
/// # Safety
/// `receiver` is a live receiver that no other thread uses during the call; `json_out` is
/// writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_file_receiver_stats_json(
    receiver: *const SixcastFileReceiver,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let receiver = unsafe { text::handle(receiver, "receiver") }?;
        let json = stats_json(&receiver.inner.stats()).to_string();
        // SAFETY: per the contract above.
        unsafe { text::store_text(json_out, json, "json_out") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_carry_the_shared_field_names() {
        let mut stats = files::FileStats::default();
        stats.other_messages = 2;
        stats.duplicate_chunks = 5;
        assert_eq!(
            stats_json(&stats),
            json!({"frames": 0, "other_messages": 2, "malformed": 0, "refused": 0,
                   "unfollowed": 0, "chunks": 0, "duplicate_chunks": 5})
        );
    }

    #[test]
    fn a_null_receiver_or_output_is_an_invalid_argument() {
        let mut json = std::ptr::null_mut();
        // SAFETY: NULL handles are refused before anything is read.
        let status = unsafe {
            sixcast_file_receiver_recv(
                std::ptr::null_mut(),
                std::ptr::null(),
                0,
                &raw mut json,
                std::ptr::null_mut(),
            )
        };
        assert_eq!(status, SixcastStatus::InvalidArgument);
        assert!(json.is_null());
    }
}
