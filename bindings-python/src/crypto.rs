//! Channel security, as in the core's `crypto` module: the key classes (`ChannelKey`,
//! `SigningKey`, `PublicKey`) and capability tokens (`Token`) with their one-line files, the drop
//! reasons, and `seal_datagram` / `open_datagram` for tools and tests (what a channel does to
//! each datagram). No I/O: key files are read and written by the caller.

use std::time::{Duration, SystemTime};

use pyo3::{
    prelude::*,
    types::{PyBytes, PyTuple},
};
use sixcast::{
    crypto::{self, DropReason, KeyId, Protection, Rejected},
    wire,
};

use crate::{addr::parse_address, bytes_or_text, error::OrRaise, wire::malformed};

/// A channel's symmetric key: whoever holds it reads and writes the channel's sealed traffic.
/// Its ``id`` (an int below 2**32) names it in sealed datagrams, so that keys rotate without
/// downtime. The secret is never shown by ``repr``.
#[pyclass(module = "sixcast", name = "ChannelKey", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyChannelKey {
    pub(crate) inner: crypto::ChannelKey,
}

#[pymethods]
impl PyChannelKey {
    /// A new key with a random id, from the operating system's random number generator.
    #[staticmethod]
    fn generate() -> PyResult<Self> {
        let inner = crypto::ChannelKey::generate().or_raise()?;
        Ok(Self { inner })
    }

    /// The key of id ``id`` and 32 secret bytes ``secret``.
    #[staticmethod]
    fn from_bytes(id: u32, secret: &Bound<'_, PyAny>) -> PyResult<Self> {
        let secret = key_bytes(secret, "secret")?;
        Ok(Self {
            inner: crypto::ChannelKey::from_bytes(KeyId(id), secret),
        })
    }

    /// Parses the text of a channel key file. Raises InvalidConfigError for anything else.
    #[staticmethod]
    fn from_file_text(text: &str) -> PyResult<Self> {
        let inner = crypto::ChannelKey::from_file_text(text).or_raise()?;
        Ok(Self { inner })
    }

    /// The key file text: ``sixcast-channel-key-v1 <id> <secret>`` and a newline. Write it to
    /// a file only its owner can read.
    fn to_file_text(&self) -> String {
        self.inner.to_file_text().to_string()
    }

    /// The key's id, an int below 2**32.
    #[getter]
    fn id(&self) -> u32 {
        self.inner.id().0
    }

    fn __repr__(&self) -> String {
        format!("<sixcast.ChannelKey id={}>", self.inner.id())
    }
}

/// A sender's Ed25519 signing key; receivers trust its ``public_key()``. The secret is never
/// shown by ``repr``.
#[pyclass(module = "sixcast", name = "SigningKey", frozen)]
#[derive(Clone)]
pub(crate) struct PySigningKey {
    pub(crate) inner: crypto::SigningKey,
}

#[pymethods]
impl PySigningKey {
    /// A new key from the operating system's random number generator.
    #[staticmethod]
    fn generate() -> PyResult<Self> {
        let inner = crypto::SigningKey::generate().or_raise()?;
        Ok(Self { inner })
    }

    /// The key whose 32-byte secret seed is ``seed`` (RFC 8032).
    #[staticmethod]
    fn from_seed(seed: &Bound<'_, PyAny>) -> PyResult<Self> {
        let seed = key_bytes(seed, "seed")?;
        Ok(Self {
            inner: crypto::SigningKey::from_seed(seed),
        })
    }

    /// Parses the text of a signing key file. Raises InvalidConfigError for anything else.
    #[staticmethod]
    fn from_file_text(text: &str) -> PyResult<Self> {
        let inner = crypto::SigningKey::from_file_text(text).or_raise()?;
        Ok(Self { inner })
    }

    /// The key file text: ``sixcast-signing-key-v1 <seed>`` and a newline. Write it to a file
    /// only its owner can read.
    fn to_file_text(&self) -> String {
        self.inner.to_file_text().to_string()
    }

