//! The datagram and manifest decoders must never panic, and what they accept must iterate
//! consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixcast::wire::{
    self, Datagram,
    manifest::{self, DIGEST_LEN},
};

fuzz_target!(|data: &[u8]| {
    if let Ok(Datagram::Messages(batch)) = wire::decode(data) {
        assert_eq!(batch.iter().count(), batch.len());
        let first = batch.first_seq;
        for (offset, (seq, _)) in (0..).zip(batch.iter()) {
            assert_eq!(seq, first + offset);
        }
    }
    if let Ok(decoded) = manifest::decode(data) {
        assert!(manifest::is_manifest(data));
        assert_eq!(
            decoded.digests().len() * DIGEST_LEN,
            data.len() - wire::HEADER_LEN
        );
    }
});
