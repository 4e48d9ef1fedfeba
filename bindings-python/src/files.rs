//! Files to every receiver of a channel, as in the core's `files` module: `Channel.send_file`
//! (defined with the other Channel methods, in `channel`) and `FileReceiver`. Results are dicts;
//! SHA-256 digests are hex, node ids 16 hex digits.

use std::path::Path;

use parking_lot::Mutex;
use pyo3::{prelude::*, types::PyDict};
use sixcast::files::{
    self, FileOutcome, FileReceiver, FileStats, ReceiveOptions, SendOptions, SentFile,
};

use crate::{
    channel::{PyChannel, deadline, in_slices},
    error::OrRaise,
};

/// `Channel.send_file`: the core's `send_file` without the GIL, its result as a dict.
pub(crate) fn send_file<'py>(
    py: Python<'py>,
    channel: &sixcast::Channel,
    path: &Path,
    passes: Option<u32>,
    name: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut options = SendOptions::default();
    if let Some(passes) = passes {
        options.passes = passes;
    }
    options.name = name;
    let sent = py
        .detach(|| files::send_file(channel, path, &options, &mut |_| {}))
        .or_raise()?;
    sent_dict(py, &sent)
}

fn sent_dict<'py>(py: Python<'py>, sent: &SentFile) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("name", &sent.name)?;
    dict.set_item("size", sent.size)?;
    dict.set_item("sha256", hex::encode(sent.sha256))?;
    dict.set_item("chunk", sent.chunk)?;
    Ok(dict)
}

/// Receives files sent with ``Channel.send_file`` into the folder ``dir`` (str or path-like),
/// which must exist; raises InvalidConfigError if it is not a folder. Offers of files larger
/// than ``max_size`` bytes (default: no limit), or beyond ``max_transfers`` files at once
/// (default 16), are refused. The receiver does not join: join the channel it receives from.
///
/// A file arrives as ``.NAME.sixcast-part`` beside ``.NAME.sixcast-state`` and is renamed NAME
/// once its SHA-256 matches; what arrived of an unfinished file is kept, and a later receiver
/// in the same folder resumes it.
#[pyclass(module = "sixcast", name = "FileReceiver", frozen)]
pub(crate) struct PyFileReceiver {
    /// Locked by one receive slice at a time (see `recv`), never while holding the GIL.
    inner: Mutex<FileReceiver>,
}

#[pymethods]
impl PyFileReceiver {
    #[new]
    #[pyo3(signature = (dir, *, max_size = None, max_transfers = None))]
    fn new(
        dir: std::path::PathBuf,
        max_size: Option<u64>,
        max_transfers: Option<usize>,
    ) -> PyResult<Self> {
        let mut options = ReceiveOptions::default();
        if let Some(max_size) = max_size {
            options.max_size = max_size;
        }
        if let Some(max_transfers) = max_transfers {
            options.max_transfers = max_transfers;
        }
        let inner = FileReceiver::new(dir, options).or_raise()?;
        Ok(Self {
            inner: Mutex::new(inner),
        })
    }

    /// Receives from ``channel`` until a transfer ends, at most ``timeout`` seconds if given,
    /// and returns a dict. A file received whole and checked: ``complete`` True, ``name``,
    /// ``path`` (str), ``size``, ``sha256`` (hex), ``sender`` (node id) and ``resumed`` (bytes
    /// an earlier receiver had kept). A file whose sender finished before all of it arrived:
    /// ``complete`` False, ``name``, ``size`` and ``missing`` (bytes); what arrived is kept for
    /// a later sending. Raises sixcast.TimeoutError when no transfer ended in time (what
    /// arrived is kept and resumed by the next call), MalformedError when a whole file does not
    /// match its SHA-256, IoError when the folder cannot be written, and ClosedError once the
    /// context is closed. Releases the GIL while waiting; Ctrl-C interrupts it.
    #[pyo3(signature = (channel, timeout = None))]
    fn recv<'py>(
        &self,
        py: Python<'py>,
        channel: &PyChannel,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let deadline = deadline(timeout)?;
        let outcome = in_slices(py, deadline, |slice| {
            self.inner.lock().recv(&channel.inner, slice, &mut |_| {})
        })?
        .or_raise()?;
        outcome_dict(py, &outcome)
    }

    /// What this receiver saw so far, as a dict of counters: ``frames`` (messages that were
    /// file frames), ``other_messages``, ``malformed``, ``refused`` (offers), ``unfollowed``
    /// (frames of no transfer this receiver follows), ``chunks`` (written) and
    /// ``duplicate_chunks``.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = py.detach(|| self.inner.lock().stats());
        stats_dict(py, &stats)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let stats = py.detach(|| self.inner.lock().stats());
        format!(
            "<sixcast.FileReceiver chunks={} refused={}>",
            stats.chunks, stats.refused
        )
    }
}

fn outcome_dict<'py>(py: Python<'py>, outcome: &FileOutcome) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    match outcome {
        FileOutcome::Complete(file) => {
            dict.set_item("complete", true)?;
            dict.set_item("name", &file.name)?;
            dict.set_item("path", file.path.as_os_str())?;
            dict.set_item("size", file.size)?;
            dict.set_item("sha256", hex::encode(file.sha256))?;
            dict.set_item("sender", file.sender.to_string())?;
            dict.set_item("resumed", file.resumed)?;
        }
        FileOutcome::Incomplete(partial) => {
            dict.set_item("complete", false)?;
            dict.set_item("name", &partial.name)?;
            dict.set_item("size", partial.size)?;
            dict.set_item("missing", partial.missing)?;
        }
    }
    Ok(dict)
}

fn stats_dict<'py>(py: Python<'py>, stats: &FileStats) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("frames", stats.frames)?;
    dict.set_item("other_messages", stats.other_messages)?;
    dict.set_item("malformed", stats.malformed)?;
    dict.set_item("refused", stats.refused)?;
    dict.set_item("unfollowed", stats.unfollowed)?;
    dict.set_item("chunks", stats.chunks)?;
    dict.set_item("duplicate_chunks", stats.duplicate_chunks)?;
    Ok(dict)
}

/// Adds `FileReceiver` to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyFileReceiver>()
}
