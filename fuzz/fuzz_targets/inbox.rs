//! Any sequence of datagrams fed to an inbox with small limits: no panic, memory within its
//! budget, and each (sender, seq) delivered at most once while the inbox can still remember
//! every sender it heard (its window or its floor: docs/wire-format.md).
#![no_main]

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use libfuzzer_sys::fuzz_target;
use sixcast::wire::{self, Inbox, InboxLimits};

fuzz_target!(|data: &[u8]| {
    let limits = InboxLimits {
        max_message: 4096,
        reassembly_timeout: Duration::from_secs(5),
        reassembly_memory: 16 << 10,
        max_senders: 4,
        dedup_window: 16,
    };
    let mut inbox = Inbox::new(limits);
    let start = Instant::now();
    let remembered = limits.max_senders * 5;
    let mut delivered = HashSet::new();
    let mut senders = HashSet::new();
    // Datagrams are separated by '|' bytes; each one advances the clock by 300 ms.
    for (step, datagram) in data.split(|&byte| byte == b'|').enumerate() {
        let now = start + Duration::from_millis(step as u64 * 300);
        if let Ok(decoded) = wire::decode(datagram) {
            senders.insert(decoded.sender());
            let exact = senders.len() <= remembered;
            inbox.accept(&decoded, now, &mut |delivery| {
                let first = delivered.insert((delivery.sender, delivery.seq));
                assert!(first || !exact, "delivered twice");
            });
        }
        assert!(inbox.reassembly_bytes() <= limits.reassembly_memory);
        assert!(inbox.senders() <= limits.max_senders);
    }
});
