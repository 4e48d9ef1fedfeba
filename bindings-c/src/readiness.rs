//! A file descriptor that becomes readable when a channel has a message, so that a C event loop
//! (poll, epoll, libuv, libevent) or Go's runtime poller waits for channels beside its own
//! sockets without a thread blocked in a receive.
//!
//! The descriptor is an eventfd. One watcher thread per channel handle waits on the core's
//! readiness primitive (`Channel::wait_readable`) and signals the eventfd; it then waits until
//! the application has drained the queue (a try-receive found nothing) before it watches again,
//! so a waiting message never spins the watcher and is never missed.

use std::{
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    sync::Arc,
    thread::JoinHandle,
    time::Duration,
};

use parking_lot::{Condvar, Mutex};

use crate::error::{Failure, Result};

/// How long a freed channel handle may wait for its watcher to notice. Only freeing waits on it.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// A channel's eventfd and the thread that signals it.
pub(crate) struct Readiness {
    shared: Arc<Shared>,
    watcher: Option<JoinHandle<()>>,
}

struct Shared {
    eventfd: OwnedFd,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// The eventfd was signalled and the application has not yet drained the queue.
    signalled: bool,
    stopping: bool,
}

impl Readiness {
    /// Starts watching `channel`.
    pub(crate) fn start(channel: sixcast::Channel) -> Result<Self> {
        // SAFETY: eventfd takes no pointers; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io_failure(
                "make the readiness eventfd",
                std::io::Error::last_os_error(),
            ));
        }
        let shared = Arc::new(Shared {
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
            state: Mutex::default(),
            changed: Condvar::new(),
        });
        let watcher = std::thread::Builder::new()
            .name("sixcast-readiness".into())
            .spawn({
                let shared = Arc::clone(&shared);
                move || shared.watch(&channel)
            })
            .map_err(|err| io_failure("start the readiness thread", err))?;
        Ok(Self {
            shared,
            watcher: Some(watcher),
        })
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.shared.eventfd.as_raw_fd()
    }

    /// The application found the queue empty: the next message must signal again.
    pub(crate) fn drained(&self) {
        let mut state = self.shared.state.lock();
        if state.signalled {
            state.signalled = false;
            self.shared.changed.notify_all();
        }
    }
}

fn io_failure(what: &str, err: std::io::Error) -> Failure {
    sixcast::Error::new(sixcast::ErrorKind::Io, format!("cannot {what}: {err}")).into()
}

impl Drop for Readiness {
    fn drop(&mut self) {
        self.shared.state.lock().stopping = true;
        self.shared.changed.notify_all();
        if let Some(watcher) = self.watcher.take() {
            // A watcher that panicked has nothing left to clean up.
            let _ = watcher.join();
        }
    }
}

impl Shared {
    fn watch(&self, channel: &sixcast::Channel) {
        loop {
            {
                let mut state = self.state.lock();
                while state.signalled && !state.stopping {
                    self.changed.wait(&mut state);
                }
                if state.stopping {
                    return;
                }
            }
            match channel.wait_readable(Some(STOP_CHECK)) {
                Ok(false) => {}
                Ok(true) => {
                    self.state.lock().signalled = true;
                    self.signal();
                }
                // Closed: wake the application once more, so that its receive reports it.
                Err(_) => {
                    self.signal();
                    return;
                }
            }
        }
    }

    fn signal(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to the eventfd this struct owns. It can only
        // fail when the counter is near overflow, and then the descriptor is readable anyway.
        unsafe { libc::write(self.eventfd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}
