//! A context's events (the core's `Event`) as plain objects with a `kind`.

use napi_derive::napi;
use sixcast::Event as CoreEvent;

/// Something that happened to a context. `kind` says which, and which fields are set:
/// `path_changed` (`path`: native, relay, repeater, gateway or unreachable; `via`),
/// `relay_failover` (`from`, `to`), `gateway_role` (`serving`) and `messages_lost` (`group`,
/// `sender`, `count`).
#[napi(object, object_from_js = false)]
pub struct Event {
    /// What happened.
    pub kind: String,
    /// The path to the core now (`path_changed`).
    pub path: Option<String>,
    /// The relay, repeater or gateway of that path, `[address]:port`.
    pub via: Option<String>,
    /// The relay that failed (`relay_failover`).
    pub from: Option<String>,
    /// The spare that took over; null when none did.
    pub to: Option<String>,
    /// Groups of the channels served for the segment (`gateway_role`).
    pub serving: Option<Vec<String>>,
    /// The channel's group (`messages_lost`).
    pub group: Option<String>,
    /// The sender's node id, 16 hex digits.
    pub sender: Option<String>,
    /// How many of its messages were never heard.
    pub count: Option<f64>,
}

impl From<CoreEvent> for Event {
    fn from(event: CoreEvent) -> Self {
        let mut converted = Self {
            kind: event.name().to_owned(),
            path: None,
            via: None,
            from: None,
            to: None,
            serving: None,
            group: None,
            sender: None,
            count: None,
        };
        match event {
            CoreEvent::PathChanged { path } => {
                converted.path = Some(path.name().to_owned());
                converted.via = path.via().map(|via| via.to_string());
            }
            CoreEvent::RelayFailover { from, to } => {
                converted.from = Some(from.to_string());
                converted.to = to.map(|to| to.to_string());
            }
            CoreEvent::GatewayRole { serving } => {
                converted.serving = Some(serving.iter().map(ToString::to_string).collect());
            }
            CoreEvent::MessagesLost {
                group,
                sender,
                count,
            } => {
                converted.group = Some(group.to_string());
                converted.sender = Some(sender.to_string());
                // Counts stay far below 2^53.
                converted.count = Some(count as f64);
            }
            // A kind newer than this binding: its name alone.
            _ => {}
        }
        converted
    }
}
