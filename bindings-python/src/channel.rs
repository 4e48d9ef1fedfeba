//! `Context`, `Channel`, `Message` and `Stats`: the library API, as in the core's `channel`
//! module, with Python's idioms on top: `with` blocks, `for` and `async for` loops, and blocking
//! calls that release the GIL and let Ctrl-C through.

use std::{
    collections::HashMap,
    net::{Ipv6Addr, SocketAddrV6},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use pyo3::{
    IntoPyObjectExt,
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    sync::PyOnceLock,
    types::{PyBytes, PyDict},
};
use sixcast::{ErrorKind, NodeId, crypto::KeyId};

use crate::{
    addr::parse_address,
    bytes_or_text,
    config::PyConfig,
    crypto::{PyChannelKey, PyPublicKey, PySigningKey, PyToken},
    error::{OrRaise, to_py_err},
    events::event_dict,
    files,
    reachability::PyReachability,
};

/// The longest a blocking receive waits before it checks for Ctrl-C, and the longest an asyncio
/// receive holds an executor thread (so a cancelled await frees its thread this soon).
const WAIT_SLICE: Duration = Duration::from_millis(100);

/// A sixcast context: one UDP socket, one node id and any number of channels. Opening it binds
/// the port and starts the background threads; close it (or leave its ``with`` block) to send
/// what is still packed, leave every group and stop the threads::
///
///     with sixcast.Context(scope="site") as context:
///         channel = context.channel("webservers")
///
/// Takes a Config, or the Config fields as keyword arguments.
#[pyclass(module = "sixcast", name = "Context", frozen)]
pub(crate) struct PyContext {
    inner: sixcast::Context,
    /// One Channel object per name.
    channels: Mutex<HashMap<Vec<u8>, Py<PyChannel>>>,
}

#[pymethods]
impl PyContext {
    #[new]
    #[pyo3(signature = (config = None, **fields))]
    fn new(
        py: Python<'_>,
        config: Option<&Bound<'_, PyConfig>>,
        fields: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let config = match (config, fields) {
            (Some(_), Some(fields)) if !fields.is_empty() => {
                return Err(PyTypeError::new_err(
                    "Context() takes a Config or keyword fields, not both",
                ));
            }
            (Some(config), _) => config.get().inner.clone(),
            (None, Some(fields)) => PyConfig::from_fields(fields)?.inner,
            (None, None) => sixcast::Config::default(),
        };
        let inner = py.detach(|| sixcast::Context::new(config)).or_raise()?;
        Ok(Self {
            inner,
            channels: Mutex::default(),
        })
    }

    /// The channel called ``name`` (str, taken as UTF-8, or bytes). The same name always gives
    /// the same Channel object.
    fn channel(&self, name: &Bound<'_, PyAny>) -> PyResult<Py<PyChannel>> {
        let py = name.py();
        let name = bytes_or_text(name, "name")?.to_vec();
        let channel = self.inner.channel(&name).or_raise()?;
        if let Some(existing) = self.channels.lock().get(&name) {
            return Ok(existing.clone_ref(py));
        }
        // Made outside the lock: allocating may run the garbage collector, and so Python code.
        let created = Py::new(py, PyChannel { inner: channel })?;
        let mut channels = self.channels.lock();
        Ok(channels.entry(name).or_insert(created).clone_ref(py))
    }

    /// Sends what is still packed, leaves every group and stops the background threads.
    /// Blocked receives raise ClosedError (and loops over channels end); closing twice is
    /// harmless.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.inner.close());
    }

    /// Whether close() was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// This context's node id (16 hexadecimal digits), carried in every datagram it sends.
    #[getter]
    fn node_id(&self) -> String {
        self.inner.node_id().to_string()
    }

    /// The UDP port the context is bound to.
    #[getter]
    fn port(&self) -> u16 {
        self.inner.port()
    }

    /// The names of the interfaces the context joins and sends on.
    #[getter]
    fn interfaces(&self) -> Vec<String> {
        self.inner.interfaces()
    }

    /// The configuration the context was opened with.
    #[getter]
    fn config(&self) -> PyConfig {
        PyConfig {
            inner: self.inner.config().clone(),
        }
    }

    /// Counters summed over every channel, plus datagrams no channel claimed.
    fn stats(&self) -> PyStats {
        self.inner.stats().into()
    }

    /// Waits for the next event, at most ``timeout`` seconds (None: no limit), and returns it as
    /// a dict with its ``kind``: ``path_changed`` (``path``, ``via``), ``relay_failover``
    /// (``from``, ``to``), ``gateway_role`` (``serving``) or ``messages_lost`` (``group``,
    /// ``sender``, ``count``). Raises TimeoutError, or ClosedError once the context is closed
    /// and no event is left; Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn next_event<'py>(
        &self,
        py: Python<'py>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let deadline = deadline(timeout)?;
        loop {
            let slice = deadline.map_or(WAIT_SLICE, |deadline| {
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(WAIT_SLICE)
            });
            match py.detach(|| self.inner.event_timeout(slice)) {
                Err(err)
                    if err.kind() == ErrorKind::Timeout
                        && deadline.is_none_or(|deadline| Instant::now() < deadline) =>
                {
                    py.check_signals()?;
                }
                result => return event_dict(py, &result.or_raise()?),
            }
        }
    }

    /// The next event as a dict (see ``next_event``) if one is waiting, else None.
    fn try_event<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner
            .try_event()
            .or_raise()?
            .map(|event| event_dict(py, &event))
            .transpose()
    }

    /// Events dropped because the application did not take them in time (1,024 are kept).
    #[getter]
    fn events_dropped(&self) -> u64 {
        self.inner.events_dropped()
    }

    /// How the context reaches the multicast core through Stratum 0 (the latest probe, the
    /// relay in use, the offers, the last error); None when the config has no ``stratum0``.
    fn reachability(&self, py: Python<'_>) -> PyResult<Option<PyReachability>> {
        self.inner
            .reachability()
            .map(|reachability| PyReachability::new(py, reachability))
            .transpose()
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> bool {
        self.close(py);
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let node = self.inner.node_id();
        Ok(if self.inner.is_closed() {
            format!("<sixcast.Context node_id={node} closed>")
        } else {
            format!(
                "<sixcast.Context node_id={node} port={} interfaces={}>",
                self.inner.port(),
                self.interfaces().into_bound_py_any(py)?.repr()?
            )
        })
    }
}

