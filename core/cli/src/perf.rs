//! `sixcast perf send|recv`: an iperf-like measurement of one channel, to size a deployment.
//!
//! Each perf message starts with a 20-byte stamp: the magic `sxpf`, the sender's perf sequence
//! number (u64, big endian) and the send time (u64 nanoseconds since the Unix epoch, big endian).
//! The receiver counts loss from gaps in the sequence numbers of each sender (between the first and
//! the highest it heard, so a receiver started late does not count what it never could have had),
//! duplicates from repeats, and one-way latency from the stamp (meaningful when both ends read the
//! same clock: namespaces of one host, or well-synchronised hosts). CPU time is the whole process's
//! (every thread's) user and system time from getrusage.

use std::{
    collections::HashMap,
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use clap::Subcommand;
use hdrhistogram::Histogram;
use sixcast::{Config, Context, ErrorKind, NodeId};

use super::{
    EXIT_TIMEOUT, Network,
    keys::{ListenKeys, SendKeys},
};

/// Marks a perf message, so that other traffic on the channel is not mistaken for one.
const MAGIC: &[u8; 4] = b"sxpf";
/// The stamp at the start of every perf message; also the smallest `--size`.
const STAMP_LEN: usize = 20;
/// A sender's sequence numbers are tracked in a window of at most this many (2^30 bits, 128 MiB):
/// a number further from the first one heard is not a perf sender's and is counted as foreign.
const MAX_WINDOW: u64 = 1 << 30;
/// Latencies above this (one minute, in microseconds) are recorded as this.
const MAX_LATENCY_US: u64 = 60_000_000;

/// `sixcast perf` subcommands.
#[derive(Subcommand)]
pub(super) enum PerfCommand {
    /// Join CHANNEL and measure what arrives for --duration seconds, then report.
    Recv {
        /// The channel name.
        channel: String,
        /// How long to listen, in seconds; the report follows at once.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Serve the channel's counters for Prometheus at http://ADDR:PORT/metrics.
        #[arg(long, value_name = "ADDR:PORT")]
        metrics: Option<std::net::SocketAddr>,
        #[command(flatten)]
        keys: ListenKeys,
        #[command(flatten)]
        network: Network,
    },
    /// Send stamped messages on CHANNEL for --duration seconds, then report.
    Send {
        /// The channel name.
        channel: String,
        /// Size of each message in bytes (at least the 20-byte stamp).
        #[arg(long, default_value_t = 64)]
        size: usize,
        /// How long to send, in seconds.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Messages per second; as fast as possible when absent.
        #[arg(long)]
        rate: Option<f64>,
        /// How long messages may wait to leave together, in milliseconds (0: each at once);
        /// default: the library's linger.
        #[arg(long, value_name = "MS")]
        linger: Option<f64>,
        /// Send every message in a datagram of its own (still in batches within the linger).
        #[arg(long)]
        no_packing: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        keys: SendKeys,
        #[command(flatten)]
        network: Network,
    },
}

/// Runs a `sixcast perf` subcommand.
pub(super) fn run(command: PerfCommand) -> sixcast::Result<ExitCode> {
    match command {
        PerfCommand::Recv {
            channel,
            duration,
            json,
            metrics,
            keys,
            network,
        } => {
            let duration = seconds("--duration", duration)?;
            let report = Report { json, metrics };
            receive(&channel, duration, report, &keys, &network)
        }
        PerfCommand::Send {
            channel,
            size,
            duration,
            rate,
            linger,
            no_packing,
            json,
            keys,
            network,
        } => {
            if size < STAMP_LEN {
                return Err(invalid(format!(
                    "--size {size} is smaller than the {STAMP_LEN}-byte perf stamp"
                )));
            }
            if let Some(rate) = rate
                && !(rate.is_finite() && rate > 0.0)
            {
                return Err(invalid(format!(
                    "--rate {rate} is not a number of messages per second > 0"
                )));
            }
            let duration = seconds("--duration", duration)?;
            let mut config = network.config()?;
            if let Some(linger) = linger {
                config.linger = Duration::try_from_secs_f64(linger / 1000.0).map_err(|_| {
                    invalid(format!(
                        "--linger {linger} is not a number of milliseconds >= 0"
                    ))
                })?;
            }
            config.packing = !no_packing;
            send(&channel, (size, duration, rate), json, config, &keys)
        }
    }
}

fn invalid(message: String) -> sixcast::Error {
    sixcast::Error::new(ErrorKind::InvalidConfig, message)
}

fn seconds(flag: &str, value: f64) -> sixcast::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| invalid(format!("{flag} {value} is not a number of seconds >= 0")))
}