    /// The public half, for receivers' ``Channel.trust``.
    fn public_key(&self) -> PyPublicKey {
        PyPublicKey {
            inner: self.inner.public_key(),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "<sixcast.SigningKey fingerprint={}>",
            self.inner.public_key().fingerprint()
        )
    }
}

/// A sender's Ed25519 public key, as receivers trust it.
#[pyclass(module = "sixcast", name = "PublicKey", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyPublicKey {
    pub(crate) inner: crypto::PublicKey,
}

#[pymethods]
impl PyPublicKey {
    /// The key from its 32 bytes. Raises InvalidConfigError if they are not a valid (or are a
    /// weak) Ed25519 key.
    #[staticmethod]
    fn from_bytes(key: &Bound<'_, PyAny>) -> PyResult<Self> {
        let inner = crypto::PublicKey::from_bytes(key_bytes(key, "key")?).or_raise()?;
        Ok(Self { inner })
    }

    /// Parses the text of a public key file. Raises InvalidConfigError for anything else.
    #[staticmethod]
    fn from_file_text(text: &str) -> PyResult<Self> {
        let inner = crypto::PublicKey::from_file_text(text).or_raise()?;
        Ok(Self { inner })
    }

    /// The key file text: ``sixcast-public-key-v1 <key>`` and a newline.
    fn to_file_text(&self) -> String {
        self.inner.to_file_text()
    }

    /// The key's 32 bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// The key's short name carried in signed datagrams: 16 hexadecimal digits.
    #[getter]
    fn fingerprint(&self) -> String {
        self.inner.fingerprint().to_string()
    }

    fn __hash__(&self) -> u64 {
        u64::from_be_bytes(self.inner.fingerprint().0)
    }

    fn __repr__(&self) -> String {
        format!(
            "<sixcast.PublicKey fingerprint={}>",
            self.inner.fingerprint()
        )
    }
}

/// A capability token: an issuer's signed statement that the ``subject`` key may sign datagrams
/// of the channel whose canonical group is ``group`` until ``not_after`` (Unix seconds; valid
/// through that second). A sender presents it with ``Channel.present``; receivers that
/// ``trust_issuer`` the issuer then accept the subject's signatures.
#[pyclass(module = "sixcast", name = "Token", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyToken {
    pub(crate) inner: crypto::Token,
}

#[pymethods]
impl PyToken {
    /// Issues, signed with ``issuer`` (a SigningKey), a token for ``subject`` (a PublicKey) on
    /// the channel of canonical group ``group`` (``Channel.group``), valid through
    /// ``not_after`` (Unix seconds).
    #[staticmethod]
    fn issue(
        issuer: &PySigningKey,
        subject: &PyPublicKey,
        group: &str,
        not_after: u64,
    ) -> PyResult<Self> {
        let group = parse_address(group, "group")?;
        let not_after = unix_time(not_after, "not_after")?;
        Ok(Self {
            inner: crypto::Token::issue(&issuer.inner, subject.inner, group, not_after),
        })
    }

    /// The token from its TOKEN_LEN bytes. Raises InvalidConfigError for anything else.
    #[staticmethod]
    fn from_bytes(data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let data = bytes_or_text(data, "data")?;
        let inner = crypto::Token::from_bytes(&data).or_raise()?;
        Ok(Self { inner })
    }

    /// Parses the text of a token file. Raises InvalidConfigError for anything else.
    #[staticmethod]
    fn from_file_text(text: &str) -> PyResult<Self> {
        let inner = crypto::Token::from_file_text(text).or_raise()?;
        Ok(Self { inner })
    }

    /// The token file text: ``sixcast-token-v1 <token>`` and a newline.
    fn to_file_text(&self) -> String {
        self.inner.to_file_text()
    }

