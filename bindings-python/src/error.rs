//! sixcast errors as Python exceptions: `sixcast.Error` and one subclass per [`ErrorKind`].
//!
//! The classes are made at import time with `type(name, bases, namespace)` rather than
//! `create_exception!`, because two of them have two bases: `sixcast.TimeoutError` is also the
//! builtin `TimeoutError` and `sixcast.IoError` is also an `OSError`, so `except TimeoutError:`
//! and `except OSError:` catch them as Python programmers expect.

use std::io;

use pyo3::{
    exceptions::{PyException, PyOSError, PyTimeoutError},
    prelude::*,
    sync::PyOnceLock,
    types::{PyDict, PyTuple, PyType},
};
use sixcast::ErrorKind;

const BASE_DOC: &str = "Base class of every sixcast error.\n\n\
    ``kind`` is the stable name of the error's category (for example ``\"Timeout\"``), the same \
    in every language sixcast supports; ``message`` says what went wrong and what to do.";

/// How one kind appears in Python: its class name (the `python` column of
/// `tests/conformance/vectors/errors.json`), the builtin exception it also derives from, and its
/// docstring.
struct Spelling {
    class_name: &'static str,
    builtin: Option<Builtin>,
    doc: &'static str,
}

#[derive(Clone, Copy)]
enum Builtin {
    Timeout,
    OsError,
}

/// The Python spelling of `kind`, or `None` for a kind newer than this binding, which is then
/// raised as the base class `sixcast.Error` with its `kind` attribute still set.
fn spelling(kind: ErrorKind) -> Option<Spelling> {
    let (class_name, builtin, doc) = match kind {
        ErrorKind::InvalidName => (
            "InvalidNameError",
            None,
            "A channel name is not acceptable (for example longer than MAX_NAME_LEN bytes).",
        ),
        ErrorKind::InvalidConfig => (
            "InvalidConfigError",
            None,
            "A configuration value is out of range or inconsistent with the rest.",
        ),
        ErrorKind::InvalidAddress => (
            "InvalidAddressError",
            None,
            "An address is not of the form the operation needs (not multicast, wrong profile, bad RP).",
        ),
        ErrorKind::UnknownInterface => (
            "UnknownInterfaceError",
            None,
            "A named network interface does not exist or cannot carry multicast.",
        ),
        ErrorKind::MessageTooLarge => (
            "MessageTooLargeError",
            None,
            "A message is larger than the configured maximum message size.",
        ),
        ErrorKind::Malformed => (
            "MalformedError",
            None,
            "Bytes do not form a valid sixcast datagram; ``reason`` names the rule they break.",
        ),
        ErrorKind::Timeout => (
            "TimeoutError",
            Some(Builtin::Timeout),
            "A blocking call did not complete in time. Also a builtin ``TimeoutError``.",
        ),
        ErrorKind::Closed => ("ClosedError", None, "The context has been closed."),
        ErrorKind::Io => (
            "IoError",
            Some(Builtin::OsError),
            "The operating system refused a network operation. Also an ``OSError``, with ``errno`` \
             set when the OS gave one.",
        ),
        ErrorKind::Unsupported => (
            "UnsupportedError",
            None,
            "The platform or the chosen profile does not support the operation.",
        ),
        _ => return None,
    };
    Some(Spelling {
        class_name,
        builtin,
        doc,
    })
}

/// The exception classes, made once per interpreter.
struct Classes {
    base: Py<PyType>,
    by_kind: Vec<(ErrorKind, Py<PyType>)>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn classes(py: Python<'_>) -> PyResult<&'static Classes> {
    CLASSES.get_or_try_init(py, || {
        let base = new_class(py, "Error", BASE_DOC, &[py.get_type::<PyException>()], None)?;
        let by_kind = ErrorKind::ALL
            .iter()
            .filter_map(|&kind| spelling(kind).map(|spelling| (kind, spelling)))
            .map(|(kind, spelling)| {
                let mut bases = vec![base.bind(py).clone()];
                bases.extend(spelling.builtin.map(|builtin| match builtin {
                    Builtin::Timeout => py.get_type::<PyTimeoutError>(),
                    Builtin::OsError => py.get_type::<PyOSError>(),
                }));
                let class = new_class(py, spelling.class_name, spelling.doc, &bases, Some(kind))?;
                Ok((kind, class))
            })
            .collect::<PyResult<_>>()?;
        Ok(Classes { base, by_kind })
    })
}

/// `type(name, bases, namespace)`, with the class shown as `sixcast.<name>` and a class-level
/// `kind` (`None` on the base class).
fn new_class(
    py: Python<'_>,
    name: &str,
    doc: &str,
    bases: &[Bound<'_, PyType>],
    kind: Option<ErrorKind>,
) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "sixcast")?;
    namespace.set_item("__doc__", doc)?;
    namespace.set_item("kind", kind.map(ErrorKind::name))?;
    if kind == Some(ErrorKind::Malformed) {
        namespace.set_item("reason", py.None())?;
    }
    let class = py
        .get_type::<PyType>()
        .call1((name, PyTuple::new(py, bases)?, namespace))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

/// Adds `Error` and every kind's class to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let classes = classes(py)?;
    module.add("Error", classes.base.bind(py))?;
    for (_, class) in &classes.by_kind {
        module.add(class.bind(py).name()?, class.bind(py))?;
    }
    Ok(())
}

/// Converts a sixcast error into the Python exception of its kind, with `kind` and `message`
/// set on the instance.
pub(crate) fn to_py_err(err: sixcast::Error) -> PyErr {
    Python::attach(|py| instantiate(py, &err).unwrap_or_else(|failure| failure))
}

fn instantiate(py: Python<'_>, err: &sixcast::Error) -> PyResult<PyErr> {
    let classes = classes(py)?;
    let class = classes
        .by_kind
        .iter()
        .find(|(kind, _)| *kind == err.kind())
        .map_or(&classes.base, |(_, class)| class)
        .bind(py);
    let errno = err.io_error().and_then(io::Error::raw_os_error);
    let instance = match errno {
        // OSError(errno, strerror) fills in `errno` and `strerror`.
        Some(errno) if err.kind() == ErrorKind::Io => class.call1((errno, err.message()))?,
        _ => class.call1((err.message(),))?,
    };
    instance.setattr("kind", err.kind().name())?;
    instance.setattr("message", err.message())?;
    Ok(PyErr::from_value(instance))
}

/// `?` for sixcast results inside functions that return [`PyResult`].
pub(crate) trait OrRaise<T> {
    /// Turns a sixcast error into the matching Python exception.
    fn or_raise(self) -> PyResult<T>;
}

impl<T> OrRaise<T> for sixcast::Result<T> {
    fn or_raise(self) -> PyResult<T> {
        self.map_err(to_py_err)
    }
}
