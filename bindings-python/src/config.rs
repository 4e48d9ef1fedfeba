//! `sixcast.Config`: the settings of a context, built from keyword arguments.

use std::time::Duration;

use pyo3::{
    prelude::*,
    types::{PyDict, PyString},
};
use sixcast::{Error, ErrorKind, Profile, addr};

use crate::{
    crypto::PyPublicKey,
    error::{OrRaise, to_py_err},
};

/// Settings of a Context. Every field is a keyword argument; a field left out (or ``None``)
/// keeps its default::
///
///     config = sixcast.Config(scope="site", hop_limit=8, interfaces=["eth0"])
///     config.validate()
///
/// Fields: ``profile`` ("sixcast", "ssm", "embedded-rp" or "librecast"), ``rp`` (the
/// embedded-rp profile's rendezvous point, "ADDR/LEN"), ``scope`` ("link", "site", "org" or
/// "global"), ``port`` (``None`` for the profile's default), ``interfaces`` (names; empty for every
/// multicast interface), ``hop_limit``, ``loopback``, ``max_datagram_size``,
/// ``max_message_size``, ``linger`` (seconds), ``packing``, ``queue_capacity``, ``queue_bytes``,
/// ``recv_buffer``, ``send_rate_messages`` and ``send_rate_bytes`` (per second, over the
/// context's channels; 0 for no limit: ``send`` waits for its turn beyond them), ``reliable``
/// (channels that repair what receivers miss; needs a profile with the sixcast header),
/// ``reassembly_timeout`` (seconds), ``reassembly_memory``, ``stratum0`` (the core's Stratum 0
/// as "[address]:port"; None for no reachability probing), ``domain`` (find Stratum 0 from its
/// ``_sixcast._udp`` SRV records when ``stratum0`` is None), ``dns_server`` (the DNS server for
/// ``domain``, "address" or "[address]:port"; None for the system's), ``probe_timeout`` (seconds),
/// ``probe_interval`` (seconds, at least ``probe_timeout``), ``relay_keys`` (pinned relay
/// identity PublicKeys: tunnel only through a relay that proves one) and ``relay_issuers``
/// (PublicKeys of voucher issuers: also take relays one of them vouched for); both empty for any
/// relay.
/// Profile, RP, scope and stratum0 are checked here; :meth:`validate` (and opening a Context)
/// checks the rest.
#[pyclass(module = "sixcast", name = "Config", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyConfig {
    pub(crate) inner: sixcast::Config,
}

