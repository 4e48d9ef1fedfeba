//! A context's events (the core's `Event`) as one record with a `kind`.

use sixcast::Event as CoreEvent;

/// Something that happened to a context. `kind` says which, and which fields are set:
/// `path_changed` (`path`: native, relay, repeater, gateway or unreachable; `via`),
/// `relay_failover` (`from`, `to`), `gateway_role` (`serving`) and `messages_lost` (`group`,
/// `sender`, `count`).
#[derive(Debug, Clone, PartialEq, Eq, Default, uniffi::Record)]
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
    pub serving: Vec<String>,
    /// The channel's group (`messages_lost`).
    pub group: Option<String>,
    /// The sender's node id, 16 hex digits.
    pub sender: Option<String>,
    /// How many of its messages were never heard.
    pub count: u64,
}

impl From<CoreEvent> for Event {
    fn from(event: CoreEvent) -> Self {
        let kind = event.name().to_owned();
        match event {
            CoreEvent::PathChanged { path } => Self {
                kind,
                path: Some(path.name().to_owned()),
                via: path.via().map(|via| via.to_string()),
                ..Self::default()
            },
            CoreEvent::RelayFailover { from, to } => Self {
                kind,
                from: Some(from.to_string()),
                to: to.map(|to| to.to_string()),
                ..Self::default()
            },
            CoreEvent::GatewayRole { serving } => Self {
                kind,
                serving: serving.iter().map(ToString::to_string).collect(),
                ..Self::default()
            },
            CoreEvent::MessagesLost {
                group,
                sender,
                count,
            } => Self {
                kind,
                group: Some(group.to_string()),
                sender: Some(sender.to_string()),
                count,
                ..Self::default()
            },
            // A kind newer than this binding: its name alone.
            _ => Self {
                kind,
                ..Self::default()
            },
        }
    }
}