/// A named channel of a Context. Join it to receive; anyone may send.
///
/// Receive with ``recv(timeout=None)`` (blocks; raises sixcast.TimeoutError), ``try_recv()``
/// (None when nothing waits), ``for message in channel`` (ends when the context closes),
/// ``await channel.recv_async()`` or ``async for message in channel``. ``with channel:`` joins
/// on entry and leaves on exit.
#[pyclass(module = "sixcast", name = "Channel", frozen)]
pub(crate) struct PyChannel {
    pub(crate) inner: sixcast::Channel,
}

impl PyChannel {
    /// Blocks until a message arrives or `deadline` passes, in slices so that signal handlers
    /// run in between: the outer error is such a handler's (KeyboardInterrupt), the inner
    /// result the core's.
    fn wait(
        &self,
        py: Python<'_>,
        deadline: Option<Instant>,
    ) -> PyResult<sixcast::Result<sixcast::Message>> {
        in_slices(py, deadline, |slice| self.inner.recv_timeout(slice))
    }
}

/// Calls `wait` with the time left until `deadline`, at most [`WAIT_SLICE`] at once and
/// without the GIL, until it returns anything but a Timeout error or `deadline` passes (never,
/// if None); in between, signal handlers run, so that Ctrl-C interrupts the wait. The outer
/// error is such a handler's (KeyboardInterrupt), the inner result `wait`'s.
pub(crate) fn in_slices<T: Send>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut wait: impl FnMut(Duration) -> sixcast::Result<T> + Send,
) -> PyResult<sixcast::Result<T>> {
    loop {
        let slice = deadline.map_or(WAIT_SLICE, |deadline| {
            deadline
                .saturating_duration_since(Instant::now())
                .min(WAIT_SLICE)
        });
        match py.detach(|| wait(slice)) {
            Err(err)
                if err.kind() == ErrorKind::Timeout
                    && deadline.is_none_or(|deadline| Instant::now() < deadline) =>
            {
                py.check_signals()?;
            }
            result => return Ok(result),
        }
    }
}

