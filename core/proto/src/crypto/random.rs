//! The operating system's random number generator: the one source of the library's secrets
//! (keys, cookie secrets), nonces and node ids. It fails closed: when the generator fails, the
//! caller gets an error, never a value derived from the clock or the process id, which an
//! attacker could guess (a guessed cookie secret opens the relay to amplification, and a
//! repeated node id repeats AEAD nonces under a channel key).

use crate::{Error, ErrorKind, Result, wire::NodeId};

/// Fills `bytes` from the operating system's random number generator.
pub fn fill(bytes: &mut [u8]) -> Result<()> {
    #[cfg(any(test, feature = "failure-injection"))]
    if failure::injected() {
        return Err(failed("injected by a test"));
    }
    getrandom::fill(bytes).map_err(|err| failed(&err.to_string()))
}

impl NodeId {
    /// A fresh id from the operating system's random number generator, or an
    /// [`ErrorKind::Io`] error if it fails: ids must not repeat, because sealed channels derive
    /// their nonces from them. (Defined here, beside the generator: the codec knows no
    /// randomness.)
    pub fn random() -> Result<Self> {
        u64().map(Self)
    }
}

/// A random 64-bit number.
pub fn u64() -> Result<u64> {
    let mut bytes = [0; 8];
    fill(&mut bytes)?;
    Ok(u64::from_be_bytes(bytes))
}

fn failed(cause: &str) -> Error {
    Error::new(
        ErrorKind::Io,
        format!(
            "the operating system's random number generator failed ({cause}); without it there \
             are no safe keys, nonces or node ids"
        ),
    )
}

/// Makes the generator fail on one thread, so that tests can show what fails closed (feature
/// `failure-injection`, for the tests of this crate and of `sixcast`; never in a release).
#[cfg(any(test, feature = "failure-injection"))]
pub mod failure {
    use std::cell::Cell;

    thread_local! {
        static INJECTED: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn injected() -> bool {
        INJECTED.get()
    }

    /// Runs `f` with the generator failing on this thread.
    pub fn while_failing<T>(f: impl FnOnce() -> T) -> T {
        struct Restore;
        impl Drop for Restore {
            fn drop(&mut self) {
                INJECTED.set(false);
            }
        }
        INJECTED.set(true);
        let _restore = Restore;
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_and_fails_closed() {
        let (mut first, mut second) = ([0u8; 32], [0u8; 32]);
        fill(&mut first).unwrap();
        fill(&mut second).unwrap();
        assert_ne!(first, second);
        let err = failure::while_failing(u64).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(
            err.to_string().contains("random number generator failed"),
            "{err}"
        );
        assert!(u64().is_ok(), "the failure ends with the closure");
    }
}
