//! The receiver's record of one file: which chunks it holds, checked against the sender's
//! OFFER. No I/O: the caller writes what [`Assembly::accept`] admits.

use super::frame::{FrameError, Offer};

/// What a DATA frame's chunk is to an assembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    /// Not held yet: the caller writes it at its offset.
    New,
    /// Held already (a later pass, or a repeat): nothing to write.
    Held,
}

/// The chunks of one offered file that a receiver holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembly {
    offer: Offer,
    /// One bit per chunk, set when held.
    held: Vec<u64>,
    held_chunks: u64,
    held_bytes: u64,
}

impl Assembly {
    /// Nothing held yet of `offer`'s file.
    pub fn new(offer: Offer) -> Self {
        let words = chunks(&offer).div_ceil(64);
        Self {
            held: vec![0; usize::try_from(words).unwrap_or(usize::MAX)],
            held_chunks: 0,
            held_bytes: 0,
            offer,
        }
    }

    /// What an earlier receiver of the same file kept (`held`, as [`bitmap`](Self::bitmap)
    /// gave it), or None if it does not fit `offer`'s chunks.
    pub fn resume(offer: Offer, held: Vec<u64>) -> Option<Self> {
        let mut assembly = Self::new(offer);
        if held.len() != assembly.held.len() {
            return None;
        }
        let chunks = chunks(&assembly.offer);
        // Bits past the last chunk would count chunks that do not exist.
        if !chunks.is_multiple_of(64) && held.last().is_some_and(|last| last >> (chunks % 64) != 0)
        {
            return None;
        }
        assembly.held = held;
        assembly.held_chunks = assembly
            .held
            .iter()
            .map(|word| u64::from(word.count_ones()))
            .sum();
        assembly.held_bytes = assembly.held_chunks * u64::from(assembly.offer.chunk);
        if let Some(last) = chunks.checked_sub(1).filter(|&last| assembly.holds(last)) {
            // The last chunk is shorter than the others.
            assembly.held_bytes -=
                u64::from(assembly.offer.chunk) - chunk_len(&assembly.offer, last);
        }
        Some(assembly)
    }

    /// The offer this assembly follows.
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Checks a DATA frame's chunk: its offset must start a chunk and its length be that
    /// chunk's (the last one may be shorter). Marks it held.
    pub fn accept(&mut self, offset: u64, len: usize) -> Result<Chunk, FrameError> {
        let chunk = u64::from(self.offer.chunk);
        let index = offset / chunk;
        if !offset.is_multiple_of(chunk) || index >= chunks(&self.offer) {
            return Err(FrameError::BadField);
        }
        if len as u64 != chunk_len(&self.offer, index) {
            return Err(FrameError::BadLength);
        }
        if self.holds(index) {
            return Ok(Chunk::Held);
        }
        self.held[(index / 64) as usize] |= 1 << (index % 64);
        self.held_chunks += 1;
        self.held_bytes += len as u64;
        Ok(Chunk::New)
    }

    /// Whether every chunk is held.
    pub fn complete(&self) -> bool {
        self.held_chunks == chunks(&self.offer)
    }

    /// Bytes of the file held.
    pub fn held_bytes(&self) -> u64 {
        self.held_bytes
    }

    /// Bytes of the file still missing.
    pub fn missing_bytes(&self) -> u64 {
        self.offer.size - self.held_bytes
    }

    /// The held chunks, one bit each (chunk `i` is bit `i % 64` of word `i / 64`).
    pub fn bitmap(&self) -> &[u64] {
        &self.held
    }

    fn holds(&self, index: u64) -> bool {
        self.held[(index / 64) as usize] & (1 << (index % 64)) != 0
    }
}

/// How many chunks `offer`'s file has.
fn chunks(offer: &Offer) -> u64 {
    offer.size.div_ceil(u64::from(offer.chunk))
}

/// The length of chunk `index` of `offer`'s file.
fn chunk_len(offer: &Offer, index: u64) -> u64 {
    let chunk = u64::from(offer.chunk);
    chunk.min(offer.size - index * chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(size: u64, chunk: u32) -> Offer {
        Offer {
            object: 1,
            size,
            chunk,
            pass: 1,
            passes: 1,
            sha256: [0; 32],
            name: "f".into(),
        }
    }

    #[test]
    fn chunks_in_any_order_complete_the_file_once() {
        let mut assembly = Assembly::new(offer(250, 100));
        assert!(!assembly.complete());
        assert_eq!(assembly.accept(200, 50), Ok(Chunk::New));
        assert_eq!(assembly.accept(0, 100), Ok(Chunk::New));
        assert_eq!(assembly.accept(0, 100), Ok(Chunk::Held));
        assert_eq!(assembly.missing_bytes(), 100);
        assert_eq!(assembly.accept(100, 100), Ok(Chunk::New));
        assert!(assembly.complete());
        assert_eq!(assembly.held_bytes(), 250);
    }

    #[test]
    fn misplaced_and_mis_sized_chunks_are_refused_and_change_nothing() {
        let mut assembly = Assembly::new(offer(250, 100));
        assert_eq!(assembly.accept(50, 100), Err(FrameError::BadField));
        assert_eq!(assembly.accept(300, 100), Err(FrameError::BadField));
        assert_eq!(
            assembly.accept(u64::MAX - 99, 100),
            Err(FrameError::BadField)
        );
        assert_eq!(assembly.accept(0, 99), Err(FrameError::BadLength));
        assert_eq!(assembly.accept(200, 100), Err(FrameError::BadLength));
        assert_eq!(assembly.held_bytes(), 0);
    }

    #[test]
    fn an_empty_file_is_complete_at_once() {
        let assembly = Assembly::new(offer(0, 100));
        assert!(assembly.complete());
        assert_eq!(assembly.missing_bytes(), 0);
    }

    #[test]
    fn a_kept_bitmap_resumes_with_its_bytes_and_a_foreign_one_is_refused() {
        let mut first = Assembly::new(offer(6450, 100));
        for offset in [0, 6400, 3200] {
            first
                .accept(offset, if offset == 6400 { 50 } else { 100 })
                .unwrap();
        }
        let resumed = Assembly::resume(offer(6450, 100), first.bitmap().to_vec()).unwrap();
        assert_eq!(resumed, first);
        assert_eq!(resumed.held_bytes(), 250);
        // Another chunk size: another number of words.
        assert_eq!(
            Assembly::resume(offer(6450, 50), first.bitmap().to_vec()),
            None
        );
        // A bit past the last chunk (65 chunks: bit 1 of the second word is chunk 65).
        assert_eq!(Assembly::resume(offer(6450, 100), vec![0, 0b10]), None);
    }
}
