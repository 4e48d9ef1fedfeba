//! Tests of the `sixcast-netlab` binary: exit codes, the world description handed to the
//! command, and teardown on normal exit and on SIGTERM.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

mod common;
use common::environment_ready;

const BINARY: &str = env!("CARGO_BIN_EXE_sixcast-netlab");

/// A scratch file path unique to this test process and `name` (not named like harness state,
/// so the sweep leaves it alone).
fn scratch_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("netlab-cli-test-{}-{name}", std::process::id()))
}

fn world_namespaces(world: &serde_json::Value) -> Vec<String> {
    let mut names = vec![
        world["switch_netns"]
            .as_str()
            .expect("switch_netns")
            .to_owned(),
    ];
    for host in world["hosts"].as_array().expect("hosts") {
        names.push(host["netns"].as_str().expect("netns").to_owned());
    }
    names
}

fn assert_gone(namespaces: &[String]) {
    for name in namespaces {
        assert!(
            !Path::new("/run/netns").join(name).exists(),
            "{name} left behind"
        );
    }
}

#[test]
fn run_hands_over_the_world_and_returns_the_exit_code() {
    if !environment_ready(false) {
        return;
    }
    let copy = scratch_file("world.json");
    let script = format!(
        "test \"$SIXCAST_WORLD\" = \"$(cat \"$SIXCAST_WORLD_FILE\")\" || exit 99; \
         cp \"$SIXCAST_WORLD_FILE\" {}; exit 7",
        copy.display()
    );
    let status = Command::new(BINARY)
        .args(["run", "lan:2", "--", "sh", "-c", &script])
        .status()
        .expect("running sixcast-netlab");
    assert_eq!(
        status.code(),
        Some(7),
        "the command's exit code is passed on"
    );
    let world: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&copy).expect("world copy")).unwrap();
    let _ = std::fs::remove_file(&copy);
    assert_eq!(world["topology"], "lan");
    assert_eq!(world["hosts"][1]["addr"], "fd5c:1::12");
    assert_gone(&world_namespaces(&world));
}

#[test]
fn run_builds_the_reachability_worlds() {
    if !environment_ready(true) {
        return;
    }
    for (topology, hosts, first_addr) in [
        ("stratum", 8, "fd5c:c::10"),
        ("stratum2", 10, "fd5c:c::10"),
        ("routed-ssm", 5, "fd5c:a::11"),
    ] {
        let copy = scratch_file(&format!("{topology}.json"));
        let script = format!("cp \"$SIXCAST_WORLD_FILE\" {}", copy.display());
        let status = Command::new(BINARY)
            .args(["run", topology, "--", "sh", "-c", &script])
            .status()
            .expect("running sixcast-netlab");
        assert_eq!(status.code(), Some(0), "{topology}");
        let world: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&copy).expect("world copy")).unwrap();
        let _ = std::fs::remove_file(&copy);
        assert_eq!(world["topology"], topology);
        assert_eq!(world["hosts"].as_array().map(Vec::len), Some(hosts));
        assert_eq!(world["hosts"][0]["addr"], first_addr);
        let routes = world["multicast_routes"].as_array().map(Vec::len);
        let expected_routes = if topology == "routed-ssm" { 2 } else { 0 };
        assert_eq!(routes, Some(expected_routes), "{topology}'s routes");
        assert_gone(&world_namespaces(&world));
    }
}

#[test]
fn run_tears_down_on_sigterm() {
    if !environment_ready(true) {
        return;
    }
    let ready = scratch_file("ready.json");
    let script = format!(
        "cp \"$SIXCAST_WORLD_FILE\" {}; exec sleep 30",
        ready.display()
    );
    let mut harness = Command::new(BINARY)
        .args(["run", "routed-mcast", "--", "sh", "-c", &script])
        .stderr(Stdio::null())
        .spawn()
        .expect("starting sixcast-netlab");
    let deadline = Instant::now() + Duration::from_secs(10);
    let world = loop {
        let parsed = std::fs::read_to_string(&ready)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        if let Some(world) = parsed {
            break world;
        }
        assert!(Instant::now() < deadline, "the command never started");
        thread::sleep(Duration::from_millis(20));
    };
    let _ = std::fs::remove_file(&ready);
    let namespaces = world_namespaces(&world);
    assert!(Path::new("/run/netns").join(&namespaces[0]).exists());
    let pid = libc::pid_t::try_from(harness.id()).unwrap();
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = harness.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "sixcast-netlab did not stop after SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGTERM),
        "the command died of SIGTERM"
    );
    assert_gone(&namespaces);
}

#[test]
fn check_and_usage_errors() {
    let check = Command::new(BINARY)
        .args(["check", "routed-mcast"])
        .output()
        .unwrap();
    let verdict = String::from_utf8_lossy(&check.stdout);
    match check.status.code() {
        Some(0) => {
            let lines: Vec<&str> = verdict.lines().collect();
            assert_eq!(lines.first(), Some(&"ok"), "{verdict}");
            let router = sixcast_netlab::multicast_router_choice().expect("a multicast router");
            assert_eq!(
                lines.get(1).copied(),
                Some(format!("multicast router: {router}").as_str()),
                "check names the multicast router"
            );
        }
        Some(77) => assert!(verdict.starts_with("skip: "), "{verdict}"),
        other => panic!("check exited with {other:?}: {verdict}"),
    }
    for args in [
        &["run", "mesh", "--", "true"][..],
        &["run", "lan"],
        &["frobnicate"],
        &[],
    ] {
        let output = Command::new(BINARY).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(64), "{args:?} is a usage error");
        assert!(!output.stderr.is_empty(), "{args:?} explains itself");
    }
}
