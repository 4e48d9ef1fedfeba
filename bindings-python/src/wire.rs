//! The datagram codec, for tools and tests: `decode_datagram`, `pack_messages`, the datagrams
//! of reliable channels (`decode_repair`), the manifests of signed runs (`decode_manifest`), the
//! control messages (`decode_control`, `control_mac`) and the wire constants. No I/O.

use std::net::SocketAddrV6;

use pyo3::{
    prelude::*,
    types::{PyBytes, PyList},
};
use sixcast::{
    Error, ErrorKind, NodeId,
    wire::{
        self, Datagram, DecodeError,
        control::{self, Control},
        manifest,
        repair::{self, Repair},
    },
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
        Err(decode_error) => Err(malformed(py, decode_error)),
    }
}

/// A decoded numbered packet of a reliable channel (SEQUENCED, docs/reliability.md).
#[pyclass(module = "sixcast", name = "Sequenced", frozen, get_all)]
pub(crate) struct PySequenced {
    /// The sending node's id, 16 hexadecimal digits.
    sender: String,
    /// Its number among the sender's packets on the channel, from 0.
    packet: u64,
    /// The datagram it carries: a whole datagram of the channel, possibly sealed or signed.
    inner: Py<PyBytes>,
}

#[pymethods]
impl PySequenced {
    /// Always "sequenced".
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        "sequenced"
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Sequenced(sender='{}', packet={}, inner=<{} bytes>)",
            self.sender,
            self.packet,
            self.inner.bind(py).as_bytes().len(),
        )
    }
}

/// A decoded Reed-Solomon parity symbol over a block of a reliable channel's packets (PARITY).
#[pyclass(module = "sixcast", name = "Parity", frozen, get_all)]
pub(crate) struct PyParity {
    /// The id of the node whose packets it repairs, 16 hexadecimal digits.
    sender: String,
    /// The first packet number of the block.
    block_start: u64,
    /// How many packets the block holds.
    block_len: u16,
    /// Which of the block's parity symbols this is, from 0.
    index: u16,
    /// The symbol.
    symbol: Py<PyBytes>,
}

#[pymethods]
impl PyParity {
    /// Always "parity".
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        "parity"
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Parity(sender='{}', block_start={}, block_len={}, index={}, symbol=<{} bytes>)",
            self.sender,
            self.block_start,
            self.block_len,
            self.index,
            self.symbol.bind(py).as_bytes().len(),
        )
    }
}

/// A decoded request for repair (NACK). The asking node is ``from_``, since ``from`` is a
/// Python keyword.
#[pyclass(module = "sixcast", name = "Nack", frozen)]
pub(crate) struct PyNack {
    /// The id of the receiver asking, 16 hexadecimal digits.
    #[pyo3(get, name = "from_")]
    from: String,
    /// The id of the sender asked, 16 hexadecimal digits.
    #[pyo3(get)]
    target: String,
    /// How far the receiver has heard the sender (exclusive): the highest packet number or
    /// block end it has heard of.
    #[pyo3(get)]
    heard: u64,
    /// The missing packets as (first, count) ranges, in the order sent.
    #[pyo3(get)]
    ranges: Vec<(u64, u32)>,
}

#[pymethods]
impl PyNack {
    /// Always "nack".
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        "nack"
    }

    fn __repr__(&self) -> String {
        let count = self.ranges.len();
        let noun = if count == 1 { "range" } else { "ranges" };
        format!(
            "Nack(from_='{}', target='{}', heard={}, ranges=<{count} {noun}>)",
            self.from, self.target, self.heard,
        )
    }
}

/// A decoded receiver's report of how far it got (STATUS). The reporting node is ``from_``,
/// since ``from`` is a Python keyword.
#[pyclass(module = "sixcast", name = "Status", frozen)]
pub(crate) struct PyStatus {
    /// The id of the receiver reporting, 16 hexadecimal digits.
    #[pyo3(get, name = "from_")]
    from: String,
    /// The id of the sender it reports on, 16 hexadecimal digits.
    #[pyo3(get)]
    target: String,
    /// The channel's multicast group, IPv6 address text.
    #[pyo3(get)]
    group: String,
    /// The next packet it waits for: it has handed on every one before.
    #[pyo3(get)]
    position: u64,
}