#[pymethods]
impl PyConfig {
    #[new]
    #[pyo3(signature = (
        *,
        profile = None,
        rp = None,
        scope = None,
        port = None,
        interfaces = None,
        hop_limit = None,
        loopback = None,
        max_datagram_size = None,
        max_message_size = None,
        linger = None,
        packing = None,
        queue_capacity = None,
        queue_bytes = None,
        recv_buffer = None,
        send_rate_messages = None,
        send_rate_bytes = None,
        reliable = None,
        reassembly_timeout = None,
        reassembly_memory = None,
        stratum0 = None,
        domain = None,
        dns_server = None,
        probe_timeout = None,
        probe_interval = None,
        relay_keys = None,
        relay_issuers = None,
    ))]
    #[expect(
        clippy::too_many_arguments,
        reason = "one keyword argument per Config field"
    )]
    fn new(
        profile: Option<&str>,
        rp: Option<&str>,
        scope: Option<&str>,
        port: Option<i64>,
        interfaces: Option<Vec<String>>,
        hop_limit: Option<i64>,
        loopback: Option<bool>,
        max_datagram_size: Option<i64>,
        max_message_size: Option<i64>,
        linger: Option<f64>,
        packing: Option<bool>,
        queue_capacity: Option<i64>,
        queue_bytes: Option<i64>,
        recv_buffer: Option<i64>,
        send_rate_messages: Option<i64>,
        send_rate_bytes: Option<i64>,
        reliable: Option<bool>,
        reassembly_timeout: Option<f64>,
        reassembly_memory: Option<i64>,
        stratum0: Option<&str>,
        domain: Option<String>,
        dns_server: Option<&str>,
        probe_timeout: Option<f64>,
        probe_interval: Option<f64>,
        relay_keys: Option<Vec<Bound<'_, PyPublicKey>>>,
        relay_issuers: Option<Vec<Bound<'_, PyPublicKey>>>,
    ) -> PyResult<Self> {
        let mut config = sixcast::Config::default();
        if profile.is_some() || rp.is_some() {
            config.profile = addr::parse_profile(profile.unwrap_or("sixcast"), rp).or_raise()?;
        }
        if let Some(scope) = scope {
            config.scope = scope.parse().or_raise()?;
        }
        if let Some(port) = port {
            config.port = Some(integer("port", port)?);
        }
        if let Some(interfaces) = interfaces {
            config.interfaces = interfaces;
        }
        set(&mut config.hop_limit, "hop_limit", hop_limit)?;
        if let Some(loopback) = loopback {
            config.loopback = loopback;
        }
        set(
            &mut config.max_datagram_size,
            "max_datagram_size",
            max_datagram_size,
        )?;
        set(
            &mut config.max_message_size,
            "max_message_size",
            max_message_size,
        )?;
        if let Some(linger) = linger {
            config.linger = seconds("linger", linger)?;
        }
        if let Some(packing) = packing {
            config.packing = packing;
        }
        set(&mut config.queue_capacity, "queue_capacity", queue_capacity)?;
        set(&mut config.queue_bytes, "queue_bytes", queue_bytes)?;
        set(&mut config.recv_buffer, "recv_buffer", recv_buffer)?;
        set(
            &mut config.send_rate_messages,
            "send_rate_messages",
            send_rate_messages,
        )?;
        set(
            &mut config.send_rate_bytes,
            "send_rate_bytes",
            send_rate_bytes,
        )?;
        if let Some(reliable) = reliable {
            config.reliable = reliable;
        }
        if let Some(timeout) = reassembly_timeout {
            config.reassembly_timeout = seconds("reassembly_timeout", timeout)?;
        }
        set(
            &mut config.reassembly_memory,
            "reassembly_memory",
            reassembly_memory,
        )?;
        if let Some(stratum0) = stratum0 {
            config.stratum0 = Some(stratum0.parse().map_err(|_| {
                invalid_config(format!(
                    "stratum0 {stratum0:?} is not an IPv6 socket address \"[address]:port\""
                ))
            })?);
        }
        config.domain = domain;
        if let Some(server) = dns_server {
            config.dns_server = Some(sixcast::locate::parse_dns_server(server).or_raise()?);
        }
        if let Some(timeout) = probe_timeout {
            config.probe_timeout = seconds("probe_timeout", timeout)?;
        }
        if let Some(interval) = probe_interval {
            config.probe_interval = seconds("probe_interval", interval)?;
        }
        if let Some(keys) = relay_keys {
            config.relay_keys = keys.iter().map(|key| key.get().inner).collect();
        }
        if let Some(issuers) = relay_issuers {
            config.relay_issuers = issuers.iter().map(|key| key.get().inner).collect();
        }
        Ok(Self { inner: config })
    }

    /// Checks every field; raises InvalidConfigError naming the first bad one.
    fn validate(&self) -> PyResult<()> {
        self.inner.validate().or_raise()
    }

    /// The addressing profile: "sixcast", "ssm", "embedded-rp" or "librecast".
    #[getter]
    fn profile(&self) -> &'static str {
        self.inner.profile.name()
    }

    /// The embedded-rp profile's rendezvous point as "ADDR/LEN"; None for other profiles.
    #[getter]
    fn rp(&self) -> Option<String> {
        match self.inner.profile {
            Profile::EmbeddedRp { rp, prefix_len } => Some(format!("{rp}/{prefix_len}")),
            _ => None,
        }
    }

    /// The multicast scope of channel groups: "link", "site", "org" or "global".
    #[getter]
    fn scope(&self) -> &'static str {
        self.inner.scope.name()
    }

    /// The UDP port; None means the profile's default port.
    #[getter]
    fn port(&self) -> Option<u16> {
        self.inner.port
    }

    /// Interfaces to join and send on; empty means every multicast interface except loopback.
    #[getter]
    fn interfaces(&self) -> Vec<String> {
        self.inner.interfaces.clone()
    }

    /// Hop limit of sent datagrams (1 keeps them on the link).
    #[getter]
    fn hop_limit(&self) -> u8 {
        self.inner.hop_limit
    }

    /// Whether other sockets of this host receive what the context sends.
    #[getter]
    fn loopback(&self) -> bool {
        self.inner.loopback
    }

    /// Largest UDP payload sent, in bytes.
    #[getter]
    fn max_datagram_size(&self) -> usize {
        self.inner.max_datagram_size
    }

    /// Largest message accepted by send() and reassembled on receipt, in bytes.
    #[getter]
    fn max_message_size(&self) -> usize {
        self.inner.max_message_size
    }

    /// Seconds sent messages may wait to leave together (packed, in batches); 0 sends every
    /// message at once.
    #[getter]
    fn linger(&self) -> f64 {
        self.inner.linger.as_secs_f64()
    }

    /// Whether small messages share datagrams; off, each message has datagrams of its own.
    #[getter]
    fn packing(&self) -> bool {
        self.inner.packing
    }

    /// Received messages held per channel until the application takes them.
    #[getter]
    fn queue_capacity(&self) -> usize {
        self.inner.queue_capacity
    }

    /// Payload bytes held per channel until the application takes them.
    #[getter]
    fn queue_bytes(&self) -> usize {
        self.inner.queue_bytes
    }

    /// Kernel receive buffer size requested for the socket, in bytes.
    #[getter]
    fn recv_buffer(&self) -> usize {
        self.inner.recv_buffer
    }

    /// Messages per second the context sends at most (0: no limit).
    #[getter]
    fn send_rate_messages(&self) -> u64 {
        self.inner.send_rate_messages
    }

    /// Payload bytes per second the context sends at most (0: no limit).
    #[getter]
    fn send_rate_bytes(&self) -> u64 {
        self.inner.send_rate_bytes
    }

    /// Whether the context's channels send reliably: receivers ask for what they miss and are
    /// repaired, and what cannot be repaired in time is reported lost.
    #[getter]
    fn reliable(&self) -> bool {
        self.inner.reliable
    }

    /// Seconds the pieces of a fragmented message are kept while waiting for the rest.
    #[getter]
    fn reassembly_timeout(&self) -> f64 {
        self.inner.reassembly_timeout.as_secs_f64()
    }

    /// Upper bound on memory held by partly received messages, per channel, in bytes.
    #[getter]
    fn reassembly_memory(&self) -> usize {
        self.inner.reassembly_memory
    }

    /// The core's Stratum 0 as "[address]:port"; None when the context does not probe.
    #[getter]
    fn stratum0(&self) -> Option<String> {
        self.inner.stratum0.map(|stratum0| stratum0.to_string())
    }

    /// The domain whose ``_sixcast._udp`` SRV records name Stratum 0; None for none.
    #[getter]
    fn domain(&self) -> Option<String> {
        self.inner.domain.clone()
    }

    /// The DNS server asked for ``domain``, "[address]:port" (IPv4 as "a.b.c.d:port"); None for
    /// the system's resolvers.
    #[getter]
    fn dns_server(&self) -> Option<String> {
        self.inner.dns_server.map(|server| server.to_string())
    }

    /// Seconds a probe of native reachability may take.
    #[getter]
    fn probe_timeout(&self) -> f64 {
        self.inner.probe_timeout.as_secs_f64()
    }

    /// Seconds between probes once a path is settled; at least ``probe_timeout``.
    #[getter]
    fn probe_interval(&self) -> f64 {
        self.inner.probe_interval.as_secs_f64()
    }

    /// Pinned relay identity keys; with ``relay_issuers`` empty too, any relay will do.
    #[getter]
    fn relay_keys(&self) -> Vec<PyPublicKey> {
        wrap(&self.inner.relay_keys)
    }

    /// Trusted issuers of relay vouchers.
    #[getter]
    fn relay_issuers(&self) -> Vec<PyPublicKey> {
        wrap(&self.inner.relay_issuers)
    }

    /// The UDP port in effect: ``port``, or the profile's default when it is None.
    #[getter]
    fn effective_port(&self) -> u16 {
        self.inner.effective_port()
    }

    /// ``Config(field=value, ...)`` with every field, which evaluates back to an equal Config.
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let fields = PyDict::new(py);
        fields.set_item("profile", self.profile())?;
        fields.set_item("rp", self.rp())?;
        fields.set_item("scope", self.scope())?;
        fields.set_item("port", self.port())?;
        fields.set_item("interfaces", self.interfaces())?;
        fields.set_item("hop_limit", self.hop_limit())?;
        fields.set_item("loopback", self.loopback())?;
        fields.set_item("max_datagram_size", self.max_datagram_size())?;
        fields.set_item("max_message_size", self.max_message_size())?;
        fields.set_item("linger", self.linger())?;
        fields.set_item("packing", self.packing())?;
        fields.set_item("queue_capacity", self.queue_capacity())?;
        fields.set_item("queue_bytes", self.queue_bytes())?;
        fields.set_item("recv_buffer", self.recv_buffer())?;
        fields.set_item("send_rate_messages", self.send_rate_messages())?;
        fields.set_item("send_rate_bytes", self.send_rate_bytes())?;
        fields.set_item("reliable", self.reliable())?;
        fields.set_item("reassembly_timeout", self.reassembly_timeout())?;
        fields.set_item("reassembly_memory", self.reassembly_memory())?;
        fields.set_item("stratum0", self.stratum0())?;
        fields.set_item("domain", self.domain())?;
        fields.set_item("dns_server", self.dns_server())?;
        fields.set_item("probe_timeout", self.probe_timeout())?;
        fields.set_item("probe_interval", self.probe_interval())?;
        let mut fields = fields
            .iter()
            .map(|(name, value)| Ok(format!("{name}={}", value.repr()?)))
            .collect::<PyResult<Vec<_>>>()?;
        // Evaluates back where PublicKey is sixcast.PublicKey.
        let keys_repr = |keys: &[sixcast::crypto::PublicKey]| {
            keys.iter()
                .map(|key| {
                    let text = PyString::new(py, &key.to_file_text());
                    Ok(format!("PublicKey.from_file_text({})", text.repr()?))
                })
                .collect::<PyResult<Vec<_>>>()
                .map(|keys| format!("[{}]", keys.join(", ")))
        };
        fields.push(format!("relay_keys={}", keys_repr(&self.inner.relay_keys)?));
        fields.push(format!(
            "relay_issuers={}",
            keys_repr(&self.inner.relay_issuers)?
        ));
        Ok(format!("Config({})", fields.join(", ")))
    }
}

