//! What one suite process does inside a namespace host: send, receive, ping, pong or forward for
//! one system. A role reads its spec (a JSON object) from the command line, prints `ready` once
//! it is set up, waits for `go` on standard input, runs, and prints one JSON object of figures.
//! The Python and Node peers in `peers/` speak the same protocol.

use std::{
    io::{BufRead, Write},
    mem,
    net::{Ipv6Addr, SocketAddrV6, UdpSocket},
    os::fd::AsRawFd,
    ptr,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use sixcast::{
    Channel, Config, Context, ErrorKind,
    crypto::{ChannelKey, KeyId, SigningKey},
    relay::{Relay, RelayConfig},
    wire::control::{self, Control},
};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Datagrams per sendmmsg/recvmmsg call of the raw systems.
const BATCH: usize = 32;
/// Receive buffer of the raw systems' sockets: large enough for any datagram.
const RAW_BUFFER: usize = 65_536;
/// Exchanges before the round-trip measurement starts (also absorbs ZeroMQ's slow joiners).
const WARM_UP: usize = 100;
/// How long a ping waits for its pong before counting it lost.
const PONG_TIMEOUT: Duration = Duration::from_millis(200);
/// A paced sender sends what this much time holds at its rate, then sleeps until the next burst
/// is due: few enough wake-ups that they cost little beside the messages.
const PACE_PERIOD: Duration = Duration::from_millis(10);

type Outcome = Result<Value, String>;

/// Reads a field of the spec.
struct Spec<'a>(&'a Value);

impl Spec<'_> {
    fn str(&self, key: &str) -> Result<&str, String> {
        self.0[key]
            .as_str()
            .ok_or_else(|| format!("spec lacks the text field {key}: {}", self.0))
    }

    fn u64(&self, key: &str) -> Result<u64, String> {
        self.0[key]
            .as_u64()
            .ok_or_else(|| format!("spec lacks the number field {key}: {}", self.0))
    }

    fn usize(&self, key: &str) -> Result<usize, String> {
        usize::try_from(self.u64(key)?).map_err(|err| err.to_string())
    }

    fn seconds(&self, key: &str) -> Result<Duration, String> {
        self.0[key]
            .as_f64()
            .and_then(|value| Duration::try_from_secs_f64(value).ok())
            .ok_or_else(|| format!("spec lacks the seconds field {key}: {}", self.0))
    }

    fn addr(&self, key: &str) -> Result<SocketAddrV6, String> {
        self.str(key)?
            .parse()
            .map_err(|err| format!("{key}: {err}"))
    }
}

/// Runs the role `spec` describes and returns its figures; on the CPU `cpu` alone if the spec
/// names one (before any thread starts, so that every thread of the process stays there).
pub(crate) fn run(spec: &Value) -> Outcome {
    let get = Spec(spec);
    if let Some(cpu) = spec["cpu"].as_u64() {
        pin_to_cpu(usize::try_from(cpu).map_err(|err| err.to_string())?)?;
    }
    match (get.str("system")?, get.str("role")?) {
        (
            "sixcast"
            | "sixcast-unpacked"
            | "sixcast-reliable"
            | "sixcast-reliable-sealed"
            | "sixcast-reliable-signed",
            "send" | "recv",
        ) => sixcast_send_or_recv(&get),
        ("sixcast", "ping" | "pong") => sixcast_ping_pong(&get),
        ("sixcast", "scale-send") => scale_send(&get),
        ("sixcast", "scale-recv") => scale_recv(&get),
        ("sixcast", "flood-recv") => flood_recv(&get),
        ("raw", "send") => raw_send(&get),
        ("raw", "recv") => raw_recv(&get),
        ("raw", "forward") => raw_forward(&get),
        ("raw", "flood-send") => flood_send(&get),
        ("sixcast", "relay") => relay_serve(&get),
        ("raw", "tunnel-clients") => tunnel_clients(&get),
        ("raw", "paced-send") => paced_send(&get),
        ("raw", "ping" | "pong") => raw_ping_pong(&get),
        ("zmq", "send") => zmq_send(&get),
        ("zmq", "recv") => zmq_recv(&get),
        ("zmq", "ping" | "pong") => zmq_ping_pong(&get),
        (system, role) => Err(format!("no role {role} for system {system}")),
    }
}

