//! How a stream ends, on a fake clock: a closing sender waits for receivers still catching up
//! (and for no longer), receivers say when they leave or when their last report was lost, and
//! a receiver whose repairs stop gives up its holes (but not while its reading is behind).

use std::{
    cell::Cell,
    rc::Rc,
    time::{Duration, Instant},
};

use super::{
    sim::{Loss, World, hear, packet, receiver_with, switchable_loss},
    *,
};
use crate::wire::repair::{self, Repair};

/// Whether the sender, about to stop, still waits for its receivers.
fn closing_sender_busy(world: &World) -> bool {
    world.sender.busy_until(world.now).is_some()
}

#[test]
fn a_closing_sender_waits_for_a_receiver_that_stalls_shorter_than_give_up() {
    // The receiver hears nothing for 2.5 s from packet 300 on (a starved process): longer than
    // the receiver timeout, shorter than `give_up`.
    let (deaf, loss) = switchable_loss(|_| true);
    let config = RepairConfig {
        flow_window_bytes: 50_000,
        ..RepairConfig::default()
    };
    let mut world = World::new(1, config, loss);
    world.send(0..300);
    world.run(Duration::from_millis(50));
    deaf.set(true);
    let stalled = world.now;
    // The flow stops waiting for it after the receiver timeout: sending goes on.
    world.send(300..600);
    assert_eq!(world.sender.stats().receivers_dropped, 1);
    world.run(stalled + Duration::from_millis(2500) - world.now);
    assert!(
        closing_sender_busy(&world),
        "gave up on a receiver after a 2.5 s stall"
    );
    deaf.set(false);
    // The announcements of the tail, repeated while it is behind, tell it what it missed.
    world.run(Duration::from_secs(2));
    world.assert_all_delivered(0..600);
    assert!(!closing_sender_busy(&world));
}

#[test]
fn a_closing_sender_stops_waiting_for_a_receiver_silent_past_give_up() {
    let (gone, loss) = switchable_loss(|_| true);
    let mut world = World::new(1, RepairConfig::default(), loss);
    world.send(0..100);
    world.run(Duration::from_millis(50));
    gone.set(true);
    world.send(100..200);
    let left = world.now;
    world.run(Duration::from_millis(2900));
    assert!(closing_sender_busy(&world));
    world.run(left + Duration::from_millis(3200) - world.now);
    assert!(!closing_sender_busy(&world));
}

#[test]
fn a_receiver_whose_last_report_was_lost_says_it_again() {
    let mut world = World::new(2, RepairConfig::default(), Box::new(|_, _| false));
    // Receiver 1's reports of having all 100 packets are lost once.
    let mut lost_once = false;
    world.uplink_loss = Box::new(move |receiver, datagram| {
        let last = matches!(repair::decode(datagram), Ok(Repair::Status(status)) if status.position == 100);
        let lose = receiver == 1 && last && !lost_once;
        lost_once |= lose;
        lose
    });
    world.send(0..100);
    let sent = world.now;
    world.run(Duration::from_millis(100));
    world.assert_all_delivered(0..100);
    assert!(
        closing_sender_busy(&world),
        "the lost report went unnoticed"
    );
    // The sender repeats its tail while it waits; the receiver answers the first repeat it
    // hears long after its report, well before the sender would give up on it.
    world.run(Duration::from_millis(400));
    assert!(
        !closing_sender_busy(&world),
        "still waiting {:?} after the last packet",
        world.now - sent
    );
}

#[test]
fn a_receiver_that_leaves_is_not_waited_for() {
    let (gone, loss) = switchable_loss(|receiver| receiver == 1);
    let config = RepairConfig {
        flow_window_bytes: 50_000,
        ..RepairConfig::default()
    };
    let mut world = World::new(2, config, loss);
    world.send(0..100);
    world.run(Duration::from_millis(20));
    world.receivers[1].leave();
    gone.set(true);
    let left = world.now;
    world.send(100..1000);
    // Without its farewell, the window would wait a receiver timeout (1 s) for it.
    assert!(
        world.now - left < Duration::from_millis(100),
        "{:?}",
        world.now - left
    );
    assert_eq!(world.sender.stats().receivers_dropped, 0);
    world.run(Duration::from_millis(200));
    assert!(!closing_sender_busy(&world));
    assert_eq!(
        world.delivered[0],
        (0..1000).map(packet).collect::<Vec<_>>()
    );
}

