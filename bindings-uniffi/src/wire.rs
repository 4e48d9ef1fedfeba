//! The datagram codec of the core's `wire` module, for tools and conformance tests.

use sixcast::{NodeId, wire};

use crate::error::Result;

/// One decoded datagram.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Datagram {
    /// One or more whole messages with consecutive sequence numbers.
    Messages {
        /// The sending node, 16 hex digits.
        sender: String,
        /// Sequence number of the first message.
        first_seq: u64,
        /// The messages in the order they were queued.
        messages: Vec<BatchRecord>,
    },
    /// One piece of a message too large for a single datagram.
    Fragment {
        /// The sending node, 16 hex digits.
        sender: String,
        /// Sequence number of the whole message.
        seq: u64,
        /// Length of the whole message.
        total_len: u32,
        /// Where the chunk starts in the whole message.
        offset: u32,
        /// Position of this fragment among the message's fragments, from 0.
        index: u16,
        /// Number of fragments of the message.
        count: u16,
        /// The bytes of the message from `offset` on.
        chunk: Vec<u8>,
    },
}

/// One whole message of a `Datagram.Messages` batch.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BatchRecord {
    /// The message's sequence number.
    pub seq: u64,
    /// The message.
    pub payload: Vec<u8>,
}

/// Decodes one received datagram. Fails with `Malformed`, whose message names the stable reason
/// in parentheses, for example `malformed datagram (bad_magic): ...`.
#[uniffi::export]
pub fn decode_datagram(datagram: Vec<u8>) -> Result<Datagram> {
    let decoded = wire::decode(&datagram).map_err(sixcast::Error::from)?;
    Ok(match decoded {
        wire::Datagram::Messages(batch) => Datagram::Messages {
            sender: batch.sender.to_string(),
            first_seq: batch.first_seq,
            messages: batch
                .iter()
                .map(|(seq, payload)| BatchRecord {
                    seq,
                    payload: payload.to_vec(),
                })
                .collect(),
        },
        wire::Datagram::Fragment(fragment) => Datagram::Fragment {
            sender: fragment.sender.to_string(),
            seq: fragment.seq,
            total_len: fragment.total_len,
            offset: fragment.offset,
            index: fragment.index,
            count: fragment.count,
            chunk: fragment.chunk.to_vec(),
        },
    })
}

/// The datagrams a sender with node id `sender` (16 hex digits) whose next sequence number is
/// `first_seq` emits for `messages`, with datagrams of at most `max_datagram` bytes.
///
/// Fails with `InvalidConfig` for a malformed node id or a datagram size outside 128..=65507.
#[uniffi::export]
pub fn pack_messages(
    sender: String,
    first_seq: u64,
    max_datagram: u32,
    messages: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>> {
    let sender: NodeId = sender.parse()?;
    // Saturating is enough: the core rejects sizes over 65507 with a message naming them.
    let max_datagram = usize::try_from(max_datagram).unwrap_or(usize::MAX);
    let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    Ok(wire::pack(sender, first_seq, max_datagram, &messages)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::SixcastError;

    #[test]
    fn packed_messages_decode_back() {
        let messages = vec![b"one".to_vec(), Vec::new()];
        let datagrams = pack_messages("0123456789abcdef".into(), 7, 1232, messages).unwrap();
        assert_eq!(datagrams.len(), 1);
        let expected = Datagram::Messages {
            sender: "0123456789abcdef".into(),
            first_seq: 7,
            messages: vec![
                BatchRecord {
                    seq: 7,
                    payload: b"one".to_vec(),
                },
                BatchRecord {
                    seq: 8,
                    payload: Vec::new(),
                },
            ],
        };
        assert_eq!(decode_datagram(datagrams[0].clone()).unwrap(), expected);
    }

    #[test]
    fn errors_carry_the_reason() {
        let error = decode_datagram(Vec::new()).unwrap_err();
        assert!(
            matches!(&error, SixcastError::Malformed(m) if m.contains("(truncated)")),
            "{error:?}"
        );
        let bad_sender = pack_messages("xyz".into(), 0, 1232, vec![]);
        assert!(matches!(bad_sender, Err(SixcastError::InvalidConfig(_))));
    }
}
