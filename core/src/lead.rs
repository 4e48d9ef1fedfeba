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
//! One thread reads at a time: the one holding the receive batch. A leader that leaves while
//! followers wait wakes the first of them, which leads next. When the receive thread reads, a
//! thread that wants to lead asks it to step aside (a nudge wakes it from its wait on the socket)
//! and follows meanwhile; the receive thread wakes the first follower once it has stepped aside.
//! It stays aside while application threads keep leading, and reads again once none has led for a
//! [`LEASE`], or at once when followers are left without a leader. Under a steady stream
//! (reads that bring several datagrams each, see [`BUSY`]) application threads do not lead: the
//! receive thread, handing messages over while it reads on, wakes less often per datagram.

use std::{
    ops::{Deref, DerefMut},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::{error::Result, socket::Waker};

/// How long the receive thread stays aside after an application thread last led. It bounds how
/// late datagrams are read for channels nobody waits on while the application is busy between
/// receives, and costs the parked receive thread one wake-up per lease.
pub(crate) const LEASE: Duration = Duration::from_millis(2);

/// Datagrams per read, in sixteenths, from which application threads stop leading: under a
/// steady stream the receive thread, handing messages over while it reads on, collects about twice
/// as many datagrams per wake-up as a leader that reads, dispatches and returns, and every
/// wake-up of a receiver is work in the sender's softirq (measured in `docs/perf/receive-path.md`).
const BUSY: u32 = 2 * 16;
/// Leases in a row that the receive thread found an application thread leading, after which it
/// stops waking every lease: an application waiting in a receive with nothing arriving (an idle
/// listener) reads everything itself, and the receive thread would only wake for nothing.
const QUIET_LEASES: u32 = 8;
/// How long the receive thread then waits at most: often enough for its idle work (the
/// inbox's expiry, once a second), and the leader wakes it as soon as it leaves.
const QUIET_WAIT: Duration = Duration::from_millis(500);
/// The right to read the socket, and the batch to read it into. `F` is what wakes a follower
/// (its channel), `promote` how.
pub(crate) struct Lead<B, F> {
    batch: Mutex<B>,
    state: Mutex<State<F>>,
    promote: fn(&F),
    /// The receive thread waits here while application threads lead.
    changed: Condvar,
    /// Wakes the receive thread from its wait on the socket, so that it steps aside.
    nudge: Waker,
    /// Wakes a leading application thread from its wait on the socket: a message reached the
    /// queues another way (through a relay's tunnel), or the context closes.
    leader_nudge: Waker,
    /// Moving average of datagrams per read, in sixteenths (see [`BUSY`]).
    per_read: AtomicU32,
}

struct State<F> {
    /// An application thread holds the batch.
    app_leading: bool,
    /// An application thread led, or asked to, since the receive thread last looked.
    app_recent: bool,
    /// Leases in a row the receive thread found an application thread leading.
    leading_leases: u32,
    /// The receive thread waits [`QUIET_WAIT`], not a lease: a leaving leader must wake it.
    receiver_quiet: bool,
    /// Application threads waiting on their queue for what another thread reads, first come
    /// first, each with its number.
    followers: Vec<(u64, F)>,
    next_follower: u64,
    /// Followers were left without a leader: the receive thread reads again at once.
    resume: bool,
    /// An application thread asked the receive thread to step aside.
    asked: bool,
    closed: bool,
}

/// What an application thread with an empty queue does.
pub(crate) enum Turn<'a, B, F: Clone> {
    /// Read the socket: nobody else does.
    Lead(Leader<'a, B, F>),
    /// Wait on the queue: another thread reads, and wakes this one when it may lead.
    Follow(Follower<'a, B, F>),
}

/// An application thread's right to read; dropping it hands the socket on. Drop it with no queue
/// locked: it wakes the next leader through that follower's queue.
pub(crate) struct Leader<'a, B, F: Clone> {
    lead: &'a Lead<B, F>,
    /// Released before the next leader is woken, so that it finds the batch free.
    batch: Option<MutexGuard<'a, B>>,
}

/// An application thread waiting for what another thread reads. Keep it until the thread's next
/// [`Lead::turn`], so that a follower woken to lead is not counted as gone before it leads.
pub(crate) struct Follower<'a, B, F: Clone> {
    lead: &'a Lead<B, F>,
    number: u64,
}

