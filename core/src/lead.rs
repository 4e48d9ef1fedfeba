//! Who reads a context's socket: its receive thread, or an application thread that waits in a
//! receive with nothing queued (leader/follower).
//!
//! When only the receive thread reads, every message costs two wake-ups: the kernel wakes the
//! receive thread, which queues the message and wakes the application thread. An application
//! thread that waits with nothing queued takes the socket over instead and reads it itself
//! (it *leads*), so one wake-up delivers its message. A leader dispatches everything it reads
//! exactly as the receive thread does, to every channel of the context; other threads waiting
//! meanwhile (*followers*) wait on their channel's queue, as they do while the receive thread
//! reads.
//!
//! One thread reads at a time: the one holding the receive batch. The receive thread steps aside
//! when an application thread asks (a nudge wakes it from its wait on the socket) and stays aside
//! while application threads keep leading. It reads again once none has led for a [`LEASE`], and
//! at once when a leader leaves while followers wait.

use std::{
    ops::{Deref, DerefMut},
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::{error::Result, socket::Waker};

/// How long the receive thread stays aside after an application thread last led. It bounds how
/// late datagrams are read for channels nobody waits on while the application is busy between
/// receives, and costs the parked receive thread one wake-up per lease.
pub(crate) const LEASE: Duration = Duration::from_millis(2);

/// The right to read the socket, and the batch to read it into.
pub(crate) struct Lead<B> {
    batch: Mutex<B>,
    state: Mutex<State>,
    /// The receive thread waits here while application threads lead.
    changed: Condvar,
    /// Wakes the receive thread from its wait on the socket, so that it steps aside.
    nudge: Waker,
    /// Wakes a leading application thread from its wait on the socket: a message reached the
    /// queues another way (through a relay's tunnel), or the context closes.
    leader_nudge: Waker,
}

#[derive(Default)]
struct State {
    /// An application thread holds the batch.
    app_leading: bool,
    /// An application thread led, or asked to, since the receive thread last looked.
    app_recent: bool,
    /// Application threads waiting on their queue for what another thread reads.
    followers: usize,
    /// A leader left while followers wait: the receive thread reads again at once.
    resume: bool,
    closed: bool,
}

/// What an application thread with an empty queue does.
pub(crate) enum Turn<'a, B> {
    /// Read the socket: nobody else does.
    Lead(Leader<'a, B>),
    /// Wait on the queue: another application thread reads.
    Follow(Follower<'a, B>),
    /// The receive thread reads and was asked to step aside: [`Lead::take_over`] next.
    Asked,
}

/// An application thread's right to read; dropping it hands the socket back.
pub(crate) struct Leader<'a, B> {
    lead: &'a Lead<B>,
    batch: MutexGuard<'a, B>,
}

/// An application thread waiting for what another thread reads.
pub(crate) struct Follower<'a, B> {
    lead: &'a Lead<B>,
}

impl<B> Lead<B> {
    pub(crate) fn new(batch: B) -> Result<Self> {
        Ok(Self {
            batch: Mutex::new(batch),
            state: Mutex::default(),
            changed: Condvar::new(),
            nudge: Waker::new()?,
            leader_nudge: Waker::new()?,
        })
    }

    /// What the receive thread waits on beside the socket. Once it fired, the receive thread
    /// [`reset`](Waker::reset)s it and asks [`receiver_turn`](Self::receiver_turn) again.
    pub(crate) fn nudge(&self) -> &Waker {
        &self.nudge
    }

    /// What a leading application thread waits on beside the socket. Once it fired, the leader
    /// [`reset`](Waker::reset)s it and looks at its queue again.
    pub(crate) fn leader_nudge(&self) -> &Waker {
        &self.leader_nudge
    }

    /// After a thread other than the socket's reader queued messages: wakes the leader, if an
    /// application thread leads, so that it finds them.
    pub(crate) fn queued_elsewhere(&self) {
        if self.state.lock().app_leading {
            self.leader_nudge.wake();
        }
    }

    /// For an application thread whose queue is empty. Never blocks, so it may be called with
    /// the queue locked (which a follower keeps until it waits on the queue).
    pub(crate) fn turn(&self) -> Turn<'_, B> {
        if let Some(batch) = self.batch.try_lock() {
            return Turn::Lead(self.lead_with(batch));
        }
        let mut state = self.state.lock();
        if state.app_leading {
            state.followers += 1;
            return Turn::Follow(Follower { lead: self });
        }
        // The receive thread holds the batch: it parks once it sees this, after the nudge.
        state.app_recent = true;
        drop(state);
        self.nudge.wake();
        Turn::Asked
    }

    /// After [`Turn::Asked`], with no queue locked (the receive thread may be dispatching to
    /// it): waits until the batch is free, or `deadline` passes (`None`).
    pub(crate) fn take_over(&self, deadline: Option<Instant>) -> Option<Leader<'_, B>> {
        let batch = match deadline {
            Some(deadline) => self.batch.try_lock_until(deadline)?,
            None => self.batch.lock(),
        };
        Some(self.lead_with(batch))
    }

    fn lead_with<'a>(&'a self, batch: MutexGuard<'a, B>) -> Leader<'a, B> {
        let mut state = self.state.lock();
        state.app_leading = true;
        state.app_recent = true;
        Leader { lead: self, batch }
    }

    /// For the receive thread: waits while application threads lead, running `idle` once per
    /// lease meanwhile, and returns the batch once the receive thread should read; `None` once
    /// the context closed. Never waits for the batch itself, so `idle` runs while a leader
    /// holds it for long.
    pub(crate) fn receiver_turn(&self, idle: &mut dyn FnMut()) -> Option<MutexGuard<'_, B>> {
        let mut state = self.state.lock();
        loop {
            if state.closed {
                return None;
            }
            if state.resume || !(state.app_leading || state.app_recent) {
                state.resume = false;
                if let Some(batch) = self.batch.try_lock() {
                    state.app_recent = false;
                    return Some(batch);
                }
            }
            state.app_recent = false;
            self.changed.wait_for(&mut state, LEASE);
            MutexGuard::unlocked(&mut state, &mut *idle);
        }
    }

    /// Ends every wait of the receive thread and of a leader: the context closes.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.changed.notify_all();
        self.nudge.wake();
        self.leader_nudge.wake();
    }
}

