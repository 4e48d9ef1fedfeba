//! The suite's targets (issue 6): ratios measured side by side in one run, against their limits.

use serde_json::{Value, json};

use crate::{
    fanout,
    suite::{BINDING_RECEIVERS, Cell, RECEIVERS, SIZES},
};

fn find<'a>(cells: &'a [Cell], system: &str, size: usize, receivers: usize) -> Option<&'a Cell> {
    cells
        .iter()
        .find(|cell| cell.system == system && cell.size == size && cell.receivers == receivers)
}

/// One target of issue 6: what was compared, the measured ratio (or value) and the limit.
pub(crate) fn target(name: String, value: Option<f64>, limit: f64, at_least: bool) -> Value {
    let met = value.map(|value| {
        if at_least {
            value >= limit
        } else {
            value <= limit
        }
    });
    json!({"target": name, "value": value, "limit": limit, "at_least": at_least, "met": met})
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? / b?.max(f64::MIN_POSITIVE))
}

pub(crate) fn targets(
    throughput: &[Cell],
    rtt: &[Value],
    relayed: &[Cell],
    scale: &Value,
    fanout: &[fanout::FanoutCell],
) -> Vec<Value> {
    let per =
        |system, size, receivers| find(throughput, system, size, receivers).map(|c| c.per_receiver);
    let mut targets = Vec::new();
    for size in [64, 1024] {
        for receivers in [4, 16] {
            targets.push(target(
                format!("{size} B, {receivers} rcv: sixcast/zmq msg/s per receiver"),
                ratio(per("sixcast", size, receivers), per("zmq", size, receivers)),
                1.5,
                true,
            ));
        }
    }
    targets.push(target(
        "8192 B, 16 rcv: sixcast/zmq total msg/s".into(),
        ratio(
            find(throughput, "sixcast", 8192, 16).map(|c| c.total),
            find(throughput, "zmq", 8192, 16).map(|c| c.total),
        ),
        3.0,
        true,
    ));
    for (size, rate) in fanout::RATES {
        // From the fan-out part, steered: the bridge's copying and the receivers' input run on
        // another CPU, as on a switch and the receivers' own hosts, so the sender's CPU time is
        // its own. Raw multicast's and ZeroMQ's ratios measured alike stand beside it.
        let others: Vec<String> = ["raw", "zmq"]
            .iter()
            .filter_map(|system| {
                fanout::cpu_ratio(fanout, true, system, size)
                    .map(|ratio| format!("{system} {:.2}", ratio.median))
            })
            .collect();
        let others = if others.is_empty() {
            String::new()
        } else {
            format!(" ({})", others.join(", "))
        };
        targets.push(target(
            format!(
                "{size} B at {rate}/s: sixcast sender CPU/M 16 rcv / 1 rcv, fanout steered{others}"
            ),
            fanout::cpu_ratio(fanout, true, "sixcast", size).map(|ratio| ratio.median),
            1.2,
            false,
        ));
    }
    for size in SIZES {
        for receivers in RECEIVERS {
            targets.push(target(
                format!("{size} B, {receivers} rcv: sixcast-unpacked/raw msg/s per receiver"),
                ratio(
                    per("sixcast-unpacked", size, receivers),
                    per("raw", size, receivers),
                ),
                0.9,
                true,
            ));
        }
    }
    let p50 = |system: &str| {
        rtt.iter()
            .find(|row| row["system"] == system)
            .and_then(|row| row["p50_us"].as_f64())
    };
    targets.push(target(
        "64 B round trip p50: sixcast/raw".into(),
        ratio(p50("sixcast"), p50("raw")),
        1.3,
        false,
    ));
    for (ours, theirs) in [("py-sixcast", "pyzmq"), ("node-sixcast", "zeromq.js")] {
        for size in SIZES {
            for receivers in BINDING_RECEIVERS {
                if find(throughput, ours, size, receivers).is_some() {
                    targets.push(target(
                        format!("{size} B, {receivers} rcv: {ours}/{theirs} msg/s per receiver"),
                        ratio(per(ours, size, receivers), per(theirs, size, receivers)),
                        1.0,
                        true,
                    ));
                }
            }
        }
    }
    for size in SIZES {
        let relay = |system| find(relayed, system, size, 1).map(|c| c.per_receiver);
        if relay("sixcast-relay").is_some() {
            targets.push(target(
                format!("{size} B: relayed/unicast-forwarded msg/s"),
                ratio(relay("sixcast-relay"), relay("udp-forwarding")),
                0.7,
                true,
            ));
        }
    }
    if let Some(rss) = scale["channels"]["rss_kib"].as_f64() {
        targets.push(target(
            "1,000 channels: RSS MiB".into(),
            Some(rss / 1024.0),
            32.0,
            false,
        ));
        let complete = scale["channels"]["heard"] == scale["channels"]["channels"];
        targets.push(target(
            "1,000 channels: threads (received on all)".into(),
            scale["channels"]["threads"].as_f64().filter(|_| complete),
            // The context's receive and flush threads and the main thread: none per channel.
            3.0,
            false,
        ));
    }
    for (flood, who) in [
        ("flood", "one sender"),
        ("flood_fresh_senders", "a sender each"),
    ] {
        let figures = &scale[flood];
        if let Some(bound) = figures["bound_kib"].as_f64() {
            targets.push(target(
                format!("partial-message flood ({who}): peak reassembly charge / bound"),
                figures["reassembly_peak_kib"]
                    .as_f64()
                    .map(|kib| kib / bound),
                1.0,
                false,
            ));
        }
    }
    if let (Some(before), Some(peak), Some(bound)) = (
        scale["flood"]["rss_before_kib"].as_f64(),
        scale["flood"]["rss_peak_kib"].as_f64(),
        scale["flood"]["bound_kib"].as_f64(),
    ) {
        // From one sender: nothing but reassembly grows (a sender each also fills the table
        // of senders, bounded on its own by `max_senders`).
        targets.push(target(
            "partial-message flood (one sender): RSS growth / reassembly bound".into(),
            Some((peak - before) / bound),
            1.0,
            false,
        ));
    }
    let relay_row = |clients: usize| {
        scale["relay"]
            .as_array()?
            .iter()
            .find(|row| row["clients"] == clients)
    };
    if let Some(row) = relay_row(1000) {
        // Every client served and heard from: otherwise the figures describe fewer clients.
        let complete = row["tunnels"] == 1000 && row["clients_heard"] == 1000;
        targets.push(target(
            "relay, 1,000 tunnel clients: RSS MiB (all served)".into(),
            row["rss_peak_kib"]
                .as_f64()
                .filter(|_| complete)
                .map(|kib| kib / 1024.0),
            128.0,
            false,
        ));
        // Flat: the CPU one delivered datagram costs grows by at most half from 100 clients to
        // 1,000 (what one client costs the relay is then flat too, at a steady rate per client).
        targets.push(target(
            "relay CPU per datagram down, 1,000 / 100 clients".into(),
            ratio(
                row["cpu_us_per_datagram_down"].as_f64(),
                relay_row(100).and_then(|row| row["cpu_us_per_datagram_down"].as_f64()),
            ),
            1.5,
            false,
        ));
    }
    targets
}

pub(crate) fn print_targets(targets: &[Value]) {
    println!("targets of issue 6");
    let width = targets
        .iter()
        .filter_map(|target| target["target"].as_str())
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(0);
    for target in targets {
        let verdict = match target["met"].as_bool() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let comparison = if target["at_least"] == true {
            ">="
        } else {
            "<="
        };
        let value = target["value"]
            .as_f64()
            .map_or_else(|| "-".to_owned(), |value| format!("{value:.2}"));
        println!(
            "  {:<width$} {:>8} {comparison} {:<5} {verdict}",
            target["target"].as_str().unwrap_or_default(),
            value,
            target["limit"]
        );
    }
}
