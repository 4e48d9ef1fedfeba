//! The core's services from the command line: Stratum 0, relays, gateways and SSM repeaters as
//! real processes in network-namespace worlds, probed, listened through, scraped and stopped.

mod cli_support;
#[path = "../../tests/harness/mod.rs"]
mod harness;

use std::{
    io::{BufRead, BufReader},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use cli_support::{
    Listener, SIXCAST, Service, finish, metric, probe, scrape, start_listener, start_service,
};
use harness::{World, keep_sending, world};

#[test]
fn an_island_probes_and_listens_through_a_relay() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let s0_metrics = format!("[{}]:9464", world.host("s0").addr());
    let relay_metrics = format!("[{}]:9464", world.host("r1").addr());
    let _stratum0 = start_service(&world, "s0", &["stratum0", "--metrics", &s0_metrics]);
    let _relay = start_service(&world, "r1", &["relay", "--metrics", &relay_metrics]);
    let s0 = format!("[{}]:6447", world.host("s0").addr());

    let (succeeded, report, stderr) = probe(&world, "i1", &["--stratum0", &s0]);
    assert!(succeeded, "{stderr}");
    assert_eq!(report["answered"], true, "{report}");
    assert_eq!(report["native_down"], false, "{report}");
    assert_eq!(report["native_up"], false, "{report}");
    let relay = format!("[{}]:6448", world.host("r1").addr());
    assert_eq!(report["path"], format!("relay {relay}"), "{report}");
    assert_eq!(report["offers"][0]["relay"], relay, "{report}");

    let (_, report, _) = probe(&world, "c1", &["--stratum0", &s0]);
    assert_eq!(report["path"], "native", "{report}");

    let message = first_message_through_a_relay(&world, &s0);
    assert_eq!(message["payload"], "deploy done");
    assert_eq!(message["path"], "relay");

    // What the services counted: the probes of i1, c1 and the listener, the relay's offers, and
    // at least the one message carried down the listener's tunnel.
    let stratum0 = scrape(&world, "c2", &s0_metrics);
    assert!(
        metric(&stratum0, "sixcast_stratum0_probes_total") >= 3,
        "{stratum0}"
    );
    let relay = scrape(&world, "c2", &relay_metrics);
    assert!(metric(&relay, "sixcast_relay_offers_total") >= 2, "{relay}");
    assert!(
        metric(&relay, "sixcast_relay_datagrams_down_total") >= 1,
        "{relay}"
    );
    assert!(
        metric(&relay, "sixcast_relay_bytes_down_total") >= 11,
        "{relay}"
    );
    assert_eq!(metric(&relay, "sixcast_relay_refused_total"), 0, "{relay}");
}

#[test]
fn a_one_shot_send_from_an_island_waits_for_its_path_and_reaches_the_core() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let _stratum0 = start_service(&world, "s0", &["stratum0"]);
    let _relay = start_service(&world, "r1", &["relay"]);
    let s0 = format!("[{}]:6447", world.host("s0").addr());
    let listener = start_listener(
        &world,
        "c1",
        &[
            "island-news",
            "--count",
            "1",
            "--timeout",
            "20",
            "--json",
            "--hops",
            "8",
        ],
    );
    // One send, from a fresh process: before, it left natively at once and was lost.
    let output = world
        .host("i1")
        .command(SIXCAST)
        .args([
            "send",
            "island-news",
            "once",
            "--stratum0",
            &s0,
            "--hops",
            "8",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (code, stdout, stderr) = finish(listener, Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    let message: serde_json::Value =
        serde_json::from_str(stdout.lines().next().unwrap_or_default()).unwrap();
    assert_eq!(message["payload"], "once");

    // Nobody answers at this Stratum 0: the send fails, says why, and sends nothing.
    let nobody = format!("[{}]:6447", world.host("c2").addr());
    let began = Instant::now();
    let output = world
        .host("i1")
        .command(SIXCAST)
        .args(["send", "island-news", "lost?", "--stratum0", &nobody])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a send without a path succeeded");
    assert!(
        stderr.contains("cannot reach the multicast core"),
        "{stderr}"
    );
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "{:?}",
        began.elapsed()
    );
}

/// Starts `sixcast listen ops --count 1 --json` on island host i1 (told Stratum 0 `s0`) and
/// sends "deploy done" from c1 every 500 ms until it has a message, at most 10 s; returns the
/// message.
fn first_message_through_a_relay(world: &World, s0: &str) -> serde_json::Value {
    let args = [
        "ops",
        "--count",
        "1",
        "--timeout",
        "15",
        "--json",
        "--stratum0",
        s0,
        "--hops",
        "8",
    ];
    let mut listener = start_listener(world, "i1", &args);
    // The listener reaches the core through the relay once its probe has settled (~2 s).
    for _ in 0..20 {
        let status = world
            .host("c1")
            .command(SIXCAST)
            .args(["send", "ops", "deploy done", "--hops", "8"])
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(500));
        if listener.child.try_wait().unwrap().is_some() {
            break;
        }
    }
    let (code, stdout, stderr) = finish(listener, Duration::from_secs(15));
    assert_eq!(code, 0, "{stderr}");
    let first_line = stdout.lines().next().unwrap_or_default();
    serde_json::from_str(first_line).unwrap()
}

