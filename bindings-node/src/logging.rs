//! The library's log for Node programs: with `SIXCAST_LOG` set in the environment (a filter
//! such as `warn`, `info` or `sixcast=debug`), its events go to standard error, as the `sixcast`
//! command's do. Without it the binding prints nothing.

use std::sync::Once;

/// Installs the standard-error logger once, when the first context opens, if `SIXCAST_LOG` is
/// set and names a valid filter.
pub(crate) fn init_from_env() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("SIXCAST_LOG") else {
            return;
        };
        // A program that installed a tracing subscriber of its own keeps it.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    });
}
