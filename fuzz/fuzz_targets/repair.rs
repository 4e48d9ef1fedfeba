//! Any sequence of repair-layer datagrams fed to a reliable sender and receiver, on a clock
//! that moves 7 ms per datagram, holding and releasing now and then: no panic, and the receiver
//! hands each sender's packets on at most once and in order.
#![no_main]

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use libfuzzer_sys::fuzz_target;
use sixcast::{
    NodeId,
    reliable::{Ready, RepairConfig, RepairReceiver, RepairSender},
    wire::repair::{self, Repair},
};

fuzz_target!(|data: &[u8]| {
    // Small bounds, so that inputs reach them.
    let config = RepairConfig {
        window_bytes: 64 << 10,
        reorder_bytes: 64 << 10,
        flow_window_bytes: 16 << 10,
        ..RepairConfig::default()
    };
    let mut sender = RepairSender::new(NodeId(1), config);
    let group = "ff1e::6c".parse().expect("a multicast group");
    let mut receiver = RepairReceiver::new(NodeId(2), group, config, 7);
    let start = Instant::now();
    let mut last: HashMap<NodeId, u64> = HashMap::new();
    let mut check = |ready: Vec<Ready<()>>| {
        for handed in ready {
            if let Some(&previous) = last.get(&handed.sender) {
                assert!(handed.packet > previous, "handed on twice or out of order");
            }
            last.insert(handed.sender, handed.packet);
        }
    };
    // Datagrams are separated by '|' bytes.
    for (step, datagram) in data.split(|&byte| byte == b'|').enumerate() {
        let now = start + Duration::from_millis(step as u64 * 7);
        // Every input is also sent, so that NACKs and reports find packets to ask about.
        let _ = sender.window(now);
        let _ = sender.wrap(datagram.to_vec(), now);
        match repair::decode(datagram) {
            Ok(Repair::Sequenced(packet)) => check(receiver.on_sequenced(&packet, (), now)),
            Ok(Repair::Parity(parity)) => check(receiver.on_parity(&parity, (), now)),
            Ok(Repair::Nack(nack)) => {
                sender.on_nack(&nack, now);
                receiver.on_nack(&nack, now);
            }
            Ok(Repair::Status(status)) => sender.on_status(&status, now),
            Err(_) => {}
        }
        while sender.poll_transmit(now).is_some() {}
        while receiver.poll_transmit(now).is_some() {}
        check(receiver.poll_expired(now));
        match step % 5 {
            3 => receiver.hold(),
            4 => check(receiver.release(now)),
            _ => {}
        }
    }
});
