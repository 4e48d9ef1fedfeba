//! The orchestrator: builds the worlds, starts one process per host and role, collects their
//! figures into cells, prints the tables and the targets, and writes `suite.json`.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use sixcast::{
    Scope, addr,
    discovery::{Stratum0, Stratum0Config},
    relay::{Relay, RelayConfig},
};
use sixcast_netlab::World;

use crate::{fanout, lossless, protected};

const SIZES: [usize; 3] = [64, 1024, 8192];
const RECEIVERS: [usize; 3] = [1, 4, 16];
/// Receiver counts of the binding comparisons (interpreted peers are slow to start).
const BINDING_RECEIVERS: [usize; 2] = [1, 4];
/// The LAN bridge's MTU: jumbo frames, so an 8 KiB message fits one datagram in every system.
pub(crate) const MTU: u32 = 9000;
/// Largest UDP payload in a 9000-byte IPv6 packet.
const DATAGRAM: usize = MTU as usize - 48;
/// How long multicast receivers keep listening after the sender stops.
const DRAIN: f64 = 0.3;
/// Raw groups are this prefix and the cell number.
const RAW_GROUP: &str = "ff12::be:";
const RAW_PORT: u16 = 7999;
const PARTS: [&str; 9] = [
    "throughput",
    "rtt",
    "bindings",
    "relay",
    "scale",
    "fanout",
    "lossless",
    "repair",
    "protected",
];

/// Command-line options of `sixcast-bench suite`.
pub(crate) struct Options {
    seconds: f64,
    out: PathBuf,
    python: Option<PathBuf>,
    node_binding: Option<PathBuf>,
    parts: Vec<String>,
    sizes: Vec<usize>,
    receivers: Vec<usize>,
    /// Whether `--sizes` or `--receivers` narrowed the cells (the lossless part has its own
    /// lists otherwise).
    narrowed: bool,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            seconds: 1.0,
            out: PathBuf::from("target/bench"),
            python: None,
            node_binding: None,
            parts: PARTS.iter().map(|part| (*part).to_owned()).collect(),
            sizes: SIZES.to_vec(),
            receivers: RECEIVERS.to_vec(),
            narrowed: false,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--seconds" => {
                    options.seconds = value()?
                        .parse()
                        .map_err(|err| format!("--seconds: {err}"))?;
                }
                "--out" => options.out = value()?.into(),
                "--sizes" => {
                    options.sizes = numbers(flag, &value()?, 1 << 20)?;
                    options.narrowed = true;
                }
                "--receivers" => {
                    options.receivers = numbers(flag, &value()?, RECEIVERS[2])?;
                    options.narrowed = true;
                }
                "--python" => options.python = Some(value()?.into()),
                "--node-binding" => options.node_binding = Some(value()?.into()),
                "--only" => {
                    options.parts = value()?.split(',').map(str::to_owned).collect();
                    if let Some(unknown) = options
                        .parts
                        .iter()
                        .find(|part| !PARTS.contains(&part.as_str()))
                    {
                        return Err(format!("--only: no part {unknown}; parts: {PARTS:?}"));
                    }
                }
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(options)
    }

    /// Whether `part` of the suite is to run.
    fn wants(&self, part: &str) -> bool {
        self.parts.iter().any(|wanted| wanted == part)
    }
}

/// A comma-separated list of numbers from 1 to `max`.
fn numbers(flag: &str, list: &str, max: usize) -> Result<Vec<usize>, String> {
    list.split(',')
        .map(|item| match item.parse() {
            Ok(number) if (1..=max).contains(&number) => Ok(number),
            _ => Err(format!("{flag}: {item:?} is not a number from 1 to {max}")),
        })
        .collect()
}

