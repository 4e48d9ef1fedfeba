//! The orchestrator: builds the worlds, starts one process per host and role, collects their
//! figures into cells, prints the tables and the targets, and writes `suite.json`.

use std::{
    io::{BufRead, BufReader, Write},
    path::PathBuf,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};
use sixcast_netlab::World;

use crate::{
    fanout, lossless, protected,
    relay::{relay, scale},
    targets::{print_targets, target, targets},
};

pub(crate) const SIZES: [usize; 3] = [64, 1024, 8192];
pub(crate) const RECEIVERS: [usize; 3] = [1, 4, 16];
/// Receiver counts of the binding comparisons (interpreted peers are slow to start).
pub(crate) const BINDING_RECEIVERS: [usize; 2] = [1, 4];
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
pub(crate) struct Peer {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    pub(crate) fn start(mut command: Command, name: String) -> Result<Self, String> {
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

    pub(crate) fn ready(&mut self) -> Result<(), String> {
        let line = self.line()?;
        if line.trim() == "ready" {
            Ok(())
        } else {
            Err(format!("{} said {line:?} instead of ready", self.name))
        }
    }

    pub(crate) fn go(&mut self) -> Result<(), String> {
        writeln!(self.stdin, "go")
            .and_then(|()| self.stdin.flush())
            .map_err(|err| format!("{}: {err}", self.name))
    }

    /// Reads the peer's figures. The peer may still be finishing (a ZeroMQ publisher delivers
    /// what it queued as it closes): it is waited for when dropped.
    pub(crate) fn report(&mut self) -> Result<Value, String> {
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
    pub(crate) fn start(&self, world: &World, host: &str, spec: &Value) -> Result<Peer, String> {
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
    pub(crate) total: f64,
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

pub(crate) fn number(report: &Value, key: &str) -> Result<f64, String> {
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

pub(crate) fn print_header(title: &str) {
    println!("{title}");
    println!(
        "{:>6} {:>4} {:<17} {:>12} {:>12} {:>7} {:>11} {:>11}",
        "size", "rcv", "system", "msg/s/rcv", "msg/s total", "loss %", "send CPU/M", "recv CPU/M"
    );
}

pub(crate) fn print_cell(cell: &Cell) {
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
        "zmq" | "zmq-curve" | "pyzmq" | "zeromq.js" => {
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
