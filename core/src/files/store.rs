//! A file being received, on disk: the partial file `.NAME.sixcast-part` in the receiver's
//! folder, written at each chunk's offset, and beside it `.NAME.sixcast-state`, the chunks it
//! holds, so that a later receiver of the same file (same SHA-256, size and chunk size) resumes
//! it. A complete file is checked against its SHA-256 and only then renamed to NAME.

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use ring::digest::{Context as Sha256, SHA256};

use super::{
    assembly::Assembly,
    frame::{Offer, SHA256_LEN},
};
use crate::{Error, ErrorKind, Result};

/// The first bytes of a state file, and its version.
const STATE_MAGIC: &[u8; 8] = b"6cpart01";
const STATE_HEADER_LEN: usize = STATE_MAGIC.len() + SHA256_LEN + 8 + 4;

/// A partial file and its state file.
#[derive(Debug)]
pub(super) struct Partial {
    file: File,
    part: PathBuf,
    state: PathBuf,
    target: PathBuf,
}

impl Partial {
    /// Opens the partial file of `offer` in `dir`, resuming what an earlier receiver of the same
    /// file kept there, or starting anew (a different file of that name is replaced).
    pub(super) fn open(dir: &Path, offer: &Offer) -> Result<(Self, Assembly)> {
        let part = dir.join(format!(".{}.sixcast-part", offer.name));
        let state = dir.join(format!(".{}.sixcast-state", offer.name));
        let target = dir.join(&offer.name);
        let kept = fs::read(&state)
            .ok()
            .and_then(|bytes| kept_chunks(&bytes, offer))
            .filter(|_| part.exists())
            .and_then(|held| Assembly::resume(offer.clone(), held));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&part)
            .map_err(|err| Error::io(format!("opening {}", part.display()), err))?;
        let assembly = match kept {
            Some(assembly) => assembly,
            None => {
                file.set_len(0)
                    .and_then(|()| file.set_len(offer.size))
                    .map_err(|err| Error::io(format!("sizing {}", part.display()), err))?;
                Assembly::new(offer.clone())
            }
        };
        Ok((
            Self {
                file,
                part,
                state,
                target,
            },
            assembly,
        ))
    }

    /// Writes one chunk at its offset.
    pub(super) fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.write_all(bytes))
            .map_err(|err| Error::io(format!("writing {}", self.part.display()), err))
    }

    /// Records which chunks are held, for a later receiver to resume from: written to a
    /// temporary file and renamed, so that a crash leaves the old state or the new one.
    pub(super) fn save(&self, assembly: &Assembly) -> Result<()> {
        let offer = assembly.offer();
        let mut bytes = Vec::with_capacity(STATE_HEADER_LEN + assembly.bitmap().len() * 8);
        bytes.extend_from_slice(STATE_MAGIC);
        bytes.extend_from_slice(&offer.sha256);
        bytes.extend_from_slice(&offer.size.to_be_bytes());
        bytes.extend_from_slice(&offer.chunk.to_be_bytes());
        for word in assembly.bitmap() {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        let temporary = self.state.with_extension("sixcast-state-new");
        // The chunks a state names must be on disk before it names them.
        self.file
            .sync_data()
            .and_then(|()| fs::write(&temporary, &bytes))
            .and_then(|()| fs::rename(&temporary, &self.state))
            .map_err(|err| Error::io(format!("saving {}", self.state.display()), err))
    }

    /// Checks the whole file against `offer`'s SHA-256 and renames it to its name. A file
    /// that does not match is removed with its state: no chunk of it can be trusted.
    pub(super) fn finish(mut self, offer: &Offer) -> Result<PathBuf> {
        let digest = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| sha256(&mut self.file))
            .map_err(|err| Error::io(format!("reading {}", self.part.display()), err))?;
        if digest != offer.sha256 {
            self.discard();
            return Err(Error::new(
                ErrorKind::Malformed,
                format!(
                    "{} arrived whole but its SHA-256 is not the one its sender announced; it \
                     was removed",
                    offer.name
                ),
            ));
        }
        fs::rename(&self.part, &self.target)
            .map_err(|err| Error::io(format!("renaming to {}", self.target.display()), err))?;
        let _ = fs::remove_file(&self.state);
        Ok(self.target)
    }

    fn discard(&self) {
        let _ = fs::remove_file(&self.part);
        let _ = fs::remove_file(&self.state);
    }
}

/// Whether `dir` holds `offer`'s file already: a file of its name, size and SHA-256.
pub(super) fn already_there(dir: &Path, offer: &Offer) -> bool {
    let path = dir.join(&offer.name);
    let same_size = fs::metadata(&path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.len() == offer.size);
    same_size
        && File::open(&path)
            .and_then(|mut file| sha256(&mut file))
            .is_ok_and(|digest| digest == offer.sha256)
}