/// One process of a measurement, started in a namespace host.
struct Peer {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(mut command: Command, name: String) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("starting {name}: {err}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Self {
            name,
            child,
            stdin,
            stdout,
        })
    }

    fn line(&mut self) -> Result<String, String> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|err| format!("{}: {err}", self.name))?;
        if line.is_empty() {
            return Err(format!("{} ended without answering", self.name));
        }
        Ok(line)
    }

    fn ready(&mut self) -> Result<(), String> {
        let line = self.line()?;
        if line.trim() == "ready" {
            Ok(())
        } else {
            Err(format!("{} said {line:?} instead of ready", self.name))
        }
    }

    fn go(&mut self) -> Result<(), String> {
        writeln!(self.stdin, "go")
            .and_then(|()| self.stdin.flush())
            .map_err(|err| format!("{}: {err}", self.name))
    }

    /// Reads the peer's figures. The peer may still be finishing (a ZeroMQ publisher delivers
    /// what it queued as it closes): it is waited for when dropped.
    fn report(&mut self) -> Result<Value, String> {
        let line = self.line()?;
        serde_json::from_str(&line).map_err(|err| format!("{}: {err}: {line}", self.name))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // A peer that answered exits soon; one that failed or hangs must not linger.
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start a process for a system's spec.
pub(crate) struct Launcher {
    bench: PathBuf,
    python: Option<PathBuf>,
    node_binding: Option<PathBuf>,
    peers: PathBuf,
}

impl Launcher {
    fn start(&self, world: &World, host: &str, spec: &Value) -> Result<Peer, String> {
        let system = spec["system"].as_str().unwrap_or_default();
        let mut command = match system {
            "py-sixcast" | "pyzmq" => {
                let python = self.python.as_ref().ok_or("no --python given")?;
                let mut command = world.host(host).command(python);
                command.arg(self.peers.join("peer.py"));
                command
            }
            "node-sixcast" | "zeromq.js" => {
                let mut command = world.host(host).command("node");
                command.arg(self.peers.join("peer.mjs"));
                command
            }
            _ => {
                let mut command = world.host(host).command(&self.bench);
                command.arg("role");
                command
            }
        };
        let mut spec = spec.clone();
        if let Some(binding) = &self.node_binding {
            spec["binding"] = json!(binding.join("index.js"));
        }
        command.arg(spec.to_string());
        Peer::start(command, format!("{system} {} on {host}", spec["role"]))
    }
}

/// The delivered rates of one system at one size and receiver count.
pub(crate) struct Cell {
    pub(crate) system: String,
    pub(crate) size: usize,
    pub(crate) receivers: usize,
    pub(crate) per_receiver: f64,
    total: f64,
    pub(crate) loss: f64,
    pub(crate) cpu_per_million: f64,
    /// Receiver CPU time per million messages received, over all receivers.
    pub(crate) receiver_cpu_per_million: f64,
    pub(crate) sent: u64,
    /// The sender's report, and the sum over receivers of each number in theirs.
    pub(crate) reports: (Value, Value),
}

impl Cell {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "system": self.system,
            "size": self.size,
            "receivers": self.receivers,
            "per_receiver": self.per_receiver,
            "total": self.total,
            "loss": self.loss,
            "sender_cpu_per_million": self.cpu_per_million,
            "receiver_cpu_per_million": self.receiver_cpu_per_million,
            "sent": self.sent,
        })
    }
}

fn number(report: &Value, key: &str) -> Result<f64, String> {
    report[key]
        .as_f64()
        .ok_or_else(|| format!("report lacks {key}: {report}"))
}

/// Starts the sender on `sender.0`, `middle` processes (forwarders) and receivers, lets them all
/// go at once and turns their reports into a cell.
pub(crate) fn measure(
    world: &World,
    launcher: &Launcher,
    sender: (&str, Value),
    middle: &[(&str, Value)],
    receivers: &[(String, Value)],
) -> Result<Cell, String> {
    let size = sender.1["size"].as_u64().unwrap_or(0) as usize;
    let system = sender.1["system"].as_str().unwrap_or_default().to_owned();
    let mut sending = launcher.start(world, sender.0, &sender.1)?;
    let mut others = Vec::new();
    for (host, spec) in middle {
        others.push(launcher.start(world, host, spec)?);
    }
    let mut listening = Vec::new();
    for (host, spec) in receivers {
        listening.push(launcher.start(world, host, spec)?);
    }
    for peer in others.iter_mut().chain(listening.iter_mut()) {
        peer.ready()?;
    }
    sending.ready()?;
    for peer in others.iter_mut().chain(listening.iter_mut()) {
        peer.go()?;
    }
    sending.go()?;
    let sent_report = sending.report()?;
    let sent = number(&sent_report, "sent")?;
    let seconds = number(&sent_report, "seconds")?;
    let mut rates = Vec::new();
    let mut received = 0.0;
    let mut receiver_cpu = 0.0;
    let mut summed = serde_json::Map::new();
    for mut peer in listening {
        let report = peer.report()?;
        for (key, value) in report.as_object().into_iter().flatten() {
            if let Some(value) = value.as_f64() {
                let sum = summed.get(key).and_then(Value::as_f64).unwrap_or(0.0) + value;
                summed.insert(key.clone(), json!(sum));
            }
        }
        let count = number(&report, "received")?;
        received += count;
        receiver_cpu += number(&report, "cpu_seconds")?;
        rates.push(count / seconds.max(number(&report, "seconds_to_last")?));
    }
    for mut peer in others {
        peer.report()?;
    }
    drop(sending);
    let total: f64 = rates.iter().sum();
    Ok(Cell {
        system,
        size,
        receivers: receivers.len(),
        per_receiver: total / receivers.len() as f64,
        total,
        loss: if sent > 0.0 {
            1.0 - received / (sent * receivers.len() as f64)
        } else {
            0.0
        },
        cpu_per_million: number(&sent_report, "cpu_seconds")? / sent.max(1.0) * 1e6,
        receiver_cpu_per_million: receiver_cpu / received.max(1.0) * 1e6,
        sent: sent as u64,
        reports: (sent_report, Value::Object(summed)),
    })
}

