//! The frames of a file transfer, each one message on the channel (`docs/files.md`): an OFFER
//! that names the file, DATA that carries one chunk of it, and DONE at the end of each pass.
//! No I/O; decoding never panics.

use std::fmt;

/// The first bytes of every frame, so that a receiver tells file frames from other messages.
pub const MAGIC: [u8; 4] = *b"6cfl";
/// The version of this frame layout.
pub const VERSION: u8 = 1;
/// Bytes before a frame's own fields: magic, version, kind, two reserved bytes, object id.
pub const FRAME_HEADER_LEN: usize = 16;
/// Bytes of a DATA frame before its chunk.
pub const DATA_HEADER_LEN: usize = FRAME_HEADER_LEN + 8;
/// The longest file name an OFFER carries, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 255;
/// Bytes of a SHA-256 digest.
pub const SHA256_LEN: usize = 32;
/// The smallest chunk an OFFER may announce.
pub const MIN_CHUNK: u32 = 64;
/// The most chunks a file may have: a receiver's record of them stays within 32 MiB.
pub const MAX_CHUNKS: u64 = 1 << 28;

const KIND_OFFER: u8 = 1;
const KIND_DATA: u8 = 2;
const KIND_DONE: u8 = 3;
const OFFER_FIXED_LEN: usize = FRAME_HEADER_LEN + 8 + 4 + 4 + 4 + SHA256_LEN + 2;
const DONE_LEN: usize = FRAME_HEADER_LEN + 8;

/// What a sender tells receivers of one file: sent at the start of every pass and again every
/// second, so that a receiver that joins late learns what the DATA it hears belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Random per transfer: DATA and DONE frames name it.
    pub object: u64,
    /// The file's length in bytes.
    pub size: u64,
    /// Bytes of every DATA frame's chunk but the last.
    pub chunk: u32,
    /// The pass this offer opens or belongs to, from 1.
    pub pass: u32,
    /// How many passes the sender makes in all.
    pub passes: u32,
    /// SHA-256 of the whole file.
    pub sha256: [u8; SHA256_LEN],
    /// The file's name: one path component, checked by [`decode`].
    pub name: String,
}

/// A decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A file is (being) sent.
    Offer(Offer),
    /// One chunk of a file.
    Data {
        /// The transfer, as its offer names it.
        object: u64,
        /// Where the chunk starts in the file.
        offset: u64,
        /// The chunk.
        bytes: &'a [u8],
    },
    /// A pass is over.
    Done {
        /// The transfer, as its offer names it.
        object: u64,
        /// The pass that is over, from 1.
        pass: u32,
        /// Passes in all.
        passes: u32,
    },
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Not a file frame at all (another application's message on the channel).
    NotAFrame,
    /// A frame of a version this library does not know.
    UnknownVersion,
    /// A kind byte other than OFFER, DATA and DONE.
    UnknownKind,
    /// The frame ends before a field it announces, or bytes follow its last field.
    BadLength,
    /// The file name is empty, too long, not UTF-8, or not a single plain path component.
    BadName,
    /// A chunk size under [`MIN_CHUNK`], more than [`MAX_CHUNKS`] chunks, a pass outside
    /// 1..=passes, or (in a DATA frame) a chunk that is not one of the file's.
    BadField,
}

impl FrameError {
    /// A stable name for counters and messages.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::NotAFrame => "not_a_frame",
            Self::UnknownVersion => "unknown_version",
            Self::UnknownKind => "unknown_kind",
            Self::BadLength => "bad_length",
            Self::BadName => "bad_name",
            Self::BadField => "bad_field",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            Self::NotAFrame => "not a file frame",
            Self::UnknownVersion => "a file frame of an unknown version",
            Self::UnknownKind => "a file frame of an unknown kind",
            Self::BadLength => "a file frame of the wrong length",
            Self::BadName => "a file name that is not one plain path component",
            Self::BadField => "a file frame with a field out of range",
        };
        write!(f, "{what} ({})", self.reason())
    }
}

impl std::error::Error for FrameError {}

impl From<FrameError> for crate::Error {
    fn from(err: FrameError) -> Self {
        Self::new(crate::ErrorKind::Malformed, err.to_string())
    }
}