    /// The token's TOKEN_LEN bytes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.inner.to_bytes())
    }

    /// The key the token lets send, a PublicKey.
    #[getter]
    fn subject(&self) -> PyPublicKey {
        PyPublicKey {
            inner: self.inner.subject(),
        }
    }

    /// The canonical group of the channel the token is for.
    #[getter]
    fn group(&self) -> String {
        self.inner.group().to_string()
    }

    /// The last second (Unix time) the token is valid in.
    #[getter]
    fn not_after(&self) -> u64 {
        unix_seconds(self.inner.not_after())
    }

    /// The fingerprint of the issuer's key: 16 hexadecimal digits.
    #[getter]
    fn issuer(&self) -> String {
        self.inner.issuer().to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "<sixcast.Token subject={} group={} not_after={} issuer={}>",
            self.inner.subject().fingerprint(),
            self.inner.group(),
            self.not_after(),
            self.inner.issuer()
        )
    }
}

/// `seconds` since the Unix epoch as a time, or a ValueError naming `what` beyond what the
/// platform's clock holds.
fn unix_time(seconds: u64, what: &str) -> PyResult<SystemTime> {
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_secs(seconds))
        .ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "{what} {seconds} is beyond this platform's clock"
            ))
        })
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Exactly 32 bytes of key material, or a ValueError naming `what`.
fn key_bytes(value: &Bound<'_, PyAny>, what: &str) -> PyResult<[u8; crypto::KEY_LEN]> {
    let bytes = bytes_or_text(value, what)?;
    bytes.as_ref().try_into().map_err(|_| {
        pyo3::exceptions::PyValueError::new_err(format!(
            "{what} must be {} bytes, not {}",
            crypto::KEY_LEN,
            bytes.len()
        ))
    })
}

/// What a receiver did with a datagram that is well formed: ``plain`` is the datagram for
/// ``decode_datagram`` when its keys accept it, else None and ``dropped`` names the reason (one
/// of DROP_REASONS), as counted in ``Stats.drops``.
#[pyclass(module = "sixcast", name = "OpenedDatagram", frozen, get_all)]
pub(crate) struct PyOpenedDatagram {
    /// The plain datagram, or None when dropped.
    plain: Option<Py<PyBytes>>,
    /// The drop reason, or None when accepted.
    dropped: Option<&'static str>,
}

#[pymethods]
impl PyOpenedDatagram {
    fn __repr__(&self, py: Python<'_>) -> String {
        match (&self.plain, self.dropped) {
            (Some(plain), _) => format!(
                "OpenedDatagram(plain=<{} bytes>)",
                plain.bind(py).as_bytes().len()
            ),
            (None, reason) => format!("OpenedDatagram(dropped='{}')", reason.unwrap_or_default()),
        }
    }
}

/// What a channel of canonical group ``group`` sends for the plain datagram ``plain`` (as
/// ``pack_messages`` makes it): sealed with ``channel_key`` and/or signed with ``signing_key``
/// presenting ``token``, or unchanged with neither key. Raises MalformedError if ``plain`` is
/// not a plain datagram, InvalidConfigError if the token is not for the signing key and group.
#[pyfunction]
#[pyo3(signature = (group, plain, channel_key = None, signing_key = None, token = None))]
fn seal_datagram<'py>(
    py: Python<'py>,
    group: &str,
    plain: &Bound<'py, PyAny>,
    channel_key: Option<&PyChannelKey>,
    signing_key: Option<&PySigningKey>,
    token: Option<&PyToken>,
) -> PyResult<Bound<'py, PyBytes>> {
    let mut protection = Protection::new(parse_address(group, "group")?);
    if let Some(key) = channel_key {
        protection.set_key(&key.inner);
    }
    if let Some(key) = signing_key {
        protection.sign_with(key.inner.clone());
    }
    if let Some(token) = token {
        protection.present(token.inner).or_raise()?;
    }
    let plain = bytes_or_text(plain, "plain")?;
    let sealed = protection.seal(&plain).or_raise()?;
    Ok(PyBytes::new(py, &sealed))
}

