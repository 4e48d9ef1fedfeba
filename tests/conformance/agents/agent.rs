//! The Rust conformance agent (see README.md beside this file): `send` three messages or
//! `recv` them, printing one JSON line per message.

use std::{
    io::Write,
    process::ExitCode,
    time::{Duration, Instant},
};

use sixcast::{Config, Context, ErrorKind, Message};

/// Size of the large message, and its content rule: byte i is i % 251.
const LARGE: usize = 1 << 20;

fn large_message() -> Vec<u8> {
    (0..LARGE).map(|i| (i % 251) as u8).collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["send", channel, label] => send(channel, label),
        ["recv", channel, count, timeout] => match (count.parse(), timeout.parse()) {
            (Ok(count), Ok(timeout)) => recv(channel, count, Duration::from_secs_f64(timeout)),
            _ => usage(),
        },
        _ => usage(),
    };
    outcome.unwrap_or_else(|err| {
        eprintln!("agent: {err}");
        ExitCode::FAILURE
    })
}

fn usage() -> sixcast::Result<ExitCode> {
    eprintln!(
        "usage: agent send <channel> <label> | agent recv <channel> <count> <timeout-seconds>"
    );
    Ok(ExitCode::from(2))
}

fn send(channel: &str, label: &str) -> sixcast::Result<ExitCode> {
    let context = Context::new(Config::default())?;
    let channel = context.channel(channel)?;
    channel.send(format!("hello from {label}").as_bytes())?;
    channel.send(b"")?;
    channel.send(&large_message())?;
    channel.flush()?;
    context.close();
    Ok(ExitCode::SUCCESS)
}

fn recv(channel: &str, count: usize, timeout: Duration) -> sixcast::Result<ExitCode> {
    let context = Context::new(Config::default())?;
    let channel = context.channel(channel)?;
    channel.join()?;
    let mut stdout = std::io::stdout().lock();
    let printed = writeln!(stdout, "READY").and_then(|()| stdout.flush());
    printed.map_err(|err| sixcast::Error::io("writing to standard output", err))?;
    let deadline = Instant::now() + timeout;
    let large = large_message();
    for _ in 0..count {
        let message = match channel.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(message) => message,
            Err(err) if err.kind() == ErrorKind::Timeout => return Ok(ExitCode::from(3)),
            Err(err) => return Err(err),
        };
        let line = describe(&message, &large);
        let printed = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
        printed.map_err(|err| sixcast::Error::io("writing to standard output", err))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(message: &Message, large: &[u8]) -> String {
    let text = (message.payload.len() <= 64)
        .then(|| String::from_utf8(message.payload.clone()).ok())
        .flatten();
    serde_json::json!({
        "size": message.payload.len(),
        "text": text,
        "pattern_ok": message.payload == large,
        "seq": message.seq,
        "sender": message.sender.to_string(),
    })
    .to_string()
}