/// User plus system CPU time of the whole process so far.
fn cpu_time() -> Duration {
    // SAFETY: rusage is plain data, filled in by the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
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

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
        })
}

/// Writes the stamp of message `seq`, sent now, into the start of `payload`.
fn stamp(payload: &mut [u8], seq: u64) {
    payload[..4].copy_from_slice(MAGIC);
    payload[4..12].copy_from_slice(&seq.to_be_bytes());
    payload[12..20].copy_from_slice(&unix_nanos().to_be_bytes());
}

/// The sequence number and send time of a perf message, or `None` for other traffic.
fn read_stamp(payload: &[u8]) -> Option<(u64, u64)> {
    let stamp = payload.get(..STAMP_LEN)?;
    if &stamp[..4] != MAGIC {
        return None;
    }
    let seq = u64::from_be_bytes(stamp[4..12].try_into().ok()?);
    let sent = u64::from_be_bytes(stamp[12..20].try_into().ok()?);
    Some((seq, sent))
}

/// The sequence numbers heard from one sender, as a bitmap from `base` (a multiple of 64).
#[derive(Default)]
struct SeqTracker {
    base: u64,
    bits: Vec<u64>,
    lowest: u64,
    highest: u64,
    distinct: u64,
    duplicates: u64,
}

impl SeqTracker {
    fn new(seq: u64) -> Self {
        let base = seq & !63;
        Self {
            base,
            bits: vec![1 << (seq - base)],
            lowest: seq,
            highest: seq,
            distinct: 1,
            duplicates: 0,
        }
    }

    /// Records `seq`; `false` when it lies too far from what was heard to be this sender's.
    fn record(&mut self, seq: u64) -> bool {
        if seq.abs_diff(self.lowest) >= MAX_WINDOW || seq.abs_diff(self.highest) >= MAX_WINDOW {
            return false;
        }
        if seq < self.base {
            // Heard out of order before the first one heard: grow the bitmap at its front.
            let new_base = seq & !63;
            let words = usize::try_from((self.base - new_base) / 64).unwrap_or(0);
            self.bits.splice(0..0, std::iter::repeat_n(0, words));
            self.base = new_base;
        }
        let offset = seq - self.base;
        let word = usize::try_from(offset / 64).unwrap_or(usize::MAX);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let bit = 1u64 << (offset % 64);
        if self.bits[word] & bit == 0 {
            self.bits[word] |= bit;
            self.distinct += 1;
        } else {
            self.duplicates += 1;
        }
        self.lowest = self.lowest.min(seq);
        self.highest = self.highest.max(seq);
        true
    }

    /// Numbers between the lowest and the highest heard that never arrived.
    fn lost(&self) -> u64 {
        self.highest - self.lowest + 1 - self.distinct
    }
}

/// How `perf recv` reports: one JSON object or text at the end, and metrics while it runs.
struct Report {
    json: bool,
    metrics: Option<std::net::SocketAddr>,
}