#[pymethods]
impl PyStatus {
    /// Always "status".
    #[getter(r#type)]
    fn kind(&self) -> &'static str {
        "status"
    }

    fn __repr__(&self) -> String {
        format!(
            "Status(from_='{}', target='{}', group='{}', position={})",
            self.from, self.target, self.group, self.position,
        )
    }
}

/// Decodes one received datagram of a reliable channel into a Sequenced, Parity, Nack or
/// Status. Raises MalformedError, whose ``reason`` names the first rule the bytes break (for
/// example "bad_count").
#[pyfunction]
fn decode_repair<'py>(data: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = data.py();
    let data = bytes_or_text(data, "data")?;
    match repair::decode(&data) {
        Ok(Repair::Sequenced(packet)) => {
            let packet = PySequenced {
                sender: packet.sender.to_string(),
                packet: packet.packet,
                inner: PyBytes::new(py, packet.inner).unbind(),
            };
            Ok(Bound::new(py, packet)?.into_any())
        }
        Ok(Repair::Parity(parity)) => {
            let parity = PyParity {
                sender: parity.sender.to_string(),
                block_start: parity.block_start,
                block_len: parity.block_len,
                index: parity.index,
                symbol: PyBytes::new(py, parity.symbol).unbind(),
            };
            Ok(Bound::new(py, parity)?.into_any())
        }
        Ok(Repair::Nack(nack)) => {
            let nack = PyNack {
                from: nack.from.to_string(),
                target: nack.target.to_string(),
                heard: nack.heard,
                ranges: nack.ranges().collect(),
            };
            Ok(Bound::new(py, nack)?.into_any())
        }
        Ok(Repair::Status(status)) => {
            let status = PyStatus {
                from: status.from.to_string(),
                target: status.target.to_string(),
                group: status.group.to_string(),
                position: status.position,
            };
            Ok(Bound::new(py, status)?.into_any())
        }
        Err(decode_error) => Err(malformed(py, decode_error)),
    }
}

/// A decoded MANIFEST (docs/security.md, section 7): the digests of the datagrams one
/// signature covers.
#[pyclass(module = "sixcast", name = "Manifest", frozen)]
pub(crate) struct PyManifest {
    /// The id of the node that sent it and the datagrams it covers, 16 hexadecimal digits.
    #[pyo3(get)]
    sender: String,
    /// The sender's count of manifests; a repeated copy has the same number.
    #[pyo3(get)]
    number: u64,
    digests: Vec<Py<PyBytes>>,
}

#[pymethods]
impl PyManifest {
    /// The digests (DIGEST_LEN bytes each), in the order their datagrams were sent.
    #[getter]
    fn digests<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.digests.iter().map(|digest| digest.clone_ref(py)))
    }

    fn __repr__(&self) -> String {
        let count = self.digests.len();
        let noun = if count == 1 { "digest" } else { "digests" };
        format!(
            "Manifest(sender='{}', number={}, digests=<{count} {noun}>)",
            self.sender, self.number,
        )
    }
}

/// Decodes one plain (opened) MANIFEST datagram into a Manifest. Raises MalformedError, whose
/// ``reason`` names the first rule the bytes break (for example "bad_count").
#[pyfunction]
fn decode_manifest(data: &Bound<'_, PyAny>) -> PyResult<PyManifest> {
    let py = data.py();
    let data = bytes_or_text(data, "data")?;
    match manifest::decode(&data) {
        Ok(decoded) => Ok(PyManifest {
            sender: decoded.sender.to_string(),
            number: decoded.number,
            digests: decoded
                .digests()
                .map(|digest| PyBytes::new(py, &digest).unbind())
                .collect(),
        }),
        Err(decode_error) => Err(malformed(py, decode_error)),
    }
}

/// The MalformedError of `decode_error`, with its stable ``reason`` set.
pub(crate) fn malformed(py: Python<'_>, decode_error: DecodeError) -> PyErr {
    let err = to_py_err(decode_error.into());
    match err.value(py).setattr("reason", decode_error.reason()) {
        Ok(()) => err,
        Err(failure) => failure,
    }
}

