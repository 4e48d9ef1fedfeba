//! A context's events as JSON objects, as `sixcast_context_reachability` reports: `kind` and the
//! fields of that kind, with the other bindings' names. New kinds and fields never change the
//! ABI.

use std::{ffi::c_char, time::Duration};

use serde_json::{Value, json};
use sixcast::Event;

use crate::{
    context::SixcastContext,
    error::{SixcastError, SixcastStatus, guard},
    text,
};

/// The event as JSON: `{"kind": "messages_lost", "group": ..., "sender": ..., "count": ...}`.
fn to_json(event: &Event) -> Value {
    let mut object = match event {
        Event::PathChanged { path } => json!({
            "path": path.name(),
            "via": path.via().map(|via| via.to_string()),
        }),
        Event::RelayFailover { from, to } => json!({
            "from": from.to_string(),
            "to": to.map(|to| to.to_string()),
        }),
        Event::GatewayRole { serving } => json!({
            "serving": serving.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }),
        Event::MessagesLost {
            group,
            sender,
            count,
        } => json!({
            "group": group.to_string(),
            "sender": sender.to_string(),
            "count": count,
        }),
        // A kind newer than this binding: its name alone.
        _ => json!({}),
    };
    object["kind"] = json!(event.name());
    object
}

/// Waits for the context's next event, at most `timeout_ms` milliseconds (negative: no limit),
/// and stores it in `*json_out` as a JSON object (free it with `sixcast_string_free`): `kind`
/// is `path_changed` (`path`: native, relay, repeater, gateway or unreachable; `via`),
/// `relay_failover` (`from`, `to`), `gateway_role` (`serving`) or `messages_lost` (`group`,
/// `sender`, `count`). Fails with `SIXCAST_STATUS_TIMEOUT`, or `CLOSED` once the context is
/// closed and no event is left.
///
/// # Safety
/// `context` is a live context; `json_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_next_event(
    context: *const SixcastContext,
    timeout_ms: i64,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let context = unsafe { text::handle(context, "context") }?;
        // No limit is as good as a very long one.
        let timeout = u64::try_from(timeout_ms).map_or(Duration::MAX, Duration::from_millis);
        let event = context.inner.event_timeout(timeout)?;
        // SAFETY: per the contract above.
        unsafe { text::store_text(json_out, to_json(&event).to_string(), "json_out") }
    })
}

/// Takes the context's next event if one waits: `*json_out` is its JSON object (see
/// `sixcast_context_next_event`) or NULL when none waits.
///
/// # Safety
/// `context` is a live context; `json_out` is writable; `error_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sixcast_context_try_event(
    context: *const SixcastContext,
    json_out: *mut *mut c_char,
    error_out: *mut *mut SixcastError,
) -> SixcastStatus {
    guard(error_out, || {
        // SAFETY: per the contract above.
        let context = unsafe { text::handle(context, "context") }?;
        let json = context
            .inner
            .try_event()?
            .map(|event| to_json(&event).to_string());
        // SAFETY: per the contract above.
        unsafe { text::store_text(json_out, json, "json_out") }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_carry_their_kind_and_the_shared_field_names() {
        let lost = to_json(&Event::MessagesLost {
            group: "ff1e::1".parse().unwrap(),
            sender: sixcast::NodeId(0x42),
            count: 2,
        });
        assert_eq!(
            lost,
            json!({"kind": "messages_lost", "group": "ff1e::1", "sender": "0000000000000042", "count": 2})
        );
        let path = to_json(&Event::PathChanged {
            path: sixcast::CorePath::Unreachable,
        });
        assert_eq!(
            path,
            json!({"kind": "path_changed", "path": "unreachable", "via": null})
        );
    }
}
