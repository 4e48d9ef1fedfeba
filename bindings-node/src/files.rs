//! Files to every receiver of a channel (the core's `files` module): `channel.sendFile()`
//! (declared with the other `Channel` methods, in `channel`) and `FileReceiver`. Both read or
//! write files and wait for the network, so they run on napi-rs's blocking pool (not libuv's,
//! as `Context.nextEvent` does), never on the JavaScript thread. SHA-256 digests are hex, node
//! ids 16 hex digits, sizes and counters numbers (exact below 2^53).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use napi::{
    Env, Result,
    bindgen_prelude::{FromNapiValue, JsValue, Object, PromiseRaw},
};
use napi_derive::napi;
use sixcast::{
    ErrorKind,
    files::{self, ReceiveOptions, SendOptions},
};

use crate::{
    channel::{Channel, lock},
    config::{invalid, millis_or_forever, whole},
    error::OrThrow,
};

/// How long one wait of a `recv()` without a limit lasts before it waits again: the core takes
/// finite timeouts only.
const UNLIMITED_SLICE: Duration = Duration::from_secs(3600);

/// Options of `channel.sendFile()`.
#[napi(object, object_to_js = false)]
pub struct SendFileOptions {
    /// How many times the whole file is sent (default 1): receivers that joined late complete it
    /// in a later pass.
    pub passes: Option<f64>,
    /// The name receivers give the file; the path's last component when unset.
    pub name: Option<String>,
}

/// Options of `new FileReceiver()`.
#[napi(object, object_to_js = false)]
pub struct FileReceiverOptions {
    /// Offers of larger files, in bytes, are refused (default: no limit).
    pub max_size: Option<f64>,
    /// Most files received at once (default 16); offers beyond are refused.
    pub max_transfers: Option<f64>,
}

/// What `channel.sendFile()` sent.
#[napi(object, object_from_js = false)]
pub struct SentFile {
    /// The name receivers give the file.
    pub name: String,
    /// Its length in bytes.
    pub size: f64,
    /// Its SHA-256, hex.
    pub sha256: String,
    /// Bytes per message (each travels whole in one datagram).
    pub chunk: u32,
}

impl From<files::SentFile> for SentFile {
    fn from(sent: files::SentFile) -> Self {
        Self {
            name: sent.name,
            size: sent.size as f64,
            sha256: hex::encode(sent.sha256),
            chunk: sent.chunk,
        }
    }
}

/// How a transfer ended at a `FileReceiver`. `complete`: the file is whole, its SHA-256
/// checked, and named `path` (with `sha256`, `sender` and `resumed` set). Not `complete`: its
/// sender finished before all of it arrived (`missing` bytes); what arrived is kept and
/// completed by a later sending of the same file.
#[napi(object, object_from_js = false)]
pub struct FileOutcome {
    /// Whether the file arrived whole.
    pub complete: bool,
    /// The file's name, as its sender gave it.
    pub name: String,
    /// Its length in bytes.
    pub size: f64,
    /// Where the file is now (complete).
    pub path: Option<String>,
    /// Its SHA-256, hex (complete).
    pub sha256: Option<String>,
    /// The node id of its sender (complete).
    pub sender: Option<String>,
    /// Bytes an earlier receiver had kept, not received this time (complete).
    pub resumed: Option<f64>,
    /// Bytes still missing (not complete).
    pub missing: Option<f64>,
}

impl From<files::FileOutcome> for FileOutcome {
    fn from(outcome: files::FileOutcome) -> Self {
        match outcome {
            files::FileOutcome::Complete(file) => Self {
                complete: true,
                name: file.name,
                size: file.size as f64,
                path: Some(file.path.to_string_lossy().into_owned()),
                sha256: Some(hex::encode(file.sha256)),
                sender: Some(file.sender.to_string()),
                resumed: Some(file.resumed as f64),
                missing: None,
            },
            files::FileOutcome::Incomplete(partial) => Self {
                complete: false,
                name: partial.name,
                size: partial.size as f64,
                path: None,
                sha256: None,
                sender: None,
                resumed: None,
                missing: Some(partial.missing as f64),
            },
        }
    }
}