/// A decoded control message (Stratum 0 probes, relay requests, the relay tunnel, gateway
/// announcements): ``name`` (for example "probe_reply") and the fields of that message type; the
/// fields it does not have are None. Nonces are 16 hexadecimal digits, socket addresses
/// "[address]:port", groups IPv6 address text.
#[pyclass(module = "sixcast", name = "ControlMessage", frozen, get_all)]
pub(crate) struct PyControlMessage {
    /// The message type's name, for example "probe_reply".
    name: &'static str,
    /// The message's nonce, 16 hexadecimal digits.
    nonce: Option<String>,
    /// PROBE: the nonce of the BEACON asked about (all zero for none).
    beacon_nonce: Option<String>,
    /// PROBE_REPLY: whether Stratum 0 heard the beacon.
    heard_beacon: Option<bool>,
    /// OFFER and CHALLENGE: the relay takes no new clients.
    limit: Option<bool>,
    /// OFFER: the offer comes from an SSM repeater.
    repeater: Option<bool>,
    /// PROBE_REPLY: the node's address and port as Stratum 0 saw them.
    observed: Option<String>,
    /// SOLICIT: the node that asked for relays.
    node: Option<String>,
    /// OFFER: where to open the tunnel.
    relay: Option<String>,
    /// TEARDOWN: the old address and port.
    old: Option<String>,
    /// REBIND: the tunnel's nonce, 16 hexadecimal digits.
    old_nonce: Option<String>,
    /// REBIND: the MAC the relay issued for the old address (16 bytes).
    old_mac: Option<Py<PyBytes>>,
    /// RELAY_REQUEST and COOKIE: the cookie (16 bytes).
    cookie: Option<Py<PyBytes>>,
    /// CHALLENGE, JOIN, LEAVE and TEARDOWN: the MAC (16 bytes).
    mac: Option<Py<PyBytes>>,
    /// OFFER: per mille of the relay's capacity in use.
    load: Option<u16>,
    /// CHALLENGE: how often to refresh the membership, in seconds.
    refresh_secs: Option<u16>,
    /// GATEWAY: the announcing gateway's node id, 16 hexadecimal digits.
    gateway: Option<String>,
    /// GATEWAY: how long the announcement stays valid, in milliseconds (0: withdrawn).
    hold_ms: Option<u16>,
    /// JOIN, LEAVE and GATEWAY: the groups.
    groups: Option<Vec<String>>,
    /// DATA: the group of the carried datagram.
    group: Option<String>,
    /// DATA: the carried sixcast datagram.
    datagram: Option<Py<PyBytes>>,
    /// SIGNED_CHALLENGE: the fingerprint of the relay's identity key, 16 hexadecimal digits.
    relay_key: Option<String>,
    /// SIGNED_CHALLENGE: the issuer's capability token for the relay's key (128 bytes), if any.
    voucher: Option<Py<PyBytes>>,
    /// SIGNED_CHALLENGE: the relay's Ed25519 signature (64 bytes).
    signature: Option<Py<PyBytes>>,
}

#[pymethods]
impl PyControlMessage {
    fn __repr__(&self) -> String {
        format!("ControlMessage(name='{}')", self.name)
    }
}

fn nonce_text(nonce: u64) -> String {
    format!("{nonce:016x}")
}

impl PyControlMessage {
    fn new(py: Python<'_>, message: &Control<'_>) -> Self {
        let fields = message.fields();
        let bytes = |data: &[u8]| PyBytes::new(py, data).unbind();
        Self {
            name: message.name(),
            nonce: fields.nonce.map(nonce_text),
            beacon_nonce: fields.beacon_nonce.map(nonce_text),
            heard_beacon: fields.heard_beacon,
            limit: fields.limit,
            repeater: fields.repeater,
            observed: fields.observed.as_ref().map(ToString::to_string),
            node: fields.node.as_ref().map(ToString::to_string),
            relay: fields.relay.as_ref().map(ToString::to_string),
            old: fields.old.as_ref().map(ToString::to_string),
            old_nonce: fields.old_nonce.map(nonce_text),
            old_mac: fields.old_mac.map(|mac| bytes(mac)),
            cookie: fields.cookie.map(|cookie| bytes(cookie)),
            mac: fields.mac.map(|mac| bytes(mac)),
            load: fields.load,
            refresh_secs: fields.refresh_secs,
            gateway: fields.gateway.map(|gateway| nonce_text(gateway.0)),
            hold_ms: fields.hold_ms,
            groups: fields
                .groups
                .map(|groups| groups.iter().map(ToString::to_string).collect()),
            group: fields.group.as_ref().map(ToString::to_string),
            datagram: fields.datagram.map(bytes),
            relay_key: fields.relay_key.as_ref().map(ToString::to_string),
            voucher: fields.voucher.map(|voucher| bytes(voucher)),
            signature: fields.signature.map(|signature| bytes(signature)),
        }
    }
}

