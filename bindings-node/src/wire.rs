//! The datagram codec (the core's `wire` module), for tools and tests; no I/O.

use napi::{
    Env, Result,
    bindgen_prelude::{Buffer, Either},
};
use napi_derive::napi;
use sixcast::{NodeId, wire};

use crate::{
    addr::bytes_of,
    config::whole,
    error::{OrThrow, malformed_to_js},
};

/// Length of the header every datagram starts with.
#[napi]
pub const HEADER_LEN: u32 = wire::HEADER_LEN as u32;
/// Length of a fragment's fields after the header.
#[napi]
pub const FRAGMENT_HEADER_LEN: u32 = wire::FRAGMENT_HEADER_LEN as u32;
/// The protocol version this library speaks.
#[napi]
pub const VERSION: u8 = wire::VERSION;
/// The smallest datagram size a context accepts.
#[napi]
pub const MIN_DATAGRAM_SIZE: u32 = wire::MIN_DATAGRAM_SIZE as u32;
/// The default datagram size: fits the IPv6 minimum MTU.
#[napi]
pub const DEFAULT_DATAGRAM_SIZE: u32 = wire::DEFAULT_DATAGRAM_SIZE as u32;
/// The largest datagram size.
#[napi]
pub const MAX_DATAGRAM_SIZE: u32 = wire::MAX_DATAGRAM_SIZE as u32;
/// The default largest message.
#[napi]
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = wire::DEFAULT_MAX_MESSAGE_SIZE as u32;
/// No configuration allows messages larger than this.
#[napi]
pub const MAX_MESSAGE_SIZE_LIMIT: u32 = wire::MAX_MESSAGE_SIZE_LIMIT as u32;

/// One message of a decoded batch.
#[napi(object, object_from_js = false)]
pub struct DecodedMessage {
    /// The message's sequence number.
    pub seq: f64,
    /// The message bytes.
    pub payload: Buffer,
}

/// A decoded datagram: a batch of whole messages, or one fragment of a large message.
/// Sequence numbers are exact up to `Number.MAX_SAFE_INTEGER`.
#[napi(
    discriminant = "type",
    discriminant_case = "lowercase",
    object_from_js = false
)]
pub enum Datagram {
    /// One or more whole messages with consecutive sequence numbers.
    Messages {
        /// The sending node id, 16 hex digits.
        sender: String,
        /// Sequence number of the first message.
        first_seq: f64,
        /// The messages in order.
        messages: Vec<DecodedMessage>,
    },
    /// One piece of a message too large for a single datagram.
    Fragment {
        /// The sending node id, 16 hex digits.
        sender: String,
        /// Sequence number of the whole message.
        seq: f64,
        /// Length of the whole message.
        total_len: u32,
        /// Where the chunk starts in the whole message.
        offset: u32,
        /// Position of this fragment, from 0.
        index: u32,
        /// Number of fragments of the message.
        count: u32,
        /// The bytes of the message from `offset` on.
        chunk: Buffer,
    },
}

/// Decodes one received datagram. Throws ERR_SIXCAST_MALFORMED, with the stable `reason`
/// (`truncated`, `bad_magic`, ...), when the bytes are not a valid datagram.
#[napi]
pub fn decode_datagram(env: Env, datagram: &[u8]) -> Result<Datagram> {
    // Sequence numbers become JavaScript numbers: exact below 2^53.
    match wire::decode(datagram) {
        Ok(wire::Datagram::Messages(batch)) => Ok(Datagram::Messages {
            sender: batch.sender.to_string(),
            first_seq: batch.first_seq as f64,
            messages: batch
                .iter()
                .map(|(seq, payload)| DecodedMessage {
                    seq: seq as f64,
                    payload: payload.to_vec().into(),
                })
                .collect(),
        }),
        Ok(wire::Datagram::Fragment(fragment)) => Ok(Datagram::Fragment {
            sender: fragment.sender.to_string(),
            seq: fragment.seq as f64,
            total_len: fragment.total_len,
            offset: fragment.offset,
            index: fragment.index.into(),
            count: fragment.count.into(),
            chunk: fragment.chunk.to_vec().into(),
        }),
        Err(err) => Err(malformed_to_js(&env, err)),
    }
}

/// Packs `messages` the way a sender with node id `sender` (16 hex digits) whose next sequence
/// number is `firstSeq` would, into datagrams of at most `maxDatagram` bytes; returns every
/// datagram in order.
#[napi]
pub fn pack_messages(
    env: Env,
    sender: String,
    first_seq: f64,
    max_datagram: f64,
    messages: Vec<Either<String, &[u8]>>,
) -> Result<Vec<Buffer>> {
    let packed = (|| {
        let sender: NodeId = sender.parse()?;
        let first_seq = whole("firstSeq", first_seq, u64::MAX)?;
        let max_datagram = whole("maxDatagram", max_datagram, usize::MAX)?;
        let messages: Vec<&[u8]> = messages.iter().map(bytes_of).collect();
        wire::pack(sender, first_seq, max_datagram, &messages)
    })();
    packed
        .map(|datagrams| datagrams.into_iter().map(Buffer::from).collect())
        .or_throw(&env)
}
