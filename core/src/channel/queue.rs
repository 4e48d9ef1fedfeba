//! A channel's queue of received messages, waiting for the application: bounded in messages
//! and in bytes, so that an application that stops reading costs at most the bytes it allows,
//! not `queue_capacity` messages of the largest size. What does not fit is dropped and counted.
//! The queue also holds the tasks of async receivers waiting for it, so that a message and its
//! wake-up can never pass each other.

use std::{collections::VecDeque, task::Waker};

use super::Message;

/// The messages waiting, and the payload bytes they hold.
#[derive(Debug, Default)]
pub(crate) struct Inbound {
    messages: VecDeque<Message>,
    bytes: usize,
    /// Async receivers to wake at the next message (or when the context closes).
    wakers: Vec<Waker>,
}

impl Inbound {
    /// Queues `message` if it fits within `capacity` messages and `max_bytes` payload bytes
    /// (a message larger than `max_bytes` fits an empty queue, so that it can still be read);
    /// hands it back if not.
    pub(crate) fn push(
        &mut self,
        message: Message,
        capacity: usize,
        max_bytes: usize,
    ) -> Result<(), Message> {
        let len = message.payload.len();
        let over_bytes = !self.messages.is_empty() && self.bytes.saturating_add(len) > max_bytes;
        if self.messages.len() >= capacity || over_bytes {
            return Err(message);
        }
        self.bytes += len;
        self.messages.push_back(message);
        Ok(())
    }

    /// The oldest message, if any.
    pub(crate) fn pop_front(&mut self) -> Option<Message> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.payload.len();
        Some(message)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Whether more than `1 / fraction` of `capacity` messages or `max_bytes` bytes wait.
    pub(crate) fn fuller_than(&self, fraction: usize, capacity: usize, max_bytes: usize) -> bool {
        self.messages.len() > capacity / fraction || self.bytes > max_bytes / fraction
    }

    /// Wakes `waker` at the next message, once (a task that registers again is kept once).
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.wakers.iter().any(|known| known.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
    }

    /// Forgets `waker`: its receiver gave up.
    pub(crate) fn deregister(&mut self, waker: &Waker) {
        self.wakers.retain(|known| !known.will_wake(waker));
    }

    /// The registered receivers, to wake once the lock is released.
    pub(crate) fn take_wakers(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.wakers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Message {
        Message {
            payload: vec![0; len],
            source: std::net::SocketAddrV6::new(std::net::Ipv6Addr::LOCALHOST, 6446, 0, 0),
            group: std::net::Ipv6Addr::UNSPECIFIED,
            interface: 1,
            interface_name: "eth0".into(),
            sender: crate::NodeId(1),
            seq: 0,
            relayed: false,
            path: crate::Path::Native,
        }
    }

    #[test]
    fn bounded_in_messages_and_in_bytes() {
        let mut queue = Inbound::default();
        assert!(queue.push(message(600), 10, 1000).is_ok());
        assert!(queue.push(message(400), 10, 1000).is_ok());
        assert!(queue.push(message(1), 10, 1000).is_err(), "one byte over");
        assert_eq!(queue.pop_front().map(|m| m.payload.len()), Some(600));
        assert!(queue.push(message(600), 10, 1000).is_ok(), "room again");
        let mut counted = Inbound::default();
        for _ in 0..3 {
            assert!(counted.push(message(0), 3, 1000).is_ok());
        }
        assert!(
            counted.push(message(0), 3, 1000).is_err(),
            "the fourth message"
        );
    }

    #[test]
    fn a_message_larger_than_the_byte_bound_fits_an_empty_queue() {
        let mut queue = Inbound::default();
        assert!(queue.push(message(5000), 10, 1000).is_ok());
        assert!(queue.push(message(1), 10, 1000).is_err());
        assert_eq!(queue.pop_front().map(|m| m.payload.len()), Some(5000));
        assert!(queue.is_empty());
        assert!(queue.pop_front().is_none());
    }
}
