//! What happens to a context that the application may want to act on, as [`Event`]s: its path
//! to the multicast core changed, its relay failed over, its role as the segment's gateway
//! changed, or a sender's messages went missing. The context queues them; the application takes
//! them with [`Context::try_event`](crate::Context::try_event) or
//! [`Context::event_timeout`](crate::Context::event_timeout), instead of polling
//! [`Context::reachability`](crate::Context::reachability).

use std::{
    collections::VecDeque,
    net::{Ipv6Addr, SocketAddrV6},
    time::Instant,
};

use parking_lot::{Condvar, Mutex};

use crate::{
    error::{Error, ErrorKind, Result},
    wire::NodeId,
};

/// Events kept for the application at most; older ones make room and are counted as dropped.
pub const EVENT_CAPACITY: usize = 1024;

/// Something that happened to a context.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// How the context reaches the multicast core changed (also the first verdict).
    PathChanged {
        /// The path in use now.
        path: CorePath,
    },
    /// The relay carrying the context's channels failed (went silent, or closed the tunnel)
    /// and the context moved to a spare, or to none.
    RelayFailover {
        /// The relay that failed.
        from: SocketAddrV6,
        /// The spare now in use; `None` when no spare took over.
        to: Option<SocketAddrV6>,
    },
    /// The channels this context serves as its segment's Stratum 1 gateway changed (it was
    /// elected, took more channels, stood down); empty when it serves none.
    GatewayRole {
        /// Groups of the channels served now.
        serving: Vec<Ipv6Addr>,
    },
    /// Messages of a sender on a channel were never heard: `count` sequence numbers were
    /// skipped (a later arrival may still fill some; `Stats::lost` keeps the balance).
    MessagesLost {
        /// The channel's group.
        group: Ipv6Addr,
        /// The sending context's node id.
        sender: NodeId,
        /// How many messages were skipped.
        count: u64,
    },
}

/// How a context reaches the multicast core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CorePath {
    /// Native multicast reaches the core both ways.
    Native,
    /// A relay's tunnel carries the channels.
    Relay(SocketAddrV6),
    /// An SSM repeater carries the channels.
    Repeater(SocketAddrV6),
    /// The segment's Stratum 1 gateway carries the channels.
    Gateway(SocketAddrV6),
    /// Nothing reaches the core: no relay answered, or none could be opened.
    Unreachable,
}

impl CorePath {
    /// The path's name: `native`, `relay`, `repeater`, `gateway` or `unreachable`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Relay(_) => "relay",
            Self::Repeater(_) => "repeater",
            Self::Gateway(_) => "gateway",
            Self::Unreachable => "unreachable",
        }
    }

    /// The relay, repeater or gateway of the path, if it has one.
    pub const fn via(&self) -> Option<SocketAddrV6> {
        match self {
            Self::Relay(via) | Self::Repeater(via) | Self::Gateway(via) => Some(*via),
            Self::Native | Self::Unreachable => None,
        }
    }
}

impl Event {
    /// The event's name: `path_changed`, `relay_failover`, `gateway_role` or `messages_lost`.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::PathChanged { .. } => "path_changed",
            Self::RelayFailover { .. } => "relay_failover",
            Self::GatewayRole { .. } => "gateway_role",
            Self::MessagesLost { .. } => "messages_lost",
        }
    }
}

/// A context's queue of events, bounded by [`EVENT_CAPACITY`].
#[derive(Debug, Default)]
pub(crate) struct EventQueue {
    state: Mutex<QueueState>,
    arrived: Condvar,
}

#[derive(Debug, Default)]
struct QueueState {
    events: VecDeque<Event>,
    dropped: u64,
    closed: bool,
    /// The last path announced, so that only changes become events.
    path: Option<CorePath>,
}

impl QueueState {
    /// Queues `event`, dropping the oldest when full; nothing once closed.
    fn push(&mut self, event: Event) {
        if self.closed {
            return;
        }
        if self.events.len() == EVENT_CAPACITY {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(event);
    }
}

impl EventQueue {
    pub(crate) fn push(&self, event: Event) {
        let mut state = self.state.lock();
        state.push(event);
        drop(state);
        self.arrived.notify_one();
    }

    /// The path last announced, if any.
    pub(crate) fn current_path(&self) -> Option<CorePath> {
        self.state.lock().path
    }

    /// Announces `path` if it differs from the last one announced.
    pub(crate) fn path(&self, path: CorePath) {
        let mut state = self.state.lock();
        if state.path == Some(path) {
            return;
        }
        state.path = Some(path);
        state.push(Event::PathChanged { path });
        drop(state);
        self.arrived.notify_one();
    }

    /// The oldest event, if any; `Closed` once the context closed and none is left.
    pub(crate) fn try_pop(&self) -> Result<Option<Event>> {
        let mut state = self.state.lock();
        match state.events.pop_front() {
            Some(event) => Ok(Some(event)),
            None if state.closed => Err(Error::closed()),
            None => Ok(None),
        }
    }

    /// The oldest event, waiting until `deadline` for one.
    pub(crate) fn pop_until(&self, deadline: Instant) -> Result<Event> {
        let mut state = self.state.lock();
        loop {
            if let Some(event) = state.events.pop_front() {
                return Ok(event);
            }
            if state.closed {
                return Err(Error::closed());
            }
            if self.arrived.wait_until(&mut state, deadline).timed_out() && state.events.is_empty()
            {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "no event within the timeout",
                ));
            }
        }
    }

    /// Events dropped because the application did not take them in time.
    pub(crate) fn dropped(&self) -> u64 {
        self.state.lock().dropped
    }

    /// Wakes every waiter: the context closed.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.arrived.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn only_path_changes_become_events() {
        let queue = EventQueue::default();
        queue.path(CorePath::Native);
        queue.path(CorePath::Native);
        let relay: SocketAddrV6 = "[2001:db8::21]:6448".parse().unwrap();
        queue.path(CorePath::Relay(relay));
        assert_eq!(
            queue.try_pop().unwrap(),
            Some(Event::PathChanged {
                path: CorePath::Native
            })
        );
        let Some(Event::PathChanged { path }) = queue.try_pop().unwrap() else {
            panic!("a second path event");
        };
        assert_eq!((path.name(), path.via()), ("relay", Some(relay)));
        assert_eq!(queue.try_pop().unwrap(), None);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let queue = EventQueue::default();
        for count in 0..=EVENT_CAPACITY as u64 {
            queue.push(Event::MessagesLost {
                group: Ipv6Addr::UNSPECIFIED,
                sender: NodeId(1),
                count,
            });
        }
        assert_eq!(queue.dropped(), 1);
        let Some(Event::MessagesLost { count, .. }) = queue.try_pop().unwrap() else {
            panic!("an event");
        };
        assert_eq!(count, 1, "the first was dropped");
    }

    #[test]
    fn waiting_times_out_and_closing_ends_it() {
        let queue = EventQueue::default();
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            queue.pop_until(soon).unwrap_err().kind(),
            ErrorKind::Timeout
        );
        queue.push(Event::GatewayRole { serving: vec![] });
        queue.close();
        assert!(
            queue.try_pop().unwrap().is_some(),
            "queued events outlive the close"
        );
        assert_eq!(queue.try_pop().unwrap_err().kind(), ErrorKind::Closed);
        assert_eq!(queue.pop_until(soon).unwrap_err().kind(), ErrorKind::Closed);
    }
}
