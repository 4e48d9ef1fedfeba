//! Errors across the C boundary: every call returns a [`SixcastStatus`] and, when the caller
//! asks for it, a [`SixcastError`] with the message. Panics are caught here and never unwind
//! into C.

use std::{
    ffi::{CStr, CString, c_char},
    panic::{AssertUnwindSafe, catch_unwind},
};

use sixcast::ErrorKind;

/// What a call of the C API returned: `SIXCAST_STATUS_OK`, one status per error kind of the
/// core (the same names as in every other language), or a misuse of the C API itself.
///
/// Values are stable: new kinds get new numbers, and a kind this build does not know yet
/// arrives as `SIXCAST_STATUS_UNSUPPORTED` with the kind's name in front of the message.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SixcastStatus {
    /// The call succeeded.
    Ok = 0,
    /// A channel name is not acceptable (for example longer than 4096 bytes).
    InvalidName = 1,
    /// A configuration value is out of range or inconsistent with the rest.
    InvalidConfig = 2,
    /// An address is not of the form the operation needs.
    InvalidAddress = 3,
    /// A named network interface does not exist or cannot carry multicast.
    UnknownInterface = 4,
    /// A message is larger than the configured maximum message size.
    MessageTooLarge = 5,
    /// Bytes do not form a valid datagram or message of the protocol.
    Malformed = 6,
    /// A blocking call did not complete within its time limit.
    Timeout = 7,
    /// The context or channel has been closed.
    Closed = 8,
    /// The operating system refused a network operation.
    Io = 9,
    /// The platform or the chosen profile does not support the operation.
    Unsupported = 10,
    /// A pointer argument was NULL, or text was not UTF-8: a bug in the calling program.
    InvalidArgument = 100,
    /// The library failed in a way it did not expect (a caught panic): a bug in sixcast.
    Internal = 101,
}

impl SixcastStatus {
    fn of_kind(kind: ErrorKind) -> Option<Self> {
        Some(match kind {
            ErrorKind::InvalidName => Self::InvalidName,
            ErrorKind::InvalidConfig => Self::InvalidConfig,
            ErrorKind::InvalidAddress => Self::InvalidAddress,
            ErrorKind::UnknownInterface => Self::UnknownInterface,
            ErrorKind::MessageTooLarge => Self::MessageTooLarge,
            ErrorKind::Malformed => Self::Malformed,
            ErrorKind::Timeout => Self::Timeout,
            ErrorKind::Closed => Self::Closed,
            ErrorKind::Io => Self::Io,
            ErrorKind::Unsupported => Self::Unsupported,
            _ => return None,
        })
    }

    /// The status's name: the core's kind name (`"Timeout"`), `"Ok"`, `"InvalidArgument"` or
    /// `"Internal"`.
    fn name(self) -> &'static CStr {
        match self {
            Self::Ok => c"Ok",
            Self::InvalidName => c"InvalidName",
            Self::InvalidConfig => c"InvalidConfig",
            Self::InvalidAddress => c"InvalidAddress",
            Self::UnknownInterface => c"UnknownInterface",
            Self::MessageTooLarge => c"MessageTooLarge",
            Self::Malformed => c"Malformed",
            Self::Timeout => c"Timeout",
            Self::Closed => c"Closed",
            Self::Io => c"Io",
            Self::Unsupported => c"Unsupported",
            Self::InvalidArgument => c"InvalidArgument",
            Self::Internal => c"Internal",
        }
    }
}

/// An error: its status and a message for people. Free it with `sixcast_error_free`.
pub struct SixcastError {
    status: SixcastStatus,
    message: CString,
}

/// A failure inside the binding, before it becomes a [`SixcastError`].
#[derive(Debug)]
pub(crate) struct Failure {
    status: SixcastStatus,
    message: String,
}

impl Failure {
    /// A misuse of the C API: a NULL pointer, text that is not UTF-8.
    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Self {
            status: SixcastStatus::InvalidArgument,
            message: message.into(),
        }
    }

    /// The status the failure returns.
    #[cfg(test)]
    pub(crate) fn status(&self) -> SixcastStatus {
        self.status
    }
}

impl From<sixcast::Error> for Failure {
    fn from(err: sixcast::Error) -> Self {
        match SixcastStatus::of_kind(err.kind()) {
            Some(status) => Self {
                status,
                message: err.message().to_owned(),
            },
            // ErrorKind is non_exhaustive: keep the newer kind's name rather than lose it.
            None => Self {
                status: SixcastStatus::Unsupported,
                message: format!("{}: {}", err.kind().name(), err.message()),
            },
        }
    }
}

pub(crate) type Result<T, E = Failure> = std::result::Result<T, E>;