/// Decodes one received control message into a ControlMessage. Raises MalformedError, whose
/// ``reason`` names the first rule the bytes break (for example "short_unverified").
#[pyfunction]
fn decode_control(data: &Bound<'_, PyAny>) -> PyResult<PyControlMessage> {
    let py = data.py();
    let data = bytes_or_text(data, "data")?;
    match control::decode(&data) {
        Ok(message) => Ok(PyControlMessage::new(py, &message)),
        Err(decode_error) => Err(malformed(py, decode_error)),
    }
}

/// The 16-byte cookie or challenge MAC of peer ``address`` (IPv6 text) and ``port`` with
/// ``nonce`` (16 hexadecimal digits) under the 32-byte ``secret``.
#[pyfunction]
fn control_mac<'py>(
    py: Python<'py>,
    secret: &Bound<'py, PyAny>,
    address: &str,
    port: u16,
    nonce: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let secret = bytes_or_text(secret, "secret")?;
    let secret: &[u8; control::SECRET_LEN] = secret[..].try_into().map_err(|_| {
        invalid_argument(format!(
            "secret must be {} bytes, not {}",
            control::SECRET_LEN,
            secret.len()
        ))
    })?;
    let ip = crate::addr::parse_address(address, "address")?;
    let nonce = parse_nonce(nonce)?;
    let mac = control::mac(secret, SocketAddrV6::new(ip, port, 0, 0), nonce);
    Ok(PyBytes::new(py, &mac))
}

/// A nonce given as exactly 16 hexadecimal digits, the way the vectors write them.
fn parse_nonce(text: &str) -> PyResult<u64> {
    if text.len() == 16
        && text.bytes().all(|byte| byte.is_ascii_hexdigit())
        && let Ok(nonce) = u64::from_str_radix(text, 16)
    {
        return Ok(nonce);
    }
    Err(invalid_argument(format!(
        "nonce {text:?} is not 16 hexadecimal digits"
    )))
}

fn invalid_argument(message: String) -> PyErr {
    to_py_err(Error::new(ErrorKind::InvalidConfig, message))
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
    module.add_class::<PySequenced>()?;
    module.add_class::<PyParity>()?;
    module.add_class::<PyNack>()?;
    module.add_class::<PyStatus>()?;
    module.add_function(wrap_pyfunction!(decode_repair, module)?)?;
    module.add_class::<PyManifest>()?;
    module.add_function(wrap_pyfunction!(decode_manifest, module)?)?;
    module.add_class::<PyControlMessage>()?;
    module.add_function(wrap_pyfunction!(decode_control, module)?)?;
    module.add_function(wrap_pyfunction!(control_mac, module)?)?;
    module.add("CONTROL_MAGIC", PyBytes::new(py, &control::MAGIC))?;
    module.add("CONTROL_MAC_LEN", control::MAC_LEN)?;
    module.add("CONTROL_SECRET_LEN", control::SECRET_LEN)?;
    module.add("MAGIC", PyBytes::new(py, &wire::MAGIC))?;
    module.add("PROTOCOL_VERSION", wire::VERSION)?;
    module.add("HEADER_LEN", wire::HEADER_LEN)?;
    module.add("FRAGMENT_HEADER_LEN", wire::FRAGMENT_HEADER_LEN)?;
    module.add("MIN_DATAGRAM_SIZE", wire::MIN_DATAGRAM_SIZE)?;
    module.add("DEFAULT_DATAGRAM_SIZE", wire::DEFAULT_DATAGRAM_SIZE)?;
    module.add("MAX_DATAGRAM_SIZE", wire::MAX_DATAGRAM_SIZE)?;
    module.add("DEFAULT_MAX_MESSAGE_SIZE", wire::DEFAULT_MAX_MESSAGE_SIZE)?;
    module.add("MAX_MESSAGE_SIZE_LIMIT", wire::MAX_MESSAGE_SIZE_LIMIT)?;
    module.add("TYPE_MANIFEST", manifest::TYPE_MANIFEST)?;
    module.add("DIGEST_LEN", manifest::DIGEST_LEN)?;
    module.add("MAX_DIGESTS", manifest::MAX_DIGESTS)?;
    Ok(())
}