fn receive(
    name: &str,
    duration: Duration,
    Report { json, metrics }: Report,
    keys: &ListenKeys,
    network: &Network,
) -> sixcast::Result<ExitCode> {
    let context = Context::new(network.config()?)?;
    let channel = context.channel(name)?;
    keys.apply(&channel)?;
    channel.join()?;
    super::metrics::serve_channel(metrics, &context, &channel)?;
    // Scripts and tests wait for this line before they start sending.
    eprintln!(
        "sixcast: perf receiving on {name:?} ([{}]:{}) for {} s",
        channel.group(),
        context.port(),
        duration.as_secs_f64()
    );
    let cpu_start = cpu_time();
    let deadline = Instant::now() + duration;
    let mut senders: HashMap<NodeId, SeqTracker> = HashMap::new();
    let mut latency = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_US, 3)
        .map_err(|err| invalid(format!("latency histogram: {err}")))?;
    let (mut bytes, mut foreign) = (0u64, 0u64);
    let mut first_last: Option<(Instant, Instant)> = None;
    loop {
        let message = match channel.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(message) => message,
            Err(err) if err.kind() == ErrorKind::Timeout => break,
            Err(err) => return Err(err),
        };
        let arrived = Instant::now();
        let Some((seq, sent)) = read_stamp(&message.payload) else {
            foreign += 1;
            continue;
        };
        let fits = match senders.get_mut(&message.sender) {
            Some(tracker) => tracker.record(seq),
            None => {
                senders.insert(message.sender, SeqTracker::new(seq));
                true
            }
        };
        if !fits {
            foreign += 1;
            continue;
        }
        bytes += message.payload.len() as u64;
        let one_way = unix_nanos().saturating_sub(sent) / 1000;
        latency.saturating_record(one_way.clamp(1, MAX_LATENCY_US));
        first_last = Some(first_last.map_or((arrived, arrived), |(first, _)| (first, arrived)));
    }
    let cpu_seconds = (cpu_time() - cpu_start).as_secs_f64();
    let messages: u64 = senders.values().map(|tracker| tracker.distinct).sum();
    let lost: u64 = senders.values().map(SeqTracker::lost).sum();
    let duplicates: u64 = senders.values().map(|tracker| tracker.duplicates).sum();
    let seconds = first_last.map_or(0.0, |(first, last)| (last - first).as_secs_f64());
    let rate = |count: u64| {
        if seconds > 0.0 {
            count as f64 / seconds
        } else {
            0.0
        }
    };
    let percentile =
        |quantile: f64| (!latency.is_empty()).then(|| latency.value_at_quantile(quantile));
    let stats = channel.stats();
    let datagrams = stats.datagrams_received;
    context.close();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "role": "recv",
                "channel": name,
                "messages": messages,
                "bytes": bytes,
                "seconds": seconds,
                "lost": lost,
                "duplicates": duplicates,
                "cpu_seconds": cpu_seconds,
                "p50_us": percentile(0.5),
                "p99_us": percentile(0.99),
                "max_us": percentile(1.0),
                "messages_per_second": rate(messages),
                "megabits_per_second": rate(bytes) * 8e-6,
                "datagrams": datagrams,
                "senders": senders.len(),
                "foreign": foreign,
                "protection_drops": stats.drops.total(),
                // Reliable senders' repair, as this receiver saw it.
                "nacks_sent": stats.nacks_sent,
                "repairs_received": stats.repairs_received,
                "packets_recovered": stats.packets_recovered,
                "packets_lost": stats.packets_lost,
            })
        );
    } else {
        let heard = messages + lost;
        println!(
            "received {messages} messages ({bytes} bytes) in {seconds:.3} s: {:.0} msg/s, {:.1} Mbit/s",
            rate(messages),
            rate(bytes) * 8e-6
        );
        println!(
            "lost {lost} ({:.2} %), duplicates {duplicates}, from {} sender(s), {datagrams} datagrams",
            if heard > 0 {
                lost as f64 * 100.0 / heard as f64
            } else {
                0.0
            },
            senders.len()
        );
        if stats.nacks_sent + stats.repairs_received > 0 {
            println!(
                "repair: {} NACKs sent, {} parity received, {} packets rebuilt, {} given up",
                stats.nacks_sent,
                stats.repairs_received,
                stats.packets_recovered,
                stats.packets_lost
            );
        }
        match (percentile(0.5), percentile(0.99)) {
            (Some(p50), Some(p99)) => println!("one-way latency p50 {p50} µs, p99 {p99} µs"),
            _ => println!("one-way latency: no message"),
        }
        println!("CPU {cpu_seconds:.3} s");
    }
    Ok(if messages == 0 {
        ExitCode::from(EXIT_TIMEOUT)
    } else {
        ExitCode::SUCCESS
    })
}