/// What a `FileReceiver` saw.
#[napi(object, object_from_js = false)]
pub struct FileStats {
    /// Messages that were file frames.
    pub frames: f64,
    /// Messages that were not (other traffic on the channel).
    pub other_messages: f64,
    /// File frames that did not decode, or whose chunk is not one of its file's.
    pub malformed: f64,
    /// Offers refused: too large, too many transfers at once, or a name being received already.
    pub refused: f64,
    /// Frames of no transfer this receiver follows (heard before the offer, or after the end).
    pub unfollowed: f64,
    /// Chunks written.
    pub chunks: f64,
    /// Chunks held already (a later pass).
    pub duplicate_chunks: f64,
}

impl From<files::FileStats> for FileStats {
    fn from(stats: files::FileStats) -> Self {
        Self {
            frames: stats.frames as f64,
            other_messages: stats.other_messages as f64,
            malformed: stats.malformed as f64,
            refused: stats.refused as f64,
            unfollowed: stats.unfollowed as f64,
            chunks: stats.chunks as f64,
            duplicate_chunks: stats.duplicate_chunks as f64,
        }
    }
}

/// `channel.sendFile(path, options)`: the core's `send_file` on the blocking pool. Bad options
/// reject, as the failures of the sending do.
pub(crate) fn send_file<'env>(
    env: &'env Env,
    channel: &sixcast::Channel,
    path: String,
    options: Option<Object>,
) -> Result<PromiseRaw<'env, SentFile>> {
    let options = send_options(options);
    let channel = channel.clone();
    let sent = async move {
        match options {
            Ok(options) => tokio::task::spawn_blocking(move || {
                files::send_file(&channel, &PathBuf::from(path), &options, &mut |_| {})
            })
            .await
            .map_err(|err| napi::Error::from_reason(format!("sending the file failed: {err}"))),
            Err(err) => Ok(Err(err)),
        }
    };
    env.spawn_future_with_callback(sent, |env, sent| sent.map(SentFile::from).or_throw(env))
}

fn send_options(options: Option<Object>) -> sixcast::Result<SendOptions> {
    let mut converted = SendOptions::default();
    let Some(options) = checked::<SendFileOptions>(options, &["passes", "name"])? else {
        return Ok(converted);
    };
    if let Some(passes) = options.passes {
        converted.passes = whole("passes", passes, u32::MAX)?;
    }
    converted.name = options.name;
    Ok(converted)
}

/// Receives files sent with `channel.sendFile()` into a folder. It does not join: join the
/// channel it receives from. A file arrives as `.NAME.sixcast-part` beside
/// `.NAME.sixcast-state` and is renamed NAME once its SHA-256 matches; what arrived of an
/// unfinished file is kept, and a later receiver in the same folder resumes it.
#[napi]
pub struct FileReceiver {
    inner: Arc<Mutex<files::FileReceiver>>,
    /// The counters as the last `recv()` left them, so that `stats()` never waits for a
    /// pending one.
    stats: Arc<Mutex<files::FileStats>>,
}