/// Keeps this thread, and the threads it starts from now on, on CPU `cpu`.
fn pin_to_cpu(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes within it (checked against its size).
    let mut set: libc::cpu_set_t = unsafe { mem::zeroed() };
    if cpu >= 8 * size_of::<libc::cpu_set_t>() {
        return Err(format!("no CPU {cpu}"));
    }
    // SAFETY: `cpu` is within the set, as checked.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: `set` is a live cpu_set_t and its size is passed; pid 0 is this thread.
    let pinned =
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) };
    if pinned == 0 {
        Ok(())
    } else {
        Err(format!(
            "pinning to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        ))
    }
}

/// How many messages a sender sends next. Unpaced (no `rate` in the spec): `unpaced` at once,
/// as fast as it can. Paced: `rate` messages a second, in bursts of what `PACE_PERIOD` holds,
/// sleeping (not spinning, which would burn the CPU being measured) until each is due.
struct Pacer {
    began: Instant,
    rate: Option<f64>,
    unpaced: u64,
}

impl Pacer {
    fn new(spec: &Spec<'_>, unpaced: u64) -> Result<Self, String> {
        let rate = match spec.0.get("rate") {
            None => None,
            Some(_) => Some(spec.u64("rate")?.max(1) as f64),
        };
        Ok(Self {
            began: Instant::now(),
            rate,
            unpaced,
        })
    }

    /// Starts the clock the bursts are due by.
    fn start(&mut self) {
        self.began = Instant::now();
    }

    /// Waits until message `sent` is due; how many to send then.
    fn next(&self, sent: u64) -> u64 {
        let Some(rate) = self.rate else {
            return self.unpaced;
        };
        let due = Duration::from_secs_f64(sent as f64 / rate);
        if let Some(wait) = due.checked_sub(self.began.elapsed()) {
            std::thread::sleep(wait);
        }
        (rate * PACE_PERIOD.as_secs_f64()).ceil() as u64
    }
}

/// Says `ready` and waits for the orchestrator's `go`.
fn ready() -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready")
        .and_then(|()| stdout.flush())
        .map_err(|err| err.to_string())?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|err| err.to_string())?;
    if line.trim() == "go" {
        Ok(())
    } else {
        Err(format!("expected go, got {line:?}"))
    }
}

