//! A fake-clock world for the repair protocol's tests: one sender, several receivers, chosen
//! losses, datagrams in flight with a latency.

use std::{
    cell::Cell,
    rc::Rc,
    time::{Duration, Instant},
};

use super::*;
use crate::wire::{
    NodeId,
    repair::{self, Repair},
};

pub(super) const SENDER: NodeId = NodeId(0x5e5e);
pub(super) const GROUP: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0xff1e, 0, 0, 0, 0, 0, 0, 0x6c);
/// One-way delay between any two nodes.
pub(super) const LATENCY: Duration = Duration::from_micros(200);

/// Decides whether receiver `receiver` loses a datagram.
pub(super) type Loss = Box<dyn FnMut(usize, &[u8]) -> bool>;

pub(super) struct World {
    pub(super) now: Instant,
    pub(super) sender: RepairSender,
    pub(super) receivers: Vec<RepairReceiver<()>>,
    /// What each receiver handed on, in order.
    pub(super) delivered: Vec<Vec<Vec<u8>>>,
    /// Datagrams on their way: when they arrive, to whom (None: the sender), what.
    pub(super) in_flight: Vec<(Instant, Option<usize>, Vec<u8>)>,
    pub(super) loss: Loss,
    /// Decides whether a receiver's datagram to the sender (a report or a NACK) is lost.
    pub(super) uplink_loss: Loss,
    /// Each datagram from the sender is delayed by up to this much more, at random: packets
    /// overtake each other, as on a path of several links or queues.
    pub(super) reorder: Duration,
    rng: u64,
}

pub(super) fn packet(number: u64) -> Vec<u8> {
    // Lengths differ, so that parity must frame them.
    let len = 40 + (number * 37 % 900) as usize;
    let mut bytes = number.to_be_bytes().to_vec();
    bytes.resize(len, (number % 251) as u8);
    bytes
}

impl World {
    pub(super) fn new(receivers: usize, config: RepairConfig, loss: Loss) -> Self {
        Self {
            now: Instant::now(),
            sender: RepairSender::new(SENDER, config),
            receivers: (0..receivers)
                .map(|index| {
                    let seed = index as u64 * 7919 + 3;
                    RepairReceiver::new(NodeId(index as u64 + 1), GROUP, config, seed)
                })
                .collect(),
            delivered: vec![Vec::new(); receivers],
            in_flight: Vec::new(),
            loss,
            uplink_loss: Box::new(|_, _| false),
            reorder: Duration::ZERO,
            rng: 0x2545_f491_4f6c_dd1d,
        }
    }

    /// The sender multicasts: every receiver may get it.
    pub(super) fn multicast(&mut self, datagram: &[u8]) {
        for receiver in 0..self.receivers.len() {
            if !(self.loss)(receiver, datagram) {
                let delay = LATENCY + self.reorder_delay();
                self.in_flight
                    .push((self.now + delay, Some(receiver), datagram.to_vec()));
            }
        }
    }

