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

mod raw_roles;
mod sixcast_roles;
mod zmq_roles;

use raw_roles::*;
use sixcast_roles::*;
use zmq_roles::*;

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
        ("zmq" | "zmq-curve", "send") => zmq_send(&get),
        ("zmq" | "zmq-curve", "recv") => zmq_recv(&get),
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
