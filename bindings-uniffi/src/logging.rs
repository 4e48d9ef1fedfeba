//! The library's log for Kotlin and Swift: the application hands in a [`Logger`] of its own
//! (an Android `Log` or `os_log` adapter, say) and a level, and receives every event of that
//! level or above, from whichever thread the library logs on.

use std::sync::{
    Arc, Once,
    atomic::{AtomicU8, Ordering},
};

use parking_lot::RwLock;
use tracing::{Event, Level, Metadata, Subscriber, field::Field, subscriber::Interest};
use tracing_subscriber::{Layer, layer::Context, prelude::*};

/// How much to log, from only errors to everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum LogLevel {
    /// Something failed.
    Error,
    /// Something went wrong and was dealt with: a relay went silent, a core could not be reached.
    Warn,
    /// A change worth knowing: a tunnel opened or moved, a gateway elected.
    Info,
    /// Detail for debugging.
    Debug,
    /// Every step.
    Trace,
}

impl LogLevel {
    fn of(level: Level) -> Self {
        match level {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            _ => Self::Trace,
        }
    }

    /// The level as a number that grows with detail (0 is reserved for "off").
    fn rank(self) -> u8 {
        self as u8 + 1
    }
}

/// Receives the library's log events.
#[uniffi::export(with_foreign)]
pub trait Logger: Send + Sync {
    /// One event: its level, where it comes from (`sixcast::channel`, ...) and its message
    /// followed by its fields (`name=value`).
    fn log(&self, level: LogLevel, target: String, message: String);
}

/// The logger now set, and the most detailed level it takes (0: none set).
static LOGGER: RwLock<Option<Arc<dyn Logger>>> = RwLock::new(None);
static MAX_RANK: AtomicU8 = AtomicU8::new(0);

/// Sends the library's events of `level` and above to `logger` from now on, replacing any
/// logger set before. Returns false, setting nothing, if the process already has a tracing
/// subscriber of another kind (a Rust host application's own).
#[uniffi::export]
pub fn set_logger(logger: Arc<dyn Logger>, level: LogLevel) -> bool {
    if !install() {
        return false;
    }
    *LOGGER.write() = Some(logger);
    MAX_RANK.store(level.rank(), Ordering::Release);
    true
}

/// Stops sending the library's events to the logger set with [`set_logger`].
#[uniffi::export]
pub fn clear_logger() {
    MAX_RANK.store(0, Ordering::Release);
    *LOGGER.write() = None;
}

/// Installs the forwarding layer as the global subscriber, once; whether it is the one.
fn install() -> bool {
    static INSTALL: Once = Once::new();
    static INSTALLED: AtomicU8 = AtomicU8::new(0);
    INSTALL.call_once(|| {
        let installed = tracing_subscriber::registry()
            .with(Forward)
            .try_init()
            .is_ok();
        INSTALLED.store(u8::from(installed), Ordering::Release);
    });
    INSTALLED.load(Ordering::Acquire) == 1
}

/// Hands events to the logger set, if their level is wanted.
struct Forward;

impl<S: Subscriber> Layer<S> for Forward {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level can change at any time: ask `enabled` for every event.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        LogLevel::of(*metadata.level()).rank() <= MAX_RANK.load(Ordering::Acquire)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let Some(logger) = LOGGER.read().clone() else {
            return;
        };
        let mut text = Text::default();
        event.record(&mut text);
        let metadata = event.metadata();
        logger.log(
            LogLevel::of(*metadata.level()),
            metadata.target().to_owned(),
            text.0,
        );
    }
}

/// An event's message, then its other fields as `name=value`.
#[derive(Default)]
struct Text(String);

impl tracing::field::Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        let separator = if self.0.is_empty() { "" } else { " " };
        let _ = if field.name() == "message" {
            write!(self.0, "{separator}{value:?}")
        } else {
            write!(self.0, "{separator}{}={value:?}", field.name())
        };
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use super::*;

    #[derive(Default)]
    struct Kept(Mutex<Vec<(LogLevel, String, String)>>);

    impl Logger for Kept {
        fn log(&self, level: LogLevel, target: String, message: String) {
            self.0.lock().push((level, target, message));
        }
    }

    #[test]
    fn events_of_the_level_and_above_reach_the_logger() {
        let kept = Arc::new(Kept::default());
        assert!(set_logger(kept.clone(), LogLevel::Info));
        tracing::info!(target: "sixcast::test", relay = "[fd5c::21]:6448", "tunnel opened");
        tracing::debug!(target: "sixcast::test", "too detailed");
        tracing::warn!(target: "sixcast::test", "relay went silent");
        clear_logger();
        tracing::error!(target: "sixcast::test", "after clearing");
        let kept = kept.0.lock().clone();
        assert_eq!(
            kept,
            [
                (
                    LogLevel::Info,
                    "sixcast::test".to_owned(),
                    "tunnel opened relay=\"[fd5c::21]:6448\"".to_owned()
                ),
                (
                    LogLevel::Warn,
                    "sixcast::test".to_owned(),
                    "relay went silent".to_owned()
                ),
            ]
        );
    }
}
