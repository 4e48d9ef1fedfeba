//! The memory an `Inbox` charges for partial messages (`Inbox::reassembly_bytes`, held under
//! `InboxLimits::reassembly_memory`) against the heap it really holds for them, counted by a
//! global allocator, under floods of partial messages of every shape: the bound is only honest
//! if the charge is never below the real memory.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::{
        Mutex,
        atomic::{AtomicIsize, Ordering},
    },
    time::{Duration, Instant},
};

use sixcast::{
    NodeId,
    wire::{self, Datagram, Inbox, InboxLimits, Packer},
};

/// The system allocator, counting the bytes it holds.
struct Counting;

/// What an allocation of `size` bytes takes from glibc's malloc on 64-bit systems: a header of
/// 8 bytes, rounded up to 16, at least 32.
fn footprint(size: usize) -> isize {
    ((size + 8).next_multiple_of(16).max(32)) as isize
}

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(footprint(layout.size()), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(footprint(layout.size()), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(footprint(layout.size()), Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(
            footprint(new_size) - footprint(layout.size()),
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract is passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests take turns: the counter is the whole process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Which fragments of each message a flood sends.
#[derive(Debug, Clone, Copy)]
enum Sent {
    /// Only the first: the cheapest way to make the receiver hold a message.
    First,
    /// All but the last: the receiver holds every chunk's bookkeeping too.
    AllButLast,
}

/// A whole small message from one sender, then fragments of `count` messages of `size` bytes
/// from it, cut for datagrams of `datagram` bytes, none of them complete.
fn partial_messages(size: usize, datagram: usize, count: usize, sent: Sent) -> Vec<Vec<u8>> {
    let mut packer = Packer::new(NodeId(7), datagram, size).expect("packer");
    let mut datagrams = Vec::new();
    packer.push(b"hello", &mut datagrams).expect("push");
    packer.flush(&mut datagrams);
    assert_eq!(datagrams.len(), 1);
    let message = vec![0xf1; size];
    let mut ready = Vec::new();
    for _ in 0..count {
        packer.push(&message, &mut ready).expect("push");
        assert!(ready.len() > 1, "a {size} B message fits one datagram");
        match sent {
            Sent::First => ready.truncate(1),
            Sent::AllButLast => {
                ready.pop();
            }
        }
        datagrams.append(&mut ready);
    }
    datagrams
}

/// Feeds every datagram to a fresh inbox with a `budget` of reassembly memory and returns the
/// largest difference between the heap it really held for partial messages and what it charged
/// for them, with the largest charge seen.
fn flood(datagrams: &[Vec<u8>], budget: usize) -> (isize, usize) {
    let limits = InboxLimits {
        reassembly_memory: budget,
        reassembly_timeout: Duration::from_secs(60),
        ..InboxLimits::default()
    };
    let mut inbox = Inbox::new(limits);
    let now = Instant::now();
    let decoded: Vec<Datagram<'_>> = datagrams
        .iter()
        .map(|datagram| wire::decode(datagram).expect("decodes"))
        .collect();
    // The sender's duplicate window is not reassembly memory: it is made by the first datagram,
    // a whole message, before the baseline.
    let mut delivered = 0;
    inbox.accept(&decoded[0], now, &mut |_| delivered += 1);
    assert_eq!((delivered, inbox.reassembly_bytes()), (1, 0));
    let baseline = HELD.load(Ordering::Relaxed);
    let (mut worst, mut peak) = (isize::MIN, 0);
    for datagram in &decoded[1..] {
        inbox.accept(datagram, now, &mut |_| panic!("nothing completes"));
        let held = HELD.load(Ordering::Relaxed) - baseline;
        worst = worst.max(held - inbox.reassembly_bytes() as isize);
        peak = peak.max(inbox.reassembly_bytes());
    }
    (worst, peak)
}

/// Heap an inbox holds for partial messages at most beyond its charge, whatever their number:
/// the first node of each of its two maps, which come with the first partial message.
const FIRST_NODES: isize = 2048;

#[test]
fn reassembly_charge_is_never_below_the_heap_it_holds() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let budget = 4 << 20;
    // From one large message (many fragments of few, large ones) to the smallest fragmented
    // ones: a flood of tiny partial messages costs mostly bookkeeping.
    let (default, min) = (wire::DEFAULT_DATAGRAM_SIZE, wire::MIN_DATAGRAM_SIZE);
    let shapes = [
        (1 << 20, default, 20, Sent::First),
        (1 << 20, default, 8, Sent::AllButLast),
        (64 << 10, default, 200, Sent::First),
        (64 << 10, min, 100, Sent::AllButLast),
        (4 << 10, default, 3000, Sent::First),
        (4 << 10, min, 3000, Sent::AllButLast),
        (2 * default, default, 20_000, Sent::First),
        (min, min, 20_000, Sent::First),
    ];
    let mut failures = Vec::new();
    for (size, datagram, count, sent) in shapes {
        let datagrams = partial_messages(size, datagram, count, sent);
        let (worst, peak) = flood(&datagrams, budget);
        println!(
            "{size} B messages in {datagram} B datagrams, {sent:?}: heap beyond the charge at \
             worst {worst} B, peak charge {peak} B"
        );
        if peak > budget {
            failures.push(format!(
                "{size} B, {sent:?}: charged {peak} B, over the budget"
            ));
        }
        if worst > FIRST_NODES {
            failures.push(format!(
                "{size} B, {sent:?}: {worst} B held beyond the charge"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// What a flood from ever new senders costs beside reassembly: the table of senders, at most
/// `max_senders` duplicate windows of `dedup_window / 8` bytes with their map entries, and the
/// floors of up to four times as many forgotten senders: at most 640 bytes per tracked sender
/// beside its window, as `InboxLimits::max_senders` documents.
#[test]
fn sender_table_memory_is_bounded_by_max_senders() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let limits = InboxLimits::default();
    let mut inbox = Inbox::new(limits);
    let now = Instant::now();
    let baseline = HELD.load(Ordering::Relaxed);
    let mut peak = 0;
    for sender in 0..8 * limits.max_senders as u64 {
        let mut datagrams = Vec::new();
        let mut packer = Packer::new(NodeId(sender), 1232, 1024).expect("packer");
        packer.push(b"hello", &mut datagrams).expect("push");
        packer.flush(&mut datagrams);
        let datagram = wire::decode(&datagrams[0]).expect("decodes");
        inbox.accept(&datagram, now, &mut |_| {});
        drop(datagrams);
        peak = peak.max(HELD.load(Ordering::Relaxed) - baseline);
    }
    let window = (limits.dedup_window / 8) as isize;
    let bound = limits.max_senders as isize * (window + 640);
    println!(
        "{} senders: the table held at most {peak} B (bound {bound} B, window {window} B)",
        8 * limits.max_senders,
    );
    assert!(peak <= bound, "{peak} B held, over {bound} B");
    // Once as many senders were forgotten as are remembered, the table grows no further.
    assert!(peak > limits.max_senders as isize * window);
}
