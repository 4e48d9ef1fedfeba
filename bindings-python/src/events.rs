//! The core's `Event`s as Python dicts: ``{"kind": "messages_lost", "group": ..., ...}``.
//! Socket addresses are "[address]:port", groups RFC 5952 text, node ids 16 hex digits.

use pyo3::{prelude::*, types::PyDict};
use sixcast::{CorePath, Event};

/// The dict of `event`; an event kind newer than this binding has its `kind` alone.
pub(crate) fn event_dict<'py>(py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("kind", event.name())?;
    match event {
        Event::PathChanged { path } => set_path(&dict, path)?,
        Event::RelayFailover { from, to } => {
            dict.set_item("from", from.to_string())?;
            dict.set_item("to", to.map(|to| to.to_string()))?;
        }
        Event::GatewayRole { serving } => {
            let serving: Vec<String> = serving.iter().map(ToString::to_string).collect();
            dict.set_item("serving", serving)?;
        }
        Event::MessagesLost {
            group,
            sender,
            count,
        } => {
            dict.set_item("group", group.to_string())?;
            dict.set_item("sender", sender.to_string())?;
            dict.set_item("count", count)?;
        }
        _ => {}
    }
    Ok(dict)
}

/// `path` ("native", "relay", "repeater", "gateway", "unreachable") and `via`.
fn set_path(dict: &Bound<'_, PyDict>, path: &CorePath) -> PyResult<()> {
    dict.set_item("path", path.name())?;
    dict.set_item("via", path.via().map(|via| via.to_string()))
}