#[pymethods]
impl PyChannel {
    /// The channel's name, as bytes.
    #[getter]
    fn name<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.inner.name())
    }

    /// The group address the channel's traffic is sent to.
    #[getter]
    fn group(&self) -> String {
        self.inner.group().to_string()
    }

    /// The group relays and gateways re-send the channel's traffic to; None for profiles
    /// without one (librecast).
    #[getter]
    fn relayed_group(&self) -> Option<String> {
        self.inner.relayed_group().map(|group| group.to_string())
    }

    /// Starts receiving the channel from any source on every interface of the context.
    fn join(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.join()).or_raise()
    }

    /// Starts receiving the channel from ``source`` (an IPv6 address) only: source-specific
    /// multicast. Several sources may be joined one by one.
    fn join_source(&self, py: Python<'_>, source: &str) -> PyResult<()> {
        let source = parse_address(source, "source")?;
        py.detach(|| self.inner.join_source(source)).or_raise()
    }

    /// Stops receiving the channel (every membership: any-source and source-specific).
    fn leave(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.leave()).or_raise()
    }

    /// Queues ``data`` (bytes-like, or str sent as UTF-8) as one message. Small messages are
    /// packed together (unless ``packing`` is off) and large ones fragmented; datagrams leave in
    /// batches within the context's linger time or at flush(), and after a linger without
    /// sending the next complete one leaves at once. Raises MessageTooLargeError above
    /// max_message_size.
    ///
    /// Waits while the context's send rate (``send_rate_messages``, ``send_rate_bytes``) holds
    /// the message back, and while a reliable channel's flow window is closed: with
    /// ``timeout`` (seconds), at most that long, then raises sixcast.TimeoutError and queues
    /// nothing of the message (pyzmq's send timeout). Releases the GIL while waiting.
    #[pyo3(signature = (data, timeout = None))]
    fn send(&self, data: &Bound<'_, PyAny>, timeout: Option<f64>) -> PyResult<()> {
        let payload = bytes_or_text(data, "data")?;
        let timeout = timeout.map(seconds).transpose()?;
        data.py()
            .detach(|| match timeout {
                None => self.inner.send(&payload),
                Some(timeout) => self.inner.send_timeout(&payload, timeout),
            })
            .or_raise()
    }

    /// Sends ``data`` like send(), but never waits: raises sixcast.TimeoutError, queueing
    /// nothing, when the send rate or a reliable channel's flow window would make send() wait
    /// (ZeroMQ's DONTWAIT).
    fn try_send(&self, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let payload = bytes_or_text(data, "data")?;
        data.py()
            .detach(|| self.inner.try_send(&payload))
            .or_raise()
    }

    /// Sends what waits (the partly filled datagram, a batch) now instead of at the linger time.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.flush()).or_raise()
    }

    /// Sends the file at ``path`` (str or path-like) to every receiver of this channel (see
    /// FileReceiver): ``passes`` times in all (default 1; receivers that joined late complete
    /// it in a later pass), under ``name`` (default: the path's last component). Returns once
    /// every chunk was handed to the channel, with a dict: ``name``, ``size``, ``sha256`` (hex)
    /// and ``chunk`` (bytes per message). Use a ``reliable`` context, and close it to wait for
    /// the receivers' last repairs. Raises InvalidConfigError for a name that is not plain (a
    /// path, or starting with ".") or 0 passes, IoError when the file cannot be read, and
    /// MessageTooLargeError when it has too many chunks for the datagram size. Releases the
    /// GIL; Ctrl-C takes effect once it returns.
    #[pyo3(signature = (path, *, passes = None, name = None))]
    fn send_file<'py>(
        &self,
        py: Python<'py>,
        path: PathBuf,
        passes: Option<u32>,
        name: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        files::send_file(py, &self.inner, &path, passes, name)
    }

    /// Waits for the next message, at most ``timeout`` seconds if given; raises
    /// sixcast.TimeoutError when none arrives in time and ClosedError once the context is
    /// closed. Releases the GIL while waiting; Ctrl-C interrupts it.
    #[pyo3(signature = (timeout = None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<PyMessage> {
        let message = self.wait(py, deadline(timeout)?)?.or_raise()?;
        Ok(PyMessage::new(py, message))
    }

    /// The next message if one is waiting, else None.
    fn try_recv(&self, py: Python<'_>) -> PyResult<Option<PyMessage>> {
        let message = self.inner.try_recv().or_raise()?;
        Ok(message.map(|message| PyMessage::new(py, message)))
    }

    /// Awaitable recv() for asyncio: the event loop itself watches the channel's readiness
    /// descriptor, so no thread waits, however many receives are pending. Cancelling the await
    /// loses no message.
    #[pyo3(signature = (timeout = None))]
    fn recv_async<'py>(
        slf: &Bound<'py, Self>,
        timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Checked now, so a bad timeout raises at the call rather than at the first await.
        timeout.map(seconds).transpose()?;
        static RECV: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        RECV.import(slf.py(), "sixcast._asyncio", "recv")?
            .call1((slf, timeout))
    }

    /// A file descriptor that polls readable when a message may be waiting, for ``selectors``,
    /// ``select`` or an event loop's ``add_reader``: once it is readable, take messages with
    /// ``try_recv()`` until it returns None (which re-arms it). It also turns readable when the
    /// context closes. Never read from it or close it: the channel owns it.
    fn fileno(&self) -> PyResult<i32> {
        self.inner.readiness_fd().or_raise()
    }

    /// This channel's counters.
    fn stats(&self) -> PyStats {
        self.inner.stats().into()
    }

    /// Loss per sender: a dict for every sender this channel tracks now (up to 4,096, the least
    /// recently heard forgotten first), sorted by node id: ``sender`` (16 hexadecimal digits),
    /// ``highest_seq`` (the highest sequence number of it delivered or given up, None if none)
    /// and ``lost`` (its messages never heard, counted as ``stats().lost`` is).
    fn sender_losses<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.inner
            .sender_losses()
            .iter()
            .map(|loss| {
                let dict = PyDict::new(py);
                dict.set_item("sender", loss.sender.to_string())?;
                dict.set_item("highest_seq", loss.highest_seq)?;
                dict.set_item("lost", loss.lost)?;
                Ok(dict)
            })
            .collect()
    }

    /// Seals everything sent from now on with ``key`` (a ChannelKey), and accepts only
    /// datagrams sealed with it or a key added with add_key(). Receivers without the key
    /// deliver nothing and count the drops in ``stats().drops``.
    fn set_key(&self, py: Python<'_>, key: &PyChannelKey) -> PyResult<()> {
        py.detach(|| self.inner.set_key(&key.inner)).or_raise()
    }

    /// Accepts datagrams sealed with ``key`` too, without sending with it: for rotating keys.
    fn add_key(&self, py: Python<'_>, key: &PyChannelKey) -> PyResult<()> {
        py.detach(|| self.inner.add_key(&key.inner)).or_raise()
    }

    /// Stops accepting datagrams sealed with the key of id ``id``; returns whether the channel
    /// held it. Removing the send key makes the channel send plain datagrams again.
    fn remove_key(&self, py: Python<'_>, id: u32) -> PyResult<bool> {
        py.detach(|| self.inner.remove_key(KeyId(id))).or_raise()
    }

    /// Signs everything sent from now on with ``key`` (a SigningKey).
    fn sign_with(&self, py: Python<'_>, key: &PySigningKey) -> PyResult<()> {
        let key = key.inner.clone();
        py.detach(|| self.inner.sign_with(key)).or_raise()
    }

    /// Accepts datagrams signed with ``key`` (a PublicKey). From the first trusted key on, the
    /// channel accepts only datagrams signed by a trusted key.
    fn trust(&self, py: Python<'_>, key: &PyPublicKey) -> PyResult<()> {
        py.detach(|| self.inner.trust(key.inner)).or_raise()
    }

    /// Presents ``token`` (a Token) with every signed datagram, so that receivers trusting its
    /// issuer accept this channel's signing key until the token expires. Raises
    /// InvalidConfigError unless the token is for the key of sign_with() and this channel.
    fn present(&self, py: Python<'_>, token: &PyToken) -> PyResult<()> {
        py.detach(|| self.inner.present(token.inner)).or_raise()
    }

    /// Accepts datagrams signed by any key that presents an unexpired token of ``issuer`` (a
    /// PublicKey) for this channel. Like trust(), makes the channel accept only signed datagrams.
    fn trust_issuer(&self, py: Python<'_>, issuer: &PyPublicKey) -> PyResult<()> {
        py.detach(|| self.inner.trust_issuer(issuer.inner))
            .or_raise()
    }

    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<PyMessage>> {
        match self.wait(py, None)? {
            Ok(message) => Ok(Some(PyMessage::new(py, message))),
            Err(err) if err.kind() == ErrorKind::Closed => Ok(None),
            Err(err) => Err(to_py_err(err)),
        }
    }

    fn __aiter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __anext__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        static NEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        NEXT.import(slf.py(), "sixcast._asyncio", "next_message")?
            .call1((slf,))
    }

    /// Joins the channel.
    fn __enter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        slf.get().join(slf.py())?;
        Ok(slf)
    }

    /// Leaves the channel, unless the context was closed, which left it already.
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: &Bound<'_, PyAny>,
        _exc_value: &Bound<'_, PyAny>,
        _traceback: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        match py.detach(|| self.inner.leave()) {
            Err(err) if err.kind() != ErrorKind::Closed => Err(to_py_err(err)),
            _ => Ok(false),
        }
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "<sixcast.Channel {} group={}>",
            self.name(py).repr()?,
            self.inner.group()
        ))
    }
}

