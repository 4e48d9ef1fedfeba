//! The one error type of the crate and its stable classification.
//!
//! Every fallible call returns [`Error`]. Its [`ErrorKind`] is the stable part: the bindings map
//! each kind one-to-one to a Python exception class, a Node error `code` and a UniFFI error enum
//! case, and the conformance vectors name kinds by [`ErrorKind::name`]. Messages may be reworded;
//! kinds and their names may not.

use std::{fmt, io};

/// A convenient alias for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in categories that stay stable across releases and languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A channel name is not acceptable (for example longer than [`crate::addr::MAX_NAME_LEN`]).
    InvalidName,
    /// A configuration value is out of range or inconsistent with the rest of the configuration.
    InvalidConfig,
    /// An address is not of the form the operation needs (not multicast, wrong profile, bad RP).
    InvalidAddress,
    /// A named network interface does not exist or cannot carry multicast.
    UnknownInterface,
    /// A message is larger than the configured maximum message size.
    MessageTooLarge,
    /// Received bytes do not form a valid datagram or message of the protocol.
    Malformed,
    /// A blocking call did not complete within its time limit.
    Timeout,
    /// The context or channel has been closed.
    Closed,
    /// The operating system refused a network operation.
    Io,
    /// The platform or the chosen profile does not support the operation.
    Unsupported,
}

impl ErrorKind {
    /// Every kind, in declaration order. The bindings' mapping tests iterate over this list.
    pub const ALL: &'static [Self] = &[
        Self::InvalidName,
        Self::InvalidConfig,
        Self::InvalidAddress,
        Self::UnknownInterface,
        Self::MessageTooLarge,
        Self::Malformed,
        Self::Timeout,
        Self::Closed,
        Self::Io,
        Self::Unsupported,
    ];

    /// The stable name of this kind, as used in conformance vectors and binding error codes.
    pub const fn name(self) -> &'static str {
        match self {
            Self::InvalidName => "InvalidName",
            Self::InvalidConfig => "InvalidConfig",
            Self::InvalidAddress => "InvalidAddress",
            Self::UnknownInterface => "UnknownInterface",
            Self::MessageTooLarge => "MessageTooLarge",
            Self::Malformed => "Malformed",
            Self::Timeout => "Timeout",
            Self::Closed => "Closed",
            Self::Io => "Io",
            Self::Unsupported => "Unsupported",
        }
    }

    /// Looks a kind up by its stable [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.name() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error from sixcast: a stable [`ErrorKind`], a human-readable message that says what is
/// wrong and what to do, and optionally the underlying OS error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<io::Error>,
}

impl Error {
    /// Creates an error of `kind` with a message for humans.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Creates an [`ErrorKind::Io`] error that explains which operation the OS refused.
    pub fn io(context: impl fmt::Display, source: io::Error) -> Self {
        Self {
            kind: ErrorKind::Io,
            message: format!("{context}: {source}"),
            source: Some(source),
        }
    }

    /// The stable category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The OS error behind an [`ErrorKind::Io`] error, if any.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.source.as_ref()
    }

    /// The error of an operation on a closed context.
    #[doc(hidden)]
    pub fn closed() -> Self {
        Self::new(
            ErrorKind::Closed,
            "the context is closed; create a new one to continue",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for kind in ErrorKind::ALL {
            assert_eq!(ErrorKind::from_name(kind.name()), Some(*kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        let mut names: Vec<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::from_name("NoSuchKind"), None);
    }

    #[test]
    fn io_errors_keep_their_source_and_context() {
        let err = Error::io(
            "joining ff1e::1",
            io::Error::from_raw_os_error(libc::ENODEV),
        );
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.message().starts_with("joining ff1e::1: "));
        assert_eq!(
            err.io_error().and_then(io::Error::raw_os_error),
            Some(libc::ENODEV)
        );
    }
}
