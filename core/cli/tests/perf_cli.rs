//! `sixcast perf send|recv` between processes on a bridged LAN of namespaces: the reports are
//! consistent with each other (what arrived and what was lost account for what was sent), and a
//! receiver stops on time. The figures themselves are not judged here: that is the benchmarks'
//! job.

#[path = "../../tests/harness/mod.rs"]
mod harness;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use harness::{World, world};
use serde_json::Value;

const SIXCAST: &str = env!("CARGO_BIN_EXE_sixcast");
const KEYS: [&str; 6] = [
    "messages",
    "bytes",
    "seconds",
    "lost",
    "duplicates",
    "cpu_seconds",
];

/// Starts `sixcast perf recv` in `host` and waits until it has joined.
fn start_receiver(world: &World, host: &str, args: &[&str]) -> Child {
    let mut child = world
        .host(host)
        .command(SIXCAST)
        .args(["perf", "recv"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start perf recv");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("perf receiving"), "perf recv said: {line}");
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    child
}

/// Waits at most `within` for `child` to exit; returns its exit code and its JSON report.
fn report(mut child: Child, within: Duration) -> (i32, Value) {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("perf recv did not stop within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let code = output.status.code().unwrap_or(-1);
    let stdout = String::from_utf8(output.stdout).unwrap();
    (
        code,
        serde_json::from_str(stdout.trim()).unwrap_or_else(|err| panic!("{err}: {stdout}")),
    )
}

/// Runs `sixcast perf send ARGS --json` on h1 and returns its report.
fn perf_send(world: &World, args: &[&str]) -> Value {
    let output = world
        .host("h1")
        .command(SIXCAST)
        .args(["perf", "send"])
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn number(report: &Value, key: &str) -> f64 {
    report[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {report}"))
}

#[test]
fn what_arrives_and_what_is_lost_account_for_what_was_sent() {
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    let args = ["load", "--duration", "8", "--json"];
    let receivers = [
        start_receiver(&world, "h2", &args),
        start_receiver(&world, "h3", &args),
    ];
    let began = Instant::now();
    let sent = perf_send(
        &world,
        &["load", "--size", "300", "--duration", "1", "--rate", "3000"],
    );
    for key in KEYS {
        assert!(sent.get(key).is_some(), "sender report lacks {key}: {sent}");
    }
    let sent_messages = number(&sent, "messages");
    // Paced at 3000/s for about a second.
    assert!(
        (1500.0..=3500.0).contains(&sent_messages),
        "{sent_messages}"
    );
    assert_eq!(number(&sent, "bytes"), sent_messages * 300.0);
    assert!(number(&sent, "cpu_seconds") >= 0.0);

    for receiver in receivers {
        let (code, received) = report(receiver, Duration::from_secs(15));
        assert_eq!(code, 0, "{received}");
        for key in KEYS.iter().chain(&["p50_us", "p99_us"]) {
            assert!(
                received.get(*key).is_some(),
                "receiver report lacks {key}: {received}"
            );
        }
        let messages = number(&received, "messages");
        let lost = number(&received, "lost");
        assert!(messages > 0.0 && messages <= sent_messages, "{received}");
        // The receiver joined before the sender started, so it heard from sequence number 0 on.
        assert_eq!(messages + lost, sent_messages, "{received}");
        assert_eq!(number(&received, "duplicates"), 0.0, "{received}");
        assert_eq!(number(&received, "bytes"), messages * 300.0, "{received}");
        assert_eq!(received["senders"], 1, "{received}");
        assert!(number(&received, "p50_us") <= number(&received, "p99_us"));
        let seconds = number(&received, "seconds");
        assert!(seconds > 0.0 && seconds <= 8.0, "{received}");
        assert!(number(&received, "cpu_seconds") >= 0.0);
    }
    // Both receivers stopped after their --duration, not before it.
    assert!(
        began.elapsed() >= Duration::from_secs(7),
        "{:?}",
        began.elapsed()
    );
}

#[test]
fn a_receiver_that_hears_nothing_stops_after_its_duration() {
    let Some(world) = world(|| World::lan(2), false) else {
        return;
    };
    let began = Instant::now();
    let receiver = start_receiver(&world, "h2", &["silence", "--duration", "0.5", "--json"]);
    let (code, received) = report(receiver, Duration::from_secs(5));
    assert_eq!(code, 3, "{received}");
    assert_eq!(number(&received, "messages"), 0.0);
    assert!(received["p50_us"].is_null(), "{received}");
    assert!(began.elapsed() < Duration::from_secs(4));
}

#[test]
fn bad_options_are_refused_with_a_clear_error() {
    let cases: &[(&[&str], &str)] = &[
        (&["perf", "send", "x", "--size", "8"], "--size 8"),
        (&["perf", "send", "x", "--rate", "0"], "--rate 0"),
        (&["perf", "send", "x", "--linger=-1"], "--linger -1"),
        (&["perf", "recv", "x", "--duration=-1"], "--duration -1"),
    ];
    for (args, mention) in cases {
        let output = Command::new(SIXCAST).args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(mention), "{args:?}: {stderr}");
    }
}

#[test]
fn a_sealed_channel_is_measured_with_its_key_and_refused_without_it() {
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    let key = std::env::temp_dir().join(format!("sixcast-perf-key-{}", std::process::id()));
    let _ = std::fs::remove_file(&key);
    let made = Command::new(SIXCAST)
        .args(["keygen", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key_arg = key.to_str().unwrap();
    let args = ["sealed", "--duration", "4", "--json"];
    let holder = start_receiver(&world, "h2", &[&args[..], &["--key", key_arg]].concat());
    let outsider = start_receiver(&world, "h3", &args);
    let sent_report = perf_send(
        &world,
        &[
            "sealed",
            "--size",
            "200",
            "--duration",
            "1",
            "--rate",
            "1000",
            "--key",
            key_arg,
        ],
    );
    std::fs::remove_file(&key).unwrap();
    let sent = number(&sent_report, "messages");
    let (code, received) = report(holder, Duration::from_secs(10));
    assert_eq!(code, 0, "{received}");
    assert_eq!(
        number(&received, "messages") + number(&received, "lost"),
        sent,
        "{received}"
    );
    assert_eq!(received["protection_drops"], 0, "{received}");
    // Without the key nothing is delivered, and every datagram is refused as sealed.
    let (code, refused) = report(outsider, Duration::from_secs(10));
    assert_eq!(code, 3, "{refused}");
    assert_eq!(refused["messages"], 0, "{refused}");
    assert!(number(&refused, "protection_drops") > 0.0, "{refused}");
}

#[test]
fn a_reliable_sender_loses_nothing_at_five_percent_and_reports_its_repair() {
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    for host in ["h2", "h3"] {
        world.set_udp_loss(host, 5).unwrap();
    }
    let args = ["repaired", "--duration", "6", "--json"];
    let receivers = [
        start_receiver(&world, "h2", &args),
        start_receiver(&world, "h3", &args),
    ];
    let sent = perf_send(
        &world,
        &[
            "repaired",
            "--size",
            "300",
            "--duration",
            "1",
            "--rate",
            "3000",
            "--reliable",
        ],
    );
    let sent_messages = number(&sent, "messages");
    assert!(number(&sent, "nacks_received") > 0.0, "{sent}");
    assert!(number(&sent, "repair_bytes") > 0.0, "{sent}");
    for receiver in receivers {
        let (code, received) = report(receiver, Duration::from_secs(15));
        assert_eq!(code, 0, "{received}");
        assert_eq!(number(&received, "messages"), sent_messages, "{received}");
        assert_eq!(number(&received, "lost"), 0.0, "{received}");
        assert_eq!(number(&received, "packets_lost"), 0.0, "{received}");
        assert!(number(&received, "nacks_sent") > 0.0, "{received}");
        assert!(number(&received, "repairs_received") > 0.0, "{received}");
    }
    for host in ["h2", "h3"] {
        world.set_udp_loss(host, 0).unwrap();
    }
}