/// The deadline `timeout` seconds from now; None waits forever, and so does a timeout too far
/// in the future to represent.
pub(crate) fn deadline(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    Ok(match timeout {
        Some(timeout) => Instant::now().checked_add(seconds(timeout)?),
        None => None,
    })
}

fn seconds(timeout: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(timeout).map_err(|_| {
        PyValueError::new_err(format!(
            "timeout must be a non-negative number of seconds or None, not {timeout}"
        ))
    })
}

/// A message received on a channel, with where it came from and how it arrived.
///
/// The addresses, interface name and sender id become Python strings only when read: formatting
/// them for every message was most of the binding's receive cost.
#[pyclass(module = "sixcast", name = "Message", frozen)]
pub(crate) struct PyMessage {
    payload: Py<PyBytes>,
    source: SocketAddrV6,
    group: Ipv6Addr,
    interface: u32,
    interface_name: Arc<str>,
    sender: NodeId,
    seq: u64,
    relayed: bool,
    /// How the message arrived: "native", "relay" or "gateway" (re-sent by this segment's
    /// Stratum 1 gateway).
    path: &'static str,
}

impl PyMessage {
    fn new(py: Python<'_>, message: sixcast::Message) -> Self {
        Self {
            payload: PyBytes::new(py, &message.payload).unbind(),
            source: message.source,
            group: message.group,
            interface: message.interface,
            interface_name: message.interface_name,
            sender: message.sender,
            seq: message.seq,
            relayed: message.relayed,
            path: message.path.name(),
        }
    }
}

