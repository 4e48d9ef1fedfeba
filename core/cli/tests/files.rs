//! `sixcast send-file` and `recv-file` with real processes in network-namespace hosts: every
//! receiver gets the file whole through loss, late receivers complete it from a later pass or
//! a later sending, and bad input is refused clearly.

mod cli_support;
#[path = "../../tests/harness/mod.rs"]
mod harness;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use cli_support::{Listener, SIXCAST, finish, run};
use harness::{World, world};
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(90);

/// A fresh folder for one test, with the file `data.bin` of `len` pseudo-random bytes in `in`.
fn folders(test: &str, len: usize) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("sixcast-files-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("in")).unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let content: Vec<u8> = (0..len)
        .map(|_| {
            // xorshift: incompressible enough, and the same every run.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let file = root.join("in").join("data.bin");
    std::fs::write(&file, content).unwrap();
    (root, file)
}

fn out_dir(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts `sixcast recv-file files --out DIR --json ARGS` on `host` and waits until it joined.
fn start_receiving(world: &World, host: &str, dir: &Path, args: &[&str]) -> Listener {
    let mut child = world
        .host(host)
        .command(SIXCAST)
        .args(["recv-file", "files", "--json", "--out"])
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start recv-file");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("receiving files"), "recv-file said: {line}");
    let stderr = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    Listener { child, stderr }
}

/// Runs `sixcast send-file files FILE --json ARGS` on `host`; returns its JSON report.
fn send(world: &World, host: &str, file: &Path, args: &[&str]) -> Value {
    let output = world
        .host(host)
        .command(SIXCAST)
        .args(["send-file", "files", "--json"])
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "send-file failed: {stderr}");
    serde_json::from_slice(&output.stdout).unwrap()
}

fn json_line(stdout: &str) -> Value {
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("not one JSON line: {stdout}"))
}

#[test]
fn a_file_reaches_every_receiver_whole_through_loss() {
    let Some(world) = world(|| World::lan(4), false) else {
        return;
    };
    let (root, file) = folders("loss", 3 << 20);
    // Loss on the receivers' links, both ways: chunks, NACKs and status reports.
    world.set_udp_loss("h2", 5).unwrap();
    world.set_udp_loss("h3", 20).unwrap();
    let receivers: Vec<_> = ["h2", "h3", "h4"]
        .iter()
        .map(|host| {
            let dir = out_dir(&root, host);
            (
                start_receiving(&world, host, &dir, &["--timeout", "80"]),
                dir,
            )
        })
        .collect();
    let sent = send(&world, "h1", &file, &[]);
    assert_eq!(sent["size"], 3 << 20);
    let original = std::fs::read(&file).unwrap();
    for (listener, dir) in receivers {
        let (code, stdout, stderr) = finish(listener, WITHIN);
        assert_eq!(code, 0, "{dir:?}: {stderr}");
        let report = json_line(&stdout);
        assert_eq!(report["sha256"], sent["sha256"], "{dir:?}");
        assert_eq!(report["resumed"], 0);
        assert!(
            std::fs::read(dir.join("data.bin")).unwrap() == original,
            "{dir:?}"
        );
        let left = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(left, 1, "{dir:?}: partial files left behind");
    }
    world.set_udp_loss("h2", 0).unwrap();
    world.set_udp_loss("h3", 0).unwrap();
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn late_receivers_complete_the_file_from_a_later_pass_or_a_later_sending() {
    let Some(world) = world(|| World::lan(4), false) else {
        return;
    };
    let (root, file) = folders("late", 4 << 20);
    let original = std::fs::read(&file).unwrap();
    // 4 MiB at 16 Mbit/s: about two seconds a pass.
    let rate = ["--rate", "16000000"];
    let on_time_dir = out_dir(&root, "on-time");
    let on_time = start_receiving(&world, "h2", &on_time_dir, &["--timeout", "60"]);
    let late_dir = out_dir(&root, "late");
    let once_dir = out_dir(&root, "once");
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            send(
                &world,
                "h1",
                &file,
                &[&rate[..], &["--passes", "2"]].concat(),
            )
        });
        std::thread::sleep(Duration::from_millis(700));
        // Joins during the first pass: completes in the second.
        let late = start_receiving(&world, "h3", &late_dir, &["--timeout", "60"]);
        sender.join().unwrap();
        let (code, stdout, stderr) = finish(late, WITHIN);
        assert_eq!(code, 0, "late: {stderr}");
        assert_eq!(json_line(&stdout)["size"], 4 << 20);
        assert!(std::fs::read(late_dir.join("data.bin")).unwrap() == original);
    });
    let (code, _, stderr) = finish(on_time, WITHIN);
    assert_eq!(code, 0, "on time: {stderr}");

    // One pass, joined late: the sender finishes first; what arrived is kept (exit 4) ...
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| send(&world, "h1", &file, &rate));
        std::thread::sleep(Duration::from_millis(700));
        let once = start_receiving(&world, "h4", &once_dir, &["--timeout", "60"]);
        sender.join().unwrap();
        let (code, _, stderr) = finish(once, WITHIN);
        assert_eq!(code, 4, "{stderr}");
        assert!(stderr.contains("is kept"), "{stderr}");
        assert!(once_dir.join(".data.bin.sixcast-part").exists());
    });
    // ... and the next sending of the same file completes it, resuming what was kept.
    let again = start_receiving(&world, "h4", &once_dir, &["--timeout", "60"]);
    send(&world, "h1", &file, &[]);
    let (code, stdout, stderr) = finish(again, WITHIN);
    assert_eq!(code, 0, "{stderr}");
    let resumed = json_line(&stdout)["resumed"].as_u64().unwrap();
    assert!(resumed > 0 && resumed < 4 << 20, "resumed {resumed} bytes");
    assert!(std::fs::read(once_dir.join("data.bin")).unwrap() == original);
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn bad_input_is_refused_with_a_clear_message() {
    let (root, file) = folders("bad", 10);
    let file = file.to_str().unwrap();
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["send-file", "x", "/nonexistent/file"],
            1,
            "/nonexistent/file",
        ),
        (
            &["send-file", "x", file, "--name", "../up"],
            1,
            "plain name",
        ),
        (
            &["send-file", "x", file, "--passes", "0"],
            1,
            "at least one pass",
        ),
        (
            &["recv-file", "x", "--out", "/nonexistent/dir"],
            1,
            "not a folder",
        ),
        (&["recv-file", "x", "--out", file], 1, "not a folder"),
        (&["recv-file", "x"], 2, "--out"),
        (
            &["recv-file", "x", "--out", "/tmp", "--timeout=-1"],
            1,
            "--timeout",
        ),
    ];
    for (args, code, needle) in cases {
        let (actual, _, stderr) = run(args);
        assert_eq!(actual, *code, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&root).unwrap();
}