#[test]
fn a_relay_configured_by_a_file_serves_an_island() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let _stratum0 = start_service(&world, "s0", &["stratum0"]);
    let s0 = format!("[{}]:6447", world.host("s0").addr());
    let r1 = world.host("r1").addr();
    // A port and limits of the file's, not the defaults.
    let config = std::env::temp_dir().join(format!("sixcast-relay-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        format!(
            "# A relay for the test world.\n[relay]\nlisten = \"[{r1}]:6500\"\n\
             metrics = \"[{r1}]:9464\"\nmax_tunnels = 2\nclient_control_per_sec = 100\n\
             refresh_secs = 5\n"
        ),
    )
    .unwrap();
    let _relay = start_service(
        &world,
        "r1",
        &["relay", "--config", config.to_str().unwrap()],
    );
    std::fs::remove_file(&config).unwrap();
    let (succeeded, report, stderr) = probe(&world, "i1", &["--stratum0", &s0]);
    assert!(succeeded, "{stderr}");
    assert_eq!(report["path"], format!("relay [{r1}]:6500"), "{report}");
    let message = first_message_through_a_relay(&world, &s0);
    assert_eq!(message["payload"], "deploy done");
    assert_eq!(message["path"], "relay");
    let relay = scrape(&world, "c2", &format!("[{r1}]:9464"));
    assert!(
        metric(&relay, "sixcast_relay_datagrams_down_total") >= 1,
        "{relay}"
    );
}

#[test]
fn a_second_island_host_listens_through_its_segments_gateway() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let _stratum0 = start_service(&world, "s0", &["stratum0"]);
    let _relay = start_service(&world, "r1", &["relay"]);
    let s0 = format!("[{}]:6447", world.host("s0").addr());
    let island = |count: &'static str| {
        [
            "ops",
            "--count",
            count,
            "--timeout",
            "30",
            "--json",
            "--stratum0",
            &s0,
            "--hops",
            "8",
        ]
        .map(str::to_owned)
    };
    let send = |text: &str| {
        let status = world
            .host("c1")
            .command(SIXCAST)
            .args(["send", "ops", text, "--hops", "8"])
            .status()
            .unwrap();
        assert!(status.success());
    };
    // The first island host opens the tunnel and serves the segment; it runs until killed.
    let Listener { mut child, .. } = start_listener(
        &world,
        "i1",
        &island("1000")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let gateway = Service(child);
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut warm = None;
    for _ in 0..20 {
        send("warm up");
        if let Ok(line) = lines_rx.recv_timeout(Duration::from_millis(500)) {
            warm = Some(line);
            break;
        }
    }
    let warm: serde_json::Value =
        serde_json::from_str(&warm.expect("the gateway hears the core")).expect("a JSON line");
    assert_eq!(warm["path"], "relay", "{warm}");
    let mut served = start_listener(
        &world,
        "i2",
        &island("1").iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // Time for the second host to hear the gateway's announcement (every 0.5 s).
    std::thread::sleep(Duration::from_secs(1));
    for _ in 0..20 {
        send("deploy done");
        std::thread::sleep(Duration::from_millis(500));
        if served.child.try_wait().unwrap().is_some() {
            break;
        }
    }
    let (code, stdout, stderr) = finish(served, Duration::from_secs(15));
    assert_eq!(code, 0, "{stderr}");
    let first_line = stdout.lines().next().unwrap_or_default();
    let message: serde_json::Value = serde_json::from_str(first_line).unwrap();
    assert_eq!(message["payload"], "deploy done");
    assert_eq!(message["path"], "gateway", "{message}");
    drop(gateway);
}

#[test]
fn probe_finds_stratum0_through_dns_srv() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let _stratum0 = start_service(&world, "s0", &["stratum0"]);
    let _relay = start_service(&world, "r1", &["relay"]);
    let s0 = world.host("s0").addr();
    let Some(dns) = harness::dns::dnsmasq(
        &world,
        "c1",
        5300,
        "sixcast.test",
        &[harness::dns::Srv {
            priority: 0,
            weight: 0,
            port: 6447,
            target: "s0.sixcast.test",
        }],
        &[("s0.sixcast.test", s0)],
    ) else {
        return;
    };
    let server = dns.server.to_string();
    let (succeeded, report, stderr) = probe(
        &world,
        "i1",
        &["--domain", "sixcast.test", "--dns-server", &server],
    );
    assert!(succeeded, "{stderr}");
    assert_eq!(report["stratum0"], format!("[{s0}]:6447"), "{report}");
    assert_eq!(report["domain"], "sixcast.test", "{report}");
    let relay = format!("[{}]:6448", world.host("r1").addr());
    assert_eq!(report["path"], format!("relay {relay}"), "{report}");

    // A domain that names no Stratum 0: a clear error and a failing exit code.
    let (succeeded, report, _) = probe(
        &world,
        "i1",
        &["--domain", "other.sixcast.test", "--dns-server", &server],
    );
    assert!(!succeeded);
    assert_eq!(report["path"], "none", "{report}");
    let error = report["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("_sixcast._udp.other.sixcast.test"),
        "{report}"
    );
}