/// Payloads longer than this are shown by length only in a Message's repr.
const REPR_PAYLOAD_LIMIT: usize = 32;

#[pymethods]
impl PyMessage {
    /// The application bytes.
    #[getter]
    fn payload(&self, py: Python<'_>) -> Py<PyBytes> {
        self.payload.clone_ref(py)
    }

    /// The IPv6 address the datagram came from.
    #[getter]
    fn source(&self) -> String {
        self.source.ip().to_string()
    }

    /// The UDP port the datagram came from.
    #[getter]
    fn source_port(&self) -> u16 {
        self.source.port()
    }

    /// The group the datagram was sent to: the channel's group, or its relayed form.
    #[getter]
    fn group(&self) -> String {
        self.group.to_string()
    }

    /// The index of the interface the datagram arrived on.
    #[getter]
    fn interface(&self) -> u32 {
        self.interface
    }

    /// The name of that interface.
    #[getter]
    fn interface_name(&self) -> &str {
        &self.interface_name
    }

    /// The sending context's node id, 16 hexadecimal digits (all zero for the librecast
    /// profile, which carries none).
    #[getter]
    fn sender(&self) -> String {
        self.sender.to_string()
    }

    /// The sender's sequence number of this message on this channel.
    #[getter]
    fn seq(&self) -> u64 {
        self.seq
    }

    /// Whether a relay or gateway re-sent this message.
    #[getter]
    fn relayed(&self) -> bool {
        self.relayed
    }

