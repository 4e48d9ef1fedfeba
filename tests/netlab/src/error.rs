//! The crate's error type.

use std::{io, time::Duration};

/// A convenient alias for results of this crate.
pub type Result<T, E = NetlabError> = std::result::Result<T, E>;

/// Everything that can go wrong while building, using or tearing down a test world.
///
/// Each message says what failed and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetlabError {
    /// A program the harness runs is not installed.
    #[error("{tool} is not installed: apt-get install {package}")]
    MissingTool {
        /// The program that was looked for (in `PATH`, `/usr/sbin` and `/sbin`).
        tool: &'static str,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// The machine or the current privileges cannot host test worlds.
    #[error("this environment cannot build test worlds: {reason}")]
    Unsupported {
        /// Why, and how to get an environment that can.
        reason: String,
    },
    /// A program the harness ran exited with a failure.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line (and, for `ip -batch`, its input).
        command: String,
        /// How it ended.
        status: String,
        /// What it printed on standard error.
        stderr: String,
    },
    /// A program the harness ran did not finish in time and was killed.
    #[error(
        "`{command}` did not finish within {timeout:?} and was killed; is the machine overloaded?"
    )]
    CommandTimedOut {
        /// The command line.
        command: String,
        /// The time it was given.
        timeout: Duration,
    },
    /// Part of the world did not become ready in time.
    #[error("{what} was not ready within {timeout:?}: {detail}")]
    NotReady {
        /// What was waited for.
        what: String,
        /// The time it was given.
        timeout: Duration,
        /// The last observed state, or the log of the process that failed.
        detail: String,
    },
    /// A network namespace could not be entered.
    #[error("cannot enter network namespace {netns}: {source} (was its world torn down?)")]
    EnterNamespace {
        /// The namespace's name under `/run/netns`.
        netns: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// An operating-system call failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A host name that the world does not have.
    #[error("this world has no host named {name:?}; its hosts are: {known}")]
    UnknownHost {
        /// The name asked for.
        name: String,
        /// The world's host names, comma-separated.
        known: String,
    },
    /// An argument out of range or malformed.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl NetlabError {
    /// Wraps an I/O error with what the harness was doing when it happened.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this error means the environment cannot host worlds at all (so a test should be
    /// skipped rather than failed).
    pub fn is_environment_problem(&self) -> bool {
        matches!(self, Self::MissingTool { .. } | Self::Unsupported { .. })
    }
}
