//! Files to every receiver of a channel at once (`docs/files.md`).
//!
//! [`send_file`] sends a file as [`frame`]s, each one message: an OFFER with its name, size and
//! SHA-256, its chunks as DATA, each sized to travel whole in one datagram, and DONE at the end
//! of each pass. A [`FileReceiver`] writes the chunks at their offsets into a partial file,
//! checks the SHA-256 of the whole, and only then gives the file its name. On a reliable
//! channel ([`Config::reliable`](crate::Config::reliable)) every chunk arrives or its loss is
//! reported; a receiver that joined late, or was stopped, completes the file from a later
//! pass or a later sending of the same file, resuming what it kept.

mod assembly;
pub mod frame;
mod store;

use std::{
    collections::{HashMap, VecDeque},
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

pub use assembly::{Assembly, Chunk};
use frame::{DATA_HEADER_LEN, Frame, FrameError, MAX_CHUNKS, MIN_CHUNK, Offer, SHA256_LEN};
use store::Partial;

use crate::{Channel, Error, ErrorKind, Message, NodeId, Result, crypto::random};

/// How often a sender repeats its OFFER within a pass, for receivers that join late.
pub const OFFER_INTERVAL: Duration = Duration::from_secs(1);
/// How often a receiver records the chunks it holds, for a later one to resume from.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);
/// How many finished transfers a receiver remembers, to ignore their later passes.
const REMEMBERED: usize = 64;

/// How [`send_file`] sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendOptions {
    /// How many times the whole file is sent: receivers that missed part of one pass (they
    /// joined late) complete the file in the next. At least 1.
    pub passes: u32,
    /// The name receivers give the file; the path's last component if None.
    pub name: Option<String>,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            passes: 1,
            name: None,
        }
    }
}

/// How far a transfer got, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress<'a> {
    /// The file's name.
    pub name: &'a str,
    /// Its length in bytes.
    pub size: u64,
    /// Bytes sent in this pass, or held by the receiver.
    pub bytes: u64,
    /// The pass, from 1.
    pub pass: u32,
    /// Passes in all.
    pub passes: u32,
}

/// What [`send_file`] sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentFile {
    /// The name receivers give it.
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: [u8; SHA256_LEN],
    /// Bytes per DATA frame.
    pub chunk: u32,
}

