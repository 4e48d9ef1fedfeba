//! The `sixcast` command's contract: output formats and exit codes, with real processes in
//! network-namespace hosts.

mod harness;

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use harness::{World, world};

const SIXCAST: &str = env!("CARGO_BIN_EXE_sixcast");

fn run(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(SIXCAST)
        .args(args)
        .output()
        .expect("run sixcast");
    (
        output.status.code().expect("exit code"),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn addr_prints_each_profile_and_scope() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["addr", "webservers"],
            "ff1e:c0:1acf:916c:691a:a851:5b62:1339",
        ),
        (
            &["addr", "webservers", "--scope", "site"],
            "ff15:c0:1acf:916c:691a:a851:5b62:1339",
        ),
        (
            &["addr", "webservers", "--relayed"],
            "ff1e:1c0:1acf:916c:691a:a851:5b62:1339",
        ),
        (
            &["addr", "webservers", "--profile", "librecast"],
            "ff1e:81b4:7fc5:feea:3ac9:7831:f88c:46c",
        ),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        assert_eq!(stdout.trim(), *expected, "{args:?}");
    }
    let (code, stdout, _) = run(&["addr", "webservers", "--profile", "ssm"]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("ff3e::"), "{stdout}");
}

#[test]
fn bad_input_gives_a_clear_error_and_exit_code() {
    let long_name = "n".repeat(sixcast::addr::MAX_NAME_LEN + 1);
    let cases: &[(&[&str], i32, &str)] = &[
        // Fixed choices are clap's to refuse: a usage error that lists them, or suggests one.
        (
            &["addr", "x", "--scope", "galaxy"],
            2,
            "link, site, org, global",
        ),
        (&["addr", "x", "--profile", "nope"], 2, "nope"),
        (
            &["addr", "x", "--profile", "embeded-rp"],
            2,
            "similar value exists: 'embedded-rp'",
        ),
        (&["relay", "--scope", "planet"], 2, "planet"),
        (&["addr", "x", "--profile", "embedded-rp"], 1, "rp"),
        (&["addr", &long_name], 1, "4096"),
        (&["listen", "x", "--iface", "no-such-if0"], 1, "no-such-if0"),
        (&["listen", "x", "--timeout=-1"], 1, "timeout"),
        (&["probe", "--domain", "a..b"], 1, "domain"),
        (
            &["probe", "--domain", "x.test", "--dns-server", "nope"],
            1,
            "dns_server",
        ),
        (
            &["send", "x", "y", "--dns-server", "2001:db8::53"],
            1,
            "domain",
        ),
        (&["probe"], 1, "--domain"),
        (
            &["listen", "x", "--relay-key", "/nonexistent/relay.pub"],
            1,
            "relay.pub",
        ),
        (
            &[
                "probe",
                "--domain",
                "x.test",
                "--relay-issuer",
                "/nonexistent/issuer.pub",
            ],
            1,
            "issuer.pub",
        ),
        (
            &["relay", "--identity", "/nonexistent/relay.key"],
            1,
            "relay.key",
        ),
        (
            &[
                "voucher",
                "--issuer",
                "/nonexistent/operator.key",
                "--relay",
                "/nonexistent/relay.pub",
                "--valid",
                "60",
                "--out",
                "/nonexistent/voucher",
            ],
            1,
            "operator.key",
        ),
        (&["frobnicate"], 2, "frobnicate"),
    ];
    for (args, expected_code, mention) in cases {
        let (code, _, stderr) = run(args);
        let shown: Vec<_> = args.iter().map(|arg| &arg[..arg.len().min(20)]).collect();
        assert_eq!(code, *expected_code, "{shown:?}: {stderr}");
        assert!(
            stderr.contains(mention),
            "{shown:?} should mention {mention:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn completions_and_the_man_page_are_generated() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, script, stderr) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        for word in ["listen", "send", "--format", "perf"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    // The bash script must at least parse.
    let (_, script, _) = run(&["completions", "bash"]);
    let checked = Command::new("bash")
        .args(["-n", "-c", &script])
        .status()
        .expect("bash");
    assert!(
        checked.success(),
        "the bash completion script does not parse"
    );
    let (code, page, _) = run(&["man"]);
    assert_eq!(code, 0);
    assert!(page.contains(".TH sixcast 1"), "{page}");
    for word in ["listen", "relay", "Exit codes"] {
        assert!(page.contains(word), "the man page lacks {word}");
    }
    let (code, _, stderr) = run(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error: {stderr}");
    assert!(
        stderr.contains("bash"),
        "the error lists the shells: {stderr}"
    );
}

/// A `sixcast listen` process and the thread collecting the rest of its standard error.
struct Listener {
    child: std::process::Child,
    stderr: std::thread::JoinHandle<String>,
}

/// Starts `sixcast listen` in a host and waits until it has joined.
fn start_listener(world: &World, host: &str, args: &[&str]) -> Listener {
    let mut child = world
        .host(host)
        .command(SIXCAST)
        .arg("listen")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start listener");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("listening to"), "listener said: {line}");
    // Keep draining: a closed pipe would make the listener's later messages fail.
    let stderr = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
        rest
    });
    Listener { child, stderr }
}

/// Waits for the listener to exit; returns its exit code, standard output and standard error.
fn finish(listener: Listener, within: Duration) -> (i32, String, String) {
    let (code, stdout, stderr) = finish_bytes(listener, within);
    (code, String::from_utf8(stdout).unwrap(), stderr)
}

/// Like [`finish`], with standard output as bytes.
fn finish_bytes(listener: Listener, within: Duration) -> (i32, Vec<u8>, String) {
    let Listener { mut child, stderr } = listener;
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = Vec::new();
            std::io::Read::read_to_end(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
            return (status.code().unwrap_or(-1), stdout, stderr.join().unwrap());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn listen_and_send_across_a_lan() {
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    let json = start_listener(
        &world,
        "h2",
        &["chat", "--count", "3", "--timeout", "10", "--json"],
    );
    let text = start_listener(&world, "h3", &["chat", "--count", "3", "--timeout", "10"]);
    let status = world
        .host("h1")
        .command(SIXCAST)
        .args(["send", "chat", "hello"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut piped = world
        .host("h1")
        .command(SIXCAST)
        .args(["send", "chat"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    piped
        .stdin
        .take()
        .unwrap()
        .write_all(b"second line\nthird line\n")
        .unwrap();
    assert!(piped.wait().unwrap().success());

    let (code, stdout, _) = finish(text, Duration::from_secs(10));
    assert_eq!(code, 0);
    assert_eq!(stdout, "hello\nsecond line\nthird line\n");

    let (code, stdout, _) = finish(json, Duration::from_secs(10));
    assert_eq!(code, 0);
    let mut lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let summary = lines.pop().unwrap();
    assert_eq!(summary["drops"]["no_key"], 0, "{summary}");
    assert_eq!(summary["messages_received"], 3, "{summary}");
    assert_eq!(lines.len(), 3);
    let sender = world.host("h1").addr().to_string();
    let group = "ff1e:".to_string();
    for (line, payload) in lines.iter().zip(["hello", "second line", "third line"]) {
        assert_eq!(line["payload"], payload);
        assert_eq!(line["channel"], "chat");
        assert_eq!(line["path"], "native");
        assert_eq!(line["interface"], "eth0");
        assert!(line["source"].as_str().unwrap().contains(&sender), "{line}");
        assert!(
            line["group"].as_str().unwrap().starts_with(&group),
            "{line}"
        );
        assert_eq!(line["sender"].as_str().unwrap().len(), 16);
    }
    // Two senders (two processes), each starting its own sequence at zero.
    assert_eq!(lines[0]["seq"], 0);
    assert_eq!(
        (lines[1]["seq"].as_u64(), lines[2]["seq"].as_u64()),
        (Some(0), Some(1))
    );
}

#[test]
fn listen_prints_binary_payloads_exactly_in_every_exact_format() {
    let Some(world) = world(|| World::lan(5), false) else {
        return;
    };
    // Every byte value, and bytes that are not UTF-8 (text would print them as U+FFFD).
    let payload: Vec<u8> = (0..=255u8).rev().chain([0xc3, 0x28, b'\n', 0]).collect();
    let listeners: Vec<(&str, Listener)> = ["hex", "base64", "raw", "json"]
        .into_iter()
        .zip(["h2", "h3", "h4", "h5"])
        .map(|(format, host)| {
            let args = [
                "bytes",
                "--count",
                "1",
                "--timeout",
                "10",
                "--format",
                format,
            ];
            (format, start_listener(&world, host, &args))
        })
        .collect();
    world
        .host("h1")
        .run(|| -> sixcast::Result<()> {
            let context = sixcast::Context::new(sixcast::Config::default())?;
            let channel = context.channel("bytes")?;
            channel.send(&payload)?;
            channel.flush()
        })
        .unwrap()
        .expect("sending the binary payload");
    for (format, listener) in listeners {
        let (code, stdout, stderr) = finish_bytes(listener, Duration::from_secs(10));
        assert_eq!(code, 0, "{format}: {stderr}");
        let text = || String::from_utf8(stdout.clone()).expect("a line of text");
        match format {
            "hex" => assert_eq!(text(), format!("{}\n", hex::encode(&payload))),
            "base64" => {
                let line = text();
                let decoded = base64_decode(line.trim_end());
                assert_eq!(decoded, payload, "{line}");
            }
            "raw" => assert_eq!(stdout, payload),
            _ => {
                let first = text().lines().next().map(str::to_owned).unwrap_or_default();
                let message: serde_json::Value = serde_json::from_str(&first).unwrap();
                let exact = message["payload_base64"].as_str().expect("payload_base64");
                assert_eq!(base64_decode(exact), payload, "{message}");
                assert_eq!(message["size"], payload.len());
            }
        }
    }
    let (code, _, stderr) = run(&["listen", "x", "--json", "--format", "hex"]);
    assert_eq!(
        code, 2,
        "--json and --format together are a usage error: {stderr}"
    );
}

/// Decodes standard base64 with padding, the form `--format base64` prints.
fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_else(|err| panic!("not base64 ({err}): {text}"))
}

#[test]
fn listen_times_out_with_exit_code_3_where_multicast_is_not_routed() {
    let Some(world) = world(World::routed_nomcast, false) else {
        return;
    };
    let far = start_listener(&world, "b1", &["alerts", "--count", "1", "--timeout", "1"]);
    let status = world
        .host("a1")
        .command(SIXCAST)
        .args(["send", "alerts", "disk full"])
        .status()
        .unwrap();
    assert!(status.success());
    let began = Instant::now();
    let (code, stdout, stderr) = finish(far, Duration::from_secs(5));
    assert_eq!(code, 3);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("timed out after 0 message(s) of 1"),
        "{stderr}"
    );
    assert!(began.elapsed() < Duration::from_secs(3));
}

/// A service process (`sixcast stratum0`/`relay`), killed when dropped.
struct Service(std::process::Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sixcast <command...>` in `host` and waits for its "running" line.
fn start_service(world: &World, host: &str, command: &[&str]) -> Service {
    let mut child = world
        .host(host)
        .command(SIXCAST)
        .args(command)
        .args(["--hops", "8"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the service");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("running"), "{command:?} said: {line}");
    // Keep draining, so that the service never blocks on (or fails writing to) a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Service(child)
}

/// Runs `sixcast probe ARGS --json --hops 8` on `host`: whether it succeeded, its JSON report
/// and its standard error.
fn probe(world: &World, host: &str, args: &[&str]) -> (bool, serde_json::Value, String) {
    let output = world
        .host(host)
        .command(SIXCAST)
        .arg("probe")
        .args(args)
        .args(["--json", "--hops", "8"])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), report, stderr)
}

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

    let mut listener = start_listener(
        &world,
        "i1",
        &[
            "ops",
            "--count",
            "1",
            "--timeout",
            "15",
            "--json",
            "--stratum0",
            &s0,
            "--hops",
            "8",
        ],
    );
    // The listener reaches the core through the relay once its probe has settled (~2 s):
    // send until it has a message (it exits after one), at most 10 s.
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
    let message: serde_json::Value = serde_json::from_str(first_line).unwrap();
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

/// GETs `http://ADDRESS/metrics` from inside `host` and returns the body; panics unless it
/// answers 200.
fn scrape(world: &World, host: &str, address: &str) -> String {
    let (status, body) = http_get(world, host, address, "/metrics");
    assert!(status.contains(" 200 "), "{address}: {status}");
    body
}

/// A plain HTTP/1.0 GET of `path` at `address`, from inside `host`: the status line and the body.
fn http_get(world: &World, host: &str, address: &str, path: &str) -> (String, String) {
    use std::io::Read;
    let response = world
        .host(host)
        .run(|| -> std::io::Result<String> {
            let mut stream = std::net::TcpStream::connect(address)?;
            stream.set_read_timeout(Some(Duration::from_secs(5)))?;
            write!(stream, "GET {path} HTTP/1.0\r\nConnection: close\r\n\r\n")?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            Ok(response)
        })
        .unwrap()
        .unwrap_or_else(|err| panic!("GET {address}{path}: {err}"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// The value of the unlabelled metric `name` in an OpenMetrics text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
}

#[test]
fn listen_serves_its_channels_counters_for_prometheus() {
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    let address = format!("[{}]:9464", world.host("h2").addr());
    let listener = start_listener(
        &world,
        "h2",
        &["gauges", "--timeout", "30", "--metrics", &address],
    );
    let before = scrape(&world, "h3", &address);
    assert_eq!(
        metric(&before, "sixcast_messages_received_total"),
        0,
        "{before}"
    );
    let mut sender = world
        .host("h1")
        .command(SIXCAST)
        .args(["send", "gauges"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = b"load 0.5\nload 0.7\nload 0.9\n";
    sender.stdin.take().unwrap().write_all(lines).unwrap();
    assert!(sender.wait().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let text = scrape(&world, "h3", &address);
        if metric(&text, "sixcast_messages_received_total") == 3 || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        metric(&after, "sixcast_messages_received_total"),
        3,
        "{after}"
    );
    assert_eq!(
        metric(&after, "sixcast_bytes_received_total"),
        24,
        "{after}"
    );
    assert!(
        after.contains("sixcast_protection_drops_total{reason=\"no_key\"} 0"),
        "{after}"
    );
    let (status, _) = http_get(&world, "h3", &address, "/elsewhere");
    assert!(status.contains(" 404 "), "{status}");
    let Listener { mut child, .. } = listener;
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, _, stderr) = run(&["listen", "x", "--metrics", "nowhere"]);
    assert_eq!(code, 2, "{stderr}");
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
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
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

/// A fresh directory for key files, removed on drop.
struct KeyDir(std::path::PathBuf);

impl KeyDir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir =
            std::env::temp_dir().join(format!("sixcast-cli-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, file: &str) -> String {
        self.0.join(file).to_str().unwrap().to_owned()
    }
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn mode(path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keygen_writes_private_key_files_and_never_overwrites() {
    let dir = KeyDir::new("keygen");
    let (channel_key, signing_key) = (dir.path("channel.key"), dir.path("me.key"));
    let (code, stdout, stderr) = run(&["keygen", "--out", &channel_key]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("channel key "), "{stdout}");
    assert_eq!(mode(&channel_key), 0o600);
    let text = std::fs::read_to_string(&channel_key).unwrap();
    let key = sixcast::crypto::ChannelKey::from_file_text(&text).unwrap();
    assert!(stdout.contains(&key.id().to_string()), "{stdout}");

    let (code, _, stderr) = run(&["keygen", "--out", &channel_key]);
    assert_eq!(code, 1);
    assert!(stderr.contains("never overwritten"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&channel_key).unwrap(), text);

    let (code, stdout, stderr) = run(&["keygen", "--signing", "--out", &signing_key]);
    assert_eq!(code, 0, "{stderr}");
    let public_key = format!("{signing_key}.pub");
    assert_eq!((mode(&signing_key), mode(&public_key)), (0o600, 0o644));
    let secret = std::fs::read_to_string(&signing_key).unwrap();
    let public = std::fs::read_to_string(&public_key).unwrap();
    let signer = sixcast::crypto::SigningKey::from_file_text(&secret).unwrap();
    let trusted = sixcast::crypto::PublicKey::from_file_text(&public).unwrap();
    assert_eq!(signer.public_key(), trusted);
    assert!(
        stdout.contains(&trusted.fingerprint().to_string()),
        "{stdout}"
    );

    // Key files of the wrong kind or garbage are refused before anything is joined or sent.
    std::fs::write(dir.path("garbage"), "sixcast-channel-key-v1 nothex\n").unwrap();
    let garbage = dir.path("garbage");
    let cases: &[&[&str]] = &[
        &["listen", "x", "--key", &public_key],
        &["listen", "x", "--trust", &channel_key],
        &["listen", "x", "--key", &garbage],
        &["send", "x", "hi", "--sign", &channel_key],
        &["send", "x", "hi", "--key", &dir.path("missing")],
    ];
    for args in cases {
        let (code, stdout, stderr) = run(args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(
            stderr.contains(&*dir.0.to_string_lossy()),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn sealed_signed_messages_reach_only_listeners_with_the_key_and_trust() {
    let Some(world) = world(|| World::lan(4), false) else {
        return;
    };
    let dir = KeyDir::new("sealed");
    let (key, signer, stranger) = (dir.path("k"), dir.path("s"), dir.path("x"));
    for args in [
        vec!["keygen", "--out", &key],
        vec!["keygen", "--signing", "--out", &signer],
        vec!["keygen", "--signing", "--out", &stranger],
    ] {
        assert_eq!(run(&args).0, 0, "{args:?}");
    }
    let (signer_pub, stranger_pub) = (format!("{signer}.pub"), format!("{stranger}.pub"));
    let with_key = start_listener(
        &world,
        "h2",
        &[
            "vault",
            "--count",
            "2",
            "--timeout",
            "10",
            "--json",
            "--key",
            &key,
            "--trust",
            &signer_pub,
        ],
    );
    let without_key = start_listener(&world, "h3", &["vault", "--timeout", "3", "--json"]);
    let untrusting = start_listener(
        &world,
        "h4",
        &[
            "vault",
            "--timeout",
            "3",
            "--json",
            "--key",
            &key,
            "--trust",
            &stranger_pub,
        ],
    );
    for message in ["top secret", "also secret"] {
        let status = world
            .host("h1")
            .command(SIXCAST)
            .args(["send", "vault", message, "--key", &key, "--sign", &signer])
            .status()
            .unwrap();
        assert!(status.success());
    }

    let (code, stdout, stderr) = finish(with_key, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["payload"], "top secret");
    assert_eq!(lines[1]["payload"], "also secret");
    assert_eq!(lines[2]["messages_received"], 2);

    for (listener, reason) in [(without_key, "no_key"), (untrusting, "untrusted_signer")] {
        let (code, stdout, stderr) = finish(listener, Duration::from_secs(10));
        assert_eq!(code, 3, "{stderr}");
        assert!(!stdout.contains("secret"), "{stdout}");
        let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(summary["drops"][reason], 2, "{summary}");
        assert_eq!(summary["messages_received"], 0, "{summary}");
        assert_eq!(summary["datagrams_received"], 2, "{summary}");
    }
}

#[test]
fn tokens_admit_senders_until_they_expire() {
    let Some(world) = world(|| World::lan(3), false) else {
        return;
    };
    let dir = KeyDir::new("token");
    let (issuer, member, token, stale, other) = (
        dir.path("issuer"),
        dir.path("member"),
        dir.path("token"),
        dir.path("stale"),
        dir.path("other"),
    );
    let member_pub = format!("{member}.pub");
    let issue = |channel: &str, valid: &str, out: &str| {
        let args = [
            "token",
            "--issuer",
            &issuer,
            "--subject",
            &member_pub,
            "--channel",
            channel,
            "--valid",
            valid,
            "--out",
            out,
        ];
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
    };
    for args in [
        ["keygen", "--signing", "--out", &issuer],
        ["keygen", "--signing", "--out", &member],
    ] {
        assert_eq!(run(&args).0, 0, "{args:?}");
    }
    issue("ops", "3600", &token);
    issue("ops", "0", &stale);
    issue("other", "60", &other);
    // A token for another channel is refused before anything is sent.
    let (code, _, stderr) = run(&["send", "ops", "x", "--sign", &member, "--token", &other]);
    assert_eq!(code, 1);
    assert!(stderr.contains("another channel"), "{stderr}");

    let issuer_pub = format!("{issuer}.pub");
    let listener = start_listener(
        &world,
        "h2",
        &[
            "ops",
            "--timeout",
            "4",
            "--json",
            "--trust-issuer",
            &issuer_pub,
        ],
    );
    // The stale token's only second has passed by the time it is used.
    std::thread::sleep(Duration::from_millis(1100));
    let send = |message: &str, extra: &[&str]| {
        let status = world
            .host("h1")
            .command(SIXCAST)
            .args(["send", "ops", message, "--sign", &member])
            .args(extra)
            .status()
            .unwrap();
        assert!(status.success());
    };
    send("admitted", &["--token", &token]);
    send("too late", &["--token", &stale]);
    send("no token", &[]);
    let (code, stdout, stderr) = finish(listener, Duration::from_secs(10));
    assert_eq!(code, 3, "{stderr}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["payload"], "admitted");
    assert_eq!(lines[1]["drops"]["expired"], 1, "{stdout}");
    assert_eq!(lines[1]["drops"]["untrusted_signer"], 1, "{stdout}");
}
