//! Telemetry: `publish` sends a reading every 100 ms; `watch` prints a summary per sender each
//! second, with the counters sixcast keeps.
//!
//! ```sh
//! cargo run -p sixcast --example telemetry -- watch     # on any number of hosts
//! cargo run -p sixcast --example telemetry -- publish   # on any number of hosts
//! ```

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use sixcast::{ErrorKind, NodeId};

const CHANNEL: &str = "telemetry/temperature";

fn main() -> sixcast::Result<()> {
    let context = sixcast::Context::new(sixcast::Config::default())?;
    let channel = context.channel(CHANNEL)?;
    match std::env::args().nth(1).as_deref() {
        Some("publish") => {
            let started = Instant::now();
            loop {
                let reading = 20.0 + (started.elapsed().as_secs_f64() / 10.0).sin() * 3.0;
                channel.send(format!("{reading:.2}").as_bytes())?;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Some("watch") => {
            channel.join()?;
            let mut window: BTreeMap<NodeId, Vec<f64>> = BTreeMap::new();
            let mut next_report = Instant::now() + Duration::from_secs(1);
            loop {
                match channel.recv_timeout(next_report.saturating_duration_since(Instant::now())) {
                    Ok(message) => {
                        let reading = String::from_utf8_lossy(&message.payload).parse();
                        if let Ok(reading) = reading {
                            window.entry(message.sender).or_default().push(reading);
                        }
                    }
                    Err(err) if err.kind() == ErrorKind::Timeout => {
                        for (sender, readings) in &window {
                            let mean = readings.iter().sum::<f64>() / readings.len() as f64;
                            println!("{sender}: {} readings, mean {mean:.2}", readings.len());
                        }
                        let stats = channel.stats();
                        println!(
                            "  received {} messages in {} datagrams, {} duplicates, {} malformed",
                            stats.messages_received,
                            stats.datagrams_received,
                            stats.duplicates,
                            stats.malformed
                        );
                        window.clear();
                        next_report += Duration::from_secs(1);
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        _ => {
            eprintln!("usage: telemetry publish|watch");
            std::process::exit(2);
        }
    }
}