#[test]
fn when_repair_stops_every_hole_is_given_up_after_give_up_not_one_per_give_up() {
    // A packet in ten is lost, and no repair ever arrives (as when the sender is gone).
    let loss: Loss = Box::new(|_, datagram| match repair::decode(datagram) {
        Ok(Repair::Sequenced(packet)) => packet.packet % 10 == 3,
        _ => true,
    });
    let mut world = World::new(1, RepairConfig::default(), loss);
    world.send(0..500);
    world.run(RepairConfig::default().give_up + Duration::from_millis(500));
    let expected: Vec<_> = (0..500).filter(|n| n % 10 != 3).map(packet).collect();
    assert_eq!(world.delivered[0], expected);
    assert_eq!(world.receivers[0].stats().packets_lost, 50);
}

#[test]
fn no_hole_is_given_up_while_reading_is_behind() {
    let config = RepairConfig::default();
    let start = Instant::now();
    let numbers: Vec<u64> = (0..10).filter(|&n| n != 3).collect();
    let mut receiver = receiver_with(config, &numbers, start);
    // Reading is behind for twice `give_up`: the repair may wait unread.
    receiver.set_behind(true, start);
    let caught_up = start + config.give_up * 2;
    // Nor is a give-up due meanwhile, which would wake the driver again and again.
    let later = start + config.give_up + Duration::from_millis(500);
    while receiver.poll_transmit(later).is_some() {}
    assert!(receiver.poll_timeout().is_none_or(|at| at > later));
    assert!(receiver.poll_expired(caught_up).is_empty());
    assert_eq!(receiver.stats().packets_lost, 0);
    // Its clock ran only while reading kept up: a full `give_up` after catching up, it goes.
    receiver.set_behind(false, caught_up);
    let almost = caught_up + config.give_up - Duration::from_millis(10);
    assert!(receiver.poll_expired(almost).is_empty());
    assert_eq!(receiver.poll_expired(caught_up + config.give_up).len(), 6);
    assert_eq!(receiver.stats().packets_lost, 1);
}

#[test]
fn a_receiver_whose_reports_are_lost_is_waited_for_by_its_nacks() {
    // Packet 3 is lost, and so is every repair until `repaired`; every report is lost.
    let repaired = Rc::new(Cell::new(false));
    let loss: Loss = Box::new({
        let repaired = repaired.clone();
        move |_, datagram| match repair::decode(datagram) {
            Ok(Repair::Sequenced(packet)) => packet.packet == 3,
            _ => !repaired.get(),
        }
    });
    let mut world = World::new(1, RepairConfig::default(), loss);
    world.uplink_loss =
        Box::new(|_, datagram| matches!(repair::decode(datagram), Ok(Repair::Status(_))));
    world.send(0..100);
    // The NACKs come further and further apart, and it never reported: still waited for.
    for _ in 0..100 {
        world.run(Duration::from_millis(10));
        assert!(closing_sender_busy(&world));
    }
    repaired.set(true);
    world.run(Duration::from_millis(500));
    world.assert_all_delivered(0..100);
    world.run(Duration::from_secs(3));
    assert!(!closing_sender_busy(&world));
}

#[test]
fn a_held_receiver_gives_up_no_hole_while_packets_wait_in_front() {
    let config = RepairConfig::default();
    let start = Instant::now();
    let mut receiver = receiver_with(config, &[], start);
    // The application is slow: packets 0 to 2 wait in front, and 3 and 4 are missing.
    receiver.hold();
    hear(&mut receiver, &[0, 1, 2, 5], start);
    let late = start + config.give_up * 2;
    assert!(receiver.poll_expired(late).is_empty());
    assert_eq!(receiver.stats().packets_lost, 0);
    // Released, the position moved: the hole behind gets its full time from then.
    assert_eq!(receiver.release(late).len(), 3);
    assert!(receiver.poll_expired(late).is_empty());
    assert_eq!(receiver.poll_expired(late + config.give_up).len(), 1);
    assert_eq!(receiver.stats().packets_lost, 2);
}
