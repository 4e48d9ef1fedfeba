//! How NACKs are weighed, on a fake clock, one step at a time: by the sender against the
//! repairs on their way, and by receivers against each other and against their own reading.

use std::time::{Duration, Instant};

use super::{
    sim::{GROUP, SENDER, hear, receiver_with},
    *,
};
use crate::wire::{
    NodeId,
    repair::{self, Repair, Status},
};

fn nack(from: u64, heard: u64, ranges: &[(u64, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    repair::encode_nack(&mut out, NodeId(from), SENDER, heard, ranges);
    out
}

fn give_nack(sender: &mut RepairSender, bytes: &[u8], now: Instant) {
    let Ok(Repair::Nack(nack)) = repair::decode(bytes) else {
        unreachable!("the library's NACK decodes")
    };
    sender.on_nack(&nack, now);
}

/// Gives `receiver` another receiver's NACK `bytes` at `now`.
fn hear_nack(receiver: &mut RepairReceiver<()>, bytes: &[u8], now: Instant) {
    let Ok(Repair::Nack(nack)) = repair::decode(bytes) else {
        unreachable!("the library's NACK decodes")
    };
    receiver.on_nack(&nack, now);
}

/// Gives `sender` a report from receiver `from` at `now`, that it is at packet 0.
fn give_report(sender: &mut RepairSender, from: u64, now: Instant) {
    let mut bytes = Vec::new();
    let report = Status {
        from: NodeId(from),
        target: SENDER,
        group: GROUP,
        position: 0,
    };
    repair::encode_status(&mut bytes, &report);
    let Ok(Repair::Status(status)) = repair::decode(&bytes) else {
        unreachable!("the library's report decodes")
    };
    sender.on_status(&status, now);
}

/// Parity symbols the sender sends by `now`.
fn parity_sent(sender: &mut RepairSender, now: Instant) -> usize {
    std::iter::from_fn(|| sender.poll_transmit(now))
        .filter(|datagram| datagram[3] == repair::TYPE_PARITY)
        .count()
}

/// Announcing a burst's end only after a minute: every symbol sent is a repair, and only a
/// full block of 64 packets closes.
fn quiet_tail() -> RepairConfig {
    RepairConfig {
        block_len: 64,
        tail_delay: Duration::from_secs(60),
        ..RepairConfig::default()
    }
}

/// A sender that sent packets `0..count`, each a few bytes, at `now`.
fn sender_with(count: u64, now: Instant) -> RepairSender {
    let mut sender = RepairSender::new(SENDER, quiet_tail());
    for number in 0..count {
        sender.wrap(number.to_be_bytes().to_vec(), now);
    }
    sender
}

#[test]
fn a_nack_sent_before_a_repair_arrived_asks_nothing_more() {
    let config = quiet_tail();
    let start = Instant::now();
    let mut sender = sender_with(128, start);
    // Receiver 1 misses 3 packets of block 0: 3 symbols leave, after the packets up to 128.
    give_nack(&mut sender, &nack(1, 128, &[(3, 3)]), start);
    let repaired = start + config.nack_holdoff;
    assert_eq!(parity_sent(&mut sender, repaired), 3);
    for number in 128..140u64 {
        sender.wrap(number.to_be_bytes().to_vec(), repaired);
    }
    // Receiver 2 asked for 2 holes before it heard packet 128: the repair was behind that
    // packet, on its way to it. Nothing more leaves.
    let later = repaired + Duration::from_millis(30);
    give_nack(&mut sender, &nack(2, 120, &[(10, 2)]), later);
    assert_eq!(parity_sent(&mut sender, later + config.nack_holdoff), 0);
    // Receiver 3 heard packets sent after the repair and still misses 4: it lost 1 of the
    // repair's symbols at least, or had more holes; 4 fresh symbols leave.
    give_nack(&mut sender, &nack(3, 135, &[(20, 4)]), later);
    assert_eq!(parity_sent(&mut sender, later + 2 * config.nack_holdoff), 4);
}

#[test]
fn a_repair_counts_as_on_its_way_only_for_a_while() {
    let config = quiet_tail();
    let start = Instant::now();
    let mut sender = sender_with(64, start);
    give_nack(&mut sender, &nack(1, 64, &[(3, 2)]), start);
    let repaired = start + config.nack_holdoff;
    assert_eq!(parity_sent(&mut sender, repaired), 2);
    // Nothing followed the repair, and the receiver heard the last packet before it: once
    // `repair_guard` has passed, its NACK means the repair was lost there.
    let soon = repaired + config.repair_guard / 2;
    give_nack(&mut sender, &nack(1, 64, &[(3, 2)]), soon);
    assert_eq!(parity_sent(&mut sender, soon + config.nack_holdoff), 0);
    let late = repaired + config.repair_guard + config.nack_holdoff;
    give_nack(&mut sender, &nack(1, 64, &[(3, 2)]), late);
    assert_eq!(parity_sent(&mut sender, late + config.nack_holdoff), 2);
    // A receiver that has not heard the packets before a repair is slow: its repair is still
    // on its way for up to `repair_wait_max`.
    let slow = late + config.nack_holdoff + config.repair_guard * 2;
    give_nack(&mut sender, &nack(2, 40, &[(5, 2)]), slow);
    assert_eq!(parity_sent(&mut sender, slow + config.nack_holdoff), 0);
    let slower = late + config.repair_wait_max + config.nack_holdoff;
    give_nack(&mut sender, &nack(2, 40, &[(5, 2)]), slower);
    assert_eq!(parity_sent(&mut sender, slower + config.nack_holdoff), 2);
}

#[test]
fn once_several_receivers_report_a_first_repair_sends_what_most_blocks_lately_needed() {
    let config = quiet_tail();
    let start = Instant::now();
    let blocks = 36;
    let mut lone = sender_with(64 * blocks, start);
    let mut group = sender_with(64 * blocks, start);
    for (sender, receivers) in [(&mut lone, 1), (&mut group, 3)] {
        for from in 1..=receivers {
            give_report(sender, from, start);
        }
    }
    let heard = 64 * blocks;
    let mut now = start;
    for block in 0..blocks {
        // The first NACK of blocks 0 to 7 misses 5, of block 8 (a burst lost) 20, of the
        // rest 1.
        let ask = match block {
            0..=7 => 5,
            8 => 20,
            _ => 1,
        };
        let asking = nack(1, heard, &[(block * 64 + 3, ask)]);
        give_nack(&mut lone, &asking, now);
        give_nack(&mut group, &asking, now);
        now += config.nack_holdoff;
        // A lone receiver gets what it asks for. The group gets 5 while eight of the last 32
        // blocks asked at least that; the burst's 20 pads no block after it.
        let padded = match block {
            0..=7 | 9..=33 => 5,
            8 => 20,
            _ => 1,
        };
        assert_eq!(parity_sent(&mut lone, now), ask as usize, "block {block}");
        assert_eq!(parity_sent(&mut group, now), padded, "block {block}");
    }
}

/// Blocks of 8 packets: a few packets close one, and receivers ask only for closed blocks.
fn blocks_of_8() -> RepairConfig {
    RepairConfig {
        block_len: 8,
        ..RepairConfig::default()
    }
}

/// The NACKs `receiver` sends by `now`, decoded as (heard, ranges).
fn nacks_by(receiver: &mut RepairReceiver<()>, now: Instant) -> Vec<(u64, Vec<(u64, u32)>)> {
    std::iter::from_fn(|| receiver.poll_transmit(now))
        .filter_map(|(bytes, _)| match repair::decode(&bytes) {
            Ok(Repair::Nack(nack)) => Some((nack.heard, nack.ranges().collect())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_nack_says_how_far_its_receiver_heard() {
    let config = RepairConfig::default();
    let start = Instant::now();
    // Block 0 (packets 0-7) is closed once packet 8 is heard; a hole of an open block waits.
    let mut receiver = receiver_with(blocks_of_8(), &[0, 1, 2, 5, 6, 7, 8, 11], start);
    let due = start + config.nack_delay + 2 * config.nack_spread;
    assert_eq!(nacks_by(&mut receiver, due), [(12, vec![(3, 2), (9, 2)])]);
    // It waits until the sender, quiet since, would have closed the block: the announcement
    // that it did may be what was lost here.
    let mut open = receiver_with(blocks_of_8(), &[0, 1, 2, 5, 6], start);
    let quiet = start + config.tail_delay + config.repair_wait;
    assert!(nacks_by(&mut open, quiet - Duration::from_millis(1)).is_empty());
    assert_eq!(open.poll_timeout(), Some(quiet));
    assert!(nacks_by(&mut open, quiet).is_empty());
    let asked = quiet + config.nack_delay + 2 * config.nack_spread;
    assert_eq!(nacks_by(&mut open, asked), [(7, vec![(3, 2)])]);
}

#[test]
fn a_receiver_behind_on_its_reading_holds_its_nacks() {
    let config = RepairConfig::default();
    let start = Instant::now();
    let closed = [0, 1, 2, 5, 6, 7, 8];
    let mut receiver = receiver_with(blocks_of_8(), &closed, start);
    let due = start + config.nack_delay + 2 * config.nack_spread;
    receiver.set_behind(true, due);
    assert!(nacks_by(&mut receiver, due).is_empty());
    assert_eq!(receiver.poll_timeout(), Some(due + config.repair_wait_max));
    // Caught up: what waited unread did not fill the hole, so the NACK leaves.
    let caught_up = due + Duration::from_millis(3);
    receiver.set_behind(false, caught_up);
    assert_eq!(nacks_by(&mut receiver, caught_up), [(9, vec![(3, 2)])]);
    // Behind for longer than `repair_wait_max`, it asks anyway.
    let mut stuck = receiver_with(blocks_of_8(), &closed, start);
    stuck.set_behind(true, due);
    assert!(nacks_by(&mut stuck, due + config.repair_wait_max / 2).is_empty());
    assert_eq!(nacks_by(&mut stuck, due + config.repair_wait_max).len(), 1);
}

#[test]
fn another_receivers_nack_holds_this_ones_back_once() {
    let config = RepairConfig::default();
    let start = Instant::now();
    let due = start + config.nack_delay + 2 * config.nack_spread;
    // This receiver misses packet 3 (block 0) and packets 70-71 (block 1), both closed.
    let present: Vec<u64> = (0..130).filter(|n| ![3, 70, 71].contains(n)).collect();
    let mut receiver = receiver_with(config, &present, start);
    assert_eq!(nacks_by(&mut receiver, due), [(130, vec![(3, 1), (70, 2)])]);
    // Another receiver asks less of block 1 and nothing of block 0: its repair may fill the
    // holes of block 1 here, and what it leaves goes with the hole of block 0, in one NACK
    // after one backoff.
    let mut receiver = receiver_with(config, &present, start);
    hear_nack(&mut receiver, &nack(9, 80, &[(65, 1)]), start);
    assert!(nacks_by(&mut receiver, due).is_empty());
    assert_eq!(receiver.stats().nacks_suppressed, 2);
    // Held back once per NACK of its own: a stream of others' NACKs cannot silence it.
    hear_nack(&mut receiver, &nack(9, 80, &[(40, 1), (64, 2)]), start);
    let wait = start + config.repair_wait;
    assert!(nacks_by(&mut receiver, wait - Duration::from_micros(1)).is_empty());
    assert_eq!(
        nacks_by(&mut receiver, wait),
        [(130, vec![(3, 1), (70, 2)])]
    );
    // Without suppression (a control, to measure what it saves) nothing waits.
    let control = RepairConfig {
        suppression: false,
        ..config
    };
    let mut receiver = receiver_with(control, &present, start);
    hear_nack(&mut receiver, &nack(9, 80, &[(65, 1)]), start);
    assert_eq!(nacks_by(&mut receiver, due).len(), 1);
}

#[test]
fn the_holes_of_a_block_share_one_wait_so_receivers_ask_at_spread_times() {
    let config = RepairConfig::default();
    let start = Instant::now();
    // Sixteen receivers each miss 24 packets of the first block of 128 (other ones at each),
    // so each weighs as much missing.
    let asks_at = |index: u64| {
        let lost: Vec<u64> = (0..24).map(|k| (k * 5 + index) % 128).collect();
        let present: Vec<u64> = (0..129).filter(|n| !lost.contains(n)).collect();
        let receiver = (config, index + 1, index * 7919 + 3);
        first_nack(receiver, &present, start, Duration::from_millis(10))
    };
    let times: Vec<Instant> = (0..16).map(asks_at).collect();
    let (first, last) = (times.iter().min(), times.iter().max());
    let spread = last.zip(first).map(|(last, first)| *last - *first);
    // With a draw per hole, the earliest of each receiver's 24 draws made them all ask within
    // about half a millisecond: too close for one NACK to reach the others first.
    assert!(
        spread.is_some_and(|spread| spread >= config.nack_spread / 2),
        "sixteen receivers' first NACKs spread over {spread:?}"
    );
}

#[test]
fn progress_brings_the_next_nack_back_to_the_shortest_wait() {
    let config = RepairConfig::default();
    let start = Instant::now();
    // Packets 3 and 10 are missing (blocks 0-7 and 8-15, both closed); NACKs that go
    // unanswered wait longer each time.
    let heard: Vec<u64> = (0..17).filter(|n| ![3, 10].contains(n)).collect();
    let mut receiver = receiver_with(blocks_of_8(), &heard, start);
    let mut now = start + config.nack_delay + 2 * config.nack_spread;
    let mut asked = now;
    for _ in 0..4 {
        assert_eq!(nacks_by(&mut receiver, now).len(), 1);
        asked = now;
        now = receiver.poll_timeout().expect("a hole is open");
    }
    assert!(now - asked > config.repair_wait * 4, "{:?}", now - asked);
    // Packet 3 arrives during that wait: the position moves, and the next NACK for 10 is a
    // short wait away.
    let now = asked + config.repair_wait;
    let mut bytes = Vec::new();
    repair::encode_sequenced(&mut bytes, SENDER, 3, b"packet");
    let Ok(Repair::Sequenced(packet)) = repair::decode(&bytes) else {
        unreachable!("the library's packet decodes")
    };
    assert_eq!(receiver.on_sequenced(&packet, (), now).len(), 7);
    let soon = now + config.repair_wait;
    assert!(nacks_by(&mut receiver, soon - Duration::from_millis(1)).is_empty());
    assert_eq!(nacks_by(&mut receiver, soon), [(17, vec![(10, 1)])]);
}

#[test]
fn a_flood_of_nacks_costs_one_repair_per_block_per_guard() {
    let config = quiet_tail();
    let start = Instant::now();
    let mut sender = sender_with(128, start);
    // NACKs that claim to have heard everything, after the packets that followed each repair,
    // and ask for 16 packets of each of two blocks, one every millisecond: within
    // `repair_guard`, each block is repaired once.
    let flood = nack(1, u64::MAX, &[(0, 16), (64, 16)]);
    give_nack(&mut sender, &flood, start);
    let first = start + config.nack_holdoff;
    assert_eq!(parity_sent(&mut sender, first), 2 * 16);
    sender.wrap(b"after".to_vec(), first);
    let mut now = first;
    while now < first + config.repair_guard {
        give_nack(&mut sender, &flood, now);
        assert_eq!(parity_sent(&mut sender, now), 0);
        now += Duration::from_millis(1);
    }
    assert_eq!(
        parity_sent(&mut sender, first + config.repair_guard),
        2 * 16
    );
}

#[test]
fn the_more_receivers_are_heard_the_more_their_nacks_spread() {
    let config = blocks_of_8();
    let start = Instant::now();
    // Long enough to see a wait past the bound, rather than stop at it.
    let within = config.nack_delay + 2 * 12 * config.nack_spread;
    // Over 50 seeds, the longest and the mean wait before the first NACK, of a receiver that
    // heard `peers` other receivers' NACKs (for another sender: none spares its own).
    let waits = |peers: u64, heard_at: Instant| {
        let waits: Vec<Duration> = (1..=50)
            .map(|seed| {
                let mut receiver = RepairReceiver::new(NodeId(1), GROUP, config, seed);
                for peer in 0..peers {
                    let mut other = Vec::new();
                    repair::encode_nack(&mut other, NodeId(100 + peer), NodeId(9), 8, &[(1, 1)]);
                    hear_nack(&mut receiver, &other, heard_at);
                }
                hear(&mut receiver, &[0, 2, 3, 4, 5, 6, 7, 8], start);
                let step = Duration::from_micros(50);
                (1..=within.as_micros() / step.as_micros())
                    .map(|n| step * u32::try_from(n).unwrap())
                    .find(|&after| !nacks_by(&mut receiver, start + after).is_empty())
                    .unwrap_or_else(|| panic!("a NACK within {within:?}"))
            })
            .collect();
        let longest = *waits.iter().max().unwrap();
        (longest, waits.iter().sum::<Duration>() / 50)
    };
    let (alone_longest, alone_mean) = waits(0, start);
    // Fifteen others: 1 + log2(16) = 5 times the spread.
    let (among_longest, among_mean) = waits(15, start);
    assert!(alone_longest <= config.nack_delay + 2 * config.nack_spread);
    assert!(among_longest <= config.nack_delay + 2 * 5 * config.nack_spread);
    assert!(
        among_mean > 3 * alone_mean,
        "mean first NACK {alone_mean:?} alone, {among_mean:?} among 16"
    );
    // However many NACK senders there are (forged, say), 64 receivers at most are counted:
    // at most 7 times the spread.
    let (flooded_longest, _) = waits(500, start);
    assert!(flooded_longest <= config.nack_delay + 2 * 7 * config.nack_spread);
    // Receivers not heard for a while no longer count.
    let (_, long_ago_mean) = waits(15, start - Duration::from_secs(6));
    assert!(long_ago_mean <= alone_mean + Duration::from_micros(50));
}

/// When a receiver `node` with `config` and NACK seed `seed`, hearing `present` at `start`,
/// sends its first NACK, in steps of 50 µs; it must send one `within` that moment.
fn first_nack(
    (config, node, seed): (RepairConfig, u64, u64),
    present: &[u64],
    start: Instant,
    within: Duration,
) -> Instant {
    let mut receiver = RepairReceiver::new(NodeId(node), GROUP, config, seed);
    hear(&mut receiver, present, start);
    let step = Duration::from_micros(50);
    (0..within.as_micros() / step.as_micros())
        .map(|n| start + step * u32::try_from(n).unwrap())
        .find(|&now| !nacks_by(&mut receiver, now).is_empty())
        .unwrap_or_else(|| panic!("a NACK within {within:?}"))
}

/// Of 100 seeds, how often the receiver that heard `many` (missing more) sends its first NACK
/// before the one that heard `few`, both hearing their packets at the same moment; each must
/// send one `within` that moment.
fn times_missing_more_asks_first(few: &[u64], many: &[u64], within: Duration) -> u32 {
    let config = blocks_of_8();
    let start = Instant::now();
    let mut first_by_many = 0;
    for seed in 1..=100 {
        let due = |present: &[u64], node: u64| {
            first_nack((config, node, seed * 1000 + node), present, start, within)
        };
        if due(many, 2) < due(few, 1) {
            first_by_many += 1;
        }
    }
    first_by_many
}

#[test]
fn the_receiver_that_misses_most_of_a_block_asks_first() {
    // One receiver misses 1 packet of block 0, another 4: whoever asks first holds the other
    // back, and its repair fills the other's holes only if it asks at least as much, so the one
    // missing 4 should most often go first.
    let few: Vec<u64> = (0..9).filter(|&n| n != 3).collect();
    let many: Vec<u64> = (0..9).filter(|n| !(2..6).contains(n)).collect();
    let first_by_many = times_missing_more_asks_first(&few, &many, Duration::from_millis(20));
    // 94 % in theory (each draws its random part); in random order it would be half.
    assert!(first_by_many >= 85, "{first_by_many} of 100");
}

#[test]
fn in_a_block_that_seems_open_the_receiver_that_misses_most_asks_first() {
    // Both heard up to packet 13 of block 1 (8..16), whose end the sender's lost announcement
    // would have told: one misses packet 11, the other 9 to 12. Once the sender has been quiet
    // long enough they ask; the one missing 4 should most often go first, as in a closed block.
    let few: Vec<u64> = (0..14).filter(|&n| n != 11).collect();
    let many: Vec<u64> = (0..14).filter(|n| !(9..13).contains(n)).collect();
    let first_by_many = times_missing_more_asks_first(&few, &many, Duration::from_millis(100));
    assert!(first_by_many >= 85, "{first_by_many} of 100");
}
