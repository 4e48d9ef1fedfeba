//! Encoding control messages: the checks of [`Control::validate`] and the bytes of
//! [`Control::encode`]. Each message writes its own body; this writes the header and padding.

use super::{Control, HEADER_LEN, MAGIC, VERSION};

impl Control<'_> {
    /// The number of bytes [`encode`](Self::encode) writes (for a valid message).
    pub fn encoded_len(&self) -> usize {
        (HEADER_LEN + self.body().body_len()).max(self.padded_len())
    }

    /// Checks the rules [`encode`](Self::encode) enforces, without encoding. `Ok` exactly for
    /// the messages [`decode`](super::decode) can give back.
    ///
    /// Only four messages can break a rule, and only by a mistake of their builder: a LEAVE or
    /// GATEWAY with no group, a JOIN, LEAVE or GATEWAY with more than
    /// [`MAX_GROUPS_PER_MESSAGE`](super::MAX_GROUPS_PER_MESSAGE)
    /// ([`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig)), a JOIN, LEAVE, GATEWAY
    /// or DATA naming a group that is not multicast
    /// ([`ErrorKind::InvalidAddress`](crate::ErrorKind::InvalidAddress)), and a DATA whose
    /// datagram is empty ([`ErrorKind::InvalidConfig`](crate::ErrorKind::InvalidConfig)) or
    /// longer than [`MAX_DATA_DATAGRAM`](super::MAX_DATA_DATAGRAM)
    /// ([`ErrorKind::MessageTooLarge`](crate::ErrorKind::MessageTooLarge)).
    pub fn validate(&self) -> crate::Result<()> {
        self.body().validate()
    }

    /// Appends the encoded message to `out`.
    ///
    /// Fails, leaving `out` unchanged, only for a message that [`validate`](Self::validate)
    /// rejects: a JOIN, LEAVE or DATA its builder got wrong. Every other message always encodes.
    pub fn encode(&self, out: &mut Vec<u8>) -> crate::Result<()> {
        self.validate()?;
        self.write(out);
        Ok(())
    }

    /// The encoded message in a new vector of exactly [`encoded_len`](Self::encoded_len) bytes;
    /// fails as [`encode`](Self::encode) does.
    pub fn to_vec(&self) -> crate::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Writes the fields as they are, valid or not. For a message that
    /// [`validate`](Self::validate) rejects, the bytes are ones [`decode`](super::decode)
    /// rejects too.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let body = self.body();
        out.reserve(self.encoded_len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[VERSION, self.type_code(), body.flags(), 0, 0, 0]);
        body.write_body(out);
        if self.is_padded() {
            out.resize(start + self.padded_len(), 0);
        }
    }
}
