//! The `sixcast` command: print channel addresses, listen, send, make keys, run the core's
//! services, measure, and run a self-contained demo. The exit codes are [`EXIT_CODES`].

mod choices;
mod demo;
mod files;
mod keys;
mod metrics;
mod node;
mod output;
mod perf;
mod service;
mod settings;

use std::{
    io::{BufRead, Write},
    net::{Ipv6Addr, SocketAddr, SocketAddrV6},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::{CommandFactory, Parser, Subcommand};
use node::{Addressing, Network};
use sixcast::{Context, ErrorKind, addr, discovery};

/// Exit code for a `listen` that ran out of time.
const EXIT_TIMEOUT: u8 = 3;

/// The exit codes, as `--help` and the man page list them.
const EXIT_CODES: &str = "Exit codes: 0 success, 1 an error (the message says what to do), \
                          2 bad usage, 3 a timeout (`listen` got fewer messages than `--count` \
                          before `--timeout`, or `perf recv` heard nothing).";

#[derive(Parser)]
#[command(
    name = "sixcast",
    version,
    about = "IPv6 multicast channels by name, from the command line",
    after_help = EXIT_CODES
)]
struct Cli {
    /// Log more (-v: debug, -vv: trace) to standard error.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the group address a channel name maps to.
    Addr {
        /// The channel name.
        name: String,
        #[command(flatten)]
        addressing: Addressing,
        /// Print the relayed form of the address (the one relays and gateways send to).
        #[arg(long)]
        relayed: bool,
    },
    /// Join a channel and print each message that arrives.
    Listen {
        /// The channel name.
        channel: String,
        /// Exit successfully after this many messages.
        #[arg(long)]
        count: Option<u64>,
        /// Give up after this many seconds (exit code 3 if `--count` messages have not arrived).
        #[arg(long)]
        timeout: Option<f64>,
        /// Receive only what this sender address sends (source-specific join).
        #[arg(long)]
        source: Option<Ipv6Addr>,
        /// How to print each message.
        #[arg(long, value_enum, default_value_t = output::Format::Text)]
        format: output::Format,
        /// Short for `--format json`.
        #[arg(long, conflicts_with = "format")]
        json: bool,
        /// Serve the channel's counters for Prometheus at http://ADDR:PORT/metrics.
        #[arg(long, value_name = "ADDR:PORT")]
        metrics: Option<SocketAddr>,
        #[command(flatten)]
        keys: keys::ListenKeys,
        #[command(flatten)]
        network: Network,
    },
    /// Send MESSAGE, or every line of standard input when MESSAGE is absent.
    Send {
        /// The channel name.
        channel: String,
        /// The message; without it each line of standard input is one message.
        message: Option<String>,
        #[command(flatten)]
        keys: keys::SendKeys,
        #[command(flatten)]
        network: Network,
    },
    /// Send a file to every receiver of a channel at once (reliably; `recv-file` receives it).
    SendFile(files::SendFile),
    /// Receive files sent with `send-file` into a folder, each checked against its SHA-256;
    /// exit code 3 on timeout, 4 when a sender finished before its file was whole here.
    RecvFile(files::RecvFile),
    /// Write a new channel key (mode 0600), or with `--signing` a signing key and, next to it,
    /// its public key (FILE.pub). Never overwrites a file.
    Keygen {
        /// Where to write the key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Write a signing key pair instead of a channel key.
        #[arg(long)]
        signing: bool,
    },
    /// Issue a capability token: the SUBJECT public key may send on CHANNEL for `--valid`
    /// seconds, to listeners that `--trust-issuer` the issuer's public key.
    Token {
        /// The issuer's signing key file.
        #[arg(long, value_name = "FILE")]
        issuer: PathBuf,
        /// The public key file of the sender the token admits.
        #[arg(long, value_name = "PUBKEY_FILE")]
        subject: PathBuf,
        /// The channel name.
        #[arg(long)]
        channel: String,
        /// How long the token is valid, in seconds.
        #[arg(long, value_name = "SECONDS")]
        valid: u64,
        /// Where to write the token (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        addressing: Addressing,
    },
    /// Build a private network-namespace world, run several nodes in it and show what arrives
    /// where. Needs root or unprivileged user namespaces; never touches the host's own network.
    Demo,
    /// Run a Stratum 0 service on a host of the multicast core (until SIGTERM or Ctrl-C;
    /// SIGHUP re-checks the configuration file).
    Stratum0 {
        /// Address and port to answer on [default: [::]:6447].
        #[arg(long)]
        listen: Option<SocketAddrV6>,
        #[command(flatten)]
        core: service::CoreSide,
    },
    /// Run a relay on a host of the multicast core (until SIGTERM or Ctrl-C; SIGHUP reloads
    /// the configuration file's limits and keys).
    Relay {
        #[command(flatten)]
        options: service::RelayOptions,
        #[command(flatten)]
        core: service::CoreSide,
    },
    /// Vouch for a relay: issue a token letting the RELAY identity key serve nodes that
    /// `--relay-issuer` the issuer's public key, for `--valid` seconds.
    Voucher {
        /// The issuer's signing key file (Stratum 0's operator).
        #[arg(long, value_name = "FILE")]
        issuer: PathBuf,
        /// The public key file of the relay's identity (FILE.pub of its `--identity`).
        #[arg(long, value_name = "PUBKEY_FILE")]
        relay: PathBuf,
        /// How long the voucher is valid, in seconds.
        #[arg(long, value_name = "SECONDS")]
        valid: u64,
        /// Scope of the relay group the relay serves.
        #[arg(long, value_enum, default_value_t = choices::ScopeChoice::Global)]
        scope: choices::ScopeChoice,
        /// Where to write the voucher (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Report whether native multicast reaches the core, the relays offered, and the path taken.
    Probe {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        network: Network,
    },
    /// Measure a channel like iperf: `perf recv` on receivers, `perf send` on a sender.
    #[command(subcommand)]
    Perf(perf::PerfCommand),
    /// Print a shell completion script, e.g. `sixcast completions bash > /etc/bash_completion.d/sixcast`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `sixcast man > sixcast.1`.
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let outcome = match cli.command {
        Command::Addr {
            name,
            addressing,
            relayed,
        } => print_addr(&name, &addressing, relayed),
        Command::Listen {
            channel,
            count,
            timeout,
            source,
            format,
            json,
            metrics,
            keys,
            network,
        } => {
            let format = if json { output::Format::Json } else { format };
            let output = Output { format, metrics };
            listen(&channel, count, timeout, source, output, &keys, &network)
        }
        Command::Send {
            channel,
            message,
            keys,
            network,
        } => send(&channel, message, &keys, &network),
        Command::SendFile(args) => files::send_file(&args),
        Command::RecvFile(args) => files::recv_file(&args),
        Command::Keygen { out, signing } => keys::keygen(&out, signing),
        Command::Token {
            issuer,
            subject,
            channel,
            valid,
            out,
            addressing,
        } => addressing
            .resolve(&Default::default())
            .and_then(|(profile, scope)| {
                let group = addr::group_addr(channel.as_bytes(), &profile, scope)?;
                keys::issue_token(&issuer, &subject, group, valid, &out)
            }),
        Command::Demo => demo::run(),
        Command::Stratum0 { listen, core } => service::run_stratum0(listen, &core),
        Command::Relay { options, core } => service::run_relay(&options, &core),
        Command::Voucher {
            issuer,
            relay,
            valid,
            scope,
            out,
        } => {
            let group = discovery::relay_group(scope.into());
            keys::issue_token(&issuer, &relay, group, valid, &out)
        }
        Command::Probe { json, network } => probe(json, &network),
        Command::Perf(command) => perf::run(command),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(shell, &mut command, "sixcast", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => print_man_page(),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("sixcast: {err}");
            ExitCode::FAILURE
        }
    }
}

fn print_man_page() -> sixcast::Result<ExitCode> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .map_err(|err| {
            sixcast::Error::new(ErrorKind::Io, format!("writing the man page: {err}"))
        })?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIXCAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn print_addr(name: &str, addressing: &Addressing, relayed: bool) -> sixcast::Result<ExitCode> {
    let (profile, scope) = addressing.resolve(&Default::default())?;
    let mut group = addr::group_addr(name.as_bytes(), &profile, scope)?;
    if relayed {
        group = addr::relayed_addr(group, &profile)?;
    }
    println!("{group}");
    Ok(ExitCode::SUCCESS)
}

fn listen(
    name: &str,
    count: Option<u64>,
    timeout: Option<f64>,
    source: Option<Ipv6Addr>,
    Output { format, metrics }: Output,
    keys: &keys::ListenKeys,
    network: &Network,
) -> sixcast::Result<ExitCode> {
    let json = format == output::Format::Json;
    let deadline = deadline_after(timeout)?;
    let context = Context::new(network.config()?)?;
    let channel = context.channel(name)?;
    keys.apply(&channel)?;
    match source {
        Some(source) => channel.join_source(source)?,
        None => channel.join()?,
    }
    metrics::serve_channel(metrics, &context, &channel)?;
    // Scripts and tests wait for this line before they start sending.
    eprintln!(
        "sixcast: listening to {name:?} on [{}]:{} via {}",
        channel.group(),
        context.port(),
        context.interfaces().join(",")
    );
    let mut stdout = std::io::stdout().lock();
    let mut received = 0;
    while count.is_none_or(|count| received < count) {
        let next = match deadline {
            Some(deadline) => {
                channel.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => channel.recv(),
        };
        let message = match next {
            Ok(message) => message,
            Err(err) if err.kind() == ErrorKind::Timeout => {
                eprintln!(
                    "sixcast: timed out after {received} message(s){}; is the sender on a network \
                     that carries multicast to this host?",
                    count
                        .map(|count| format!(" of {count}"))
                        .unwrap_or_default()
                );
                if json {
                    let _ = writeln!(
                        stdout,
                        "{}",
                        keys::drops_json(&channel.stats(), &channel.sender_losses())
                    );
                }
                return Ok(ExitCode::from(EXIT_TIMEOUT));
            }
            Err(err) => return Err(err),
        };
        received += 1;
        if output::write_message(&mut stdout, format, name, &message)
            .and_then(|()| stdout.flush())
            .is_err()
        {
            // The reader went away (a closed pipe): nothing left to print to.
            return Ok(ExitCode::SUCCESS);
        }
    }
    if json {
        let _ = writeln!(
            stdout,
            "{}",
            keys::drops_json(&channel.stats(), &channel.sender_losses())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn send(
    name: &str,
    message: Option<String>,
    keys: &keys::SendKeys,
    network: &Network,
) -> sixcast::Result<ExitCode> {
    let context = Context::new(network.config()?)?;
    let channel = context.channel(name)?;
    keys.apply(&channel)?;
    await_path(&context)?;
    match message {
        Some(message) => channel.send(message.as_bytes())?,
        None => {
            for line in std::io::stdin().lock().lines() {
                let line = line.map_err(|err| sixcast::Error::io("reading standard input", err))?;
                channel.send(line.as_bytes())?;
            }
        }
    }
    channel.flush()?;
    let stats = channel.stats();
    tracing::debug!(
        messages = stats.messages_sent,
        datagrams = stats.datagrams_sent,
        "sent"
    );
    context.close();
    Ok(ExitCode::SUCCESS)
}

/// When `--timeout SECONDS` ends, counted from now: None without one (or one too long for the
/// clock); an error unless it is a number of seconds >= 0.
fn deadline_after(timeout: Option<f64>) -> sixcast::Result<Option<Instant>> {
    let Some(seconds) = timeout else {
        return Ok(None);
    };
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(sixcast::Error::new(
            ErrorKind::InvalidConfig,
            format!("--timeout {seconds} is not a number of seconds >= 0"),
        ));
    }
    Ok(Duration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|timeout| Instant::now().checked_add(timeout)))
}

/// A one-shot send must not leave before the path to the core is known: where this node
/// reaches the core through Stratum 0, waits until the path is settled; fails, before anything
/// is sent, where none is. It need not join the channel: a relay takes a client's DATA for any
/// group, and not joining spares it the channel's traffic.
fn await_path(context: &Context) -> sixcast::Result<()> {
    let config = context.config();
    if config.stratum0_source().is_none() {
        return Ok(());
    }
    let limit = settle_limit(config);
    let reachability = settled(context, limit);
    if path_of(reachability.as_ref()) == "none" {
        let why = reachability
            .and_then(|reachability| reachability.last_error)
            .unwrap_or_else(|| format!("no path settled within {limit:?}"));
        return Err(sixcast::Error::new(
            ErrorKind::Io,
            format!("cannot reach the multicast core, so nothing was sent: {why}"),
        ));
    }
    Ok(())
}

/// How long a context may take to settle on a path to the core: a few probes and a handshake.
fn settle_limit(config: &sixcast::Config) -> Duration {
    config.probe_timeout * 3 + Duration::from_secs(3)
}

/// Waits, at most `limit`, until the context has settled on a path to the core (native, a
/// relay) or failed to; its report then, or `None` without a Stratum 0. The context settles in
/// its own threads; the command looks every 50 ms.
fn settled(context: &Context, limit: Duration) -> Option<sixcast::Reachability> {
    let started = Instant::now();
    loop {
        let reachability = context.reachability()?;
        let settled = reachability.last_error.is_some()
            || reachability.relay.is_some()
            || reachability.gateway.is_some()
            || reachability
                .probe
                .as_ref()
                .is_some_and(|probe| probe.native());
        if settled || started.elapsed() > limit {
            return Some(reachability);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The path a report names: `native`, `relay ADDR`, `repeater ADDR`, `gateway ADDR` (the
/// segment's Stratum 1 gateway) or `none`.
fn path_of(reachability: Option<&sixcast::Reachability>) -> String {
    let Some(reachability) = reachability else {
        return "none".to_owned();
    };
    let repeater = |relay: &SocketAddrV6| {
        reachability
            .offers
            .iter()
            .any(|offer| offer.address == *relay && offer.repeater)
    };
    match (&reachability.relay, &reachability.probe) {
        (Some(relay), _) if repeater(relay) => format!("repeater {relay}"),
        (Some(relay), _) => format!("relay {relay}"),
        (None, Some(probe)) if probe.native() => "native".to_owned(),
        _ => reachability
            .gateway
            .map_or_else(|| "none".to_owned(), |gateway| format!("gateway {gateway}")),
    }
}

/// How `listen` reports: the format of each message, and where it serves its counters.
struct Output {
    format: output::Format,
    metrics: Option<SocketAddr>,
}

fn probe(json: bool, network: &Network) -> sixcast::Result<ExitCode> {
    let config = network.config()?;
    if config.stratum0_source().is_none() {
        return Err(sixcast::Error::new(
            ErrorKind::InvalidConfig,
            "probe needs the core's Stratum 0: --stratum0 ADDRESS:PORT, --domain DOMAIN, or the \
             embedded-rp profile",
        ));
    }
    let limit = settle_limit(&config);
    let context = Context::new(config)?;
    let Some(reachability) = settled(&context, limit) else {
        return Err(sixcast::Error::new(
            ErrorKind::InvalidConfig,
            "no Stratum 0 configured",
        ));
    };
    let path = path_of(Some(&reachability));
    let probe = reachability.probe.as_ref();
    if json {
        let offers: Vec<_> = reachability
            .offers
            .iter()
            .map(|offer| serde_json::json!({"relay": offer.address.to_string(), "rtt_ms": offer.rtt.as_secs_f64() * 1e3, "load": offer.load, "repeater": offer.repeater}))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "stratum0": reachability.stratum0.map(|address| address.to_string()),
                "domain": context.config().domain,
                "answered": probe.is_some_and(|probe| probe.answered),
                "rtt_ms": probe.and_then(|probe| probe.rtt).map(|rtt| rtt.as_secs_f64() * 1e3),
                "native_down": probe.is_some_and(|probe| probe.native_down),
                "native_up": probe.is_some_and(|probe| probe.native_up),
                "offers": offers,
                "path": path,
                "rejected_relays": reachability.rejected_relays,
                "error": reachability.last_error,
            })
        );
    } else {
        match probe {
            Some(probe) => {
                println!(
                    "stratum 0 {} answered in {:?}",
                    probe.stratum0,
                    probe.rtt.unwrap_or_default()
                );
                println!(
                    "native multicast from the core: {}",
                    if probe.native_down { "yes" } else { "no" }
                );
                println!(
                    "native multicast to the core:   {}",
                    if probe.native_up { "yes" } else { "no" }
                );
            }
            None => println!("stratum 0 did not answer"),
        }
        for offer in &reachability.offers {
            println!(
                "{} {} offered: round trip {:?}, load {}‰",
                if offer.repeater {
                    "SSM repeater"
                } else {
                    "relay"
                },
                offer.address,
                offer.rtt,
                offer.load
            );
        }
        println!("path: {path}");
        if reachability.rejected_relays > 0 {
            println!(
                "relays refused (no pinned identity): {}",
                reachability.rejected_relays
            );
        }
        if let Some(error) = &reachability.last_error {
            println!("error: {error}");
        }
    }
    context.close();
    Ok(if path == "none" {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_is_a_deadline_none_or_a_clear_error_never_a_panic() {
        assert_eq!(deadline_after(None).unwrap(), None);
        let soon = deadline_after(Some(1.5)).unwrap().unwrap();
        assert!(soon > Instant::now() && soon < Instant::now() + Duration::from_secs(2));
        // Too long for the clock: no deadline rather than an overflow.
        assert_eq!(deadline_after(Some(1e30)).unwrap(), None);
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let err = deadline_after(Some(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert!(err.to_string().contains("--timeout"), "{err}");
        }
    }
}
