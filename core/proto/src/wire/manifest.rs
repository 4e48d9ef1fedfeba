//! MANIFEST datagrams: one signature for many datagrams (`docs/security.md`, section 7).
//!
//! A signing sender that sends datagrams in a batch leaves them unsigned, marked
//! [`FLAG_COVERED`](super::FLAG_COVERED), and follows them with a MANIFEST: the digests of the
//! datagrams it covers, itself signed like any datagram. A receiver that requires signatures
//! holds a covered datagram until a manifest it has verified lists the datagram's digest. The
//! digest is computed by [`crate::crypto::digest`]; this module only lays the bytes out.
//!
//! Layout: the common header (type [`TYPE_MANIFEST`], count = number of digests, sender, seq =
//! the sender's manifest number), then `count` digests of [`DIGEST_LEN`] bytes. Nothing else.

use super::{DecodeError, HEADER_LEN, NodeId, VERSION, read_header, write_header};

/// Datagram type of a manifest.
pub const TYPE_MANIFEST: u8 = 7;
/// Bytes of one digest.
pub const DIGEST_LEN: usize = 16;
/// Most digests one manifest lists: a receiver holds at most this many datagrams per manifest
/// it waits for.
pub const MAX_DIGESTS: usize = 256;

/// The digest of one covered datagram.
pub type Digest = [u8; DIGEST_LEN];

/// A decoded manifest (plain: opened first when it came sealed or signed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest<'a> {
    /// The node that sent it and the datagrams it covers.
    pub sender: NodeId,
    /// The sender's count of manifests; a repeated copy has the same number.
    pub number: u64,
    digests: &'a [u8],
}

impl<'a> Manifest<'a> {
    /// The digests, in the order their datagrams were sent.
    pub fn digests(&self) -> impl ExactSizeIterator<Item = Digest> + 'a {
        self.digests.chunks_exact(DIGEST_LEN).map(|chunk| {
            let mut digest = [0; DIGEST_LEN];
            digest.copy_from_slice(chunk);
            digest
        })
    }
}

/// Whether `datagram` claims to be a manifest. Checks no more than its first four bytes.
pub fn is_manifest(datagram: &[u8]) -> bool {
    matches!(datagram, [b'6', b'c', VERSION, TYPE_MANIFEST, ..])
}

/// Writes a manifest of `digests` (1 to [`MAX_DIGESTS`]; the caller keeps to it).
pub fn encode(out: &mut Vec<u8>, sender: NodeId, number: u64, digests: &[Digest]) {
    out.reserve(HEADER_LEN + digests.len() * DIGEST_LEN);
    let count = u16::try_from(digests.len()).unwrap_or(u16::MAX);
    write_header(out, TYPE_MANIFEST, count, sender, number);
    for digest in digests {
        out.extend_from_slice(digest);
    }
}

/// Parses a plain manifest. Never panics and never allocates.
///
/// Checks the header (its flags must be clear: [`crate::crypto::Protection::open`] clears them),
/// a count of `1..=`[`MAX_DIGESTS`], and exactly that many digests after it.
pub fn decode(datagram: &[u8]) -> Result<Manifest<'_>, DecodeError> {
    let header = read_header(datagram, |kind| kind == TYPE_MANIFEST)?;
    if header.flags != 0 {
        return Err(DecodeError::Protected);
    }
    let count = usize::from(header.count);
    if !(1..=MAX_DIGESTS).contains(&count) {
        return Err(DecodeError::BadCount);
    }
    let digests = &datagram[HEADER_LEN..];
    match digests.len().cmp(&(count * DIGEST_LEN)) {
        std::cmp::Ordering::Less => Err(DecodeError::Truncated),
        std::cmp::Ordering::Greater => Err(DecodeError::TrailingBytes),
        std::cmp::Ordering::Equal => Ok(Manifest {
            sender: header.sender,
            number: header.seq,
            digests,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SENDER: NodeId = NodeId(0x0123_4567_89ab_cdef);

    fn manifest(digests: &[Digest]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, SENDER, 9, digests);
        out
    }

    #[test]
    fn a_manifest_decodes_to_its_digests_in_order() {
        let digests = [[1; DIGEST_LEN], [2; DIGEST_LEN], [3; DIGEST_LEN]];
        let bytes = manifest(&digests);
        assert!(is_manifest(&bytes));
        assert_eq!(bytes.len(), HEADER_LEN + 3 * DIGEST_LEN);
        let decoded = decode(&bytes).unwrap();
        assert_eq!((decoded.sender, decoded.number), (SENDER, 9));
        assert_eq!(decoded.digests().collect::<Vec<_>>(), digests);
    }

    #[test]
    fn counts_lengths_and_flags_are_checked() {
        let digests = [[1; DIGEST_LEN], [2; DIGEST_LEN]];
        let bytes = manifest(&digests);
        assert_eq!(
            decode(&bytes[..bytes.len() - 1]),
            Err(DecodeError::Truncated)
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(DecodeError::TrailingBytes));
        assert_eq!(decode(&manifest(&[])), Err(DecodeError::BadCount));
        let too_many = vec![[0; DIGEST_LEN]; MAX_DIGESTS + 1];
        assert_eq!(decode(&manifest(&too_many)), Err(DecodeError::BadCount));
        assert!(decode(&manifest(&too_many[..MAX_DIGESTS])).is_ok());
        let mut sealed = bytes.clone();
        sealed[super::super::FLAGS_FIELD] = super::super::FLAG_SEALED;
        assert_eq!(decode(&sealed), Err(DecodeError::Protected));
        let mut other = bytes;
        other[3] = super::super::TYPE_MESSAGES;
        assert!(!is_manifest(&other));
        assert_eq!(decode(&other), Err(DecodeError::UnknownType(1)));
    }
}