#[test]
fn probe_reports_an_ssm_repeater_as_the_path() {
    let Some(world) = world(World::routed_ssm, true) else {
        return;
    };
    let _stratum0 = start_service(&world, "a1", &["stratum0"]);
    let _repeater = start_service(&world, "a1", &["relay", "--ssm-repeater"]);
    let s0 = format!("[{}]:6447", world.host("a1").addr());
    let (succeeded, report, stderr) = probe(&world, "b1", &["--stratum0", &s0]);
    assert!(succeeded, "{stderr}");
    let repeater = format!("[{}]:6448", world.host("a1").addr());
    assert_eq!(report["path"], format!("repeater {repeater}"), "{report}");
    assert_eq!(report["offers"][0]["repeater"], true, "{report}");
}

#[test]
fn a_relay_stopped_by_sigterm_hands_its_clients_to_a_spare_at_once() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let _stratum0 = start_service(&world, "s0", &["stratum0"]);
    let s0 = format!("[{}]:6447", world.host("s0").addr());
    let metrics_of = |host: &str| format!("[{}]:9464", world.host(host).addr());
    let mut relays: Vec<(&str, Service)> = ["r1", "r2"]
        .into_iter()
        .map(|host| {
            let metrics = metrics_of(host);
            (
                host,
                start_service(&world, host, &["relay", "--metrics", &metrics]),
            )
        })
        .collect();
    let mut listener = start_listener(
        &world,
        "i1",
        &[
            "ops",
            "--timeout",
            "40",
            "--json",
            "--stratum0",
            &s0,
            "--hops",
            "8",
        ],
    );
    // Every line the listener prints, with when it was read.
    let (lines_tx, lines) = mpsc::channel();
    let stdout = BufReader::new(listener.child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines_tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let sender = keep_sending(
        &world,
        "c1",
        "ops",
        Arc::clone(&stop),
        Duration::from_secs(40),
    );
    let number = |line: &str| -> Option<u32> {
        let message: serde_json::Value = serde_json::from_str(line).ok()?;
        (message["path"] == "relay").then(|| message["payload"].as_str()?.parse().ok())?
    };
    // Through a relay first (the probe takes about 2 s), then find out which one.
    let through_relay = lines
        .recv_timeout(Duration::from_secs(20))
        .ok()
        .and_then(|(_, line)| number(&line));
    assert!(through_relay.is_some(), "i1 heard nothing through a relay");
    let serving = relays
        .iter()
        .position(|(host, _)| {
            metric(
                &scrape(&world, "c2", &metrics_of(host)),
                "sixcast_relay_tunnels",
            ) == 1
        })
        .expect("one relay carries i1's tunnel");
    let (name, mut service) = relays.remove(serving);
    let spare = relays[0].0;
    // Drain what arrived so far, then stop the serving relay as an operator would.
    while lines.try_recv().is_ok() {}
    let pid = libc::pid_t::try_from(service.0.id()).unwrap();
    let stopped_at = Instant::now();
    // SAFETY: kill(2) of a child process this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_for_exit(&mut service.0, Duration::from_secs(5));
    assert_eq!(
        status.code(),
        Some(0),
        "{name} did not stop cleanly on SIGTERM"
    );
    // The longest silence from the SIGTERM until five messages have arrived again.
    let (mut last, mut longest, mut arrived) = (stopped_at, Duration::ZERO, 0);
    while arrived < 5 {
        let (at, line) = lines
            .recv_timeout(Duration::from_secs(10))
            .expect("i1's traffic did not resume");
        if number(&line).is_some() {
            longest = longest.max(at - last);
            last = at;
            arrived += 1;
        }
    }
    stop.store(true, Ordering::Release);
    sender.join().unwrap();
    eprintln!(
        "traffic resumed through {spare} after a silence of {longest:?} from {name}'s SIGTERM"
    );
    assert!(
        longest < Duration::from_millis(2500),
        "i1 waited {longest:?}: as long as for a relay that went silent"
    );
    let spare_metrics = scrape(&world, "c2", &metrics_of(spare));
    assert_eq!(
        metric(&spare_metrics, "sixcast_relay_tunnels"),
        1,
        "{spare_metrics}"
    );
    let _ = listener.child.kill();
    let _ = listener.child.wait();
}