/// Whether `name` may name a file in a receiver's folder: 1 to [`MAX_NAME_LEN`] bytes, not
/// `.` or `..`, without `/`, `\`, NUL or other control characters, and not starting with `.`
/// (which the receiver keeps for its partial files).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && !name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control())
}

fn header(out: &mut Vec<u8>, kind: u8, object: u64) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[VERSION, kind, 0, 0]);
    out.extend_from_slice(&object.to_be_bytes());
}

/// Writes an OFFER. The caller keeps to the limits [`decode`] checks.
pub fn encode_offer(out: &mut Vec<u8>, offer: &Offer) {
    header(out, KIND_OFFER, offer.object);
    out.extend_from_slice(&offer.size.to_be_bytes());
    out.extend_from_slice(&offer.chunk.to_be_bytes());
    out.extend_from_slice(&offer.pass.to_be_bytes());
    out.extend_from_slice(&offer.passes.to_be_bytes());
    out.extend_from_slice(&offer.sha256);
    let name = offer.name.as_bytes();
    out.extend_from_slice(&u16::try_from(name.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(name);
}

/// Writes the header of a DATA frame; the chunk follows it.
pub fn encode_data_header(out: &mut Vec<u8>, object: u64, offset: u64) {
    header(out, KIND_DATA, object);
    out.extend_from_slice(&offset.to_be_bytes());
}

/// Writes a DONE frame.
pub fn encode_done(out: &mut Vec<u8>, object: u64, pass: u32, passes: u32) {
    header(out, KIND_DONE, object);
    out.extend_from_slice(&pass.to_be_bytes());
    out.extend_from_slice(&passes.to_be_bytes());
}

/// Parses one message as a frame.
pub fn decode(message: &[u8]) -> Result<Frame<'_>, FrameError> {
    if message.len() < FRAME_HEADER_LEN || message[..4] != MAGIC {
        return Err(FrameError::NotAFrame);
    }
    if message[4] != VERSION {
        return Err(FrameError::UnknownVersion);
    }
    let object = u64_at(message, 8);
    match message[5] {
        KIND_OFFER => decode_offer(message, object).map(Frame::Offer),
        KIND_DATA if message.len() >= DATA_HEADER_LEN => Ok(Frame::Data {
            object,
            offset: u64_at(message, FRAME_HEADER_LEN),
            bytes: &message[DATA_HEADER_LEN..],
        }),
        KIND_DONE if message.len() == DONE_LEN => {
            let (pass, passes) = (u32_at(message, 16), u32_at(message, 20));
            if !(1..=passes).contains(&pass) {
                return Err(FrameError::BadField);
            }
            Ok(Frame::Done {
                object,
                pass,
                passes,
            })
        }
        KIND_DATA | KIND_DONE => Err(FrameError::BadLength),
        _ => Err(FrameError::UnknownKind),
    }
}

fn decode_offer(message: &[u8], object: u64) -> Result<Offer, FrameError> {
    if message.len() < OFFER_FIXED_LEN {
        return Err(FrameError::BadLength);
    }
    let name_len = usize::from(u16::from_be_bytes([
        message[OFFER_FIXED_LEN - 2],
        message[OFFER_FIXED_LEN - 1],
    ]));
    if message.len() != OFFER_FIXED_LEN + name_len {
        return Err(FrameError::BadLength);
    }
    let name = std::str::from_utf8(&message[OFFER_FIXED_LEN..])
        .ok()
        .filter(|name| valid_name(name))
        .ok_or(FrameError::BadName)?;
    let (chunk, pass, passes) = (
        u32_at(message, 24),
        u32_at(message, 28),
        u32_at(message, 32),
    );
    let size = u64_at(message, 16);
    if chunk < MIN_CHUNK
        || size.div_ceil(u64::from(chunk)) > MAX_CHUNKS
        || !(1..=passes).contains(&pass)
    {
        return Err(FrameError::BadField);
    }
    let mut sha256 = [0; SHA256_LEN];
    sha256.copy_from_slice(&message[36..36 + SHA256_LEN]);
    Ok(Offer {
        object,
        size,
        chunk,
        pass,
        passes,
        sha256,
        name: name.to_owned(),
    })
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut field = [0; 8];
    field.copy_from_slice(&bytes[at..at + 8]);
    u64::from_be_bytes(field)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut field = [0; 4];
    field.copy_from_slice(&bytes[at..at + 4]);
    u32::from_be_bytes(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Offer {
        Offer {
            object: 0x0102_0304_0506_0708,
            size: 10_000,
            chunk: 1000,
            pass: 1,
            passes: 2,
            sha256: [7; SHA256_LEN],
            name: "nginx.conf".into(),
        }
    }

    fn encoded(offer: &Offer) -> Vec<u8> {
        let mut out = Vec::new();
        encode_offer(&mut out, offer);
        out
    }

    #[test]
    fn frames_decode_to_what_was_encoded() {
        assert_eq!(decode(&encoded(&offer())), Ok(Frame::Offer(offer())));
        let mut data = Vec::new();
        encode_data_header(&mut data, 9, 4000);
        data.extend_from_slice(b"chunk");
        assert_eq!(
            decode(&data),
            Ok(Frame::Data {
                object: 9,
                offset: 4000,
                bytes: b"chunk"
            })
        );
        let mut done = Vec::new();
        encode_done(&mut done, 9, 2, 2);
        assert_eq!(
            decode(&done),
            Ok(Frame::Done {
                object: 9,
                pass: 2,
                passes: 2
            })
        );
    }

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        for name in [
            "", ".", "..", ".hidden", "a/b", "../x", "a\\b", "nul\0", "tab\t",
        ] {
            let mut offer = offer();
            offer.name = name.into();
            assert_eq!(
                decode(&encoded(&offer)),
                Err(FrameError::BadName),
                "{name:?}"
            );
        }
        let mut offer = offer();
        offer.name = "x".repeat(MAX_NAME_LEN + 1);
        assert_eq!(decode(&encoded(&offer)), Err(FrameError::BadName));
        offer.name = "ünïcode name.tar.gz".into();
        assert!(decode(&encoded(&offer)).is_ok());
    }

    #[test]
    fn every_truncation_and_extension_is_refused_without_panic() {
        let whole = encoded(&offer());
        for len in 0..whole.len() {
            assert!(decode(&whole[..len]).is_err(), "{len} bytes");
        }
        let mut longer = whole.clone();
        longer.push(b'x');
        assert_eq!(decode(&longer), Err(FrameError::BadLength));
        let mut done = Vec::new();
        encode_done(&mut done, 1, 1, 1);
        done.push(0);
        assert_eq!(decode(&done), Err(FrameError::BadLength));
    }

    #[test]
    fn fields_out_of_range_are_refused() {
        let mut small_chunk = offer();
        small_chunk.chunk = MIN_CHUNK - 1;
        assert_eq!(decode(&encoded(&small_chunk)), Err(FrameError::BadField));
        let mut huge = offer();
        huge.chunk = MIN_CHUNK;
        huge.size = MAX_CHUNKS * u64::from(MIN_CHUNK) + 1;
        assert_eq!(decode(&encoded(&huge)), Err(FrameError::BadField));
        huge.size -= 1;
        assert!(decode(&encoded(&huge)).is_ok(), "exactly MAX_CHUNKS chunks");
        huge.size = u64::MAX;
        huge.chunk = u32::MAX;
        assert_eq!(decode(&encoded(&huge)), Err(FrameError::BadField));
        let mut late_pass = offer();
        late_pass.pass = 3;
        assert_eq!(decode(&encoded(&late_pass)), Err(FrameError::BadField));
        let mut done = Vec::new();
        encode_done(&mut done, 1, 0, 1);
        assert_eq!(decode(&done), Err(FrameError::BadField));
        let mut other = encoded(&offer());
        other[4] = 2;
        assert_eq!(decode(&other), Err(FrameError::UnknownVersion));
        other[4] = VERSION;
        other[5] = 9;
        assert_eq!(decode(&other), Err(FrameError::UnknownKind));
        assert_eq!(decode(b"restart nginx now"), Err(FrameError::NotAFrame));
    }
}