/// Runs the parts the options ask for and writes `suite.json` into `--out`.
pub(crate) fn run(options: &Options) -> Result<(), String> {
    sixcast_netlab::check_environment(false)
        .map_err(|reason| format!("cannot build namespace worlds: {reason}"))?;
    let launcher = Launcher {
        bench: std::env::current_exe().map_err(|err| err.to_string())?,
        python: options.python.clone(),
        node_binding: options.node_binding.clone(),
        peers: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("peers"),
    };
    let load_before = load_average();
    println!(
        "sixcast performance suite: {} s per cell; load average before: {load_before}\n",
        options.seconds
    );
    let mut results = json!({
        "seconds_per_cell": options.seconds,
        "load_average_before": load_before,
        "kernel": std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim(),
        "cpus": std::thread::available_parallelism().map_or(0, usize::from),
    });
    let mut throughput = Vec::new();
    let mut round_trips = Vec::new();
    if options.wants("throughput") || options.wants("rtt") || options.wants("bindings") {
        let world = World::lan(1 + RECEIVERS[RECEIVERS.len() - 1])
            .map_err(|err| format!("building the LAN world: {err}"))?;
        world.set_mtu(MTU).map_err(|err| err.to_string())?;
        snoop(&world)?;
        if options.wants("throughput") {
            throughput.extend(lan_throughput(&world, &launcher, options)?);
        }
        if options.wants("rtt") {
            round_trips = round_trip(&world, &launcher, options.seconds)?;
        }
        if options.wants("bindings") {
            throughput.extend(bindings(&world, &launcher, options)?);
        }
    }
    results["throughput"] = throughput.iter().map(Cell::to_json).collect();
    results["rtt"] = json!(round_trips);
    let mut relayed = Vec::new();
    if options.wants("relay") {
        relayed = relay(&launcher, options.seconds)?;
        results["relay"] = relayed.iter().map(Cell::to_json).collect();
    }
    if options.wants("scale") {
        results["scale"] = scale(&launcher)?;
    }
    let mut fanout = Vec::new();
    if options.wants("fanout") {
        let (description, cells) = fanout::run(&launcher, options.seconds, &options.sizes)?;
        results["fanout"] = description;
        fanout = cells;
    }
    let mut targets = targets(
        &throughput,
        &round_trips,
        &relayed,
        &results["scale"],
        &fanout,
    );
    if options.wants("lossless") {
        let (sizes, receivers) = if options.narrowed {
            (options.sizes.clone(), options.receivers.clone())
        } else {
            (lossless::SIZES.to_vec(), lossless::RECEIVERS.to_vec())
        };
        let (cells, description) = lossless::run(&launcher, options.seconds, &sizes, &receivers)?;
        results["lossless"] = description;
        for (name, value, limit, at_least) in lossless::targets(&cells) {
            targets.push(target(name, value, limit, at_least));
        }
    }
    if options.wants("repair") {
        let (description, repair_targets) = lossless::repair_cost(&launcher)?;
        results["repair"] = description;
        for (name, value, limit, at_least) in repair_targets {
            targets.push(target(name, value, limit, at_least));
        }
    }
    if options.wants("protected") {
        let (description, protected_targets) = protected::run(&launcher, options.seconds)?;
        results["protected"] = description;
        for (name, value, limit, at_least) in protected_targets {
            targets.push(target(name, value, limit, at_least));
        }
    }
    print_targets(&targets);
    results["targets"] = json!(targets);
    results["load_average_after"] = json!(load_average());
    println!("\nload average after: {}", load_average());
    std::fs::create_dir_all(&options.out).map_err(|err| err.to_string())?;
    let path = options.out.join("suite.json");
    std::fs::write(&path, format!("{results:#}\n")).map_err(|err| err.to_string())?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Makes the world's bridges forward each group only to the ports that joined it, as a switch with
/// MLD snooping does: a Linux bridge without a querier floods every group to every port, which
/// would make one receiver cost as much as sixteen.
pub(crate) fn snoop(world: &World) -> Result<(), String> {
    world
        .snoop_mld()
        .map_err(|err| format!("making the bridges snoop MLD: {err}"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn receiver_hosts(count: usize) -> impl Iterator<Item = String> {
    (0..count).map(|index| format!("h{}", index + 2))
}

fn print_header(title: &str) {
    println!("{title}");
    println!(
        "{:>6} {:>4} {:<17} {:>12} {:>12} {:>7} {:>11} {:>11}",
        "size", "rcv", "system", "msg/s/rcv", "msg/s total", "loss %", "send CPU/M", "recv CPU/M"
    );
}

fn print_cell(cell: &Cell) {
    println!(
        "{:>6} {:>4} {:<17} {:>12.0} {:>12.0} {:>7.2} {:>11.3} {:>11.3}",
        cell.size,
        cell.receivers,
        cell.system,
        cell.per_receiver,
        cell.total,
        cell.loss * 100.0,
        cell.cpu_per_million,
        cell.receiver_cpu_per_million
    );
}

/// The spec of a throughput sender or receiver of `system`.
pub(crate) fn spec(
    system: &str,
    role: &str,
    size: usize,
    seconds: f64,
    cell: usize,
    world: &World,
) -> Value {
    let mut spec = json!({
        "system": system,
        "role": role,
        "size": size,
        "seconds": seconds,
        "drain": DRAIN,
        "channel": format!("bench/{cell}"),
        "datagram": DATAGRAM,
        "hops": 1,
    });
    match system {
        "raw" => {
            // A group per cell, so that no membership of an earlier cell is still forwarded to.
            spec["group"] = json!(format!("{RAW_GROUP}{cell:x}"));
            spec["port"] = json!(RAW_PORT);
        }
        "zmq" | "pyzmq" | "zeromq.js" => {
            let port = 5600 + cell;
            spec["port"] = json!(port);
            spec["connect"] = json!(format!("tcp://[{}]:{port}", world.host("h1").addr()));
        }
        _ => {}
    }
    spec
}

fn run_systems(
    world: &World,
    launcher: &Launcher,
    seconds: f64,
    systems: &[&str],
    sizes: &[usize],
    receiver_counts: &[usize],
    title: &str,
) -> Result<Vec<Cell>, String> {
    print_header(title);
    let mut cells = Vec::new();
    for &size in sizes {
        for &receivers in receiver_counts {
            for system in systems {
                let index = cells.len();
                let mut sender = spec(system, "send", size, seconds, index, world);
                sender["subscribers"] = json!(receivers);
                let listeners: Vec<_> = receiver_hosts(receivers)
                    .map(|host| (host, spec(system, "recv", size, seconds, index, world)))
                    .collect();
                let cell = measure(world, launcher, ("h1", sender), &[], &listeners)?;
                print_cell(&cell);
                cells.push(cell);
            }
        }
    }
    println!();
    Ok(cells)
}

fn lan_throughput(
    world: &World,
    launcher: &Launcher,
    options: &Options,
) -> Result<Vec<Cell>, String> {
    run_systems(
        world,
        launcher,
        options.seconds,
        &["sixcast", "sixcast-unpacked", "raw", "zmq"],
        &options.sizes,
        &options.receivers,
        &format!(
            "delivered messages, sender h1, receivers h2.. on one bridge (MTU {MTU}); \
             sixcast packs, sixcast-unpacked and raw send one message per datagram, zmq is \
             PUB/SUB over TCP, lossless"
        ),
    )
}

fn bindings(world: &World, launcher: &Launcher, options: &Options) -> Result<Vec<Cell>, String> {
    let mut systems = Vec::new();
    if launcher.python.is_some() {
        systems.extend(["py-sixcast", "pyzmq"]);
    }
    if launcher.node_binding.is_some() {
        systems.extend(["node-sixcast", "zeromq.js"]);
    }
    if systems.is_empty() {
        println!("bindings: skipped (no --python and no --node-binding)\n");
        return Ok(Vec::new());
    }
    run_systems(
        world,
        launcher,
        options.seconds,
        &systems,
        &options.sizes,
        &BINDING_RECEIVERS
            .into_iter()
            .filter(|count| options.receivers.contains(count))
            .collect::<Vec<_>>(),
        "the bindings beside their languages' ZeroMQ bindings (same world)",
    )
}

fn round_trip(world: &World, launcher: &Launcher, seconds: f64) -> Result<Vec<Value>, String> {
    println!("round trip, 64 B, h1 <-> h2 (µs)");
    println!(
        "{:<10} {:>8} {:>8} {:>8} {:>6}",
        "system", "p50", "p99", "count", "lost"
    );
    let h1 = world.host("h1").addr();
    let h2 = world.host("h2").addr();
    let mut rows = Vec::new();
    for system in ["sixcast", "raw", "zmq"] {
        let base = json!({
            "system": system, "size": 64, "seconds": seconds, "datagram": DATAGRAM, "hops": 1,
            "ping_group": "ff12::be:50", "pong_group": "ff12::be:51", "port": 7998,
        });
        let mut ping = base.clone();
        ping["role"] = json!("ping");
        let mut pong = base;
        pong["role"] = json!("pong");
        if system == "zmq" {
            ping["port"] = json!(5590);
            ping["connect"] = json!(format!("tcp://[{h2}]:5591"));
            pong["port"] = json!(5591);
            pong["connect"] = json!(format!("tcp://[{h1}]:5590"));
        }
        let mut echoing = launcher.start(world, "h2", &pong)?;
        let mut pinging = launcher.start(world, "h1", &ping)?;
        echoing.ready()?;
        pinging.ready()?;
        echoing.go()?;
        pinging.go()?;
        let mut report = pinging.report()?;
        echoing.report()?;
        println!(
            "{system:<10} {:>8} {:>8} {:>8} {:>6}",
            report["p50_us"], report["p99_us"], report["count"], report["lost"]
        );
        report["system"] = json!(system);
        rows.push(report);
    }
    println!();
    Ok(rows)
}

/// The relay path (c1 multicasts on the core, i1 on the island receives through r1's relay)
/// beside plain unicast forwarding (c1 sends to a forwarder on r1, which sends on to i1). The
/// bridges snoop MLD, so c1's multicast reaches the relay's port, not every host of the core.
fn relay(launcher: &Launcher, seconds: f64) -> Result<Vec<Cell>, String> {
    let world = World::stratum().map_err(|err| format!("building the stratum world: {err}"))?;
    snoop(&world)?;
    let stratum0 = world
        .host("s0")
        .run(|| {
            let mut config = Stratum0Config::default();
            config.hop_limit = 8;
            Stratum0::spawn(config)
        })
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())?;
    let _relay = world
        .host("r1")
        .run(|| {
            let mut config = RelayConfig::default();
            config.hop_limit = 8;
            Relay::spawn(config)
        })
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())?;
    let s0 = format!("[{}]:{}", world.host("s0").addr(), stratum0.port());
    let r1 = world.host("r1").addr();
    let i1 = world.host("i1").addr();
    print_header(
        "the relay path (c1 -> relay r1 -> tunnel -> i1) beside unicast forwarding (c1 -> forwarder on r1 -> i1)",
    );
    let mut cells = Vec::new();
    for size in SIZES {
        let base = json!({
            "size": size, "seconds": seconds, "drain": 0.5, "channel": format!("relay/{size}"),
            "datagram": sixcast::wire::DEFAULT_DATAGRAM_SIZE, "hops": 8,
        });
        let with = |fields: Value| {
            let mut spec = base.clone();
            if let (Some(spec), Some(fields)) = (spec.as_object_mut(), fields.as_object()) {
                spec.extend(fields.clone());
            }
            spec
        };
        let mut cell = measure(
            &world,
            launcher,
            ("c1", with(json!({"system": "sixcast", "role": "send"}))),
            &[],
            &[(
                "i1".to_owned(),
                with(json!({"system": "sixcast", "role": "recv", "stratum0": s0})),
            )],
        )?;
        cell.system = "sixcast-relay".into();
        print_cell(&cell);
        cells.push(cell);
        let mut cell = measure(
            &world,
            launcher,
            (
                "c1",
                with(json!({"system": "raw", "role": "send", "target": format!("[{r1}]:7997")})),
            ),
            &[(
                "r1",
                with(json!({"system": "raw", "role": "forward", "port": 7997,
                            "target": format!("[{i1}]:7996")})),
            )],
            &[(
                "i1".to_owned(),
                with(json!({"system": "raw", "role": "recv", "port": 7996})),
            )],
        )?;
        cell.system = "udp-forwarding".into();
        print_cell(&cell);
        cells.push(cell);
    }
    println!();
    Ok(cells)
}

/// Tunnel client counts of the relay's scale run.
const RELAY_CLIENTS: [usize; 3] = [10, 100, 1000];
/// Hosts the simulated tunnel clients are spread over (each client a socket of its own).
const CLIENT_HOSTS: usize = 2;
/// Datagrams a second multicast on the core for the relay to pass down to every client.
const RELAY_SCALE_RATE: u64 = 50;

/// One relay (a process of its own on h1) serving N tunnel clients simulated on h3 and h4, all
/// joined to one group that h2 multicasts to at a steady pace: the relay's RSS and its CPU time
/// per datagram delivered down a tunnel, as N grows.
fn relay_scale(launcher: &Launcher) -> Result<Vec<Value>, String> {
    let world =
        World::lan(2 + CLIENT_HOSTS).map_err(|err| format!("building the LAN world: {err}"))?;
    let group = addr::group_addr(
        b"relay-scale",
        &sixcast::Profile::default(),
        Scope::default(),
    )
    .map_err(|err| err.to_string())?;
    let relay_address = format!(
        "[{}]:{}",
        world.host("h1").addr(),
        sixcast::discovery::RELAY_PORT
    );
    let seconds = 3.0;
    println!(
        "one relay (h1) serving N tunnel clients (on h3, h4), {RELAY_SCALE_RATE} datagrams/s of \
         64 B multicast on the core (h2) to their group"
    );
    println!(
        "{:>6} {:>8} {:>9} {:>10} {:>10} {:>12} {:>14} {:>8}",
        "N", "tunnels", "heard", "RSS KiB", "peak KiB", "down/s", "CPU µs/dgram", "threads"
    );
    let mut rows = Vec::new();
    for clients in RELAY_CLIENTS {
        let mut relay = launcher.start(
            &world,
            "h1",
            &json!({"system": "sixcast", "role": "relay", "hops": 8, "seconds": seconds}),
        )?;
        relay.ready()?;
        let mut simulated = Vec::new();
        for host in 0..CLIENT_HOSTS {
            let count = clients / CLIENT_HOSTS + usize::from(host < clients % CLIENT_HOSTS);
            simulated.push(launcher.start(
                &world,
                &format!("h{}", host + 3),
                &json!({"system": "raw", "role": "tunnel-clients", "count": count,
                        "relay": relay_address, "group": group.to_string(),
                        "seconds": seconds, "drain": 0.5}),
            )?);
        }
        let mut sender = launcher.start(
            &world,
            "h2",
            &json!({"system": "raw", "role": "paced-send", "size": 64, "seconds": seconds,
                    "rate": RELAY_SCALE_RATE, "group": group.to_string(),
                    "port": addr::DEFAULT_PORT}),
        )?;
        for peer in &mut simulated {
            peer.ready()?;
        }
        sender.ready()?;
        relay.go()?;
        for peer in &mut simulated {
            peer.go()?;
        }
        sender.go()?;
        sender.report()?;
        let mut report = relay.report()?;
        let (mut heard, mut received) = (0, 0);
        for mut peer in simulated {
            let figures = peer.report()?;
            heard += figures["clients_heard"].as_u64().unwrap_or(0);
            received += figures["received"].as_u64().unwrap_or(0);
        }
        let down = number(&report, "datagrams_down")?;
        let cpu_per_datagram = number(&report, "cpu_seconds")? / down.max(1.0) * 1e6;
        report["clients"] = json!(clients);
        report["clients_heard"] = json!(heard);
        report["received_by_clients"] = json!(received);
        report["cpu_us_per_datagram_down"] = json!(cpu_per_datagram);
        report["rate"] = json!(RELAY_SCALE_RATE);
        println!(
            "{clients:>6} {:>8} {heard:>9} {:>10} {:>10} {:>12.0} {cpu_per_datagram:>14.2} {:>8}",
            report["tunnels"],
            report["rss_kib"],
            report["rss_peak_kib"],
            down / number(&report, "seconds")?,
            report["threads"]
        );
        rows.push(report);
    }
    println!();
    Ok(rows)
}

/// One context on 1,000 channels; reassembly memory under a flood of partial messages.
fn scale(launcher: &Launcher) -> Result<Value, String> {
    let world = World::lan(2).map_err(|err| format!("building the LAN world: {err}"))?;
    let channels = 1000;
    let base = json!({"system": "sixcast", "seconds": 10.0, "channels": channels,
                      "datagram": sixcast::wire::DEFAULT_DATAGRAM_SIZE, "hops": 1});
    let with_role = |base: &Value, role: &str| {
        let mut spec = base.clone();
        spec["role"] = json!(role);
        spec
    };
    let mut receiver = launcher.start(&world, "h2", &with_role(&base, "scale-recv"))?;
    let mut sender = launcher.start(&world, "h1", &with_role(&base, "scale-send"))?;
    receiver.ready()?;
    sender.ready()?;
    receiver.go()?;
    sender.go()?;
    sender.report()?;
    let channels_report = receiver.report()?;
    println!(
        "one context on {channels} channels: heard on {} of them, RSS {} KiB, {} threads",
        channels_report["heard"], channels_report["rss_kib"], channels_report["threads"]
    );

    let bound: usize = 4 << 20;
    let group = addr::group_addr(b"flood", &sixcast::Profile::default(), Scope::default())
        .map_err(|err| err.to_string())?;
    let flood = json!({"seconds": 2.0, "drain": 0.5, "channel": "flood", "group": group.to_string(),
                       "port": addr::DEFAULT_PORT, "datagram": sixcast::wire::DEFAULT_DATAGRAM_SIZE,
                       "hops": 1, "reassembly_memory": bound});
    let mut floods = Vec::new();
    for fresh_senders in [false, true] {
        let mut spec = with_role(&flood, "flood-recv");
        spec["system"] = json!("sixcast");
        let mut receiver = launcher.start(&world, "h2", &spec)?;
        let mut spec = with_role(&flood, "flood-send");
        spec["system"] = json!("raw");
        spec["fresh_senders"] = json!(fresh_senders);
        let mut sender = launcher.start(&world, "h1", &spec)?;
        receiver.ready()?;
        sender.ready()?;
        receiver.go()?;
        sender.go()?;
        let sent = sender.report()?;
        let mut flood_report = receiver.report()?;
        flood_report["bound_kib"] = json!(bound / 1024);
        flood_report["partial_messages_sent"] = sent["sent"].clone();
        flood_report["fresh_senders"] = json!(fresh_senders);
        println!(
            "flood of {} partial 1 MiB messages from {}: reassembly charge at most {} KiB \
             (bound {} KiB), RSS {} -> {} KiB, {} given up",
            sent["sent"],
            if fresh_senders {
                "as many senders"
            } else {
                "one sender"
            },
            flood_report["reassembly_peak_kib"],
            bound / 1024,
            flood_report["rss_before_kib"],
            flood_report["rss_peak_kib"],
            flood_report["reassembly_dropped"]
        );
        floods.push(flood_report);
    }
    println!();
    let relay = relay_scale(launcher)?;
    Ok(
        json!({"channels": channels_report, "flood": floods[0], "flood_fresh_senders": floods[1],
               "relay": relay}),
    )
}

fn find<'a>(cells: &'a [Cell], system: &str, size: usize, receivers: usize) -> Option<&'a Cell> {
    cells
        .iter()
        .find(|cell| cell.system == system && cell.size == size && cell.receivers == receivers)
}

/// One target of issue 6: what was compared, the measured ratio (or value) and the limit.
fn target(name: String, value: Option<f64>, limit: f64, at_least: bool) -> Value {
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

fn targets(
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

fn print_targets(targets: &[Value]) {
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