/// User plus system CPU time of this process (every thread) so far.
pub(crate) fn cpu_time() -> Duration {
    // SAFETY: rusage is plain data, filled in by the call.
    let mut usage: libc::rusage = unsafe { mem::zeroed() };
    // SAFETY: `usage` is a live, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    let time = |tv: libc::timeval| {
        Duration::new(
            u64::try_from(tv.tv_sec).unwrap_or(0),
            u32::try_from(tv.tv_usec).unwrap_or(0) * 1000,
        )
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// A field of /proc/self/status, in its unit (kB for memory).
fn proc_status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Counts what arrives from `go` until `deadline` after it: the figures every receiver reports.
struct Tally {
    began: Instant,
    cpu: Duration,
    received: u64,
    last: Duration,
}

impl Tally {
    fn start() -> Self {
        Self {
            began: Instant::now(),
            cpu: cpu_time(),
            received: 0,
            last: Duration::ZERO,
        }
    }

    fn add(&mut self, count: u64) {
        if count > 0 {
            self.received += count;
            self.last = self.began.elapsed();
        }
    }

    fn report(&self) -> Value {
        json!({
            "received": self.received,
            "seconds_to_last": self.last.as_secs_f64(),
            "cpu_seconds": (cpu_time() - self.cpu).as_secs_f64(),
        })
    }
}

fn sender_report(sent: u64, began: Instant, cpu: Duration) -> Value {
    json!({
        "sent": sent,
        "seconds": began.elapsed().as_secs_f64(),
        "cpu_seconds": (cpu_time() - cpu).as_secs_f64(),
    })
}

fn sixcast_config(spec: &Spec<'_>) -> Result<Config, String> {
    let mut config = Config::default();
    config.max_datagram_size = spec.usize("datagram")?;
    config.hop_limit = u8::try_from(spec.u64("hops")?).map_err(|err| err.to_string())?;
    match spec.str("system")? {
        // Every message in a datagram of its own; the datagrams still leave in batches.
        "sixcast-unpacked" => config.packing = false,
        // Receivers repair what they miss; the sender keeps pace with the slowest.
        "sixcast-reliable" | "sixcast-reliable-sealed" | "sixcast-reliable-signed" => {
            config.reliable = true;
        }
        _ => {}
    }
    if let Some(stratum0) = spec.0["stratum0"].as_str() {
        config.stratum0 = Some(stratum0.parse().map_err(|err| format!("{err}"))?);
    }
    Ok(config)
}

fn sixcast_send_or_recv(spec: &Spec<'_>) -> Outcome {
    let context = Context::new(sixcast_config(spec)?).map_err(|err| err.to_string())?;
    let channel = context
        .channel(spec.str("channel")?)
        .map_err(|err| err.to_string())?;
    let sending = spec.str("role")? == "send";
    protect(spec.str("system")?, &channel, sending).map_err(|err| err.to_string())?;
    if sending {
        sixcast_send(&context, &channel, spec)
    } else {
        sixcast_recv(&context, &channel, spec)
    }
}

/// Keys of the protected systems: every process of a cell derives the same ones.
fn protect(system: &str, channel: &Channel, sending: bool) -> sixcast::Result<()> {
    let signer = SigningKey::from_seed([9; 32]);
    if matches!(
        system,
        "sixcast-reliable-sealed" | "sixcast-reliable-signed"
    ) {
        channel.set_key(&ChannelKey::from_bytes(KeyId(1), [7; 32]))?;
    }
    if system == "sixcast-reliable-signed" {
        if sending {
            channel.sign_with(signer)?;
        } else {
            channel.trust(signer.public_key())?;
        }
    }
    Ok(())
}

fn sixcast_send(context: &Context, channel: &Channel, spec: &Spec<'_>) -> Outcome {
    let payload = vec![0x5c; spec.usize("size")?];
    let duration = spec.seconds("seconds")?;
    let mut pacer = Pacer::new(spec, 64)?;
    ready()?;
    let (began, cpu) = (Instant::now(), cpu_time());
    pacer.start();
    let mut sent = 0;
    while began.elapsed() < duration {
        let burst = pacer.next(sent);
        for _ in 0..burst {
            channel.send(&payload).map_err(|err| err.to_string())?;
        }
        sent += burst;
    }
    channel.flush().map_err(|err| err.to_string())?;
    let mut report = sender_report(sent, began, cpu);
    let stats = channel.stats();
    report["datagrams_sent"] = json!(stats.datagrams_sent);
    report["messages_sent"] = json!(stats.messages_sent);
    // Closing a reliable context waits for its receivers' last repairs.
    context.close();
    let stats = channel.stats();
    report["nacks_received"] = json!(stats.nacks_received);
    report["repairs_sent"] = json!(stats.repairs_sent);
    report["repair_bytes"] = json!(stats.repair_bytes_sent);
    Ok(report)
}

fn sixcast_recv(context: &Context, channel: &Channel, spec: &Spec<'_>) -> Outcome {
    channel.join().map_err(|err| err.to_string())?;
    if context.reachability().is_some() {
        // Through a relay: ready only once the tunnel is open.
        let settle = Instant::now() + Duration::from_secs(15);
        while context
            .reachability()
            .is_some_and(|reach| reach.relay.is_none())
        {
            if Instant::now() > settle {
                return Err("no relay tunnel within 15 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    ready()?;
    let mut tally = Tally::start();
    let deadline = tally.began + until;
    loop {
        // Take what is queued without reading the clock; wait only when nothing is.
        let mut taken = 0;
        while let Ok(Some(_)) = channel.try_recv() {
            taken += 1;
        }
        tally.add(taken);
        match channel.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(_) => tally.add(1),
            Err(err) if err.kind() == ErrorKind::Timeout => break,
            Err(err) => return Err(err.to_string()),
        }
    }
    let mut report = tally.report();
    // What the library counted: where a shortfall went.
    let stats = channel.stats();
    report["lost"] = json!(stats.lost);
    report["queue_overflow"] = json!(stats.queue_overflow);
    report["packets_lost"] = json!(stats.packets_lost);
    report["nacks_sent"] = json!(stats.nacks_sent);
    report["repairs_received"] = json!(stats.repairs_received);
    report["datagrams_received"] = json!(stats.datagrams_received);
    Ok(report)
}

/// Whether this process pings (measures) or pongs (echoes).
fn pinging(spec: &Spec<'_>) -> Result<bool, String> {
    Ok(spec.str("role")? == "ping")
}

/// Pings through `exchange` (send one, wait for its echo) for `seconds` after warming up, and
/// reports round-trip percentiles.
fn ping_loop(spec: &Spec<'_>, exchange: &mut dyn FnMut(&[u8]) -> Result<bool, String>) -> Outcome {
    let duration = spec.seconds("seconds")?;
    let mut payload = vec![0u8; spec.usize("size")?];
    let mut round_trips = Vec::new();
    let mut lost = 0u64;
    let mut seq = 0u64;
    ready()?;
    // Warm up until echoes come back, then measure.
    let warm_until = Instant::now() + Duration::from_secs(5);
    let mut warm = 0;
    while warm < WARM_UP && Instant::now() < warm_until {
        seq += 1;
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        if exchange(&payload)? {
            warm += 1;
        }
    }
    let began = Instant::now();
    while began.elapsed() < duration {
        seq += 1;
        payload[..8].copy_from_slice(&seq.to_be_bytes());
        let sent = Instant::now();
        if exchange(&payload)? {
            round_trips.push(u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX));
        } else {
            lost += 1;
        }
    }
    round_trips.sort_unstable();
    let percentile = |quantile: f64| {
        let index = ((round_trips.len() as f64 - 1.0) * quantile).round() as usize;
        round_trips.get(index).copied()
    };
    Ok(json!({
        "count": round_trips.len(),
        "lost": lost,
        "p50_us": percentile(0.5),
        "p99_us": percentile(0.99),
    }))
}

/// Echoes what arrives through `echo` (wait for one, send it back: `true` if it did) until the
/// pinger has gone quiet for a second, or `seconds` plus a margin for the warm-up have passed.
fn pong_loop(spec: &Spec<'_>, echo: &mut dyn FnMut() -> Result<bool, String>) -> Outcome {
    let until = spec.seconds("seconds")? + Duration::from_secs(6);
    ready()?;
    let began = Instant::now();
    let mut last_echo = None;
    while began.elapsed() < until {
        if echo()? {
            last_echo = Some(Instant::now());
        } else if last_echo.is_some_and(|last| last.elapsed() > Duration::from_secs(1)) {
            break;
        }
    }
    Ok(json!({}))
}

fn sixcast_ping_pong(spec: &Spec<'_>) -> Outcome {
    let context = Context::new(sixcast_config(spec)?).map_err(|err| err.to_string())?;
    let ping = context.channel("rtt/ping").map_err(|err| err.to_string())?;
    let pong = context.channel("rtt/pong").map_err(|err| err.to_string())?;
    let (incoming, outgoing) = if pinging(spec)? {
        (pong, ping)
    } else {
        (ping, pong)
    };
    incoming.join().map_err(|err| err.to_string())?;
    let receive = |timeout| match incoming.recv_timeout(timeout) {
        Ok(message) => Ok(Some(message.payload)),
        Err(err) if err.kind() == ErrorKind::Timeout => Ok(None),
        Err(err) => Err(err.to_string()),
    };
    // A latency-minded application flushes after each send rather than waiting for the linger.
    let send = |payload: &[u8]| {
        outgoing
            .send(payload)
            .and_then(|()| outgoing.flush())
            .map_err(|err| err.to_string())
    };
    if pinging(spec)? {
        ping_loop(spec, &mut |payload| {
            send(payload)?;
            let deadline = Instant::now() + PONG_TIMEOUT;
            while let Some(echo) = receive(deadline.saturating_duration_since(Instant::now()))? {
                if echo[..8] == payload[..8] {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    } else {
        pong_loop(spec, &mut || {
            Ok(match receive(Duration::from_millis(100))? {
                Some(payload) => {
                    send(&payload)?;
                    true
                }
                None => false,
            })
        })
    }
}

/// One context joined to `channels` channels, receiving on all of them: what it costs.
fn scale_recv(spec: &Spec<'_>) -> Outcome {
    let count = spec.usize("channels")?;
    let context = Context::new(sixcast_config(spec)?).map_err(|err| err.to_string())?;
    let mut channels = Vec::with_capacity(count);
    for index in 0..count {
        let channel = context
            .channel(format!("scale/{index}"))
            .map_err(|err| err.to_string())?;
        channel
            .join()
            .map_err(|err| format!("joining channel {index}: {err}"))?;
        channels.push(channel);
    }
    let deadline = spec.seconds("seconds")?;
    ready()?;
    let began = Instant::now();
    let mut heard = vec![false; count];
    let mut heard_count = 0;
    while heard_count < count && began.elapsed() < deadline {
        let mut any = false;
        for (index, channel) in channels.iter().enumerate() {
            while let Ok(Some(_)) = channel.try_recv() {
                any = true;
                if !heard[index] {
                    heard[index] = true;
                    heard_count += 1;
                }
            }
        }
        if !any {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(json!({
        "channels": count,
        "heard": heard_count,
        "rss_kib": proc_status("VmRSS"),
        "threads": proc_status("Threads"),
    }))
}

fn scale_send(spec: &Spec<'_>) -> Outcome {
    let count = spec.usize("channels")?;
    let context = Context::new(sixcast_config(spec)?).map_err(|err| err.to_string())?;
    let channels = (0..count)
        .map(|index| context.channel(format!("scale/{index}")))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| err.to_string())?;
    ready()?;
    // A few rounds, spaced, so that a datagram lost to a burst is made up by the next round.
    for round in 0..3u8 {
        for channel in &channels {
            channel.send(&[round; 64]).map_err(|err| err.to_string())?;
            channel.flush().map_err(|err| err.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(json!({ "sent": 3 * count }))
}

/// A context taking a flood of first fragments of messages that never complete: its RSS, and
/// the memory its channel charges for partial messages (`Stats::reassembly_bytes`), at their
/// peaks.
fn flood_recv(spec: &Spec<'_>) -> Outcome {
    let mut config = sixcast_config(spec)?;
    config.reassembly_memory = spec.usize("reassembly_memory")?;
    let context = Context::new(config).map_err(|err| err.to_string())?;
    let channel = context
        .channel(spec.str("channel")?)
        .map_err(|err| err.to_string())?;
    channel.join().map_err(|err| err.to_string())?;
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    let rss_before = proc_status("VmRSS");
    ready()?;
    let began = Instant::now();
    let (mut peak, mut charged) = (rss_before, 0);
    while began.elapsed() < until {
        std::thread::sleep(Duration::from_millis(20));
        peak = peak.max(proc_status("VmRSS"));
        charged = charged.max(channel.stats().reassembly_bytes);
    }
    let stats = channel.stats();
    Ok(json!({
        "rss_before_kib": rss_before,
        "rss_peak_kib": peak,
        "reassembly_peak_kib": charged / 1024,
        "datagrams": stats.datagrams_received,
        "reassembly_dropped": stats.reassembly_dropped,
        "messages": stats.messages_received,
    }))
}

/// Sends the first fragment of ever new large messages to a channel's group: partial messages
/// that never complete. From one sender, or (`fresh_senders`) each from a sender of its own,
/// which also fills the receiver's table of senders.
fn flood_send(spec: &Spec<'_>) -> Outcome {
    let datagram = spec.usize("datagram")?;
    let group: Ipv6Addr = spec
        .str("group")?
        .parse()
        .map_err(|err| format!("group: {err}"))?;
    let port = u16::try_from(spec.u64("port")?).map_err(|err| err.to_string())?;
    let duration = spec.seconds("seconds")?;
    let socket = raw_socket()?;
    let interface = if_index("eth0");
    socket
        .set_multicast_if_v6(interface)
        .map_err(|err| err.to_string())?;
    let target = SockAddr::from(SocketAddrV6::new(group, port, 0, interface));
    let message = vec![0xf1; 1 << 20];
    ready()?;
    let (began, cpu) = (Instant::now(), cpu_time());
    let mut sent = 0u64;
    let mut ready_datagrams = Vec::new();
    let fresh_senders = spec.0["fresh_senders"] == true;
    let new_packer = || {
        let node = sixcast::NodeId::random().map_err(|err| err.to_string())?;
        sixcast::wire::Packer::new(node, datagram, 1 << 20).map_err(|err| err.to_string())
    };
    let mut packer = new_packer()?;
    while began.elapsed() < duration {
        if fresh_senders {
            packer = new_packer()?;
        }
        packer
            .push(&message, &mut ready_datagrams)
            .map_err(|err| err.to_string())?;
        let first = ready_datagrams.swap_remove(0);
        ready_datagrams.clear();
        sent += send_many(&socket, &target, &first, 1);
    }
    Ok(sender_report(sent, began, cpu))
}

/// A relay in a process of its own, so that its memory is measured alone: reports its RSS idle
/// (before any client), with every client joined, and at its peak, and its CPU time and the
/// datagrams it passed down tunnels during `seconds` after `go`.
fn relay_serve(spec: &Spec<'_>) -> Outcome {
    let mut config = RelayConfig::default();
    config.hop_limit = u8::try_from(spec.u64("hops")?).map_err(|err| err.to_string())?;
    let relay = Relay::spawn(config).map_err(|err| err.to_string())?;
    let rss_idle = proc_status("VmRSS");
    ready()?;
    let rss_joined = proc_status("VmRSS");
    let (before, cpu) = (relay.stats(), cpu_time());
    let began = Instant::now();
    std::thread::sleep(spec.seconds("seconds")?);
    let (after, cpu) = (relay.stats(), cpu_time() - cpu);
    Ok(json!({
        "tunnels": after.tunnels,
        "refused": after.refused,
        "rss_idle_kib": rss_idle,
        "rss_joined_kib": rss_joined,
        "rss_kib": proc_status("VmRSS"),
        "rss_peak_kib": proc_status("VmHWM"),
        "threads": proc_status("Threads"),
        "seconds": began.elapsed().as_secs_f64(),
        "cpu_seconds": cpu.as_secs_f64(),
        "datagrams_down": after.datagrams_down - before.datagrams_down,
    }))
}

/// Waits until some of `sockets` are readable (at most `timeout`); their indices.
fn readable(sockets: &[UdpSocket], timeout: Duration) -> Vec<usize> {
    let mut fds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|socket| libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fds` is a live array of `fds.len()` pollfds.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
    if ready <= 0 {
        return Vec::new();
    }
    fds.iter()
        .enumerate()
        .filter(|(_, fd)| fd.revents & libc::POLLIN != 0)
        .map(|(index, _)| index)
        .collect()
}

/// A tunnel client's handshake so far: the nonce of its HELLO, and whether the relay
/// acknowledged its JOIN.
struct Handshake {
    nonce: u64,
    open: bool,
}

/// `count` tunnel clients, each a UDP socket of its own (the relay knows a client by its address
/// and port), that open a tunnel to `relay` with the client side of the handshake (HELLO,
/// CHALLENGE, JOIN of `group`, KEEPALIVE) and then count what comes down their tunnels.
fn tunnel_clients(spec: &Spec<'_>) -> Outcome {
    let count = spec.usize("count")?;
    let relay = spec.addr("relay")?;
    let group: Ipv6Addr = spec
        .str("group")?
        .parse()
        .map_err(|err| format!("group: {err}"))?;
    let sockets = (0..count)
        .map(|_| {
            let socket = UdpSocket::bind((Ipv6Addr::UNSPECIFIED, 0))?;
            socket.set_nonblocking(true)?;
            Ok(socket)
        })
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|err| format!("binding a client socket: {err}"))?;
    let encode = |message: &Control<'_>| message.to_vec().map_err(|err| err.to_string());
    let mut clients: Vec<Handshake> = (0..count)
        .map(|index| Handshake {
            nonce: 0x5ca1_e000_0000 + index as u64,
            open: false,
        })
        .collect();
    let mut buffer = vec![0u8; RAW_BUFFER];
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut open = 0;
    while open < count {
        if Instant::now() > deadline {
            return Err(format!("only {open} of {count} tunnels opened within 20 s"));
        }
        // (Re)send HELLO for every client not open yet: a lost datagram only costs a round.
        for (socket, client) in sockets.iter().zip(&clients) {
            if !client.open {
                let _ = socket.send_to(
                    &encode(&Control::Hello {
                        nonce: client.nonce,
                    })?,
                    relay,
                );
            }
        }
        let round = Instant::now() + Duration::from_millis(500);
        while open < count && Instant::now() < round {
            for index in readable(&sockets, Duration::from_millis(50)) {
                while let Ok((length, _)) = sockets[index].recv_from(&mut buffer) {
                    let client = &mut clients[index];
                    match control::decode(&buffer[..length]) {
                        Ok(Control::Challenge {
                            nonce,
                            mac,
                            limit: false,
                            ..
                        }) if nonce == client.nonce => {
                            let join = Control::Join {
                                nonce,
                                mac,
                                groups: vec![group],
                            };
                            let _ = sockets[index].send_to(&encode(&join)?, relay);
                        }
                        Ok(Control::Keepalive { nonce })
                            if nonce == client.nonce && !client.open =>
                        {
                            client.open = true;
                            open += 1;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    ready()?;
    let began = Instant::now();
    let mut received = vec![0u64; count];
    while began.elapsed() < until {
        for index in readable(&sockets, Duration::from_millis(50)) {
            while let Ok((length, _)) = sockets[index].recv_from(&mut buffer) {
                if matches!(control::decode(&buffer[..length]), Ok(Control::Data { .. })) {
                    received[index] += 1;
                }
            }
        }
    }
    Ok(json!({
        "clients": count,
        "received": received.iter().sum::<u64>(),
        "clients_heard": received.iter().filter(|&&count| count > 0).count(),
        "least_received": received.iter().min().copied().unwrap_or(0),
    }))
}

/// `rate` datagrams of `size` bytes a second to `group` on eth0 for `seconds`: traffic at a
/// steady pace, whatever the receivers' number.
fn paced_send(spec: &Spec<'_>) -> Outcome {
    let socket = raw_socket()?;
    let target = raw_target(spec, &socket)?;
    let payload = vec![0x5c; spec.usize("size")?];
    let rate = spec.u64("rate")?.max(1);
    let duration = spec.seconds("seconds")?;
    ready()?;
    let (began, cpu) = (Instant::now(), cpu_time());
    let mut sent = 0;
    while began.elapsed() < duration {
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(began.elapsed()) {
            std::thread::sleep(wait);
        }
        sent += send_many(&socket, &target, &payload, 1);
    }
    Ok(sender_report(sent, began, cpu))
}

fn if_index(name: &str) -> u32 {
    let name = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: `name` is a valid NUL-terminated string.
    unsafe { libc::if_nametoindex(name.as_ptr()) }
}

fn raw_socket() -> Result<Socket, String> {
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|err| err.to_string())?;
    socket
        .set_reuse_address(true)
        .map_err(|err| err.to_string())?;
    socket
        .set_multicast_all_v6(false)
        .map_err(|err| err.to_string())?;
    socket
        .set_multicast_hops_v6(8)
        .map_err(|err| err.to_string())?;
    // The same 8 MiB receive buffer sixcast asks for (SO_RCVBUFFORCE: root in the namespace).
    let size: libc::c_int = 8 << 20;
    // SAFETY: the option value is a live c_int and its size is passed.
    let forced = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            ptr::from_ref(&size).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if forced != 0 {
        socket
            .set_recv_buffer_size(8 << 20)
            .map_err(|err| err.to_string())?;
    }
    Ok(socket)
}

/// A raw socket bound to `port` on every address, joined to `group` on eth0 unless unicast.
fn raw_bound(port: u16, group: Option<Ipv6Addr>) -> Result<Socket, String> {
    let socket = raw_socket()?;
    socket
        .bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            port,
            0,
            0,
        )))
        .map_err(|err| err.to_string())?;
    if let Some(group) = group {
        socket
            .join_multicast_v6(&group, if_index("eth0"))
            .map_err(|err| err.to_string())?;
    }
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|err| err.to_string())?;
    Ok(socket)
}

/// Where raw traffic goes: `target` (unicast) if the spec has one, else `group` on eth0.
fn raw_target(spec: &Spec<'_>, socket: &Socket) -> Result<SockAddr, String> {
    if spec.0["target"].is_string() {
        return Ok(SockAddr::from(spec.addr("target")?));
    }
    let group: Ipv6Addr = spec
        .str("group")?
        .parse()
        .map_err(|err| format!("group: {err}"))?;
    let interface = if_index("eth0");
    socket
        .set_multicast_if_v6(interface)
        .map_err(|err| err.to_string())?;
    let port = u16::try_from(spec.u64("port")?).map_err(|err| err.to_string())?;
    Ok(SockAddr::from(SocketAddrV6::new(group, port, 0, interface)))
}

/// One message per datagram, `BATCH` at a time with sendmmsg.
fn raw_send(spec: &Spec<'_>) -> Outcome {
    let socket = raw_socket()?;
    let target = raw_target(spec, &socket)?;
    let payload = vec![0x5c; spec.usize("size")?];
    let duration = spec.seconds("seconds")?;
    let mut pacer = Pacer::new(spec, BATCH as u64)?;
    ready()?;
    let (began, cpu) = (Instant::now(), cpu_time());
    pacer.start();
    let mut sent = 0;
    while began.elapsed() < duration {
        // A burst larger than a batch goes out over several calls, due at once.
        let batch = usize::try_from(pacer.next(sent)).map_or(BATCH, |burst| burst.min(BATCH));
        sent += send_many(&socket, &target, &payload, batch);
    }
    Ok(sender_report(sent, began, cpu))
}

fn raw_receiver_socket(spec: &Spec<'_>) -> Result<Socket, String> {
    let port = u16::try_from(spec.u64("port")?).map_err(|err| err.to_string())?;
    let group = match spec.0["group"].as_str() {
        Some(group) => Some(group.parse().map_err(|err| format!("group: {err}"))?),
        None => None,
    };
    raw_bound(port, group)
}

fn raw_recv(spec: &Spec<'_>) -> Outcome {
    let socket = raw_receiver_socket(spec)?;
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    let mut buffers = vec![vec![0u8; RAW_BUFFER]; BATCH];
    ready()?;
    let mut tally = Tally::start();
    while tally.began.elapsed() < until {
        tally.add(recv_many(&socket, &mut buffers).len() as u64);
    }
    Ok(tally.report())
}

/// Plain unicast forwarding in user space: what arrives on `port` goes on to `target`, a batch
/// at a time.
fn raw_forward(spec: &Spec<'_>) -> Outcome {
    let socket = raw_receiver_socket(spec)?;
    let target = SockAddr::from(spec.addr("target")?);
    let until = spec.seconds("seconds")? + spec.seconds("drain")?;
    let mut buffers = vec![vec![0u8; RAW_BUFFER]; BATCH];
    ready()?;
    let mut tally = Tally::start();
    while tally.began.elapsed() < until {
        let lengths = recv_many(&socket, &mut buffers);
        for (buffer, len) in buffers.iter().zip(&lengths) {
            send_many(&socket, &target, &buffer[..*len], 1);
        }
        tally.add(lengths.len() as u64);
    }
    Ok(tally.report())
}

fn raw_ping_pong(spec: &Spec<'_>) -> Outcome {
    let port = u16::try_from(spec.u64("port")?).map_err(|err| err.to_string())?;
    let group = |key| -> Result<Ipv6Addr, String> {
        spec.str(key)?
            .parse()
            .map_err(|err| format!("{key}: {err}"))
    };
    let (incoming, outgoing) = if pinging(spec)? {
        (group("pong_group")?, group("ping_group")?)
    } else {
        (group("ping_group")?, group("pong_group")?)
    };
    let socket = raw_bound(port, Some(incoming))?;
    let interface = if_index("eth0");
    socket
        .set_multicast_if_v6(interface)
        .map_err(|err| err.to_string())?;
    let socket = UdpSocket::from(socket);
    let target = SocketAddrV6::new(outgoing, port, 0, interface);
    let mut buffer = vec![0u8; RAW_BUFFER];
    let mut receive = |timeout: Duration| -> Result<Option<Vec<u8>>, String> {
        socket
            .set_read_timeout(Some(timeout.max(Duration::from_micros(1))))
            .map_err(|err| err.to_string())?;
        match socket.recv(&mut buffer) {
            Ok(len) => Ok(Some(buffer[..len].to_vec())),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(err) => Err(err.to_string()),
        }
    };
    let send = |payload: &[u8]| {
        socket
            .send_to(payload, target)
            .map(drop)
            .map_err(|err| err.to_string())
    };
    if pinging(spec)? {
        ping_loop(spec, &mut |payload| {
            send(payload)?;
            let deadline = Instant::now() + PONG_TIMEOUT;
            while Instant::now() < deadline {
                if let Some(echo) = receive(deadline.saturating_duration_since(Instant::now()))?
                    && echo.get(..8) == Some(&payload[..8])
                {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    } else {
        pong_loop(spec, &mut || {
            Ok(match receive(Duration::from_millis(100))? {
                Some(payload) => {
                    send(&payload)?;
                    true
                }
                None => false,
            })
        })
    }
}

fn send_many(socket: &Socket, target: &SockAddr, payload: &[u8], count: usize) -> u64 {
    let mut iovec = libc::iovec {
        iov_base: payload.as_ptr().cast_mut().cast(),
        iov_len: payload.len(),
    };
    // SAFETY: mmsghdr is plain data; each header points at live `iovec` and `target`.
    let mut messages: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for message in &mut messages[..count] {
        message.msg_hdr.msg_name = target.as_ptr().cast_mut().cast();
        message.msg_hdr.msg_namelen = target.len();
        message.msg_hdr.msg_iov = ptr::from_mut(&mut iovec);
        message.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: the headers and what they point at outlive the call; count <= BATCH.
    let sent = unsafe {
        libc::sendmmsg(
            socket.as_raw_fd(),
            messages.as_mut_ptr(),
            count as libc::c_uint,
            0,
        )
    };
    u64::try_from(sent).unwrap_or(0)
}

/// One recvmmsg (waiting at most the socket's read timeout); the lengths of what arrived.
fn recv_many(socket: &Socket, buffers: &mut [Vec<u8>]) -> Vec<usize> {
    let mut iovecs: Vec<libc::iovec> = buffers
        .iter_mut()
        .map(|buffer| libc::iovec {
            iov_base: buffer.as_mut_ptr().cast(),
            iov_len: buffer.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain data; each header points at a live iovec and buffer.
    let mut messages: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for (message, iovec) in messages.iter_mut().zip(&mut iovecs) {
        message.msg_hdr.msg_iov = iovec;
        message.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: as above; the socket's read timeout bounds the wait.
    let received = unsafe {
        libc::recvmmsg(
            socket.as_raw_fd(),
            messages.as_mut_ptr(),
            BATCH as libc::c_uint,
            libc::MSG_WAITFORONE,
            ptr::null_mut(),
        )
    };
    let count = usize::try_from(received).unwrap_or(0);
    messages[..count]
        .iter()
        .map(|message| message.msg_len as usize)
        .collect()
}

fn zmq_error(err: zmq::Error) -> String {
    err.to_string()
}

/// Lossless PUB: an XPUB that blocks at its high-water mark instead of dropping, and that starts
/// only once every subscriber has subscribed.
fn zmq_send(spec: &Spec<'_>) -> Outcome {
    let context = zmq::Context::new();
    let mut socket = context.socket(zmq::XPUB).map_err(zmq_error)?;
    socket.set_ipv6(true).map_err(zmq_error)?;
    socket.set_xpub_verbose(true).map_err(zmq_error)?;
    let on: libc::c_int = 1;
    // SAFETY: the socket is live; the option value is a c_int and its size is passed.
    let set = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_XPUB_NODROP as libc::c_int,
            ptr::from_ref(&on).cast(),
            size_of::<libc::c_int>(),
        )
    };
    if set != 0 {
        return Err("cannot set ZMQ_XPUB_NODROP".into());
    }
    socket
        .bind(&format!("tcp://[::]:{}", spec.u64("port")?))
        .map_err(zmq_error)?;
    socket.set_rcvtimeo(15_000).map_err(zmq_error)?;
    for _ in 0..spec.u64("subscribers")? {
        socket
            .recv_bytes(0)
            .map_err(|err| format!("waiting for subscribers: {err}"))?;
    }
    let payload = vec![0x5c; spec.usize("size")?];
    let duration = spec.seconds("seconds")?;
    let mut pacer = Pacer::new(spec, 64)?;
    ready()?;
    let (began, cpu) = (Instant::now(), cpu_time());
    pacer.start();
    let mut sent = 0;
    while began.elapsed() < duration {
        let burst = pacer.next(sent);
        for _ in 0..burst {
            socket.send(&payload, 0).map_err(zmq_error)?;
        }
        sent += burst;
    }
    let report = sender_report(sent, began, cpu);
    // The end mark: lossless and in order, so a subscriber has everything once it arrives.
    socket.send(Vec::<u8>::new(), 0).map_err(zmq_error)?;
    Ok(report)
}

fn zmq_recv(spec: &Spec<'_>) -> Outcome {
    let context = zmq::Context::new();
    let socket = context.socket(zmq::SUB).map_err(zmq_error)?;
    socket.set_ipv6(true).map_err(zmq_error)?;
    socket.set_rcvtimeo(100).map_err(zmq_error)?;
    socket.connect(spec.str("connect")?).map_err(zmq_error)?;
    socket.set_subscribe(b"").map_err(zmq_error)?;
    // Lossless: wait for the end mark, however late, up to a generous bound.
    let until = spec.seconds("seconds")? + Duration::from_secs(20);
    let mut message = zmq::Message::new();
    ready()?;
    let mut tally = Tally::start();
    'receiving: while tally.began.elapsed() < until {
        // Take what is queued without waiting (or reading the clock); wait only when nothing is.
        let mut taken = 0;
        loop {
            match socket.recv(&mut message, zmq::DONTWAIT) {
                Ok(()) if message.is_empty() => {
                    tally.add(taken);
                    break 'receiving;
                }
                Ok(()) => taken += 1,
                Err(zmq::Error::EAGAIN) => break,
                Err(err) => return Err(err.to_string()),
            }
        }
        tally.add(taken);
        match socket.recv(&mut message, 0) {
            Ok(()) if message.is_empty() => break,
            Ok(()) => tally.add(1),
            Err(zmq::Error::EAGAIN) => {}
            Err(err) => return Err(err.to_string()),
        }
    }
    Ok(tally.report())
}

fn zmq_ping_pong(spec: &Spec<'_>) -> Outcome {
    let context = zmq::Context::new();
    let publisher = context.socket(zmq::PUB).map_err(zmq_error)?;
    publisher.set_ipv6(true).map_err(zmq_error)?;
    publisher
        .bind(&format!("tcp://[::]:{}", spec.u64("port")?))
        .map_err(zmq_error)?;
    let subscriber = context.socket(zmq::SUB).map_err(zmq_error)?;
    subscriber.set_ipv6(true).map_err(zmq_error)?;
    subscriber
        .connect(spec.str("connect")?)
        .map_err(zmq_error)?;
    subscriber.set_subscribe(b"").map_err(zmq_error)?;
    let mut message = zmq::Message::new();
    let mut receive = |timeout: Duration| -> Result<Option<Vec<u8>>, String> {
        let millis = i32::try_from(timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        subscriber.set_rcvtimeo(millis).map_err(zmq_error)?;
        match subscriber.recv(&mut message, 0) {
            Ok(()) => Ok(Some(message.to_vec())),
            Err(zmq::Error::EAGAIN) => Ok(None),
            Err(err) => Err(err.to_string()),
        }
    };
    let send = |payload: &[u8]| publisher.send(payload, 0).map_err(zmq_error);
    if pinging(spec)? {
        ping_loop(spec, &mut |payload| {
            send(payload)?;
            let deadline = Instant::now() + PONG_TIMEOUT;
            while Instant::now() < deadline {
                if let Some(echo) = receive(deadline.saturating_duration_since(Instant::now()))?
                    && echo.get(..8) == Some(&payload[..8])
                {
                    return Ok(true);
                }
            }
            Ok(false)
        })
    } else {
        pong_loop(spec, &mut || {
            Ok(match receive(Duration::from_millis(100))? {
                Some(payload) => {
                    send(&payload)?;
                    true
                }
                None => false,
            })
        })
    }
}
