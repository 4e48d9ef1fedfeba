//! The error type of the binding: one case per [`sixcast::ErrorKind`].

use sixcast::ErrorKind;

/// A sixcast error. Each case is one stable `ErrorKind` of the core and carries its message.
///
/// Kotlin sees `SixcastException.InvalidName` and so on (all subclasses of `SixcastException`),
/// Swift `SixcastError.InvalidName(message:)`, Python `SixcastError.InvalidName`. A kind added
/// to the core after this binding was built arrives as `Unsupported`,
/// with the core's kind name in front of the message (`"NewKind: ..."`).
// Flat: only the case and its message cross the boundary, which is all the core exposes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum SixcastError {
    /// A channel name is not acceptable (for example longer than 4096 bytes).
    #[error("{0}")]
    InvalidName(String),
    /// A configuration value is out of range or inconsistent with the rest of the configuration.
    #[error("{0}")]
    InvalidConfig(String),
    /// An address is not of the form the operation needs (not multicast, wrong profile, bad RP).
    #[error("{0}")]
    InvalidAddress(String),
    /// A named network interface does not exist or cannot carry multicast.
    #[error("{0}")]
    UnknownInterface(String),
    /// A message is larger than the configured maximum message size.
    #[error("{0}")]
    MessageTooLarge(String),
    /// Received bytes do not form a valid datagram or message of the protocol.
    #[error("{0}")]
    Malformed(String),
    /// A blocking call did not complete within its time limit.
    #[error("{0}")]
    Timeout(String),
    /// The context or channel has been closed.
    #[error("{0}")]
    Closed(String),
    /// The operating system refused a network operation.
    #[error("{0}")]
    Io(String),
    /// The platform or the chosen profile does not support the operation; also the fallback
    /// for error kinds newer than this binding.
    #[error("{0}")]
    Unsupported(String),
}

impl From<sixcast::Error> for SixcastError {
    fn from(err: sixcast::Error) -> Self {
        let message = err.message().to_owned();
        match err.kind() {
            ErrorKind::InvalidName => Self::InvalidName(message),
            ErrorKind::InvalidConfig => Self::InvalidConfig(message),
            ErrorKind::InvalidAddress => Self::InvalidAddress(message),
            ErrorKind::UnknownInterface => Self::UnknownInterface(message),
            ErrorKind::MessageTooLarge => Self::MessageTooLarge(message),
            ErrorKind::Malformed => Self::Malformed(message),
            ErrorKind::Timeout => Self::Timeout(message),
            ErrorKind::Closed => Self::Closed(message),
            ErrorKind::Io => Self::Io(message),
            ErrorKind::Unsupported => Self::Unsupported(message),
            // ErrorKind is non_exhaustive: keep the new kind's name rather than lose it.
            newer => Self::Unsupported(format!("{}: {message}", newer.name())),
        }
    }
}

/// A shorthand for results whose error crosses the FFI boundary.
pub(crate) type Result<T, E = SixcastError> = std::result::Result<T, E>;

/// Fails with the error case of the core's `ErrorKind` named `kind` (as in `ErrorKind::name`,
/// for example `"Timeout"`), built by the same conversion every other call uses.
///
/// This exists for tests: every language checks with it that each kind arrives as its own
/// case, including kinds such as `Io` that need a misbehaving network to happen for real. An
/// unknown name fails with `InvalidConfig`.
#[uniffi::export]
pub fn raise_error_kind(kind: String) -> Result<()> {
    let error = match ErrorKind::from_name(&kind) {
        Some(kind) => sixcast::Error::new(kind, format!("a {kind} error raised on request")),
        None => sixcast::Error::new(
            ErrorKind::InvalidConfig,
            format!("{kind:?} is not the name of a sixcast error kind"),
        ),
    };
    Err(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The case name as UniFFI exports it: the variant name, which Debug prints first.
    fn case_name(error: &SixcastError) -> String {
        let debug = format!("{error:?}");
        debug[..debug.find('(').unwrap_or(debug.len())].to_owned()
    }

    #[test]
    fn every_kind_maps_to_the_case_of_the_same_name_and_keeps_the_message() {
        for &kind in ErrorKind::ALL {
            let error = SixcastError::from(sixcast::Error::new(kind, "what went wrong"));
            assert_eq!(case_name(&error), kind.name());
            assert_eq!(error.to_string(), "what went wrong");
        }
    }

    #[test]
    fn case_names_are_the_uniffi_column_of_the_shared_vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/conformance/vectors/errors.json"
        );
        let vectors: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let kinds = vectors["kinds"].as_array().unwrap();
        assert_eq!(kinds.len(), ErrorKind::ALL.len());
        for kind in kinds {
            let core = ErrorKind::from_name(kind["name"].as_str().unwrap()).unwrap();
            let error = SixcastError::from(sixcast::Error::new(core, "m"));
            assert_eq!(case_name(&error), kind["uniffi"].as_str().unwrap());
        }
    }

    #[test]
    fn raise_error_kind_raises_each_kind_and_rejects_unknown_names() {
        for &kind in ErrorKind::ALL {
            let error = raise_error_kind(kind.name().to_owned()).unwrap_err();
            assert_eq!(case_name(&error), kind.name());
            assert!(error.to_string().contains(kind.name()), "{error}");
        }
        let error = raise_error_kind("NoSuchKind".to_owned()).unwrap_err();
        assert!(matches!(error, SixcastError::InvalidConfig(_)), "{error:?}");
    }
}
