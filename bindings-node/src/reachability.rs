//! What `Context.reachability()` reports about reaching the multicast core through Stratum 0
//! (the core's `discovery` and `tunnel` modules). Durations are milliseconds; socket addresses
//! are `[address]:port`.

use napi_derive::napi;

/// The latest probe of native reachability through Stratum 0.
#[napi(object, object_from_js = false)]
pub struct ProbeReport {
    /// The Stratum 0 asked, `[address]:port`.
    pub stratum0: String,
    /// Whether Stratum 0 answered at all.
    pub answered: bool,
    /// Round trip of the first answered probe, in ms; absent when none was answered.
    pub rtt_ms: Option<f64>,
    /// Whether the core's multicast reaches this node.
    pub native_down: bool,
    /// Whether this node's multicast reaches the core.
    pub native_up: bool,
    /// This node's address and port as Stratum 0 saw them.
    pub observed: Option<String>,
}

/// A relay's offer to carry this context's channels.
#[napi(object, object_from_js = false)]
pub struct RelayOffer {
    /// Where to open the tunnel, `[address]:port`.
    pub address: String,
    /// From the relay request to the offer's arrival, in ms.
    pub rtt_ms: f64,
    /// Share of the relay's capacity in use, in per mille.
    pub load: u32,
    /// Whether the offer comes from an SSM repeater (its traffic arrives as source-specific
    /// multicast from its address rather than down a tunnel).
    pub repeater: bool,
}

/// How a context reaches the multicast core: the latest probe, the relay in use and the offers.
#[napi(object, object_from_js = false)]
pub struct Reachability {
    /// The latest probe, once one has completed.
    pub probe: Option<ProbeReport>,
    /// The relay whose tunnel carries the channels, `[address]:port`; absent when none does.
    pub relay: Option<String>,
    /// The relays that offered at the last request, best first.
    pub offers: Vec<RelayOffer>,
    /// Why the last attempt to reach the core failed, if it did.
    pub last_error: Option<String>,
    /// The segment's Stratum 1 gateway that carries the channels, `[address]:port`; absent when
    /// none does.
    pub gateway: Option<String>,
    /// Groups of the channels this context serves as its segment's gateway.
    pub serving: Vec<String>,
    /// The Stratum 0 of the latest attempt, `[address]:port` (configured, found in DNS, or the
    /// embedded RP); absent until one was found.
    pub stratum0: Option<String>,
    /// Relays refused because they could not prove a pinned or vouched identity (only counts
    /// when `relay_keys` or `relay_issuers` are configured).
    pub rejected_relays: f64,
    /// Datagrams sent before the path to the core was known (or while no tunnel carried them)
    /// whose copy for the tunnel was dropped to stay within 1 MiB: they went out natively only,
    /// which may not have reached the core.
    pub held_dropped: f64,
}

impl From<sixcast::Reachability> for Reachability {
    fn from(reachability: sixcast::Reachability) -> Self {
        Self {
            probe: reachability.probe.map(|probe| ProbeReport {
                stratum0: probe.stratum0.to_string(),
                answered: probe.answered,
                rtt_ms: probe.rtt.map(|rtt| rtt.as_secs_f64() * 1000.0),
                native_down: probe.native_down,
                native_up: probe.native_up,
                observed: probe.observed.map(|observed| observed.to_string()),
            }),
            relay: reachability.relay.map(|relay| relay.to_string()),
            offers: reachability
                .offers
                .into_iter()
                .map(|offer| RelayOffer {
                    address: offer.address.to_string(),
                    rtt_ms: offer.rtt.as_secs_f64() * 1000.0,
                    load: offer.load.into(),
                    repeater: offer.repeater,
                })
                .collect(),
            last_error: reachability.last_error,
            gateway: reachability.gateway.map(|gateway| gateway.to_string()),
            serving: reachability
                .serving
                .iter()
                .map(ToString::to_string)
                .collect(),
            stratum0: reachability.stratum0.map(|stratum0| stratum0.to_string()),
            // A counter: exact below 2^53.
            rejected_relays: reachability.rejected_relays as f64,
            // A counter: exact below 2^53.
            held_dropped: reachability.held_dropped as f64,
        }
    }
}