/// What a channel of canonical group ``group`` holding channel keys ``keys``, trusting public
/// keys ``trusted`` and token issuers ``issuers`` does with the ``datagram`` it receives at
/// Unix time ``now`` (seconds; None for the current time): an OpenedDatagram. Raises
/// MalformedError (with its ``reason``) if the datagram is not well formed.
#[pyfunction]
#[pyo3(signature = (group, datagram, keys = Vec::new(), trusted = Vec::new(), issuers = Vec::new(), now = None))]
fn open_datagram(
    py: Python<'_>,
    group: &str,
    datagram: &Bound<'_, PyAny>,
    keys: Vec<PyRef<'_, PyChannelKey>>,
    trusted: Vec<PyRef<'_, PyPublicKey>>,
    issuers: Vec<PyRef<'_, PyPublicKey>>,
    now: Option<u64>,
) -> PyResult<PyOpenedDatagram> {
    let mut protection = Protection::new(parse_address(group, "group")?);
    for key in &keys {
        protection.add_key(&key.inner);
    }
    for key in &trusted {
        protection.trust(key.inner);
    }
    for issuer in &issuers {
        protection.trust_issuer(issuer.inner);
    }
    let now = now.map_or(Ok(SystemTime::now()), |now| unix_time(now, "now"))?;
    let datagram = bytes_or_text(datagram, "datagram")?;
    match protection.open(&datagram, now) {
        Ok(plain) => Ok(PyOpenedDatagram {
            plain: Some(PyBytes::new(py, &plain).unbind()),
            dropped: None,
        }),
        Err(Rejected::Dropped(reason)) => Ok(PyOpenedDatagram {
            plain: None,
            dropped: Some(reason.name()),
        }),
        Err(Rejected::Malformed(err)) => Err(malformed(py, err)),
    }
}

/// Adds the key classes, the sealing functions and the security constants to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add_class::<PyChannelKey>()?;
    module.add_class::<PySigningKey>()?;
    module.add_class::<PyPublicKey>()?;
    module.add_class::<PyToken>()?;
    module.add_class::<PyOpenedDatagram>()?;
    module.add_function(wrap_pyfunction!(seal_datagram, module)?)?;
    module.add_function(wrap_pyfunction!(open_datagram, module)?)?;
    let reasons = DropReason::ALL.iter().map(|reason| reason.name());
    module.add("DROP_REASONS", PyTuple::new(py, reasons)?)?;
    module.add("FLAG_SEALED", wire::FLAG_SEALED)?;
    module.add("FLAG_SIGNED", wire::FLAG_SIGNED)?;
    module.add("FLAG_TOKEN", wire::FLAG_TOKEN)?;
    module.add("FLAG_COVERED", wire::FLAG_COVERED)?;
    module.add("TOKEN_LEN", crypto::TOKEN_LEN)?;
    module.add("TOKEN_DOMAIN", PyBytes::new(py, crypto::TOKEN_DOMAIN))?;
    module.add("KEY_ID_LEN", crypto::KEY_ID_LEN)?;
    module.add("TAG_LEN", crypto::TAG_LEN)?;
    module.add("SEAL_OVERHEAD", crypto::SEAL_OVERHEAD)?;
    module.add("SIGNATURE_LEN", crypto::SIGNATURE_LEN)?;
    module.add("SIGNATURE_OVERHEAD", crypto::SIGNATURE_OVERHEAD)?;
    module.add("FINGERPRINT_LEN", crypto::FINGERPRINT_LEN)?;
    module.add("SEAL_KEY_CONTEXT", crypto::SEAL_KEY_CONTEXT)?;
    module.add("DIGEST_CONTEXT", crypto::DIGEST_CONTEXT)?;
    module.add(
        "SIGNATURE_DOMAIN",
        PyBytes::new(py, crypto::SIGNATURE_DOMAIN),
    )?;
    Ok(())
}
