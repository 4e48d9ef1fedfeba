//! Async receiving for any runtime: [`Recv`] and [`Readable`] futures and the [`Messages`]
//! stream. A waiting task is parked in the channel's queue and woken by the receive path when a
//! message arrives or the context closes: no thread waits, however many receives are pending.
//!
//! Dropping a future before it completes takes no message, so cancelling (a `select!`, a
//! timeout) loses none.

use std::{
    future::Future,
    pin::Pin,
    sync::atomic::Ordering,
    task::{Context as TaskContext, Poll, Waker},
};

use futures_core::Stream;

use super::{Channel, Message, queue::Inbound};
use crate::error::{Error, Result};

/// The future of [`Channel::recv_async`]: the next message.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Recv {
    wait: Wait,
}

/// The future of [`Channel::readable`]: done once a message waits, without taking it.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Readable {
    wait: Wait,
}

/// The stream of [`Channel::messages`]: every message, until the context closes.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Messages {
    wait: Wait,
}

/// A channel and the task it may have parked in the channel's queue.
#[derive(Debug)]
struct Wait {
    channel: Channel,
    parked: Option<Waker>,
}

impl Wait {
    fn new(channel: &Channel) -> Self {
        Self {
            channel: channel.clone(),
            parked: None,
        }
    }

    /// What `take` finds in the queue (a message, say), the context's close, or the task
    /// parked until a message arrives or the context closes.
    fn poll<T>(
        &mut self,
        cx: &TaskContext<'_>,
        take: impl FnOnce(&mut Inbound) -> Option<T>,
    ) -> Poll<Result<T>> {
        let state = &self.channel.state;
        let mut queue = state.queue.lock();
        if let Some(found) = take(&mut queue) {
            drop(queue);
            self.parked = None;
            self.channel.taken();
            return Poll::Ready(Ok(found));
        }
        if self.channel.shared.core.closed.load(Ordering::Acquire) {
            self.parked = None;
            return Poll::Ready(Err(Error::closed()));
        }
        // Parked under the queue lock: a message queued after this wakes the task.
        queue.register(cx.waker());
        self.parked = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if let Some(waker) = self.parked.take() {
            self.channel.state.queue.lock().deregister(&waker);
        }
    }
}

impl Future for Recv {
    type Output = Result<Message>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.wait.poll(cx, Inbound::pop_front)
    }
}

impl Future for Readable {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        self.wait
            .poll(cx, |queue| (!queue.is_empty()).then_some(()))
    }
}

impl Stream for Messages {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Message>> {
        // A receive without a deadline fails only when the context closes: the stream's end.
        self.wait.poll(cx, Inbound::pop_front).map(Result::ok)
    }
}

impl Channel {
    /// Receives the next message without blocking a thread: a future for any async runtime
    /// (tokio, async-std, smol, a hand-written executor). Fails with `Closed` once the context
    /// is closed and the queue is empty. Put a deadline on it with the runtime's timeout
    /// (`tokio::time::timeout`); dropping it unfinished takes no message.
    pub fn recv_async(&self) -> Recv {
        Recv {
            wait: Wait::new(self),
        }
    }

    /// Completes once a message waits (so that [`try_recv`](Self::try_recv) returns it), without
    /// taking it; fails with `Closed` once the context is closed and the queue is empty.
    pub fn readable(&self) -> Readable {
        Readable {
            wait: Wait::new(self),
        }
    }

    /// Every message as it arrives, as a [`Stream`] that ends when the context closes.
    pub fn messages(&self) -> Messages {
        Messages {
            wait: Wait::new(self),
        }
    }
}