#[napi]
impl FileReceiver {
    /// Receives into `dir`, which must be an existing folder (else ERR_SIXCAST_INVALID_CONFIG).
    /// Options: `maxSize` (bytes; larger offers are refused; default no limit) and
    /// `maxTransfers` (files received at once; default 16).
    #[napi(
        constructor,
        ts_args_type = "dir: string, options?: FileReceiverOptions"
    )]
    pub fn new(env: Env, dir: String, options: Option<Object>) -> Result<Self> {
        let inner = receive_options(options)
            .and_then(|options| files::FileReceiver::new(dir, options))
            .or_throw(&env)?;
        Ok(Self {
            stats: Arc::new(Mutex::new(inner.stats())),
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    /// Receives from `channel` until a transfer ends, and resolves with how it ended. Rejects
    /// with ERR_SIXCAST_TIMEOUT when none ended within `timeoutMs` (no limit when unset; what
    /// arrived is kept and resumed by the next call), ERR_SIXCAST_MALFORMED when a whole file
    /// does not match its SHA-256, ERR_SIXCAST_IO when the folder cannot be written and
    /// ERR_SIXCAST_CLOSED when the context closes. Receives of one receiver take turns.
    #[napi(ts_return_type = "Promise<FileOutcome>")]
    pub fn recv<'env>(
        &self,
        env: &'env Env,
        channel: &Channel,
        timeout_ms: Option<f64>,
    ) -> Result<PromiseRaw<'env, FileOutcome>> {
        // The limit counts from this call, even when another receive holds the receiver first.
        let deadline = timeout_ms.map_or(Ok(None), |ms| {
            millis_or_forever("timeoutMs", ms)
                .map(|timeout| timeout.and_then(|timeout| Instant::now().checked_add(timeout)))
        });
        let (receiver, stats) = (Arc::clone(&self.inner), Arc::clone(&self.stats));
        let channel = channel.inner.clone();
        let received = async move {
            match deadline {
                Ok(deadline) => tokio::task::spawn_blocking(move || {
                    let mut receiver = lock(&receiver);
                    let outcome = receive(&mut receiver, &channel, deadline);
                    *lock(&stats) = receiver.stats();
                    outcome
                })
                .await
                .map_err(|err| {
                    napi::Error::from_reason(format!("receiving the file failed: {err}"))
                }),
                Err(err) => Ok(Err(err)),
            }
        };
        env.spawn_future_with_callback(received, |env, outcome| {
            outcome.map(FileOutcome::from).or_throw(env)
        })
    }

    /// What this receiver saw, as the last `recv()` that ended left it.
    #[napi]
    pub fn stats(&self) -> FileStats {
        (*lock(&self.stats)).into()
    }
}

/// The core's `recv` until `deadline`, or until a transfer ends when there is none.
fn receive(
    receiver: &mut files::FileReceiver,
    channel: &sixcast::Channel,
    deadline: Option<Instant>,
) -> sixcast::Result<files::FileOutcome> {
    loop {
        let timeout = deadline.map_or(UNLIMITED_SLICE, |deadline| {
            deadline.saturating_duration_since(Instant::now())
        });
        match receiver.recv(channel, timeout, &mut |_| {}) {
            Err(err) if err.kind() == ErrorKind::Timeout && deadline.is_none() => {}
            outcome => return outcome,
        }
    }
}

fn receive_options(options: Option<Object>) -> sixcast::Result<ReceiveOptions> {
    let mut converted = ReceiveOptions::default();
    let Some(options) = checked::<FileReceiverOptions>(options, &["maxSize", "maxTransfers"])?
    else {
        return Ok(converted);
    };
    if let Some(max_size) = options.max_size {
        converted.max_size = whole("maxSize", max_size, u64::MAX)?;
    }
    if let Some(max_transfers) = options.max_transfers {
        converted.max_transfers = whole("maxTransfers", max_transfers, usize::MAX)?;
    }
    Ok(converted)
}

/// An options object as `T`, checked as the context's options are: unknown keys and values of
/// the wrong type are InvalidConfig errors.
fn checked<T: FromNapiValue>(options: Option<Object>, keys: &[&str]) -> sixcast::Result<Option<T>> {
    let Some(object) = options else {
        return Ok(None);
    };
    let present = Object::keys(&object).map_err(|err| invalid(err.reason))?;
    if let Some(unknown) = present.iter().find(|key| !keys.contains(&key.as_str())) {
        return Err(invalid(format!(
            "unknown option {unknown:?}; the options are {}",
            keys.join(", ")
        )));
    }
    T::from_unknown(object.to_unknown())
        .map(Some)
        .map_err(|err| {
            invalid(format!(
                "the options do not have the right types: {}",
                err.reason
            ))
        })
}
