//! How a context reaches the multicast core, as JSON text: a C program reads the few fields it
//! wants with its JSON library, and new fields never break the ABI.

use std::ffi::c_char;

use serde_json::{Value, json};

use crate::{
    context::SixcastContext,
    error::{SixcastError, SixcastStatus, guard},
    text,
};

fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The core's report with the field names of the other bindings' records.
fn to_json(reachability: &sixcast::Reachability) -> Value {
    let text = |value: Option<std::net::SocketAddrV6>| value.map(|value| value.to_string());
    json!({
        "stratum0": text(reachability.stratum0),
        "probe": reachability.probe.as_ref().map(|probe| json!({
            "stratum0": probe.stratum0.to_string(),
            "answered": probe.answered,
            "rtt_ms": probe.rtt.map(millis),
            "native_down": probe.native_down,
            "native_up": probe.native_up,
            "observed": text(probe.observed),
        })),
        "relay": text(reachability.relay),
        "offers": reachability.offers.iter().map(|offer| json!({
            "address": offer.address.to_string(),
            "rtt_ms": millis(offer.rtt),
            "load": offer.load,
            "repeater": offer.repeater,
        })).collect::<Vec<_>>(),
        "last_error": reachability.last_error,
        "gateway": text(reachability.gateway),
        "serving": reachability.serving.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "rejected_relays": reachability.rejected_relays,
        "held_dropped": reachability.held_dropped,
    })
}

/// How the context reaches the multicast core through Stratum 0, as a JSON object in
/// `*json_out` (free it with `sixcast_string_free`): `stratum0`, `probe` (`answered`, `rtt_ms`,
/// `native_down`, `native_up`, `observed`), `relay`, `offers` (`address`, `rtt_ms`, `load`,
/// `repeater`), `last_error`, `gateway`, `serving`, `rejected_relays` and `held_dropped`, as
/// in `docs/reachability.md`; absent values are null. `*json_out` is NULL when the
/// configuration names no Stratum 0 (nor a domain or an embedded RP to find one).
///
/// # Safety
/// `context` is a live context; `json_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_reachability(
    context: *const SixcastContext,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let context = unsafe { text::handle(context, "context") }?;
        let json = context
            .inner
            .reachability()
            .map(|reachability| to_json(&reachability).to_string());
        // SAFETY: per the contract above.
        unsafe { text::store_text(json_out, json, "json_out") }
    })
}