#[test]
fn a_relay_reloads_its_limits_on_sighup_and_keeps_them_when_the_file_is_bad() {
    let Some(world) = world(World::stratum, false) else {
        return;
    };
    let _stratum0 = start_service(&world, "s0", &["stratum0"]);
    let s0 = format!("[{}]:6447", world.host("s0").addr());
    let relay_metrics = format!("[{}]:9464", world.host("r1").addr());
    let config = std::env::temp_dir().join(format!("sixcast-reload-{}.toml", std::process::id()));
    let write = |table: &str| {
        std::fs::write(
            &config,
            format!("[relay]\nmetrics = \"{relay_metrics}\"\n{table}"),
        )
        .unwrap();
    };
    // Room for no tunnel at all: the island cannot reach the core.
    write("max_tunnels = 0\n");
    let mut relay = start_service(
        &world,
        "r1",
        &["relay", "--config", config.to_str().unwrap()],
    );
    let (_, report, _) = probe(&world, "i1", &["--stratum0", &s0]);
    assert_ne!(
        report["path"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .next(),
        Some("relay"),
        "{report}"
    );

    let pid = libc::pid_t::try_from(relay.0.id()).unwrap();
    // Waits (bounded) until the relay has counted one more reload with `outcome`.
    let sighup = |outcome: &str| {
        let name = format!("sixcast_config_reloads_total{{outcome=\"{outcome}\"}}");
        let before = metric(&scrape(&world, "c2", &relay_metrics), &name);
        // SAFETY: kill(2) of a child process this test started and has not reaped.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while metric(&scrape(&world, "c2", &relay_metrics), &name) == before {
            assert!(Instant::now() < deadline, "no {outcome} reload counted");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    write("max_tunnels = 2\nno_such_key = 1\n");
    sighup("failed");
    write("max_tunnels = 2\n");
    sighup("applied");
    std::fs::remove_file(&config).unwrap();

    // The island's listener now gets a tunnel, and says so in its metrics.
    let listener_metrics = format!("[{}]:9464", world.host("i1").addr());
    let mut listener = start_listener(
        &world,
        "i1",
        &[
            "ops",
            "--timeout",
            "30",
            "--stratum0",
            &s0,
            "--hops",
            "8",
            "--metrics",
            &listener_metrics,
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = scrape(&world, "i1", &listener_metrics);
        if metric(&text, "sixcast_path{path=\"relay\"}") == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the listener found no relay:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let relay_figures = scrape(&world, "c2", &relay_metrics);
    assert_eq!(
        metric(&relay_figures, "sixcast_relay_tunnels"),
        1,
        "{relay_figures}"
    );
    let _ = listener.child.kill();
    let _ = listener.child.wait();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert_eq!(
        wait_for_exit(&mut relay.0, Duration::from_secs(5)).code(),
        Some(0)
    );
}

/// Waits (bounded) for `child` to exit.
fn wait_for_exit(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the process did not exit within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
