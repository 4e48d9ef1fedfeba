//! The reachability control decoder (probes, relay requests, offers, the tunnel) must never
//! panic, and what it accepts must encode to bytes that decode to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixcast::wire::control;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = control::decode(data) {
        let mut encoded = Vec::new();
        message
            .encode(&mut encoded)
            .expect("a decoded message encodes");
        assert_eq!(control::decode(&encoded), Ok(message));
    }
});
