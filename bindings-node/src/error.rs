//! Core errors as JavaScript errors: an `Error` whose `code` is stable per [`ErrorKind`] (the
//! `node` column of `tests/conformance/vectors/errors.json`), whose `kind` is the kind's name and
//! whose message is the core's.

use std::collections::BTreeMap;

use napi::{
    Env, JsError, Result,
    bindgen_prelude::{JsObjectValue, JsValue, Object},
};
use napi_derive::napi;
use sixcast::{ErrorKind, wire::DecodeError};

/// The `code` of an error whose kind this build of the binding does not know yet (the core may
/// add kinds; they keep their own `kind` name).
const GENERIC_CODE: &str = "ERR_SIXCAST";

/// The Node `code` of `kind`.
pub(crate) fn code_of(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidName => "ERR_SIXCAST_INVALID_NAME",
        ErrorKind::InvalidConfig => "ERR_SIXCAST_INVALID_CONFIG",
        ErrorKind::InvalidAddress => "ERR_SIXCAST_INVALID_ADDRESS",
        ErrorKind::UnknownInterface => "ERR_SIXCAST_UNKNOWN_INTERFACE",
        ErrorKind::MessageTooLarge => "ERR_SIXCAST_MESSAGE_TOO_LARGE",
        ErrorKind::Malformed => "ERR_SIXCAST_MALFORMED",
        ErrorKind::Timeout => "ERR_SIXCAST_TIMEOUT",
        ErrorKind::Closed => "ERR_SIXCAST_CLOSED",
        ErrorKind::Io => "ERR_SIXCAST_IO",
        ErrorKind::Unsupported => "ERR_SIXCAST_UNSUPPORTED",
        // `ErrorKind` is non-exhaustive. The test that compares `errorCodes()` with errors.json
        // fails for a kind that lands here, so the table above gets extended.
        _ => GENERIC_CODE,
    }
}

/// The `code` of every error kind the core defines, by kind name, for `err.code === ...`
/// comparisons without string literals.
#[napi(ts_return_type = "Record<string, string>")]
pub fn error_codes() -> BTreeMap<&'static str, &'static str> {
    ErrorKind::ALL
        .iter()
        .map(|&kind| (kind.name(), code_of(kind)))
        .collect()
}

/// The status of a napi error, which napi-rs writes to the JavaScript error's `code`.
struct NodeCode(&'static str);

impl AsRef<str> for NodeCode {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// Converts a core error into the JavaScript error to throw or reject with.
pub(crate) fn to_js(env: &Env, err: &sixcast::Error) -> napi::Error {
    build(env, err, |_| Ok(()))
}

/// Converts a datagram that does not decode into a Malformed error that also carries the stable
/// `reason` (`truncated`, `bad_magic`, ...).
pub(crate) fn malformed_to_js(env: &Env, err: DecodeError) -> napi::Error {
    build(env, &sixcast::Error::from(err), |error| {
        error.set_named_property("reason", err.reason())
    })
}

fn build(
    env: &Env,
    err: &sixcast::Error,
    add_fields: impl FnOnce(&mut Object) -> Result<()>,
) -> napi::Error {
    let kind = err.kind();
    let with_code = napi::Error::new(NodeCode(code_of(kind)), err.message());
    let object = JsError::from(with_code)
        .into_unknown(*env)
        .coerce_to_object()
        .and_then(|mut error| {
            error.set_named_property("kind", kind.name())?;
            add_fields(&mut error)?;
            Ok(error)
        });
    match object {
        Ok(error) => napi::Error::from(error.to_unknown()),
        // Only a failing JavaScript engine gets here; its own error is the better report.
        Err(failure) => failure,
    }
}

/// Turns core results into napi results whose errors become JavaScript errors with a `code`.
pub(crate) trait OrThrow<T> {
    /// The value, or the error converted with [`to_js`].
    fn or_throw(self, env: &Env) -> Result<T>;
}

impl<T> OrThrow<T> for sixcast::Result<T> {
    fn or_throw(self, env: &Env) -> Result<T> {
        self.map_err(|err| to_js(env, &err))
    }
}
