//! The datagram decoder must never panic, and what it accepts must iterate consistently.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixcast::wire::{self, Datagram};

fuzz_target!(|data: &[u8]| {
    if let Ok(Datagram::Messages(batch)) = wire::decode(data) {
        assert_eq!(batch.iter().count(), batch.len());
        let first = batch.first_seq;
        for (offset, (seq, _)) in (0..).zip(batch.iter()) {
            assert_eq!(seq, first + offset);
        }
    }
});
