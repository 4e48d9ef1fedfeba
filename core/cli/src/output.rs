//! How `sixcast listen` prints the messages it receives: as text, JSON, hex, base64, or the raw
//! bytes. Every form but text is exact for any payload.

use std::io::{self, Write};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use clap::ValueEnum;
use sixcast::Message;

/// A form of `sixcast listen`'s output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    /// The payload as UTF-8, one message per line; bytes that are not UTF-8 print as U+FFFD.
    Text,
    /// One JSON object per message with its metadata, the payload as text (`payload`) and
    /// exactly (`payload_base64`); on exit (after `--count` messages or at `--timeout`) a last
    /// one, `{"drops": {REASON: COUNT, ...}, ...}`.
    Json,
    /// The payload in lowercase hexadecimal, one message per line.
    Hex,
    /// The payload in standard base64 (with padding), one message per line.
    Base64,
    /// The payload's bytes exactly as sent, nothing between messages (best with `--count 1`).
    Raw,
}

/// Writes `message`, received on `channel`, to `out` in `format`.
pub(super) fn write_message(
    out: &mut impl Write,
    format: Format,
    channel: &str,
    message: &Message,
) -> io::Result<()> {
    let payload = &message.payload[..];
    match format {
        Format::Text => writeln!(out, "{}", String::from_utf8_lossy(payload)),
        Format::Json => writeln!(out, "{}", message_json(channel, message)),
        Format::Hex => writeln!(out, "{}", hex::encode(payload)),
        Format::Base64 => writeln!(out, "{}", BASE64.encode(payload)),
        Format::Raw => out.write_all(payload),
    }
}

fn message_json(channel: &str, message: &Message) -> serde_json::Value {
    serde_json::json!({
        "channel": channel,
        "payload": String::from_utf8_lossy(&message.payload),
        "payload_base64": BASE64.encode(&message.payload),
        "size": message.payload.len(),
        "source": message.source.to_string(),
        "group": message.group.to_string(),
        "interface": &*message.interface_name,
        "sender": message.sender.to_string(),
        "seq": message.seq,
        "path": message.path.name(),
    })
}
