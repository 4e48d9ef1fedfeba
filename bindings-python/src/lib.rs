//! The Python binding of sixcast: the extension module `sixcast._sixcast`, re-exported by the
//! pure-Python package `sixcast` (python/sixcast/__init__.py).
//!
//! The binding is thin: it converts types and errors and adds Python idioms (context managers,
//! iteration, asyncio); everything else happens in the `sixcast` crate. Its modules mirror the
//! crate's: `addr`, `channel` (Context, Channel, Message, Stats), `config`, `crypto` (keys), `error`,
//! `files` (FileReceiver), `reachability` (the core's `discovery` and `tunnel` reports), `wire`.

mod addr;
mod channel;
mod config;
mod crypto;
mod error;
mod events;
mod files;
mod reachability;
mod wire;

use pyo3::{
    exceptions::PyTypeError,
    prelude::*,
    pybacked::PyBackedBytes,
    types::{PyByteArray, PyBytes, PyMemoryView, PyString},
};

#[pymodule]
#[pyo3(name = "_sixcast")]
fn sixcast_module(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The library logs to Python's logging, under logger "sixcast" and its children. Levels are
    // cached per logger as it is first used, so that disabled levels cost no GIL; another
    // extension may have installed its `log` logger first, and then keeps it.
    let _ = pyo3_log::Logger::new(module.py(), pyo3_log::Caching::LoggersAndLevels)?.install();
    error::register(module)?;
    config::register(module)?;
    addr::register(module)?;
    wire::register(module)?;
    crypto::register(module)?;
    channel::register(module)?;
    files::register(module)?;
    reachability::register(module)?;
    Ok(())
}

/// The bytes of `value`: a str as UTF-8, or any bytes-like object (bytes, bytearray,
/// memoryview, array.array, ...). `what` names the argument in the TypeError for anything else.
pub(crate) fn bytes_or_text(value: &Bound<'_, PyAny>, what: &str) -> PyResult<PyBackedBytes> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.encode_utf8()?.into());
    }
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(bytes.clone().into());
    }
    if let Ok(array) = value.cast::<PyByteArray>() {
        return Ok(array.clone().into());
    }
    // Python 3.9's limited API has no buffer access, so other buffers are copied through
    // memoryview(value).tobytes(); memoryview() also tells buffers from everything else.
    match PyMemoryView::from(value) {
        Ok(view) => Ok(view.call_method0("tobytes")?.cast_into::<PyBytes>()?.into()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "{what} must be str or a bytes-like object, not {}",
            value.get_type().name()?
        ))),
    }
}
