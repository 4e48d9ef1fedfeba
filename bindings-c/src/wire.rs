//! The datagrams of reliable channels (the core's `wire::repair`) and the manifests of signed
//! runs (`wire::manifest`) as JSON text, for tools and conformance tests: the objects have the
//! form of `repair.json`'s `decoded` objects and of `manifest.json`'s valid decode cases, so new
//! fields never change the ABI. No I/O.

use std::ffi::c_char;

use serde_json::{Value, json};
use sixcast::wire::{
    DecodeError,
    manifest::{self, Manifest},
    repair::{self, Repair},
};

use crate::{
    error::{SixcastError, SixcastStatus, guard},
    text,
};

/// The decoded datagram with the vectors' field names: bytes as lowercase hex, node ids as 16
/// hex digits, packet numbers as JSON integers.
fn to_json(decoded: &Repair<'_>) -> Value {
    match decoded {
        Repair::Sequenced(packet) => json!({
            "type": "sequenced",
            "sender": packet.sender.to_string(),
            "packet": packet.packet,
            "inner": hex::encode(packet.inner),
        }),
        Repair::Parity(parity) => json!({
            "type": "parity",
            "sender": parity.sender.to_string(),
            "block_start": parity.block_start,
            "block_len": parity.block_len,
            "index": parity.index,
            "symbol": hex::encode(parity.symbol),
        }),
        Repair::Nack(nack) => json!({
            "type": "nack",
            "from": nack.from.to_string(),
            "target": nack.target.to_string(),
            "heard": nack.heard,
            "ranges": nack.ranges().map(|(first, count)| json!([first, count])).collect::<Vec<_>>(),
        }),
        Repair::Status(status) => json!({
            "type": "status",
            "from": status.from.to_string(),
            "target": status.target.to_string(),
            "group": status.group.to_string(),
            "position": status.position,
        }),
    }
}

/// Decodes the `datagram_len` bytes at `datagram`, one received datagram of a reliable channel
/// (`docs/reliability.md`), and stores it in `*json_out` as a JSON object (free it with
/// `sixcast_string_free`): `type` is `sequenced` (`sender`, `packet`, `inner`), `parity`
/// (`sender`, `block_start`, `block_len`, `index`, `symbol`), `nack` (`from`, `target`,
/// `heard`, `ranges`: `[first, count]` pairs) or `status` (`from`, `target`, `group`,
/// `position`). Bytes are lowercase hex, node ids 16 hex digits, packet numbers JSON integers
/// (up to 2^64 - 1: a JSON library that reads 64-bit signed integers only, such as jansson,
/// refuses those above 2^63 - 1). Fails with `SIXCAST_STATUS_MALFORMED`, whose message names
/// the stable reason in parentheses, for example `malformed datagram (bad_count): ...`;
/// `*json_out` is then left as it was.
///
/// # Safety
/// `datagram` points to `datagram_len` readable bytes (or is NULL with a length of 0);
/// `json_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_decode_repair(
    datagram: *const u8,
    datagram_len: usize,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    // SAFETY: per the contract above.
    unsafe {
        decode_to_json(datagram, datagram_len, json_out, error_out, |bytes| {
            repair::decode(bytes).map(|decoded| to_json(&decoded))
        })
    }
}

/// The body of the decoders: reads the datagram, decodes it with `decode`, and stores the JSON
/// in `*json_out`, or the decode error (Malformed) in `*error_out`.
///
/// # Safety
/// As for [`sixcast_decode_repair`].
unsafe fn decode_to_json(
    datagram: *const u8,
    datagram_len: usize,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
    decode: impl FnOnce(&[u8]) -> Result<Value, DecodeError>,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the caller's contract.
        let datagram = unsafe { text::bytes(datagram, datagram_len, "datagram") }?;
        let json = decode(datagram).map_err(sixcast::Error::from)?;
        // SAFETY: per the caller's contract.
        unsafe { text::store_text(json_out, json.to_string(), "json_out") }
    })
}

/// The decoded manifest with the vectors' field names: the sender as 16 hex digits, the number
/// as a JSON integer, the digests as lowercase hex.
fn manifest_to_json(decoded: &Manifest<'_>) -> Value {
    json!({
        "sender": decoded.sender.to_string(),
        "number": decoded.number,
        "digests": decoded.digests().map(hex::encode).collect::<Vec<_>>(),
    })
}

/// Decodes the `datagram_len` bytes at `datagram`, one plain (opened) MANIFEST datagram
/// (`docs/security.md`, section 7), and stores it in `*json_out` as a JSON object (free it with
/// `sixcast_string_free`): `sender` (16 hex digits), `number` (a JSON integer, up to 2^64 - 1:
/// see `sixcast_decode_repair`) and `digests` (lowercase hex, in the order their datagrams were
/// sent). Fails with `SIXCAST_STATUS_MALFORMED`, whose message names the stable reason in
/// parentheses, for example `malformed datagram (bad_count): ...`; `*json_out` is then left as
/// it was.
///
/// # Safety
/// `datagram` points to `datagram_len` readable bytes (or is NULL with a length of 0);
/// `json_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_decode_manifest(
    datagram: *const u8,
    datagram_len: usize,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    // SAFETY: per the contract above.
    unsafe {
        decode_to_json(datagram, datagram_len, json_out, error_out, |bytes| {
            manifest::decode(bytes).map(|decoded| manifest_to_json(&decoded))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nack_has_the_vectors_form() {
        // repair.json's "nack" case: receiver 0x99 has heard the sender up to packet 12 and
        // misses 3-4 and 10.
        let datagram = hex::decode(concat!(
            "36630105000000020000000000000099000000000000000c",
            "0a0b0c0d0e0f1011000000000000000300000002000000000000000a00000001",
        ))
        .unwrap();
        let decoded = repair::decode(&datagram).unwrap();
        assert_eq!(
            to_json(&decoded),
            json!({
                "type": "nack",
                "from": "0000000000000099",
                "target": "0a0b0c0d0e0f1011",
                "heard": 12,
                "ranges": [[3, 2], [10, 1]],
            })
        );
    }

    #[test]
    fn a_manifest_has_the_vectors_form() {
        // manifest.json's "two" case: digests of all 1s and all 2s, manifest number 3.
        let datagram = hex::decode(concat!(
            "36630107000000020123456789abcdef0000000000000003",
            "01010101010101010101010101010101",
            "02020202020202020202020202020202",
        ))
        .unwrap();
        let decoded = manifest::decode(&datagram).unwrap();
        assert_eq!(
            manifest_to_json(&decoded),
            json!({
                "sender": "0123456789abcdef",
                "number": 3,
                "digests": [
                    "01010101010101010101010101010101",
                    "02020202020202020202020202020202",
                ],
            })
        );
    }

    #[test]
    fn errors_carry_the_malformed_status_and_the_reason() {
        let mut json_out = std::ptr::null_mut();
        let mut error = std::ptr::null_mut();
        // SAFETY: the pointers are valid for the call.
        let status = unsafe { sixcast_decode_repair(b"6c".as_ptr(), 2, &mut json_out, &mut error) };
        assert_eq!(status, SixcastStatus::Malformed);
        assert!(json_out.is_null());
        // SAFETY: the error was just stored, and is freed once.
        unsafe {
            let message = std::ffi::CStr::from_ptr(crate::error::sixcast_error_message(error));
            assert!(
                message.to_str().unwrap().contains("(truncated)"),
                "{message:?}"
            );
            crate::error::sixcast_error_free(error);
        }
    }
}