/// Sends the file at `path` to every receiver of `channel`: [`OutgoingFile::open`], then
/// [`OutgoingFile::send`].
pub fn send_file(
    channel: &Channel,
    path: &Path,
    options: &SendOptions,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<SentFile> {
    OutgoingFile::open(path, options)?.send(channel, progress)
}

/// A file ready to send: opened, named and hashed.
#[derive(Debug)]
pub struct OutgoingFile {
    file: File,
    path: PathBuf,
    name: String,
    size: u64,
    sha256: [u8; SHA256_LEN],
    passes: u32,
}

impl OutgoingFile {
    /// Opens the file at `path` and computes its SHA-256, without touching the network.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] if `options` are out of range or the file's
    /// name is not a plain one ([`frame::valid_name`]), and [`ErrorKind::Io`] if the file
    /// cannot be read.
    pub fn open(path: &Path, options: &SendOptions) -> Result<Self> {
        let name = match &options.name {
            Some(name) => name.clone(),
            None => path
                .file_name()
                .and_then(|name| name.to_str())
                .unwrap_or_default()
                .to_owned(),
        };
        if !frame::valid_name(&name) || options.passes == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "cannot send {} as {name:?} in {} passes: a file needs a plain name (no \
                     path, not starting with '.') and at least one pass",
                    path.display(),
                    options.passes
                ),
            ));
        }
        let io = |err| Error::io(format!("reading {}", path.display()), err);
        let mut file = File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let sha256 = store::sha256(&mut file).map_err(io)?;
        Ok(Self {
            file,
            path: path.to_owned(),
            name,
            size,
            sha256,
            passes: options.passes,
        })
    }

    /// Sends the file to every receiver of `channel`, each chunk sized to travel whole in one
    /// datagram; returns once every frame was handed to the channel (flushed). `progress` is
    /// called after every chunk.
    ///
    /// Fails with [`ErrorKind::MessageTooLarge`] if the file has more chunks than
    /// [`MAX_CHUNKS`] at this channel's datagram size, [`ErrorKind::Io`] if the file can no
    /// longer be read to its end, and as [`Channel::send`] does.
    pub fn send(
        mut self,
        channel: &Channel,
        progress: &mut dyn FnMut(&Progress<'_>),
    ) -> Result<SentFile> {
        let size = self.size;
        let room = channel.max_whole_message();
        let chunk = u32::try_from(room.saturating_sub(DATA_HEADER_LEN))
            .unwrap_or(u32::MAX)
            .max(MIN_CHUNK);
        if size.div_ceil(u64::from(chunk)) > MAX_CHUNKS {
            return Err(Error::new(
                ErrorKind::MessageTooLarge,
                format!(
                    "{} is {size} bytes: more than {MAX_CHUNKS} chunks of {chunk} bytes; raise \
                     the datagram size",
                    self.path.display()
                ),
            ));
        }
        let path = &self.path;
        let io = |err| Error::io(format!("reading {}", path.display()), err);
        let object = random::u64()?;
        let mut offer = Offer {
            object,
            size,
            chunk,
            pass: 1,
            passes: self.passes,
            sha256: self.sha256,
            name: self.name.clone(),
        };
        let mut message = Vec::with_capacity(DATA_HEADER_LEN + chunk as usize);
        for pass in 1..=self.passes {
            offer.pass = pass;
            send_offer(channel, &offer, &mut message)?;
            let mut offered = Instant::now();
            self.file.seek(SeekFrom::Start(0)).map_err(io)?;
            let mut offset = 0;
            while offset < size {
                let len = u64::from(chunk).min(size - offset);
                message.clear();
                frame::encode_data_header(&mut message, object, offset);
                // At most a chunk: fits usize.
                message.resize(DATA_HEADER_LEN + len as usize, 0);
                self.file
                    .read_exact(&mut message[DATA_HEADER_LEN..])
                    .map_err(io)?;
                channel.send(&message)?;
                offset += len;
                if offered.elapsed() >= OFFER_INTERVAL {
                    send_offer(channel, &offer, &mut message)?;
                    offered = Instant::now();
                }
                progress(&Progress {
                    name: &offer.name,
                    size,
                    bytes: offset,
                    pass,
                    passes: self.passes,
                });
            }
            message.clear();
            frame::encode_done(&mut message, object, pass, self.passes);
            channel.send(&message)?;
        }
        channel.flush()?;
        Ok(SentFile {
            name: offer.name,
            size,
            sha256: self.sha256,
            chunk,
        })
    }
}

fn send_offer(channel: &Channel, offer: &Offer, message: &mut Vec<u8>) -> Result<()> {
    message.clear();
    frame::encode_offer(message, offer);
    channel.send(message)
}

/// How a [`FileReceiver`] receives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceiveOptions {
    /// Offers of larger files are refused (counted in [`FileStats::refused`]).
    pub max_size: u64,
    /// Most files received at once; offers beyond are refused.
    pub max_transfers: usize,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        Self {
            max_size: u64::MAX,
            max_transfers: 16,
        }
    }
}

/// A file received whole, its SHA-256 checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReceivedFile {
    /// Its name, as the sender gave it.
    pub name: String,
    /// Where it is now.
    pub path: PathBuf,
    /// Its length in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: [u8; SHA256_LEN],
    /// The node that sent it.
    pub sender: NodeId,
    /// Bytes not received this time: kept by an earlier receiver (resumed), or the whole
    /// file when the folder held it already (same name, size and SHA-256).
    pub resumed: u64,
}

/// A file whose sender finished its last pass before this receiver held all of it (it joined
/// late); what it holds is kept for a later sending of the same file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartialFile {
    /// Its name, as the sender gave it.
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// Bytes still missing.
    pub missing: u64,
}

/// How a transfer ended at a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOutcome {
    /// The file is whole and named.
    Complete(ReceivedFile),
    /// The sender is done and the file is not whole.
    Incomplete(PartialFile),
}

/// What a [`FileReceiver`] saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStats {
    /// Messages that were file frames.
    pub frames: u64,
    /// Messages that were not file frames (other traffic on the channel).
    pub other_messages: u64,
    /// File frames that did not decode, or whose chunk is not one of its file's.
    pub malformed: u64,
    /// Offers refused: too large, too many transfers at once, or a name being received already.
    pub refused: u64,
    /// DATA and DONE frames of no transfer this receiver follows (heard before the offer, or
    /// after the file was finished).
    pub unfollowed: u64,
    /// Chunks written.
    pub chunks: u64,
    /// Chunks held already (a later pass).
    pub duplicate_chunks: u64,
}