impl<B, F: Clone> Lead<B, F> {
    pub(crate) fn new(batch: B, promote: fn(&F)) -> Result<Self> {
        Ok(Self {
            batch: Mutex::new(batch),
            state: Mutex::new(State {
                app_leading: false,
                app_recent: false,
                leading_leases: 0,
                receiver_quiet: false,
                followers: Vec::new(),
                next_follower: 0,
                resume: false,
                asked: false,
                closed: false,
            }),
            promote,
            changed: Condvar::new(),
            nudge: Waker::new()?,
            leader_nudge: Waker::new()?,
            per_read: AtomicU32::new(16),
        })
    }

    /// Whoever read the socket notes how many datagrams one read brought.
    pub(crate) fn note_read(&self, datagrams: usize) {
        let sample = u32::try_from(datagrams)
            .unwrap_or(u32::MAX)
            .saturating_mul(16);
        let average = self.per_read.load(Ordering::Relaxed);
        // Only readers store it, one at a time; a lost update is harmless.
        self.per_read
            .store(average - average / 8 + sample / 8, Ordering::Relaxed);
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

    /// The socket stayed quiet for a while: the next datagrams start a new stream.
    pub(crate) fn note_idle(&self) {
        self.per_read.store(16, Ordering::Relaxed);
    }

    /// For an application thread whose queue is empty; `me` wakes it should it follow. Never
    /// blocks, so it may be called with the queue locked, which a follower keeps until it waits
    /// on the queue: waking it takes that lock, so the wake-up cannot come too early.
    pub(crate) fn turn(&self, me: &F) -> Turn<'_, B, F> {
        let busy = self.per_read.load(Ordering::Relaxed) >= BUSY;
        if !busy && let Some(batch) = self.batch.try_lock() {
            return Turn::Lead(self.lead_with(batch));
        }
        let mut state = self.state.lock();
        if busy && !state.app_leading {
            // A steady stream: the receive thread reads for everyone, at once if it waits.
            state.resume = true;
            self.changed.notify_one();
        } else if !state.app_leading {
            // The receive thread holds the batch: once nudged it steps aside, wakes the first
            // follower, and parks.
            state.app_recent = true;
            state.asked = true;
            self.nudge.wake();
        }
        let number = state.next_follower;
        state.next_follower += 1;
        state.followers.push((number, me.clone()));
        Turn::Follow(Follower { lead: self, number })
    }

    /// For the receive thread, after it released the batch because the nudge fired: wakes the
    /// first follower to lead if an application thread asked.
    pub(crate) fn stepped_aside(&self) {
        let mut state = self.state.lock();
        if !std::mem::take(&mut state.asked) {
            return;
        }
        let next = state.followers.first().map(|(_, next)| next.clone());
        drop(state);
        if let Some(next) = next {
            (self.promote)(&next);
        }
    }

    fn lead_with<'a>(&'a self, batch: MutexGuard<'a, B>) -> Leader<'a, B, F> {
        let mut state = self.state.lock();
        state.app_leading = true;
        state.app_recent = true;
        Leader {
            lead: self,
            batch: Some(batch),
        }
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
            state.leading_leases = if state.app_leading {
                state.leading_leases.saturating_add(1)
            } else {
                0
            };
            state.receiver_quiet = state.leading_leases >= QUIET_LEASES;
            let wait = if state.receiver_quiet {
                QUIET_WAIT
            } else {
                LEASE
            };
            self.changed.wait_for(&mut state, wait);
            state.receiver_quiet = false;
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

const HELD: &str = "a leader holds the batch until it is dropped";

impl<B, F: Clone> Deref for Leader<'_, B, F> {
    type Target = B;

    fn deref(&self) -> &B {
        self.batch.as_deref().expect(HELD)
    }
}

impl<B, F: Clone> DerefMut for Leader<'_, B, F> {
    fn deref_mut(&mut self) -> &mut B {
        self.batch.as_deref_mut().expect(HELD)
    }
}