fn send(
    name: &str,
    (size, duration, rate): (usize, Duration, Option<f64>),
    json: bool,
    config: Config,
    keys: &SendKeys,
) -> sixcast::Result<ExitCode> {
    let context = Context::new(config)?;
    let channel = context.channel(name)?;
    keys.apply(&channel)?;
    let mut payload = vec![0u8; size];
    let cpu_start = cpu_time();
    let began = Instant::now();
    let mut sent = 0u64;
    loop {
        let elapsed = began.elapsed();
        if elapsed >= duration {
            break;
        }
        match rate {
            Some(rate) => {
                // Paced: send what is due by now, then sleep until the next one is (at most 1 ms,
                // so that the deadline is kept).
                let due = (elapsed.as_secs_f64() * rate) as u64 + 1;
                if sent >= due {
                    let next = Duration::from_secs_f64(sent as f64 / rate);
                    std::thread::sleep(next.saturating_sub(elapsed).min(Duration::from_millis(1)));
                    continue;
                }
                stamp(&mut payload, sent);
                channel.send(&payload)?;
                sent += 1;
            }
            None => {
                // The clock is read once per burst: reading it costs as much as packing a message.
                for _ in 0..64 {
                    stamp(&mut payload, sent);
                    channel.send(&payload)?;
                    sent += 1;
                }
            }
        }
    }
    channel.flush()?;
    let seconds = began.elapsed().as_secs_f64();
    let cpu_seconds = (cpu_time() - cpu_start).as_secs_f64();
    // Closing a reliable context waits for its receivers' last repairs: count them too.
    context.close();
    let stats = channel.stats();
    let datagrams = stats.datagrams_sent;
    let bytes = sent * size as u64;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "role": "send",
                "channel": name,
                "size": size,
                "messages": sent,
                "bytes": bytes,
                "seconds": seconds,
                // Loss and duplicates are measured where messages arrive: see `perf recv`.
                "lost": null,
                "duplicates": null,
                "cpu_seconds": cpu_seconds,
                "messages_per_second": sent as f64 / seconds,
                "megabits_per_second": bytes as f64 * 8e-6 / seconds,
                "datagrams": datagrams,
                "nacks_received": stats.nacks_received,
                "repairs_sent": stats.repairs_sent,
                "repair_bytes": stats.repair_bytes_sent,
            })
        );
    } else {
        println!(
            "sent {sent} messages of {size} bytes ({datagrams} datagrams) in {seconds:.3} s: \
             {:.0} msg/s, {:.1} Mbit/s; CPU {cpu_seconds:.3} s",
            sent as f64 / seconds,
            bytes as f64 * 8e-6 / seconds
        );
        if stats.nacks_received + stats.repairs_sent > 0 {
            println!(
                "repair: {} NACKs received, {} repairs sent ({} bytes)",
                stats.nacks_received, stats.repairs_sent, stats.repair_bytes_sent
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_other_traffic_is_not_a_stamp() {
        let mut payload = vec![0u8; 64];
        stamp(&mut payload, 42);
        let (seq, sent) = read_stamp(&payload).unwrap();
        assert_eq!(seq, 42);
        assert!(sent.abs_diff(unix_nanos()) < 60_000_000_000);
        assert_eq!(read_stamp(b"hello, this is not a perf message"), None);
        assert_eq!(read_stamp(&payload[..STAMP_LEN - 1]), None);
    }

    #[test]
    fn gaps_count_as_lost_and_repeats_as_duplicates() {
        let mut tracker = SeqTracker::new(100);
        for seq in [101, 103, 103, 170, 99] {
            assert!(tracker.record(seq));
        }
        // Heard 99..=170: 72 numbers, 5 distinct ones arrived.
        assert_eq!(tracker.distinct, 5);
        assert_eq!(tracker.duplicates, 1);
        assert_eq!(tracker.lost(), 72 - 5);
        // Out of order, below the first word of the bitmap.
        assert!(tracker.record(3));
        assert!(tracker.record(3));
        assert_eq!(tracker.lost(), 168 - 6);
        assert_eq!(tracker.duplicates, 2);
        assert!(!tracker.record(u64::MAX));
        assert_eq!(tracker.distinct, 6);
    }
}