/// The SHA-256 of what `reader` reads to its end.
pub(super) fn sha256(reader: &mut impl Read) -> std::io::Result<[u8; SHA256_LEN]> {
    let mut context = Sha256::new(&SHA256);
    let mut buffer = vec![0; 1 << 20];
    loop {
        match reader.read(&mut buffer)? {
            0 => break,
            read => context.update(&buffer[..read]),
        }
    }
    let mut digest = [0; SHA256_LEN];
    digest.copy_from_slice(context.finish().as_ref());
    Ok(digest)
}

/// The chunk bitmap of a state file, if the state is of `offer`'s file.
fn kept_chunks(bytes: &[u8], offer: &Offer) -> Option<Vec<u64>> {
    let (header, words) = bytes.split_at_checked(STATE_HEADER_LEN)?;
    let mut expected = Vec::with_capacity(STATE_HEADER_LEN);
    expected.extend_from_slice(STATE_MAGIC);
    expected.extend_from_slice(&offer.sha256);
    expected.extend_from_slice(&offer.size.to_be_bytes());
    expected.extend_from_slice(&offer.chunk.to_be_bytes());
    if header != expected || !words.len().is_multiple_of(8) {
        return None;
    }
    Some(
        words
            .chunks_exact(8)
            .map(|word| u64::from_be_bytes(word.try_into().unwrap_or_default()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sixcast-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn offer_of(content: &[u8]) -> Offer {
        Offer {
            object: 5,
            size: content.len() as u64,
            chunk: 64,
            pass: 1,
            passes: 1,
            sha256: sha256(&mut &content[..]).unwrap(),
            name: "file.bin".into(),
        }
    }

    #[test]
    fn a_kept_partial_resumes_and_completes_to_the_named_file() {
        let dir = folder("resume");
        let content: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        let offer = offer_of(&content);
        let (mut partial, mut assembly) = Partial::open(&dir, &offer).unwrap();
        for offset in [0, 128] {
            let chunk = &content[offset..(offset + 64).min(content.len())];
            assembly.accept(offset as u64, chunk.len()).unwrap();
            partial.write(offset as u64, chunk).unwrap();
        }
        partial.save(&assembly).unwrap();
        drop(partial);

        let (mut partial, mut resumed) = Partial::open(&dir, &offer).unwrap();
        assert_eq!(resumed.held_bytes(), 128);
        for offset in [64, 192] {
            let chunk = &content[offset..(offset + 64).min(content.len())];
            resumed.accept(offset as u64, chunk.len()).unwrap();
            partial.write(offset as u64, chunk).unwrap();
        }
        assert!(resumed.complete());
        let path = partial.finish(&offer).unwrap();
        assert_eq!(fs::read(&path).unwrap(), content);
        let left: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("file.bin")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_state_of_another_file_starts_anew_and_a_wrong_digest_removes_the_partial() {
        let dir = folder("mismatch");
        let content = vec![1u8; 100];
        let offer = offer_of(&content);
        let (mut partial, mut assembly) = Partial::open(&dir, &offer).unwrap();
        assembly.accept(0, 64).unwrap();
        partial.write(0, &content[..64]).unwrap();
        partial.save(&assembly).unwrap();
        drop(partial);
        let mut other = offer.clone();
        other.sha256[0] ^= 1;
        let (mut partial, mut assembly) = Partial::open(&dir, &other).unwrap();
        assert_eq!(assembly.held_bytes(), 0, "the state was of another file");
        for offset in [0u64, 64] {
            let chunk = &content[offset as usize..(offset as usize + 64).min(100)];
            assembly.accept(offset, chunk.len()).unwrap();
            partial.write(offset, chunk).unwrap();
        }
        let err = partial.finish(&other).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Malformed);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0, "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn damaged_state_files_are_not_trusted() {
        let offer = offer_of(&[0; 100]);
        let mut good = Vec::from(&STATE_MAGIC[..]);
        good.extend_from_slice(&offer.sha256);
        good.extend_from_slice(&offer.size.to_be_bytes());
        good.extend_from_slice(&offer.chunk.to_be_bytes());
        good.extend_from_slice(&3u64.to_be_bytes());
        assert_eq!(kept_chunks(&good, &offer), Some(vec![3]));
        for len in 0..good.len() - 8 {
            assert_eq!(kept_chunks(&good[..len], &offer), None, "{len}");
        }
        assert_eq!(kept_chunks(&good[..good.len() - 1], &offer), None);
        let mut other_size = good.clone();
        other_size[STATE_MAGIC.len() + SHA256_LEN + 7] ^= 1;
        assert_eq!(kept_chunks(&other_size, &offer), None);
    }
}