impl<B, F: Clone> Drop for Leader<'_, B, F> {
    fn drop(&mut self) {
        drop(self.batch.take());
        let mut state = self.lead.state.lock();
        state.app_leading = false;
        if std::mem::take(&mut state.receiver_quiet) {
            // The receive thread waits long while leaders come back at once; this one may not.
            self.lead.changed.notify_one();
        }
        let next = state.followers.first().map(|(_, next)| next.clone());
        drop(state);
        if let Some(next) = next {
            (self.lead.promote)(&next);
        }
    }
}

impl<B, F: Clone> Drop for Follower<'_, B, F> {
    fn drop(&mut self) {
        let mut state = self.lead.state.lock();
        state.followers.retain(|(number, _)| *number != self.number);
        // A follower woken to lead that found its message instead: the others need a reader.
        if !state.app_leading && !state.followers.is_empty() {
            state.resume = true;
            drop(state);
            self.lead.changed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicBool, AtomicUsize, Ordering},
        },
        thread,
        time::Instant,
    };

    use super::*;

    /// A follower's handle in these tests: counts how often it was woken to lead.
    type Woken = Arc<AtomicUsize>;

    fn wake(woken: &Woken) {
        woken.fetch_add(1, Ordering::SeqCst);
    }

    fn lead<B>(batch: B) -> Lead<B, Woken> {
        Lead::new(batch, wake).unwrap()
    }

    #[test]
    fn an_idle_socket_is_led_by_the_first_application_thread_and_followed_by_the_next() {
        let lead = lead(0u32);
        let me = Woken::default();
        let Turn::Lead(mut leader) = lead.turn(&me) else {
            panic!("nobody read, yet the first thread did not lead");
        };
        *leader += 1;
        assert!(matches!(lead.turn(&me), Turn::Follow(_)));
        drop(leader);
        let Turn::Lead(leader) = lead.turn(&me) else {
            panic!("the leader left, yet the next thread did not lead");
        };
        assert_eq!(*leader, 1);
    }

    #[test]
    fn the_receive_thread_steps_aside_while_the_application_leads_and_returns_after_a_lease() {
        let lead = lead(());
        let Turn::Lead(leader) = lead.turn(&Woken::default()) else {
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
    fn a_long_leader_lets_the_receive_thread_sleep_and_wakes_it_on_leaving() {
        let lead = lead(());
        let Turn::Lead(leader) = lead.turn(&Woken::default()) else {
            panic!("nobody read, yet the thread did not lead");
        };
        let (idles, reading) = (AtomicUsize::new(0), AtomicBool::new(false));
        thread::scope(|scope| {
            scope.spawn(|| {
                let batch = lead.receiver_turn(&mut || {
                    idles.fetch_add(1, Ordering::SeqCst);
                });
                assert!(batch.is_some());
                reading.store(true, Ordering::SeqCst);
            });
            // Past the quiet leases, the receive thread stops waking every lease.
            thread::sleep(LEASE * (QUIET_LEASES + 4));
            let settled = idles.load(Ordering::SeqCst);
            thread::sleep(LEASE * 40);
            let woken = idles.load(Ordering::SeqCst) - settled;
            assert!(
                woken <= 1,
                "the receive thread woke {woken} times in 40 leases"
            );
            // Leaving wakes it at once, not after its long wait.
            drop(leader);
            let began = Instant::now();
            while !reading.load(Ordering::SeqCst) {
                assert!(
                    began.elapsed() < QUIET_WAIT / 2,
                    "the receive thread slept on after the leader left"
                );
                thread::sleep(Duration::from_millis(1));
            }
        });
    }

    #[test]
    fn asking_nudges_the_receive_thread_which_wakes_the_asker_once_aside() {
        let lead = lead(());
        let batch = lead.receiver_turn(&mut || {}).unwrap();
        let asker = Woken::default();
        let Turn::Follow(follows) = lead.turn(&asker) else {
            panic!("a thread led while the receive thread read");
        };
        assert!(
            lead.nudge.reset(),
            "asking did not nudge the receive thread"
        );
        drop(batch);
        lead.stepped_aside();
        assert_eq!(asker.load(Ordering::SeqCst), 1, "the asker was not woken");
        let Turn::Lead(leader) = lead.turn(&asker) else {
            panic!("the receive thread stepped aside, yet the asker did not lead");
        };
        drop(follows);
        drop(leader);
        // A nudge nobody asked for wakes nobody.
        lead.stepped_aside();
        assert_eq!(asker.load(Ordering::SeqCst), 1);
        // The application thread led just now: the receive thread waits, running its idle work.
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
    fn under_a_steady_stream_the_receive_thread_reads_for_everyone() {
        let lead = lead(());
        let me = Woken::default();
        for _ in 0..20 {
            lead.note_read(6);
        }
        let Turn::Follow(follows) = lead.turn(&me) else {
            panic!("a thread led although reads bring several datagrams each");
        };
        // The receive thread is told to read at once, without waiting out a lease.
        let mut idle_runs = 0;
        assert!(lead.receiver_turn(&mut || idle_runs += 1).is_some());
        assert_eq!(idle_runs, 0);
        drop(follows);
        for _ in 0..40 {
            lead.note_read(1);
        }
        assert!(
            matches!(lead.turn(&me), Turn::Lead(_)),
            "single datagrams, yet no lead"
        );
        for _ in 0..20 {
            lead.note_read(6);
        }
        lead.note_idle();
        assert!(
            matches!(lead.turn(&me), Turn::Lead(_)),
            "a quiet socket, yet no lead"
        );
    }

    #[test]
    fn a_leaving_leader_wakes_the_first_follower_to_lead_next() {
        let lead = lead(());
        let (first, second) = (Woken::default(), Woken::default());
        let Turn::Lead(leader) = lead.turn(&Woken::default()) else {
            panic!("nobody read, yet the thread did not lead");
        };
        let Turn::Follow(first_follows) = lead.turn(&first) else {
            panic!("a thread led while another led");
        };
        let Turn::Follow(second_follows) = lead.turn(&second) else {
            panic!("a thread led while another led");
        };
        drop(leader);
        assert_eq!(
            first.load(Ordering::SeqCst),
            1,
            "the first follower was not woken"
        );
        assert_eq!(second.load(Ordering::SeqCst), 0);
        // Woken, the first follower leads before it stops following: nobody else is woken.
        let Turn::Lead(next_leader) = lead.turn(&first) else {
            panic!("the woken follower did not find the batch free");
        };
        drop(first_follows);
        thread::scope(|scope| {
            // The receive thread waits while it leads.
            let receiver = scope.spawn(|| {
                let mut idle_runs = 0;
                assert!(lead.receiver_turn(&mut || idle_runs += 1).is_some());
                idle_runs
            });
            thread::sleep(LEASE * 3);
            drop(next_leader);
            assert!(receiver.join().unwrap() >= 1);
        });
        assert_eq!(
            second.load(Ordering::SeqCst),
            1,
            "the next leader woke nobody"
        );
        // A follower that stops following with no leader there leaves the others to the receive
        // thread at once.
        let third = Woken::default();
        let Turn::Lead(leader) = lead.turn(&third) else {
            panic!("nobody read, yet the thread did not lead");
        };
        let Turn::Follow(third_follows) = lead.turn(&third) else {
            panic!("a thread led while another led");
        };
        drop(leader);
        drop(second_follows);
        let mut idle_runs = 0;
        assert!(lead.receiver_turn(&mut || idle_runs += 1).is_some());
        assert_eq!(
            idle_runs, 0,
            "the receive thread waited although followers need it"
        );
        drop(third_follows);
    }
}