impl PyConfig {
    /// `Config(**fields)`: keyword arguments the way Python passes them to the constructor.
    pub(crate) fn from_fields(fields: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = fields.py();
        let config = py.get_type::<Self>().call((), Some(fields))?;
        Ok(config.cast_into::<Self>()?.get().clone())
    }
}

/// Python objects for core public keys.
fn wrap(keys: &[sixcast::crypto::PublicKey]) -> Vec<PyPublicKey> {
    keys.iter().map(|key| PyPublicKey { inner: *key }).collect()
}

/// Overwrites `field` with `value` when one was given, converting it to the field's type.
fn set<T: TryFrom<i64>>(field: &mut T, name: &str, value: Option<i64>) -> PyResult<()> {
    if let Some(value) = value {
        *field = integer(name, value)?;
    }
    Ok(())
}

/// Converts a Python integer to a field's integer type, or fails naming the field.
fn integer<T: TryFrom<i64>>(name: &str, value: i64) -> PyResult<T> {
    T::try_from(value)
        .map_err(|_| invalid_config(format!("{name} {value} is out of range for this field")))
}

/// Converts seconds to a duration, or fails naming the field.
fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid_config(format!(
            "{name} must be a non-negative, finite number of seconds, not {value}"
        ))
    })
}

fn invalid_config(message: String) -> PyErr {
    to_py_err(Error::new(ErrorKind::InvalidConfig, message))
}

/// Adds `Config` and the configuration defaults to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyConfig>()?;
    module.add("DEFAULT_HOP_LIMIT", sixcast::config::DEFAULT_HOP_LIMIT)?;
    module.add(
        "DEFAULT_LINGER",
        sixcast::config::DEFAULT_LINGER.as_secs_f64(),
    )?;
    module.add(
        "DEFAULT_QUEUE_CAPACITY",
        sixcast::config::DEFAULT_QUEUE_CAPACITY,
    )?;
    module.add("DEFAULT_QUEUE_BYTES", sixcast::config::DEFAULT_QUEUE_BYTES)?;
    module.add("DEFAULT_RECV_BUFFER", sixcast::config::DEFAULT_RECV_BUFFER)?;
    Ok(())
}