struct Transfer {
    partial: Partial,
    assembly: Assembly,
    sender: NodeId,
    resumed: u64,
    saved_at: Instant,
}

/// Receives files sent with [`send_file`] into a folder.
pub struct FileReceiver {
    dir: PathBuf,
    options: ReceiveOptions,
    transfers: HashMap<u64, Transfer>,
    finished: VecDeque<u64>,
    stats: FileStats,
}

impl FileReceiver {
    /// Receives into the folder `dir`, which must exist.
    ///
    /// Fails with [`ErrorKind::InvalidConfig`] if `dir` is not a folder.
    pub fn new(dir: impl Into<PathBuf>, options: ReceiveOptions) -> Result<Self> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("{} is not a folder to receive files into", dir.display()),
            ));
        }
        Ok(Self {
            dir,
            options,
            transfers: HashMap::new(),
            finished: VecDeque::new(),
            stats: FileStats::default(),
        })
    }

    /// Receives from `channel` until a transfer ends, at most `timeout`. `progress` is called
    /// after every new chunk.
    ///
    /// Fails with [`ErrorKind::Timeout`] when no transfer ended in time (what was received is
    /// kept, and resumed by the next call or receiver), [`ErrorKind::Malformed`] when a whole
    /// file does not match its SHA-256 (it is removed), [`ErrorKind::Io`] when the folder
    /// cannot be written, and as [`Channel::recv_timeout`] does.
    pub fn recv(
        &mut self,
        channel: &Channel,
        timeout: Duration,
        progress: &mut dyn FnMut(&Progress<'_>),
    ) -> Result<FileOutcome> {
        // A timeout too long to add to the clock is no limit.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let wait = deadline.map_or(Duration::from_secs(3600), |deadline| {
                deadline.saturating_duration_since(Instant::now())
            });
            let message = match channel.recv_timeout(wait) {
                Ok(message) => message,
                Err(err) if err.kind() == ErrorKind::Timeout && deadline.is_none() => continue,
                Err(err) => {
                    // Callers that wait in short slices come back often: save what is due only.
                    self.save(Some(Instant::now()));
                    return Err(err);
                }
            };
            if let Some(outcome) = self.handle(&message, Instant::now(), progress)? {
                return Ok(outcome);
            }
        }
    }

    /// Takes one message of the channel; returns how a transfer ended, if this message ended
    /// one. Messages that are not valid frames are counted and ignored.
    pub fn handle(
        &mut self,
        message: &Message,
        now: Instant,
        progress: &mut dyn FnMut(&Progress<'_>),
    ) -> Result<Option<FileOutcome>> {
        let frame = match frame::decode(&message.payload) {
            Ok(frame) => frame,
            Err(FrameError::NotAFrame) => {
                self.stats.other_messages += 1;
                return Ok(None);
            }
            Err(_) => {
                self.stats.frames += 1;
                self.stats.malformed += 1;
                return Ok(None);
            }
        };
        self.stats.frames += 1;
        match frame {
            Frame::Offer(offer) => self.offered(offer, message.sender),
            Frame::Data {
                object,
                offset,
                bytes,
            } => self.data(object, offset, bytes, now, progress),
            Frame::Done {
                object,
                pass,
                passes,
            } => Ok(self.done(object, pass == passes)),
        }
    }

    /// What this receiver saw so far.
    pub fn stats(&self) -> FileStats {
        self.stats
    }

    fn offered(&mut self, offer: Offer, sender: NodeId) -> Result<Option<FileOutcome>> {
        if self.transfers.contains_key(&offer.object) || self.finished.contains(&offer.object) {
            return Ok(None);
        }
        let name_busy = self
            .transfers
            .values()
            .any(|transfer| transfer.assembly.offer().name == offer.name);
        if offer.size > self.options.max_size
            || self.transfers.len() >= self.options.max_transfers
            || name_busy
        {
            self.stats.refused += 1;
            return Ok(None);
        }
        let object = offer.object;
        if store::already_there(&self.dir, &offer) {
            // Sent again to a receiver that has it: nothing to receive.
            self.remember(object);
            return Ok(Some(FileOutcome::Complete(ReceivedFile {
                path: self.dir.join(&offer.name),
                size: offer.size,
                sha256: offer.sha256,
                sender,
                resumed: offer.size,
                name: offer.name,
            })));
        }
        let (partial, assembly) = Partial::open(&self.dir, &offer)?;
        let transfer = Transfer {
            resumed: assembly.held_bytes(),
            partial,
            assembly,
            sender,
            saved_at: Instant::now(),
        };
        if transfer.assembly.complete() {
            return self.finish(object, transfer).map(Some);
        }
        self.transfers.insert(object, transfer);
        Ok(None)
    }

    fn data(
        &mut self,
        object: u64,
        offset: u64,
        bytes: &[u8],
        now: Instant,
        progress: &mut dyn FnMut(&Progress<'_>),
    ) -> Result<Option<FileOutcome>> {
        let Some(transfer) = self.transfers.get_mut(&object) else {
            self.stats.unfollowed += 1;
            return Ok(None);
        };
        match transfer.assembly.accept(offset, bytes.len()) {
            Err(_) => {
                self.stats.malformed += 1;
                return Ok(None);
            }
            Ok(Chunk::Held) => {
                self.stats.duplicate_chunks += 1;
                return Ok(None);
            }
            Ok(Chunk::New) => {}
        }
        transfer.partial.write(offset, bytes)?;
        self.stats.chunks += 1;
        let offer = transfer.assembly.offer();
        progress(&Progress {
            name: &offer.name,
            size: offer.size,
            bytes: transfer.assembly.held_bytes(),
            pass: offer.pass,
            passes: offer.passes,
        });
        if transfer.assembly.complete() {
            let transfer = self.transfers.remove(&object).ok_or_else(|| {
                Error::new(ErrorKind::Io, "a transfer vanished while it was written")
            })?;
            return self.finish(object, transfer).map(Some);
        }
        if now.saturating_duration_since(transfer.saved_at) >= SAVE_INTERVAL {
            transfer.saved_at = now;
            transfer.partial.save(&transfer.assembly)?;
        }
        Ok(None)
    }

    fn done(&mut self, object: u64, last_pass: bool) -> Option<FileOutcome> {
        if !self.transfers.contains_key(&object) {
            self.stats.unfollowed += 1;
            return None;
        }
        if !last_pass {
            return None;
        }
        let transfer = self.transfers.remove(&object)?;
        // Kept for a later sending of the same file; a failed save only loses the head start.
        let _ = transfer.partial.save(&transfer.assembly);
        self.remember(object);
        let offer = transfer.assembly.offer();
        Some(FileOutcome::Incomplete(PartialFile {
            name: offer.name.clone(),
            size: offer.size,
            missing: transfer.assembly.missing_bytes(),
        }))
    }

    fn finish(&mut self, object: u64, transfer: Transfer) -> Result<FileOutcome> {
        self.remember(object);
        let offer = transfer.assembly.offer().clone();
        let path = transfer.partial.finish(&offer)?;
        Ok(FileOutcome::Complete(ReceivedFile {
            name: offer.name,
            path,
            size: offer.size,
            sha256: offer.sha256,
            sender: transfer.sender,
            resumed: transfer.resumed,
        }))
    }

    fn remember(&mut self, object: u64) {
        if self.finished.len() == REMEMBERED {
            self.finished.pop_front();
        }
        self.finished.push_back(object);
    }

    /// Records the chunks of every transfer (of those last recorded [`SAVE_INTERVAL`] before
    /// `due_at`, if given), for a later receiver to resume from.
    fn save(&mut self, due_at: Option<Instant>) {
        for transfer in self.transfers.values_mut() {
            if due_at
                .is_some_and(|now| now.saturating_duration_since(transfer.saved_at) < SAVE_INTERVAL)
            {
                continue;
            }
            // Best effort: a failed save only loses the head start.
            let _ = transfer.partial.save(&transfer.assembly);
            transfer.saved_at = Instant::now();
        }
    }
}

impl Drop for FileReceiver {
    fn drop(&mut self) {
        self.save(None);
    }
}

impl std::fmt::Debug for FileReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileReceiver")
            .field("dir", &self.dir)
            .field("transfers", &self.transfers.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