    /// How the message arrived: "native", "relay" or "gateway" (re-sent by this segment's
    /// Stratum 1 gateway).
    #[getter]
    fn path(&self) -> &'static str {
        self.path
    }

    fn __bytes__(&self, py: Python<'_>) -> Py<PyBytes> {
        self.payload.clone_ref(py)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let payload = self.payload.bind(py);
        let len = payload.as_bytes().len();
        let payload = if len <= REPR_PAYLOAD_LIMIT {
            payload.repr()?.to_string()
        } else {
            format!("<{len} bytes>")
        };
        Ok(format!(
            "Message(payload={payload}, source='{}', source_port={}, group='{}', interface_name='{}', \
             sender='{}', seq={}{})",
            self.source.ip(),
            self.source.port(),
            self.group,
            self.interface_name,
            self.sender,
            self.seq,
            if self.relayed { ", relayed=True" } else { "" },
        ))
    }
}

/// Declares `PyStats` with one `int` attribute per counter of `sixcast::Stats`, the conversion
/// from it, and the list of names, so each counter is named once.
macro_rules! stats {
    ($($(#[doc = $doc:expr])* $field:ident,)*) => {
        /// Counters of a channel, or of a whole context. Every datagram is accounted for:
        /// sent, received, duplicates, malformed, own loopback, queue overflow, reassembly drops.
        #[pyclass(module = "sixcast", name = "Stats", frozen, eq)]
        #[derive(PartialEq)]
        pub(crate) struct PyStats {
            $($(#[doc = $doc])* #[pyo3(get)] $field: u64,)*
            /// The counts of `drops`, in DROP_REASONS order.
            drops: Vec<(&'static str, u64)>,
        }

        impl From<sixcast::Stats> for PyStats {
            fn from(stats: sixcast::Stats) -> Self {
                Self {
                    $($field: stats.$field,)*
                    drops: stats.drops.iter().map(|(reason, count)| (reason.name(), count)).collect(),
                }
            }
        }

        impl PyStats {
            fn counters(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($field), self.$field),)*]
            }
        }
    };
}

stats! {
    /// Messages accepted by send().
    messages_sent,
    /// Payload bytes accepted by send().
    bytes_sent,
    /// Datagrams handed to the kernel (once per interface).
    datagrams_sent,
    /// Messages delivered to the application's queue.
    messages_received,
    /// Payload bytes delivered to the application's queue.
    bytes_received,
    /// Datagrams received from the network, including dropped ones.
    datagrams_received,
    /// Messages dropped because they had been delivered already.
    duplicates,
    /// Datagrams dropped because they did not decode.
    malformed,
    /// Datagrams of this context's own sending, heard back through multicast loopback.
    own_dropped,
    /// Messages dropped because the application did not take them and the queue was full.
    queue_overflow,
    /// Messages never heard: sequence numbers a sender skipped, less those that arrived late.
    lost,
    /// Fragmented messages given up (timed out, inconsistent, or over the memory bound).
    reassembly_dropped,
    /// Datagrams for a group no channel of this context has (context totals only).
    unknown_group,
    /// NACKs this node sent for packets of reliable senders it missed.
    nacks_sent,
    /// NACKs received for this node's own packets (reliable contexts).
    nacks_received,
    /// Repair datagrams sent: parity, re-sent packets, and the announcements of each burst's end.
    repairs_sent,
    /// Bytes of the repair datagrams sent.
    repair_bytes_sent,
    /// Parity datagrams received for packets this node still needed or had.
    repairs_received,
    /// Packets of reliable senders rebuilt from parity.
    packets_recovered,
    /// Packets of reliable senders given up (not repaired in time); their messages count in lost.
    packets_lost,
}

#[pymethods]
impl PyStats {
    /// The counters as a dict from name to value; ``"drops"`` maps to a dict by reason.
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (name, value) in self.counters() {
            dict.set_item(name, value)?;
        }
        dict.set_item("drops", self.drops(py)?)?;
        Ok(dict)
    }

    /// What the channel's keys refused, as a dict from reason (every name of DROP_REASONS, in
    /// that order) to count: datagrams, and messages for "replay".
    #[getter]
    fn drops<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for &(reason, count) in &self.drops {
            dict.set_item(reason, count)?;
        }
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        let counters: Vec<String> = self
            .counters()
            .into_iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let drops: Vec<String> = self
            .drops
            .iter()
            .map(|(reason, count)| format!("'{reason}': {count}"))
            .collect();
        format!(
            "Stats({}, drops={{{}}})",
            counters.join(", "),
            drops.join(", ")
        )
    }
}

/// Adds the library classes to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyContext>()?;
    module.add_class::<PyChannel>()?;
    module.add_class::<PyMessage>()?;
    module.add_class::<PyStats>()?;
    Ok(())
}