/// Runs the body of an exported function: its failure, or a panic, becomes a status and, when
/// `error_out` is not NULL, an error stored there.
pub(crate) fn guard(
    error_out: *mut *mut SixcastError,
    body: impl FnOnce() -> Result<()>,
) -> SixcastStatus {
    let failure = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return SixcastStatus::Ok,
        Ok(Err(failure)) => failure,
        Err(panic) => Failure {
            status: SixcastStatus::Internal,
            message: format!("sixcast panicked: {}", panic_text(panic.as_ref())),
        },
    };
    let status = failure.status;
    if !error_out.is_null() {
        let error = SixcastError {
            status,
            // Messages are Rust strings; an interior NUL would only cut them short.
            message: CString::new(failure.message.replace('\0', " ")).unwrap_or_default(),
        };
        // SAFETY: the caller passes NULL or a pointer it can write a pointer through.
        unsafe { error_out.write(Box::into_raw(Box::new(error))) };
    }
    status
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// The status of `error`; `SIXCAST_STATUS_INVALID_ARGUMENT` for NULL.
///
/// # Safety
/// `error` is NULL or an error from this library that was not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_error_status(error: *const SixcastError) -> SixcastStatus {
    // SAFETY: per the contract above.
    unsafe { error.as_ref() }.map_or(SixcastStatus::InvalidArgument, |error| error.status)
}

/// The message of `error`, valid until the error is freed; "" for NULL.
///
/// # Safety
/// `error` is NULL or an error from this library that was not freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_error_message(error: *const SixcastError) -> *const c_char {
    // SAFETY: per the contract above.
    unsafe { error.as_ref() }.map_or(c"".as_ptr(), |error| error.message.as_ptr())
}

/// Frees an error. NULL is ignored.
///
/// # Safety
/// `error` is NULL or an error from this library, freed once.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_error_free(error: *mut SixcastError) {
    if !error.is_null() {
        // SAFETY: per the contract above, the box came from `guard` and is freed once.
        drop(unsafe { Box::from_raw(error) });
    }
}

/// The name of `status` (a static string): the core's error kind name such as `"Timeout"`,
/// or `"Ok"`, `"InvalidArgument"`, `"Internal"`; `"Unknown"` for a value no status has.
#[unsafe(no_mangle)]
pub extern "C" fn sixcast_status_name(status: i32) -> *const c_char {
    status_from_code(status)
        .map_or(c"Unknown", SixcastStatus::name)
        .as_ptr()
}

/// Returns an error of the core's kind named `kind` (such as `"Timeout"`), made by the same
/// conversion every other call uses, so that tests can check each kind's status; an unknown
/// name gives `SIXCAST_STATUS_INVALID_CONFIG`.
///
/// # Safety
/// `kind` is a NUL-terminated string; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_raise_error_kind(
    kind: *const c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let name = unsafe { crate::text::arg(kind, "kind") }?;
        Err(match ErrorKind::from_name(name) {
            Some(kind) => sixcast::Error::new(kind, format!("a {kind} error raised on request")),
            None => sixcast::Error::new(
                ErrorKind::InvalidConfig,
                format!("{name:?} is not the name of a sixcast error kind"),
            ),
        }
        .into())
    })
}

fn status_from_code(code: i32) -> Option<SixcastStatus> {
    const ALL: [SixcastStatus; 13] = [
        SixcastStatus::Ok,
        SixcastStatus::InvalidName,
        SixcastStatus::InvalidConfig,
        SixcastStatus::InvalidAddress,
        SixcastStatus::UnknownInterface,
        SixcastStatus::MessageTooLarge,
        SixcastStatus::Malformed,
        SixcastStatus::Timeout,
        SixcastStatus::Closed,
        SixcastStatus::Io,
        SixcastStatus::Unsupported,
        SixcastStatus::InvalidArgument,
        SixcastStatus::Internal,
    ];
    ALL.into_iter().find(|status| *status as i32 == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_status_of_its_own_name() {
        for &kind in ErrorKind::ALL {
            let status = SixcastStatus::of_kind(kind).expect("every kind has a status");
            assert_eq!(status.name().to_str().unwrap(), kind.name());
            assert_eq!(status_from_code(status as i32), Some(status));
        }
        assert_eq!(status_from_code(-1), None);
    }

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let mut error = std::ptr::null_mut();
        let status = guard(&raw mut error, || panic!("boom"));
        assert_eq!(status, SixcastStatus::Internal);
        // SAFETY: `guard` stored a live error.
        unsafe {
            let message = CStr::from_ptr(sixcast_error_message(error));
            assert!(message.to_str().unwrap().contains("boom"));
            sixcast_error_free(error);
        }
    }
}
