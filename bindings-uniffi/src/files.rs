//! Files to every receiver of a channel at once (the core's `files` module, `docs/files.md`):
//! `Channel.send_file`, and a [`FileReceiver`] that writes what a channel carries into a folder.

use std::{path::Path, sync::Arc, time::Duration};

use parking_lot::Mutex;
use sixcast::files;

use crate::{channel::Channel, error::Result};

/// How long a receive without a limit waits: what the core's other receives take for no limit.
const NO_LIMIT: Duration = Duration::from_secs(u32::MAX as u64);

/// What `Channel.send_file` sent.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SentFile {
    /// The name receivers give it.
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its SHA-256, 64 hex digits.
    pub sha256: String,
    /// Bytes per DATA frame.
    pub chunk: u32,
}

impl From<files::SentFile> for SentFile {
    fn from(sent: files::SentFile) -> Self {
        Self {
            name: sent.name,
            size: sent.size,
            sha256: hex::encode(sent.sha256),
            chunk: sent.chunk,
        }
    }
}

/// How a transfer ended at a `FileReceiver`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum FileOutcome {
    /// The file is whole, its SHA-256 checked, and named.
    Complete {
        /// Its name, as the sender gave it.
        name: String,
        /// Where it is now: `name` in the receiver's folder.
        path: String,
        /// Its length in bytes.
        size: u64,
        /// Its SHA-256, 64 hex digits.
        sha256: String,
        /// The node that sent it, 16 hex digits.
        sender: String,
        /// Bytes that an earlier receiver had kept (resumed), not received this time.
        resumed: u64,
    },
    /// The sender finished its last pass before this receiver held all of the file (it joined
    /// late); what it holds is kept for a later sending of the same file.
    Incomplete {
        /// Its name, as the sender gave it.
        name: String,
        /// Its length in bytes.
        size: u64,
        /// Bytes still missing.
        missing: u64,
    },
}

impl From<files::FileOutcome> for FileOutcome {
    fn from(outcome: files::FileOutcome) -> Self {
        match outcome {
            files::FileOutcome::Complete(file) => Self::Complete {
                name: file.name,
                path: file.path.display().to_string(),
                size: file.size,
                sha256: hex::encode(file.sha256),
                sender: file.sender.to_string(),
                resumed: file.resumed,
            },
            files::FileOutcome::Incomplete(partial) => Self::Incomplete {
                name: partial.name,
                size: partial.size,
                missing: partial.missing,
            },
        }
    }
}

/// What a `FileReceiver` saw.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FileStats {
    /// Messages that were file frames.
    pub frames: u64,
    /// Messages that were not file frames (other traffic on the channel).
    pub other_messages: u64,
    /// File frames that did not decode, or whose chunk is not one of its file's.
    pub malformed: u64,
    /// Offers refused: too large, too many transfers at once, or a name being received already.
    pub refused: u64,
    /// DATA and DONE frames of no transfer this receiver follows.
    pub unfollowed: u64,
    /// Chunks written.
    pub chunks: u64,
    /// Chunks held already (a later pass).
    pub duplicate_chunks: u64,
}

impl From<files::FileStats> for FileStats {
    fn from(stats: files::FileStats) -> Self {
        Self {
            frames: stats.frames,
            other_messages: stats.other_messages,
            malformed: stats.malformed,
            refused: stats.refused,
            unfollowed: stats.unfollowed,
            chunks: stats.chunks,
            duplicate_chunks: stats.duplicate_chunks,
        }
    }
}

#[uniffi::export]
impl Channel {
    /// Sends the file at `path` to every receiver of the channel, `passes` times (receivers
    /// that joined late complete it in a later pass), named `name` at the receivers (null: the
    /// path's last component). Blocks the calling thread until every frame was handed to the
    /// channel; on a reliable context (`Config.reliable`) every chunk arrives or its loss is
    /// reported, and closing the context waits for the receivers' last repairs.
    ///
    /// Fails with `InvalidConfig` for a name that is not a plain one (a path, or starting with
    /// '.') or 0 passes, `Io` if the file cannot be read, `MessageTooLarge` if it has too many
    /// chunks for the channel's datagram size, and as `send` does.
    #[uniffi::method(default(passes = 1, name = None))]
    pub fn send_file(&self, path: String, passes: u32, name: Option<String>) -> Result<SentFile> {
        let mut options = files::SendOptions::default();
        options.passes = passes;
        options.name = name;
        Ok(files::send_file(&self.inner, Path::new(&path), &options, &mut |_| {})?.into())
    }
}

/// Receives files sent with `Channel.send_file` into a folder: each is written as it arrives
/// (`.NAME.sixcast-part`), checked against its SHA-256, and only then named. The channel it
/// receives from must be joined; a receiver takes every message of the channel, counting those
/// that are not files in `stats().other_messages`. Thread-safe, one receive at a time: `stats`
/// waits for a receive in progress.
#[derive(Debug, uniffi::Object)]
pub struct FileReceiver {
    inner: Mutex<files::FileReceiver>,
}

#[uniffi::export]
impl FileReceiver {
    /// Receives into the folder `dir`, which must exist; offers of files larger than
    /// `max_size` bytes (null: no limit), or beyond `max_transfers` at once, are refused.
    /// Fails with `InvalidConfig` if `dir` is not a folder.
    #[uniffi::constructor(default(max_size = None, max_transfers = 16))]
    pub fn new(dir: String, max_size: Option<u64>, max_transfers: u32) -> Result<Self> {
        let mut options = files::ReceiveOptions::default();
        if let Some(max_size) = max_size {
            options.max_size = max_size;
        }
        options.max_transfers = usize::try_from(max_transfers).unwrap_or(usize::MAX);
        Ok(Self {
            inner: Mutex::new(files::FileReceiver::new(dir, options)?),
        })
    }

    /// Receives from `channel` until a transfer ends, at most `timeout_ms` milliseconds (null:
    /// no limit). Blocks the calling thread. Fails with `Timeout` when no transfer ended in
    /// time (what arrived is kept, and resumed by the next call or receiver), `Malformed` when
    /// a whole file does not match its SHA-256 (it is removed), `Io` when the folder cannot be
    /// written, and as `Channel.recv` does.
    pub fn recv(&self, channel: Arc<Channel>, timeout_ms: Option<u64>) -> Result<FileOutcome> {
        let timeout = timeout_ms.map_or(NO_LIMIT, |ms| Duration::from_millis(ms).min(NO_LIMIT));
        let outcome = self
            .inner
            .lock()
            .recv(&channel.inner, timeout, &mut |_| {})?;
        Ok(outcome.into())
    }

    /// What this receiver saw so far.
    pub fn stats(&self) -> FileStats {
        self.inner.lock().stats().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_is_invalid_config() {
        let error = FileReceiver::new("/nonexistent/sixcast-ffi-files".to_owned(), None, 16)
            .expect_err("no such folder");
        assert!(
            matches!(error, crate::SixcastError::InvalidConfig(_)),
            "{error:?}"
        );
    }
}