impl<B> Deref for Leader<'_, B> {
    type Target = B;

    fn deref(&self) -> &B {
        &self.batch
    }
}

impl<B> DerefMut for Leader<'_, B> {
    fn deref_mut(&mut self) -> &mut B {
        &mut self.batch
    }
}

impl<B> Drop for Leader<'_, B> {
    fn drop(&mut self) {
        let mut state = self.lead.state.lock();
        state.app_leading = false;
        // Followers need a reader; the receive thread is the one that is surely there.
        if state.followers > 0 {
            state.resume = true;
            drop(state);
            self.lead.changed.notify_one();
        }
    }
}

impl<B> Drop for Follower<'_, B> {
    fn drop(&mut self) {
        self.lead.state.lock().followers -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicBool, Ordering},
        },
        thread,
    };

    use super::*;

    #[test]
    fn an_idle_socket_is_led_by_the_first_application_thread_and_followed_by_the_next() {
        let lead = Lead::new(0u32).unwrap();
        let Turn::Lead(mut leader) = lead.turn() else {
            panic!("nobody read, yet the first thread did not lead");
        };
        *leader += 1;
        assert!(matches!(lead.turn(), Turn::Follow(_)));
        drop(leader);
        let Turn::Lead(leader) = lead.turn() else {
            panic!("the leader left, yet the next thread did not lead");
        };
        assert_eq!(*leader, 1);
    }

    #[test]
    fn the_receive_thread_steps_aside_while_the_application_leads_and_returns_after_a_lease() {
        let lead = Lead::new(()).unwrap();
        let Turn::Lead(leader) = lead.turn() else {
            panic!("nobody read, yet the thread did not lead");
        };
        let reading = AtomicBool::new(false);
        thread::scope(|scope| {
            scope.spawn(|| {
                let batch = lead.receiver_turn(&mut || {});
                assert!(batch.is_some());
                reading.store(true, Ordering::SeqCst);
            });
            thread::sleep(LEASE * 5);
            assert!(
                !reading.load(Ordering::SeqCst),
                "the receive thread read while an application thread led"
            );
            drop(leader);
            let began = Instant::now();
            while !reading.load(Ordering::SeqCst) {
                assert!(
                    began.elapsed() < Duration::from_secs(5),
                    "the receive thread never took the socket back"
                );
                thread::sleep(Duration::from_millis(1));
            }
        });
    }

    #[test]
    fn asking_nudges_the_receive_thread_and_take_over_waits_for_the_batch() {
        let lead = Arc::new(Lead::new(()).unwrap());
        let batch = lead.receiver_turn(&mut || {}).unwrap();
        assert!(matches!(lead.turn(), Turn::Asked));
        assert!(
            lead.nudge.reset(),
            "asking did not nudge the receive thread"
        );
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(lead.take_over(Some(deadline)).is_none());
        let taker = {
            let lead = Arc::clone(&lead);
            thread::spawn(move || lead.take_over(None).is_some())
        };
        thread::sleep(Duration::from_millis(20));
        drop(batch);
        assert!(taker.join().unwrap());
        // The application thread asked and led: the receive thread waits, running its idle work.
        let mut idle_runs = 0;
        let mut closer = Some(&lead);
        let turn = lead.receiver_turn(&mut || {
            idle_runs += 1;
            if idle_runs == 1 {
                closer.take().unwrap().close();
            }
        });
        assert!(turn.is_none(), "a closed context still read");
        assert_eq!(idle_runs, 1);
    }

    #[test]
    fn a_leader_leaving_with_followers_waiting_resumes_the_receive_thread_at_once() {
        let lead = Lead::new(()).unwrap();
        let Turn::Lead(leader) = lead.turn() else {
            panic!("nobody read, yet the thread did not lead");
        };
        let Turn::Follow(follower) = lead.turn() else {
            panic!("a thread led while another led");
        };
        drop(leader);
        // An application thread led just now, so without the resume the receive thread would
        // wait out a lease (running its idle work) before reading for the follower.
        let mut idle_runs = 0;
        let batch = lead.receiver_turn(&mut || idle_runs += 1);
        assert!(batch.is_some());
        assert_eq!(
            idle_runs, 0,
            "the receive thread waited although a follower needs it"
        );
        drop(batch);
        drop(follower);
        assert_eq!(lead.state.lock().followers, 0);
        // Without followers a leaving leader lets the receive thread wait out the lease.
        let Turn::Lead(leader) = lead.turn() else {
            panic!("nobody read, yet the thread did not lead");
        };
        drop(leader);
        let mut idle_runs = 0;
        assert!(lead.receiver_turn(&mut || idle_runs += 1).is_some());
        assert!(
            idle_runs >= 1,
            "the receive thread read at once after a lone leader"
        );
    }
}
