//! `Reachability`, `ProbeReport` and `RelayOffer`: what `Context.reachability()` reports about
//! reaching the multicast core through Stratum 0 (the core's `discovery` and `tunnel` modules).
//! Durations are seconds; socket addresses are "[address]:port".

use pyo3::prelude::*;

/// The latest probe of native reachability through Stratum 0.
#[pyclass(module = "sixcast", name = "ProbeReport", frozen, get_all)]
pub(crate) struct PyProbeReport {
    /// The Stratum 0 asked, "[address]:port".
    stratum0: String,
    /// Whether Stratum 0 answered at all.
    answered: bool,
    /// Round trip of the first answered probe, in seconds; None when none was answered.
    rtt: Option<f64>,
    /// Whether the core's multicast reaches this node.
    native_down: bool,
    /// Whether this node's multicast reaches the core.
    native_up: bool,
    /// This node's address and port as Stratum 0 saw them, "[address]:port".
    observed: Option<String>,
}

#[pymethods]
impl PyProbeReport {
    fn __repr__(&self) -> String {
        format!(
            "ProbeReport(stratum0='{}', answered={}, rtt={:?}, native_down={}, native_up={}, observed={:?})",
            self.stratum0,
            py_bool(self.answered),
            self.rtt,
            py_bool(self.native_down),
            py_bool(self.native_up),
            self.observed,
        )
    }
}

/// A relay's offer to carry this context's channels.
#[pyclass(module = "sixcast", name = "RelayOffer", frozen, get_all)]
pub(crate) struct PyRelayOffer {
    /// Where to open the tunnel, "[address]:port".
    address: String,
    /// From the relay request to the offer's arrival, in seconds.
    rtt: f64,
    /// Share of the relay's capacity in use, in per mille.
    load: u16,
    /// Whether the offer comes from an SSM repeater (its traffic arrives as source-specific
    /// multicast from its address rather than down a tunnel).
    repeater: bool,
}

#[pymethods]
impl PyRelayOffer {
    fn __repr__(&self) -> String {
        format!(
            "RelayOffer(address='{}', rtt={}, load={}, repeater={})",
            self.address,
            self.rtt,
            self.load,
            py_bool(self.repeater),
        )
    }
}

/// How a context reaches the multicast core: the latest probe, the relay in use and the offers.
#[pyclass(module = "sixcast", name = "Reachability", frozen, get_all)]
pub(crate) struct PyReachability {
    /// The latest probe, once one has completed; else None.
    probe: Option<Py<PyProbeReport>>,
    /// The relay whose tunnel carries the channels, "[address]:port"; None when none does.
    relay: Option<String>,
    /// The relays that offered at the last request, best first.
    offers: Vec<Py<PyRelayOffer>>,
    /// Why the last attempt to reach the core failed, if it did.
    last_error: Option<String>,
    /// The segment's Stratum 1 gateway that carries the channels, "[address]:port"; else None.
    gateway: Option<String>,
    /// Groups of the channels this context serves as its segment's gateway.
    serving: Vec<String>,
    /// The Stratum 0 of the latest attempt, "[address]:port" (configured, found in DNS, or the
    /// embedded RP); None until one was found.
    stratum0: Option<String>,
    /// Relays refused because they could not prove a pinned or vouched identity (only counts
    /// when ``relay_keys`` or ``relay_issuers`` are configured).
    rejected_relays: u64,
    /// Datagrams sent before the path to the core was known (or while no tunnel carried them)
    /// whose copy for the tunnel was dropped to stay within 1 MiB: they went out natively only,
    /// which may not have reached the core.
    held_dropped: u64,
}

#[pymethods]
impl PyReachability {
    fn __repr__(&self) -> String {
        format!(
            "Reachability(stratum0={:?}, probe={}, relay={:?}, gateway={:?}, offers=<{}>, rejected_relays={}, held_dropped={}, last_error={:?})",
            self.stratum0,
            if self.probe.is_some() {
                "<ProbeReport>"
            } else {
                "None"
            },
            self.relay,
            self.gateway,
            self.offers.len(),
            self.rejected_relays,
            self.held_dropped,
            self.last_error,
        )
    }
}

fn py_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

impl PyReachability {
    pub(crate) fn new(py: Python<'_>, reachability: sixcast::Reachability) -> PyResult<Self> {
        let probe = reachability
            .probe
            .map(|probe| {
                Py::new(
                    py,
                    PyProbeReport {
                        stratum0: probe.stratum0.to_string(),
                        answered: probe.answered,
                        rtt: probe.rtt.map(|rtt| rtt.as_secs_f64()),
                        native_down: probe.native_down,
                        native_up: probe.native_up,
                        observed: probe.observed.map(|observed| observed.to_string()),
                    },
                )
            })
            .transpose()?;
        let offers = reachability
            .offers
            .into_iter()
            .map(|offer| {
                Py::new(
                    py,
                    PyRelayOffer {
                        address: offer.address.to_string(),
                        rtt: offer.rtt.as_secs_f64(),
                        load: offer.load,
                        repeater: offer.repeater,
                    },
                )
            })
            .collect::<PyResult<_>>()?;
        Ok(Self {
            probe,
            relay: reachability.relay.map(|relay| relay.to_string()),
            offers,
            last_error: reachability.last_error,
            gateway: reachability.gateway.map(|gateway| gateway.to_string()),
            serving: reachability
                .serving
                .iter()
                .map(ToString::to_string)
                .collect(),
            stratum0: reachability.stratum0.map(|stratum0| stratum0.to_string()),
            rejected_relays: reachability.rejected_relays,
            held_dropped: reachability.held_dropped,
        })
    }
}

/// Adds the reachability classes to the module.
pub(crate) fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyReachability>()?;
    module.add_class::<PyProbeReport>()?;
    module.add_class::<PyRelayOffer>()?;
    Ok(())
}
