//! The datagram codec, for tools and tests: `decode_datagram`, `pack_messages` and the wire
//! constants. No I/O.

use pyo3::{
    prelude::*,
    types::{PyBytes, PyList},
};
use sixcast::{
    NodeId,
    wire::{self, Datagram},
};

use crate::{
    bytes_or_text,
    error::{OrRaise, to_py_err},
};

/// A decoded datagram that carries whole messages with consecutive sequence numbers.
#[pyclass(module = "sixcast", name = "MessageBatch", frozen)]
pub(crate) struct PyMessageBatch {
    /// The sending node's id, 16 hexadecimal digits.
    #[pyo3(get)]
    sender: String,
    /// The sequence number of the first message.
    #[pyo3(get)]
    first_seq: u64,
    messages: Vec<(u64, Py<PyBytes>)>,
}

#[pymethods]
impl PyMessageBatch {
    /// Always "messages".
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        "messages"
    }

    /// The messages as (sequence number, payload) pairs, in the order they were sent.
    #[getter]
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(
            py,
            self.messages
                .iter()
                .map(|(seq, payload)| (*seq, payload.clone_ref(py))),
        )
    }

    fn __repr__(&self) -> String {
        let count = self.messages.len();
        let noun = if count == 1 { "message" } else { "messages" };
        format!(
            "MessageBatch(sender='{}', first_seq={}, messages=<{count} {noun}>)",
            self.sender, self.first_seq,
        )
    }
}

/// A decoded datagram that carries one piece of a message too large for a single datagram.
#[pyclass(module = "sixcast", name = "Fragment", frozen, get_all)]
pub(crate) struct PyFragment {
    /// The sending node's id, 16 hexadecimal digits.
    sender: String,
    /// The sequence number of the whole message.
    seq: u64,
    /// The length of the whole message.
    total_len: u32,
    /// Where the chunk starts in the whole message.
    offset: u32,
    /// The position of this fragment among the message's fragments, from 0.
    index: u16,
    /// The number of fragments of the message.
    count: u16,
    /// The bytes of the message from ``offset`` on.
    chunk: Py<PyBytes>,
}

#[pymethods]
impl PyFragment {
    /// Always "fragment".
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        "fragment"
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Fragment(sender='{}', seq={}, total_len={}, offset={}, index={}, count={}, chunk=<{} bytes>)",
            self.sender,
            self.seq,
            self.total_len,
            self.offset,
            self.index,
            self.count,
            self.chunk.bind(py).as_bytes().len(),
        )
    }
}

/// Decodes one received datagram into a MessageBatch or a Fragment. Raises MalformedError,
/// whose ``reason`` names the first rule the bytes break (for example "truncated").
#[pyfunction]
fn decode_datagram<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let data = bytes_or_text(data, "data")?;
    match wire::decode(&data) {
        Ok(Datagram::Messages(batch)) => {
            let batch = PyMessageBatch {
                sender: batch.sender.to_string(),
                first_seq: batch.first_seq,
                messages: batch
                    .iter()
                    .map(|(seq, payload)| (seq, PyBytes::new(py, payload).unbind()))
                    .collect(),
            };
            Ok(Bound::new(py, batch)?.into_any())
        }
        Ok(Datagram::Fragment(fragment)) => {
            let fragment = PyFragment {
                sender: fragment.sender.to_string(),
                seq: fragment.seq,
                total_len: fragment.total_len,
                offset: fragment.offset,
                index: fragment.index,
                count: fragment.count,
                chunk: PyBytes::new(py, fragment.chunk).unbind(),
            };
            Ok(Bound::new(py, fragment)?.into_any())
        }
        Err(decode_error) => {
            let err = to_py_err(decode_error.into());
            err.value(py).setattr("reason", decode_error.reason())?;
            Err(err)
        }
    }
}

/// The datagrams a sender with node id ``sender`` (16 hex digits) whose next sequence number is
/// ``first_seq`` emits for ``messages``, with datagrams of at most ``max_datagram`` bytes.
#[pyfunction]
fn pack_messages(
    py: Python<'_>,
    sender: &str,
    first_seq: u64,
    max_datagram: usize,
    messages: Vec<Bound<'_, PyAny>>,
) -> PyResult<Vec<Py<PyBytes>>> {
    let sender: NodeId = sender.parse().or_raise()?;
    let messages = messages
        .iter()
        .map(|message| bytes_or_text(message, "each message"))
        .collect::<PyResult<Vec<_>>>()?;
    let borrowed: Vec<&[u8]> = messages.iter().map(|message| &message[..]).collect();
    let datagrams = wire::pack(sender, first_seq, max_datagram, &borrowed).or_raise()?;
    Ok(datagrams
        .iter()
        .map(|datagram| PyBytes::new(py, datagram).unbind())
        .collect())
}

/// Adds the codec functions, its result classes and the wire constants to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<PyMessageBatch>()?;
    module.add_class::<PyFragment>()?;
    module.add_function(wrap_pyfunction!(decode_datagram, module)?)?;
    module.add_function(wrap_pyfunction!(pack_messages, module)?)?;
    module.add("MAGIC", PyBytes::new(py, &wire::MAGIC))?;
    module.add("PROTOCOL_VERSION", wire::VERSION)?;
    module.add("HEADER_LEN", wire::HEADER_LEN)?;
    module.add("FRAGMENT_HEADER_LEN", wire::FRAGMENT_HEADER_LEN)?;
    module.add("MIN_DATAGRAM_SIZE", wire::MIN_DATAGRAM_SIZE)?;
    module.add("DEFAULT_DATAGRAM_SIZE", wire::DEFAULT_DATAGRAM_SIZE)?;
    module.add("MAX_DATAGRAM_SIZE", wire::MAX_DATAGRAM_SIZE)?;
    module.add("DEFAULT_MAX_MESSAGE_SIZE", wire::DEFAULT_MAX_MESSAGE_SIZE)?;
    module.add("MAX_MESSAGE_SIZE_LIMIT", wire::MAX_MESSAGE_SIZE_LIMIT)?;
    Ok(())
}