    /// A random part of `reorder` (xorshift from a fixed seed).
    fn reorder_delay(&mut self) -> Duration {
        let micros = u64::try_from(self.reorder.as_micros()).unwrap_or(u64::MAX);
        if micros == 0 {
            return Duration::ZERO;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        Duration::from_micros(self.rng % micros)
    }

    /// Sends `numbers`, each once the flow window lets it.
    pub(super) fn send(&mut self, numbers: std::ops::Range<u64>) {
        self.send_paced(numbers, Duration::from_micros(10));
    }

    /// Sends `numbers` `gap` apart, each once the flow window lets it.
    pub(super) fn send_paced(&mut self, numbers: std::ops::Range<u64>, gap: Duration) {
        for number in numbers {
            while let Err(until) = self.sender.window(self.now) {
                let step = until.min(self.now + Duration::from_millis(1)) - self.now;
                self.run(step.max(Duration::from_micros(1)));
            }
            let wrapped = self.sender.wrap(packet(number), self.now);
            self.multicast(&wrapped);
            self.run(gap);
        }
    }

    /// Runs until nothing is in flight or due, for at most `limit` of fake time.
    pub(super) fn run(&mut self, limit: Duration) {
        let end = self.now + limit;
        while self.now < end {
            self.in_flight.sort_by_key(|(at, _, _)| *at);
            let arriving: Vec<_> = self
                .in_flight
                .iter()
                .take_while(|(at, _, _)| *at <= self.now)
                .cloned()
                .collect();
            self.in_flight.drain(..arriving.len());
            for (_, to, datagram) in arriving {
                self.arrive(to, &datagram);
            }
            while let Some(datagram) = self.sender.poll_transmit(self.now) {
                self.multicast(&datagram);
            }
            for receiver in 0..self.receivers.len() {
                let ready = self.receivers[receiver].poll_expired(self.now);
                self.delivered[receiver]
                    .extend(ready.into_iter().map(|ready| ready.datagram.to_vec()));
                while let Some((datagram, to)) = self.receivers[receiver].poll_transmit(self.now) {
                    if !(self.uplink_loss)(receiver, &datagram) {
                        self.in_flight
                            .push((self.now + LATENCY, None, datagram.clone()));
                    }
                    // Reports go to the sender; NACKs to the group, where the other receivers
                    // hear them too.
                    if to.is_none() {
                        for other in (0..self.receivers.len()).filter(|&other| other != receiver) {
                            self.in_flight.push((
                                self.now + LATENCY,
                                Some(other),
                                datagram.clone(),
                            ));
                        }
                    }
                }
            }
            let next = [
                self.sender.poll_timeout(),
                self.in_flight.iter().map(|(at, _, _)| *at).min(),
            ]
            .into_iter()
            .chain(self.receivers.iter().map(RepairReceiver::poll_timeout))
            .flatten()
            .min();
            match next {
                Some(next) if next < end => self.now = next.max(self.now),
                // Nothing more within the limit: time still passes up to it.
                _ => {
                    self.now = self.now.max(end);
                    return;
                }
            }
        }
    }

    pub(super) fn arrive(&mut self, to: Option<usize>, datagram: &[u8]) {
        let decoded = repair::decode(datagram).expect("the protocol sends only valid datagrams");
        let now = self.now;
        match (to, decoded) {
            (None, Repair::Nack(nack)) => self.sender.on_nack(&nack, now),
            (None, Repair::Status(status)) => self.sender.on_status(&status, now),
            (Some(receiver), Repair::Nack(nack)) => self.receivers[receiver].on_nack(&nack, now),
            (Some(receiver), Repair::Sequenced(packet)) => {
                let ready = self.receivers[receiver].on_sequenced(&packet, (), now);
                self.delivered[receiver]
                    .extend(ready.into_iter().map(|ready| ready.datagram.to_vec()));
            }
            (Some(receiver), Repair::Parity(parity)) => {
                let ready = self.receivers[receiver].on_parity(&parity, (), now);
                self.delivered[receiver]
                    .extend(ready.into_iter().map(|ready| ready.datagram.to_vec()));
            }
            (None, _) | (Some(_), Repair::Status(_)) => {}
        }
    }

    pub(super) fn assert_all_delivered(&self, numbers: std::ops::Range<u64>) {
        let expected: Vec<_> = numbers.map(packet).collect();
        for (receiver, delivered) in self.delivered.iter().enumerate() {
            let first_wrong = delivered
                .iter()
                .zip(&expected)
                .position(|(got, sent)| got != sent);
            assert!(
                *delivered == expected,
                "receiver {receiver} got {} packets, not the {} sent in order (first wrong at {:?}): {:?}",
                delivered.len(),
                expected.len(),
                first_wrong,
                self.receivers[receiver].stats(),
            );
        }
    }

    pub(super) fn nacks_sent(&self) -> u64 {
        self.receivers
            .iter()
            .map(|receiver| receiver.stats().nacks_sent)
            .sum()
    }
}

/// Independent loss with probability `percent`, from a fixed seed.
pub(super) fn random_loss(percent: u64, seed: u64) -> Loss {
    let mut state = seed | 1;
    Box::new(move |_, _| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % 100 < percent
    })
}

/// A receiver with `config` that has heard `numbers` of the sender's packets at `now`.
pub(super) fn receiver_with(
    config: RepairConfig,
    numbers: &[u64],
    now: Instant,
) -> RepairReceiver<()> {
    let mut receiver = RepairReceiver::new(NodeId(1), GROUP, config, 7);
    hear(&mut receiver, numbers, now);
    receiver
}

/// Gives `receiver` the sender's packets `numbers` at `now`.
pub(super) fn hear(receiver: &mut RepairReceiver<()>, numbers: &[u64], now: Instant) {
    for &number in numbers {
        let mut bytes = Vec::new();
        repair::encode_sequenced(&mut bytes, SENDER, number, b"packet");
        let Ok(Repair::Sequenced(packet)) = repair::decode(&bytes) else {
            unreachable!("the library's packet decodes")
        };
        receiver.on_sequenced(&packet, (), now);
    }
}

/// A loss that drops everything to the receivers `only` picks while the switch it returns is
/// on (off at first): a receiver that stalls, or goes away.
pub(super) fn switchable_loss(only: fn(usize) -> bool) -> (Rc<Cell<bool>>, Loss) {
    let on = Rc::new(Cell::new(false));
    let loss: Loss = Box::new({
        let on = Rc::clone(&on);
        move |receiver, _| only(receiver) && on.get()
    });
    (on, loss)
}
